//! Events: their levels and kinds, `events`, the notifications of a running ask, and
//! the typed details of every kind.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use serde_json::value::RawValue;

use super::{AskResult, ClientSession, ErrorInfo, RequestId};

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

/// Every kind of event, with its dotted type on the wire and the type of its `detail`:
/// the one place a kind is added. It makes [`EventKind`], its `as_str`, the
/// [`EventDetail`] of each detail type and the list of detail schemas, so no kind can be
/// recorded without typed facts. A detail type marked `(shared)` serves several kinds
/// and says itself which one it is.
macro_rules! event_kinds {
    ($(
        $(#[$doc:meta])*
        $kind:ident = $wire:tt => $detail:ident $(($shared:ident))?
    ),* $(,)?) => {
        /// What an event is about: its dotted type on the wire (`"type"`), one per kind of fact.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
        pub enum EventKind {
            $(
                $(#[$doc])*
                #[serde(rename = $wire)]
                $kind,
            )*
        }

        impl EventKind {
            /// Every kind, in the order of the list above.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$kind),*];

            /// The dotted type, as on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$kind => $wire,)*
                }
            }
        }

        $(event_kinds!(@detail $kind $detail $($shared)?);)*

        /// The schema of each kind's detail, as `schemas/event.<kind>.detail.json`.
        pub(super) fn detail_schemas() -> Vec<(&'static str, schemars::Schema)> {
            vec![$((concat!("event.", $wire, ".detail.json"), schemars::schema_for!($detail)),)*]
        }
    };
    (@detail $kind:ident $detail:ident) => {
        impl EventDetail for $detail {
            fn kind(&self) -> EventKind {
                EventKind::$kind
            }
        }
    };
    (@detail $kind:ident $detail:ident shared) => {};
}

event_kinds! {
    /// The bridge (claude-coded) started.
    DaemonStarted = "daemon.started" => DaemonStarted,
    /// A stop began (stdin closed, a signal, the client gone).
    DaemonStopping = "daemon.stopping" => DaemonStopping,
    /// The stop ended; the final state is written.
    DaemonStopped = "daemon.stopped" => DaemonStopped,
    /// A new daemon identity was made (first start, or the old one was unusable).
    IdentityCreated = "identity.created" => IdentityCreated,
    /// A state file was unreadable and was moved aside.
    StateCorrupt = "state.corrupt" => StateCorrupt,
    /// The state directory cannot be used; serving goes on without persistence.
    StateUnavailable = "state.unavailable" => StateUnavailable,
    /// Daemon-state.json could not be written.
    StateWriteFailed = "state.write.failed" => StateWriteFailed,
    /// A client said who it is (surface, revision, name, capabilities).
    ClientConnected = "client.connected" => ClientSession,
    /// The Unix socket for other processes is listening.
    SocketListening = "socket.listening" => SocketListening,
    /// The Unix socket could not be set up; serving on stdio goes on without it.
    SocketUnavailable = "socket.unavailable" => SocketUnavailable,
    /// HTTP (`--listen`) is listening.
    HttpListening = "http.listening" => HttpListening,
    /// A client asked the daemon to stop (`claude-coded stop`).
    DaemonStopRequested = "daemon.stop.requested" => DaemonStopRequested,
    /// A session was made (first ask to its name, `newSession`, `resume`, `fork`).
    SessionCreated = "session.created" => SessionCreated,
    /// A session's child was stopped: idle too long, closed, or pushed out of a full pool.
    SessionStopped = "session.stopped" => SessionStopped,
    /// A stopped session's name was dropped from `sessions.json` (the least recently used
    /// first) to keep it within its bound.
    SessionForgotten = "session.forgotten" => SessionForgotten,
    /// A session, or all of them, reached the budget the user set: the ask was refused,
    /// or the CLI ended the turn at its `--max-budget-usd`.
    BudgetExhausted = "budget.exhausted" => BudgetExhausted,
    /// The CLI was spawned.
    ChildStarted = "child.started" => ChildStarted,
    /// The CLI answered its warm-up.
    ChildReady = "child.ready" => ChildReady,
    /// The CLI exited.
    ChildExited = "child.exited" => ChildExited,
    /// The CLI could not be spawned.
    ChildSpawnFailed = "child.spawn.failed" => ChildSpawnFailed,
    /// A restart is due after a backoff.
    ChildRestartScheduled = "child.restart.scheduled" => ChildRestartScheduled,
    /// A client asked for a restart.
    ChildRestartRequested = "child.restart.requested" => ChildRestartRequested,
    /// The CLI is ending so that one with the budget the next ask needs takes its place.
    ChildReplacing = "child.replacing" => ChildReplacing,
    /// The CLI is being killed (timeout, stall, restart, ...).
    ChildKilling = "child.killing" => ChildKilling,
    /// Too many failed starts: automatic restarts stop.
    ChildCrashloop = "child.crashloop" => ChildCrashloop,
    /// The CLI could not resume the session; a new one starts.
    ChildResumeFailed = "child.resume.failed" => ChildResumeFailed,
    /// The CLI printed a line that is not stream-json.
    ChildOutputGarbage = "child.output.garbage" => ChildOutputGarbage,
    /// The CLI printed a line over the limit.
    ChildOutputTooLarge = "child.output.too_large" => ChildOutputTooLarge,
    /// The CLI printed a message outside a turn.
    ChildOutputUnexpected = "child.output.unexpected" => ChildOutputUnexpected,
    /// The CLI asked something (and was answered).
    ChildControlRequest = "child.control.request" => ChildControlRequest,
    /// The CLI answered a control request.
    ChildControlResponse = "child.control.response" => ChildControlResponse,
    /// The agent asked permission to use a tool (or asked the user a question).
    PermissionRequested = "permission.requested" => PermissionRequested,
    /// A permission question was decided (by the policy, the client, the fallback, the
    /// deadline or a cancel), or withdrawn by the agent.
    PermissionDecided = "permission.decided" => PermissionDecided,
    /// An ask waits for the CLI.
    TurnQueued = "turn.queued" => TurnQueued,
    /// A turn began.
    TurnStarted = "turn.started" => TurnStarted,
    /// A step of a turn: a finished block of the agent's answer (its text's start, a tool
    /// use) or what the CLI says while it works (an API retry, compaction, a denial).
    TurnStep = "turn.step" => TurnStep,
    /// A turn ended with a result.
    TurnFinished = "turn.finished" => TurnEnded (shared),
    /// A turn ended without success (the CLI's error, or a crash).
    TurnFailed = "turn.failed" => TurnEnded (shared),
    /// A turn outlived its timeout and is being interrupted.
    TurnTimeout = "turn.timeout" => TurnTimedOut,
    /// The CLI was silent past the stall watchdog.
    TurnStalled = "turn.stalled" => TurnStalled,
    /// The caller withdrew its ask.
    TurnCancelled = "turn.cancelled" => TurnCancelled,
    /// An ask was refused (busy, unavailable, nesting limit, ...).
    TurnRejected = "turn.rejected" => TurnRejected,
    /// A turn whose caller left (timeout, cancel) ended.
    TurnAbandonedFinished = "turn.abandoned.finished" => TurnEnded (shared),
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
    /// Structured facts about the event, of the type its kind names
    /// (`schemas/event.<type>.detail.json`).
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

/// The answer to `events` as it is written: an [`EventsResult`] whose events are the JSON
/// text each was recorded as, so a page is copied out of the record, not rebuilt and
/// serialised again. Same fields, same wire.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsPage {
    pub events: Vec<Box<RawValue>>,
    pub next_seq: u64,
    pub oldest_seq: Option<u64>,
    pub truncated: bool,
}

impl EventsPage {
    /// The page with its events decoded, for the surfaces that read their fields.
    pub fn decode(self) -> EventsResult {
        EventsResult {
            // Each text is an `Event` the record serialised itself: it decodes.
            events: self
                .events
                .iter()
                .filter_map(|raw| serde_json::from_str(raw.get()).ok())
                .collect(),
            next_seq: self.next_seq,
            oldest_seq: self.oldest_seq,
            truncated: self.truncated,
        }
    }
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

/// The facts of an event, typed: each type names its kind, so an event of that kind
/// always carries these fields (`schemas/event.<kind>.detail.json`). Every kind has one
/// (see `event_kinds!`).
pub trait EventDetail: Serialize {
    /// The kind of event these facts describe.
    fn kind(&self) -> EventKind;
}

/// `daemon.started`: the bridge started.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DaemonStarted {
    /// The daemon's process id.
    pub pid: u32,
    /// Its identity (`status.identity.daemonId`), kept across restarts.
    pub daemon_id: String,
    /// The working directory its sessions start in by default.
    pub cwd: PathBuf,
}

/// `daemon.stopping`: a stop began.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DaemonStopping {
    /// What began it: `stdin closed`, `SIGTERM`, `stop requested`, ...
    pub reason: String,
}

/// `daemon.stopped`: the stop ended.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DaemonStopped {
    /// How long the daemon ran.
    pub uptime_ms: u64,
}

/// `identity.created`: a new daemon identity was made.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IdentityCreated {
    /// The new identity.
    pub daemon_id: String,
}

/// `state.corrupt`: a state file could not be trusted and was set aside.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StateCorrupt {
    /// Its name in the state directory (`identity.json`, `sessions.json`, ...).
    pub file: String,
    /// Where it was kept; null when it could not be moved aside.
    pub moved_to: Option<PathBuf>,
    /// How many problems were found in it; absent for `identity.json`, which is either
    /// readable or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problems: Option<usize>,
}

/// `state.unavailable`: the state directory cannot be used.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StateUnavailable {
    /// The state directory that could not be used.
    pub state_dir: PathBuf,
}

/// `state.write.failed`: a state file could not be written (said once per error).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StateWriteFailed {
    /// Its name in the state directory.
    pub file: String,
}

/// `socket.listening`: the Unix socket is listening.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SocketListening {
    /// The socket's path.
    pub path: PathBuf,
}

/// `socket.unavailable`: the Unix socket could not be set up.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SocketUnavailable {
    /// Where the socket would have been.
    pub path: PathBuf,
}

/// `http.listening`: HTTP (`--listen`) is listening.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpListening {
    /// The base URL (`http://127.0.0.1:8765`).
    pub url: String,
    /// The address bound.
    pub address: String,
    /// Whether clients must send the bearer token.
    pub token_required: bool,
    /// The file holding the token (never the token); null when there is none.
    pub token_file: Option<String>,
}

/// `daemon.stop.requested`: a client asked the daemon to stop.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DaemonStopRequested {
    /// The daemon's process id.
    pub pid: u32,
}

/// `session.created`: a session was made.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionCreated {
    /// The session's name.
    pub name: String,
    /// Its working directory.
    pub cwd: PathBuf,
    /// How it starts, in words: `a new conversation`, `continuing`, `branching`, ...
    pub origin: String,
    /// The Claude Code session it continues or branches from; null for a new one.
    pub from: Option<String>,
}

/// `session.stopped`: a session's child was stopped.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionStopped {
    /// The session's name.
    pub name: String,
    /// Why: idle too long, closed, pushed out of a full pool, ...
    pub reason: String,
    /// The Claude Code session a later ask continues; null when it had none.
    pub session_id: Option<String>,
}

/// `session.forgotten`: a stopped session's name was dropped from `sessions.json`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionForgotten {
    /// The session's name.
    pub session: String,
    /// How many names `sessions.json` keeps.
    pub max: usize,
}

/// Whose budget a limit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BudgetScope {
    /// One ask's `maxBudgetUsd`.
    Ask,
    /// What is left of the session's `--session-budget-usd`.
    Session,
    /// What is left of `--budget-usd`, shared by all sessions.
    AllSessions,
}

/// `budget.exhausted`: an ask was refused for a spent budget, or the CLI ended a turn
/// at its `--max-budget-usd`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum BudgetExhausted {
    /// An ask was refused before it started: a budget is spent.
    Refused(BudgetRefused),
    /// The CLI ended a turn at the budget it was given.
    TurnEnded(BudgetTurnEnded),
}

/// `budget.exhausted` for an ask refused before it started.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BudgetRefused {
    /// The session the ask was for.
    pub session: String,
    /// Whose budget is spent (`session` or `allSessions`).
    pub scope: BudgetScope,
    /// The option that set it (`--session-budget-usd`, `--budget-usd`).
    pub flag: String,
    /// What was spent, and the limit, in USD.
    pub spent_usd: f64,
    pub limit_usd: f64,
}

/// `budget.exhausted` for a turn the CLI ended at its `--max-budget-usd`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BudgetTurnEnded {
    pub turn_id: u64,
    /// The session the turn ran in.
    pub session: String,
    /// Whose budget the CLI was held to; null when the child had none of ours.
    pub scope: Option<BudgetScope>,
    /// The `--max-budget-usd` the CLI was given.
    pub limit_usd: Option<f64>,
    /// What the turn cost, and its session so far, as the result says.
    pub cost_usd: Option<f64>,
    pub session_cost_usd: Option<f64>,
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

/// `child.spawn.failed`: the CLI could not be spawned.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildSpawnFailed {
    /// The program that was to run (`--claude-bin`).
    pub program: String,
}

/// `child.restart.scheduled`: the next start is due after a delay.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildRestartScheduled {
    /// The delay (0 after a deliberate kill).
    pub delay_ms: u64,
    /// Failed starts in a row so far.
    pub consecutive_failures: u32,
}

/// `child.restart.requested`: a client asked for a restart.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildRestartRequested {
    /// The child that is killed for it; null when none was running.
    pub pid: Option<u32>,
}

/// `child.replacing`: the child ends so that one with the budget the next ask needs
/// takes its place.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildReplacing {
    /// The child being replaced.
    pub pid: u32,
    /// The ask that needs another budget.
    pub turn_id: u64,
    /// What that ask may spend; null when it has no budget of its own.
    pub max_budget_usd: Option<f64>,
    /// The `--max-budget-usd` of the child being replaced; null when it had none.
    pub child_budget_usd: Option<f64>,
}

/// `child.killing`: the child is being killed.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildKilling {
    pub pid: u32,
    /// Why: a timeout, a stall, a restart, ...
    pub reason: String,
}

/// `child.crashloop`: too many failed starts; automatic restarts stop.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildCrashloop {
    /// Failed starts within the window.
    pub failed_starts: usize,
    /// The window (`--crash-loop-window-ms`).
    pub window_ms: u64,
    /// The last child's last stderr lines.
    pub stderr_tail: Vec<String>,
}

/// `child.resume.failed`: the child could not resume its session; a new one starts.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildResumeFailed {
    /// The Claude Code session it was to resume.
    pub session_id: Option<String>,
}

/// `child.output.garbage`: the child printed a line that is not a stream-json message.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildOutputGarbage {
    /// The line's length in bytes.
    pub length: usize,
    /// Its start (200 characters), secrets masked.
    pub preview: String,
}

/// `child.output.too_large`: the child printed a line over the limit.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildOutputTooLarge {
    /// The line's length in bytes, and the limit (`--max-child-line-bytes`).
    pub length: usize,
    pub limit: usize,
}

/// `child.output.unexpected`: the child printed a message outside a turn.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildOutputUnexpected {
    /// The message as the child printed it, secrets masked.
    pub message: Value,
}

/// `child.control.request`: the child asked something claude-coded does not answer; it
/// was refused.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildControlRequest {
    /// The child's id for the request, and its subtype.
    pub request_id: String,
    pub subtype: String,
}

/// `child.control.response`: the child answered a control request.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChildControlResponse {
    /// Our id for the request.
    pub request_id: String,
    /// False when the child answered with an error.
    pub ok: bool,
}

/// `permission.requested`: the agent asked permission to use a tool.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PermissionRequested {
    /// The child's id for the question.
    pub request_id: String,
    /// The turn it came in; null outside a turn.
    pub turn_id: Option<u64>,
    pub tool_name: String,
    /// The tool's input, secrets masked.
    pub input: Value,
    /// Why the CLI asks, when it says.
    pub reason: Option<String>,
    /// The path outside the allowed directories that made it ask, if that is why.
    pub blocked_path: Option<String>,
}

/// What a question was answered with: a permission's `allow` or `deny`, or how a person
/// answered an MCP server's question (`accept`, `decline`, `cancel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AnswerBehavior {
    Allow,
    Deny,
    Accept,
    Decline,
    Cancel,
}

impl AnswerBehavior {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerBehavior::Allow => "allow",
            AnswerBehavior::Deny => "deny",
            AnswerBehavior::Accept => "accept",
            AnswerBehavior::Decline => "decline",
            AnswerBehavior::Cancel => "cancel",
        }
    }
}

/// Who decided a permission question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DecidedBy {
    /// The policy, with nobody asked (`deny` or `allow`).
    Policy,
    /// The client of the ask.
    Client,
    /// Nobody could be asked: the relay's fallback (deny).
    Fallback,
    /// The client did not answer in time.
    Deadline,
    /// The ask was cancelled or timed out while the question was open.
    Cancelled,
    /// Nobody: the agent withdrew the question.
    Withdrawn,
}

/// `permission.decided`: a question was answered, or withdrawn by the agent.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum PermissionDecided {
    /// The child was answered.
    Answered(PermissionAnswered),
    /// The agent withdrew the question: no answer was owed.
    Withdrawn(PermissionWithdrawn),
}

/// `permission.decided` for an answered question.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PermissionAnswered {
    pub request_id: String,
    pub tool_name: String,
    pub behavior: AnswerBehavior,
    pub decided_by: DecidedBy,
    /// Allowed for the rest of the session.
    pub remember: bool,
    /// The denial's message to the agent; null when allowed.
    pub message: Option<String>,
}

/// `permission.decided` for a question the agent withdrew.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PermissionWithdrawn {
    pub request_id: String,
    pub tool_name: String,
    /// Always `withdrawn`.
    pub decided_by: DecidedBy,
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

/// `turn.step`: a step of a turn, in the words of MCP progress.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TurnStep {
    pub turn_id: u64,
    /// `assistant: <the text's start>`, `tool use: Bash`, `API error 500: Claude Code
    /// retries ...`, ...
    pub step: String,
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

/// `turn.cancelled`: the caller withdrew its ask.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TurnCancelled {
    pub turn_id: u64,
}

/// `turn.rejected`: an ask was refused.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum TurnRejected {
    /// The session's child refused it (busy, unavailable, ...).
    Refused(AskRefused),
    /// It came from inside the session's own running turn, which it would wait on.
    FromOwnTurn(AskFromOwnTurn),
}

/// `turn.rejected` by the session's child.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AskRefused {
    pub turn_id: u64,
}

/// `turn.rejected` for an ask from inside the session's own running turn.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AskFromOwnTurn {
    /// The busy session.
    pub session: String,
    /// The process that asked (a descendant of that session's child).
    pub caller_pid: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `detail` serialises to exactly `expected` (keys in order, nulls kept, absent keys
    /// absent), and reads back as itself.
    fn wire<D>(detail: D, expected: Value)
    where
        D: EventDetail + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        let text = serde_json::to_string(&detail).unwrap();
        assert_eq!(text, expected.to_string());
        assert_eq!(serde_json::from_str::<D>(&text).unwrap(), detail);
    }

    #[test]
    fn details_that_differ_by_where_they_are_recorded_keep_their_shapes() {
        wire(
            StateCorrupt {
                file: "sessions.json".into(),
                moved_to: None,
                problems: Some(2),
            },
            json!({ "file": "sessions.json", "movedTo": null, "problems": 2 }),
        );
        wire(
            StateCorrupt {
                file: "identity.json".into(),
                moved_to: Some("/s/identity.json.corrupt".into()),
                problems: None,
            },
            json!({ "file": "identity.json", "movedTo": "/s/identity.json.corrupt" }),
        );
        wire(
            PermissionDecided::Answered(PermissionAnswered {
                request_id: "r1".into(),
                tool_name: "Bash".into(),
                behavior: AnswerBehavior::Allow,
                decided_by: DecidedBy::Policy,
                remember: false,
                message: None,
            }),
            json!({ "requestId": "r1", "toolName": "Bash", "behavior": "allow",
                    "decidedBy": "policy", "remember": false, "message": null }),
        );
        wire(
            PermissionDecided::Answered(PermissionAnswered {
                request_id: "r2".into(),
                tool_name: "mcp__github__login".into(),
                behavior: AnswerBehavior::Decline,
                decided_by: DecidedBy::Client,
                remember: false,
                message: None,
            }),
            json!({ "requestId": "r2", "toolName": "mcp__github__login", "behavior": "decline",
                    "decidedBy": "client", "remember": false, "message": null }),
        );
        wire(
            PermissionDecided::Withdrawn(PermissionWithdrawn {
                request_id: "r1".into(),
                tool_name: "Bash".into(),
                decided_by: DecidedBy::Withdrawn,
            }),
            json!({ "requestId": "r1", "toolName": "Bash", "decidedBy": "withdrawn" }),
        );
        wire(
            BudgetExhausted::Refused(BudgetRefused {
                session: "a".into(),
                scope: BudgetScope::AllSessions,
                flag: "--budget-usd".into(),
                spent_usd: 1.5,
                limit_usd: 1.0,
            }),
            json!({ "session": "a", "scope": "allSessions", "flag": "--budget-usd",
                    "spentUsd": 1.5, "limitUsd": 1.0 }),
        );
        wire(
            BudgetExhausted::TurnEnded(BudgetTurnEnded {
                turn_id: 3,
                session: "a".into(),
                scope: None,
                limit_usd: None,
                cost_usd: Some(0.25),
                session_cost_usd: None,
            }),
            json!({ "turnId": 3, "session": "a", "scope": null, "limitUsd": null,
                    "costUsd": 0.25, "sessionCostUsd": null }),
        );
        wire(
            TurnRejected::Refused(AskRefused { turn_id: 4 }),
            json!({ "turnId": 4 }),
        );
        wire(
            TurnRejected::FromOwnTurn(AskFromOwnTurn {
                session: "a".into(),
                caller_pid: 42,
            }),
            json!({ "session": "a", "callerPid": 42 }),
        );
        wire(ChildRestartRequested { pid: None }, json!({ "pid": null }));
    }
}
