//! Turns: dispatch from the FIFO, abandoning and failing them, and the timers that watch them.

use super::*;
use crate::child::protocol::control_request_with;
use crate::permissions::PermissionMode;
use crate::supervisor::turn::{Interrupt, Stream};

/// An interrupted turn ends within tens of milliseconds (the real CLI: 30-100 ms); with
/// no result this long after an interrupt (or a third of a shorter grace period, so a
/// repeat still comes before the kill), it was not heeded and is sent again.
const INTERRUPT_AGAIN_AFTER: Duration = Duration::from_millis(500);

impl Actor {
    /// Starts the next waiting ask when the child is ready and idle.
    ///
    /// Each turn starts under a reservation made then (see [`BudgetSource::reserve`]), in a
    /// child whose CLI may spend just that: one that may spend more (or much less) is
    /// replaced first. An ask the budgets leave nothing for is refused at once.
    pub(super) fn dispatch(&mut self) {
        while matches!(self.state, State::Ready { .. }) {
            let Some(request) = self.queue.pop_front() else {
                return;
            };
            if request.reply.is_closed() {
                continue;
            }
            let reservation = match self.budget.reserve(request.turn.max_budget_usd) {
                Ok(reservation) => reservation,
                Err(error) => {
                    self.refuse(request, error);
                    continue;
                }
            };
            let State::Ready { child } = &mut self.state else {
                self.queue.push_front(request);
                return;
            };
            let cap = reservation.as_ref().map(|r| r.budget);
            if !lifecycle::suits(child, cap) {
                let turn_id = request.turn_id;
                self.queue.push_front(request);
                // The reservation goes back now; the next child's turn makes its own.
                drop(reservation);
                return self.replace_child(turn_id, cap);
            }
            // The ask's mode and model, or the configured ones again after an ask that
            // changed them; the CLI applies both from its next turn on.
            let mode = request.turn.mode.or(self.config.permission_mode);
            let model = request
                .turn
                .model
                .clone()
                .or_else(|| self.config.model.clone());
            switch_settings(child, request.turn_id, mode, model);
            if !child.send(user_message(&request.turn.prompt)) {
                self.queue.push_front(request);
                return;
            }
            let mut turn = Turn::begin(request);
            turn.reservation = reservation;
            self.events.record_detail(
                Level::Info,
                format!("turn {} started: {}", turn.id, turn.prompt_preview),
                &api::TurnStarted {
                    turn_id: turn.id,
                    timeout_ms: turn.timeout.as_millis() as u64,
                    prompt_preview: turn.prompt_preview.clone(),
                },
            );
            if let (Some(child), _) = self.state.take(State::Idle) {
                self.state = State::Busy { child, turn };
            }
        }
    }

    /// Answers the caller now with `error` and interrupts the child; the turn stays in
    /// flight (no new turn starts) until its result arrives or the child is killed.
    pub(super) fn abandon_turn(&mut self, error: AskError) {
        // Its questions are moot: the agent is told so before it is interrupted.
        self.deny_open_questions();
        let grace = self.interrupt_grace();
        let Some(turn) = self.state.turn_mut() else {
            return;
        };
        if let Some(reply) = turn.reply.take() {
            self.record.totals.asks_errored += 1;
            let _ = reply.send(Err(error));
        }
        // Closing the stream lets the caller's side finish now, not when the child does.
        turn.out = Stream::Off;
        turn.asker = None;
        if turn.kill_at.is_none() {
            turn.kill_at = Some(Instant::now() + grace);
            // Nothing printed yet: the CLI may not have started the turn, and would
            // acknowledge an interrupt now and then ignore it (see `Interrupt`).
            match turn.messages {
                0 => turn.interrupt = Interrupt::Deferred,
                _ => self.send_interrupt(),
            }
        }
    }

    fn interrupt_grace(&self) -> Duration {
        Duration::from_millis(self.config.interrupt_grace_ms)
    }

    /// How long an interrupt may go without a result before it is sent again.
    fn interrupt_again_after(&self) -> Duration {
        INTERRUPT_AGAIN_AFTER.min(self.interrupt_grace() / 3)
    }

    /// Sends the running turn's child an interrupt (again, if one went unheeded).
    fn send_interrupt(&mut self) {
        let grace = self.interrupt_grace();
        let Some(turn) = self.state.turn_mut() else {
            return;
        };
        let now = Instant::now();
        let count = match turn.interrupt {
            Interrupt::Sent { count, .. } => count + 1,
            Interrupt::NotNeeded | Interrupt::Deferred => {
                // The grace period runs from the interrupt the turn can act on.
                turn.kill_at = turn.kill_at.max(Some(now + grace));
                1
            }
        };
        turn.interrupt = Interrupt::Sent { at: now, count };
        let id = format!("interrupt-{}-{count}", turn.id);
        if let Some(child) = self.state.child() {
            child.send(control_request(&id, "interrupt"));
        }
    }

    /// The turn printed a line: it has really started, so a deferred interrupt goes now.
    pub(super) fn turn_printed(&mut self) {
        if self
            .state
            .turn()
            .is_some_and(|t| t.interrupt == Interrupt::Deferred)
        {
            self.send_interrupt();
        }
    }

    /// Fails `turn`, taken from the state by the caller (its child is gone).
    pub(super) fn finish_turn_with_error(&mut self, turn: Option<Turn>, error: AskError) {
        if let Some(mut turn) = turn {
            self.events.record_detail(
                Level::Error,
                format!("turn {} failed: {error}", turn.id),
                &TurnEnded {
                    error: Some(error.to_string()),
                    ..turn.ended(false)
                },
            );
            if let Some(reply) = turn.reply.take() {
                self.record.totals.asks_errored += 1;
                let _ = reply.send(Err(error));
            }
        }
    }

    pub(super) fn fail_all_waiting(&mut self, error: AskError) {
        for request in std::mem::take(&mut self.queue) {
            self.record.totals.asks_errored += 1;
            let _ = request.reply.send(Err(error.clone()));
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let again = self.interrupt_again_after();
        let turn = self.state.turn().map(|t| match (t.kill_at, t.interrupt) {
            (Some(kill), Interrupt::Sent { at, .. }) => kill.min(at + again),
            (Some(kill), _) => kill,
            (None, _) => self
                .stall_deadline(t)
                .map_or(t.deadline, |stall| stall.min(t.deadline)),
        });
        let restart = match &self.state {
            State::Backoff { until, .. } => Some(*until),
            State::Replacing { kill_at, .. } => Some(*kill_at),
            _ => None,
        };
        let linger = self.state.child().and_then(|c| c.linger_until);
        [restart, linger, turn].into_iter().flatten().min()
    }

    /// When the stall watchdog fires for `turn` (never when it is off).
    pub(super) fn stall_deadline(&self, turn: &Turn) -> Option<Instant> {
        match self.config.stall_timeout_ms {
            _ if turn.held_back => None,
            0 => None,
            ms => Some(turn.last_output + Duration::from_millis(ms)),
        }
    }

    pub(super) fn on_timer(&mut self) {
        let now = Instant::now();
        if matches!(self.state, State::Backoff { until, .. } if until <= now) {
            self.record.child.restart_count += 1;
            self.spawn_child();
        }
        if let State::Replacing { kill_at, .. } = &mut self.state
            && *kill_at <= now
        {
            // Once: its exit follows the signal.
            *kill_at = far_future();
            self.kill_child("it did not exit within the stop grace period after its stdin closed");
        }
        let child = self.state.child_mut();
        if let Some(child) = child.filter(|c| c.linger_until.is_some_and(|at| at <= now)) {
            child.linger_until = None;
            self.kill_child("its stdout closed but it kept running");
        }
        let Some(turn) = self.state.turn() else {
            return;
        };
        let unheeded = match turn.interrupt {
            Interrupt::Sent { at, .. } => at + self.interrupt_again_after() <= now,
            Interrupt::NotNeeded | Interrupt::Deferred => false,
        };
        if turn.kill_at.is_some_and(|at| at <= now) {
            self.kill_child("no result within the interrupt grace period");
        } else if unheeded {
            // Still no result: the CLI may have taken the interrupt before the turn was
            // really under way. Only this turn can be running, so another is harmless.
            self.send_interrupt();
        } else if turn.kill_at.is_none() && self.stall_deadline(turn).is_some_and(|at| at <= now) {
            let silent_ms = turn.last_output.elapsed().as_millis() as u64;
            self.events.record_detail(
                Level::Warn,
                format!(
                    "turn {} stalled: no output for {silent_ms} ms; interrupting",
                    turn.id
                ),
                &api::TurnStalled {
                    turn_id: turn.id,
                    silent_ms,
                },
            );
            self.abandon_turn(AskError::Stalled { silent_ms });
        } else if turn.kill_at.is_none() && turn.deadline <= now {
            let after_ms = turn.timeout.as_millis() as u64;
            self.events.record_detail(
                Level::Warn,
                format!(
                    "turn {} timed out after {after_ms} ms; interrupting",
                    turn.id
                ),
                &api::TurnTimedOut {
                    turn_id: turn.id,
                    timeout_ms: after_ms,
                },
            );
            self.abandon_turn(AskError::Timeout { after_ms });
        }
    }
}

/// Sends `set_permission_mode` and `set_model` when the turn needs other ones than the
/// child runs with.
fn switch_settings(
    child: &mut Running,
    turn_id: u64,
    mode: Option<PermissionMode>,
    model: Option<String>,
) {
    let effective = |m: Option<PermissionMode>| m.unwrap_or(PermissionMode::Default);
    if effective(mode) != effective(child.mode) {
        let mode_name = effective(mode).as_str();
        let id = format!("mode-{turn_id}");
        child.send(control_request_with(
            &id,
            "set_permission_mode",
            json!({ "mode": mode_name }),
        ));
        child.mode = mode;
    }
    if model != child.model {
        let id = format!("model-{turn_id}");
        // No model: back to the CLI's default one.
        let fields = model
            .as_ref()
            .map_or_else(|| json!({}), |m| json!({ "model": m }));
        child.send(control_request_with(&id, "set_model", fields));
        child.model = model;
    }
}
