//! `/mcp` requests checked as stdio's own layer checks them (`crate::mcp` `wire.rs`)
//! before rmcp's Streamable HTTP transport sees them, so that the two transports answer
//! bad input alike where HTTP allows it:
//!
//! - A body that is not one JSON-RPC message (not JSON, a batch, a bad `id`, `params`
//!   that are not an object) gets the plain surface's error (-32700, -32600),
//!   with 400 when it has no id to answer under; rmcp answered 415 with a line of text.
//! - A known method with bad params (`tools/call` without a name, `arguments` not an
//!   object, `logging/setLevel` with an unknown level) gets -32602 naming the problem;
//!   rmcp answered -32601 as if the method were unknown.
//! - A null id is refused with -32600, as on stdio.
//! - An id already in flight in the same MCP session is refused with -32600, as on stdio
//!   (rmcp would route both answers by that one id).
//! - What stays different: an id rmcp cannot hold (a number that is not a 64-bit signed
//!   integer: `2^63`, `1.5`) is refused with -32600 under the id as written, where stdio
//!   serves it (there rmcp only ever sees ids claude-coded hands out); over HTTP rmcp
//!   writes the answers itself.
//!
//! Every refusal is an `application/json` JSON-RPC error; the id in it is the client's
//! text, byte for byte.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::plain::envelope::{self, Incoming, Rejected};
use crate::rpc_error::RpcError;

/// The ids of the requests in flight, per MCP session.
#[derive(Default)]
pub(crate) struct InFlight {
    ids: Mutex<HashSet<(String, String)>>,
}

/// A request's place among those in flight, given up when dropped (when its response
/// body has been sent, or the client went away).
pub(crate) struct Flight {
    book: Arc<InFlight>,
    key: (String, String),
}

impl Drop for Flight {
    fn drop(&mut self) {
        lock(&self.book.ids).remove(&self.key);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Checks one POST body of `session` (its `Mcp-Session-Id`, if any): `Ok` with the
/// request's place in flight (none for notifications, responses and sessionless
/// requests) when rmcp may have it, else the answer.
pub(crate) fn check(
    body: &[u8],
    session: Option<&str>,
    book: &Arc<InFlight>,
) -> Result<Option<Flight>, Refused> {
    let (id, raw_id, method, params) = match envelope::parse(body) {
        Err(Rejected { id, error }) => return Err(Refused::new(id.to_string(), *error)),
        Ok(Incoming::Call {
            id,
            raw_id,
            method,
            params,
        }) => (id, raw_id, method, params),
        Ok(Incoming::Notification { .. } | Incoming::Response { .. }) => return Ok(None),
    };
    let invalid = |message: String| {
        Err(Refused::new(
            raw_id.clone(),
            RpcError::InvalidRequest(message),
        ))
    };
    if id.is_null() {
        return invalid("an MCP request id must not be null".into());
    }
    if !(id.is_string() || id.is_i64()) {
        return invalid(format!(
            "id {raw_id} cannot be served over HTTP: use a string or an integer within 64 bits (stdio takes any number)"
        ));
    }
    let mut message = json!({ "method": method });
    if let Some(params) = params {
        message["params"] = params;
    }
    if let Err(error) = crate::mcp::typed_request(&method, &message, session.is_some()) {
        return Err(Refused::new(raw_id, error));
    }
    let Some(session) = session else {
        return Ok(None);
    };
    let key = (session.to_string(), raw_id.clone());
    if !lock(&book.ids).insert(key.clone()) {
        return invalid(format!(
            "id {raw_id} is already used by a request in flight"
        ));
    }
    Ok(Some(Flight {
        book: book.clone(),
        key,
    }))
}

/// Why a request is refused, and the id the client wrote for it.
pub(crate) struct Refused {
    raw_id: String,
    error: Box<RpcError>,
}

impl Refused {
    fn new(raw_id: String, error: RpcError) -> Refused {
        Refused {
            raw_id,
            error: Box::new(error),
        }
    }
}

impl IntoResponse for Refused {
    /// The JSON-RPC error under the id the client wrote (`null` when there was none to
    /// read: then 400, as Streamable HTTP has it for a body that is not a request).
    fn into_response(self) -> Response {
        let Refused { raw_id, error } = self;
        let object = json!(error.to_error_object());
        let text = format!(r#"{{"jsonrpc":"2.0","id":{raw_id},"error":{object}}}"#);
        let status = match raw_id.as_str() {
            "null" => StatusCode::BAD_REQUEST,
            _ => StatusCode::OK,
        };
        tracing::debug!(%error, "an /mcp request refused before rmcp");
        let content_type = [(axum::http::header::CONTENT_TYPE, "application/json")];
        (status, content_type, text).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn body_bytes(response: Response) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap()
            .to_vec()
    }

    /// A refusal's status and JSON.
    fn refused_json(response: Response) -> (u16, Value) {
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_slice(&body_bytes(response)).unwrap(),
        )
    }

    fn checked(body: &str, session: Option<&str>, book: &Arc<InFlight>) -> (u16, Value) {
        match check(body.as_bytes(), session, book) {
            Ok(_) => (0, Value::Null),
            Err(refused) => refused_json(refused.into_response()),
        }
    }

    #[test]
    fn bad_bodies_get_the_stdio_codes_under_the_id_as_written() {
        let book = Arc::new(InFlight::default());
        let s = Some("s1");
        let cases = [
            ("not json", 400, -32700, Value::Null),
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                400,
                -32600,
                Value::Null,
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                400,
                -32600,
                Value::Null,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
                400,
                -32600,
                Value::Null,
            ),
            (
                r#"{"jsonrpc":"2.0","id":3,"method":"ping","params":3}"#,
                200,
                -32600,
                json!(3),
            ),
            (
                r#"{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"arguments":{}}}"#,
                200,
                -32602,
                json!("c"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
                200,
                -32600,
                json!(1.5),
            ),
        ];
        for (body, status, code, id) in cases {
            let (got_status, answer) = checked(body, s, &book);
            assert_eq!(got_status, status, "{body}: {answer}");
            assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
            assert_eq!(answer["id"], id, "{body}");
        }
        // A number beyond 64 bits comes back as written.
        let big = r#"{"jsonrpc":"2.0","id":18446744073709551617,"method":"ping"}"#;
        let refused = check(big.as_bytes(), s, &book).err().unwrap();
        let text = String::from_utf8(body_bytes(refused.into_response())).unwrap();
        assert!(text.contains(r#""id":18446744073709551617"#), "{text}");
    }

    #[test]
    fn an_id_in_flight_in_a_session_is_refused_until_its_request_ends() {
        let book = Arc::new(InFlight::default());
        let ping = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;
        let first = check(ping.as_bytes(), Some("a"), &book).ok().unwrap();
        assert!(first.is_some());
        let (_, again) = checked(ping, Some("a"), &book);
        assert_eq!(again["error"]["code"], -32600, "{again}");
        // Another session, or no session, has ids of its own.
        assert!(check(ping.as_bytes(), Some("b"), &book).is_ok());
        assert!(matches!(check(ping.as_bytes(), None, &book), Ok(None)));
        drop(first);
        assert!(check(ping.as_bytes(), Some("a"), &book).is_ok());
        // Notifications pass whatever they carry.
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":3}"#;
        assert!(matches!(check(note.as_bytes(), Some("a"), &book), Ok(None)));
    }
}
