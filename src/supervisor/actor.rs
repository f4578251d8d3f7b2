//! The task that owns the child: spawn and warm-up, turns, timeouts, restarts, stop.

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;

use super::process::{ChildEvent, Running, Tagged};
use super::snapshot::Snapshot;
use super::turn::{Turn, account, ask_result, preview};
use super::{AskError, AskRequest, Control, RestartOutcome};
use crate::api::{AskResult, ChildStatus, Level, QueuedInfo};
use crate::child::ChildError;
use crate::child::protocol::{ChildLine, control_error, control_request, kind_of, user_message};
use crate::child::spawn::{SpawnSpec, signal_group};
use crate::child::stderr::truncate_chars;
use crate::clock::{now_rfc3339, rfc3339};
use crate::config::Config;
use crate::events::EventLog;

/// After stdout closes, how long the process may linger before it is killed.
const STDOUT_CLOSED_GRACE: Duration = Duration::from_secs(1);
/// After SIGTERM on stop, how long before SIGKILL.
/// Short, so a stop stays within about 6 s even for a child that ignores its closed stdin.
const TERM_GRACE: Duration = Duration::from_millis(500);

pub async fn run(
    config: Arc<Config>,
    daemon_id: String,
    events: EventLog,
    control: mpsc::Receiver<Control>,
    snapshot: watch::Sender<Snapshot>,
) {
    // Bounded: the child's readers wait when the actor is behind, instead of buffering.
    let (child_tx, child_rx) = mpsc::channel(256);
    let mut actor = Actor {
        state: Snapshot::initial(&config),
        config,
        daemon_id,
        events,
        child_tx,
        child: None,
        generation: 0,
        queue: VecDeque::new(),
        turn: None,
        restart_at: None,
        linger_until: None,
        last_total_cost: None,
        stopping: false,
        failed_starts: VecDeque::new(),
        resume: None,
    };
    actor.spawn_child();
    actor.publish(&snapshot);
    actor.serve(control, child_rx, &snapshot).await;
}

struct Actor {
    config: Arc<Config>,
    daemon_id: String,
    events: EventLog,
    /// Given to each child's pipe tasks; their events come back on the loop's receiver.
    child_tx: mpsc::Sender<Tagged>,
    child: Option<Running>,
    generation: u64,
    queue: VecDeque<AskRequest>,
    turn: Option<Turn>,
    /// When the next start is due (backoff).
    restart_at: Option<Instant>,
    /// When a child whose stdout closed is killed if it has not exited.
    linger_until: Option<Instant>,
    /// The child's running cost before the current turn, to report per-turn cost.
    last_total_cost: Option<f64>,
    stopping: bool,
    /// When recent unhealthy exits happened, to detect a crash loop.
    failed_starts: VecDeque<Instant>,
    /// Session to continue in the next child (`--resume`), after an unexpected exit.
    resume: Option<String>,
    /// What `status` shows; kept up to date as things happen.
    state: Snapshot,
}

impl Actor {
    async fn serve(
        &mut self,
        mut control: mpsc::Receiver<Control>,
        mut child_rx: mpsc::Receiver<Tagged>,
        snapshot: &watch::Sender<Snapshot>,
    ) {
        loop {
            let timer = self.next_deadline();
            tokio::select! {
                command = control.recv() => match command {
                    Some(Control::Stop { done }) => {
                        self.stop(&mut child_rx, snapshot).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.on_control(command),
                    None => {
                        self.stop(&mut child_rx, snapshot).await;
                        return;
                    }
                },
                Some((generation, event)) = child_rx.recv() => {
                    if self.is_current(generation) {
                        self.on_child_event(event);
                    }
                }
                _ = sleep_until(timer.unwrap_or_else(far_future).into()), if timer.is_some() => {
                    self.on_timer();
                }
            }
            self.dispatch();
            self.publish(snapshot);
        }
    }

    // ----- commands -----------------------------------------------------------------

    fn on_control(&mut self, command: Control) {
        match command {
            Control::Ask(request) => self.on_ask(request),
            Control::Cancel { turn_id } => self.on_cancel(turn_id),
            Control::Restart { done } => {
                let outcome = self.on_restart();
                let _ = done.send(outcome);
            }
            // Handled in `serve`, which owns the receivers the stop sequence needs.
            Control::Stop { .. } => {}
        }
    }

    fn on_ask(&mut self, request: AskRequest) {
        self.state.totals.asks += 1;
        if self.stopping {
            return self.refuse(request, AskError::Stopping);
        }
        if self.queue.len() >= self.config.queue_size {
            let error = AskError::QueueFull {
                waiting: self.queue.len(),
                capacity: self.config.queue_size,
            };
            return self.refuse(request, error);
        }
        if self.state.child.status == ChildStatus::Failed {
            // Maybe the user fixed the cause (installed the CLI): try once more now.
            self.spawn_child();
            if self.state.child.status == ChildStatus::Failed {
                let reason = self.state.child.last_error.clone().unwrap_or_default();
                return self.refuse(request, AskError::Unavailable { reason });
            }
        }
        self.events.record(
            Level::Debug,
            "turn.queued",
            format!("ask {} queued", request.turn_id),
            json!({ "turnId": request.turn_id, "waiting": self.queue.len() }),
        );
        self.queue.push_back(request);
    }

    fn on_cancel(&mut self, turn_id: u64) {
        if let Some(pos) = self.queue.iter().position(|r| r.turn_id == turn_id) {
            if let Some(request) = self.queue.remove(pos) {
                self.record_cancel(turn_id, "removed from the queue");
                let _ = request.reply.send(Err(AskError::Cancelled));
            }
            return;
        }
        let running = self.turn.as_ref().is_some_and(|t| t.id == turn_id);
        if running {
            self.record_cancel(turn_id, "interrupting the running turn");
            self.abandon_turn(AskError::Cancelled);
        }
    }

    fn on_restart(&mut self) -> RestartOutcome {
        self.failed_starts.clear();
        self.state.child.consecutive_failures = 0;
        if self.stopping {
            return RestartOutcome { killed_pid: None };
        }
        let killed_pid = self.child.as_ref().map(|c| c.pid);
        self.events.record(
            Level::Info,
            "child.restart.requested",
            "restart requested",
            json!({ "pid": killed_pid }),
        );
        match killed_pid {
            // The exit path restarts it at once (a deliberate kill is not a failure).
            Some(_) => self.kill_child("restart requested"),
            None => {
                self.state.child.restart_count += 1;
                self.spawn_child();
            }
        }
        RestartOutcome { killed_pid }
    }

    fn record_cancel(&self, turn_id: u64, what: &str) {
        self.events.record(
            Level::Info,
            "turn.cancelled",
            format!("ask {turn_id} cancelled by the caller: {what}"),
            json!({ "turnId": turn_id }),
        );
    }

    fn refuse(&mut self, request: AskRequest, error: AskError) {
        self.state.totals.asks_errored += 1;
        self.events.record(
            Level::Warn,
            "turn.rejected",
            format!("ask {} rejected: {error}", request.turn_id),
            json!({ "turnId": request.turn_id }),
        );
        let _ = request.reply.send(Err(error));
    }

    // ----- the child's lifecycle -----------------------------------------------------

    fn spawn_child(&mut self) {
        self.restart_at = None;
        let resume = self.resume.clone();
        let spec = match SpawnSpec::from_config(&self.config, &self.daemon_id, resume.as_deref()) {
            Ok(spec) => spec,
            Err(err) => return self.spawn_failed(err),
        };
        self.generation += 1;
        let running = Running::start(
            &spec,
            self.generation,
            self.config.max_child_line_bytes,
            self.child_tx.clone(),
        );
        let mut running = match running {
            Ok(running) => running,
            Err(err) => return self.spawn_failed(err),
        };
        running.resumed = resume.clone();
        // Warm-up: the answer to `initialize` is the readiness signal.
        running.send(control_request(&running.init_request, "initialize"));
        self.events.record(
            Level::Info,
            "child.started",
            format!("started {} (pid {})", spec.program.display(), running.pid),
            json!({ "pid": running.pid, "program": spec.program, "args": spec.args,
                    "generation": self.generation }),
        );
        let child = &mut self.state.child;
        child.pid = Some(running.pid);
        child.started_at = Some(now_rfc3339());
        child.ready_at = None;
        child.cli_pid = None;
        // A resumed child continues that session; a fresh one reports its id at the first turn.
        child.session_id = resume.clone();
        child.resumed_from = resume;
        child.cli_version = None;
        self.last_total_cost = None;
        self.child = Some(running);
        self.set_status(ChildStatus::Starting);
    }

    fn spawn_failed(&mut self, err: ChildError) {
        let message = err.to_string();
        self.state.child.last_error = Some(message.clone());
        self.events.record(
            Level::Error,
            "child.spawn.failed",
            message.clone(),
            json!({ "program": self.config.claude_bin }),
        );
        if matches!(err, ChildError::NotFound { .. }) {
            // Retrying a missing binary on a timer only repeats the error; the next ask retries.
            self.enter_failed(message);
        } else {
            self.restart_after_failure(&message);
        }
    }

    fn on_child_event(&mut self, event: ChildEvent) {
        if let (Some(turn), ChildEvent::Line(_) | ChildEvent::TooLong { .. }) =
            (self.turn.as_mut(), &event)
        {
            turn.last_output = Instant::now();
        }
        match event {
            ChildEvent::Line(line) => self.on_line(line),
            ChildEvent::TooLong { len } => self.on_too_long(len),
            ChildEvent::StdoutClosed => {
                if let Some(child) = self.child.as_mut() {
                    child.stdout_closed = true;
                    self.linger_until = Some(Instant::now() + STDOUT_CLOSED_GRACE);
                }
            }
            ChildEvent::Exited(status) => self.on_exit(status),
        }
    }

    fn on_exit(&mut self, status: std::io::Result<ExitStatus>) {
        let Some(child) = self.child.take() else {
            return;
        };
        self.linger_until = None;
        // Tool processes the CLI left in its group belong to a dead session.
        signal_group(child.pid, libc::SIGKILL);
        let (exit_code, signal) = match &status {
            Ok(s) => (s.code(), std::os::unix::process::ExitStatusExt::signal(s)),
            Err(_) => (None, None),
        };
        let how = match (&child.kill_reason, exit_code, signal) {
            (Some(reason), _, _) => format!("was killed ({reason})"),
            (None, Some(code), _) => format!("exited with code {code}"),
            (None, None, Some(sig)) => format!("was killed by signal {sig}"),
            (None, None, None) => "exited".to_string(),
        };
        let stderr_tail = child.stderr_tail.snapshot();
        let info = &mut self.state.child;
        info.exited_at = Some(now_rfc3339());
        info.exit_code = exit_code;
        info.signal = signal;
        info.stderr_tail = stderr_tail.clone();
        info.last_error = Some(format!("the child {how}"));
        let uptime = child.started.elapsed();
        self.events.record(
            if self.stopping {
                Level::Info
            } else {
                Level::Warn
            },
            "child.exited",
            format!(
                "the child (pid {}) {how} after {} ms",
                child.pid,
                uptime.as_millis()
            ),
            json!({ "pid": child.pid, "exitCode": exit_code, "signal": signal,
                    "uptimeMs": uptime.as_millis() as u64, "stderrTail": stderr_tail }),
        );
        let error = AskError::ChildExited {
            how: how.clone(),
            exit_code,
            signal,
            stderr_tail,
        };
        self.finish_turn_with_error(error);
        if self.stopping {
            return;
        }
        if child.resumed.is_some() && child.ready_at.is_none() {
            // `--resume` of a session the CLI cannot find exits before it is ready.
            return self.drop_resume(&how);
        }
        // The CLI saves its session during the first turn: a child that never finished
        // one (and was not itself resuming) has nothing on disk to resume.
        if !self.config.resume_on_restart {
            self.resume = None;
        } else if child.turns_done > 0 || child.resumed.is_some() {
            self.resume = self.state.child.session_id.clone();
        }
        let healthy = child.ready_at.is_some()
            && uptime >= Duration::from_millis(self.config.healthy_after_ms);
        if healthy || child.kill_reason.is_some() {
            self.state.child.consecutive_failures = 0;
        }
        match child.kill_reason {
            Some(_) => self.schedule_restart(false),
            None if healthy => self.schedule_restart(true),
            None => self.restart_after_failure(&format!("the child {how}")),
        }
    }

    fn drop_resume(&mut self, how: &str) {
        let session = self.resume.take();
        self.events.record(
            Level::Warn,
            "child.resume.failed",
            format!("the child resuming session {session:?} {how} before it was ready; starting a new session"),
            json!({ "sessionId": session }),
        );
        self.state.child.session_id = None;
        self.schedule_restart(false);
    }

    /// Counts an unhealthy exit or failed spawn; too many in the window is a crash loop.
    fn restart_after_failure(&mut self, what: &str) {
        let now = Instant::now();
        let window = Duration::from_millis(self.config.crash_loop_window_ms);
        self.failed_starts.push_back(now);
        while self
            .failed_starts
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.failed_starts.pop_front();
        }
        let count = self.failed_starts.len();
        if count < self.config.crash_loop_max as usize {
            return self.schedule_restart(true);
        }
        let reason = format!(
            "crash loop: {count} failed starts within {} s (last: {what}); the next ask or a restart request tries again",
            window.as_secs()
        );
        self.events.record(
            Level::Error,
            "child.crashloop",
            reason.clone(),
            json!({ "failedStarts": count, "windowMs": self.config.crash_loop_window_ms,
                    "stderrTail": self.state.child.stderr_tail }),
        );
        self.enter_failed(reason);
    }

    /// No more automatic restarts: waiting asks fail now, later ones try once more.
    fn enter_failed(&mut self, reason: String) {
        self.restart_at = None;
        self.state.child.last_error = Some(reason.clone());
        self.fail_all_waiting(AskError::Unavailable { reason });
        self.set_status(ChildStatus::Failed);
    }

    /// Backoff: 1 s doubling to the cap per failed start in a row; a deliberate kill
    /// (timeout, oversized output) restarts at once.
    fn schedule_restart(&mut self, failure: bool) {
        let delay = if failure {
            let failures = &mut self.state.child.consecutive_failures;
            *failures = failures.saturating_add(1);
            let exp = (*failures - 1).min(20);
            let ms = self
                .config
                .backoff_initial_ms
                .saturating_mul(1 << exp)
                .min(self.config.backoff_max_ms);
            Duration::from_millis(ms)
        } else {
            Duration::ZERO
        };
        let at = SystemTime::now() + delay;
        self.restart_at = Some(Instant::now() + delay);
        self.state.child.next_restart_at = Some(rfc3339(at));
        self.events.record(
            Level::Info,
            "child.restart.scheduled",
            format!("restarting the child in {} ms", delay.as_millis()),
            json!({ "delayMs": delay.as_millis() as u64,
                    "consecutiveFailures": self.state.child.consecutive_failures }),
        );
        self.set_status(ChildStatus::Backoff);
    }

    fn kill_child(&mut self, reason: &str) {
        if let Some(child) = self.child.as_mut() {
            if child.kill_reason.is_none() {
                child.kill_reason = Some(reason.to_string());
                self.events.record(
                    Level::Warn,
                    "child.killing",
                    format!("killing the child (pid {}): {reason}", child.pid),
                    json!({ "pid": child.pid, "reason": reason }),
                );
            }
            signal_group(child.pid, libc::SIGKILL);
        }
    }

    // ----- lines from the child ------------------------------------------------------

    fn on_line(&mut self, line: ChildLine) {
        match line {
            ChildLine::Result(value) => self.on_result(value),
            ChildLine::ControlResponse {
                request_id,
                outcome,
            } => self.on_control_response(&request_id, outcome),
            ChildLine::ControlRequest {
                request_id,
                subtype,
                message,
            } => self.on_control_request(&request_id, &subtype, message),
            ChildLine::KeepAlive => {}
            ChildLine::Message(value) => self.on_message(value),
            ChildLine::Untyped(value) => self.on_garbage(value.to_string()),
            ChildLine::NotJson(text) => self.on_garbage(text),
        }
    }

    fn on_message(&mut self, message: Value) {
        let (kind, subtype) = kind_of(&message);
        if kind == "system"
            && subtype.as_deref() == Some("init")
            && let Some(session) = message.get("session_id").and_then(Value::as_str)
        {
            self.state.child.session_id = Some(session.to_string());
        }
        match self.turn.as_mut() {
            Some(turn) => {
                if !turn.stream(&message) {
                    self.state.totals.notifications_dropped += 1;
                }
            }
            None => {
                self.events.record(
                    Level::Debug,
                    "child.output.unexpected",
                    format!("the child printed a {kind} message outside a turn"),
                    json!({ "message": message }),
                );
            }
        }
    }

    fn on_result(&mut self, value: Value) {
        let Some(mut turn) = self.turn.take() else {
            self.events.record(
                Level::Warn,
                "child.output.unexpected",
                "the child printed a result outside a turn",
                json!({ "message": value }),
            );
            return;
        };
        if !turn.stream(&value) {
            self.state.totals.notifications_dropped += 1;
        }
        let previous = self.last_total_cost;
        self.last_total_cost = value
            .get("total_cost_usd")
            .and_then(Value::as_f64)
            .or(previous);
        let result = ask_result(value, previous, turn.messages);
        if let Some(child) = self.child.as_mut() {
            child.turns_done += 1;
        }
        account(&mut self.state.totals, &result);
        self.record_turn_end(&turn, &result);
        if let Some(reply) = turn.reply.take() {
            let _ = reply.send(Ok(result));
        }
        self.set_status(ChildStatus::Ready);
    }

    fn record_turn_end(&self, turn: &Turn, result: &AskResult) {
        let (level, kind, verb) = match (turn.reply.is_some(), result.ok) {
            (false, _) => (
                Level::Info,
                "turn.abandoned.finished",
                "ended after its caller left",
            ),
            (true, true) => (Level::Info, "turn.finished", "finished"),
            (true, false) => (Level::Warn, "turn.failed", "failed"),
        };
        self.events.record(
            level,
            kind,
            format!(
                "turn {} {verb} in {} ms ({})",
                turn.id,
                turn.started.elapsed().as_millis(),
                result.subtype.as_deref().unwrap_or("no subtype")
            ),
            json!({ "turnId": turn.id, "ok": result.ok, "subtype": result.subtype,
                    "terminalReason": result.terminal_reason, "costUsd": result.cost_usd,
                    "durationMs": turn.started.elapsed().as_millis() as u64,
                    "messages": turn.messages, "skippedLines": turn.skipped_lines }),
        );
    }

    fn on_control_response(&mut self, request_id: &str, outcome: Result<Value, String>) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if request_id != child.init_request {
            self.events.record(
                Level::Debug,
                "child.control.response",
                format!("the child answered control request {request_id}"),
                json!({ "requestId": request_id, "ok": outcome.is_ok() }),
            );
            return;
        }
        child.ready_at = Some(Instant::now());
        let startup_ms = child.started.elapsed().as_millis() as u64;
        let pid = child.pid;
        let info = &mut self.state.child;
        info.ready_at = Some(now_rfc3339());
        match &outcome {
            Ok(response) => {
                info.cli_pid = response
                    .get("pid")
                    .and_then(Value::as_u64)
                    .and_then(|p| u32::try_from(p).ok());
                info.cli_version = response
                    .get("claude_code_version")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            // The CLI is running and reading; a failed warm-up does not stop turns.
            Err(error) => info.last_error = Some(format!("initialize failed: {error}")),
        }
        self.events.record(
            Level::Info,
            "child.ready",
            format!("the child (pid {pid}) is ready after {startup_ms} ms"),
            json!({ "pid": pid, "startupMs": startup_ms, "cliVersion": info.cli_version,
                    "initializeError": outcome.err() }),
        );
        let status = if self.turn.is_some() {
            ChildStatus::Busy
        } else {
            ChildStatus::Ready
        };
        self.set_status(status);
    }

    /// Requests from the child (`can_use_tool`, ...). There is no relay yet, so each is
    /// refused at once: a request left unanswered would hang the child forever.
    fn on_control_request(&mut self, request_id: &str, subtype: &str, message: Value) {
        let error = format!("claude-coded does not answer {subtype} requests; refused");
        if let Some(child) = self.child.as_ref() {
            child.send(control_error(request_id, &error));
        }
        self.events.record(
            Level::Warn,
            "child.control.request",
            format!("refused the child's {subtype} request"),
            json!({ "requestId": request_id, "subtype": subtype }),
        );
        if let Some(turn) = self.turn.as_mut()
            && !turn.stream(&message)
        {
            self.state.totals.notifications_dropped += 1;
        }
    }

    /// A line that is not a typed JSON message: skipped, but recorded.
    fn on_garbage(&mut self, text: String) {
        let len = text.len();
        if let Some(turn) = self.turn.as_mut() {
            turn.skipped_lines += 1;
        }
        self.events.record(
            Level::Warn,
            "child.output.garbage",
            format!("skipped a {len}-byte line from the child that is not a stream-json message"),
            json!({ "length": len, "preview": truncate_chars(text, 200) }),
        );
    }

    fn on_too_long(&mut self, len: usize) {
        let limit = self.config.max_child_line_bytes;
        self.events.record(
            Level::Error,
            "child.output.too_large",
            format!("the child printed a line of {len} bytes (limit {limit})"),
            json!({ "length": len, "limit": limit }),
        );
        if self.turn.is_some() {
            self.abandon_turn(AskError::OutputTooLarge { len, limit });
            self.kill_child("it printed a line over the size limit");
        }
    }

    // ----- turns ---------------------------------------------------------------------

    /// Starts the next waiting ask when the child is ready and idle.
    fn dispatch(&mut self) {
        while self.turn.is_none() && self.state.child.status == ChildStatus::Ready {
            let Some(request) = self.queue.pop_front() else {
                return;
            };
            if request.reply.is_closed() {
                continue;
            }
            let Some(child) = self.child.as_ref() else {
                self.queue.push_front(request);
                return;
            };
            if !child.send(user_message(&request.prompt)) {
                self.queue.push_front(request);
                return;
            }
            let turn = Turn::begin(request);
            self.events.record(
                Level::Info,
                "turn.started",
                format!("turn {} started: {}", turn.id, turn.prompt_preview),
                json!({ "turnId": turn.id, "timeoutMs": turn.timeout.as_millis() as u64,
                        "promptPreview": turn.prompt_preview }),
            );
            self.turn = Some(turn);
            self.set_status(ChildStatus::Busy);
        }
    }

    /// Answers the caller now with `error` and interrupts the child; the turn stays in
    /// flight (no new turn starts) until its result arrives or the child is killed.
    fn abandon_turn(&mut self, error: AskError) {
        let Some(turn) = self.turn.as_mut() else {
            return;
        };
        if let Some(reply) = turn.reply.take() {
            self.state.totals.asks_errored += 1;
            let _ = reply.send(Err(error));
        }
        // Closing the stream lets the caller's side finish now, not when the child does.
        turn.sink = None;
        if turn.kill_at.is_none() {
            turn.kill_at =
                Some(Instant::now() + Duration::from_millis(self.config.interrupt_grace_ms));
            let id = format!("interrupt-{}", turn.id);
            if let Some(child) = self.child.as_ref() {
                child.send(control_request(&id, "interrupt"));
            }
        }
    }

    fn finish_turn_with_error(&mut self, error: AskError) {
        if let Some(mut turn) = self.turn.take() {
            self.events.record(
                Level::Error,
                "turn.failed",
                format!("turn {} failed: {error}", turn.id),
                json!({ "turnId": turn.id }),
            );
            if let Some(reply) = turn.reply.take() {
                self.state.totals.asks_errored += 1;
                let _ = reply.send(Err(error));
            }
        }
    }

    fn fail_all_waiting(&mut self, error: AskError) {
        for request in std::mem::take(&mut self.queue) {
            self.state.totals.asks_errored += 1;
            let _ = request.reply.send(Err(error.clone()));
        }
    }

    // ----- timers --------------------------------------------------------------------

    fn next_deadline(&self) -> Option<Instant> {
        let turn = self.turn.as_ref().map(|t| match t.kill_at {
            Some(kill) => kill,
            None => self
                .stall_deadline(t)
                .map_or(t.deadline, |stall| stall.min(t.deadline)),
        });
        [self.restart_at, self.linger_until, turn]
            .into_iter()
            .flatten()
            .min()
    }

    /// When the stall watchdog fires for `turn` (never when it is off).
    fn stall_deadline(&self, turn: &Turn) -> Option<Instant> {
        match self.config.stall_timeout_ms {
            0 => None,
            ms => Some(turn.last_output + Duration::from_millis(ms)),
        }
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.restart_at.is_some_and(|at| at <= now) && self.child.is_none() && !self.stopping {
            self.state.child.restart_count += 1;
            self.spawn_child();
        }
        if self.linger_until.is_some_and(|at| at <= now) {
            self.linger_until = None;
            self.kill_child("its stdout closed but it kept running");
        }
        let Some(turn) = self.turn.as_ref() else {
            return;
        };
        if turn.kill_at.is_some_and(|at| at <= now) {
            self.kill_child("no result within the interrupt grace period");
        } else if turn.kill_at.is_none() && self.stall_deadline(turn).is_some_and(|at| at <= now) {
            let silent_ms = turn.last_output.elapsed().as_millis() as u64;
            self.events.record(
                Level::Warn,
                "turn.stalled",
                format!(
                    "turn {} stalled: no output for {silent_ms} ms; interrupting",
                    turn.id
                ),
                json!({ "turnId": turn.id, "silentMs": silent_ms }),
            );
            self.abandon_turn(AskError::Stalled { silent_ms });
        } else if turn.kill_at.is_none() && turn.deadline <= now {
            let after_ms = turn.timeout.as_millis() as u64;
            self.events.record(
                Level::Warn,
                "turn.timeout",
                format!(
                    "turn {} timed out after {after_ms} ms; interrupting",
                    turn.id
                ),
                json!({ "turnId": turn.id, "timeoutMs": after_ms }),
            );
            self.abandon_turn(AskError::Timeout { after_ms });
        }
    }

    // ----- stop ----------------------------------------------------------------------

    async fn stop(
        &mut self,
        child_rx: &mut mpsc::Receiver<Tagged>,
        snapshot: &watch::Sender<Snapshot>,
    ) {
        self.stopping = true;
        self.restart_at = None;
        self.fail_all_waiting(AskError::Stopping);
        if let Some(reply) = self.turn.as_mut().and_then(|t| t.reply.take()) {
            self.state.totals.asks_errored += 1;
            let _ = reply.send(Err(AskError::Stopping));
        }
        self.publish(snapshot);
        if let Some(child) = self.child.as_mut() {
            // The CLI finishes a running turn before it exits on EOF: end the turn first.
            if let Some(turn) = self.turn.as_ref() {
                child.send(control_request(
                    &format!("interrupt-{}", turn.id),
                    "interrupt",
                ));
            }
            // Closing stdin asks the CLI to finish and exit on its own.
            child.stdin = None;
            let pid = child.pid;
            let grace = Duration::from_millis(self.config.stop_grace_ms);
            if !self.wait_exit(child_rx, grace).await {
                signal_group(pid, libc::SIGTERM);
                if !self.wait_exit(child_rx, TERM_GRACE).await {
                    signal_group(pid, libc::SIGKILL);
                    self.wait_exit(child_rx, TERM_GRACE).await;
                }
            }
            // Anything the CLI started in its group (tool processes) goes with it.
            signal_group(pid, libc::SIGKILL);
        }
        self.turn = None;
        self.set_status(ChildStatus::Stopped);
        self.publish(snapshot);
    }

    /// Processes child events until the current child exits or `limit` passes.
    async fn wait_exit(&mut self, child_rx: &mut mpsc::Receiver<Tagged>, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.child.is_some() {
            let next = tokio::time::timeout_at(deadline.into(), child_rx.recv()).await;
            match next {
                Ok(Some((generation, event))) if self.is_current(generation) => {
                    self.on_child_event(event)
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return false,
            }
        }
        true
    }

    // ----- bookkeeping ---------------------------------------------------------------

    fn is_current(&self, generation: u64) -> bool {
        self.child
            .as_ref()
            .is_some_and(|c| c.generation == generation)
    }

    fn set_status(&mut self, status: ChildStatus) {
        let child = &mut self.state.child;
        if child.status != status {
            child.status = status;
            child.status_since = now_rfc3339();
        }
        child.ready = matches!(status, ChildStatus::Ready | ChildStatus::Busy);
        if status != ChildStatus::Backoff {
            child.next_restart_at = None;
        }
    }

    fn publish(&mut self, snapshot: &watch::Sender<Snapshot>) {
        if let Some(child) = self.child.as_ref() {
            self.state.child.stderr_tail = child.stderr_tail.snapshot();
        }
        self.state.turn = self.turn.as_ref().map(|t| (t.info(), t.started));
        self.state.queue.length = self.queue.len();
        self.state.queue.waiting = self
            .queue
            .iter()
            .map(|r| QueuedInfo {
                turn_id: r.turn_id,
                enqueued_at: r.enqueued_at.clone(),
                prompt_preview: preview(&r.prompt),
            })
            .collect();
        snapshot.send_replace(self.state.clone());
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
