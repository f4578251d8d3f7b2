//! Commands from the handles: asks, cancels, restarts.

use super::*;

impl Actor {
    pub(super) fn on_control(&mut self, command: Control) {
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

    pub(super) fn on_ask(&mut self, mut request: AskRequest) {
        self.record.totals.asks += 1;
        if self.state.is_stopping() {
            return self.refuse(request, AskError::Stopping);
        }
        if self.queue.len() >= self.config.queue_size {
            let error = AskError::QueueFull {
                waiting: self.queue.len(),
                capacity: self.config.queue_size,
            };
            return self.refuse(request, error);
        }
        if !self.nesting.may_start_child() {
            let error = AskError::NestingLimit {
                depth: self.nesting.depth,
                limit: self.nesting.limit,
                reason: self.nesting.refusal(),
            };
            return self.refuse(request, error);
        }
        let ask_budget = request.turn.max_budget_usd;
        match self.state {
            // A nested server starts its child on the first ask.
            State::Idle => self.spawn_child_for(ask_budget),
            State::Failed { .. } => {
                // Maybe the user fixed the cause (installed the CLI): try once more now.
                self.spawn_child_for(ask_budget);
            }
            State::Backoff {
                start_failed: true, ..
            } => {
                // The last start failed: say so now instead of holding the ask for the
                // restart, which goes on in the background.
                return self.refuse(request, self.start_failure());
            }
            _ => {}
        }
        if matches!(self.state, State::Failed { .. }) {
            return self.refuse(request, self.start_failure());
        }
        self.events.record_detail(
            Level::Debug,
            format!("ask {} queued", request.turn_id),
            &api::TurnQueued {
                turn_id: request.turn_id,
                waiting: self.queue.len(),
            },
        );
        if let Some(admitted) = request.admitted.take() {
            let _ = admitted.send(());
        }
        self.queue.push_back(request);
    }

    pub(super) fn on_cancel(&mut self, turn_id: u64) {
        if let Some(pos) = self.queue.iter().position(|r| r.turn_id == turn_id) {
            if let Some(request) = self.queue.remove(pos) {
                self.record_cancel(turn_id, "removed from the queue");
                let _ = request.reply.send(Err(AskError::Cancelled));
            }
            return;
        }
        let running = self.state.turn().is_some_and(|t| t.id == turn_id);
        if running {
            self.record_cancel(turn_id, "interrupting the running turn");
            self.abandon_turn(AskError::Cancelled);
        }
    }

    pub(super) fn on_restart(&mut self) -> RestartOutcome {
        self.crashes.clear();
        if self.state.is_stopping() {
            return RestartOutcome { killed_pid: None };
        }
        let killed_pid = self.state.child().map(|c| c.pid);
        self.events.record_detail(
            Level::Info,
            "restart requested",
            &api::ChildRestartRequested { pid: killed_pid },
        );
        match killed_pid {
            // The exit path restarts it at once (a deliberate kill is not a failure).
            Some(_) => self.kill_child("restart requested"),
            None => {
                self.record.child.restart_count += 1;
                self.spawn_child();
            }
        }
        RestartOutcome { killed_pid }
    }

    pub(super) fn record_cancel(&self, turn_id: u64, what: &str) {
        self.events.record_detail(
            Level::Info,
            format!("ask {turn_id} cancelled by the caller: {what}"),
            &api::TurnCancelled { turn_id },
        );
    }

    pub(super) fn refuse(&mut self, request: AskRequest, error: AskError) {
        self.record.totals.asks_errored += 1;
        self.events.record_detail(
            Level::Warn,
            format!("ask {} rejected: {error}", request.turn_id),
            &api::TurnRejected::Refused(api::AskRefused {
                turn_id: request.turn_id,
            }),
        );
        let _ = request.reply.send(Err(error));
    }
}
