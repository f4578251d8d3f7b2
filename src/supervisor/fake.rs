//! A fake child for the actor's unit tests: a [`Backend`] that spawns nothing.
//!
//! Each start hands the test a [`FakeChild`]: it reads what the actor writes to the
//! child's stdin and plays the child's side (stream-json lines, stdout EOF, exit) through
//! the same tagged channel the real pipe tasks use. Signals are recorded; TERM and KILL
//! end a live fake child as they would a real one, so kill paths need no help.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::backend::{Backend, Started};
use super::process::{ChildEvent, Running, Tagged};
use crate::child::ChildError;
use crate::child::protocol::parse_line;
use crate::child::spawn::{Launch, budget_flag};
use crate::child::stderr::StderrTail;
use crate::config::Config;
use crate::permissions::{Decider, PermissionMode};
use crate::platform::Stop;

/// The tests' side of the fake: what was started and signalled, and what to fail.
#[derive(Clone, Default)]
pub(crate) struct Fake {
    shared: Arc<Mutex<Shared>>,
    /// Woken at every start, so a test waits without polling (a poll would move the clock).
    started: Arc<Notify>,
}

#[derive(Default)]
struct Shared {
    /// Children started and not yet taken by the test.
    fresh: VecDeque<FakeChild>,
    /// When each start happened, and the session it resumed.
    starts: Vec<(Instant, Option<String>)>,
    /// The `--max-budget-usd` of each start.
    budgets: Vec<Option<f64>>,
    /// Every signal sent, as (pid, signal).
    signals: Vec<(u32, Stop)>,
    /// Live children's event senders, by pid, so a signal can end them.
    live: Vec<(u32, u64, mpsc::Sender<Tagged>)>,
    /// Starts fail with "not found" while this is set.
    missing: bool,
    /// Starts fail with an I/O error (a binary found but not startable) while this is set.
    broken: bool,
    /// TERM is ignored while this is set (KILL never is).
    ignore_term: bool,
}

impl Fake {
    /// The backend to give the actor; it shares its record with this handle.
    pub(crate) fn backend(&self) -> Box<dyn Backend> {
        Box::new(FakeBackend {
            shared: self.shared.clone(),
            started: self.started.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the next starts fail as a missing binary does (or not).
    pub(crate) fn set_missing(&self, missing: bool) {
        self.lock().missing = missing;
    }

    /// Makes the next starts fail as an unstartable binary does (or not).
    pub(crate) fn set_broken(&self, broken: bool) {
        self.lock().broken = broken;
    }

    /// Makes the fake children ignore TERM, as a CLI busy in a tool may.
    pub(crate) fn set_ignore_term(&self, ignore: bool) {
        self.lock().ignore_term = ignore;
    }

    /// When each child was started (failed starts are not counted), and what it resumed.
    pub(crate) fn starts(&self) -> Vec<(Instant, Option<String>)> {
        self.lock().starts.clone()
    }

    /// The `--max-budget-usd` of each child started, in order.
    pub(crate) fn budgets(&self) -> Vec<Option<f64>> {
        self.lock().budgets.clone()
    }

    /// The signals sent so far.
    pub(crate) fn signals(&self) -> Vec<(u32, Stop)> {
        self.lock().signals.clone()
    }

    /// The next child the actor starts, waiting (in paused time) until it does.
    pub(crate) async fn next_child(&self) -> FakeChild {
        loop {
            // Registered before the check: a start in between still wakes it.
            let started = self.started.notified();
            if let Some(child) = self.lock().fresh.pop_front() {
                return child;
            }
            started.await;
        }
    }

    /// Whether a started child has not been taken by the test yet.
    pub(crate) fn has_fresh_child(&self) -> bool {
        !self.lock().fresh.is_empty()
    }
}

struct FakeBackend {
    shared: Arc<Mutex<Shared>>,
    started: Arc<Notify>,
}

impl Backend for FakeBackend {
    fn start(
        &mut self,
        generation: u64,
        how: &Launch<'_>,
        events: mpsc::Sender<Tagged>,
    ) -> Result<Started, ChildError> {
        let resume = how.resume;
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        if shared.missing {
            return Err(ChildError::NotFound {
                program: "claude".to_string(),
                looked: "not on PATH".to_string(),
            });
        }
        if shared.broken {
            return Err(ChildError::Spawn {
                program: PathBuf::from("claude"),
                source: std::io::Error::from_raw_os_error(libc::ETXTBSY),
            });
        }
        let pid = 1000 + generation as u32;
        let (stdin, stdin_rx) = mpsc::unbounded_channel();
        shared
            .starts
            .push((Instant::now(), resume.map(str::to_owned)));
        shared.budgets.push(how.budget_usd);
        shared.live.push((pid, generation, events.clone()));
        shared.fresh.push_back(FakeChild {
            generation,
            pid,
            events,
            stdin: stdin_rx,
        });
        drop(shared);
        self.started.notify_waiters();
        let mut args = vec!["--verbose".to_string()];
        args.extend(resume.map(|r| format!("--resume {r}")));
        args.extend(
            how.budget_usd
                .map(|usd| format!("--max-budget-usd {}", budget_flag(usd))),
        );
        Ok(Started {
            running: Running::new(generation, pid, stdin, StderrTail::default()),
            program: PathBuf::from("claude"),
            args,
        })
    }

    fn signal(&mut self, pid: u32, signal: Stop) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.signals.push((pid, signal));
        let ends = signal == Stop::Kill || (signal == Stop::Term && !shared.ignore_term);
        let Some(pos) = shared.live.iter().position(|(p, ..)| *p == pid) else {
            return;
        };
        if ends {
            let (_, generation, events) = shared.live.remove(pos);
            // As the kernel reports a death by SIGKILL (9) or SIGTERM (15).
            let status = ExitStatus::from_raw(if signal == Stop::Kill { 9 } else { 15 });
            let _ = events.try_send((generation, ChildEvent::Exited(Ok(status))));
        }
    }
}

/// One fake child, played by the test.
pub(crate) struct FakeChild {
    pub(crate) generation: u64,
    pub(crate) pid: u32,
    events: mpsc::Sender<Tagged>,
    stdin: mpsc::UnboundedReceiver<String>,
}

impl FakeChild {
    /// The next line the actor wrote to this child's stdin, as JSON; `None` once stdin
    /// is closed.
    pub(crate) async fn read(&mut self) -> Option<Value> {
        let line = self.stdin.recv().await?;
        Some(serde_json::from_str(&line).unwrap_or(Value::Null))
    }

    /// The next stdin line without waiting, if one was written.
    pub(crate) fn try_read(&mut self) -> Option<Value> {
        let line = self.stdin.try_recv().ok()?;
        Some(serde_json::from_str(&line).unwrap_or(Value::Null))
    }

    /// Prints one stdout line, as the child would.
    pub(crate) async fn print(&self, line: Value) {
        let parsed = parse_line(line.to_string().as_bytes());
        self.send(ChildEvent::Line(parsed)).await;
    }

    /// Answers the warm-up `initialize` the actor sent first.
    pub(crate) async fn warm_up(&mut self) {
        let request = self.read().await.unwrap_or(Value::Null);
        assert_eq!(request["request"]["subtype"], "initialize", "{request}");
        let id = request["request_id"].clone();
        self.print(json!({"type": "control_response", "response": {
            "subtype": "success", "request_id": id,
            "response": {"pid": 4242, "claude_code_version": "2.0.0-fake"}}}))
            .await;
    }

    /// Prints the `system/init` message that carries the session id.
    pub(crate) async fn init(&self, session: &str) {
        self.print(json!({"type": "system", "subtype": "init", "session_id": session}))
            .await;
    }

    /// Ends the turn with a successful result.
    pub(crate) async fn result(&self, text: &str) {
        self.print(
            json!({"type": "result", "subtype": "success", "is_error": false,
            "result": text, "session_id": "s1", "total_cost_usd": 0.01}),
        )
        .await;
    }

    /// Exits with `code` on its own.
    pub(crate) async fn exit(&self, code: i32) {
        self.send(ChildEvent::StdoutClosed).await;
        self.send(ChildEvent::Exited(Ok(ExitStatus::from_raw(code << 8))))
            .await;
    }

    /// Prints a line over the size limit (the reader reports only its length).
    pub(crate) async fn too_long(&self, len: usize) {
        self.send(ChildEvent::TooLong { len }).await;
    }

    /// Closes stdout but keeps running.
    pub(crate) async fn close_stdout(&self) {
        self.send(ChildEvent::StdoutClosed).await;
    }

    async fn send(&self, event: ChildEvent) {
        let _ = self.events.send((self.generation, event)).await;
    }
}

/// A configuration for tests: the fake's `claude`, a 4-ask queue, no budgets, 4 sessions.
pub(crate) fn config() -> Config {
    Config {
        claude_bin: "claude".to_string(),
        claude_args: Vec::new(),
        model: None,
        permission_mode: None,
        permission_ceiling: PermissionMode::Default,
        allow_tools: Vec::new(),
        deny_tools: Vec::new(),
        permission_decider: Decider::Relay,
        permission_timeout_ms: 60_000,
        cwd: PathBuf::from("/"),
        state_dir: PathBuf::from("/nonexistent"),
        listen: None,
        listen_token: None,
        queue_size: 4,
        turn_timeout_ms: 300_000,
        interrupt_grace_ms: 5_000,
        events_ring_size: 1_000,
        max_child_line_bytes: 1 << 20,
        max_request_bytes: 1 << 20,
        backoff_initial_ms: 1_000,
        backoff_max_ms: 4_000,
        healthy_after_ms: 10_000,
        stop_grace_ms: 5_000,
        stall_timeout_ms: 0,
        crash_loop_max: 10,
        crash_loop_window_ms: 60_000,
        resume_on_restart: true,
        event_log_max_bytes: 0,
        event_log_keep: 0,
        max_depth: 1,
        listen_no_token: false,
        allow_dirs: vec![PathBuf::from("/")],
        max_sessions: 4,
        spare_sessions: 0,
        session_budget_usd: None,
        budget_usd: None,
        session_idle_ms: 1_800_000,
        result_ttl_ms: 3_600_000,
        config_file: None,
    }
}
