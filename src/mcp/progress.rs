//! What a client sees while an `ask` runs.
//!
//! The child's stream-json messages arrive on the turn's sink. Meaningful ones (turn
//! started, assistant text, tool use, tool result, result) become
//! `notifications/progress` with a short message, when the request carried a
//! `progressToken`; clients that opted in also get every message raw as
//! `notifications/claude-coded/event`. Each notification is awaited until written, and
//! the tool's response waits for [`TurnReporter::forward`] to return, so nothing about
//! a turn is ever sent after its response.

use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::drain::OutputDrain;
use super::wire::RawEventRoute;
use crate::child::protocol::ChildMessage;
use crate::child::stderr::truncate_chars;
use crate::event_lines::EventLines;
use crate::supervisor::TurnMessage;

/// Method of the opt-in raw event notification.
pub const EVENT_METHOD: &str = "notifications/claude-coded/event";

/// Progress notifications allowed at once; a short turn fits in it whole.
const BURST: u32 = 8;
/// After the burst, one progress notification per this interval; steps in between are
/// folded into the next one (its `progress` still counts them).
const REFILL: Duration = Duration::from_millis(250);
/// Characters of assistant text quoted in a progress message.
const TEXT_PREVIEW: usize = 80;

/// Where one `ask`'s messages go.
pub(super) struct TurnReporter {
    pub peer: Peer<RoleServer>,
    /// The request's `progressToken`, if it sent one.
    pub progress_token: Option<ProgressToken>,
    /// Where raw events go, when the client opted in to them.
    pub raw_events: Option<RawEventRoute>,
    /// How the response waits until the client has read the last notification.
    pub drain: OutputDrain,
    /// The session the ask went to, named in raw events.
    pub session: String,
}

/// A progress step waiting for its turn to be sent.
struct Step {
    progress: u64,
    message: String,
}

impl TurnReporter {
    /// True when the client asked for neither progress nor raw events.
    pub(super) fn is_silent(&self) -> bool {
        self.progress_token.is_none() && self.raw_events.is_none()
    }

    /// Sends notifications for the turn's messages until the turn drops its sink, then
    /// waits until the client has read the last one (see [`OutputDrain`]).
    ///
    /// Raw events are lossless: written in batches straight to the outbox (not through
    /// rmcp), and this waits while the client is behind, which holds the child back.
    /// Progress is for people and rate-limited. Each batch of raw events is queued
    /// before the progress step that follows it, so the order on the wire is the turn's.
    pub(super) async fn forward(&self, mut messages: mpsc::Receiver<TurnMessage>) {
        let mut raw = self
            .raw_events
            .as_ref()
            .map(|route| route.lines(&self.session));
        let mut throttle = Throttle::new(Instant::now());
        let mut pending: Option<Step> = None;
        let mut sent_any = false;
        loop {
            let wake = throttle.next_token_at();
            tokio::select! {
                received = messages.recv() => {
                    let Some(item) = received else { break };
                    self.take(item, raw.as_mut(), &mut pending);
                    while raw.as_ref().is_some_and(|(lines, _)| lines.wants_more()) {
                        match messages.try_recv() {
                            Ok(item) => self.take(item, raw.as_mut(), &mut pending),
                            Err(_) => break,
                        }
                    }
                    sent_any |= send_raw(&mut raw).await;
                }
                () = tokio::time::sleep_until(wake), if pending.is_some() => {}
            }
            if pending.is_some() && throttle.try_take(Instant::now()) {
                sent_any |= self.send_progress(pending.take()).await;
            }
        }
        if let Some((lines, withdrawn)) = &mut raw
            && !withdrawn.load(Ordering::Acquire)
            && let Err(err) = lines.finish().await
        {
            tracing::debug!(%err, "cannot send raw event notifications");
        }
        // The last step, usually the result, is never held back.
        sent_any |= self.send_progress(pending.take()).await;
        if sent_any {
            self.drain.wait().await;
        }
    }

    /// One message: the progress step it makes (if any), and its raw event line.
    fn take(
        &self,
        item: TurnMessage,
        raw: Option<&mut (EventLines, Arc<AtomicBool>)>,
        pending: &mut Option<Step>,
    ) {
        if self.progress_token.is_some()
            && let Some(message) = describe_message(&item.message)
        {
            *pending = Some(Step {
                progress: item.seq,
                message,
            });
        }
        if let Some((lines, _)) = raw {
            lines.add(item);
        }
    }

    /// Returns whether a notification was sent.
    async fn send_progress(&self, step: Option<Step>) -> bool {
        let (Some(token), Some(step)) = (&self.progress_token, step) else {
            return false;
        };
        let param = ProgressNotificationParam::new(token.clone(), step.progress as f64)
            .with_message(step.message);
        match self.peer.notify_progress(param).await {
            Ok(()) => true,
            Err(err) => {
                tracing::debug!(%err, "cannot send a progress notification");
                false
            }
        }
    }
}

/// Hands the gathered raw events to the outbox; returns whether any were sent. Stops
/// for good once the client withdrew the request or is gone.
async fn send_raw(raw: &mut Option<(EventLines, Arc<AtomicBool>)>) -> bool {
    let Some((lines, withdrawn)) = raw else {
        return false;
    };
    if withdrawn.load(Ordering::Acquire) {
        *raw = None;
        return false;
    }
    match lines.send().await {
        Ok(()) => true,
        Err(err) => {
            tracing::debug!(%err, "cannot send raw event notifications");
            *raw = None;
            false
        }
    }
}

/// [`describe`] for a streamed message; decodes only the kinds that can say something.
pub(crate) fn describe_message(message: &ChildMessage) -> Option<String> {
    match (message.kind.as_str(), message.subtype.as_deref()) {
        ("system" | "assistant" | "user" | "result", _) => describe(&message.value()),
        _ => None,
    }
}

/// A short human message for a meaningful child message, `None` for the rest
/// (status lines, partial stream events, rate-limit notices, ...). `claude-coded ask`
/// shows the same steps on stderr.
pub(crate) fn describe(message: &Value) -> Option<String> {
    let text = |key: &str| message.get(key).and_then(Value::as_str);
    match (text("type").unwrap_or("unknown"), text("subtype")) {
        ("system", Some("init")) => {
            let model = message
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("unknown model");
            Some(format!("turn started ({model})"))
        }
        ("system", Some(subtype)) => describe_system(subtype, message),
        ("assistant", _) => join_blocks(message, describe_assistant_block),
        ("user", _) => join_blocks(message, describe_user_block),
        ("result", _) => Some(describe_result(message)),
        _ => None,
    }
}

/// `result: success`, or `result: failed (why)`: the CLI reports an API error as
/// subtype `success` with `is_error: true`, which must not read as a success.
fn describe_result(message: &Value) -> String {
    let text = |key: &str| message.get(key).and_then(Value::as_str);
    let subtype = text("subtype").unwrap_or("unknown");
    let is_error = message.get("is_error").and_then(Value::as_bool) == Some(true);
    if subtype == "success" && !is_error {
        return "result: success".to_string();
    }
    let why = match message.get("api_error_status").and_then(Value::as_u64) {
        Some(status) => format!("API error {status}"),
        None => text("terminal_reason")
            .filter(|reason| *reason != "completed")
            .unwrap_or(subtype)
            .to_string(),
    };
    format!("result: failed ({why})")
}

/// What the CLI says about itself while a turn runs: retries, compaction, denials.
/// `status` lines are noise except when they report compaction.
fn describe_system(subtype: &str, message: &Value) -> Option<String> {
    let text = |key: &str| message.get(key).and_then(Value::as_str);
    let number = |key: &str| message.get(key).and_then(Value::as_u64);
    match subtype {
        "api_retry" => {
            let status = number("error_status").map_or("an API error".to_string(), |code| {
                format!("API error {code}")
            });
            let attempt =
                number("attempt").map_or(String::new(), |a| match number("max_retries") {
                    Some(max) => format!(", attempt {a} of {max}"),
                    None => format!(", attempt {a}"),
                });
            let delay = number("retry_delay_ms").map_or(String::new(), |ms| {
                format!(" in {:.1} s", ms as f64 / 1000.0)
            });
            Some(format!("{status}: Claude Code retries{delay}{attempt}"))
        }
        "compact_boundary" => Some("conversation compacted to fit the context window".to_string()),
        "status" => match text("status")? {
            "compacting" => Some("compacting the conversation".to_string()),
            _ => None,
        },
        "permission_denied" => {
            let tool = text("tool_name").unwrap_or("a tool");
            let why = text("message").map(one_line_preview);
            Some(match why {
                Some(why) => format!("permission denied for {tool}: {why}"),
                None => format!("permission denied for {tool}"),
            })
        }
        // `init` opens every turn; the rest (hooks, tasks, ...) by name.
        "init" => None,
        other => Some(other.replace('_', " ")),
    }
}

fn join_blocks(message: &Value, describe_block: fn(&Value) -> Option<String>) -> Option<String> {
    let blocks = message
        .pointer("/message/content")
        .and_then(Value::as_array)?;
    let parts: Vec<String> = blocks.iter().filter_map(describe_block).collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn describe_assistant_block(block: &Value) -> Option<String> {
    match block.get("type").and_then(Value::as_str)? {
        "text" => {
            let text = block.get("text").and_then(Value::as_str)?;
            Some(format!("assistant: {}", one_line_preview(text)))
        }
        "tool_use" => {
            let name = block
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            Some(format!("tool use: {name}"))
        }
        "thinking" => Some("thinking".to_string()),
        _ => None,
    }
}

fn describe_user_block(block: &Value) -> Option<String> {
    match block.get("type").and_then(Value::as_str)? {
        "tool_result" => {
            let failed = block
                .get("is_error")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Some(
                if failed {
                    "tool result (error)"
                } else {
                    "tool result"
                }
                .to_string(),
            )
        }
        "text" => block
            .get("text")
            .and_then(Value::as_str)
            .map(one_line_preview),
        _ => None,
    }
}

fn one_line_preview(text: &str) -> String {
    truncate_chars(
        text.split_whitespace().collect::<Vec<_>>().join(" "),
        TEXT_PREVIEW,
    )
}

/// A token bucket: [`BURST`] notifications at once, then one per [`REFILL`].
struct Throttle {
    tokens: u32,
    refilled_at: Instant,
}

impl Throttle {
    fn new(now: Instant) -> Throttle {
        Throttle {
            tokens: BURST,
            refilled_at: now,
        }
    }

    fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    fn next_token_at(&self) -> Instant {
        self.refilled_at + REFILL
    }

    fn refill(&mut self, now: Instant) {
        let periods =
            now.saturating_duration_since(self.refilled_at).as_millis() / REFILL.as_millis();
        match u32::try_from(periods) {
            Ok(0) => {}
            Ok(periods) if periods < BURST => {
                self.tokens = (self.tokens + periods).min(BURST);
                self.refilled_at += REFILL * periods;
            }
            // A quiet spell refills the burst, and no more.
            _ => {
                self.tokens = BURST;
                self.refilled_at = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describes_the_meaningful_steps() {
        let init = json!({"type":"system","subtype":"init","model":"claude-opus-5-5"});
        assert_eq!(describe(&init).unwrap(), "turn started (claude-opus-5-5)");
        let text = json!({"type":"assistant","message":{"content":[{"type":"text","text":"hello\n  world"}]}});
        assert_eq!(describe(&text).unwrap(), "assistant: hello world");
        let tool = json!({"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{}}]}});
        assert_eq!(describe(&tool).unwrap(), "tool use: Bash");
        let result =
            json!({"type":"user","message":{"content":[{"type":"tool_result","is_error":true}]}});
        assert_eq!(describe(&result).unwrap(), "tool result (error)");
        let end = json!({"subtype":"success","type":"result"});
        assert_eq!(describe(&end).unwrap(), "result: success");
        let api_error = json!({"type":"result","subtype":"success","is_error":true,
            "api_error_status":400,"terminal_reason":"api_error"});
        assert_eq!(
            describe(&api_error).unwrap(),
            "result: failed (API error 400)"
        );
        let max_turns = json!({"type":"result","subtype":"error_max_turns","is_error":true});
        assert_eq!(
            describe(&max_turns).unwrap(),
            "result: failed (error_max_turns)"
        );
        assert!(describe(&json!({"type":"system","subtype":"status"})).is_none());
        let requesting = json!({"type":"system","subtype":"status","status":"requesting"});
        assert!(describe(&requesting).is_none());
        assert!(describe(&json!({"type":"stream_event"})).is_none());
    }

    #[test]
    fn what_the_cli_says_while_it_waits_is_progress_too() {
        let retry = json!({"type":"system","subtype":"api_retry","attempt":2,"max_retries":10,
            "retry_delay_ms":1234,"error_status":500});
        assert_eq!(
            describe(&retry).unwrap(),
            "API error 500: Claude Code retries in 1.2 s, attempt 2 of 10"
        );
        let bare = json!({"type":"system","subtype":"api_retry"});
        assert_eq!(
            describe(&bare).unwrap(),
            "an API error: Claude Code retries"
        );
        let compact = json!({"type":"system","subtype":"compact_boundary"});
        assert!(describe(&compact).unwrap().contains("compacted"));
        let compacting = json!({"type":"system","subtype":"status","status":"compacting"});
        assert_eq!(
            describe(&compacting).unwrap(),
            "compacting the conversation"
        );
        let denied = json!({"type":"system","subtype":"permission_denied","tool_name":"Bash",
            "message":"touch in '/p/x' needs approval."});
        assert_eq!(
            describe(&denied).unwrap(),
            "permission denied for Bash: touch in '/p/x' needs approval."
        );
        let hook = json!({"type":"system","subtype":"hook_started"});
        assert_eq!(describe(&hook).unwrap(), "hook started");
    }

    #[test]
    fn long_text_is_cut() {
        let long = "x".repeat(500);
        let text = json!({"type":"assistant","message":{"content":[{"type":"text","text":long}]}});
        assert!(describe(&text).unwrap().chars().count() < 100);
    }

    #[test]
    fn throttle_allows_a_burst_then_one_per_interval() {
        let start = Instant::now();
        let mut throttle = Throttle::new(start);
        for _ in 0..BURST {
            assert!(throttle.try_take(start));
        }
        assert!(!throttle.try_take(start));
        assert!(!throttle.try_take(start + REFILL / 2));
        assert!(throttle.try_take(start + REFILL));
        assert!(!throttle.try_take(start + REFILL));
        // A long pause refills the burst, no more.
        let later = start + REFILL * 100;
        for _ in 0..BURST {
            assert!(throttle.try_take(later));
        }
        assert!(!throttle.try_take(later));
    }
}
