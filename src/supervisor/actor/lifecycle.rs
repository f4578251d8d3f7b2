//! The child's lifecycle: spawn and warm-up, exit, backoff, crash loops, resume.

use super::*;
use crate::platform::Stop;

impl Actor {
    /// Starts a child for the ask at the head of the queue (see [`Actor::spawn_child_for`]).
    pub(super) fn spawn_child(&mut self) {
        let ask_budget = self.queue.front().and_then(|r| r.turn.max_budget_usd);
        self.spawn_child_for(ask_budget);
    }

    /// Starts a child (from Idle, Backoff or Failed: there is none) under the budget an
    /// ask with `ask_budget` needs; the state stays as it was when the start fails, so the
    /// failure is judged against it.
    pub(super) fn spawn_child_for(&mut self, ask_budget: Option<f64>) {
        let resume = self.resume.clone();
        let fork = self.fork && resume.is_some();
        // To the millionth, rounded down, as the flag takes it; never below the least
        // the CLI accepts (it would not start): no turn runs on a child under less than
        // its reservation anyway (see `suits`).
        let budget = child_budget(self.budget.left(), ask_budget).map(|b| Budget {
            usd: crate::supervisor::floor_to_micro_usd(b.usd).max(MIN_BUDGET_USD),
            ..b
        });
        // A generation is used only once a child runs, so event details number children.
        let generation = self.generation + 1;
        let how = Launch {
            resume: resume.as_deref(),
            fork,
            budget_usd: budget.map(|b| b.usd),
        };
        let started = self.backend.start(generation, &how, self.child_tx.clone());
        let Started {
            mut running,
            program,
            args,
        } = match started {
            Ok(started) => started,
            Err(err) => return self.spawn_failed(err),
        };
        self.generation = generation;
        running.resumed = resume.clone();
        running.mode = self.config.permission_mode;
        running.model = self.config.model.clone();
        running.budget = budget;
        // Warm-up: the answer to `initialize` is the readiness signal (a taken spare's
        // own answer comes first on its stdout).
        if running.needs_initialize {
            running.send(control_request(&running.init_request, "initialize"));
        }
        self.events.record_detail(
            Level::Info,
            format!("started {} (pid {})", program.display(), running.pid),
            &api::ChildStarted {
                pid: running.pid,
                program: program.display().to_string(),
                args,
                generation: self.generation,
            },
        );
        self.record_child_start(running.pid, resume, fork);
        self.state = State::Starting { child: running };
    }

    /// The record of a child that just started continuing `resume` (if any).
    fn record_child_start(&mut self, pid: u32, resume: Option<String>, fork: bool) {
        let child = &mut self.record.child;
        child.pid = Some(pid);
        child.started_at = Some(now_rfc3339());
        child.ready_at = None;
        child.cli_pid = None;
        // What the CLI's running total for the session already holds as this child
        // starts (it counts earlier processes of a resumed session too): nothing for a new
        // conversation, the last total seen when continuing the session this actor ran,
        // what the start said for the first child, unknown otherwise (that turn's own cost
        // is then unknown, never the session's whole cost).
        let base = self.cost_base.take();
        self.last_total_cost = match (&resume, fork) {
            (None, _) => Some(0.0),
            (Some(id), false) if self.session.as_ref() == Some(id) => self.last_total_cost,
            (Some(_), false) => base,
            (Some(_), true) => None,
        };
        child.session_cost_usd = self.last_total_cost;
        // A resumed child continues that session; a fresh or forked one reports its id
        // at its first turn. A fork happens once: restarts continue the branch.
        self.session = if fork { None } else { resume.clone() };
        self.fork = false;
        child.resumed_from = resume;
        child.cli_version = None;
        child.commands = None;
    }

    /// Ends the ready child so that one under the budget the ask `turn_id` needs takes its
    /// place, gracefully as an idle session is stopped: its stdin is closed (the CLI exits
    /// on its own, its conversation saved) and it is killed if still there after the stop
    /// grace period. Its exit starts the next child at once, continuing the conversation.
    pub(super) fn replace_child(&mut self, turn_id: u64, cap: Option<Budget>) {
        let (Some(mut child), _) = self.state.take(State::Idle) else {
            return;
        };
        let usd = crate::api::usd_text;
        let why = match cap {
            Some(cap) => format!(
                "ask {turn_id} may spend ${} ({}), so it runs in a child whose CLI may \
                 spend just that",
                usd(cap.usd),
                cap.scope.describe()
            ),
            None => format!(
                "ask {turn_id} has no budget of its own, and this child is held to an \
                 earlier ask's"
            ),
        };
        let ask_budget = cap.map(|b| b.usd);
        self.events.record_detail(
            Level::Info,
            format!("replacing the child (pid {}): {why}", child.pid),
            &api::ChildReplacing {
                pid: child.pid,
                turn_id,
                max_budget_usd: ask_budget,
                child_budget_usd: child.budget.map(|b| b.usd),
            },
        );
        child.stdin = None;
        let kill_at = Instant::now() + Duration::from_millis(self.config.stop_grace_ms);
        self.state = State::Replacing { child, kill_at };
    }

    /// The replaced child exited: the next one starts now, in the same conversation.
    fn after_replacement(&mut self, child: &Running) {
        if !self.config.resume_on_restart {
            self.resume = None;
        } else if child.turns_done > 0 || child.resumed.is_some() {
            self.resume = self.session.clone();
        }
        self.spawn_child();
    }

    pub(super) fn spawn_failed(&mut self, err: ChildError) {
        let message = err.to_string();
        self.record.child.last_error = Some(message.clone());
        self.events.record_detail(
            Level::Error,
            message.clone(),
            &api::ChildSpawnFailed {
                program: self.config.claude_bin.clone(),
            },
        );
        if matches!(err, ChildError::NotFound { .. }) {
            // Retrying a missing binary on a timer only repeats the error; the next ask retries.
            self.enter_failed(message);
        } else {
            self.restart_after_failure(&message, true);
            self.fail_all_waiting(self.start_failure());
        }
    }

    pub(super) fn on_child_event(&mut self, event: ChildEvent) {
        if let (Some(turn), ChildEvent::Line(_) | ChildEvent::TooLong { .. }) =
            (self.state.turn_mut(), &event)
        {
            turn.last_output = Instant::now();
        }
        match event {
            ChildEvent::Line(line) => self.on_line(line),
            ChildEvent::TooLong { len } => self.on_too_long(len),
            ChildEvent::StdoutClosed => {
                if let Some(child) = self.state.child_mut() {
                    child.linger_until = Some(Instant::now() + STDOUT_CLOSED_GRACE);
                }
            }
            ChildEvent::Exited(status) => self.on_exit(status),
        }
    }

    pub(super) fn on_exit(&mut self, status: std::io::Result<ExitStatus>) {
        if self.state.child().is_none() {
            return;
        }
        let stopping = self.state.is_stopping();
        let replaced = matches!(self.state, State::Replacing { .. });
        // Until the restart is decided there is no child; a stop goes on without one.
        let after = match stopping {
            true => State::Stopping {
                child: None,
                turn: None,
                shown: self.state.status(),
            },
            false => State::Idle,
        };
        let (Some(child), turn) = self.state.take(after) else {
            return;
        };
        // Tool processes the CLI left in its group belong to a dead session.
        self.backend.signal(child.pid, Stop::Kill);
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
        let info = &mut self.record.child;
        info.exited_at = Some(now_rfc3339());
        info.exit_code = exit_code;
        info.signal = signal;
        info.stderr_tail = stderr_tail.clone();
        // An exit we asked for is not an error; `lastError` keeps the last real one.
        let asked_for = stopping || replaced;
        if !asked_for {
            info.last_error = Some(format!("the child {how}"));
        }
        let uptime = child.started.elapsed();
        self.events.record_detail(
            if asked_for { Level::Info } else { Level::Warn },
            format!(
                "the child (pid {}) {how} after {} ms",
                child.pid,
                uptime.as_millis()
            ),
            &api::ChildExited {
                pid: child.pid,
                exit_code,
                signal,
                uptime_ms: uptime.as_millis() as u64,
                stderr_tail: stderr_tail.clone(),
            },
        );
        let error = AskError::ChildExited {
            how: how.clone(),
            exit_code,
            signal,
            stderr_tail,
        };
        self.finish_turn_with_error(turn, error);
        match (stopping, replaced) {
            (true, _) => {}
            (false, true) => self.after_replacement(&child),
            (false, false) => self.after_exit(&child, &how),
        }
    }

    /// What follows an unexpected exit: which session the next child continues, and when
    /// it starts.
    fn after_exit(&mut self, child: &Running, how: &str) {
        if child.resumed.is_some() && child.ready_at.is_none() {
            // `--resume` of a session the CLI cannot find exits before it is ready.
            return self.drop_resume(how);
        }
        // The CLI saves its session during the first turn: a child that never finished
        // one (and was not itself resuming) has nothing on disk to resume.
        if !self.config.resume_on_restart {
            self.resume = None;
        } else if child.turns_done > 0 || child.resumed.is_some() {
            self.resume = self.session.clone();
        }
        // Healthy is having served: ready for that long, however long it took to warm up.
        let healthy = child
            .ready_at
            .is_some_and(|at| at.elapsed() >= Duration::from_millis(self.config.healthy_after_ms));
        if healthy || child.kill_reason.is_some() {
            self.crashes.in_a_row = 0;
        }
        let start_failed = child.ready_at.is_none() && child.kill_reason.is_none();
        match child.kill_reason {
            Some(_) => self.schedule_restart(false, false),
            None if healthy => self.schedule_restart(true, false),
            None => self.restart_after_failure(&format!("the child {how}"), start_failed),
        }
        if start_failed {
            // Nobody should wait out the backoff for a child that cannot start.
            self.fail_all_waiting(self.start_failure());
        }
    }

    /// The error for an ask that finds the child unable to start: why, with its stderr.
    pub(super) fn start_failure(&self) -> AskError {
        let child = &self.record.child;
        let mut reason = match (&self.state, &child.last_error) {
            (State::Failed { reason }, _) | (_, Some(reason)) => reason.clone(),
            _ => "the child could not be started".to_string(),
        };
        if let State::Backoff { due, .. } = &self.state {
            reason.push_str(&format!("; the next start is due at {due}"));
        }
        AskError::Unavailable {
            reason,
            stderr_tail: child.stderr_tail.clone(),
        }
    }

    pub(super) fn drop_resume(&mut self, how: &str) {
        let session = self.resume.take();
        self.events.record_detail(
            Level::Warn,
            format!("the child resuming session {session:?} {how} before it was ready; starting a new session"),
            &api::ChildResumeFailed { session_id: session },
        );
        self.session = None;
        self.schedule_restart(false, false);
    }

    /// Counts an unhealthy exit or failed spawn; too many in the window is a crash loop.
    pub(super) fn restart_after_failure(&mut self, what: &str, start_failed: bool) {
        let count = self.crashes.record(Instant::now());
        if count < self.config.crash_loop_max as usize {
            return self.schedule_restart(true, start_failed);
        }
        let window_ms = self.config.crash_loop_window_ms;
        let reason = format!(
            "crash loop: {count} failed starts within {} s (last: {what}); the next ask or a restart request tries again",
            window_ms / 1000
        );
        self.events.record_detail(
            Level::Error,
            reason.clone(),
            &api::ChildCrashloop {
                failed_starts: count,
                window_ms,
                stderr_tail: self.record.child.stderr_tail.clone(),
            },
        );
        self.enter_failed(reason);
    }

    /// No more automatic restarts: waiting asks fail now, later ones try once more.
    pub(super) fn enter_failed(&mut self, reason: String) {
        self.record.child.last_error = Some(reason.clone());
        self.fail_all_waiting(self.start_failure());
        self.state = State::Failed { reason };
    }

    /// Backoff: 1 s doubling to the cap per failed start in a row (`failure`); a
    /// deliberate kill (timeout, oversized output) restarts at once. `start_failed`: the
    /// child never got ready, so asks fail at once until the next one is.
    pub(super) fn schedule_restart(&mut self, failure: bool, start_failed: bool) {
        let delay = match failure {
            true => self
                .crashes
                .next_backoff(self.config.backoff_initial_ms, self.config.backoff_max_ms),
            false => Duration::ZERO,
        };
        self.events.record_detail(
            Level::Info,
            format!("restarting the child in {} ms", delay.as_millis()),
            &api::ChildRestartScheduled {
                delay_ms: delay.as_millis() as u64,
                consecutive_failures: self.crashes.in_a_row,
            },
        );
        self.state = State::Backoff {
            until: Instant::now() + delay,
            due: rfc3339(SystemTime::now() + delay),
            start_failed,
        };
    }

    pub(super) fn kill_child(&mut self, reason: &str) {
        let Self {
            state,
            backend,
            events,
            ..
        } = self;
        if let Some(child) = state.child_mut() {
            if child.kill_reason.is_none() {
                child.kill_reason = Some(reason.to_string());
                events.record_detail(
                    Level::Warn,
                    format!("killing the child (pid {}): {reason}", child.pid),
                    &api::ChildKilling {
                        pid: child.pid,
                        reason: reason.to_string(),
                    },
                );
            }
            backend.signal(child.pid, Stop::Kill);
        }
    }
}

/// The budget of a child for an ask that may spend `ask` (`maxBudgetUsd`): the ask's
/// when it is below what the session has `left`, else what is left.
pub(super) fn child_budget(left: Option<Budget>, ask: Option<f64>) -> Option<Budget> {
    crate::supervisor::turn_cap(left, ask)
}

/// How far below a turn's reservation a child's CLI may stop (the flag is written to the
/// millionth, rounded down) and still run that turn.
const CAP_BELOW: f64 = MIN_BUDGET_USD;
/// Float noise in sums of dollars.
const CAP_ABOVE: f64 = 1e-9;

/// Whether `child` may run a turn that may spend `cap` (its reservation; `None`: nothing
/// bounds it). The CLI counts what its process spent against its `--max-budget-usd`, so
/// the child suits when what it may still spend is that cap: not more (the CLI would
/// not stop the turn there), nor less (it would end the turn early). A child whose
/// spending is not known suits no bounded turn; an unbounded turn needs a child not held
/// to an earlier ask's budget.
pub(super) fn suits(child: &Running, cap: Option<Budget>) -> bool {
    match (cap, child.budget) {
        (None, None) => true,
        (None, Some(budget)) => budget.scope != BudgetScope::Ask,
        (Some(_), None) => false,
        (Some(cap), Some(budget)) => child.spent_usd.is_some_and(|spent| {
            let may_spend = budget.usd - spent;
            may_spend <= cap.usd + CAP_ABOVE && may_spend >= cap.usd - CAP_BELOW
        }),
    }
}
