//! ACP's JSON-RPC 2.0 framing, ours: one message per line, parsed once into what it is
//! (a request, a notification, or a response to one of our requests), and the lines we
//! write. Ids are kept as the client wrote them and written back unchanged.

use agent_client_protocol_schema::v1::Error;
use serde::Serialize;
use serde_json::{Value, json};

/// One line from the client.
#[derive(Debug, PartialEq)]
pub(super) enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    /// A response to a request of ours: routed by its id.
    Response,
}

/// A line that cannot be served: the id to answer under (`null` when unknown) and why.
#[derive(Debug)]
pub(super) struct Refused {
    pub(super) id: Value,
    pub(super) error: Error,
}

/// Parses one line.
/// (The refusal is boxed: an ACP error is large, and the happy path should not carry it.)
pub(super) fn parse(line: &[u8]) -> Result<Incoming, Box<Refused>> {
    let refuse = |id: Value, error: Error| Box::new(Refused { id, error });
    let Ok(Value::Object(mut message)) = serde_json::from_slice::<Value>(line) else {
        return Err(refuse(
            Value::Null,
            Error::parse_error().data(json!("a message must be one JSON object on one line")),
        ));
    };
    let id = message.remove("id");
    if let Some(id) = &id
        && !(id.is_string() || id.is_i64() || id.is_u64() || id.is_null())
    {
        return Err(refuse(
            Value::Null,
            Error::invalid_request().data(json!("an id must be a string or an integer")),
        ));
    }
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(refuse(
            id.unwrap_or(Value::Null),
            Error::invalid_request().data(json!("\"jsonrpc\" must be \"2.0\"")),
        ));
    }
    let method = match message.remove("method") {
        Some(Value::String(method)) => method,
        None if id.is_some()
            && (message.contains_key("result") || message.contains_key("error")) =>
        {
            return Ok(Incoming::Response);
        }
        _ => {
            return Err(refuse(
                id.unwrap_or(Value::Null),
                Error::invalid_request().data(json!("a request needs a string \"method\"")),
            ));
        }
    };
    let params = message.remove("params").unwrap_or(Value::Null);
    Ok(match id {
        Some(id) => Incoming::Request { id, method, params },
        None => Incoming::Notification { method, params },
    })
}

/// A success response line.
pub(super) fn result(id: &Value, result: impl Serialize) -> String {
    match serde_json::to_value(result) {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
        Err(err) => error(
            id,
            &Error::internal_error().data(json!(format!("cannot encode the answer: {err}"))),
        ),
    }
}

/// An error response line.
pub(super) fn error(id: &Value, error: &Error) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": error}).to_string()
}

/// A notification line.
pub(super) fn notification(method: &str, params: impl Serialize) -> String {
    let params = serde_json::to_value(params).unwrap_or(Value::Null);
    json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string()
}

/// An invalid-params error naming what is wrong.
pub(super) fn invalid(reason: impl Into<String>) -> Error {
    Error::invalid_params().data(json!(reason.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_parsed_once_into_what_it_is() {
        let request =
            parse(br#"{"jsonrpc":"2.0","id":7,"method":"session/new","params":{"cwd":"/p"}}"#);
        assert_eq!(
            request.unwrap(),
            Incoming::Request {
                id: json!(7),
                method: "session/new".into(),
                params: json!({"cwd": "/p"})
            }
        );
        let note =
            parse(br#"{"jsonrpc":"2.0","method":"session/cancel","params":{"sessionId":"s"}}"#);
        assert!(matches!(note.unwrap(), Incoming::Notification { .. }));
        let response = parse(br#"{"jsonrpc":"2.0","id":"claude-coded-1","result":{}}"#);
        assert_eq!(response.unwrap(), Incoming::Response);
        let bad = parse(b"[1]").unwrap_err();
        assert_eq!(bad.id, Value::Null);
        assert_eq!(i32::from(bad.error.code), -32700);
        let no_version = parse(br#"{"id":3,"method":"x"}"#).unwrap_err();
        assert_eq!(no_version.id, json!(3));
        let float_id = parse(br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#).unwrap_err();
        assert_eq!(i32::from(float_id.error.code), -32600);
    }
}
