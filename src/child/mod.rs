//! The Claude Code child process: how it is spawned, what its stream-json lines mean,
//! and how its stderr is drained.

mod locate;
pub(crate) mod protocol;
pub(crate) mod spawn;
pub(crate) mod stderr;
pub(crate) mod steps;

use std::path::PathBuf;

use thiserror::Error;

/// Errors of this layer: the child cannot be started or talked to.
#[derive(Debug, Error)]
pub(crate) enum ChildError {
    #[error(
        "cannot find the Claude Code CLI `{program}`: {looked}. Install it \
         (`npm install -g @anthropic-ai/claude-code`, or see https://docs.claude.com/en/docs/claude-code/setup), \
         or point --claude-bin (CLAUDE_CODED_CLAUDE_BIN) at the `claude` binary"
    )]
    NotFound { program: String, looked: String },
    #[error("cannot start the Claude Code CLI {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "refusing to start Claude Code in {cwd}: {reason}; it must stay inside {allowed} \
         (--allow-dir)"
    )]
    Confined {
        cwd: PathBuf,
        reason: String,
        allowed: String,
    },
}
