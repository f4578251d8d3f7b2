//! Self-test of the mock Anthropic API (this crate), with a small hand-written HTTP/1.1
//! client (no real CLI needed).
// Test code: a failed unwrap is a failed test, and its output is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use mock_api::{
    Behavior, MockApi, OuterModel, Script, TOOL_SEARCH, ToolCall, first_user_prompt, tool_names,
    tool_results, tool_search_input, tool_uses,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }

    /// `(event name, data)` pairs of an SSE body.
    fn events(&self) -> Vec<(String, Value)> {
        self.body
            .split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                let mut name = String::new();
                let mut data = Value::Null;
                for line in e.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_string();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = serde_json::from_str(d).expect("SSE data is JSON");
                    }
                }
                assert_eq!(data["type"], name.as_str(), "event name matches data.type");
                (name, data)
            })
            .collect()
    }
}

/// One keep-alive connection to the mock.
struct Client {
    conn: BufReader<TcpStream>,
}

impl Client {
    async fn connect(mock: &MockApi) -> Client {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(mock.addr()))
            .await
            .expect("connect timeout")
            .expect("connect");
        Client {
            conn: BufReader::new(stream),
        }
    }

    async fn send_raw(&mut self, head: &str, body: &[u8]) {
        let s = self.conn.get_mut();
        s.write_all(head.as_bytes()).await.expect("write head");
        s.write_all(body).await.expect("write body");
    }

    async fn post(&mut self, path: &str, body: &Value) -> Response {
        let body = body.to_string();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             x-api-key: test-key\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        self.send_raw(&head, body.as_bytes()).await;
        self.read_response().await
    }

    async fn read_line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(IO_TIMEOUT, self.conn.read_line(&mut line))
            .await
            .expect("read timeout")
            .expect("read line");
        line.trim_end_matches(['\r', '\n']).to_string()
    }

    async fn read_response(&mut self) -> Response {
        let status_line = self.read_line().await;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.read_line().await;
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').expect("header line");
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let mut resp = Response {
            status,
            headers,
            body: String::new(),
        };
        let mut body = Vec::new();
        if resp.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.read_line().await, 16).expect("chunk size");
                if size == 0 {
                    assert_eq!(self.read_line().await, "", "end of chunked body");
                    break;
                }
                let mut chunk = vec![0; size + 2];
                tokio::time::timeout(IO_TIMEOUT, self.conn.read_exact(&mut chunk))
                    .await
                    .expect("read timeout")
                    .expect("read chunk");
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            let len: usize = resp
                .header("content-length")
                .expect("content-length")
                .parse()
                .expect("numeric content-length");
            body.resize(len, 0);
            tokio::time::timeout(IO_TIMEOUT, self.conn.read_exact(&mut body))
                .await
                .expect("read timeout")
                .expect("read body");
        }
        resp.body = String::from_utf8(body).expect("UTF-8 body");
        resp
    }
}

fn messages_body(content: Value, stream: bool) -> Value {
    json!({
        "model": "claude-test-1",
        "max_tokens": 1024,
        "stream": stream,
        "messages": [{"role": "user", "content": content}],
    })
}

/// What a client would rebuild from the SSE events.
#[derive(Debug, Default)]
struct Assembled {
    blocks: Vec<Value>,
    stop_reason: Value,
    input_tokens: u64,
    output_tokens: u64,
    message_id: String,
    model: String,
}

fn assemble(events: &[(String, Value)]) -> Assembled {
    let mut a = Assembled::default();
    let mut partial_json: Vec<String> = Vec::new();
    for (name, data) in events {
        match name.as_str() {
            "message_start" => {
                let m = &data["message"];
                a.message_id = m["id"].as_str().unwrap_or_default().to_string();
                a.model = m["model"].as_str().unwrap_or_default().to_string();
                a.input_tokens = m["usage"]["input_tokens"].as_u64().unwrap_or(0);
            }
            "content_block_start" => {
                a.blocks.push(data["content_block"].clone());
                partial_json.push(String::new());
            }
            "content_block_delta" => {
                let i = data["index"].as_u64().expect("index") as usize;
                let d = &data["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => {
                        let t = a.blocks[i]["text"].as_str().unwrap_or_default().to_string()
                            + d["text"].as_str().unwrap_or_default();
                        a.blocks[i]["text"] = t.into();
                    }
                    Some("input_json_delta") => {
                        partial_json[i].push_str(d["partial_json"].as_str().unwrap_or_default())
                    }
                    other => panic!("unexpected delta {other:?}"),
                }
            }
            "content_block_stop" => {
                let i = data["index"].as_u64().expect("index") as usize;
                if a.blocks[i]["type"] == "tool_use" {
                    a.blocks[i]["input"] =
                        serde_json::from_str(&partial_json[i]).expect("tool input JSON");
                }
            }
            "message_delta" => {
                a.stop_reason = data["delta"]["stop_reason"].clone();
                a.output_tokens = data["usage"]["output_tokens"].as_u64().unwrap_or(0);
            }
            "ping" | "message_stop" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    a
}

fn event_names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

#[tokio::test]
async fn default_reply_streams_real_event_sequence_on_one_connection() {
    let mock = MockApi::start();
    let mut c = Client::connect(&mock).await;
    let r1 = c
        .post(
            "/v1/messages?beta=true",
            &messages_body("hello".into(), true),
        )
        .await;
    assert_eq!(r1.status, 200);
    assert!(
        r1.header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream"))
    );
    assert!(
        r1.header("request-id")
            .is_some_and(|v| v.starts_with("req_mock_"))
    );
    let ev = r1.events();
    let names = event_names(&ev);
    assert_eq!(names[..3], ["message_start", "ping", "content_block_start"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(
        names
            .iter()
            .filter(|n| **n == "content_block_delta")
            .count()
            > 1
    );
    let a = assemble(&ev);
    assert_eq!(
        a.blocks,
        vec![json!({"type": "text", "text": "mock reply #1 to: hello"})]
    );
    assert_eq!(a.stop_reason, "end_turn");
    assert_eq!(a.message_id, "msg_mock_0001");
    assert_eq!(a.model, "claude-test-1");
    assert_eq!((a.input_tokens, a.output_tokens), (10, 5));
    // The raw text keeps the real API's key order (the CLI copies it).
    assert!(
        r1.body
            .contains(r#"{"type":"message_start","message":{"id":"msg_mock_0001","#)
    );

    // Same connection again (keep-alive).
    let r2 = c
        .post(
            "/v1/messages?beta=true",
            &messages_body("again".into(), true),
        )
        .await;
    let a = assemble(&r2.events());
    assert_eq!(a.blocks[0]["text"], "mock reply #2 to: again");
    assert_eq!(mock.connections(), 1);
    assert_eq!(mock.messages_served(), 2);

    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/messages");
    assert_eq!(reqs[0].query.as_deref(), Some("beta=true"));
    assert_eq!(reqs[0].header("X-Api-Key"), Some("test-key"));
    assert_eq!(reqs[0].body["model"], "claude-test-1");
    assert_eq!(reqs[1].prompt(), "again");
    assert!(reqs.iter().all(|r| r.connection == 0));
}

#[tokio::test]
async fn non_streaming_returns_one_json_message() {
    let mock = MockApi::start();
    let mut c = Client::connect(&mock).await;
    let r = c
        .post("/v1/messages", &messages_body("plain".into(), false))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let m = r.json();
    assert_eq!(m["id"], "msg_mock_0001");
    assert_eq!(m["type"], "message");
    assert_eq!(m["model"], "claude-test-1");
    assert_eq!(
        m["content"],
        json!([{"type": "text", "text": "mock reply #1 to: plain"}])
    );
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["usage"]["output_tokens"], 5);
}

#[tokio::test]
async fn system_entry_and_leading_text_blocks_are_tolerated() {
    let mock = MockApi::start();
    let mut c = Client::connect(&mock).await;
    let body = json!({
        "model": "m", "max_tokens": 10, "stream": true,
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>ignore</system-reminder>"},
                {"type": "text", "text": "hi there"},
            ]},
            {"role": "system", "content": "# Environment"},
        ],
    });
    let a = assemble(&c.post("/v1/messages?beta=true", &body).await.events());
    assert_eq!(a.blocks[0]["text"], "mock reply #1 to: hi there");
}

#[tokio::test]
async fn run_tool_streams_text_then_bash_tool_use() {
    let mock = MockApi::start();
    let mut c = Client::connect(&mock).await;
    let body = messages_body("RUN_TOOL touch a b.txt".into(), true);
    let r = c.post("/v1/messages?beta=true", &body).await;
    let ev = r.events();
    assert!(
        ev.iter()
            .any(|(_, d)| d["delta"]["type"] == "input_json_delta")
    );
    let a = assemble(&ev);
    assert_eq!(a.blocks.len(), 2);
    assert_eq!(
        a.blocks[0],
        json!({"type": "text", "text": "I'll run a command."})
    );
    assert_eq!(a.blocks[1]["type"], "tool_use");
    assert_eq!(a.blocks[1]["id"], "toolu_mock_0001");
    assert_eq!(a.blocks[1]["name"], "Bash");
    assert_eq!(
        a.blocks[1]["input"],
        json!({"command": "touch a b.txt", "description": "Run a test command"})
    );
    assert_eq!(a.stop_reason, "tool_use");

    // Non-streaming form carries the same blocks.
    let m = c
        .post("/v1/messages", &messages_body("RUN_TOOL ls".into(), false))
        .await
        .json();
    assert_eq!(m["content"][1]["input"]["command"], "ls");
    assert_eq!(m["stop_reason"], "tool_use");
}

#[tokio::test]
async fn write_file_and_ask_user_keywords_give_their_tool_uses() {
    let mock = MockApi::start();
    let mut c = Client::connect(&mock).await;
    let body = messages_body("WRITE_FILE /tmp/x/a.txt two words".into(), false);
    let m = c.post("/v1/messages", &body).await.json();
    assert_eq!(m["content"][1]["name"], "Write");
    assert_eq!(
        m["content"][1]["input"],
        json!({"file_path": "/tmp/x/a.txt", "content": "two words"})
    );
    let body = messages_body("ASK_USER Which colour? Red | Blue".into(), false);
    let m = c.post("/v1/messages", &body).await.json();
    assert_eq!(m["content"][1]["name"], "AskUserQuestion");
    let question = &m["content"][1]["input"]["questions"][0];
    assert_eq!(question["question"], "Which colour?");
    assert_eq!(question["options"][0]["label"], "Red");
    assert_eq!(question["options"][1]["label"], "Blue");
    assert_eq!(question["multiSelect"], false);
    assert_eq!(m["stop_reason"], "tool_use");
}

#[tokio::test]
async fn tool_result_is_echoed() {
    let mock = MockApi::start();
    let mut c = Client::connect(&mock).await;
    let long = "x".repeat(500);
    let cases = [
        (
            json!("file made"),
            false,
            "tool result was (is_error=False): file made".to_string(),
        ),
        (
            json!([{"type": "text", "text": "denied"}]),
            true,
            "tool result was (is_error=True): denied".to_string(),
        ),
        (
            json!(long),
            false,
            format!("tool result was (is_error=False): {}", &long[..200]),
        ),
    ];
    for (content, is_error, want) in cases {
        let body = messages_body(
            json!([{"type": "tool_result", "tool_use_id": "toolu_1", "content": content,
                    "is_error": is_error}]),
            true,
        );
        let a = assemble(&c.post("/v1/messages?beta=true", &body).await.events());
        assert_eq!(a.blocks[0]["text"], want.as_str());
    }
}

#[tokio::test]
async fn error_keywords_give_anthropic_errors() {
    let mock = MockApi::start();
    let mut c = Client::connect(&mock).await;
    for (kw, status, kind) in [
        ("ERR400", 400, "invalid_request_error"),
        ("ERR429", 429, "rate_limit_error"),
        ("ERR500", 500, "api_error"),
    ] {
        let r = c
            .post("/v1/messages?beta=true", &messages_body(kw.into(), true))
            .await;
        assert_eq!(r.status, status);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let rid = r.header("request-id").expect("request-id").to_string();
        let e = r.json();
        assert_eq!(e["type"], "error");
        assert_eq!(e["error"]["type"], kind);
        assert_eq!(e["error"]["message"], format!("mock {status}"));
        assert_eq!(e["request_id"], rid.as_str());
    }
    // The connection survives error answers.
    let r = c
        .post("/v1/messages?beta=true", &messages_body("ok".into(), true))
        .await;
    assert_eq!(
        assemble(&r.events()).blocks[0]["text"],
        "mock reply #4 to: ok"
    );
}

#[tokio::test]
async fn usage_keyword_sets_token_counts() {
    let mock = MockApi::start();
    let mut c = Client::connect(&mock).await;
    let r = c
        .post(
            "/v1/messages?beta=true",
            &messages_body("USAGE 1234 567".into(), true),
        )
        .await;
    let a = assemble(&r.events());
    assert_eq!((a.input_tokens, a.output_tokens), (1234, 567));
    assert_eq!(a.blocks[0]["text"], "mock reply #1 to: USAGE 1234 567");
    let m = c
        .post("/v1/messages", &messages_body("USAGE 7 8".into(), false))
        .await
        .json();
    assert_eq!(m["usage"]["input_tokens"], 7);
    assert_eq!(m["usage"]["output_tokens"], 8);
}

#[tokio::test]
async fn slow_streams_spaced_deltas() {
    let mock = MockApi::start();
    let mut c = Client::connect(&mock).await;
    let started = Instant::now();
    let r = c
        .post(
            "/v1/messages?beta=true",
            &messages_body("SLOW ms=60 chunks=5".into(), true),
        )
        .await;
    assert!(started.elapsed() >= Duration::from_millis(180));
    let ev = r.events();
    let deltas = ev
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .count();
    assert_eq!(deltas, 5);
    let a = assemble(&ev);
    // First delta is its own finished block so a client sees output at once.
    assert_eq!(a.blocks[0]["text"], "slow ");
    assert_eq!(a.blocks[1]["text"], "slow slow slow slow ");
}

#[tokio::test]
async fn abandoned_slow_stream_is_counted() {
    let mock = MockApi::start();
    let mut c = Client::connect(&mock).await;
    let body = messages_body("SLOW ms=200 chunks=50".into(), true).to_string();
    let head = format!(
        "POST /v1/messages?beta=true HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    c.send_raw(&head, body.as_bytes()).await;
    assert!(c.read_line().await.starts_with("HTTP/1.1 200"));
    drop(c);
    assert!(mock.wait_for_requests(Duration::from_secs(5), |r| r.len() == 1));
    let deadline = Instant::now() + Duration::from_secs(5);
    while mock.aborted_streams() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(mock.aborted_streams(), 1);
}

#[tokio::test]
async fn other_paths_get_harmless_json_and_are_recorded() {
    let mock = MockApi::start();
    let mut c = Client::connect(&mock).await;
    let r = c
        .post(
            "/v1/messages/count_tokens?beta=true",
            &messages_body("x".into(), false),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["input_tokens"].is_u64());
    c.send_raw("GET /api/whatever HTTP/1.1\r\nhost: x\r\n\r\n", b"")
        .await;
    let r = c.read_response().await;
    assert_eq!((r.status, r.json()), (200, json!({})));
    let reqs = mock.requests();
    assert_eq!(reqs[0].path, "/v1/messages/count_tokens");
    assert_eq!(reqs[1].method, "GET");
    assert_eq!(reqs[1].path, "/api/whatever");
    assert_eq!(reqs[1].body, Value::Null);
    // Neither counts as a served /v1/messages request.
    assert_eq!(mock.messages_served(), 0);
    assert!(mock.messages_requests().is_empty());
}

#[tokio::test]
async fn chunked_request_body_is_decoded() {
    let mock = MockApi::start();
    let mut c = Client::connect(&mock).await;
    let body = messages_body("chunky".into(), false).to_string();
    let (a, b) = body.split_at(10);
    let chunked = format!("{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len());
    c.send_raw(
        "POST /v1/messages HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
        chunked.as_bytes(),
    )
    .await;
    let m = c.read_response().await.json();
    assert_eq!(m["content"][0]["text"], "mock reply #1 to: chunky");
}

#[tokio::test]
async fn script_queue_takes_precedence_then_prompt_parsing() {
    let mock = MockApi::start_with(vec![
        Behavior::Text("scripted one".into()),
        Behavior::FromPrompt,
        Behavior::error(529),
    ]);
    let mut c = Client::connect(&mock).await;
    let send = |p: &str| messages_body(p.into(), true);
    let r = c.post("/v1/messages?beta=true", &send("ERR400")).await;
    assert_eq!(assemble(&r.events()).blocks[0]["text"], "scripted one");
    let r = c.post("/v1/messages?beta=true", &send("hey")).await;
    assert_eq!(
        assemble(&r.events()).blocks[0]["text"],
        "mock reply #2 to: hey"
    );
    let r = c.post("/v1/messages?beta=true", &send("hey")).await;
    assert_eq!(r.status, 529);
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    let r = c.post("/v1/messages?beta=true", &send("ERR400")).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn script_function_sees_each_call() {
    let mock = MockApi::start_with(Script::func(|call| {
        (call.n == 2).then(|| Behavior::TextWithUsage {
            text: format!("second saw {}", call.prompt),
            input_tokens: 1,
            output_tokens: 2,
        })
    }));
    let mut c = Client::connect(&mock).await;
    for (p, want) in [
        ("a", "mock reply #1 to: a"),
        ("b", "second saw b"),
        ("c", "mock reply #3 to: c"),
    ] {
        let r = c
            .post("/v1/messages?beta=true", &messages_body(p.into(), true))
            .await;
        assert_eq!(assemble(&r.events()).blocks[0]["text"], want);
    }
}

#[tokio::test]
async fn hang_and_disconnect() {
    let mock = MockApi::start_with(vec![Behavior::Disconnect, Behavior::Hang]);
    let mut c = Client::connect(&mock).await;
    let body = messages_body("x".into(), true).to_string();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    c.send_raw(&head, body.as_bytes()).await;
    let mut buf = Vec::new();
    let n = tokio::time::timeout(IO_TIMEOUT, c.conn.read_to_end(&mut buf))
        .await
        .expect("read timeout")
        .expect("read");
    assert_eq!(n, 0, "Disconnect closes without an answer");

    let mut c = Client::connect(&mock).await;
    c.send_raw(&head, body.as_bytes()).await;
    let mut byte = [0u8; 1];
    let waited = tokio::time::timeout(Duration::from_millis(300), c.conn.read(&mut byte)).await;
    assert!(waited.is_err(), "Hang sends nothing");
    drop(mock); // stops the server, closing the hung connection
    let after = tokio::time::timeout(IO_TIMEOUT, c.conn.read(&mut byte))
        .await
        .expect("read timeout");
    assert!(matches!(after, Ok(0) | Err(_)));
}

/// `MockApi::start()` also works from plain sync code (own thread + runtime).
#[test]
fn works_from_sync_test_and_stops_on_drop() {
    let mock = MockApi::start();
    let addr = mock.addr();
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("set timeout");
    let body = messages_body("sync".into(), false).to_string();
    write!(
        s,
        "POST /v1/messages HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .expect("read to EOF (connection: close)");
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(resp.contains("mock reply #1 to: sync"));
    assert_eq!(mock.requests().len(), 1);
    drop(mock);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "listener closed on drop"
    );
}

// ---- The outer model: the real CLI as an MCP host on the same mock as its server's CLI ----

const ASK: &str = "mcp__claude-coded__ask";

/// A request body as the host CLI builds it (shape taken from recorded 2.1.332 requests):
/// `<system-reminder>` text before the prompt, a `system` entry in `messages`, MCP tools
/// absent from `tools` until `ToolSearch` loaded them.
fn host_body(prompt: &str, loaded: &[&str], history: Vec<Value>) -> Value {
    let mut tools = vec![json!({"name": "Bash"}), json!({"name": "ToolSearch"})];
    tools.extend(
        loaded
            .iter()
            .map(|n| json!({"name": n, "input_schema": {}, "defer_loading": true})),
    );
    let mut messages = vec![
        json!({"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nreminder\n</system-reminder>\n"},
            {"type": "text", "text": prompt}]}),
        json!({"role": "system", "content": [{"type": "text", "text": "The following deferred \
            tools are now available via ToolSearch: mcp__claude-coded__ask"}]}),
    ];
    messages.extend(history);
    json!({"model": "claude-test-1", "stream": true, "tools": tools, "messages": messages})
}

fn assistant_tool_use(id: &str, name: &str, input: Value) -> Value {
    json!({"role": "assistant", "content": [
        {"type": "text", "text": "I'll run a command."},
        {"type": "tool_use", "id": id, "name": name, "input": input}]})
}

fn user_tool_result(id: &str, content: Value, is_error: bool) -> Value {
    json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": id, "content": content, "is_error": is_error}]})
}

#[test]
fn outer_model_loads_a_deferred_tool_calls_it_then_quotes_its_result() {
    let model = OuterModel::new(
        "OUTER",
        vec![
            ToolCall::new(ASK, json!({"prompt": "hi"})),
            ToolCall::new("Bash", json!({"command": "true"})),
        ],
    );
    // Not loaded yet: ToolSearch with the select: form.
    let first = host_body("OUTER go", &[], vec![]);
    assert!(model.owns(&first));
    assert_eq!(
        model.step(&first),
        Behavior::ToolUse {
            name: TOOL_SEARCH.into(),
            input: json!({"query": "select:mcp__claude-coded__ask", "max_results": 1}),
        }
    );
    // Loaded (the host answers with a tool_reference and a "Tool loaded." text): call it.
    let mut history = vec![
        assistant_tool_use("t1", TOOL_SEARCH, tool_search_input(ASK)),
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1",
             "content": [{"type": "tool_reference", "tool_name": ASK}]},
            {"type": "text", "text": "Tool loaded."}]}),
    ];
    let second = host_body("OUTER go", &[ASK], history.clone());
    assert_eq!(
        model.step(&second),
        Behavior::ToolUse {
            name: ASK.into(),
            input: json!({"prompt": "hi"})
        }
    );
    // A tool the host always lists is called without ToolSearch.
    history.push(assistant_tool_use("t2", ASK, json!({"prompt": "hi"})));
    history.push(user_tool_result("t2", json!("{\"ok\":true}"), false));
    let third = host_body("OUTER go", &[ASK], history.clone());
    assert_eq!(
        model.step(&third),
        Behavior::ToolUse {
            name: "Bash".into(),
            input: json!({"command": "true"})
        }
    );
    // Every call made: a text quoting the last result in full.
    history.push(assistant_tool_use("t3", "Bash", json!({"command": "true"})));
    history.push(user_tool_result(
        "t3",
        json!([{"type": "text", "text": "denied"}]),
        true,
    ));
    let last = host_body("OUTER go", &[ASK], history);
    assert_eq!(
        model.step(&last),
        Behavior::Text("outer model got Bash (is_error=true): denied".into())
    );
    // Another conversation is not the outer model's.
    assert!(!model.owns(&host_body("inner OUTER", &[], vec![])));
}

#[test]
fn outer_model_gives_up_when_tool_search_did_not_load_the_tool() {
    let model = OuterModel::new("OUTER", vec![ToolCall::new(ASK, json!({"prompt": "x"}))]);
    let history = vec![
        assistant_tool_use("t1", TOOL_SEARCH, tool_search_input(ASK)),
        user_tool_result("t1", json!("No matching deferred tools found"), false),
    ];
    let body = host_body("OUTER go", &[], history);
    assert_eq!(
        model.step(&body),
        Behavior::Text(format!("outer model: {TOOL_SEARCH} did not load {ASK}"))
    );
}

#[test]
fn tool_results_and_uses_are_read_from_the_request_as_sent() {
    // Escapes, non-ASCII and a 12,000-byte text survive byte for byte.
    let big = format!("{}é\"\n\\", "y".repeat(12_000));
    let history = vec![
        assistant_tool_use("t9", ASK, json!({"prompt": "p"})),
        user_tool_result("t9", json!(big), false),
    ];
    let body = host_body("first prompt", &[ASK], history);
    assert_eq!(first_user_prompt(&body), "first prompt");
    assert_eq!(tool_names(&body), ["Bash", "ToolSearch", ASK]);
    assert_eq!(tool_uses(&body)[0].name, ASK);
    let results = tool_results(&body);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].tool_name.as_deref(), Some(ASK));
    assert_eq!(results[0].text(), big);
    assert_eq!(results[0].bytes(), 12_000 + "é\"\n\\".len());
    assert!(!results[0].is_error);
}

#[tokio::test]
async fn host_script_sends_the_marked_conversation_to_the_outer_model_and_the_rest_inside() {
    let model = OuterModel::new("OUTER", vec![ToolCall::new(ASK, json!({"prompt": "hi"}))]);
    let mock = MockApi::start_with(Script::host(model, |call| {
        (call.prompt == "big").then(|| Behavior::Text("z".repeat(50)))
    }));
    let mut c = Client::connect(&mock).await;
    let url = "/v1/messages?beta=true";
    // Outer, tool not loaded: a ToolSearch tool_use streamed like any tool_use.
    let a = assemble(
        &c.post(url, &host_body("OUTER go", &[], vec![]))
            .await
            .events(),
    );
    assert_eq!(a.stop_reason, "tool_use");
    assert_eq!(a.blocks[1]["name"], TOOL_SEARCH);
    assert_eq!(a.blocks[1]["input"], tool_search_input(ASK));
    // Inner requests: the inner script, else prompt keywords and the default reply.
    let a = assemble(&c.post(url, &host_body("big", &[], vec![])).await.events());
    assert_eq!(a.blocks[0]["text"], "z".repeat(50));
    let r = c.post(url, &host_body("ERR400", &[], vec![])).await;
    assert_eq!(r.status, 400);
    let a = assemble(&c.post(url, &host_body("hello", &[], vec![])).await.events());
    assert_eq!(a.blocks[0]["text"], "mock reply #4 to: hello");
    // Outer, result back: the quote; the mock keeps the result for the test.
    let history = vec![
        assistant_tool_use("toolu_mock_0002", ASK, json!({"prompt": "hi"})),
        user_tool_result("toolu_mock_0002", json!("{\"result\":\"inner\"}"), false),
    ];
    let body = host_body("OUTER go", &[ASK], history);
    let a = assemble(&c.post(url, &body).await.events());
    assert_eq!(
        a.blocks[0]["text"],
        "outer model got mcp__claude-coded__ask (is_error=false): {\"result\":\"inner\"}"
    );
    let got = mock
        .tool_result_of(ASK)
        .expect("the ask result was recorded");
    assert_eq!(got.text(), "{\"result\":\"inner\"}");
    assert_eq!(mock.tool_results_of(ASK).len(), 1);
    assert_eq!(mock.tool_result_of("Bash"), None);
}
