//! One turn: the ask being served, and how the child's `result` line becomes an answer.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc::OwnedPermit;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{AskError, AskRequest, NewTurn, TurnMessage, TurnSink};
use crate::api::{AskResult, Totals, TurnEnd, TurnEnded, TurnInfo};
use crate::child::protocol::ChildMessage;
use crate::clock::now_rfc3339;
use crate::permissions::{Asker, Question};
use crate::text::truncate_chars;

/// Characters of a prompt shown in `status` and events.
pub(super) const PREVIEW_CHARS: usize = 80;

/// The turn in flight.
pub(super) struct Turn {
    pub id: u64,
    pub prompt_preview: String,
    pub started: Instant,
    pub started_at: String,
    pub timeout: Duration,
    pub deadline: Instant,
    /// `None` once the caller has its answer (after a timeout or cancel).
    pub reply: Option<oneshot::Sender<Result<AskResult, AskError>>>,
    /// Where the turn's messages go.
    pub out: Stream,
    /// Who is asked this turn's permission questions (`None`: nobody can be).
    pub asker: Option<Asker>,
    /// Questions relayed and not yet decided, by the child's request id.
    pub questions: HashMap<String, Question>,
    /// Messages received in this turn (the next notification's seq is this plus one).
    pub messages: u64,
    /// Lines of this turn that were not usable JSON messages.
    pub skipped_lines: u64,
    /// Set when the turn was abandoned; the child is killed if no result comes by then.
    pub kill_at: Option<Instant>,
    /// Where the interrupt of an abandoned turn stands.
    pub interrupt: Interrupt,
    /// When the child last printed anything (keep_alive included), for the stall watchdog.
    pub last_output: Instant,
    /// Set while the child's output waits for the caller to take what it was given: the
    /// child is not silent then, so the stall watchdog does not count the time.
    pub held_back: bool,
    /// What the turn may spend, held against the budgets until it ends.
    pub reservation: Option<super::Reservation>,
    /// The caller wants the CLI's partial messages ([`is_partial`] lines).
    pub partial: bool,
    /// The turn's latest step in words (`tool use: Bash`), for `status` and `turn.step`.
    pub step: Option<String>,
}

/// Where a turn's messages go.
pub(super) enum Stream {
    /// To a caller that reads them; `permit` is a slot reserved for the next one.
    Open {
        tx: TurnSink,
        permit: Option<OwnedPermit<TurnMessage>>,
    },
    /// Nowhere: no stream was asked for, or the caller has its answer already.
    Off,
    /// The caller stopped reading (its receiver is gone): what follows is dropped, and
    /// counted in `notificationsDropped`.
    Gone,
}

/// Whether the actor may read the child's next line.
pub(super) enum Room {
    Ready,
    /// Not before this sender has room: the caller is behind, so the child waits.
    WaitFor(TurnSink),
}

/// The interrupt of an abandoned turn.
///
/// The CLI answers an interrupt that arrives before it has really started the turn (the
/// prompt still queued inside it) and then ignores it: the turn runs to its end, and a
/// long one got the child killed after the grace period. So an interrupt waits for the
/// turn's first line, and is sent again while no result follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interrupt {
    /// The turn was not abandoned.
    NotNeeded,
    /// Abandoned before the turn printed anything: sent with its first line.
    Deferred,
    /// Sent `count` times, last at `at`.
    Sent { at: Instant, count: u32 },
}

impl Turn {
    pub(super) fn begin(request: AskRequest) -> Turn {
        let now = Instant::now();
        let NewTurn {
            prompt,
            timeout,
            sink,
            asker,
            partial,
            ..
        } = request.turn;
        Turn {
            id: request.turn_id,
            prompt_preview: preview(&prompt),
            started: now,
            started_at: now_rfc3339(),
            timeout,
            deadline: now + timeout,
            reply: Some(request.reply),
            out: match sink {
                Some(tx) => Stream::Open { tx, permit: None },
                None => Stream::Off,
            },
            asker,
            questions: HashMap::new(),
            messages: 0,
            skipped_lines: 0,
            kill_at: None,
            interrupt: Interrupt::NotNeeded,
            last_output: now,
            held_back: false,
            reservation: None,
            partial,
            step: None,
        }
    }

    /// Streams one message to the caller; returns false when the caller did not get it
    /// (it is gone). The actor reads a line only once [`Turn::room`] said there is room
    /// for it, so a caller that reads never misses one.
    pub(super) fn stream(&mut self, message: ChildMessage) -> bool {
        self.messages += 1;
        let item = TurnMessage {
            seq: self.messages,
            message,
        };
        let Stream::Open { tx, permit } = &mut self.out else {
            return !matches!(self.out, Stream::Gone);
        };
        if let Some(permit) = permit.take() {
            permit.send(item);
            return true;
        }
        match tx.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Closed(_)) => {
                self.out = Stream::Gone;
                false
            }
            // Only a line read without asking for room lands here (the stop sequence's).
            Err(TrySendError::Full(_)) => {
                tracing::warn!(turn = self.id, "a turn message found no room; dropped");
                false
            }
        }
    }

    /// Whether the next line may be read: `Ready` when nothing waits for room (no
    /// stream, or a slot is reserved), else the sender whose room to wait for.
    pub(super) fn room(&mut self) -> Room {
        let Stream::Open { tx, permit } = &mut self.out else {
            return Room::Ready;
        };
        if permit.is_some() {
            return Room::Ready;
        }
        match tx.clone().try_reserve_owned() {
            Ok(reserved) => {
                *permit = Some(reserved);
                Room::Ready
            }
            Err(TrySendError::Full(tx)) => {
                self.held_back = true;
                Room::WaitFor(tx)
            }
            Err(TrySendError::Closed(_)) => {
                self.out = Stream::Gone;
                Room::Ready
            }
        }
    }

    /// The slot waited for with [`Room::WaitFor`]; `None` when the caller went away.
    pub(super) fn on_room(&mut self, reserved: Option<OwnedPermit<TurnMessage>>) {
        if let Stream::Open { permit, .. } = &mut self.out {
            match reserved {
                Some(reserved) => *permit = Some(reserved),
                None => self.out = Stream::Gone,
            }
        }
        // The child was not silent while it waited for the caller: its clock restarts.
        self.held_back = false;
        self.last_output = Instant::now();
    }

    /// The facts of this turn's end, for its event; the caller adds the result's.
    pub(super) fn ended(&self, ok: bool) -> TurnEnded {
        TurnEnded {
            end: Some(if ok {
                TurnEnd::Finished
            } else {
                TurnEnd::Failed
            }),
            turn_id: self.id,
            ok,
            subtype: None,
            terminal_reason: None,
            cost_usd: None,
            duration_ms: self.started.elapsed().as_millis() as u64,
            messages: self.messages,
            skipped_lines: self.skipped_lines,
            error: None,
        }
    }

    pub(super) fn info(&self) -> TurnInfo {
        TurnInfo {
            turn_id: self.id,
            started_at: self.started_at.clone(),
            elapsed_ms: 0,
            timeout_ms: self.timeout.as_millis() as u64,
            prompt_preview: self.prompt_preview.clone(),
            messages: self.messages,
            abandoned: self.reply.is_none(),
            step: self.step.clone(),
        }
    }
}

/// Whether `message` is one the CLI prints only with `--include-partial-messages`: a
/// `stream_event` (a piece of the API's stream), or the `system`/`status` line that says
/// an API call is being made. Only `status` lines are decoded, one per API call.
pub(super) fn is_partial(message: &ChildMessage) -> bool {
    match (message.kind.as_str(), message.subtype.as_deref()) {
        ("stream_event", _) => true,
        ("system", Some("status")) => {
            message.value().get("status").and_then(Value::as_str) == Some("requesting")
        }
        _ => false,
    }
}

/// The start of a prompt for `status` (and so `daemon-state.json`) and events, with the
/// environment's secrets masked first: masking after cutting would miss a secret cut in two.
pub(super) fn preview(prompt: &str) -> String {
    let masked = crate::redact::redact(prompt);
    truncate_chars(masked.replace(['\n', '\r'], " "), PREVIEW_CHARS)
}

/// Builds the answer from the child's `result` line.
///
/// `previous_total` is the CLI's running total for the session before this turn, so the
/// turn's own cost is the difference; when it is unknown (a session resumed from
/// elsewhere, whose total counts earlier processes) so is the turn's cost.
pub(super) fn ask_result(raw: Value, previous_total: Option<f64>, messages: u64) -> AskResult {
    let str_of = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_owned);
    let u64_of = |key: &str| raw.get(key).and_then(Value::as_u64);
    let is_error = raw
        .get("is_error")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let subtype = str_of("subtype");
    let session_cost = raw.get("total_cost_usd").and_then(Value::as_f64);
    let cost = match (session_cost, previous_total) {
        (Some(total), Some(prev)) if total >= prev => Some(total - prev),
        _ => None,
    };
    AskResult {
        ok: !is_error && subtype.as_deref() == Some("success"),
        result: str_of("result"),
        session_id: str_of("session_id"),
        // Filled in by the actor, which knows its session's name.
        session: String::new(),
        cost_usd: cost,
        session_cost_usd: session_cost,
        duration_ms: u64_of("duration_ms"),
        duration_api_ms: u64_of("duration_api_ms"),
        num_turns: u64_of("num_turns"),
        is_error,
        subtype,
        terminal_reason: str_of("terminal_reason"),
        stop_reason: str_of("stop_reason"),
        api_error_status: u64_of("api_error_status").and_then(|s| u16::try_from(s).ok()),
        errors: raw
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(error_text).collect())
            .unwrap_or_default(),
        usage: raw.get("usage").cloned().unwrap_or(Value::Null),
        permission_denials: raw
            .get("permission_denials")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        messages,
        raw,
    }
}

fn error_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Adds a finished turn to the running totals.
pub(super) fn account(totals: &mut Totals, result: &AskResult) {
    if result.ok {
        totals.turns_ok += 1;
    } else {
        totals.turns_failed += 1;
    }
    totals.cost_usd = crate::api::add_usd(totals.cost_usd, result.cost_usd.unwrap_or(0.0));
    let tokens = |key: &str| result.usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    totals.input_tokens += tokens("input_tokens");
    totals.output_tokens += tokens("output_tokens");
    totals.cache_creation_input_tokens += tokens("cache_creation_input_tokens");
    totals.cache_read_input_tokens += tokens("cache_read_input_tokens");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn result_fields_and_cost_difference() {
        let raw = json!({
            "type": "result", "subtype": "success", "is_error": false, "result": "hi",
            "session_id": "s1", "total_cost_usd": 0.00028, "duration_ms": 30,
            "num_turns": 1, "usage": {"input_tokens": 10, "output_tokens": 5},
            "permission_denials": [], "terminal_reason": "completed", "api_error_status": null,
            "new_field": 1
        });
        let r = ask_result(raw, Some(0.00014), 3);
        assert!(r.ok);
        assert_eq!(r.result.as_deref(), Some("hi"));
        assert!((r.cost_usd.unwrap() - 0.00014).abs() < 1e-12);
        assert_eq!(r.session_cost_usd, Some(0.00028));
        assert_eq!(r.raw["new_field"], 1);
        let mut totals = Totals::default();
        account(&mut totals, &r);
        assert_eq!(
            (totals.turns_ok, totals.input_tokens, totals.output_tokens),
            (1, 10, 5)
        );
    }

    #[test]
    fn a_turn_of_a_session_whose_earlier_total_is_unknown_has_an_unknown_cost() {
        // A resumed session's total counts earlier processes: without the total before
        // the turn, the turn's own cost is unknown, not the session's whole cost.
        let raw = json!({"subtype": "success", "is_error": false, "total_cost_usd": 2.40014});
        let unknown = ask_result(raw.clone(), None, 1);
        assert_eq!(unknown.cost_usd, None);
        assert_eq!(unknown.session_cost_usd, Some(2.40014));
        let known = ask_result(raw, Some(2.4), 1);
        assert!((known.cost_usd.unwrap() - 0.00014).abs() < 1e-9);
    }

    #[test]
    fn error_subtypes_are_not_ok() {
        let raw = json!({"type": "result", "subtype": "error_during_execution", "is_error": true,
            "errors": ["boom", {"x": 1}], "terminal_reason": "aborted_streaming"});
        let r = ask_result(raw, None, 0);
        assert!(!r.ok);
        assert_eq!(r.result, None);
        assert_eq!(r.errors, vec!["boom".to_string(), "{\"x\":1}".to_string()]);
        let api = ask_result(
            json!({"subtype": "success", "is_error": true, "api_error_status": 400}),
            None,
            0,
        );
        assert!(!api.ok);
        assert_eq!(api.api_error_status, Some(400));
    }
}
