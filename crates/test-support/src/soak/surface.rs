//! The two protocols the soak speaks: the lines it sends and how it reads the answers.
//!
//! On MCP the soak declares the raw-event opt-in, so each ask's child messages come as
//! `notifications/claude-coded/event` with the params of the plain surface's `ask/event`
//! (`requestId`, `seq`): the same accounting serves both surfaces.

use serde_json::{Value, json};

use super::Answer;

/// Which surface the bridge is driven on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoakSurface {
    Plain,
    Mcp,
}

/// The MCP tool result's `_meta` key holding a failed call's `{code, message, data}`.
const ERROR_META_KEY: &str = "claude-coded/error";

impl SoakSurface {
    /// The value of claude-coded's `--surface`.
    pub fn flag(self) -> &'static str {
        match self {
            SoakSurface::Plain => "plain",
            SoakSurface::Mcp => "mcp",
        }
    }

    /// The handshake to send first (and the id of its answer), if the surface has one.
    pub fn handshake(self) -> Option<(Value, &'static str)> {
        let init = json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {"experimental": {"claude-coded/events": {}}},
            "clientInfo": {"name": "soak", "version": "0"}}});
        (self == SoakSurface::Mcp).then_some((init, "init"))
    }

    /// Sent once the handshake is answered.
    pub fn initialized(self) -> Option<Value> {
        (self == SoakSurface::Mcp)
            .then(|| json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    }

    pub fn ask(self, id: u64, params: Value) -> Value {
        match self {
            SoakSurface::Plain => {
                json!({"jsonrpc": "2.0", "id": id, "method": "ask", "params": params})
            }
            SoakSurface::Mcp => json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                                       "params": {"name": "ask", "arguments": params}}),
        }
    }

    /// The cancellation of request `id` (MCP only).
    pub fn cancel(self, id: u64) -> Option<Value> {
        (self == SoakSurface::Mcp).then(|| {
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": id, "reason": "soak: cancel at turn start"}})
        })
    }

    pub fn status(self, id: &str) -> Value {
        match self {
            SoakSurface::Plain => json!({"jsonrpc": "2.0", "id": id, "method": "status"}),
            SoakSurface::Mcp => json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                                       "params": {"name": "status", "arguments": {"full": true}}}),
        }
    }

    /// The `status` result in an answer to [`SoakSurface::status`].
    pub fn status_result(self, response: &Value) -> Value {
        match self {
            SoakSurface::Plain => response["result"].clone(),
            SoakSurface::Mcp => response["result"]["structuredContent"]["full"].clone(),
        }
    }

    /// How an ask was answered.
    pub fn classify(self, response: &Value) -> Answer {
        let ok = match self {
            SoakSurface::Plain => response.pointer("/result/ok"),
            SoakSurface::Mcp => response.pointer("/result/structuredContent/ok"),
        };
        if let Some(ok) = ok.and_then(Value::as_bool) {
            return if ok { Answer::Ok } else { Answer::NotOk };
        }
        let code = response.pointer("/error/code").or_else(|| {
            response
                .pointer("/result/_meta")
                .and_then(|meta| meta.get(ERROR_META_KEY))
                .and_then(|error| error.get("code"))
        });
        match code.and_then(Value::as_i64) {
            Some(code) => Answer::Error(code),
            None => Answer::Malformed,
        }
    }

    /// The answer text of an ask's result.
    pub fn result_text(self, response: &Value) -> Option<&str> {
        let text = match self {
            SoakSurface::Plain => response.pointer("/result/result"),
            SoakSurface::Mcp => response.pointer("/result/structuredContent/result"),
        };
        text.and_then(Value::as_str)
    }

    /// The result's count of streamed child messages, when the surface reports it.
    pub fn messages(self, response: &Value) -> Option<u64> {
        match self {
            SoakSurface::Plain => response.pointer("/result/messages")?.as_u64(),
            SoakSurface::Mcp => None,
        }
    }
}
