//! The protocol layer's errors (what a request line can be wrong with), and the one place
//! errors become JSON-RPC error objects; the codes and the core's errors are in `error`.

use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};

use thiserror::Error;

use crate::error::{DaemonError, code};

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
            RpcError::Daemon(error) => error.code_and_data(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::AskError;

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
