//! Events: their levels and kinds, `events`, the notifications of a running ask, and
//! the typed details of the kinds whose shape is stable.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use serde_json::value::RawValue;

use super::{AskResult, ErrorInfo, RequestId};

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
    /// A step of a turn: a finished block of the agent's answer (its text's start, a tool
    /// use) or what the CLI says while it works (an API retry, compaction, a denial).
    #[serde(rename = "turn.step")]
    TurnStep,
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
            EventKind::TurnStep => "turn.step",
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
    /// For a background ask: the handle's `turnId`.
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
/// `turn.step`: a step of a turn, in the words of MCP progress.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TurnStep {
    pub turn_id: u64,
    /// `assistant: <the text's start>`, `tool use: Bash`, `API error 500: Claude Code
    /// retries ...`, ...
    pub step: String,
}

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
    TurnStep => TurnStep,
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
pub(super) fn detail_schemas() -> Vec<(&'static str, schemars::Schema)> {
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
        (
            "event.turn.step.detail.json",
            schemars::schema_for!(TurnStep),
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
