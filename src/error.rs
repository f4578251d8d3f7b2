//! The core's errors and the one table of their JSON-RPC codes. Below the daemon and
//! every surface: the core refuses with a [`DaemonError`], and each surface reports it
//! with the code and data this module gives it.

use serde_json::{Value, json};
use thiserror::Error;

use crate::api::ErrorInfo;
use crate::supervisor::AskError;

/// JSON-RPC error codes. The standard ones, then ours in the server range.
pub(crate) mod code {
    pub(crate) const PARSE_ERROR: i32 = -32700;
    pub(crate) const INVALID_REQUEST: i32 = -32600;
    pub(crate) const METHOD_NOT_FOUND: i32 = -32601;
    pub(crate) const INVALID_PARAMS: i32 = -32602;
    pub(crate) const INTERNAL_ERROR: i32 = -32603;
    /// The queue of waiting asks is full.
    pub(crate) const BUSY: i32 = -32000;
    /// The turn did not finish within its timeout.
    pub(crate) const TIMEOUT: i32 = -32001;
    /// The child exited or was killed during the turn.
    pub(crate) const CHILD_EXITED: i32 = -32002;
    /// The child cannot be started (for example the CLI is not installed).
    pub(crate) const UNAVAILABLE: i32 = -32003;
    /// claude-coded is shutting down.
    pub(crate) const STOPPING: i32 = -32004;
    /// A request line was longer than the configured limit.
    pub(crate) const REQUEST_TOO_LARGE: i32 = -32005;
    /// The child printed a line longer than the configured limit.
    pub(crate) const OUTPUT_TOO_LARGE: i32 = -32006;
    /// The ask was cancelled by the caller.
    pub(crate) const CANCELLED: i32 = -32007;
    /// The child printed nothing for the stall timeout during the turn.
    pub(crate) const STALLED: i32 = -32008;
    /// This claude-coded runs nested at its depth limit and starts no child (`--max-depth`).
    pub(crate) const NESTING_LIMIT: i32 = -32009;
    /// A session or the whole daemon has spent its configured budget.
    pub(crate) const BUDGET_EXHAUSTED: i32 = -32010;
    /// The ask's session was stopped before it was answered (`closeSession`).
    pub(crate) const SESSION_STOPPED: i32 = -32011;
}

/// Errors of this layer: a call the core refuses or could not complete.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum DaemonError {
    #[error("invalid params: {field}: {reason}")]
    InvalidParams { field: &'static str, reason: String },
    #[error(transparent)]
    Ask(#[from] AskError),
    #[error(
        "this claude-coded serves a client on stdio (pid {pid}); it stops when that client closes its stdin, not on request"
    )]
    NotStoppable { pid: u32 },
    #[error(
        "busy: {busy} of the {live} sessions that may run at once (--max-sessions {max}) are running turns and none can be stopped to make room; try again later"
    )]
    SessionsFull {
        live: usize,
        max: usize,
        /// Live sessions with a turn running or waiting (or an ask on its way).
        busy: usize,
    },
    #[error(
        "budget exhausted: {scope} spent ${} of its ${} (--{flag}); only the user can raise it",
        usd(*spent),
        usd(*limit)
    )]
    BudgetExhausted {
        scope: String,
        flag: &'static str,
        spent: f64,
        limit: f64,
    },
    /// A background turn's error, as it was recorded when the turn ended (kept across
    /// restarts, so as the error object, not the error).
    #[error("{}", .0.message)]
    TurnFailed(ErrorInfo),
}

impl DaemonError {
    /// The error object this error is on the wire.
    pub(crate) fn info(&self) -> ErrorInfo {
        let (code, message, data) = self.parts();
        ErrorInfo {
            code,
            message,
            data,
        }
    }

    /// Code, message and structured data, for surfaces that report an error inside a
    /// result rather than as a JSON-RPC error (MCP tool results with `isError: true`).
    pub(crate) fn parts(&self) -> (i32, String, Option<Value>) {
        let (code, data) = self.code_and_data();
        (code, self.to_string(), data)
    }

    /// Its code in the table, and its structured data.
    pub(crate) fn code_and_data(&self) -> (i32, Option<Value>) {
        match self {
            DaemonError::InvalidParams { field, .. } => {
                (code::INVALID_PARAMS, Some(json!({ "field": field })))
            }
            DaemonError::Ask(ask) => ask_code_and_data(ask),
            DaemonError::SessionsFull { live, max, busy } => (
                code::BUSY,
                Some(
                    json!({ "kind": "sessionsFull", "live": live, "maxSessions": max,
                     "busy": busy }),
                ),
            ),
            DaemonError::BudgetExhausted {
                scope,
                spent,
                limit,
                ..
            } => (
                code::BUDGET_EXHAUSTED,
                Some(
                    json!({ "kind": "budgetExhausted", "scope": scope, "spentUsd": spent,
                     "limitUsd": limit }),
                ),
            ),
            DaemonError::TurnFailed(info) => (info.code, info.data.clone()),
            DaemonError::NotStoppable { pid } => (
                code::INVALID_REQUEST,
                Some(json!({ "kind": "notStoppable", "pid": pid })),
            ),
        }
    }
}

/// Dollars to the millionth, without trailing zeros: `0.00028`, `2.5`.
fn usd(amount: f64) -> String {
    crate::api::usd_text(amount)
}

fn ask_code_and_data(error: &AskError) -> (i32, Option<Value>) {
    let kind = |k: &str| Some(json!({ "kind": k }));
    match error {
        AskError::QueueFull { waiting, capacity } => (
            code::BUSY,
            Some(json!({ "kind": "busy", "waiting": waiting, "capacity": capacity })),
        ),
        AskError::Timeout { after_ms } => (
            code::TIMEOUT,
            Some(json!({ "kind": "timeout", "timeoutMs": after_ms })),
        ),
        AskError::ChildExited {
            exit_code,
            signal,
            stderr_tail,
            ..
        } => (
            code::CHILD_EXITED,
            Some(
                json!({ "kind": "childExited", "exitCode": exit_code, "signal": signal,
                         "stderrTail": stderr_tail }),
            ),
        ),
        AskError::Stalled { silent_ms } => (
            code::STALLED,
            Some(json!({ "kind": "stalled", "silentMs": silent_ms })),
        ),
        AskError::OutputTooLarge { len, limit } => (
            code::OUTPUT_TOO_LARGE,
            Some(json!({ "kind": "outputTooLarge", "length": len, "limit": limit })),
        ),
        AskError::Unavailable { stderr_tail, .. } => (
            code::UNAVAILABLE,
            Some(json!({ "kind": "unavailable", "stderrTail": stderr_tail })),
        ),
        AskError::NestingLimit { depth, limit, .. } => (
            code::NESTING_LIMIT,
            Some(json!({ "kind": "nestingLimit", "depth": depth, "limit": limit })),
        ),
        AskError::Stopping => (code::STOPPING, kind("stopping")),
        AskError::SessionStopped { session, reason } => (
            code::SESSION_STOPPED,
            Some(json!({ "kind": "sessionStopped", "session": session, "reason": reason })),
        ),
        AskError::Cancelled => (code::CANCELLED, kind("cancelled")),
        // The same code and data as the refusal before the ask is queued, plus what
        // running turns hold.
        AskError::BudgetExhausted {
            scope,
            spent,
            held,
            limit,
            ..
        } => (
            code::BUDGET_EXHAUSTED,
            Some(
                json!({ "kind": "budgetExhausted", "scope": scope, "spentUsd": spent,
                         "limitUsd": limit, "heldUsd": held }),
            ),
        ),
    }
}
