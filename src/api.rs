//! Wire types of the three methods, shared by both surfaces.
//!
//! Every parameter and result type derives `JsonSchema`; `schemas/` holds the
//! generated schemas and `tests/suite/schemas.rs` fails when they are stale.
//! Field names are camelCase on the wire, as in MCP and the original daemon.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::{RawValue, to_raw_value};

use crate::nesting::Nesting;
use crate::permissions::PermissionMode;

/// Upper bound for `timeoutMs`: a day. Anything longer is almost certainly a unit mistake.
pub const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// Parameters of `ask`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AskParams {
    /// The user message for Claude Code. Must not be empty.
    pub prompt: String,
    /// Turn timeout in milliseconds (1 to 86400000). When it passes, the child is sent
    /// an `interrupt`, and killed and restarted if no result follows within the grace period.
    /// Defaults to the configured turn timeout (300000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86_400_000))]
    pub timeout_ms: Option<u64>,
    /// Permission mode for this turn only, up to the ceiling the user configured (by
    /// default the configured mode: a mode that allows more is refused). The next ask
    /// without it runs in the configured mode again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<PermissionMode>,
    /// Model for this turn only (`--model` of the CLI); the next ask without it uses the
    /// configured one again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The most this turn may spend, in US dollars (at least 0.000001: the CLI takes a
    /// budget to the millionth). The turn that reaches it ends with `ok: false` and subtype
    /// `error_max_budget_usd` (the CLI checks after each model call, so it may pass it by
    /// that call). The CLI counts what its process spent, so the turn runs in a CLI that
    /// may spend just this (or what the budgets leave, when less): unless the session's
    /// warm one is such, it is replaced first (continuing the conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.000001))]
    pub max_budget_usd: Option<f64>,
    /// Plain surface only: `client` sends this client a `permission/request` for each
    /// permission question of the turn and waits for its answer (up to the configured
    /// deadline); without it, questions get the policy's fallback at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<PermissionRelay>,
    /// The session to ask: a short name (letters, digits, `.`, `_`, `-`; up to 64), each
    /// its own warm Claude Code process and conversation, created on first use. Asks to
    /// different sessions run in parallel; asks to one session run in order. Default
    /// `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9._-]+$"))]
    pub session: Option<String>,
    /// Start this session afresh: a new conversation (the old one stays on disk).
    #[serde(default, skip_serializing_if = "is_false")]
    pub new_session: bool,
    /// Continue this Claude Code session id (one saved on disk, as `sessionId` of an
    /// earlier answer) in this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// Branch instead of continuing: a new session id starting from `resume` (or from this
    /// session's conversation), the original left as it was.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fork: bool,
    /// Working directory of the session, when it is created (or started afresh); must be
    /// inside a directory the user allowed (by default the server's `--cwd`). Relative paths
    /// are taken from the server's `--cwd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Plain surface: `false` answers at once with a handle (`turnId`, `session`) while the
    /// turn runs on; collect its answer later with `wait` or `result`, stop it with `cancel`.
    /// Default `true`: the answer comes when the turn ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,
    /// Run the turn in the background: answer at once with a handle (`turnId`, `session`),
    /// then collect the answer with `wait` (or `result`), or stop it with `cancel`. For long
    /// work, so the call does not outlive the host's tool-call limit.
    #[serde(default, skip_serializing_if = "is_false")]
    pub background: bool,
}

impl AskParams {
    /// Whether the ask answers with a handle at once (`background: true` or `wait: false`).
    pub(crate) fn in_background(&self) -> bool {
        self.background || self.wait == Some(false)
    }
}

/// The answer to an ask run in the background: the handle to collect it with.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TurnHandle {
    /// The background turn's id: pass it to `wait`, `result` or `cancel`. Unique for the
    /// daemon's state directory, across restarts (not the numeric `turnId` of `status`).
    pub turn_id: String,
    /// The session the turn runs in.
    pub session: String,
}

/// Params of `wait`: the handle, and how long to wait for the turn to end.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitParams {
    /// The `turnId` of the handle the ask answered with.
    pub turn_id: String,
    /// Wait at most this long, in ms (0 to 600000); default 30000, below the usual host
    /// limit of 60 s for one tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 600_000))]
    pub timeout_ms: Option<u64>,
}

/// Params of `result` and `cancel`: the handle.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HandleParams {
    /// The `turnId` of the handle the ask answered with.
    pub turn_id: String,
}

/// The answer to `wait` and `result`: the turn's answer once it ended (the result is then
/// collected: a later call gets "unknown"), or where it stands while it runs.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WaitResult {
    pub turn_id: String,
    pub session: String,
    /// `true` while the turn runs (or waits in its session's queue): ask again later.
    pub running: bool,
    /// Since the ask was made, in ms.
    pub elapsed_ms: u64,
    /// The latest step of the turn, as in MCP progress (`tool use: Bash`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Child messages seen so far.
    pub messages: u64,
    /// The ask's answer, once the turn ended with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<AskResult>>,
}

/// The answer to `cancel`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CancelResult {
    pub turn_id: String,
    pub session: String,
    /// `true` when the turn was running and is being interrupted (or was taken out of the
    /// queue); `false` when it had already ended (its result stays to be collected).
    pub cancelled: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Params of `permission/request`: a request the server sends a plain client whose
/// `ask` set `permissions: "client"`, for each question the agent asks in that turn.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionRequestParams {
    /// The id of the `ask` whose turn asks, as the client wrote it.
    #[schemars(with = "Value")]
    pub request_id: RequestId,
    /// The tool the agent wants to use (`Bash`, `Write`, `mcp__github__create_issue`,
    /// `AskUserQuestion` to ask the user something).
    pub tool: String,
    /// What it would do, in a line (`run \`touch x\``, `write /p/a.rs (12 bytes)`).
    pub summary: String,
    /// The tool's input as the agent gave it (environment secrets masked).
    pub input: Value,
    /// Why the CLI asks, and the path it guards, when it says.
    pub reason: Option<String>,
    pub blocked_path: Option<String>,
    /// Whether `remember: true` can allow the same use for the rest of the session.
    pub can_remember: bool,
    /// For `AskUserQuestion`: the questions, to answer in `answers`.
    pub questions: Vec<UserQuestionInfo>,
    /// The answer must come within this many ms, or the tool is denied.
    pub deadline_ms: u64,
}

/// One question of `AskUserQuestion`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserQuestionInfo {
    pub question: String,
    /// The labels to choose from.
    pub options: Vec<String>,
    pub multi_select: bool,
}

/// The client's answer to `permission/request` (its result).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionAnswer {
    pub behavior: Behavior,
    /// For `deny`: told to the agent.
    #[serde(default)]
    pub message: Option<String>,
    /// For `allow`: allow the same use for the rest of the session.
    #[serde(default)]
    pub remember: bool,
    /// For `AskUserQuestion`: question text to the chosen label (several joined by ", ").
    #[serde(default)]
    pub answers: serde_json::Map<String, Value>,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Behavior {
    Allow,
    Deny,
}

/// Who answers the permission questions of a plain-surface ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PermissionRelay {
    /// The client that sent the ask, through `permission/request`.
    Client,
}

/// The answer to `ask`: the child's `result` line, in camelCase.
///
/// A turn that the child itself reports as failed (`is_error`, error subtypes) is a normal
/// answer with `ok: false`; crashes, timeouts and shutdown are JSON-RPC errors instead.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AskResult {
    /// `true` when the turn succeeded (`is_error` false and subtype `success`).
    pub ok: bool,
    /// The final answer text (absent on error subtypes).
    pub result: Option<String>,
    /// The Claude Code session the turn ran in.
    pub session_id: Option<String>,
    /// The name of claude-coded's session that answered (`default` unless the ask named one).
    #[serde(default)]
    pub session: String,
    /// Cost of this turn in USD (the child reports a running total; this is the difference).
    pub cost_usd: Option<f64>,
    /// The child's running total cost for its session, as it reported it.
    pub session_cost_usd: Option<f64>,
    /// Wall time of the turn as the child measured it.
    pub duration_ms: Option<u64>,
    /// Time spent in API calls, as the child measured it.
    pub duration_api_ms: Option<u64>,
    /// Model round trips in the turn.
    pub num_turns: Option<u64>,
    /// The child's `is_error`.
    pub is_error: bool,
    /// The child's result subtype: `success`, `error_during_execution`, `error_max_turns`, ...
    pub subtype: Option<String>,
    /// Why the turn ended: `completed`, `aborted_streaming`, `api_error`, `max_turns`, ...
    pub terminal_reason: Option<String>,
    /// The model's stop reason.
    pub stop_reason: Option<String>,
    /// HTTP status of a failed API call, when that ended the turn.
    pub api_error_status: Option<u16>,
    /// Error texts of error subtypes.
    #[serde(default)]
    pub errors: Vec<String>,
    /// Token usage of the turn, as the child reported it.
    pub usage: Value,
    /// Tools the child was not allowed to use in this turn.
    pub permission_denials: Vec<Value>,
    /// How many child messages were streamed as notifications during the turn.
    pub messages: u64,
    /// The child's `result` line exactly as received, so no field is lost.
    pub raw: Value,
}

/// How long a failure reason may grow: it is one line, for a person or a model.
const FAILURE_REASON_CHARS: usize = 300;

impl AskResult {
    /// Why a failed turn failed, in one line: the API's status and message when the API
    /// refused, else what the agent ran into; never the CLI's `success` subtype of an API
    /// error. Every surface says a failed turn with these words (`ask` on the shell, the
    /// MCP tools' `error`).
    pub fn failure_reason(&self) -> String {
        let said = self
            .errors
            .first()
            .or(self.result.as_ref())
            .map(|s| one_line(s.trim()))
            .unwrap_or_default();
        if let Some(status) = self.api_error_status {
            let prefix = format!("API Error: {status}");
            let detail = said.strip_prefix(&prefix).unwrap_or(&said).trim();
            return match detail.is_empty() {
                true => format!("API error {status}"),
                false => format!("API error {status}: {detail}"),
            };
        }
        let what = match self.subtype.as_deref() {
            Some("error_max_turns") => "the agent reached its limit of model calls",
            Some("error_max_budget_usd") => "the agent reached its budget",
            Some("error_during_execution") => "the agent stopped during execution",
            _ => "Claude Code reported an error",
        };
        let reason = self
            .terminal_reason
            .as_deref()
            .filter(|r| *r != "completed")
            .map_or(String::new(), |r| format!(" ({r})"));
        match said.is_empty() {
            true => format!("{what}{reason}"),
            false => format!("{what}{reason}: {said}"),
        }
    }
}

/// `text` on one line of at most [`FAILURE_REASON_CHARS`] characters.
fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(FAILURE_REASON_CHARS) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// The answer to `restart`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestartResult {
    /// Always true: a new child is starting (watch `status` for `ready`).
    pub restarting: bool,
    /// The child that was killed to restart, if one was running.
    pub killed_pid: Option<u32>,
}

/// The answer to `stop`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StopResult {
    /// Always true: the daemon is stopping (its socket closes once it has stopped).
    pub stopping: bool,
    /// The daemon's process id, to wait for.
    pub pid: u32,
}

/// Parameters of `status` (none; an empty object or no params).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {}

/// Severity of a recorded event.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Parameters of `events`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventsParams {
    /// Only events with `seq` greater than this (use the previous answer's `nextSeq - 1`,
    /// or simply pass `nextSeq - 1`; `since: 0` returns everything still in the buffer).
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
    /// Long poll: when no matching event is newer than `since`, wait up to this many ms
    /// (0 to 600000) for one, and answer as soon as it is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 600_000))]
    pub wait_ms: Option<u64>,
}

/// What an event is about: its dotted type on the wire (`"type"`), one per kind of fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum EventKind {
    /// The bridge (claude-coded) started.
    #[serde(rename = "daemon.started")]
    DaemonStarted,
    /// A stop began (stdin closed, a signal, the client gone).
    #[serde(rename = "daemon.stopping")]
    DaemonStopping,
    /// The stop ended; the final state is written.
    #[serde(rename = "daemon.stopped")]
    DaemonStopped,
    /// A new daemon identity was made (first start, or the old one was unusable).
    #[serde(rename = "identity.created")]
    IdentityCreated,
    /// A state file was unreadable and was moved aside.
    #[serde(rename = "state.corrupt")]
    StateCorrupt,
    /// The state directory cannot be used; serving goes on without persistence.
    #[serde(rename = "state.unavailable")]
    StateUnavailable,
    /// Daemon-state.json could not be written.
    #[serde(rename = "state.write.failed")]
    StateWriteFailed,
    /// A client said who it is (surface, revision, name, capabilities).
    #[serde(rename = "client.connected")]
    ClientConnected,
    /// The Unix socket for other processes is listening.
    #[serde(rename = "socket.listening")]
    SocketListening,
    /// The Unix socket could not be set up; serving on stdio goes on without it.
    #[serde(rename = "socket.unavailable")]
    SocketUnavailable,
    /// HTTP (`--listen`) is listening.
    #[serde(rename = "http.listening")]
    HttpListening,
    /// A client asked the daemon to stop (`claude-coded stop`).
    #[serde(rename = "daemon.stop.requested")]
    DaemonStopRequested,
    /// A session was made (first ask to its name, `newSession`, `resume`, `fork`).
    #[serde(rename = "session.created")]
    SessionCreated,
    /// A session's child was stopped: idle too long, closed, or pushed out of a full pool.
    #[serde(rename = "session.stopped")]
    SessionStopped,
    /// A stopped session's name was dropped from `sessions.json` (the least recently used
    /// first) to keep it within its bound.
    #[serde(rename = "session.forgotten")]
    SessionForgotten,
    /// A session, or all of them, reached the budget the user set: the ask was refused,
    /// or the CLI ended the turn at its `--max-budget-usd`.
    #[serde(rename = "budget.exhausted")]
    BudgetExhausted,
    /// The CLI was spawned.
    #[serde(rename = "child.started")]
    ChildStarted,
    /// The CLI answered its warm-up.
    #[serde(rename = "child.ready")]
    ChildReady,
    /// The CLI exited.
    #[serde(rename = "child.exited")]
    ChildExited,
    /// The CLI could not be spawned.
    #[serde(rename = "child.spawn.failed")]
    ChildSpawnFailed,
    /// A restart is due after a backoff.
    #[serde(rename = "child.restart.scheduled")]
    ChildRestartScheduled,
    /// A client asked for a restart.
    #[serde(rename = "child.restart.requested")]
    ChildRestartRequested,
    /// The CLI is ending so that one with the budget the next ask needs takes its place.
    #[serde(rename = "child.replacing")]
    ChildReplacing,
    /// The CLI is being killed (timeout, stall, restart, ...).
    #[serde(rename = "child.killing")]
    ChildKilling,
    /// Too many failed starts: automatic restarts stop.
    #[serde(rename = "child.crashloop")]
    ChildCrashloop,
    /// The CLI could not resume the session; a new one starts.
    #[serde(rename = "child.resume.failed")]
    ChildResumeFailed,
    /// The CLI printed a line that is not stream-json.
    #[serde(rename = "child.output.garbage")]
    ChildOutputGarbage,
    /// The CLI printed a line over the limit.
    #[serde(rename = "child.output.too_large")]
    ChildOutputTooLarge,
    /// The CLI printed a message outside a turn.
    #[serde(rename = "child.output.unexpected")]
    ChildOutputUnexpected,
    /// The CLI asked something (and was answered).
    #[serde(rename = "child.control.request")]
    ChildControlRequest,
    /// The CLI answered a control request.
    #[serde(rename = "child.control.response")]
    ChildControlResponse,
    /// The agent asked permission to use a tool (or asked the user a question).
    #[serde(rename = "permission.requested")]
    PermissionRequested,
    /// A permission question was decided (by the policy, the client, the fallback, the
    /// deadline or a cancel), or withdrawn by the agent.
    #[serde(rename = "permission.decided")]
    PermissionDecided,
    /// An ask waits for the CLI.
    #[serde(rename = "turn.queued")]
    TurnQueued,
    /// A turn began.
    #[serde(rename = "turn.started")]
    TurnStarted,
    /// A turn ended with a result.
    #[serde(rename = "turn.finished")]
    TurnFinished,
    /// A turn ended without success (the CLI's error, or a crash).
    #[serde(rename = "turn.failed")]
    TurnFailed,
    /// A turn outlived its timeout and is being interrupted.
    #[serde(rename = "turn.timeout")]
    TurnTimeout,
    /// The CLI was silent past the stall watchdog.
    #[serde(rename = "turn.stalled")]
    TurnStalled,
    /// The caller withdrew its ask.
    #[serde(rename = "turn.cancelled")]
    TurnCancelled,
    /// An ask was refused (busy, unavailable, nesting limit, ...).
    #[serde(rename = "turn.rejected")]
    TurnRejected,
    /// A turn whose caller left (timeout, cancel) ended.
    #[serde(rename = "turn.abandoned.finished")]
    TurnAbandonedFinished,
}

impl EventKind {
    /// The dotted type, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::DaemonStarted => "daemon.started",
            EventKind::DaemonStopping => "daemon.stopping",
            EventKind::DaemonStopped => "daemon.stopped",
            EventKind::IdentityCreated => "identity.created",
            EventKind::StateCorrupt => "state.corrupt",
            EventKind::StateUnavailable => "state.unavailable",
            EventKind::StateWriteFailed => "state.write.failed",
            EventKind::ClientConnected => "client.connected",
            EventKind::SocketListening => "socket.listening",
            EventKind::SocketUnavailable => "socket.unavailable",
            EventKind::HttpListening => "http.listening",
            EventKind::DaemonStopRequested => "daemon.stop.requested",
            EventKind::SessionCreated => "session.created",
            EventKind::SessionStopped => "session.stopped",
            EventKind::SessionForgotten => "session.forgotten",
            EventKind::BudgetExhausted => "budget.exhausted",
            EventKind::ChildStarted => "child.started",
            EventKind::ChildReady => "child.ready",
            EventKind::ChildExited => "child.exited",
            EventKind::ChildSpawnFailed => "child.spawn.failed",
            EventKind::ChildRestartScheduled => "child.restart.scheduled",
            EventKind::ChildRestartRequested => "child.restart.requested",
            EventKind::ChildReplacing => "child.replacing",
            EventKind::ChildKilling => "child.killing",
            EventKind::ChildCrashloop => "child.crashloop",
            EventKind::ChildResumeFailed => "child.resume.failed",
            EventKind::ChildOutputGarbage => "child.output.garbage",
            EventKind::ChildOutputTooLarge => "child.output.too_large",
            EventKind::ChildOutputUnexpected => "child.output.unexpected",
            EventKind::ChildControlRequest => "child.control.request",
            EventKind::ChildControlResponse => "child.control.response",
            EventKind::PermissionRequested => "permission.requested",
            EventKind::PermissionDecided => "permission.decided",
            EventKind::TurnQueued => "turn.queued",
            EventKind::TurnStarted => "turn.started",
            EventKind::TurnFinished => "turn.finished",
            EventKind::TurnFailed => "turn.failed",
            EventKind::TurnTimeout => "turn.timeout",
            EventKind::TurnStalled => "turn.stalled",
            EventKind::TurnCancelled => "turn.cancelled",
            EventKind::TurnRejected => "turn.rejected",
            EventKind::TurnAbandonedFinished => "turn.abandoned.finished",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recorded event, as in the original daemon.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Increasing sequence number, unique for the life of the daemon.
    pub seq: u64,
    /// RFC 3339 UTC timestamp.
    pub created_at: String,
    pub level: Level,
    /// Dotted event type: `daemon.started`, `child.exited`, `turn.finished`, ...
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// One human sentence.
    pub message: String,
    /// Structured facts about the event.
    #[schemars(with = "serde_json::Map<String, Value>")]
    pub detail: Value,
    /// The session the event is about, for the events of a session's child and turns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// The answer to `events`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventsResult {
    /// Matching events, oldest first.
    pub events: Vec<Event>,
    /// Pass `since: nextSeq - 1` next time to get only newer events.
    pub next_seq: u64,
    /// Lowest `seq` still held by the ring buffer (older ones were evicted).
    pub oldest_seq: Option<u64>,
    /// True when more matching events were left out by `limit`.
    pub truncated: bool,
}

/// Params of the `ask/event` notification: one child message streamed during an `ask`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AskEventParams {
    /// The JSON-RPC id of the `ask` this message belongs to.
    #[schemars(with = "Value")]
    pub request_id: RequestId,
    /// For an ask with `wait: false`: the handle's `turnId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_id: Option<String>,
    /// The session whose child printed it.
    pub session: String,
    /// 1, 2, 3, ... within the `ask`, without gaps: when the client reads slowly, the
    /// child is slowed down instead.
    pub seq: u64,
    /// The child message's `type` (`system`, `assistant`, `user`, `result`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The child message's `subtype`, when it has one.
    pub subtype: Option<String>,
    /// The child's message exactly as it printed it (its text, not re-encoded).
    #[schemars(with = "Value")]
    pub message: Box<RawValue>,
}

/// One notification of an `ask/subscribe` subscription (WebSocket only): each of the
/// ask's child messages as `event`, then, last, its `result` or its `error`; after it,
/// jsonrpsee's close notice (`error` in place of `result` in the notification's params)
/// ends the subscription.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AskSubscriptionItem {
    /// A child message, with the params of the `ask/event` notification on stdio (its
    /// `requestId` is the subscription's id).
    Event(AskEventParams),
    /// The ask's answer, as the `ask` method returns it.
    Result(Box<AskResult>),
    /// Why the ask failed: the error object the `ask` method would answer with.
    Error(ErrorInfo),
}

/// A JSON-RPC error object, when one is carried inside a message.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    pub code: i32,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// The answer of `GET /healthz` (HTTP, `--listen`): 200 when `ok`, else 503.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthResult {
    /// The daemon runs and its child is not `failed`: an ask can be served.
    pub ok: bool,
    /// claude-coded's version.
    pub version: String,
    /// The child's state.
    pub child: ChildStatus,
    /// Whether the child is warm and waiting for a turn.
    pub ready: bool,
}

/// `listen.json` in the state directory, written once HTTP listens (`--listen`): how a
/// client finds the port when port 0 was given.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenInfo {
    /// The address bound, as the system reports it (`127.0.0.1:41234`).
    pub address: String,
    /// The base URL on this machine (an unspecified address is reached on loopback).
    pub url: String,
    /// MCP over Streamable HTTP.
    pub mcp: String,
    /// The plain methods over HTTP POST.
    pub rpc: String,
    /// The plain methods over WebSocket, with `ask/subscribe`.
    pub ws: String,
    /// Whether requests must carry `Authorization: Bearer <token>`.
    pub token_required: bool,
    /// The file holding a generated token (mode 0600); null when the token was given.
    pub token_file: Option<String>,
    /// The serving claude-coded.
    pub pid: u32,
}

/// A JSON-RPC id exactly as the client wrote it, so an integer beyond 64 bits (which a
/// `Value` would turn into the nearest float) comes back in notifications unchanged.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct RequestId(Box<RawValue>);

impl RequestId {
    /// The id from its JSON text as received; `fallback` if that text is not JSON.
    pub fn from_text(text: &str, fallback: &Value) -> RequestId {
        match RawValue::from_string(text.to_string()) {
            Ok(raw) => RequestId(raw),
            Err(_) => RequestId::from_value(fallback),
        }
    }

    /// The id from a parsed value.
    pub fn from_value(value: &Value) -> RequestId {
        // Serialising a `Value` cannot fail; `null` keeps this total all the same.
        RequestId(to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned()))
    }

    /// The id's JSON text.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RequestId {
    fn eq(&self, other: &RequestId) -> bool {
        self.as_json() == other.as_json()
    }
}

/// The answer to `status`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusResult {
    pub identity: IdentityInfo,
    pub daemon: DaemonInfo,
    pub child: ChildInfo,
    /// The turn in flight, if any.
    pub turn: Option<TurnInfo>,
    pub queue: QueueInfo,
    pub totals: Totals,
    pub events: EventCounters,
    /// The client being served, once it said who it is.
    pub client: Option<ClientSession>,
    /// The resolved configuration (never the environment or secrets).
    #[schemars(with = "serde_json::Map<String, Value>")]
    pub config: Value,
    /// Every session (`child`, `turn`, `queue` above are the `default` session's;
    /// `totals` add up all of them).
    #[serde(default)]
    pub sessions: Vec<SessionInfo>,
}

/// One session: a name, its Claude Code process and conversation.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub name: String,
    /// The child's state (`starting`, `ready`, `busy`, `backoff`, `failed`, ...), or
    /// `stopped`: idle too long, closed, or pushed out by a newer session; its next ask
    /// starts it again and continues its conversation.
    pub state: ChildStatus,
    /// Its Claude Code session id, as far as known: what `resume` continues.
    pub session_id: Option<String>,
    pub cwd: String,
    /// The Claude Code process (not its guard) and its resident memory.
    pub pid: Option<u32>,
    pub rss_bytes: Option<u64>,
    /// Asks answered and their cost in USD, while this claude-coded ran.
    pub turns: u64,
    pub cost_usd: f64,
    /// Asks waiting behind the running one, and whether one runs.
    pub queue: usize,
    pub busy: bool,
    pub created_at: String,
    /// When its last ask came.
    pub last_used_at: String,
}

/// Params of `sessions` (none).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionsParams {}

/// The answer to `sessions`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionsResult {
    pub sessions: Vec<SessionInfo>,
    /// Sessions whose child runs now, and the most that may (`--max-sessions`).
    pub live: usize,
    pub max_sessions: usize,
}

/// Params of `closeSession`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseSessionParams {
    /// The session to stop.
    pub session: String,
}

/// The answer to `closeSession`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CloseSessionResult {
    pub session: String,
    /// Its Claude Code session id, to `resume` it later.
    pub session_id: Option<String>,
    /// Whether its child was running (false: it was already stopped).
    pub was_live: bool,
}

/// Who is being served: the surface and, on MCP, what the client declared.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClientSession {
    /// `mcp` or `plain`.
    pub surface: String,
    /// The negotiated MCP revision (`2025-11-25`, `2026-07-28`, ...).
    pub protocol_version: Option<String>,
    /// The client's name and version as it gave them (`clientInfo`).
    pub name: Option<String>,
    pub version: Option<String>,
    /// The capabilities it declared (`elicitation`, `roots`, `experimental/...`, ...).
    pub capabilities: Vec<String>,
    /// When it was first seen with these facts.
    pub since: String,
}

impl ClientSession {
    /// A plain JSON-RPC client: no handshake, so nothing more is known.
    pub fn plain() -> ClientSession {
        ClientSession {
            surface: "plain".to_string(),
            protocol_version: None,
            name: None,
            version: None,
            capabilities: Vec::new(),
            since: crate::clock::now_rfc3339(),
        }
    }
}

/// Who this daemon is; kept in `identity.json` across restarts.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IdentityInfo {
    pub daemon_id: String,
    pub created_at: String,
    /// claude-coded's version.
    pub version: String,
}

/// The bridge process itself.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DaemonInfo {
    /// `running` or `stopping` (`stopped` in the persisted file after exit; `gone` where
    /// `claude-coded status` finds a saved `running` or `stopping` whose process was killed).
    pub state: String,
    pub pid: u32,
    pub started_at: String,
    pub uptime_ms: u64,
    /// Where identity, state and event log live (null when persistence is off).
    pub state_dir: Option<String>,
    /// Which instance this is: 1 for the first daemon of a project, 2, 3, ... for others
    /// running beside it, each in its own directory (`<stateDir>/instances/N`).
    pub instance: Option<u32>,
    /// Problems with the state directory, if any (serving goes on without it).
    pub state_error: Option<String>,
    /// How deep this server runs inside other claude-coded servers, and the limit.
    pub nesting: Nesting,
    /// How this claude-coded was started: serving a client on stdio, in the background
    /// (`claude-coded start`), or for one `claude-coded ask`.
    pub serving: Serving,
    /// The Unix socket other processes reach it on (null when it has none: no state
    /// directory, or it runs for one `ask`); see `socketError`.
    pub socket: Option<String>,
    /// Why it has no socket, when it should have one.
    pub socket_error: Option<String>,
    /// The base URL it serves HTTP on (`--listen`), null without.
    #[serde(default)]
    pub listen: Option<String>,
    /// The file that holds the token HTTP clients must send (`listen-token` in the state
    /// directory), when it generated one; never the token itself.
    #[serde(default)]
    pub listen_token_file: Option<String>,
    /// Log lines dropped because nobody read this process's stderr (a host that pipes it
    /// and never reads it): the log never blocks the server.
    #[serde(default)]
    pub log_lines_dropped: u64,
}

/// How a claude-coded was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Serving {
    /// Serving a client on stdin/stdout (an editor, an agent host, a script's pipe); it
    /// stops when that client closes stdin.
    Stdio,
    /// Started by `claude-coded start`: no stdio client, stopped by `claude-coded stop`.
    Background,
    /// Running for one `claude-coded ask` and stopping after its answer.
    Ask,
}

/// Lifecycle state of the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChildStatus {
    /// Not started yet.
    Idle,
    /// Spawned, waiting for the answer to `initialize`.
    Starting,
    /// Warm and waiting for a turn.
    Ready,
    /// Running a turn.
    Busy,
    /// Exited; a restart is scheduled at `nextRestartAt`.
    Backoff,
    /// Stopped on purpose (the bridge is shutting down).
    Stopped,
    /// Cannot be started (for example the binary is missing); the next `ask` tries again.
    Failed,
}

impl ChildStatus {
    /// The state as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ChildStatus::Idle => "idle",
            ChildStatus::Starting => "starting",
            ChildStatus::Ready => "ready",
            ChildStatus::Busy => "busy",
            ChildStatus::Backoff => "backoff",
            ChildStatus::Stopped => "stopped",
            ChildStatus::Failed => "failed",
        }
    }
}

/// The supervised Claude Code process.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildInfo {
    pub status: ChildStatus,
    /// When `status` last changed.
    pub status_since: String,
    pub ready: bool,
    /// The process claude-coded started: the guard that leads the CLI's process group.
    pub pid: Option<u32>,
    /// The CLI's own pid, as it reported it at warm-up.
    pub cli_pid: Option<u32>,
    pub started_at: Option<String>,
    pub ready_at: Option<String>,
    pub exited_at: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub last_error: Option<String>,
    /// How many times the child has been restarted since the bridge started.
    pub restart_count: u64,
    /// Failed starts in a row (drives the backoff; reset after a healthy run).
    pub consecutive_failures: u32,
    pub next_restart_at: Option<String>,
    pub session_id: Option<String>,
    /// The CLI's running total cost for that session, as it last reported it (it counts
    /// earlier processes of a resumed session too).
    #[serde(default)]
    pub session_cost_usd: Option<f64>,
    /// The session this child was started to continue (`--resume`) after its predecessor died.
    pub resumed_from: Option<String>,
    /// The CLI's version as it reported it at warm-up.
    pub cli_version: Option<String>,
    /// The last lines the child wrote to stderr.
    pub stderr_tail: Vec<String>,
}

/// The turn in flight.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TurnInfo {
    pub turn_id: u64,
    pub started_at: String,
    pub elapsed_ms: u64,
    pub timeout_ms: u64,
    /// The first characters of the prompt.
    pub prompt_preview: String,
    /// Child messages received so far in this turn.
    pub messages: u64,
    /// True after the timeout fired: the caller has its error, the child is being interrupted.
    pub abandoned: bool,
}

/// The FIFO of asks waiting for the child.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueueInfo {
    pub length: usize,
    pub capacity: usize,
    pub waiting: Vec<QueuedInfo>,
}

/// One waiting ask.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueuedInfo {
    pub turn_id: u64,
    pub enqueued_at: String,
    pub prompt_preview: String,
}

/// `a + b` in USD, rounded to 1e-10: costs are decimals, and a sum of binary floats
/// would read `0.00014000000000000001` in a result a person or a model reads.
/// An amount of dollars for a message: to the millionth, without trailing zeros.
pub(crate) fn usd_text(amount: f64) -> String {
    let text = format!("{amount:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub(crate) fn add_usd(a: f64, b: f64) -> f64 {
    ((a + b) * 1e10).round() / 1e10
}

/// Cumulative accounting since the bridge started.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub asks: u64,
    pub turns_ok: u64,
    /// Turns the child reported as failed (`ok: false`).
    pub turns_failed: u64,
    /// Asks answered with a JSON-RPC error (crash, timeout, shutdown, queue full).
    pub asks_errored: u64,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    /// Turn messages not streamed because their caller was gone (it closed its output,
    /// disconnected or cancelled while its turn still ran). A caller that reads, however
    /// slowly, gets every one: the child is slowed down instead.
    pub notifications_dropped: u64,
    /// Permission questions the agent asked, and how they were decided.
    #[serde(default)]
    pub permissions_requested: u64,
    #[serde(default)]
    pub permissions_allowed: u64,
    #[serde(default)]
    pub permissions_denied: u64,
}

/// Event counters.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventCounters {
    pub next_seq: u64,
    pub total: u64,
    pub debug: u64,
    pub info: u64,
    pub warn: u64,
    pub error: u64,
    /// Events that could not be appended to `events.jsonl`.
    pub log_write_failures: u64,
}

/// The facts of an event whose shape is stable, typed: each type names its kind, so an
/// event of that kind always carries these fields (`schemas/event.<kind>.detail.json`).
/// The other kinds carry a free-form object.
pub trait EventDetail: Serialize {
    /// The kind of event these facts describe.
    fn kind(&self) -> EventKind;
}

/// `child.started`: a CLI process was spawned.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildStarted {
    /// The guard leading the CLI's process group.
    pub pid: u32,
    pub program: String,
    pub args: Vec<String>,
    /// 1 for the first child, counting every start.
    pub generation: u64,
}

/// `child.ready`: the CLI answered the warm-up `initialize`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildReady {
    pub pid: u32,
    /// From spawn to the answer.
    pub startup_ms: u64,
    pub cli_version: Option<String>,
    /// Set when `initialize` was refused (the child still takes turns).
    pub initialize_error: Option<String>,
}

/// `child.exited`: the CLI process ended.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildExited {
    pub pid: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub uptime_ms: u64,
    /// Its last stderr lines.
    pub stderr_tail: Vec<String>,
}

/// `turn.queued`: an ask is waiting for the child.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TurnQueued {
    pub turn_id: u64,
    /// Asks already waiting ahead of it.
    pub waiting: usize,
}

/// `turn.started`: the prompt was written to the child.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TurnStarted {
    pub turn_id: u64,
    pub timeout_ms: u64,
    /// The start of the prompt, secrets masked.
    pub prompt_preview: String,
}

/// Which end a turn came to.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum TurnEnd {
    /// `turn.finished`: a result with `ok`.
    #[serde(rename = "turn.finished")]
    Finished,
    /// `turn.failed`: a result that is not `ok`, or no result (the child died).
    #[serde(rename = "turn.failed")]
    Failed,
    /// `turn.abandoned.finished`: the result of a turn whose caller had left.
    #[serde(rename = "turn.abandoned.finished")]
    AbandonedFinished,
}

/// `turn.finished`, `turn.failed`, `turn.abandoned.finished`: how a turn ended.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TurnEnded {
    /// Which of the three kinds this is (not written: it is the event's `type`).
    #[serde(skip)]
    #[schemars(skip)]
    pub end: Option<TurnEnd>,
    pub turn_id: u64,
    pub ok: bool,
    /// The result's `subtype` and `terminal_reason`; absent when no result came.
    pub subtype: Option<String>,
    pub terminal_reason: Option<String>,
    pub cost_usd: Option<f64>,
    pub duration_ms: u64,
    /// Messages the turn printed, and lines of it that were not stream-json.
    pub messages: u64,
    pub skipped_lines: u64,
    /// Why it failed without a result (the child exited, was killed, ...).
    pub error: Option<String>,
}

/// `turn.timeout`: a turn outlived its timeout and is being interrupted.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TurnTimedOut {
    pub turn_id: u64,
    pub timeout_ms: u64,
}

/// `turn.stalled`: the child printed nothing for the stall timeout.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TurnStalled {
    pub turn_id: u64,
    pub silent_ms: u64,
}

/// Each typed detail with the one kind it describes.
macro_rules! event_details {
    ($($detail:ident => $kind:ident),* $(,)?) => {
        $(
            impl EventDetail for $detail {
                fn kind(&self) -> EventKind {
                    EventKind::$kind
                }
            }
        )*
    };
}

event_details! {
    ChildStarted => ChildStarted,
    ChildReady => ChildReady,
    ChildExited => ChildExited,
    TurnQueued => TurnQueued,
    TurnStarted => TurnStarted,
    TurnTimedOut => TurnTimeout,
    TurnStalled => TurnStalled,
}

/// The three ends of a turn share their facts; which one it is decides the kind.
impl EventDetail for TurnEnded {
    fn kind(&self) -> EventKind {
        match self.end {
            Some(TurnEnd::Finished) => EventKind::TurnFinished,
            Some(TurnEnd::AbandonedFinished) => EventKind::TurnAbandonedFinished,
            Some(TurnEnd::Failed) | None => EventKind::TurnFailed,
        }
    }
}

/// The schemas of the typed event details, by the kinds that carry them.
fn detail_schemas() -> Vec<(&'static str, schemars::Schema)> {
    let ended = schemars::schema_for!(TurnEnded);
    vec![
        (
            "event.child.started.detail.json",
            schemars::schema_for!(ChildStarted),
        ),
        (
            "event.child.ready.detail.json",
            schemars::schema_for!(ChildReady),
        ),
        (
            "event.child.exited.detail.json",
            schemars::schema_for!(ChildExited),
        ),
        (
            "event.turn.queued.detail.json",
            schemars::schema_for!(TurnQueued),
        ),
        (
            "event.turn.started.detail.json",
            schemars::schema_for!(TurnStarted),
        ),
        ("event.turn.finished.detail.json", ended.clone()),
        ("event.turn.failed.detail.json", ended.clone()),
        ("event.turn.abandoned.finished.detail.json", ended),
        (
            "event.turn.timeout.detail.json",
            schemars::schema_for!(TurnTimedOut),
        ),
        (
            "event.turn.stalled.detail.json",
            schemars::schema_for!(TurnStalled),
        ),
    ]
}

/// Every published schema: file name in `schemas/` and the JSON Schema of that type.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("ask.params.json", schemars::schema_for!(AskParams)),
        ("ask.result.json", schemars::schema_for!(AskResult)),
        (
            "ask-event.notification.json",
            schemars::schema_for!(AskEventParams),
        ),
        ("status.params.json", schemars::schema_for!(StatusParams)),
        ("status.result.json", schemars::schema_for!(StatusResult)),
        ("events.params.json", schemars::schema_for!(EventsParams)),
        ("events.result.json", schemars::schema_for!(EventsResult)),
        ("restart.result.json", schemars::schema_for!(RestartResult)),
        (
            "permission-request.params.json",
            schemars::schema_for!(PermissionRequestParams),
        ),
        (
            "permission-request.result.json",
            schemars::schema_for!(PermissionAnswer),
        ),
        ("stop.result.json", schemars::schema_for!(StopResult)),
        (
            "sessions.result.json",
            schemars::schema_for!(SessionsResult),
        ),
        (
            "close-session.params.json",
            schemars::schema_for!(CloseSessionParams),
        ),
        (
            "close-session.result.json",
            schemars::schema_for!(CloseSessionResult),
        ),
        (
            "ask-subscribe.notification.json",
            schemars::schema_for!(AskSubscriptionItem),
        ),
        ("healthz.result.json", schemars::schema_for!(HealthResult)),
        ("ask-handle.result.json", schemars::schema_for!(TurnHandle)),
        ("wait.params.json", schemars::schema_for!(WaitParams)),
        ("wait.result.json", schemars::schema_for!(WaitResult)),
        ("handle.params.json", schemars::schema_for!(HandleParams)),
        ("cancel.result.json", schemars::schema_for!(CancelResult)),
        ("listen.file.json", schemars::schema_for!(ListenInfo)),
    ]
    .into_iter()
    .chain(detail_schemas())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summed_costs_read_as_the_decimals_they_are() {
        assert_eq!(add_usd(0.1, 0.2).to_string(), "0.3");
        let three = [0.00014, 0.00014, 0.00014].into_iter().fold(0.0, add_usd);
        assert_eq!(three.to_string(), "0.00042");
    }

    #[test]
    fn every_typed_detail_has_the_schema_file_of_its_kind() {
        let ended = |end| TurnEnded {
            end: Some(end),
            turn_id: 1,
            ok: true,
            subtype: None,
            terminal_reason: None,
            cost_usd: None,
            duration_ms: 0,
            messages: 0,
            skipped_lines: 0,
            error: None,
        };
        let kinds = [
            ChildStarted {
                pid: 1,
                program: "claude".into(),
                args: vec![],
                generation: 1,
            }
            .kind(),
            ChildReady {
                pid: 1,
                startup_ms: 0,
                cli_version: None,
                initialize_error: None,
            }
            .kind(),
            ChildExited {
                pid: 1,
                exit_code: None,
                signal: None,
                uptime_ms: 0,
                stderr_tail: vec![],
            }
            .kind(),
            TurnQueued {
                turn_id: 1,
                waiting: 0,
            }
            .kind(),
            TurnStarted {
                turn_id: 1,
                timeout_ms: 1,
                prompt_preview: String::new(),
            }
            .kind(),
            ended(TurnEnd::Finished).kind(),
            ended(TurnEnd::Failed).kind(),
            ended(TurnEnd::AbandonedFinished).kind(),
            TurnTimedOut {
                turn_id: 1,
                timeout_ms: 1,
            }
            .kind(),
            TurnStalled {
                turn_id: 1,
                silent_ms: 1,
            }
            .kind(),
        ];
        let files: Vec<&str> = detail_schemas().iter().map(|(name, _)| *name).collect();
        let expected: Vec<String> = kinds
            .iter()
            .map(|kind| format!("event.{}.detail.json", kind.as_str()))
            .collect();
        assert_eq!(files, expected);
    }

    #[test]
    fn a_request_id_keeps_the_text_of_any_number() {
        let big = "18446744073709551617";
        let id = RequestId::from_text(big, &Value::Null);
        assert_eq!(id.as_json(), big);
        let params = AskEventParams {
            request_id: id,
            turn_id: None,
            session: "default".into(),
            seq: 1,
            kind: "assistant".into(),
            subtype: None,
            message: RawValue::from_string(r#"{"type": "assistant"}"#.into()).unwrap(),
        };
        let text = serde_json::to_string(&params).unwrap();
        assert!(
            text.starts_with(r#"{"requestId":18446744073709551617,"#),
            "{text}"
        );
        // The message goes out as the child wrote it, spaces and all.
        assert!(
            text.ends_with(r#""message":{"type": "assistant"}}"#),
            "{text}"
        );
        // Read back from text, the id and the message are the same.
        let back: AskEventParams = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }

    #[test]
    fn text_that_is_not_json_falls_back_to_the_parsed_id() {
        let id = RequestId::from_text("not json", &serde_json::json!(7));
        assert_eq!(id.as_json(), "7");
    }
}
