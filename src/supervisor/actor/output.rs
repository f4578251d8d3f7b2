//! What the child prints: results, control messages, turn messages, garbage.

use super::*;

impl Actor {
    pub(super) fn on_line(&mut self, line: ChildLine) {
        match line {
            ChildLine::Result { message, value } => self.on_result(message, value),
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
            ChildLine::Message(message) => self.on_message(message),
            ChildLine::Untyped(value) => self.on_garbage(value.to_string()),
            ChildLine::NotJson(text) => self.on_garbage(text),
        }
    }

    pub(super) fn on_message(&mut self, message: ChildMessage) {
        if let Some(session) = &message.init_session {
            self.session = Some(session.clone());
        }
        if message.kind == "control_cancel_request" {
            self.on_cancel_request(&message);
        }
        let Some(turn) = self.state.turn_mut() else {
            let kind = &message.kind;
            self.events.record_detail(
                Level::Debug,
                format!("the child printed a {kind} message outside a turn"),
                &api::ChildOutputUnexpected {
                    message: message.value(),
                },
            );
            return;
        };
        let step = step_of(&message);
        // The child prints partial messages for the clients that watch the text come;
        // a turn that did not ask for them streams (and counts) what it did without.
        let wanted = turn.partial || !is_partial(&message);
        if wanted && !turn.stream(message) {
            self.record.totals.notifications_dropped += 1;
        }
        if let Some(step) = step {
            self.record_step(step);
        }
        self.turn_printed();
    }

    /// A step of the turn in flight: shown by `status` until the next, and recorded as a
    /// `turn.step` event (one per finished block or retry, never per piece of text).
    fn record_step(&mut self, step: String) {
        let Some(turn) = self.state.turn_mut() else {
            return;
        };
        turn.step = Some(step.clone());
        let turn_id = turn.id;
        self.events.record_detail(
            Level::Info,
            format!("turn {turn_id}: {step}"),
            &api::TurnStep { turn_id, step },
        );
    }

    pub(super) fn on_result(&mut self, message: ChildMessage, value: Value) {
        let Some(mut turn) = self.state.end_turn() else {
            self.events.record_detail(
                Level::Warn,
                "the child printed a result outside a turn",
                &api::ChildOutputUnexpected { message: value },
            );
            return;
        };
        if !turn.stream(message) {
            self.record.totals.notifications_dropped += 1;
        }
        let previous = self.last_total_cost;
        self.last_total_cost = value
            .get("total_cost_usd")
            .and_then(Value::as_f64)
            .or(previous);
        self.record.child.session_cost_usd = self.last_total_cost;
        let mut result = ask_result(value, previous, turn.messages);
        result.session = self.name.clone();
        if let Some(child) = self.state.child_mut() {
            child.turns_done += 1;
            child.spent_usd = child
                .spent_usd
                .zip(result.cost_usd)
                .map(|(spent, cost)| crate::api::add_usd(spent, cost));
        }
        // Returned after the next snapshot, which counts this turn's cost.
        self.settled.extend(turn.reservation.take());
        account(&mut self.record.totals, &result);
        self.record_turn_end(&turn, &result);
        if result.subtype.as_deref() == Some("error_max_budget_usd") {
            self.record_budget_end(&turn, &result);
        }
        if let Some(reply) = turn.reply.take() {
            let _ = reply.send(Ok(result));
        }
    }

    /// The CLI ended `turn` at its `--max-budget-usd`: the ask's own budget, or what was
    /// left of the session's or of all sessions'.
    fn record_budget_end(&self, turn: &Turn, result: &AskResult) {
        let budget = self.state.child().and_then(|c| c.budget);
        let whose = match budget.map(|b| b.scope) {
            Some(BudgetScope::Ask) => "the ask's budget",
            Some(BudgetScope::Session) => "what was left of the session's budget",
            Some(BudgetScope::AllSessions) => "what was left of the budget of all sessions",
            None => "its budget",
        };
        self.events.record_detail(
            Level::Warn,
            format!(
                "the CLI ended turn {} at {whose} ({})",
                turn.id,
                result.errors.join("; ")
            ),
            &api::BudgetExhausted::TurnEnded(api::BudgetTurnEnded {
                turn_id: turn.id,
                session: self.name.clone(),
                scope: budget.map(|b| b.scope),
                limit_usd: budget.map(|b| b.usd),
                cost_usd: result.cost_usd,
                session_cost_usd: result.session_cost_usd,
            }),
        );
    }

    pub(super) fn record_turn_end(&self, turn: &Turn, result: &AskResult) {
        let (level, end, verb) = match (turn.reply.is_some(), result.ok) {
            (false, _) => (
                Level::Info,
                TurnEnd::AbandonedFinished,
                "ended after its caller left",
            ),
            (true, true) => (Level::Info, TurnEnd::Finished, "finished"),
            (true, false) => (Level::Warn, TurnEnd::Failed, "failed"),
        };
        self.events.record_detail(
            level,
            format!(
                "turn {} {verb} in {} ms ({})",
                turn.id,
                turn.started.elapsed().as_millis(),
                outcome_label(result)
            ),
            &TurnEnded {
                end: Some(end),
                subtype: result.subtype.clone(),
                terminal_reason: result.terminal_reason.clone(),
                cost_usd: result.cost_usd,
                ..turn.ended(result.ok)
            },
        );
    }

    pub(super) fn on_control_response(&mut self, request_id: &str, outcome: Result<Value, String>) {
        let Some(child) = self.state.child_mut() else {
            return;
        };
        if request_id != child.init_request {
            self.events.record_detail(
                Level::Debug,
                format!("the child answered control request {request_id}"),
                &api::ChildControlResponse {
                    request_id: request_id.to_string(),
                    ok: outcome.is_ok(),
                },
            );
            return;
        }
        child.ready_at = Some(Instant::now());
        let startup_ms = child.started.elapsed().as_millis() as u64;
        let pid = child.pid;
        let info = &mut self.record.child;
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
                info.commands = Some(std::sync::Arc::new(commands_of(response)));
            }
            // The CLI is running and reading; a failed warm-up does not stop turns.
            Err(error) => info.last_error = Some(format!("initialize failed: {error}")),
        }
        self.events.record_detail(
            Level::Info,
            format!("the child (pid {pid}) is ready after {startup_ms} ms"),
            &api::ChildReady {
                pid,
                startup_ms,
                cli_version: info.cli_version.clone(),
                initialize_error: outcome.err(),
            },
        );
        // Only a starting child becomes ready; a repeated answer changes nothing.
        if let State::Starting { .. } = self.state
            && let (Some(child), _) = self.state.take(State::Idle)
        {
            self.state = State::Ready { child };
        }
    }

    /// Requests from the child: `can_use_tool` goes to the permission policy; any other
    /// is refused at once (a request left unanswered would hang the child forever).
    pub(super) fn on_control_request(
        &mut self,
        request_id: &str,
        subtype: &str,
        message: ChildMessage,
    ) {
        if subtype == "can_use_tool" || subtype == "elicitation" {
            match subtype {
                "elicitation" => self.on_elicitation_request(request_id, &message),
                _ => self.on_permission_request(request_id, &message),
            }
            if let Some(turn) = self.state.turn_mut() {
                if !turn.stream(message) {
                    self.record.totals.notifications_dropped += 1;
                }
                self.turn_printed();
            }
            return;
        }
        let error = format!("claude-coded does not answer {subtype} requests; refused");
        if let Some(child) = self.state.child() {
            child.send(control_error(request_id, &error));
        }
        self.events.record_detail(
            Level::Warn,
            format!("refused the child's {subtype} request"),
            &api::ChildControlRequest {
                request_id: request_id.to_string(),
                subtype: subtype.to_string(),
            },
        );
        if let Some(turn) = self.state.turn_mut() {
            if !turn.stream(message) {
                self.record.totals.notifications_dropped += 1;
            }
            self.turn_printed();
        }
    }

    /// A line that is not a typed JSON message: skipped, but recorded.
    pub(super) fn on_garbage(&mut self, text: String) {
        let len = text.len();
        if let Some(turn) = self.state.turn_mut() {
            turn.skipped_lines += 1;
        }
        self.events.record_detail(
            Level::Warn,
            format!("skipped a {len}-byte line from the child that is not a stream-json message"),
            &api::ChildOutputGarbage {
                length: len,
                preview: truncate_chars(text, 200),
            },
        );
    }

    pub(super) fn on_too_long(&mut self, len: usize) {
        let limit = self.config.max_child_line_bytes;
        self.events.record_detail(
            Level::Error,
            format!("the child printed a line of {len} bytes (limit {limit})"),
            &api::ChildOutputTooLarge { length: len, limit },
        );
        if self.state.turn().is_some() {
            self.abandon_turn(AskError::OutputTooLarge { len, limit });
            self.kill_child("it printed a line over the size limit");
        }
    }
}

/// `subtype`, plus the terminal reason when it says more: the CLI reports an API error
/// as subtype `success` with `is_error`, which alone would read as a contradiction.
fn outcome_label(result: &AskResult) -> String {
    let subtype = result.subtype.as_deref().unwrap_or("no subtype");
    match result.terminal_reason.as_deref() {
        Some(reason) if reason != subtype && !result.ok => format!("{subtype}, {reason}"),
        _ => subtype.to_string(),
    }
}

/// The step `message` says, for the ones worth a line of their own: a finished block of
/// the assistant (its text's start, a tool use) and what the CLI says of itself (retries,
/// compaction, denials). Tool results (which can be large) and partial messages are not
/// decoded; the `result` has its own event.
fn step_of(message: &ChildMessage) -> Option<String> {
    match (message.kind.as_str(), message.subtype.as_deref()) {
        ("assistant", _) => message.step().map(str::to_owned),
        ("system", Some("status")) if is_partial(message) => None,
        ("system", Some(subtype)) if subtype != "init" => message.step().map(str::to_owned),
        _ => None,
    }
}

/// The slash commands a warm-up answer lists (`commands`: name, description, argument hint).
fn commands_of(response: &Value) -> Vec<api::CliCommand> {
    let text = |command: &Value, key: &str| {
        command
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    response
        .get("commands")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|command| command.get("name").and_then(Value::as_str).is_some())
        .map(|command| api::CliCommand {
            name: text(command, "name"),
            description: text(command, "description"),
            argument_hint: text(command, "argumentHint"),
        })
        .collect()
}
