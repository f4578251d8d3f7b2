//! The server: its own thread and tokio runtime, the accept loop, one task per keep-alive
//! connection, and the answer to each request.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;

use crate::hosts::{self, HostModel, HostToolCall, HostToolOutput, HostWire};
use crate::http::{RawRequest, pause, read_request, write_json};
use crate::reply::{Reply, jstr, obj};
use crate::request::{RecordedRequest, ToolResult, last_user_prompt};
use crate::script::{
    Behavior, DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS, MessagesCall, Script,
    behavior_from_prompt,
};
use crate::sse::{write_sse, write_sse_events};

/// A keep-alive connection idle this long is closed by the server.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// State shared by the server thread and the `MockApi` handle.
#[derive(Debug)]
struct Shared {
    started: Instant,
    requests: Mutex<Vec<RecordedRequest>>,
    messages_served: AtomicUsize,
    connections: AtomicUsize,
    /// Requests of a host's model answered (the N of its ids).
    host_served: AtomicUsize,
    aborted_streams: AtomicUsize,
    script: Option<Script>,
    /// The model of a host that is not Claude Code (Codex, Gemini), if any.
    host: Option<HostModel>,
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
        started(Self::try_start(None))
    }

    /// Like [`MockApi::start`] with a per-test script (a `Script`, or a
    /// `Vec<Behavior>` used as a queue).
    pub fn start_with(script: impl Into<Script>) -> MockApi {
        started(Self::try_start(Some(script.into())))
    }

    /// A mock for an MCP host that is not Claude Code (Codex CLI on `/v1/responses`,
    /// Gemini CLI on `/v1beta/models/...`): its model is `host`; the Messages API beside it
    /// (for the Claude Code CLI that the host's MCP server runs) goes by the prompt keywords.
    pub fn start_for_host(host: HostModel) -> MockApi {
        started(Self::try_start_hosting(None, Some(host)))
    }

    pub fn try_start(script: Option<Script>) -> io::Result<MockApi> {
        Self::try_start_hosting(script, None)
    }

    /// [`MockApi::try_start`] with a host model too.
    pub fn try_start_hosting(
        script: Option<Script>,
        host: Option<HostModel>,
    ) -> io::Result<MockApi> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared {
            started: Instant::now(),
            requests: Mutex::new(Vec::new()),
            messages_served: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            host_served: AtomicUsize::new(0),
            aborted_streams: AtomicUsize::new(0),
            script,
            host,
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

    /// The requests of a host's model (Codex's `/v1/responses`, Gemini's
    /// `:streamGenerateContent` and `:generateContent`), in arrival order.
    pub fn host_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| HostWire::of(r).is_some())
            .cloned()
            .collect()
    }

    /// Every output of the server's tool `tool` (its own name, e.g. `ask`) that the host
    /// gave back to its model, each once, in the order of the calls. Only the requests of
    /// the conversation itself count (those that offer tools): a host's side requests
    /// (Gemini's loop check) carry the history in their own form.
    pub fn host_outputs(&self, tool: &str) -> Vec<HostToolOutput> {
        let server = self.host_server();
        let mut seen: Vec<HostToolOutput> = Vec::new();
        for request in self.host_requests() {
            let Some(wire) = HostWire::of(&request) else {
                continue;
            };
            if hosts::offered_names(wire, &request.body).is_empty() {
                continue;
            }
            for output in hosts::outputs(wire, &request.body, &server) {
                // The host repeats each output in later requests (maybe shortened): one
                // call id is one output, as first given.
                let new = !seen.iter().any(|o| {
                    if o.id.is_empty() {
                        o.raw == output.raw
                    } else {
                        o.id == output.id
                    }
                });
                if output.tool == tool && new {
                    seen.push(output);
                }
            }
        }
        seen
    }

    /// Every call of the server's tool `tool` the host's model made, with the arguments as
    /// the host recorded them in the history, in order.
    pub fn host_calls(&self, tool: &str) -> Vec<HostToolCall> {
        let server = self.host_server();
        let requests = self.host_requests();
        let mut conversation = requests.iter().rev().filter(|r| {
            HostWire::of(r).is_some_and(|w| !hosts::offered_names(w, &r.body).is_empty())
        });
        let Some(last) = conversation.next() else {
            return Vec::new();
        };
        let Some(wire) = HostWire::of(last) else {
            return Vec::new();
        };
        hosts::calls(wire, &last.body, &server)
            .into_iter()
            .filter(|c| c.tool == tool)
            .collect()
    }

    fn host_server(&self) -> String {
        self.shared
            .host
            .as_ref()
            .map_or_else(|| "claude-coded".to_string(), |h| h.server().to_string())
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
    /// `/v1/messages` requests in arrival order (see [`tool_results`](crate::tool_results)).
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

/// For the tests: a mock that cannot start fails the test that wanted it, with the reason.
#[allow(clippy::expect_used)]
fn started(mock: io::Result<MockApi>) -> MockApi {
    mock.expect("start mock Anthropic API")
}

/// Locks a mutex, ignoring poisoning: a panicking test thread must not hide
/// the recorded requests from the assertion that explains it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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

/// Answers one request; `Ok(false)` means close the connection afterwards.
async fn respond(
    req: RawRequest,
    shared: &Shared,
    conn: usize,
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
) -> io::Result<bool> {
    let recorded = shared.record(&req, conn);
    let request_id = new_request_id();

    if let Some(wire) = HostWire::of(&recorded) {
        let host_n = shared.host_served.fetch_add(1, Ordering::SeqCst) + 1;
        return answer_host(shared, wire, &recorded, host_n, &request_id, w).await;
    }

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
    let reply = match shared.behavior(n, &prompt, &recorded) {
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
    deliver(shared, &recorded, &request_id, &message_id, &reply, r, w).await
}

/// Answers a host model's request with its [`HostModel`]'s next step (a text when the mock
/// has none): Server-Sent Events, or one JSON body for Gemini's `:generateContent`.
async fn answer_host(
    shared: &Shared,
    wire: HostWire,
    recorded: &RecordedRequest,
    n: usize,
    request_id: &str,
    w: &mut OwnedWriteHalf,
) -> io::Result<bool> {
    let step = match &shared.host {
        Some(model) => model.step(wire, &recorded.body),
        None => hosts::HostStep::Text("outer model: no host model in this mock".to_string()),
    };
    let events = hosts::answer_events(wire, &step, n);
    if wire == (HostWire::Gemini { stream: false }) {
        let body = events
            .first()
            .map_or_else(String::new, |(_, e)| e.to_string());
        write_json(w, 200, request_id, &body, false).await?;
        return Ok(true);
    }
    write_sse_events(w, request_id, &events).await?;
    Ok(true)
}

/// Writes `reply`: streamed as SSE when the request asked for a stream, else as one JSON
/// message once its delays have passed.
async fn deliver(
    shared: &Shared,
    recorded: &RecordedRequest,
    request_id: &str,
    message_id: &str,
    reply: &Reply,
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
) -> io::Result<bool> {
    let model = recorded
        .body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("claude-mock")
        .to_string();
    let stream = recorded.body.get("stream").and_then(Value::as_bool) == Some(true);
    if stream {
        match write_sse(r, w, request_id, message_id, &model, reply).await {
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
        let body = reply.message_json(message_id, &model, &reply.content_json(), true);
        write_json(w, 200, request_id, &body, false).await?;
        Ok(true)
    }
}

impl Shared {
    /// Records `req` (arrival time, connection) and returns the record.
    fn record(&self, req: &RawRequest, conn: usize) -> RecordedRequest {
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
            at: self.started.elapsed(),
            connection: conn,
        };
        lock(&self.requests).push(recorded.clone());
        recorded
    }

    /// The behaviour for the `n`-th `/v1/messages` request: the script's, else the prompt's.
    fn behavior(&self, n: usize, prompt: &str, recorded: &RecordedRequest) -> Behavior {
        let scripted = self.script.as_ref().and_then(|s| {
            s.next(&MessagesCall {
                n,
                prompt,
                request: recorded,
            })
        });
        match scripted {
            Some(b) if b != Behavior::FromPrompt => b,
            _ => behavior_from_prompt(&recorded.body, prompt, n),
        }
    }
}

fn new_request_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("req_mock_{}", &hex[..12])
}
