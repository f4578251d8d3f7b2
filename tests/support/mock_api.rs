//! Mock of the Anthropic Messages API for tests (HTTP/1.1 on 127.0.0.1).
//!
//! Include it from an integration test with
//! `#[path = "support/mock_api.rs"] mod mock_api;`.
//!
//! The server runs on its own thread with its own tokio runtime, so
//! `MockApi::start()` works the same from `#[tokio::test]` (any flavour) and
//! from plain `#[test]` functions, and a test that blocks its own runtime
//! cannot starve the mock. Dropping the `MockApi` stops the server and
//! closes every connection.
//!
//! Behaviour of `POST /v1/messages` is chosen by the script given to
//! `MockApi::start_with` (if any and if it yields a `Behavior`), else by the
//! text of the last user message:
//! - default: text `mock reply #N to: <prompt>`;
//! - `SLOW [ms=500] [chunks=20]`: `chunks` deltas of `slow `; the first ends a
//!   text block at once (so the CLI prints an `assistant` line), the next opens
//!   a second block at once, the rest follow `ms` apart (see `Behavior::Slow`);
//! - `RUN_TOOL <command...>`: text `I'll run a command.` then a `Bash` tool_use;
//! - `ERR400` / `ERR429` / `ERR500`: that status with Anthropic's error JSON;
//! - `USAGE <in> <out>`: default reply with those usage numbers;
//! - a `tool_result` in the last user message: `tool result was (is_error=..): ..`.
//!
//! Any other path (e.g. `/v1/messages/count_tokens`) gets a 200 JSON answer.
//! Every request is recorded (`MockApi::requests`). Self-test:
//! `tests/mock_api_selftest.rs`.
//!
//! Two CLIs on one mock (the real CLI as an MCP host whose MCP server runs another CLI):
//! [`Script::host`] sends the requests of the conversation whose first user prompt starts
//! with a marker to an [`OuterModel`] (planned tool calls, loading deferred MCP tools
//! through the host's `ToolSearch` first, then a text that quotes the last tool result),
//! and every other request to the inner script. [`tool_results`] and
//! [`MockApi::tool_result_of`] give back the `tool_result` blocks exactly as the host sent
//! them to its model.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;

/// Default usage numbers of a reply (the same as in the reference transcripts).
pub const DEFAULT_INPUT_TOKENS: u64 = 10;
pub const DEFAULT_OUTPUT_TOKENS: u64 = 5;
/// Tool result text is cut to this many characters in the echo reply, so a big
/// tool output does not make the reply huge.
pub const TOOL_RESULT_ECHO_CHARS: usize = 200;

/// A keep-alive connection idle this long is closed by the server.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Limits that keep a broken client from making the mock allocate without end.
const MAX_HEADER_BYTES: usize = 256 * 1024;
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// One HTTP request as the mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query string, e.g. `/v1/messages`.
    pub path: String,
    /// Query string without `?`, e.g. `Some("beta=true")`.
    pub query: Option<String>,
    /// Header names are lower-cased; order and duplicates are kept.
    pub headers: Vec<(String, String)>,
    /// Body parsed as JSON; `Value::Null` when empty or not JSON.
    pub body: Value,
    /// Raw body length in bytes.
    pub body_len: usize,
    /// Time since the mock started.
    pub at: Duration,
    /// Index of the TCP connection it came on (0-based), to check keep-alive.
    pub connection: usize,
}

impl RecordedRequest {
    /// First header with that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True for `POST /v1/messages` (any query).
    pub fn is_messages(&self) -> bool {
        self.method == "POST" && self.path == "/v1/messages"
    }

    /// Text the behaviour was chosen from (see [`last_user_prompt`]).
    pub fn prompt(&self) -> String {
        last_user_prompt(&self.body)
    }

    /// The prompt the conversation started with (see [`first_user_prompt`]).
    pub fn first_prompt(&self) -> String {
        first_user_prompt(&self.body)
    }

    /// The `tool_result` blocks of the last user message (see [`tool_results`]).
    pub fn tool_results(&self) -> Vec<ToolResult> {
        tool_results(&self.body)
    }
}

/// What the mock answers to one `POST /v1/messages`.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// Decide from the prompt as if no script were given.
    FromPrompt,
    /// A text reply.
    Text(String),
    /// A text reply with these usage numbers.
    TextWithUsage {
        text: String,
        input_tokens: u64,
        output_tokens: u64,
    },
    /// `chunks` deltas of `slow `. The CLI prints an `assistant` line only
    /// when a content block ends, so the first delta is sent as its own
    /// finished text block (the CLI shows it at once, and an interrupt sent
    /// on seeing it lands mid-stream); the second block starts with one
    /// delta at once too (so an interrupt finds partial text) and sends the
    /// rest `ms` apart: about `(chunks - 2) * ms` in all.
    Slow { ms: u64, chunks: usize },
    /// Text `I'll run a command.` then a tool_use block; stop_reason tool_use.
    ToolUse { name: String, input: Value },
    /// HTTP error with Anthropic's error JSON.
    Error {
        status: u16,
        error_type: String,
        message: String,
    },
    /// Never answer; the connection stays open until the mock is dropped.
    Hang,
    /// Close the connection without any answer.
    Disconnect,
}

impl Behavior {
    /// The `RUN_TOOL` behaviour: a `Bash` tool_use running `command`.
    pub fn run_tool(command: &str) -> Self {
        Behavior::ToolUse {
            name: "Bash".to_string(),
            input: json!({"command": command, "description": "Run a test command"}),
        }
    }

    /// `ERR<status>` as the prompt keyword would give it.
    pub fn error(status: u16) -> Self {
        let error_type = match status {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        Behavior::Error {
            status,
            error_type: error_type.to_string(),
            message: format!("mock {status}"),
        }
    }
}

/// What a script sees for each `POST /v1/messages`.
#[derive(Debug)]
pub struct MessagesCall<'a> {
    /// 1-based count of `/v1/messages` requests served by this mock.
    pub n: usize,
    /// Text of the last user message (see [`last_user_prompt`]).
    pub prompt: &'a str,
    pub request: &'a RecordedRequest,
}

type ScriptFn = dyn Fn(&MessagesCall<'_>) -> Option<Behavior> + Send + Sync;

/// Per-test behaviour that takes precedence over prompt parsing.
pub enum Script {
    /// Behaviours used in order, one per `/v1/messages` request; prompt
    /// parsing once the queue is empty.
    Queue(Mutex<VecDeque<Behavior>>),
    /// Called for each `/v1/messages` request; `None` means prompt parsing.
    Func(Box<ScriptFn>),
}

impl Script {
    pub fn queue(items: impl IntoIterator<Item = Behavior>) -> Self {
        Script::Queue(Mutex::new(items.into_iter().collect()))
    }

    pub fn func(f: impl Fn(&MessagesCall<'_>) -> Option<Behavior> + Send + Sync + 'static) -> Self {
        Script::Func(Box::new(f))
    }

    fn next(&self, call: &MessagesCall<'_>) -> Option<Behavior> {
        match self {
            Script::Queue(q) => lock(q).pop_front(),
            Script::Func(f) => f(call),
        }
    }
}

impl Script {
    /// One mock for an MCP host CLI and the CLI its MCP server runs: requests of the
    /// conversation `outer` owns (see [`OuterModel::owns`]) get its next step, all others
    /// go to `inner` (`None` means prompt parsing, as without a script).
    pub fn host(
        outer: OuterModel,
        inner: impl Fn(&MessagesCall<'_>) -> Option<Behavior> + Send + Sync + 'static,
    ) -> Self {
        Script::func(move |call| {
            if outer.owns(&call.request.body) {
                Some(outer.step(&call.request.body))
            } else {
                inner(call)
            }
        })
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Script::Queue(q) => f.debug_tuple("Queue").field(&*lock(q)).finish(),
            Script::Func(_) => f.write_str("Func(..)"),
        }
    }
}

impl From<Vec<Behavior>> for Script {
    fn from(v: Vec<Behavior>) -> Self {
        Script::queue(v)
    }
}

/// State shared by the server thread and the `MockApi` handle.
#[derive(Debug)]
struct Shared {
    started: Instant,
    requests: Mutex<Vec<RecordedRequest>>,
    messages_served: AtomicUsize,
    connections: AtomicUsize,
    aborted_streams: AtomicUsize,
    script: Option<Script>,
}

/// A running mock server; stops on drop.
#[derive(Debug)]
pub struct MockApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockApi {
    /// Starts the mock on 127.0.0.1 with an ephemeral port. Works from sync and
    /// async code alike (the server has its own thread and runtime).
    pub fn start() -> MockApi {
        Self::try_start(None).expect("start mock Anthropic API")
    }

    /// Like [`MockApi::start`] with a per-test script (a `Script`, or a
    /// `Vec<Behavior>` used as a queue).
    pub fn start_with(script: impl Into<Script>) -> MockApi {
        Self::try_start(Some(script.into())).expect("start mock Anthropic API")
    }

    pub fn try_start(script: Option<Script>) -> io::Result<MockApi> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared {
            started: Instant::now(),
            requests: Mutex::new(Vec::new()),
            messages_served: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            aborted_streams: AtomicUsize::new(0),
            script,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let server_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("mock-api-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(serve(std_listener, server_shared, shutdown_rx));
                // Dropping the runtime here cancels every connection task.
            })?;
        Ok(MockApi {
            addr,
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash), for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Only the `POST /v1/messages` requests.
    pub fn messages_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.is_messages())
            .cloned()
            .collect()
    }

    /// Number of `/v1/messages` requests served (the N of `mock reply #N`).
    pub fn messages_served(&self) -> usize {
        self.shared.messages_served.load(Ordering::SeqCst)
    }

    /// Number of TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Number of streamed replies cut short because the client went away
    /// (what an interrupt looks like from the API side).
    pub fn aborted_streams(&self) -> usize {
        self.shared.aborted_streams.load(Ordering::SeqCst)
    }

    /// The first `tool_result` the host sent back for a call of the tool `name`, from the
    /// `/v1/messages` requests in arrival order (see [`tool_results`]).
    pub fn tool_result_of(&self, name: &str) -> Option<ToolResult> {
        self.tool_results_of(name).into_iter().next()
    }

    /// Every `tool_result` the host sent back for calls of the tool `name`, each once
    /// (a result stays in the history of later requests), in the order of the calls.
    pub fn tool_results_of(&self, name: &str) -> Vec<ToolResult> {
        let mut seen: Vec<ToolResult> = Vec::new();
        for request in self.messages_requests() {
            for result in request.tool_results() {
                let new = !seen.iter().any(|r| r.tool_use_id == result.tool_use_id);
                if result.tool_name.as_deref() == Some(name) && new {
                    seen.push(result);
                }
            }
        }
        seen
    }

    /// Polls until `pred` holds for the recorded requests or `timeout` passes;
    /// returns whether it held.
    pub fn wait_for_requests(
        &self,
        timeout: Duration,
        pred: impl Fn(&[RecordedRequest]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&lock(&self.shared.requests)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Locks a mutex, ignoring poisoning: a panicking test thread must not hide
/// the recorded requests from the assertion that explains it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn serve(
    std_listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(std_listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mock_api: cannot register listener: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let conn = shared.connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(handle_connection(stream, shared.clone(), conn));
                }
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    eprintln!("mock_api: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

struct RawRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

async fn handle_connection(stream: TcpStream, shared: Arc<Shared>, conn: usize) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let req = match tokio::time::timeout(IDLE_TIMEOUT, read_request(&mut reader)).await {
            Ok(Ok(Some(req))) => req,
            // Clean EOF between requests, idle timeout, or an I/O error.
            Ok(Ok(None)) | Err(_) | Ok(Err(_)) => return,
        };
        let close = req.wants_close();
        let keep_going = match respond(req, &shared, conn, &mut reader, &mut write).await {
            Ok(keep) => keep,
            Err(_) => return,
        };
        if close || !keep_going {
            let _ = write.shutdown().await;
            return;
        }
    }
}

fn bad_data(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads one CRLF (or LF) terminated line, bounded by `budget`.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, budget: &mut usize) -> io::Result<String> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take((*budget as u64).saturating_add(1))
        .read_until(b'\n', &mut buf)
        .await?;
    if n > *budget {
        return Err(bad_data("header too large"));
    }
    *budget -= n;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| bad_data("non-UTF-8 header"))
}

/// Reads one request; `Ok(None)` on a clean EOF before its first byte.
async fn read_request<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Option<RawRequest>> {
    // Skip stray blank lines between keep-alive requests (allowed by RFC 9112).
    let request_line = loop {
        if r.fill_buf().await?.is_empty() {
            return Ok(None);
        }
        let mut budget = MAX_HEADER_BYTES;
        let line = read_line(r, &mut budget).await?;
        if !line.is_empty() {
            break line;
        }
    };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(bad_data("bad request line"));
    };
    let (method, target) = (method.to_string(), target.to_string());

    let mut budget = MAX_HEADER_BYTES;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, &mut budget).await?;
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut req = RawRequest {
        method,
        target,
        headers,
        body: Vec::new(),
    };

    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        req.body = read_chunked_body(r).await?;
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len.parse().map_err(|_| bad_data("bad content-length"))?;
        if len > MAX_BODY_BYTES {
            return Err(bad_data("body too large"));
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).await?;
        req.body = body;
    }
    Ok(Some(req))
}

async fn read_chunked_body<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut budget = MAX_HEADER_BYTES;
        let size_line = read_line(r, &mut budget).await?;
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| bad_data("bad chunk size"))?;
        if size == 0 {
            // Trailer fields until the blank line.
            while !read_line(r, &mut budget).await?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(bad_data("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).await?;
        let mut crlf_budget = 2;
        read_line(r, &mut crlf_budget).await?;
    }
}

/// Answers one request; `Ok(false)` means close the connection afterwards.
async fn respond(
    req: RawRequest,
    shared: &Shared,
    conn: usize,
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
) -> io::Result<bool> {
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (req.target.clone(), None),
    };
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let recorded = RecordedRequest {
        method: req.method.clone(),
        path,
        query,
        headers: req.headers.clone(),
        body,
        body_len: req.body.len(),
        at: shared.started.elapsed(),
        connection: conn,
    };
    lock(&shared.requests).push(recorded.clone());
    let request_id = new_request_id();

    if !recorded.is_messages() {
        let reply = if recorded.path == "/v1/messages/count_tokens" {
            obj(&[("input_tokens", DEFAULT_INPUT_TOKENS.to_string())])
        } else {
            "{}".to_string()
        };
        write_json(w, 200, &request_id, &reply, req.method == "HEAD").await?;
        return Ok(true);
    }

    let n = shared.messages_served.fetch_add(1, Ordering::SeqCst) + 1;
    let prompt = last_user_prompt(&recorded.body);
    let scripted = shared.script.as_ref().and_then(|s| {
        s.next(&MessagesCall {
            n,
            prompt: &prompt,
            request: &recorded,
        })
    });
    let behavior = match scripted {
        Some(b) if b != Behavior::FromPrompt => b,
        _ => behavior_from_prompt(&recorded.body, &prompt, n),
    };
    let model = recorded
        .body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("claude-mock")
        .to_string();
    let stream = recorded.body.get("stream").and_then(Value::as_bool) == Some(true);

    let reply = match behavior {
        // Not produced by behavior_from_prompt; answer as the default would.
        Behavior::FromPrompt => Reply::text(
            &format!("mock reply #{n} to: {prompt}"),
            DEFAULT_INPUT_TOKENS,
            DEFAULT_OUTPUT_TOKENS,
        ),
        Behavior::Hang => {
            // Held until the client leaves or the mock is dropped.
            loop {
                pause(r, Duration::from_secs(3600)).await?;
            }
        }
        Behavior::Disconnect => return Ok(false),
        Behavior::Error {
            status,
            error_type,
            message,
        } => {
            let body = obj(&[
                ("type", jstr("error")),
                (
                    "error",
                    obj(&[("type", jstr(&error_type)), ("message", jstr(&message))]),
                ),
                ("request_id", jstr(&request_id)),
            ]);
            write_json(w, status, &request_id, &body, false).await?;
            return Ok(true);
        }
        Behavior::Text(text) => Reply::text(&text, DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS),
        Behavior::TextWithUsage {
            text,
            input_tokens,
            output_tokens,
        } => Reply::text(&text, input_tokens, output_tokens),
        Behavior::Slow { ms, chunks } => Reply::slow(ms, chunks),
        Behavior::ToolUse { name, input } => Reply::tool_use(n, name, input),
    };
    let message_id = format!("msg_mock_{n:04}");
    if stream {
        match write_sse(r, w, &request_id, &message_id, &model, &reply).await {
            Ok(()) => Ok(true),
            Err(e) => {
                // The client hung up mid-stream (e.g. an interrupt).
                shared.aborted_streams.fetch_add(1, Ordering::SeqCst);
                Err(e)
            }
        }
    } else {
        let total_delay: Duration = reply.blocks.iter().map(|b| b.total_delay()).sum();
        tokio::time::sleep(total_delay).await;
        let body = reply.message_json(&message_id, &model, &reply.content_json(), true);
        write_json(w, 200, &request_id, &body, false).await?;
        Ok(true)
    }
}

fn new_request_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("req_mock_{}", &hex[..12])
}

/// Text of the last `role: user` message: its string content, or its last
/// text block (the CLI puts `<system-reminder>` blocks before the prompt), or
/// for a `tool_result` block `tool result was (is_error=True|False): <text>`
/// with the text cut to [`TOOL_RESULT_ECHO_CHARS`] characters. Other roles,
/// including a `system` entry in `messages`, are skipped.
pub fn last_user_prompt(body: &Value) -> String {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return String::new();
    };
    let Some(last_user) = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return String::new();
    };
    match last_user.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => {
            let tool_result = blocks
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"));
            if let Some(tr) = tool_result {
                let is_error = tr.get("is_error").and_then(Value::as_bool) == Some(true);
                let text: String = content_text(tr.get("content"))
                    .chars()
                    .take(TOOL_RESULT_ECHO_CHARS)
                    .collect();
                let flag = if is_error { "True" } else { "False" };
                return format!("tool result was (is_error={flag}): {text}");
            }
            blocks
                .iter()
                .rev()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .find_map(|b| b.get("text").and_then(Value::as_str))
                .unwrap_or("")
                .to_string()
        }
        _ => String::new(),
    }
}

/// Text of a tool_result `content`: a string, or its text blocks joined.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The text of a user message: its string content, or its last text block (the CLI puts
/// `<system-reminder>` blocks before the prompt).
fn user_text(message: &Value) -> Option<String> {
    match message.get("content") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .rev()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .find_map(|b| b.get("text").and_then(Value::as_str))
            .map(str::to_string),
        _ => None,
    }
}

fn messages_of(body: &Value) -> &[Value] {
    body.get("messages")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The prompt a conversation started with: the text of the first `role: user` message
/// (its last text block). Every request of one CLI session carries it, so it tells two
/// CLIs that share a mock apart (an MCP host and the CLI its server runs).
pub fn first_user_prompt(body: &Value) -> String {
    messages_of(body)
        .iter()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(user_text)
        .unwrap_or_default()
}

/// Names in the request's `tools` list: the tools whose schemas the model was given. A
/// deferred MCP tool is listed only once `ToolSearch` has loaded it (with
/// `defer_loading: true`); before that its name appears only in the text of the messages.
pub fn tool_names(body: &Value) -> Vec<String> {
    body.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// A `tool_use` block the model made, as the conversation history carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    pub id: String,
    pub name: String,
    pub input: Value,
}

/// Every `tool_use` block of the `assistant` messages, in order.
pub fn tool_uses(body: &Value) -> Vec<ToolUse> {
    messages_of(body)
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        .map(|b| ToolUse {
            id: b["id"].as_str().unwrap_or_default().to_string(),
            name: b["name"].as_str().unwrap_or_default().to_string(),
            input: b.get("input").cloned().unwrap_or(Value::Null),
        })
        .collect()
}

/// A `tool_result` block as the host sent it to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub tool_use_id: String,
    /// The tool of the matching `tool_use` in the same request, if it is there.
    pub tool_name: Option<String>,
    pub is_error: bool,
    /// `content` exactly as received: a string, or an array of content blocks.
    pub content: Value,
}

impl ToolResult {
    /// What the model reads: the string content byte for byte, or the text blocks
    /// joined with newlines.
    pub fn text(&self) -> String {
        content_text(Some(&self.content))
    }

    /// Size of [`ToolResult::text`] in bytes (UTF-8).
    pub fn bytes(&self) -> usize {
        self.text().len()
    }
}

/// The `tool_result` blocks of the last `role: user` message, with the tool name taken
/// from the matching `tool_use` earlier in the same request.
pub fn tool_results(body: &Value) -> Vec<ToolResult> {
    let uses = tool_uses(body);
    let Some(last_user) = messages_of(body)
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return Vec::new();
    };
    last_user
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        .map(|b| {
            let id = b["tool_use_id"].as_str().unwrap_or_default().to_string();
            ToolResult {
                tool_name: uses.iter().find(|u| u.id == id).map(|u| u.name.clone()),
                tool_use_id: id,
                is_error: b.get("is_error").and_then(Value::as_bool) == Some(true),
                content: b.get("content").cloned().unwrap_or(Value::Null),
            }
        })
        .collect()
}

/// The host's tool that loads the schemas of deferred tools (Claude Code 2.1.x defers
/// MCP tools: the model sees their names and must load them before the first call).
pub const TOOL_SEARCH: &str = "ToolSearch";

/// The `ToolSearch` input that loads exactly the tool `name` (the form the host's
/// system prompt asks for: `select:<name>[,<name>...]`).
pub fn tool_search_input(name: &str) -> Value {
    json!({"query": format!("select:{name}"), "max_results": 1})
}

/// One tool call of an [`OuterModel`].
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub input: Value,
}

impl ToolCall {
    pub fn new(name: &str, input: Value) -> ToolCall {
        ToolCall {
            name: name.to_string(),
            input,
        }
    }
}

/// A scripted model for the host side: makes its planned tool calls one per request, in
/// order, then ends the turn with a text that quotes the last tool result.
///
/// It decides from the request alone (no state), so it survives retries: the calls
/// already made are the non-`ToolSearch` `tool_use` blocks of the history. A planned tool
/// the request's `tools` list does not carry yet is first loaded with `ToolSearch`; if it
/// is still missing after that, the model gives up with a text saying so instead of
/// asking again.
#[derive(Debug, Clone)]
pub struct OuterModel {
    marker: String,
    calls: Vec<ToolCall>,
}

impl OuterModel {
    /// `marker` must start the outer CLI's prompt and no other conversation's.
    pub fn new(marker: &str, calls: Vec<ToolCall>) -> OuterModel {
        OuterModel {
            marker: marker.to_string(),
            calls,
        }
    }

    /// True when the conversation started with the marker.
    pub fn owns(&self, body: &Value) -> bool {
        first_user_prompt(body).starts_with(&self.marker)
    }

    /// The next answer in this conversation.
    pub fn step(&self, body: &Value) -> Behavior {
        let uses = tool_uses(body);
        let made = uses.iter().filter(|u| u.name != TOOL_SEARCH).count();
        let Some(next) = self.calls.get(made) else {
            return Behavior::Text(quote_last_tool_result(body));
        };
        if tool_names(body).contains(&next.name) {
            return Behavior::ToolUse {
                name: next.name.clone(),
                input: next.input.clone(),
            };
        }
        let search = tool_search_input(&next.name);
        if uses
            .iter()
            .any(|u| u.name == TOOL_SEARCH && u.input == search)
        {
            return Behavior::Text(format!(
                "outer model: {TOOL_SEARCH} did not load {}",
                next.name
            ));
        }
        Behavior::ToolUse {
            name: TOOL_SEARCH.to_string(),
            input: search,
        }
    }
}

/// `outer model got <tool> (is_error=..): <whole text>` for the last tool result, or
/// `outer model: done` when the last user message has none.
fn quote_last_tool_result(body: &Value) -> String {
    match tool_results(body).pop() {
        Some(r) => format!(
            "outer model got {} (is_error={}): {}",
            r.tool_name.as_deref().unwrap_or("?"),
            r.is_error,
            r.text()
        ),
        None => "outer model: done".to_string(),
    }
}

/// Behaviour chosen by the prompt keywords (first word of the prompt).
fn behavior_from_prompt(body: &Value, prompt: &str, n: usize) -> Behavior {
    let trimmed = prompt.trim();
    let mut words = trimmed.split_whitespace();
    let first = words.next().unwrap_or("");
    let tool_result_echo = last_user_has_tool_result(body);
    if tool_result_echo {
        return Behavior::Text(prompt.to_string());
    }
    match first {
        "SLOW" => {
            let mut ms = 500;
            let mut chunks = 20;
            for w in words {
                if let Some(v) = w.strip_prefix("ms=").and_then(|v| v.parse().ok()) {
                    ms = v;
                } else if let Some(v) = w.strip_prefix("chunks=").and_then(|v| v.parse().ok()) {
                    chunks = v;
                }
            }
            Behavior::Slow { ms, chunks }
        }
        "RUN_TOOL" => {
            let command = trimmed["RUN_TOOL".len()..].trim();
            Behavior::run_tool(command)
        }
        "ERR400" => Behavior::error(400),
        "ERR429" => Behavior::error(429),
        "ERR500" => Behavior::error(500),
        "USAGE" => {
            let nums: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
            Behavior::TextWithUsage {
                text: format!("mock reply #{n} to: {prompt}"),
                input_tokens: nums.first().copied().unwrap_or(DEFAULT_INPUT_TOKENS),
                output_tokens: nums.get(1).copied().unwrap_or(DEFAULT_OUTPUT_TOKENS),
            }
        }
        _ => Behavior::Text(format!("mock reply #{n} to: {prompt}")),
    }
}

fn last_user_has_tool_result(body: &Value) -> bool {
    body.get("messages")
        .and_then(Value::as_array)
        .and_then(|ms| {
            ms.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        })
}

/// A planned reply, rendered either as SSE or as one JSON message.
struct Reply {
    blocks: Vec<Block>,
    stop_reason: &'static str,
    input_tokens: u64,
    output_tokens: u64,
}

enum Block {
    /// Text sent as these deltas, `delay` between two of them.
    Text {
        deltas: Vec<String>,
        delay: Duration,
    },
    /// tool_use whose input JSON is sent as `input_json_delta` pieces.
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

impl Block {
    fn total_delay(&self) -> Duration {
        match self {
            Block::Text { deltas, delay } => {
                *delay * u32::try_from(deltas.len().saturating_sub(1)).unwrap_or(0)
            }
            Block::ToolUse { .. } => Duration::ZERO,
        }
    }

    fn content_json(&self) -> String {
        match self {
            Block::Text { deltas, .. } => {
                obj(&[("type", jstr("text")), ("text", jstr(&deltas.concat()))])
            }
            Block::ToolUse { id, name, input } => obj(&[
                ("type", jstr("tool_use")),
                ("id", jstr(id)),
                ("name", jstr(name)),
                ("input", input.to_string()),
            ]),
        }
    }
}

impl Reply {
    fn text(text: &str, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply {
            blocks: vec![Block::Text {
                deltas: split_text(text),
                delay: Duration::ZERO,
            }],
            stop_reason: "end_turn",
            input_tokens,
            output_tokens,
        }
    }

    fn slow(ms: u64, chunks: usize) -> Reply {
        let mut blocks = vec![Block::Text {
            deltas: vec!["slow ".to_string()],
            delay: Duration::ZERO,
        }];
        if chunks > 1 {
            blocks.push(Block::Text {
                deltas: vec!["slow ".to_string(); chunks - 1],
                delay: Duration::from_millis(ms),
            });
        }
        Reply {
            blocks,
            stop_reason: "end_turn",
            input_tokens: DEFAULT_INPUT_TOKENS,
            output_tokens: u64::try_from(chunks).unwrap_or(u64::MAX),
        }
    }

    fn tool_use(n: usize, name: String, input: Value) -> Reply {
        Reply {
            blocks: vec![
                Block::Text {
                    deltas: split_text("I'll run a command."),
                    delay: Duration::ZERO,
                },
                Block::ToolUse {
                    id: format!("toolu_mock_{n:04}"),
                    name,
                    input,
                },
            ],
            stop_reason: "tool_use",
            input_tokens: DEFAULT_INPUT_TOKENS,
            output_tokens: DEFAULT_OUTPUT_TOKENS,
        }
    }

    /// `usage` with `output_tokens` as given (message_start reports 1).
    fn usage_json(&self, output_tokens: u64) -> String {
        obj(&[
            ("input_tokens", self.input_tokens.to_string()),
            ("output_tokens", output_tokens.to_string()),
            ("cache_creation_input_tokens", "0".to_string()),
            ("cache_read_input_tokens", "0".to_string()),
        ])
    }

    /// The message object; `content` is given so message_start can send `[]`.
    fn message_json(&self, id: &str, model: &str, content: &str, final_usage: bool) -> String {
        let (stop_reason, output_tokens) = if final_usage {
            (jstr(self.stop_reason), self.output_tokens)
        } else {
            ("null".to_string(), 1)
        };
        obj(&[
            ("id", jstr(id)),
            ("type", jstr("message")),
            ("role", jstr("assistant")),
            ("model", jstr(model)),
            ("content", content.to_string()),
            ("stop_reason", stop_reason),
            ("stop_sequence", "null".to_string()),
            ("usage", self.usage_json(output_tokens)),
        ])
    }

    fn content_json(&self) -> String {
        let blocks: Vec<String> = self.blocks.iter().map(Block::content_json).collect();
        format!("[{}]", blocks.join(","))
    }
}

/// JSON object text with keys in the given order; values are JSON text.
/// (`serde_json::Value` sorts keys, but the CLI copies the API's key order
/// into its `assistant` lines, so the mock keeps the real API's order.)
fn obj(fields: &[(&str, String)]) -> String {
    let members: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", jstr(k)))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// A JSON string literal.
fn jstr(s: &str) -> String {
    Value::from(s).to_string()
}

/// Splits text into a few word-aligned deltas, as the real API streams it.
fn split_text(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, word) in text.split_inclusive(' ').enumerate() {
        cur.push_str(word);
        if i % 3 == 2 {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits a string into pieces of at most `size` chars.
fn split_chars(s: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

async fn write_json(
    w: &mut OwnedWriteHalf,
    status: u16,
    request_id: &str,
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         request-id: {request_id}\r\nconnection: keep-alive\r\n\r\n",
        reason_phrase(status),
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    w.write_all(out.as_bytes()).await?;
    w.flush().await
}

/// Sleeps `d`, but fails early when the client closes the connection, so an
/// abandoned slow stream is noticed (and counted) at once rather than at the
/// next failing write.
async fn pause(r: &mut BufReader<OwnedReadHalf>, d: Duration) -> io::Result<()> {
    let deadline = tokio::time::Instant::now() + d;
    tokio::select! {
        _ = tokio::time::sleep_until(deadline) => Ok(()),
        filled = r.fill_buf() => match filled {
            Ok([]) => Err(io::ErrorKind::ConnectionAborted.into()),
            // A pipelined next request: leave it buffered and finish the wait.
            Ok(_) => {
                tokio::time::sleep_until(deadline).await;
                Ok(())
            }
            Err(e) => Err(e),
        },
    }
}

/// Writes one SSE event as one HTTP chunk, flushed at once.
async fn write_event(w: &mut OwnedWriteHalf, event: &str, data: &str) -> io::Result<()> {
    let payload = format!("event: {event}\ndata: {data}\n\n");
    let chunk = format!("{:x}\r\n{payload}\r\n", payload.len());
    w.write_all(chunk.as_bytes()).await?;
    w.flush().await
}

/// `{"type":<event>,"index":<index>,<key>:<value>}` for the content_block_* events.
fn block_event(event: &str, index: usize, key: &str, value: String) -> String {
    obj(&[
        ("type", jstr(event)),
        ("index", index.to_string()),
        (key, value),
    ])
}

async fn write_sse(
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
    request_id: &str,
    message_id: &str,
    model: &str,
    reply: &Reply,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
         cache-control: no-cache\r\ntransfer-encoding: chunked\r\nrequest-id: {request_id}\r\n\
         connection: keep-alive\r\n\r\n"
    );
    w.write_all(head.as_bytes()).await?;

    let message = reply.message_json(message_id, model, "[]", false);
    let start = obj(&[("type", jstr("message_start")), ("message", message)]);
    write_event(w, "message_start", &start).await?;
    write_event(w, "ping", &obj(&[("type", jstr("ping"))])).await?;

    for (index, block) in reply.blocks.iter().enumerate() {
        let delta_event = |delta: String| block_event("content_block_delta", index, "delta", delta);
        match block {
            Block::Text { deltas, delay } => {
                let empty = obj(&[("type", jstr("text")), ("text", jstr(""))]);
                let ev = block_event("content_block_start", index, "content_block", empty);
                write_event(w, "content_block_start", &ev).await?;
                for (i, d) in deltas.iter().enumerate() {
                    if i > 0 && !delay.is_zero() {
                        pause(r, *delay).await?;
                    }
                    let delta = obj(&[("type", jstr("text_delta")), ("text", jstr(d))]);
                    write_event(w, "content_block_delta", &delta_event(delta)).await?;
                }
            }
            Block::ToolUse { id, name, input } => {
                let start = obj(&[
                    ("type", jstr("tool_use")),
                    ("id", jstr(id)),
                    ("name", jstr(name)),
                    ("input", "{}".to_string()),
                ]);
                let ev = block_event("content_block_start", index, "content_block", start);
                write_event(w, "content_block_start", &ev).await?;
                // The real API opens tool input with an empty partial_json.
                let mut pieces = vec![String::new()];
                pieces.extend(split_chars(&input.to_string(), 24));
                for p in pieces {
                    let delta = obj(&[
                        ("type", jstr("input_json_delta")),
                        ("partial_json", jstr(&p)),
                    ]);
                    write_event(w, "content_block_delta", &delta_event(delta)).await?;
                }
            }
        }
        let stop = obj(&[
            ("type", jstr("content_block_stop")),
            ("index", index.to_string()),
        ]);
        write_event(w, "content_block_stop", &stop).await?;
    }

    let delta = obj(&[
        ("type", jstr("message_delta")),
        (
            "delta",
            obj(&[
                ("stop_reason", jstr(reply.stop_reason)),
                ("stop_sequence", "null".to_string()),
            ]),
        ),
        (
            "usage",
            obj(&[("output_tokens", reply.output_tokens.to_string())]),
        ),
    ]);
    write_event(w, "message_delta", &delta).await?;
    write_event(w, "message_stop", &obj(&[("type", jstr("message_stop"))])).await?;
    // Last chunk: end of this response body; the connection stays open.
    w.write_all(b"0\r\n\r\n").await?;
    w.flush().await
}
