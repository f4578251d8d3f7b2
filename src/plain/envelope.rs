//! Checking one request line against JSON-RPC 2.0 before it reaches the method table.

use serde_json::{Map, Value};

use crate::rpc_error::RpcError;

/// What a well-formed line asks for.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming {
    /// A request: must be answered.
    Call {
        id: Value,
        /// The id as the client wrote it, for the answer: a number beyond 64 bits (or
        /// with digits a float cannot hold) must come back exactly as sent.
        raw_id: String,
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
pub(crate) struct Rejected {
    pub id: Value,
    /// Boxed: the error type is large and rejections are rare.
    pub error: Box<RpcError>,
}

/// Parses and checks one line.
pub(crate) fn parse(bytes: &[u8]) -> Result<Incoming, Rejected> {
    let value: Value = serde_json::from_slice(bytes).map_err(|err| Rejected {
        id: Value::Null,
        error: Box::new(RpcError::Parse(parse_problem(bytes, &err))),
    })?;
    let lossy_id = value.get("id").is_some_and(is_lossy);
    let incoming = classify_value(value)?;
    Ok(match incoming {
        Incoming::Call {
            id, method, params, ..
        } if lossy_id => Incoming::Call {
            raw_id: raw_id(bytes).unwrap_or_else(|| id.to_string()),
            id,
            method,
            params,
        },
        other => other,
    })
}

/// A number no 64-bit integer holds: its text is the only exact form of it.
fn is_lossy(id: &Value) -> bool {
    id.is_number() && id.as_i64().is_none() && id.as_u64().is_none()
}

/// The key of an id written as `raw` (in a cancellation, say): the same text
/// [`Incoming::Call::raw_id`] holds for a request with that id.
pub(crate) fn id_key(raw: &serde_json::value::RawValue) -> String {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(id) if !is_lossy(&id) => id.to_string(),
        _ => raw.get().to_string(),
    }
}

/// The `id` member's text exactly as it appears in the line.
fn raw_id(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow)]
        id: Option<&'a serde_json::value::RawValue>,
    }
    let only: IdOnly = serde_json::from_slice(bytes).ok()?;
    only.id.map(|raw| raw.get().to_string())
}

fn classify_value(value: Value) -> Result<Incoming, Rejected> {
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
        // A notification is never answered, however wrong its params.
        Some(_) if id.is_none() => return Ok(Incoming::Notification { method }),
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
        Some(id) => Incoming::Call {
            raw_id: id.to_string(),
            id,
            method,
            params,
        },
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
                raw_id: "7".into(),
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
        // Never answered, so never rejected for its params either.
        for params in ["[]", "\"x\"", "7"] {
            let line = format!(r#"{{"jsonrpc":"2.0","method":"ask","params":{params}}}"#);
            assert_eq!(
                parse(line.as_bytes()).unwrap(),
                Incoming::Notification {
                    method: "ask".into()
                }
            );
        }
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

/// JSON-RPC 2.0's rules as properties over arbitrary lines and request-shaped objects:
/// nothing panics, a request is never mistaken for a notification (or the reverse), an
/// answer never carries an id the client did not send, and every well-formed request or
/// notification is accepted whatever other fields come with it.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use test_support::arb_json::json;

    /// Each member absent (`None`) or of any type, valid ones more often.
    fn member(valid: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            2 => Just(None),
            4 => valid.prop_map(Some),
            2 => json().prop_map(Some),
        ]
    }

    fn request() -> impl Strategy<Value = Map<String, Value>> {
        let id = prop_oneof![
            ".{0,6}".prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            Just(Value::Null)
        ];
        let params = prop_oneof![
            Just(Value::Null),
            prop::collection::vec(("[a-z]{1,6}", json()), 0..3)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ];
        (
            member(Just(Value::from("2.0"))),
            member(id),
            member("[a-z/]{0,8}".prop_map(Value::from)),
            member(params),
            member(json()),
            prop::collection::vec(("[a-z]{1,6}", json()), 0..2),
        )
            .prop_map(|(jsonrpc, id, method, params, result, extra)| {
                let mut object: Map<String, Value> = extra.into_iter().collect();
                let members = [
                    ("jsonrpc", jsonrpc),
                    ("id", id),
                    ("method", method),
                    ("params", params),
                    ("result", result),
                ];
                for (key, value) in members {
                    object.remove(key);
                    if let Some(value) = value {
                        object.insert(key.to_string(), value);
                    }
                }
                object
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn any_bytes_parse_or_get_a_parse_error_with_a_null_id(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let is_json = serde_json::from_slice::<Value>(&bytes).is_ok();
            match parse(&bytes) {
                Err(Rejected { id, error }) if matches!(*error, RpcError::Parse(_)) => {
                    prop_assert!(!is_json);
                    prop_assert_eq!(id, Value::Null);
                }
                _ => prop_assert!(is_json),
            }
        }

        #[test]
        fn requests_and_notifications_follow_the_spec(object in request()) {
            let line = Value::Object(object).to_string();
            // Compare with what the line parses to (floats may not round-trip bit for bit).
            let object: Map<String, Value> = serde_json::from_str(&line).unwrap();
            let sent_id = object.get("id");
            let id_ok = matches!(
                sent_id,
                None | Some(Value::String(_) | Value::Number(_) | Value::Null)
            );
            let envelope_ok = object.get("jsonrpc") == Some(&Value::from("2.0"))
                && object.get("method").is_some_and(Value::is_string);
            // A notification's params are never checked: it is never answered.
            let notification = envelope_ok && sent_id.is_none();
            let well_formed = envelope_ok
                && id_ok
                && (notification
                    || matches!(object.get("params"), None | Some(Value::Null | Value::Object(_))));
            match parse(line.as_bytes()) {
                Ok(Incoming::Call { id, method, .. }) => {
                    prop_assert!(well_formed);
                    prop_assert_eq!(Some(&id), sent_id);
                    prop_assert_eq!(Some(&Value::from(method)), object.get("method"));
                }
                Ok(Incoming::Notification { .. }) => {
                    prop_assert!(notification);
                }
                Ok(Incoming::Response { id }) => {
                    prop_assert!(!object.contains_key("method"));
                    prop_assert!(object.contains_key("result") || object.contains_key("error"));
                    prop_assert_eq!(&id, sent_id.unwrap_or(&Value::Null));
                }
                Err(Rejected { id, .. }) => {
                    prop_assert!(!well_formed && !notification);
                    // Never an id the client did not send.
                    prop_assert!(id.is_null() || Some(&id) == sent_id);
                }
            }
        }
    }
}
