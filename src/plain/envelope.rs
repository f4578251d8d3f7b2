//! Checking one request line against JSON-RPC 2.0 before it reaches the method table.

use serde_json::{Map, Value};

use crate::rpc_error::RpcError;

/// What a well-formed line asks for.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// A request: must be answered.
    Call {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    /// A notification (no `id`): must never be answered.
    Notification { method: String },
    /// A response object sent by the client; we send no requests, so it is only logged.
    Response { id: Value },
}

/// A line that cannot be served, with the id to answer under (`null` when unknown).
#[derive(Debug, PartialEq)]
pub struct Rejected {
    pub id: Value,
    /// Boxed: the error type is large and rejections are rare.
    pub error: Box<RpcError>,
}

/// Parses and checks one line.
pub fn parse(bytes: &[u8]) -> Result<Incoming, Rejected> {
    let value: Value = serde_json::from_slice(bytes).map_err(|err| Rejected {
        id: Value::Null,
        error: Box::new(RpcError::Parse(parse_problem(bytes, &err))),
    })?;
    let object = match value {
        Value::Object(object) => object,
        Value::Array(_) => {
            return Err(invalid(
                Value::Null,
                "batches are not supported; send one request per line",
            ));
        }
        _ => return Err(invalid(Value::Null, "a request must be a JSON object")),
    };
    classify(object)
}

fn classify(mut object: Map<String, Value>) -> Result<Incoming, Rejected> {
    let id = match object.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => {
            return Err(invalid(
                Value::Null,
                "id must be a string, a number or null",
            ));
        }
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(invalid(reply_id, "jsonrpc must be \"2.0\""));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => return Err(invalid(reply_id, "method must be a string")),
        None if object.contains_key("result") || object.contains_key("error") => {
            return Ok(Incoming::Response { id: reply_id });
        }
        None => return Err(invalid(reply_id, "method is missing")),
    };
    let params = match object.remove("params") {
        None | Some(Value::Null) => None,
        Some(params @ Value::Object(_)) => Some(params),
        Some(Value::Array(_)) => {
            return Err(Rejected {
                id: reply_id,
                error: Box::new(RpcError::InvalidParams(
                    "params must be an object with named fields".into(),
                )),
            });
        }
        Some(_) => return Err(invalid(reply_id, "params must be an object")),
    };
    Ok(match id {
        Some(id) => Incoming::Call { id, method, params },
        None => Incoming::Notification { method },
    })
}

fn invalid(id: Value, reason: &str) -> Rejected {
    Rejected {
        id,
        error: Box::new(RpcError::InvalidRequest(reason.to_string())),
    }
}

fn parse_problem(bytes: &[u8], err: &serde_json::Error) -> String {
    if std::str::from_utf8(bytes).is_err() {
        "the line is not valid UTF-8".to_string()
    } else {
        err.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(line: &str) -> i32 {
        parse(line.as_bytes())
            .unwrap_err()
            .error
            .to_error_object()
            .code()
    }

    #[test]
    fn good_calls_and_notifications() {
        let call =
            parse(br#"{"jsonrpc":"2.0","id":7,"method":"ask","params":{"prompt":"x"}}"#).unwrap();
        assert_eq!(
            call,
            Incoming::Call {
                id: json!(7),
                method: "ask".into(),
                params: Some(json!({"prompt": "x"}))
            }
        );
        let note = parse(br#"{"jsonrpc":"2.0","method":"ask"}"#).unwrap();
        assert_eq!(
            note,
            Incoming::Notification {
                method: "ask".into()
            }
        );
        let resp = parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(resp, Incoming::Response { id: json!("a") });
    }

    #[test]
    fn malformed_lines_get_the_right_codes() {
        assert_eq!(code("{not json"), -32700);
        assert_eq!(code("[1,2]"), -32600);
        assert_eq!(code("42"), -32600);
        assert_eq!(code(r#"{"jsonrpc":"1.0","id":1,"method":"ask"}"#), -32600);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":{},"method":"ask"}"#), -32600);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":5}"#), -32600);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1}"#), -32600);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"ask","params":["x"]}"#),
            -32602
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"ask","params":"x"}"#),
            -32600
        );
        let rejected = parse(br#"{"jsonrpc":"1.0","id":"k","method":"ask"}"#).unwrap_err();
        assert_eq!(rejected.id, json!("k"));
        let utf8 = parse(b"\xff\xfe").unwrap_err();
        assert!(utf8.error.to_string().contains("UTF-8"));
    }
}
