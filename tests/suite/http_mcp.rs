//! `/mcp` over HTTP held to the guarantees of the stdio layer (src/mcp/wire.rs), raw
//! POSTs where an SDK would hide the answer: bad bodies and params get the stdio codes,
//! an id in flight is refused, and what differs is pinned: an id rmcp cannot hold is
//! refused (stdio serves it), and asks queue in the order their POSTs reach the daemon.

use serde_json::{Value, json};
use test_support::{Options, READ_TIMEOUT};

use super::http_listen::{http, listening, text};

/// An MCP session over HTTP (the handshake-era revision, with `Mcp-Session-Id`).
struct Session {
    url: String,
    id: String,
}

impl Session {
    async fn open(info: &Value) -> Session {
        let url = text(info, "mcp");
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}});
        let response = post(&url, None, init.to_string()).await;
        assert_eq!(response.status(), 200);
        let id = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_string();
        let session = Session { url, id };
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(session.send(initialized.to_string()).await.status(), 202);
        session
    }

    async fn send(&self, body: String) -> reqwest::Response {
        post(&self.url, Some(&self.id), body).await
    }

    /// The status and the JSON-RPC message answering `body` (from JSON or from SSE).
    async fn answer(&self, body: &str) -> (u16, Value) {
        let response = self.send(body.to_string()).await;
        let status = response.status().as_u16();
        let mut stream = Sse::new(response);
        (status, stream.next_with_id().await)
    }
}

async fn post(url: &str, session: Option<&str>, body: String) -> reqwest::Response {
    let mut request = http()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    tokio::time::timeout(READ_TIMEOUT, request.send())
        .await
        .unwrap()
        .unwrap()
}

/// The messages of a response: one JSON body, or SSE `data:` lines as they come.
struct Sse {
    response: reqwest::Response,
    buffer: String,
    json: bool,
}

impl Sse {
    fn new(response: reqwest::Response) -> Sse {
        let json = response
            .headers()
            .get("content-type")
            .is_some_and(|t| t.to_str().unwrap().starts_with("application/json"));
        Sse {
            response,
            buffer: String::new(),
            json,
        }
    }

    /// The next message; `Null` when the response ended.
    async fn next(&mut self) -> Value {
        loop {
            if self.json {
                if let Some(message) = self.body_message() {
                    return message;
                }
            } else if let Some(message) = self.data_line() {
                return message;
            }
            let chunk = tokio::time::timeout(READ_TIMEOUT, self.response.chunk())
                .await
                .expect("a message in time")
                .unwrap();
            match chunk {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                None if self.json => return self.body_message().unwrap_or(Value::Null),
                None => return self.data_line().unwrap_or(Value::Null),
            }
        }
    }

    fn body_message(&mut self) -> Option<Value> {
        let message = serde_json::from_str(&self.buffer).ok()?;
        self.buffer.clear();
        Some(message)
    }

    fn data_line(&mut self) -> Option<Value> {
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            if let Some(data) = line.trim_end().strip_prefix("data:")
                && let Ok(message) = serde_json::from_str(data.trim())
            {
                return Some(message);
            }
        }
        None
    }

    /// The next message that answers a request (skipping notifications).
    async fn next_with_id(&mut self) -> Value {
        loop {
            let message = self.next().await;
            if message.is_null() || message.get("id").is_some() {
                return message;
            }
        }
    }
}

fn ask(id: u64, prompt: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "ask", "arguments": {"prompt": prompt}, "_meta": {"progressToken": id}}})
    .to_string()
}

#[tokio::test]
async fn bad_mcp_requests_over_http_get_the_stdio_codes_under_their_ids() {
    let (_bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    let session = Session::open(&info).await;
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
            r#"{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"arguments":{}}}"#,
            200,
            -32602,
            json!("c"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"status","arguments":"x"}}"#,
            200,
            -32602,
            json!(8),
        ),
        (
            r#"{"jsonrpc":"2.0","id":10,"method":"logging/setLevel","params":{"level":"loud"}}"#,
            200,
            -32602,
            json!(10),
        ),
    ];
    for (body, status, code, id) in cases {
        let (got, answer) = session.answer(body).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        assert_eq!(answer["id"], id, "{body}: {answer}");
    }
    // Good requests are served as before, a string id included.
    let (status, pong) = session
        .answer(r#"{"jsonrpc":"2.0","id":"x","method":"ping"}"#)
        .await;
    assert_eq!(
        (status, &pong["id"], &pong["result"]),
        (200, &json!("x"), &json!({}))
    );
}

/// A difference from stdio, pinned: rmcp writes the answers over HTTP and holds an id
/// as a string or a 64-bit signed integer, so another number is refused, under the id
/// as written (stdio serves it: there rmcp only sees ids claude-coded hands out).
#[tokio::test]
async fn ids_rmcp_cannot_hold_are_refused_over_http_under_the_id_as_written() {
    let (_bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    let session = Session::open(&info).await;
    for id in ["18446744073709551617", "9223372036854775808", "1.5"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        let response = session.send(body).await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(text.contains(&format!(r#""id":{id},"#)), "{text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["error"]["code"], -32600, "{text}");
    }
    // The largest 64-bit integer is served.
    let (_, pong) = session
        .answer(r#"{"jsonrpc":"2.0","id":9223372036854775807,"method":"ping"}"#)
        .await;
    assert_eq!(pong["id"], json!(9_223_372_036_854_775_807_i64), "{pong}");
    assert_eq!(pong["result"], json!({}));
}

#[tokio::test]
async fn an_id_in_flight_in_an_mcp_session_is_refused_over_http_as_on_stdio() {
    let (_bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    let session = Session::open(&info).await;
    let running = session.send(ask(5, "SLOW ms=100 chunks=10")).await;
    let mut running = Sse::new(running);
    let (status, refused) = session
        .answer(r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    assert!(
        text(&refused["error"], "message").contains("in flight"),
        "{refused}"
    );
    // The first request is answered, once, under its id; then the id is free again.
    let answered = running.next_with_id().await;
    assert_eq!(answered["id"], 5, "{answered}");
    assert_eq!(answered["result"]["isError"], false, "{answered}");
    assert!(running.next_with_id().await.is_null());
    let (_, pong) = session
        .answer(r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#)
        .await;
    assert_eq!(pong["result"], json!({}), "{pong}");
}

/// Pinned: over HTTP each request is its own POST, so there is no line order; asks
/// queue in the order their requests reach the daemon (here, the second is sent once
/// the first's turn has begun).
#[tokio::test]
async fn asks_over_http_queue_in_the_order_their_posts_reach_the_daemon() {
    let (_bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    let session = Session::open(&info).await;
    let mut first = Sse::new(session.send(ask(1, "SLOW ms=100 chunks=5")).await);
    let progress = first.next().await;
    assert_eq!(progress["method"], "notifications/progress", "{progress}");
    let mut second = Sse::new(session.send(ask(2, "second")).await);
    let second = second.next_with_id().await;
    let first = first.next_with_id().await;
    assert_eq!(first["result"]["isError"], false, "{first}");
    let answer = &second["result"]["content"][0]["text"];
    assert!(
        answer
            .as_str()
            .unwrap()
            .contains("mock reply #2 to: second"),
        "{second}"
    );
}
