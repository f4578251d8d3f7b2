//! Warm spares: CLIs started and initialized ahead of need, so a new session's first
//! answer does not wait for the CLI's cold start (`--spare-sessions N`).
//!
//! A spare is a CLI process started (under its guard, like any child) with the command
//! line, directory and environment that a fresh session of the default settings gets.
//! It is sent the `initialize` control request at once and left alone once it answered:
//! it boots and warms up while nobody waits. When an actor starts a child whose
//! [`SpawnSpec`] is exactly an initialized spare's, it takes the spare and its pipes
//! (the rest of its stdout intact) instead of spawning, and a new spare is started behind
//! it. The spare's answer to its `initialize` is handed over too, and the actor reads it
//! as the answer to its own warm-up: a new session does not wait for the CLI to answer
//! a second one (about 8 ms with the real CLI 2.1.332). Anything else
//! (`--resume`, a fork, a budget written into the command line, another directory, or a
//! spare still warming up) spawns as before. Spares are the process's, not a session's:
//! none is in `status` or `sessions`, none runs a turn, and at most N exist beside the
//! sessions' children. They end with claude-coded like every child (their guards learn
//! of its death), or when [`Spares::clear`] is called at shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::time::Instant;

use crate::api::SparesInfo;
use crate::child::ChildError;
use crate::child::spawn::{SpawnSpec, Spawned, signal_group, spawn};
use crate::lines::{Frame, LineReader};
use crate::platform::Stop;
use crate::sync::lock;

/// The request id of a spare's own `initialize`.
const WARM_UP_ID: &str = "spare-init";
/// A spare that has not answered its `initialize` by then is ended and replaced.
const WARM_UP_DEADLINE: Duration = Duration::from_secs(60);
/// The longest line a spare's warm-up reads (its answer lists commands and models).
const WARM_UP_LINE_MAX: usize = 16 * 1024 * 1024;

/// A spare's pipes once it answered its `initialize`, and that answer.
type Warm = Arc<Mutex<Option<(ChildStdin, BufReader<ChildStdout>, Vec<u8>)>>>;

/// A spare as a session takes it: the process, and its answer to `initialize` (under
/// [`WARM_UP_ID`]), which its new owner reads as the answer to its own warm-up rather
/// than asking the CLI again.
pub(crate) struct Taken {
    pub(crate) spawned: Spawned,
    pub(crate) answer: Vec<u8>,
    pub(crate) request_id: &'static str,
}

/// One spare process.
struct Waiting {
    spec: SpawnSpec,
    child: Child,
    pid: u32,
    stderr: ChildStderr,
    born: Instant,
    warm: Warm,
}

impl Waiting {
    fn is_warm(&self) -> bool {
        lock(&self.warm).is_some()
    }

    fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// The spares of this process.
pub(crate) struct Spares {
    waiting: Mutex<Vec<Waiting>>,
}

/// The one pool of this process: spares are per command line, so one pool serves every
/// session (and every daemon embedded in the process).
pub(crate) fn pool() -> &'static Spares {
    static POOL: Spares = Spares {
        waiting: Mutex::new(Vec::new()),
    };
    &POOL
}

impl Spares {
    /// A live, initialized spare started as `spec`, if there is one.
    pub(crate) fn take(&self, spec: &SpawnSpec) -> Option<Taken> {
        let mut waiting = lock(&self.waiting);
        drop_useless(&mut waiting);
        let at = waiting
            .iter()
            .position(|spare| spare.spec == *spec && spare.is_warm())?;
        let spare = waiting.swap_remove(at);
        let (stdin, stdout, answer) = lock(&spare.warm).take()?;
        let spawned = Spawned {
            child: spare.child,
            pid: spare.pid,
            stdin,
            stdout,
            stderr: spare.stderr,
        };
        Some(Taken {
            spawned,
            answer,
            request_id: WARM_UP_ID,
        })
    }

    /// Starts spares of `spec` until `want` wait (of any spec).
    pub(crate) fn fill(&self, spec: &SpawnSpec, want: usize) -> Result<(), ChildError> {
        let mut waiting = lock(&self.waiting);
        drop_useless(&mut waiting);
        while waiting.len() < want {
            let spawned = spawn(spec)?;
            tracing::debug!(pid = spawned.pid, "a warm spare CLI is starting");
            let warm: Warm = Arc::new(Mutex::new(None));
            tokio::spawn(warm_up(spawned.stdin, spawned.stdout, warm.clone()));
            waiting.push(Waiting {
                spec: spec.clone(),
                child: spawned.child,
                pid: spawned.pid,
                stderr: spawned.stderr,
                born: Instant::now(),
                warm,
            });
        }
        Ok(())
    }

    /// The spares that wait: initialized, and still warming up.
    pub(crate) fn counts(&self) -> SparesInfo {
        let waiting = lock(&self.waiting);
        let ready = waiting.iter().filter(|spare| spare.is_warm()).count();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        SparesInfo {
            ready: count(ready),
            warming: count(waiting.len() - ready),
        }
    }

    /// Ends every spare (at shutdown): the process groups of the live ones are killed.
    pub(crate) fn clear(&self) {
        let spares = std::mem::take(&mut *lock(&self.waiting));
        for mut spare in spares {
            if spare.is_alive() {
                signal_group(spare.pid, Stop::Kill);
            }
        }
    }
}

/// Drops the spares that died, and ends those that never warmed up. Only a live one is
/// signalled: a dead guard's pid may already be another process's.
fn drop_useless(waiting: &mut Vec<Waiting>) {
    waiting.retain_mut(|spare| {
        if !spare.is_alive() {
            tracing::debug!(pid = spare.pid, "a spare CLI died before it was used");
            return false;
        }
        if spare.is_warm() || spare.born.elapsed() < WARM_UP_DEADLINE {
            return true;
        }
        tracing::warn!(
            pid = spare.pid,
            "a spare CLI never answered its initialize; ending it"
        );
        signal_group(spare.pid, Stop::Kill);
        false
    });
}

/// Sends a spare its `initialize` and reads up to the answer; then its pipes are ready
/// to be taken. A spare whose stdout ends first is left as it is (dead, and dropped).
async fn warm_up(mut stdin: ChildStdin, stdout: BufReader<ChildStdout>, warm: Warm) {
    let request = format!(
        "{{\"type\":\"control_request\",\"request_id\":\"{WARM_UP_ID}\",\"request\":{{\"subtype\":\"initialize\"}}}}\n"
    );
    if stdin.write_all(request.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
        return;
    }
    let mut lines = LineReader::new(stdout, WARM_UP_LINE_MAX);
    let answer = loop {
        match lines.next_frame().await {
            Ok(Frame::Line(line)) if is_warm_up_answer(&line) => break line,
            Ok(Frame::Line(_) | Frame::TooLong { .. }) => {}
            Ok(Frame::Eof) | Err(_) => return,
        }
    };
    *lock(&warm) = Some((stdin, lines.into_inner(), answer));
}

/// Whether `line` is the CLI's answer to the spare's `initialize`.
fn is_warm_up_answer(line: &[u8]) -> bool {
    serde_json::from_slice::<Value>(line).is_ok_and(|message| {
        message["type"] == "control_response" && message["response"]["request_id"] == WARM_UP_ID
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_answer_to_the_spares_own_initialize_ends_its_warm_up() {
        let answer = br#"{"type":"control_response","response":{"subtype":"success","request_id":"spare-init","response":{}}}"#;
        assert!(is_warm_up_answer(answer));
        let other = br#"{"type":"control_response","response":{"request_id":"init-1"}}"#;
        assert!(!is_warm_up_answer(other));
        assert!(!is_warm_up_answer(br#"{"type":"system","subtype":"init"}"#));
        assert!(!is_warm_up_answer(b"not json"));
    }
}
