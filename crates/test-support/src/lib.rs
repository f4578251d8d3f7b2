//! What the tests, benches and examples of claude-coded share.
//!
//! - [`bins`]: where the binaries under test are: `claude-coded` (built by cargo for the
//!   root package's tests and benches) and the CLI double (built here on first use, so it
//!   is never stale).
//! - [`bridge`]: [`Bridge`] runs the real `claude-coded` over the double (by default) with
//!   a fresh state dir and cwd, and talks to it over pipes with a timeout on every read;
//!   [`Options`] says how to start it.
//! - [`mcp`]: the same through rmcp's client, recording every notification.
//! - [`cli`]: a client on the daemon's Unix socket, and running a subcommand (`ask`,
//!   `start`, `stop`, ...) in a sandbox.
//! - [`real_cli`]: for the tests with the real Claude Code CLI: where it is, what keeps
//!   it offline, the check that CI runs them, and the [`real_cli::Real`] harness (a mock
//!   API and claude-coded over the real CLI in a sandbox).
//! - [`proc_info`]: what `/proc` says (memory, children, leaked processes).
//! - [`replay`]: the runner rules for feeding a captured stdin to a stream-json CLI (the
//!   capture tool and the double's replay check).
//! - [`soak`]: the soak driver (the short soak test and `examples/soak.rs`).
//! - [`arb_json`]: proptest generators of arbitrary JSON (the property tests of the
//!   bridge's parsers and `tests/fuzz_inputs/`).
//! - [`TempDir`]: a directory removed on drop.
//!
//! A helper only one test subject uses lives beside it in `tests/suite/`.
// Test code: a failed unwrap or expect is a failed test, its message the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod arb_json;
pub mod bins;
pub mod bridge;
pub mod cli;
pub mod mcp;
pub mod proc_info;
pub mod real_cli;
pub mod replay;
pub mod soak;
mod temp_dir;

pub use bins::{bridge, bridge_under_test, double};
pub use bridge::{
    Bridge, Options, READ_TIMEOUT, bridge_command, error_code, listed_session, process_alive,
    wait_gone,
};
pub use real_cli::{assert_real_cli_tests_run_in_ci, offline_env, real_cli_bin};
pub use temp_dir::TempDir;
