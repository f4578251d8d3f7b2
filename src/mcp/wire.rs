//! The MCP surface's own reading and writing of stdio: rmcp's [`Transport`], placed
//! between the client and rmcp so that every request gets exactly one answer, under its
//! own id, whatever the client sends.
//!
//! rmcp's stdio transport and service loop leave gaps a careless or hostile client
//! falls into; each is closed here, where we see every line before rmcp does:
//!
//! - **Malformed lines** (not JSON, not UTF-8, a NUL byte, nesting too deep, over
//!   `--max-request-bytes`, a batch, a bad `id`, `params` that are not an object) are
//!   answered here with the plain surface's codes (-32700, -32600, -32602, -32005);
//!   rmcp would drop most of them silently, or answer -32600 without the id.
//! - **Ids.** rmcp only ever sees ids we hand out (1, 2, 3, ...); the client's id, kept
//!   as the JSON text it wrote, goes back on the answer. So any string or number works
//!   (`2^63`, `1.5`), and an id already in flight is refused with -32600 instead of
//!   overwriting the first request's entry in rmcp's tables (which lost one answer).
//! - **Known methods with bad params** (`tools/call` without a name, `arguments` not an
//!   object, `logging/setLevel` with an unknown level) get -32602 naming the problem;
//!   rmcp parses them as unknown custom requests and answers -32601.
//! - **Stray messages before the session starts** (a notification or a response before
//!   `initialize`, or after a `server/discover`) are ignored; rmcp ends the session on
//!   them. Notifications are never answered, even malformed ones.
//! - **Re-initialize.** A second `initialize` is refused: the session keeps what was
//!   negotiated (rmcp would answer it yet switch the session to the offered revision).
//! - **Arrival order of asks**: each `ask` gets its [`Place`] as it is read (see
//!   [`crate::arrivals`]).
//! - **stdin EOF** ends the session only once every request received is answered; a
//!   cancelled request is withdrawn by the client and owed nothing (MCP: the receiver
//!   should not answer it). A client that also stopped reading is gone (see
//!   [`crate::outbox`]).
// Logging and resource subscriptions are deprecated in 2026-07-28 (SEP-2577) but still
// served to older revisions, so their params are checked like the rest.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequest, ClientJsonRpcMessage, ClientRequest, CompleteRequest, DiscoverRequest,
    GetMeta, GetPromptRequest, InitializeRequest, JsonRpcMessage, ListPromptsRequest,
    ListResourceTemplatesRequest, ListResourcesRequest, ListToolsRequest, PingRequest,
    ProtocolVersion, ReadResourceRequest, RequestId as RmcpId, ServerJsonRpcMessage, ServerResult,
    SetLevelRequest, SubscribeRequest, UnsubscribeRequest,
};
use rmcp::transport::Transport;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::progress::EVENT_METHOD;
use crate::api::RequestId;
use crate::arrivals::{Arrivals, Place};
use crate::error::code;
use crate::event_lines::EventLines;
use crate::lines::Frame;
use crate::outbox::{Outbox, OutboxError};
use crate::plain::envelope::{self, Incoming, Rejected};
use crate::rpc_error::RpcError;

/// RFC 8259 lets a parser skip a leading byte order mark; rmcp did, so we do.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// rmcp's transport over our framed stdin and the [`Outbox`].
pub(super) struct WireTransport {
    frames: mpsc::Receiver<Frame>,
    out: Outbox,
    max_line: usize,
    /// The revisions the server speaks, to tell when a 2026-07-28 request opens a session.
    supported: Vec<ProtocolVersion>,
    asks: Arrivals,
    book: Book,
    input_closed: bool,
}

/// Requests handed to rmcp and not yet answered, and the session's state.
#[derive(Default)]
struct Book {
    /// The last id handed to rmcp.
    last: i64,
    /// Our id → the client's request.
    ours: HashMap<i64, InFlight>,
    /// The client's id (its JSON text) → ours, for duplicates and cancellations.
    theirs: HashMap<String, i64>,
    /// The revision, once the session started (`initialize` answered, or a first
    /// request with a complete 2026-07-28 `_meta`). Before that rmcp is still choosing
    /// a lifecycle and must not see anything but requests.
    session: Option<ProtocolVersion>,
}

/// One client request rmcp is serving.
struct InFlight {
    /// The client's id as it wrote it.
    theirs: String,
    method: String,
    /// Set when the client cancels it; an `ask` stops sending raw events then.
    withdrawn: Arc<AtomicBool>,
}

/// Where an `ask` writes its raw child events: straight to the outbox, under the
/// client's own id, never through rmcp (which would decode and re-encode each one).
#[derive(Clone)]
pub(super) struct RawEventRoute {
    out: Outbox,
    theirs: RequestId,
    withdrawn: Arc<AtomicBool>,
}

impl RawEventRoute {
    /// The line writer for this ask's raw events, and its withdrawn flag.
    pub(super) fn lines(&self, session: &str) -> (EventLines, Arc<AtomicBool>) {
        let lines = EventLines::new(self.out.clone(), EVENT_METHOD, self.theirs.clone(), session);
        (lines, self.withdrawn.clone())
    }
}

impl WireTransport {
    pub(super) fn new(
        frames: mpsc::Receiver<Frame>,
        out: Outbox,
        max_line: usize,
        supported: Vec<ProtocolVersion>,
    ) -> WireTransport {
        WireTransport {
            frames,
            out,
            max_line,
            supported,
            asks: Arrivals::new(),
            book: Book::default(),
            input_closed: false,
        }
    }

    /// One line from the client: the message for rmcp, or `None` when it was answered
    /// here or ignored.
    fn incoming(&mut self, line: &[u8]) -> Option<ClientJsonRpcMessage> {
        let line = line.strip_prefix(BOM).unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        match envelope::parse(line) {
            Err(Rejected { id, error }) => {
                self.reject(&id.to_string(), &error);
                None
            }
            Ok(Incoming::Call {
                id,
                raw_id,
                method,
                params,
            }) => self.call(&id, raw_id, method, params),
            Ok(Incoming::Notification { method }) => self.notification(line, &method),
            Ok(Incoming::Response { id }) => self.response(line, &id),
        }
    }

    fn call(
        &mut self,
        id: &Value,
        theirs: String,
        method: String,
        params: Option<Value>,
    ) -> Option<ClientJsonRpcMessage> {
        if id.is_null() {
            let error = RpcError::InvalidRequest("an MCP request id must not be null".into());
            return self.refuse("null", &error);
        }
        if self.book.theirs.contains_key(&theirs) {
            let error = RpcError::InvalidRequest(format!(
                "id {theirs} is already used by a request in flight"
            ));
            return self.refuse(&theirs, &error);
        }
        if let (Some(version), "initialize") = (&self.book.session, method.as_str()) {
            let error = RpcError::InvalidRequest(format!(
                "the session is already initialized (protocol {version}); \
                 a new session needs a new claude-coded process"
            ));
            return self.refuse(&theirs, &error);
        }
        let ours = self.book.last + 1;
        let mut message = json!({ "method": method });
        if let Some(params) = params {
            message["params"] = params;
        }
        let in_session = self.book.session.is_some();
        let mut request = match typed_request(&method, &message, in_session) {
            Ok(request) => request,
            Err(error) => return self.refuse(&theirs, &error),
        };
        self.book.last = ours;
        let withdrawn = Arc::new(AtomicBool::new(false));
        if let ClientRequest::CallToolRequest(call) = &mut request
            && call.params.name == "ask"
        {
            call.extensions.insert::<Place>(self.asks.place());
            call.extensions.insert(RawEventRoute {
                out: self.out.clone(),
                theirs: RequestId::from_text(&theirs, &Value::Null),
                withdrawn: withdrawn.clone(),
            });
        }
        if self.book.session.is_none() {
            self.book.session = self.opens_inline_session(&request);
        }
        self.book.ours.insert(
            ours,
            InFlight {
                theirs: theirs.clone(),
                method,
                withdrawn,
            },
        );
        self.book.theirs.insert(theirs, ours);
        Some(ClientJsonRpcMessage::request(request, RmcpId::Number(ours)))
    }

    /// Does rmcp start a 2026-07-28 session with this request? Mirrors its opening loop:
    /// any request but `initialize`, `ping` and `server/discover` whose `_meta` is
    /// complete and names a revision the server speaks.
    fn opens_inline_session(&self, request: &ClientRequest) -> Option<ProtocolVersion> {
        if matches!(
            request,
            ClientRequest::InitializeRequest(_)
                | ClientRequest::PingRequest(_)
                | ClientRequest::DiscoverRequest(_)
        ) {
            return None;
        }
        let meta = request.get_meta();
        let complete = meta
            .missing_required_keys(&ProtocolVersion::V_2026_07_28)
            .is_empty();
        meta.protocol_version()
            .filter(|version| complete && self.supported.contains(version))
    }

    fn notification(&mut self, line: &[u8], method: &str) -> Option<ClientJsonRpcMessage> {
        if self.book.session.is_none() {
            tracing::debug!(method, "ignoring a notification before the session started");
            return None;
        }
        let mut value: Value = serde_json::from_slice(line).ok()?;
        if method == "notifications/cancelled" {
            let ours = self.withdraw(cancelled_id(line))?;
            value["params"]["requestId"] = json!(ours);
        }
        match serde_json::from_value(value) {
            Ok(message) => Some(message),
            Err(err) => {
                tracing::debug!(method, %err, "ignoring a malformed notification");
                None
            }
        }
    }

    /// The client cancelled one of its requests: it owes nothing more for that id (it
    /// may reuse it) and gets no answer for it. Returns our id for rmcp.
    fn withdraw(&mut self, key: Option<String>) -> Option<i64> {
        let key = key?;
        let Some(ours) = self.book.theirs.remove(&key) else {
            tracing::debug!(id = %key, "ignoring a cancellation of no request in flight");
            return None;
        };
        if let Some(request) = self.book.ours.remove(&ours) {
            request.withdrawn.store(true, Ordering::Release);
        }
        Some(ours)
    }

    fn response(&mut self, line: &[u8], id: &Value) -> Option<ClientJsonRpcMessage> {
        if self.book.session.is_none() {
            tracing::debug!(%id, "ignoring a response before the session started");
            return None;
        }
        // We send the client no requests; rmcp matches (and drops) it all the same.
        serde_json::from_slice(line).ok()
    }

    /// Answers a line here with `error` under the id text `theirs`.
    fn reject(&self, theirs: &str, error: &RpcError) {
        let body = json!(error.to_error_object());
        let line = format!(r#"{{"jsonrpc":"2.0","id":{theirs},"error":{body}}}"#);
        // Queued, not waited for: the reader pauses on the outbox's backlog instead.
        drop(self.out.push(line));
    }

    fn refuse(&self, theirs: &str, error: &RpcError) -> Option<ClientJsonRpcMessage> {
        self.reject(theirs, error);
        None
    }

    /// A message from rmcp as the line for the client, or `None` to drop it.
    fn outgoing(&mut self, message: ServerJsonRpcMessage) -> Option<String> {
        let line = match message {
            JsonRpcMessage::Response(response) => {
                let request = self.answered(&response.id, Some(&response.result))?;
                let theirs = request.theirs;
                let result = serde_json::to_string(&response.result);
                result.map(|r| format!(r#"{{"jsonrpc":"2.0","id":{theirs},"result":{r}}}"#))
            }
            JsonRpcMessage::Error(error) => {
                let Some(id) = &error.id else {
                    let body = serde_json::to_string(&error.error);
                    return body
                        .map(|e| format!(r#"{{"jsonrpc":"2.0","id":null,"error":{e}}}"#))
                        .ok();
                };
                let request = self.answered(id, None)?;
                let theirs = &request.theirs;
                // rmcp's -32601 says only the method's name (an empty message for ""): give
                // it the plain surface's message and `data.method`.
                let body = match error.error.code.0 {
                    code::METHOD_NOT_FOUND => {
                        let error = RpcError::MethodNotFound(request.method);
                        Ok(json!(error.to_error_object()).to_string())
                    }
                    _ => serde_json::to_string(&error.error),
                };
                body.map(|e| format!(r#"{{"jsonrpc":"2.0","id":{theirs},"error":{e}}}"#))
            }
            JsonRpcMessage::Notification(notification) => serde_json::to_string(&notification),
            request @ JsonRpcMessage::Request(_) => serde_json::to_string(&request),
        };
        line.inspect_err(|err| tracing::error!(%err, "cannot serialise a message; dropped"))
            .ok()
    }

    /// The request our `id` answers, or `None` for one the client cancelled. Notes the
    /// session's revision when this answers `initialize`.
    fn answered(&mut self, id: &RmcpId, result: Option<&ServerResult>) -> Option<InFlight> {
        let RmcpId::Number(ours) = id else {
            tracing::warn!(%id, "an answer under an id we never gave out; dropped");
            return None;
        };
        let Some(request) = self.book.ours.remove(ours) else {
            tracing::debug!(%id, "not sending the answer to a cancelled request");
            return None;
        };
        if self.book.theirs.get(&request.theirs) == Some(ours) {
            self.book.theirs.remove(&request.theirs);
        }
        if let (true, Some(ServerResult::InitializeResult(init))) =
            (request.method == "initialize", result)
        {
            self.book.session = Some(init.protocol_version.clone());
        }
        Some(request)
    }
}

/// The `requestId` of a `notifications/cancelled` line, as the key of that request.
fn cancelled_id(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        params: Option<Params<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(borrow, rename = "requestId")]
        request_id: Option<&'a RawValue>,
    }
    let line: Line = serde_json::from_slice(line).ok()?;
    line.params?.request_id.map(envelope::id_key)
}

/// `message` (`method` and `params`) as rmcp's request. A known method whose params do
/// not fit its type is an error here: rmcp would take it for an unknown custom request.
/// Also the check of `/mcp` over HTTP (`crate::http`), which rmcp's transport serves.
pub(crate) fn typed_request(
    method: &str,
    message: &Value,
    in_session: bool,
) -> Result<ClientRequest, RpcError> {
    let request: ClientRequest = serde_json::from_value(message.clone())
        .map_err(|err| RpcError::InvalidRequest(err.to_string()))?;
    if !matches!(request, ClientRequest::CustomRequest(_)) {
        return Ok(request);
    }
    match params_problem(method, message, in_session) {
        Some(problem) => Err(RpcError::InvalidParams(format!("{method}: {problem}"))),
        None => Ok(request),
    }
}

/// Why `message` does not parse as the known `method`; `None` for unknown methods.
fn params_problem(method: &str, message: &Value, in_session: bool) -> Option<String> {
    match method {
        "initialize" => problem::<InitializeRequest>(message),
        "ping" => problem::<PingRequest>(message),
        // Before the session rmcp answers a `server/discover` without `_meta` -32602
        // naming what the `_meta` lacks, which says more than a missing `params`.
        "server/discover" if in_session => problem::<DiscoverRequest>(message),
        "tools/list" => problem::<ListToolsRequest>(message),
        "tools/call" => problem::<CallToolRequest>(message),
        "logging/setLevel" => problem::<SetLevelRequest>(message),
        "completion/complete" => problem::<CompleteRequest>(message),
        "prompts/list" => problem::<ListPromptsRequest>(message),
        "prompts/get" => problem::<GetPromptRequest>(message),
        "resources/list" => problem::<ListResourcesRequest>(message),
        "resources/templates/list" => problem::<ListResourceTemplatesRequest>(message),
        "resources/read" => problem::<ReadResourceRequest>(message),
        "resources/subscribe" => problem::<SubscribeRequest>(message),
        "resources/unsubscribe" => problem::<UnsubscribeRequest>(message),
        _ => None,
    }
}

/// The parse error of `message` as `T`, with the path of the field at fault.
fn problem<T: DeserializeOwned>(message: &Value) -> Option<String> {
    let error = serde_path_to_error::deserialize::<_, T>(message.clone()).err()?;
    let path = error.path().to_string();
    Some(match path.as_str() {
        "." => error.inner().to_string(),
        _ => format!("{path}: {}", error.inner()),
    })
}

impl Transport<RoleServer> for WireTransport {
    type Error = OutboxError;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), OutboxError>> + Send + 'static {
        // Translated and queued now, in the order rmcp sends; written by the outbox.
        let pushed = self.outgoing(item).map(|line| self.out.push(line));
        async move {
            match pushed {
                Some(written) => written.await,
                None => Ok(()),
            }
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            if self.input_closed {
                // rmcp gives answers in flight 5 s once this returns `None`, then drops
                // them; so `None` waits until every request received was answered (each
                // answer sent re-polls this), or the client is gone.
                if !self.book.ours.is_empty() {
                    self.out.abandon_when_stalled().await;
                }
                return None;
            }
            match self.frames.recv().await {
                Some(Frame::Line(line)) => {
                    if let Some(message) = self.incoming(&line) {
                        return Some(message);
                    }
                }
                Some(Frame::TooLong { len }) => {
                    let limit = self.max_line;
                    self.reject("null", &RpcError::RequestTooLarge { len, limit });
                }
                Some(Frame::Eof) | None => self.input_closed = true,
            }
        }
    }

    async fn close(&mut self) -> Result<(), OutboxError> {
        Ok(())
    }
}

/// What rmcp 3.11 itself does with the messages this layer keeps from it. Each test
/// pins one fault of rmcp's stdio transport or service loop that a workaround above
/// exists for; when an rmcp upgrade fixes it, its test fails, and the workaround (and
/// the test) can go.
#[cfg(test)]
mod rmcp_canaries {
    use std::time::Duration;

    use rmcp::model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ErrorData, ServerCapabilities,
        ServerConfig,
    };
    use rmcp::service::{RequestContext, ServerInitializeError};
    use rmcp::transport::async_rw::AsyncRwTransport;
    use rmcp::{RoleServer, ServerHandler, ServiceExt};
    use serde_json::Value;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

    const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"canary","version":"0"}}}"#;

    /// A server with one tool that sleeps `arguments.ms` before answering.
    struct Sleeper;

    impl ServerHandler for Sleeper {
        fn get_info(&self) -> ServerConfig {
            ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
        }

        async fn call_tool(
            &self,
            request: CallToolRequestParams,
            _context: RequestContext<RoleServer>,
        ) -> Result<CallToolResponse, ErrorData> {
            let ms = request
                .arguments
                .and_then(|a| a.get("ms").and_then(Value::as_u64))
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(CallToolResult::success(Vec::new()).into())
        }
    }

    struct Client {
        to_server: DuplexStream,
        from_server: BufReader<DuplexStream>,
    }

    impl Client {
        async fn send(&mut self, line: &str) {
            self.to_server.write_all(line.as_bytes()).await.unwrap();
            self.to_server.write_all(b"\n").await.unwrap();
        }

        /// The next line from rmcp, or `None` if none comes within `wait`.
        async fn next(&mut self, wait: Duration) -> Option<Value> {
            let mut line = String::new();
            let read = tokio::time::timeout(wait, self.from_server.read_line(&mut line)).await;
            read.ok().map(|_| serde_json::from_str(&line).unwrap())
        }
    }

    /// rmcp serving [`Sleeper`] on its own stdio transport, in the background.
    fn serve_sleeper() -> (
        Client,
        tokio::task::JoinHandle<Result<(), ServerInitializeError>>,
    ) {
        let (client_out, server_in) = tokio::io::duplex(64 * 1024);
        let (server_out, client_in) = tokio::io::duplex(64 * 1024);
        let transport = AsyncRwTransport::new_server(server_in, server_out);
        let serving = tokio::spawn(async move {
            let running = Sleeper.serve(transport).await?;
            let _ = running.waiting().await;
            Ok(())
        });
        let client = Client {
            to_server: client_out,
            from_server: BufReader::new(client_in),
        };
        (client, serving)
    }

    async fn initialized() -> Client {
        let (mut client, _serving) = serve_sleeper();
        client.send(INITIALIZE).await;
        let answer = client.next(Duration::from_secs(5)).await.unwrap();
        assert_eq!(answer["id"], "init");
        client
    }

    /// Workaround: `WireTransport::notification`/`response` drop stray messages before
    /// the session.
    #[tokio::test]
    async fn rmcp_still_ends_the_session_on_a_notification_before_initialize() {
        let (mut client, serving) = serve_sleeper();
        client
            .send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        let ended = tokio::time::timeout(Duration::from_secs(5), serving).await;
        let outcome = ended
            .expect("rmcp now survives a stray notification")
            .unwrap();
        assert!(matches!(
            outcome,
            Err(ServerInitializeError::ExpectedInitializeRequest(_))
        ));
    }

    /// Workaround: `WireTransport::call` refuses an id in flight, and rmcp only sees ours.
    #[tokio::test]
    async fn rmcp_still_loses_an_answer_when_two_requests_share_an_id() {
        let mut client = initialized().await;
        let call = |ms: u64| {
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"sleep","arguments":{{"ms":{ms}}}}}}}"#
            )
        };
        client.send(&call(300)).await;
        client.send(&call(0)).await;
        let first = client.next(Duration::from_secs(5)).await;
        assert!(first.is_some_and(|a| a["id"] == 7));
        let second = client.next(Duration::from_secs(1)).await;
        assert!(second.is_none(), "rmcp now answers both: {second:?}");
    }

    /// Workaround: `WireTransport::call` refuses a second `initialize`.
    #[tokio::test]
    async fn rmcp_still_switches_revision_on_a_second_initialize() {
        let mut client = initialized().await;
        client
            .send(
                &INITIALIZE
                    .replace("2025-11-25", "2026-07-28")
                    .replace(r#""id":"init""#, r#""id":"again""#),
            )
            .await;
        let again = client.next(Duration::from_secs(5)).await.unwrap();
        assert_eq!(again["result"]["protocolVersion"], "2025-11-25");
        client
            .send(r#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#)
            .await;
        let ping = client.next(Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            ping["error"]["code"], -32601,
            "rmcp now keeps the negotiated revision: {ping}"
        );
    }

    /// Workaround: `WireTransport::incoming` answers every line rmcp's transport drops.
    #[tokio::test]
    async fn rmcp_still_drops_unparsable_lines_and_answers_bad_ids_without_an_id() {
        let mut client = initialized().await;
        client
            .send("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\",\"params\":{\"x\":\"a\0b\"}}")
            .await;
        let dropped = client.next(Duration::from_millis(500)).await;
        assert!(
            dropped.is_none(),
            "rmcp now answers a bad line: {dropped:?}"
        );
        client
            .send(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#)
            .await;
        let answer = client.next(Duration::from_secs(5)).await.unwrap();
        assert!(
            answer.get("id").is_none_or(Value::is_null) && answer["error"]["code"] == -32600,
            "rmcp now answers id 1.5: {answer}"
        );
    }
}
