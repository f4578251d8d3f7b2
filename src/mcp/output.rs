//! What the calling model reads: each tool's structured result, compact and answer-first.
//!
//! Hosts differ in what they hand their model. Claude Code gives it
//! `JSON.stringify(structuredContent)` on success (the text blocks only on errors); other
//! hosts drop `structuredContent` and read the text. So both carry the same facts, and
//! the structured form is written for a model to read: the answer first, no second copy of
//! it, no raw CLI line (clients that want every child message opt in to raw events),
//! absent fields left out rather than `null`, costs rounded. The plain surface keeps the
//! complete `api` types; `status` and `events` give them here too when asked (`full`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{AskResult, ChildStatus, Event, EventsParams, EventsResult, Level, StatusResult};
use crate::nesting::Nesting;
use crate::text::truncate_chars;

/// Characters of a prompt quoted in a status.
const PROMPT_CHARS: usize = 60;
/// Characters of an event message in the compact listing.
const EVENT_MESSAGE_CHARS: usize = 72;
/// Characters of a denied tool's input summary.
const DENIAL_INPUT_CHARS: usize = 120;
/// Stderr lines quoted when the child cannot start.
const STDERR_LINES: usize = 3;

/// Arguments of the `status` tool.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusToolParams {
    /// Add the complete status (child process, queue, counters, configuration, client).
    #[serde(default)]
    pub full: bool,
}

/// Arguments of the `sessions` tool.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionsToolParams {
    /// Stop this session's agent first (its conversation stays, and its next ask
    /// continues it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<String>,
}

/// Arguments of the `events` tool.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventsToolParams {
    /// Only events with `seq` greater than this (pass the previous answer's `nextSeq - 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// At most this many events (1 to 1000, default 100), the oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
    /// Only events at this level or above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Only events of this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Add the complete events, with their structured details.
    #[serde(default)]
    pub full: bool,
}

impl EventsToolParams {
    /// The core's query.
    pub fn query(&self) -> EventsParams {
        EventsParams {
            since: self.since,
            limit: self.limit,
            level: self.level,
            session: self.session.clone(),
            wait_ms: None,
        }
    }
}

/// `structuredContent` of `ask`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AskReply {
    /// The agent's final answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// False when the turn failed; `error` says why.
    pub ok: bool,
    /// Why the turn failed, in one line (only when `ok` is false): `API error 400: ...` when
    /// the API refused, else what the agent ran into. Every surface uses these words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The Claude Code session: follow-up asks continue it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// What this turn cost in USD, rounded to 4 decimals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Wall time of the turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Model calls the agent made in this turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_turns: Option<u64>,
    /// Tool uses the configured permission mode refused (the agent could not do them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permission_denials: Vec<Denial>,
    /// For `background: true`: the handle to pass to `wait` or `cancel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_id: Option<String>,
    /// For `background: true`: the turn runs on; collect it with `wait`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    /// What to do next, when there is something to do (`background: true`: call `wait`).
    /// In the structured form too: some hosts' models read only this form (Codex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `structuredContent` of `wait`: where a background turn stands, or its answer.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitReply {
    /// The agent's reply once the turn ended, as `ask` gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<AskReply>,
    /// True while the turn runs: call `wait` again (or `cancel`).
    pub running: bool,
    pub turn_id: String,
    pub session: String,
    /// Since the ask was made.
    pub elapsed_ms: u64,
    /// The turn's latest step (`tool use: Bash`, `assistant: ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Messages the agent printed so far.
    pub messages: u64,
    /// What to do next while the turn runs (call `wait` again, or `cancel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One refused tool use.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Denial {
    pub tool: String,
    /// The command, file or input it wanted, shortened.
    pub input: String,
}

impl AskReply {
    pub fn from_result(result: &AskResult) -> AskReply {
        AskReply {
            // A failed turn's `result` is the CLI's echo of its error: `error` says it once.
            result: result.result.clone().filter(|r| !r.is_empty() && result.ok),
            ok: result.ok,
            error: (!result.ok).then(|| result.failure_reason()),
            session_id: result.session_id.clone(),
            cost_usd: result.cost_usd.map(round_cost),
            duration_ms: result.duration_ms,
            num_turns: result.num_turns,
            permission_denials: result.permission_denials.iter().map(denial).collect(),
            turn_id: None,
            running: None,
            next: None,
        }
    }
}

/// A CLI `permission_denials` entry, shortened for a model to read.
fn denial(entry: &Value) -> Denial {
    let tool = entry
        .get("tool_name")
        .and_then(Value::as_str)
        .unwrap_or("unknown tool")
        .to_string();
    let input = entry.get("tool_input").unwrap_or(&Value::Null);
    let summary = ["command", "file_path", "path", "url", "pattern"]
        .iter()
        .find_map(|key| input.get(key).and_then(Value::as_str))
        .map_or_else(|| input.to_string(), str::to_string);
    Denial {
        tool,
        input: truncate_chars(summary, DENIAL_INPUT_CHARS),
    }
}

/// Costs to 4 decimals: the model needs cents, not float noise.
fn round_cost(usd: f64) -> f64 {
    (usd * 10_000.0).round() / 10_000.0
}

/// `structuredContent` of `status`: what a model needs to decide what to do next.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// The agent process: `ready`, `busy`, `starting`, `backoff`, `failed`, `idle`, ...
    pub state: ChildStatus,
    /// When `state` last changed.
    pub since: String,
    /// The Claude Code session asks continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The turn in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<TurnBrief>,
    /// Asks waiting behind the turn.
    pub queued: usize,
    /// The last problem, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The child's last stderr lines, while it cannot start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stderr_tail: Vec<String>,
    pub restarts: u64,
    pub totals: TotalsBrief,
    /// The named sessions (the fields above are the `default` session's).
    pub sessions: SessionsBrief,
    /// Where and how the agent works.
    pub agent: AgentBrief,
    /// Set when this server runs inside another claude-coded's agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nesting: Option<Nesting>,
    /// Everything, with `full: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<Box<StatusResult>>,
}

/// The turn in flight, briefly.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnBrief {
    pub elapsed_ms: u64,
    pub timeout_ms: u64,
    /// The start of its prompt.
    pub prompt: String,
}

/// Totals since the server started.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotalsBrief {
    pub asks: u64,
    pub ok: u64,
    /// Turns the agent reported as failed.
    pub failed: u64,
    /// Asks that ended in an error (timeout, crash, busy, ...).
    pub errors: u64,
    pub cost_usd: f64,
}

/// The named sessions, briefly (the `sessions` tool lists them).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionsBrief {
    /// Sessions known, with a running CLI or stopped.
    pub total: usize,
    /// Sessions whose CLI runs.
    pub live: usize,
    /// How many may run at once (`--max-sessions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// Sessions running a turn or with asks waiting, by name.
    pub busy: Vec<String>,
}

impl SessionsBrief {
    fn of(status: &StatusResult) -> SessionsBrief {
        let sessions = &status.sessions;
        SessionsBrief {
            total: sessions.len(),
            live: sessions
                .iter()
                .filter(|s| s.state != ChildStatus::Stopped)
                .count(),
            max: Some(status.config.max_sessions as u64),
            busy: sessions
                .iter()
                .filter(|s| s.busy || s.queue > 0)
                .map(|s| s.name.clone())
                .collect(),
        }
    }

    /// One line: `sessions: 2 live of 3 (at most 4); busy: a, b`.
    pub(crate) fn line(&self) -> String {
        let max = self
            .max
            .map_or(String::new(), |max| format!(" (at most {max} at once)"));
        let busy = match self.busy.is_empty() {
            true => "none".to_string(),
            false => self.busy.join(", "),
        };
        format!(
            "sessions: {} live of {}{max}; busy: {busy}",
            self.live, self.total
        )
    }
}

/// The agent's setup.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentBrief {
    pub cwd: String,
    /// The CLI's permission mode (`default` when unset).
    pub permission_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli_version: Option<String>,
}

impl StatusReport {
    pub fn from_status(status: &StatusResult, nesting: Nesting, full: bool) -> StatusReport {
        let child = &status.child;
        let unhealthy = matches!(child.status, ChildStatus::Backoff | ChildStatus::Failed);
        let tail_from = child.stderr_tail.len().saturating_sub(STDERR_LINES);
        StatusReport {
            state: child.status,
            since: child.status_since.clone(),
            session_id: child.session_id.clone(),
            turn: status.turn.as_ref().map(|t| TurnBrief {
                elapsed_ms: t.elapsed_ms,
                timeout_ms: t.timeout_ms,
                prompt: truncate_chars(t.prompt_preview.clone(), PROMPT_CHARS),
            }),
            queued: status.queue.length,
            last_error: child.last_error.clone(),
            stderr_tail: match unhealthy {
                true => child.stderr_tail[tail_from..].to_vec(),
                false => Vec::new(),
            },
            restarts: child.restart_count,
            totals: TotalsBrief {
                asks: status.totals.asks,
                ok: status.totals.turns_ok,
                failed: status.totals.turns_failed,
                errors: status.totals.asks_errored,
                cost_usd: round_cost(status.totals.cost_usd),
            },
            sessions: SessionsBrief::of(status),
            agent: AgentBrief {
                cwd: status.config.cwd.display().to_string(),
                permission_mode: status
                    .config
                    .permission_mode
                    .map_or("default", crate::permissions::PermissionMode::as_str)
                    .to_string(),
                model: status.config.model.clone(),
                cli_version: child.cli_version.clone(),
            },
            nesting: nesting.is_nested().then_some(nesting),
            full: full.then(|| Box::new(status.clone())),
        }
    }
}

/// `structuredContent` of `events`: one short line per event.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventsPage {
    /// Oldest first: `#seq HH:MM:SS [warn|error] type: message`.
    pub events: Vec<String>,
    /// Pass `since: nextSeq - 1` next time for newer events only.
    pub next_seq: u64,
    /// True when `limit` left out more matching events.
    pub truncated: bool,
    /// The complete events (with `detail`), with `full: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<Vec<Event>>,
}

impl EventsPage {
    pub fn from_result(page: &EventsResult, full: bool) -> EventsPage {
        EventsPage {
            events: page.events.iter().map(event_line).collect(),
            next_seq: page.next_seq,
            truncated: page.truncated,
            full: full.then(|| page.events.clone()),
        }
    }
}

/// `#12 09:49:12 turn.started: turn 3 started: ...`; the level only when it matters.
pub fn event_line(event: &Event) -> String {
    // `2026-11-30T09:49:12.123Z`: the time of day is what a reader compares.
    let time = event.created_at.get(11..19).unwrap_or(&event.created_at);
    let level = match event.level {
        Level::Warn | Level::Error => format!(" {}", event.level.as_str()),
        Level::Debug | Level::Info => String::new(),
    };
    let message = truncate_chars(event.message.clone(), EVENT_MESSAGE_CHARS);
    format!("#{} {time}{level} {}: {message}", event.seq, event.kind)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// A turn's result as the core gives it (with a refused `touch`), for this module's
    /// tests and `render`'s.
    pub(in crate::mcp) fn result(ok: bool, text: Option<&str>) -> AskResult {
        AskResult {
            ok,
            result: text.map(str::to_owned),
            session_id: Some("s-1".into()),
            session: "default".into(),
            cost_usd: Some(0.012_345_678),
            session_cost_usd: Some(0.5),
            duration_ms: Some(1200),
            duration_api_ms: Some(1000),
            num_turns: Some(2),
            is_error: !ok,
            subtype: Some(
                if ok {
                    "success"
                } else {
                    "error_during_execution"
                }
                .into(),
            ),
            terminal_reason: Some(if ok { "completed" } else { "api_error" }.into()),
            stop_reason: None,
            api_error_status: (!ok).then_some(500),
            errors: if ok { vec![] } else { vec!["boom".into()] },
            usage: json!({"input_tokens": 5}),
            permission_denials: vec![json!({"tool_name": "Bash", "tool_use_id": "t1",
                "tool_input": {"command": "touch created.txt", "description": "make a file"}})],
            messages: 4,
            raw: json!({"result": text}),
        }
    }

    #[test]
    fn an_answer_comes_first_once_and_without_the_raw_line() {
        let reply = AskReply::from_result(&result(true, Some("the answer")));
        let text = serde_json::to_string(&reply).unwrap();
        assert!(
            text.starts_with(r#"{"result":"the answer","ok":true,"#),
            "{text}"
        );
        assert_eq!(text.matches("the answer").count(), 1, "{text}");
        assert!(!text.contains("null"), "{text}");
        assert!(!text.contains("raw"), "{text}");
        assert_eq!(reply.cost_usd, Some(0.0123));
        assert_eq!(
            reply.permission_denials,
            vec![Denial {
                tool: "Bash".into(),
                input: "touch created.txt".into()
            }]
        );
    }

    #[test]
    fn a_failed_turn_says_why() {
        let reply = AskReply::from_result(&result(false, None));
        assert_eq!(reply.error.as_deref(), Some("API error 500: boom"));
        let mut limited = result(false, None);
        limited.api_error_status = None;
        limited.subtype = Some("error_max_turns".into());
        limited.terminal_reason = Some("max_turns".into());
        limited.errors = vec!["Reached   maximum\nnumber of turns".into()];
        assert_eq!(
            AskReply::from_result(&limited).error.as_deref(),
            Some(
                "the agent reached its limit of model calls (max_turns): Reached maximum number of turns"
            )
        );
    }

    #[test]
    fn an_event_line_is_short_and_names_only_bad_levels() {
        let mut event = Event {
            seq: 12,
            created_at: "2026-11-30T09:49:12.123Z".into(),
            level: Level::Info,
            kind: crate::api::EventKind::TurnStarted,
            message: "x".repeat(500),
            detail: json!({"turnId": 3}),
            session: None,
        };
        let line = event_line(&event);
        assert!(line.starts_with("#12 09:49:12 turn.started: xxx"), "{line}");
        assert!(line.len() <= 120, "{} bytes", line.len());
        event.level = Level::Error;
        event.message = "bad".into();
        assert_eq!(event_line(&event), "#12 09:49:12 error turn.started: bad");
    }

    #[test]
    fn the_sessions_line_names_the_busy_ones_and_the_limit() {
        let brief = SessionsBrief {
            total: 5,
            live: 3,
            max: Some(4),
            busy: vec!["reviewer".into(), "worker-a".into()],
        };
        assert_eq!(
            brief.line(),
            "sessions: 3 live of 5 (at most 4 at once); busy: reviewer, worker-a"
        );
    }
}
