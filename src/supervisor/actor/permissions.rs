//! Permission questions from the child: decided by the policy, or relayed to the turn's
//! client with a deadline; answered once, withdrawn when the agent or the ask gives up.

use super::*;
use crate::api::{AnswerBehavior, DecidedBy};
use crate::child::protocol::control_success;
use crate::permissions::{Asked, Decider, Decision, ElicitAction, Question, nobody_to_ask};

/// What the agent is told about a question its ask no longer waits for.
const CANCELLED: &str = "The ask was cancelled while this question was open.";

/// How a relayed question came back to the actor.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The client decided.
    Decided(Decision),
    /// Nobody answered within the deadline.
    Deadline,
    /// The surface could not ask (its client is gone or cannot answer).
    Unanswerable,
}

/// A relayed question's outcome, for the turn that asked it.
#[derive(Debug)]
pub(crate) struct Decided {
    pub(crate) turn_id: u64,
    pub(crate) request_id: String,
    pub(crate) outcome: Outcome,
}

impl Actor {
    /// A `can_use_tool` request: the policy decides at once, or the turn's client is asked.
    pub(super) fn on_permission_request(&mut self, request_id: &str, message: &ChildMessage) {
        let request = message.value().get("request").cloned().unwrap_or_default();
        self.on_question(Question::from_request(request_id, &request));
    }

    /// An `elicitation` request (an MCP server of the CLI asks the user): the turn's client
    /// is asked; with nobody to ask it is declined (no policy answers for a person).
    pub(super) fn on_elicitation_request(&mut self, request_id: &str, message: &ChildMessage) {
        let request = message.value().get("request").cloned().unwrap_or_default();
        self.on_question(Question::from_elicitation(request_id, &request));
    }

    fn on_question(&mut self, question: Question) {
        self.record.totals.permissions_requested += 1;
        let turn_id = self.state.turn().map(|t| t.id);
        self.events.record_detail(
            Level::Info,
            format!("the agent asks to {}", question.summary),
            &api::PermissionRequested {
                request_id: question.request_id.clone(),
                turn_id,
                tool_name: question.tool_name.clone(),
                input: question.input.clone(),
                reason: question.reason.clone(),
                blocked_path: question.blocked_path.clone(),
            },
        );
        let decider = self.config.permission_decider;
        match decider {
            Decider::Allow if !question.needs_a_person() => {
                let allow = Decision::Allow {
                    remember: false,
                    answers: serde_json::Map::new(),
                };
                self.answer(&question, allow, DecidedBy::Policy);
            }
            Decider::Relay if self.relay(&question) => {}
            _ => {
                let by = match decider {
                    Decider::Relay => DecidedBy::Fallback,
                    Decider::Deny | Decider::Allow => DecidedBy::Policy,
                };
                let message = nobody_to_ask(&question, decider);
                self.answer(&question, Decision::Deny { message }, by);
            }
        }
    }

    /// Hands `question` to the turn's client; false when nobody can be asked.
    fn relay(&mut self, question: &Question) -> bool {
        let deadline = Duration::from_millis(self.config.permission_timeout_ms);
        let decided = self.decided_tx.clone();
        let Some(turn) = self.state.turn_mut().filter(|t| t.reply.is_some()) else {
            return false;
        };
        let Some(asker) = &turn.asker else {
            return false;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let asked = Asked {
            question: question.clone(),
            reply,
        };
        if asker.try_send(asked).is_err() {
            return false;
        }
        turn.questions
            .insert(question.request_id.clone(), question.clone());
        let (turn_id, request_id) = (turn.id, question.request_id.clone());
        tokio::spawn(async move {
            let outcome = match tokio::time::timeout(deadline, answer).await {
                Ok(Ok(decision)) => Outcome::Decided(decision),
                Ok(Err(_)) => Outcome::Unanswerable,
                Err(_) => Outcome::Deadline,
            };
            let _ = decided.send(Decided {
                turn_id,
                request_id,
                outcome,
            });
        });
        true
    }

    /// A relayed question came back; a late one (its turn or question gone) is ignored.
    pub(super) fn on_decided(&mut self, decided: Decided) {
        let deadline_s = self.config.permission_timeout_ms as f64 / 1000.0;
        let decider = self.config.permission_decider;
        let Some(turn) = self.state.turn_mut().filter(|t| t.id == decided.turn_id) else {
            return;
        };
        let Some(question) = turn.questions.remove(&decided.request_id) else {
            return;
        };
        // The surface dropped the question because its ask was dropped (cancelled): say
        // so, whichever of the two news reached the actor first.
        let caller_gone = turn.reply.as_ref().is_none_or(|reply| reply.is_closed());
        if matches!(decided.outcome, Outcome::Unanswerable) && caller_gone {
            let message = CANCELLED.to_string();
            return self.answer(&question, Decision::Deny { message }, DecidedBy::Cancelled);
        }
        let (decision, by) = match decided.outcome {
            Outcome::Decided(decision) => (decision, DecidedBy::Client),
            Outcome::Deadline => {
                let message = format!(
                    "Permission to use {} was denied: nobody answered within {deadline_s} s.",
                    question.tool_name
                );
                (Decision::Deny { message }, DecidedBy::Deadline)
            }
            Outcome::Unanswerable => {
                let message = nobody_to_ask(&question, decider);
                (Decision::Deny { message }, DecidedBy::Fallback)
            }
        };
        self.answer(&question, decision, by);
    }

    /// The agent withdrew a question (`control_cancel_request`): no answer is owed.
    pub(super) fn on_cancel_request(&mut self, message: &ChildMessage) {
        let value = message.value();
        let Some(request_id) = value.get("request_id").and_then(Value::as_str) else {
            return;
        };
        let withdrawn = self
            .state
            .turn_mut()
            .and_then(|turn| turn.questions.remove(request_id));
        if let Some(question) = withdrawn {
            self.events.record_detail(
                Level::Info,
                format!("the agent withdrew its question to {}", question.summary),
                &api::PermissionDecided::Withdrawn(api::PermissionWithdrawn {
                    request_id: request_id.to_string(),
                    tool_name: question.tool_name,
                    decided_by: DecidedBy::Withdrawn,
                }),
            );
        }
    }

    /// Denies every open question of the turn: its ask was cancelled or timed out.
    pub(super) fn deny_open_questions(&mut self) {
        let Some(turn) = self.state.turn_mut() else {
            return;
        };
        let open: Vec<Question> = turn.questions.drain().map(|(_, q)| q).collect();
        for question in open {
            let message = CANCELLED.to_string();
            self.answer(&question, Decision::Deny { message }, DecidedBy::Cancelled);
        }
    }

    /// Writes the answer to the child and records who decided.
    fn answer(&mut self, question: &Question, decision: Decision, by: DecidedBy) {
        let response = question.response(&decision);
        if let Some(child) = self.state.child() {
            child.send(control_success(&question.request_id, response));
        }
        let (behavior, message) = match &decision {
            Decision::Allow { .. } => {
                self.record.totals.permissions_allowed += 1;
                (AnswerBehavior::Allow, None)
            }
            Decision::Deny { message } => {
                self.record.totals.permissions_denied += 1;
                (AnswerBehavior::Deny, Some(message.clone()))
            }
            Decision::Answered { action, .. } => {
                match action {
                    ElicitAction::Accept => self.record.totals.permissions_allowed += 1,
                    _ => self.record.totals.permissions_denied += 1,
                }
                let behavior = match action {
                    ElicitAction::Accept => AnswerBehavior::Accept,
                    ElicitAction::Decline => AnswerBehavior::Decline,
                    ElicitAction::Cancel => AnswerBehavior::Cancel,
                };
                (behavior, None)
            }
        };
        let remember = matches!(decision, Decision::Allow { remember: true, .. });
        self.events.record_detail(
            Level::Info,
            format!(
                "{}: {} (decided by {})",
                behavior.as_str(),
                question.summary,
                serde_json::to_value(by)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or("?")
            ),
            &api::PermissionDecided::Answered(api::PermissionAnswered {
                request_id: question.request_id.clone(),
                tool_name: question.tool_name.clone(),
                behavior,
                decided_by: by,
                remember,
                message,
            }),
        );
    }
}
