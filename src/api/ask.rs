//! `ask` and what follows it: its parameters and result, handles of detached turns,
//! `wait`, `cancel`, permission questions and their answers, `restart` and `stop`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RequestId;
use crate::permissions::PermissionMode;

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
    /// An alias kept for scripts written before `background`: `false` is
    /// `background: true`. Default `true`: the answer comes when the turn ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,
    /// Run the turn in the background: answer at once with a handle (`turnId`, `session`),
    /// then collect the answer with `wait` (or `result`), or stop it with `cancel`. For long
    /// work, so the call does not outlive the host's tool-call limit.
    #[serde(default, skip_serializing_if = "is_false")]
    pub background: bool,
    /// Plain surface only: also stream the CLI's partial messages as `ask/event`: its
    /// `stream_event` lines (the answer's text as it is written, `content_block_delta`
    /// with a `text_delta`) and its `system`/`status` lines. Default `false`: only the
    /// finished messages, as before.
    #[serde(default, skip_serializing_if = "is_false")]
    pub partial_messages: bool,
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
    /// For a question of one of the agent's MCP servers (`tool` is `mcp__<server>`): its
    /// message and form; answer `allow` with the form's `content`, or `deny` to decline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elicitation: Option<ElicitationInfo>,
    /// The answer must come within this many ms, or the tool is denied.
    pub deadline_ms: u64,
}

/// An MCP server's question to the user, relayed by the agent.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElicitationInfo {
    /// The server's name in the agent's MCP configuration.
    pub server: String,
    pub message: String,
    /// The form the server asks to be filled in (JSON Schema: an object of primitive
    /// fields); absent for a question that sends the user to a page (`url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
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
    /// For an MCP server's question answered `allow`: the filled-in form.
    #[serde(default)]
    pub content: Option<Value>,
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
