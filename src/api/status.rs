//! `status`, `sessions` and `healthz`: the daemon, its sessions and children, the turn
//! in flight, totals and counters; and the error object a result may carry.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::nesting::Nesting;
use crate::permissions::{Decider, PermissionMode};

/// Parameters of `status` (none; an empty object or no params).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {}

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
    pub config: StatusConfig,
    /// Every session (`child`, `turn`, `queue` above are the `default` session's;
    /// `totals` add up all of them).
    #[serde(default)]
    pub sessions: Vec<SessionInfo>,
    /// Warm spare CLIs (`--spare-sessions`): not sessions, listed here only.
    #[serde(default)]
    pub spares: SparesInfo,
}

/// The resolved configuration as `status` shows it: every setting, secrets masked (a
/// token in the CLI's arguments, say, reads `***`), the listen token only as `(set)`.
/// One field per setting of `Config`, in its order; the flags' `--help` says more of each.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusConfig {
    /// Extra arguments for the CLI (`--claude-arg`).
    pub claude_args: Vec<String>,
    /// The CLI's model (`--model`); null for the CLI's default.
    pub model: Option<String>,
    /// The CLI's permission mode (`--permission-mode`); null for the CLI's default.
    pub permission_mode: Option<PermissionMode>,
    /// The most permissive mode an ask may choose (`--permission-ceiling`).
    pub permission_ceiling: PermissionMode,
    /// Rules the CLI allows (`--allow-tool`) and denies (`--deny-tool`) without asking.
    pub allow_tools: Vec<String>,
    pub deny_tools: Vec<String>,
    /// The children's working directory (`--cwd`).
    pub cwd: PathBuf,
    /// Where an ask may start a session with its own `cwd` (`--allow-dir`).
    pub allow_dirs: Vec<PathBuf>,
    /// What each session, and all of them together, may spend in USD
    /// (`--session-budget-usd`, `--budget-usd`); null for no limit.
    pub session_budget_usd: Option<f64>,
    pub budget_usd: Option<f64>,
    /// The state directory (`--state-dir`).
    pub state_dir: PathBuf,
    /// The HTTP address (`--listen`); null without HTTP.
    pub listen: Option<String>,
    /// `(set)` when a listen token was given (`--listen-token`), never the token.
    pub listen_token: Option<String>,
    /// The CLI to run (`--claude-bin`).
    pub claude_bin: String,
    /// Asks that may wait behind the running one before "busy" errors.
    pub queue_size: usize,
    /// The default turn timeout.
    pub turn_timeout_ms: u64,
    /// After a timeout's interrupt, how long the result is waited for before the kill.
    pub interrupt_grace_ms: u64,
    /// Events kept in memory for `events` (and as many `turn.step` events).
    pub events_ring_size: usize,
    /// The longest line accepted from the child, and on stdin, in bytes.
    pub max_child_line_bytes: usize,
    pub max_request_bytes: usize,
    /// The first restart delay (doubling per failed start) and the longest.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// A child that ran this long counts as healthy and resets the backoff.
    pub healthy_after_ms: u64,
    /// On stop, how long the child may take to exit after its stdin closes.
    pub stop_grace_ms: u64,
    /// A turn whose child prints nothing this long is interrupted; 0: no watchdog.
    pub stall_timeout_ms: u64,
    /// Failed starts within `crashLoopWindowMs` that mark the child `failed`.
    pub crash_loop_max: u32,
    pub crash_loop_window_ms: u64,
    /// After the child dies, the next one resumes its session.
    pub resume_on_restart: bool,
    /// `events.jsonl` is rotated past this size; this many rotated files are kept.
    pub event_log_max_bytes: u64,
    pub event_log_keep: usize,
    /// Who decides what the CLI's rules leave open (`--permission-decider`).
    pub permission_decider: Decider,
    /// How long a relayed permission question waits for the client.
    pub permission_timeout_ms: u64,
    /// Sessions whose child may run at once (`--max-sessions`).
    pub max_sessions: usize,
    /// CLIs kept started ahead of need (`--spare-sessions`).
    pub spare_sessions: usize,
    /// A session idle this long has its child stopped.
    pub session_idle_ms: u64,
    /// How long a background ask's result is kept once its turn ended.
    pub result_ttl_ms: u64,
    /// How many claude-coded may run nested in each other's Claude Code.
    pub max_depth: u32,
    /// Loopback HTTP is served without a token.
    pub listen_no_token: bool,
    /// The config file that was read; null when none was.
    pub config_file: Option<PathBuf>,
}

/// The warm spare CLIs waiting to be taken by a new session.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SparesInfo {
    /// Initialized: a new session that matches takes one at once.
    pub ready: u32,
    /// Started, not yet through their `initialize`.
    pub warming: u32,
}

/// Where a daemon is in its life, as `status` and `daemon-state.json` say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DaemonState {
    /// Serving.
    Running,
    /// Stopping: asks in flight get "stopping" answers.
    Stopping,
    /// Stopped (only in the saved file, after it exited).
    Stopped,
    /// The saved file says running or stopping, but its process is gone (killed).
    Gone,
}

impl std::fmt::Display for DaemonState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DaemonState::Running => "running",
            DaemonState::Stopping => "stopping",
            DaemonState::Stopped => "stopped",
            DaemonState::Gone => "gone",
        })
    }
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
    /// The turn in flight: how long it has run, its prompt and its latest step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<TurnInfo>,
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
    /// `mcp`, `acp` or `plain`.
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

    /// An ACP client, as its `initialize` named itself.
    pub fn acp(name: Option<String>, version: Option<String>) -> ClientSession {
        ClientSession {
            surface: "acp".to_string(),
            protocol_version: Some("1".to_string()),
            name,
            version,
            ..ClientSession::plain()
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
    pub state: DaemonState,
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
    /// The CLI's slash commands as its warm-up answer listed them (for an ACP client's
    /// command list); not part of `status`.
    #[serde(skip)]
    #[schemars(skip)]
    pub commands: Option<std::sync::Arc<Vec<CliCommand>>>,
}

/// One slash command of the CLI.
#[derive(Debug, Clone, PartialEq)]
pub struct CliCommand {
    pub name: String,
    pub description: String,
    /// What it takes after its name (`<optional custom summarization instructions>`).
    pub argument_hint: String,
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
    /// The turn's latest step, in the words of MCP progress (`tool use: Bash`,
    /// `assistant: ...`); absent until it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
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
