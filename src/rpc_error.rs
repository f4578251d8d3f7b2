//! The JSON-RPC error table, and the one place errors become JSON-RPC error objects.

use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};
use thiserror::Error;

use crate::daemon::DaemonError;
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

/// Errors of the protocol layer: what a request line can be wrong with, or the core's error.
#[derive(Debug, Clone, Error, PartialEq)]
pub(crate) enum RpcError {
    #[error("parse error: {0}")]
    Parse(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("method not found: {0}")]
    MethodNotFound(String),
    #[error("invalid params: {0}")]
    InvalidParams(String),
    #[error("invalid params: {field}: {message}")]
    InvalidParam { field: String, message: String },
    #[error(
        "request too large: the line has {len} bytes, the limit is {limit} (--max-request-bytes)"
    )]
    RequestTooLarge { len: usize, limit: usize },
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

impl RpcError {
    /// The JSON-RPC error object: code from the table, the message, and structured data.
    pub(crate) fn to_error_object(&self) -> ErrorObjectOwned {
        let (code, data) = self.code_and_data();
        ErrorObjectOwned::owned(code, self.to_string(), data)
    }

    fn code_and_data(&self) -> (i32, Option<Value>) {
        match self {
            RpcError::Parse(_) => (code::PARSE_ERROR, None),
            RpcError::InvalidRequest(_) => (code::INVALID_REQUEST, None),
            RpcError::MethodNotFound(m) => (code::METHOD_NOT_FOUND, Some(json!({ "method": m }))),
            RpcError::InvalidParams(_) => (code::INVALID_PARAMS, None),
            RpcError::InvalidParam { field, .. } => {
                (code::INVALID_PARAMS, Some(json!({ "field": field })))
            }
            RpcError::RequestTooLarge { len, limit } => (
                code::REQUEST_TOO_LARGE,
                Some(json!({ "length": len, "limit": limit })),
            ),
            RpcError::Internal(_) => (code::INTERNAL_ERROR, None),
            RpcError::Daemon(DaemonError::InvalidParams { field, .. }) => {
                (code::INVALID_PARAMS, Some(json!({ "field": field })))
            }
            RpcError::Daemon(DaemonError::Ask(ask)) => ask_code_and_data(ask),
            RpcError::Daemon(DaemonError::SessionsFull { live, max, busy }) => (
                code::BUSY,
                Some(
                    json!({ "kind": "sessionsFull", "live": live, "maxSessions": max,
                             "busy": busy }),
                ),
            ),
            RpcError::Daemon(DaemonError::BudgetExhausted {
                scope,
                spent,
                limit,
                ..
            }) => (
                code::BUDGET_EXHAUSTED,
                Some(
                    json!({ "kind": "budgetExhausted", "scope": scope, "spentUsd": spent,
                             "limitUsd": limit }),
                ),
            ),
            RpcError::Daemon(DaemonError::TurnFailed(info)) => (info.code, info.data.clone()),
            RpcError::Daemon(DaemonError::NotStoppable { pid }) => (
                code::INVALID_REQUEST,
                Some(json!({ "kind": "notStoppable", "pid": pid })),
            ),
        }
    }
}

/// Code, message and structured data of a core error, for surfaces that report it inside
/// a result rather than as a JSON-RPC error (MCP tool results with `isError: true`).
pub(crate) fn daemon_error_parts(error: &DaemonError) -> (i32, String, Option<Value>) {
    let rpc = RpcError::Daemon(error.clone());
    let (code, data) = rpc.code_and_data();
    (code, rpc.to_string(), data)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ask_error_has_its_own_code() {
        let errors = [
            AskError::QueueFull {
                waiting: 1,
                capacity: 1,
            },
            AskError::Timeout { after_ms: 1 },
            AskError::ChildExited {
                how: "x".into(),
                exit_code: Some(1),
                signal: None,
                stderr_tail: vec![],
            },
            AskError::OutputTooLarge { len: 2, limit: 1 },
            AskError::Unavailable {
                reason: "x".into(),
                stderr_tail: vec![],
            },
            AskError::NestingLimit {
                depth: 1,
                limit: 1,
                reason: "x".into(),
            },
            AskError::Stopping,
            AskError::SessionStopped {
                session: "a".into(),
                reason: "x".into(),
            },
            AskError::Cancelled,
            AskError::Stalled { silent_ms: 1 },
            AskError::BudgetExhausted {
                scope: "all sessions".into(),
                flag: "budget-usd",
                spent: 1.0,
                held: 0.0,
                limit: 1.0,
            },
        ];
        let mut codes: Vec<i32> = errors
            .iter()
            .map(|e| {
                RpcError::from(DaemonError::from(e.clone()))
                    .to_error_object()
                    .code()
            })
            .collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
    }

    #[test]
    fn child_exit_message_includes_stderr_tail() {
        let err = RpcError::from(DaemonError::from(AskError::ChildExited {
            how: "exited with code 3".into(),
            exit_code: Some(3),
            signal: None,
            stderr_tail: vec!["boom".into()],
        }));
        let obj = err.to_error_object();
        assert_eq!(obj.code(), code::CHILD_EXITED);
        assert!(obj.message().contains("exited with code 3"));
        assert!(obj.message().contains("boom"));
    }
}
