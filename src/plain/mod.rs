//! The plain JSON-RPC surface: one request per line on stdin, answers and `ask/event`
//! notifications one per line on stdout, no handshake.
//!
//! [`run`] takes any reader and writer so tests can drive it in-process. One task reads
//! and frames lines ([`crate::inbox`]), this loop validates them (`envelope`) and calls
//! the method table (`methods`, a jsonrpsee `RpcModule`) the way jsonrpsee's own
//! `Methods::raw_json_request` does, and one writer task owns the output
//! ([`crate::outbox`]). The loop knows no method by name.
//!
//! A call is served in a task of its own (so `status` answers while an `ask` runs); an
//! `ask` takes its place in the connection's line here, as its line is read
//! ([`crate::arrivals`]), so pipelined asks queue in the order sent. Its answer is the
//! one jsonrpsee builds, under the request's id exactly as the client wrote it.

pub(crate) mod client_requests;
pub(crate) mod envelope;
pub(crate) mod methods;
mod subscription;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use jsonrpsee::types::{Id, Params};
use jsonrpsee::{ConnectionId, Extensions, MethodCallback, MethodResponse, Methods};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncWrite};
use tokio::task::JoinSet;

use crate::api::RequestId;
use crate::arrivals::Arrivals;
use crate::daemon::Daemon;
use crate::inbox::{Input, spawn_reader};
use crate::lines::Frame;
use crate::nesting::Caller;
use crate::outbox::Outbox;
use crate::rpc_error::RpcError;
use crate::sync::lock;
use client_requests::ClientRequests;
use envelope::{Incoming, Rejected};
use methods::RequestCtx;

/// Serves `reader` until EOF or `shutdown`, then stops the daemon.
///
/// On EOF the requests already received are finished first (a piped `ask` still gets
/// its answer); on `shutdown` the daemon stops at once and they get a "stopping" error.
pub async fn run<R, W>(
    reader: R,
    writer: W,
    daemon: Daemon,
    shutdown: impl Future<Output = &'static str>,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    serve(Input::new(reader), writer, daemon, shutdown).await
}

/// [`run`], with a first frame already read (by surface detection) served before the rest.
///
/// A client that stops reading stdout is not read from either (see [`crate::inbox`]);
/// one that also closed stdin and stays silent for 5 s is gone, and so is one whose
/// stdout is broken (it closed its end): the daemon stops as on a signal and
/// claude-coded exits without waiting for a pipe nobody reads.
pub async fn serve<R, W>(
    input: Input<R>,
    writer: W,
    daemon: Daemon,
    shutdown: impl Future<Output = &'static str>,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let connection = Connection::open(writer, &daemon, None)?;
    let reading = connection.read(input, shutdown, std::future::pending());
    let (server, out, writer_task, reason) = reading.await;
    daemon.shutdown(reason.as_str()).await;
    close(server, out, writer_task).await;
    Ok(())
}

/// Serves one client of the daemon's socket (see [`crate::socket`]) exactly as stdio is
/// served, over the same method table, except that its end does not stop the daemon:
/// after EOF its requests finish; when it is gone its asks are withdrawn (dropping an
/// ask cancels it); when the daemon stops, its asks end with "stopping" errors.
///
/// `closed` resolves when the client has closed the connection altogether (not only its
/// writing half): after its EOF, that is how a client that left while its ask runs silent
/// is told from one that waits for the answer.
pub(crate) async fn serve_client<R, W>(
    input: Input<R>,
    writer: W,
    daemon: Daemon,
    closed: impl Future<Output = ()>,
    caller: Option<Caller>,
) where
    R: AsyncBufRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let connection = match Connection::open(writer, &daemon, caller) {
        Ok(connection) => connection,
        Err(err) => return tracing::warn!(%err, "cannot serve a socket client"),
    };
    let reading = connection.read(input, daemon.stop_begun(), closed);
    let (mut server, out, writer_task, reason) = reading.await;
    if let Ending::Gone(reason) = &reason {
        tracing::debug!(%reason, "a socket client is gone; withdrawing its asks");
        server.tasks.abort_all();
    }
    close(server, out, writer_task).await;
}

/// How reading a client ended.
enum Ending {
    /// stdin closed and the requests received were answered.
    Done,
    /// `shutdown` resolved (a signal, or the daemon stopping).
    Shutdown(&'static str),
    /// The client is gone (its output broke, or it stopped reading after closing stdin).
    Gone(&'static str),
}

impl Ending {
    fn as_str(&self) -> &'static str {
        match self {
            Ending::Done => "stdin closed",
            Ending::Shutdown(reason) | Ending::Gone(reason) => reason,
        }
    }
}

/// One client's method table, output and calls in flight, before reading starts.
struct Connection {
    server: Server,
    out: Outbox,
    writer_task: WriterTask,
    max: usize,
}

impl Connection {
    fn open<W>(writer: W, daemon: &Daemon, caller: Option<Caller>) -> std::io::Result<Connection>
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (out, writer_task) = Outbox::spawn(writer);
        let methods = methods::module(daemon.clone()).map_err(std::io::Error::other)?;
        let server = Server {
            methods: methods.into(),
            out: out.clone(),
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            client: ClientRequests::default(),
            tasks: JoinSet::new(),
            caller,
            arrivals: Arrivals::new(),
        };
        let max = daemon.config().max_request_bytes;
        Ok(Connection {
            server,
            out,
            writer_task,
            max,
        })
    }

    /// Serves requests until EOF (then lets those received finish), `shutdown`, or the
    /// client being gone.
    async fn read<R>(
        self,
        input: Input<R>,
        shutdown: impl Future<Output = &'static str>,
        closed: impl Future<Output = ()>,
    ) -> (Server, Outbox, WriterTask, Ending)
    where
        R: AsyncBufRead + Unpin + Send + 'static,
    {
        let Connection {
            mut server,
            out,
            writer_task,
            max,
        } = self;
        let mut frames = spawn_reader(input, max, out.clone());
        tokio::pin!(shutdown);
        let ending = loop {
            tokio::select! {
                frame = frames.recv() => match frame {
                    Some(Frame::Line(line)) => server.on_line(&line),
                    Some(Frame::TooLong { len }) => server.on_too_long(len, max),
                    Some(Frame::Eof) | None => break None,
                },
                reason = &mut shutdown => break Some(Ending::Shutdown(reason)),
                // The output is broken: nothing can reach the client any more.
                reason = out.gone() => {
                    tracing::warn!(%reason, "the client is gone; stopping");
                    break Some(Ending::Gone("the client is gone"));
                }
                Some(_) = server.tasks.join_next(), if !server.tasks.is_empty() => {}
            }
        };
        let ending = match ending {
            Some(ending) => ending,
            // stdin closed: let the requests already received finish, unless a stop
            // comes or the client turns out to be gone.
            None => tokio::select! {
                _ = server.finish() => Ending::Done,
                reason = &mut shutdown => Ending::Shutdown(reason),
                _ = out.abandon_when_stalled() => Ending::Gone("the client is gone"),
                () = closed => Ending::Gone("the client closed the connection"),
            },
        };
        (server, out, writer_task, ending)
    }
}

type WriterTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// Lets the calls in flight answer (the daemon has stopped, or the client went), then
/// flushes what is queued for the client.
async fn close(mut server: Server, out: Outbox, writer_task: WriterTask) {
    server.finish().await;
    drop(server);
    out.finish(writer_task).await;
}

struct Server {
    /// The method table, as jsonrpsee's servers take it; the loop looks methods up here
    /// and nowhere else.
    methods: Methods,
    /// Every stdout line goes through here to the one writer task.
    out: Outbox,
    /// Ids of requests being served (as the client wrote them), to refuse duplicates.
    in_flight: Arc<Mutex<HashSet<String>>>,
    /// Our requests to the client (`permission/request`) waiting for its response.
    client: ClientRequests,
    tasks: JoinSet<()>,
    /// The process at the other end, when the kernel says (a socket client).
    caller: Option<Caller>,
    /// This connection's line, where each `ask` takes its place as it is read.
    arrivals: Arrivals,
}

impl Server {
    fn on_line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match envelope::parse(line) {
            Ok(Incoming::Call {
                id,
                raw_id,
                method,
                params,
            }) => self.on_call(&id, raw_id, &method, params),
            Ok(Incoming::Notification { method }) => {
                tracing::debug!(%method, "ignoring a notification (no id, so no answer is owed)");
            }
            Ok(Incoming::Response { id }) => {
                if !self.client.on_response(line) {
                    tracing::warn!(%id, "ignoring a response that answers no open request of ours");
                }
            }
            Err(Rejected { id, error }) => self.reply_error(&id.to_string(), &error),
        }
    }

    fn on_too_long(&mut self, len: usize, limit: usize) {
        self.reply_error("null", &RpcError::RequestTooLarge { len, limit });
    }

    /// Starts the call now and answers it from a task of its own.
    fn on_call(&mut self, id: &Value, raw_id: String, method: &str, params: Option<Value>) {
        if lock(&self.in_flight).contains(&raw_id) {
            let error = RpcError::InvalidRequest(format!(
                "id {raw_id} is already used by a request in flight"
            ));
            return self.reply_error(&raw_id, &error);
        }
        let Some(callback) = self.methods.method(method) else {
            return self.reply_error(&raw_id, &RpcError::MethodNotFound(method.to_string()));
        };
        lock(&self.in_flight).insert(raw_id.clone());
        let ctx = RequestCtx {
            id: RequestId::from_text(&raw_id, id),
            out: self.out.clone(),
            client: self.client.clone(),
            caller: self.caller,
            place: methods::takes_place(method).then(|| self.arrivals.place()),
        };
        let call = match start(callback, params, ctx) {
            Started::Answered(response) => {
                // Answered in the loop (`ping`, `status`, ...): queued now, with no task
                // to start and wake. Like an error reply, not waited for: `close` flushes
                // the outbox, so the answer is out before the connection ends.
                lock(&self.in_flight).remove(&raw_id);
                drop(self.out.push(with_id(&raw_id, response)));
                return;
            }
            Started::Running(call) => call,
        };
        let in_flight = self.in_flight.clone();
        let out = self.out.clone();
        self.tasks.spawn(async move {
            let response = call.await;
            lock(&in_flight).remove(&raw_id);
            let _ = out.push(with_id(&raw_id, response)).await;
        });
    }

    /// Answers under `raw_id` (JSON text) with `error`, without calling a method.
    fn reply_error(&mut self, raw_id: &str, error: &RpcError) {
        let response = MethodResponse::error(Id::Null, error.to_error_object());
        // Queued at once and not waited for: reading goes on (or pauses) by the
        // outbox's backlog, not by how fast this one line drains.
        drop(self.out.push(with_id(raw_id, response)));
    }

    async fn finish(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The rest of a call, to run in its task.
type Call = Pin<Box<dyn Future<Output = MethodResponse> + Send>>;

/// Where a call stands once started.
enum Started {
    /// It answered at once (a sync method, or an async one that did not wait).
    Answered(MethodResponse),
    /// It goes on: the rest of it.
    Running(Call),
}

/// Makes the call as jsonrpsee's `Methods` would, here in the loop: a sync method runs
/// to its end, and an async one is polled once, so one that does not wait (an `events`
/// poll, a `wait` with `timeoutMs: 0`) is answered with no task to start and wake.
/// That poll is for speed, not order (order is `crate::arrivals`'s): it uses a waker
/// that does nothing, and the task that takes a call still pending polls it again at
/// once, with its own.
fn start(callback: &MethodCallback, params: Option<Value>, ctx: RequestCtx) -> Started {
    let text = params.map(|p| p.to_string());
    let params = Params::new(text.as_deref()).into_owned();
    let mut extensions = Extensions::new();
    extensions.insert(ctx);
    // jsonrpsee's `Id` holds no negative, fractional or over-64-bit number, so calls are
    // made under a null id and [`with_id`] writes the request's own.
    let id = Id::Null;
    match callback {
        MethodCallback::Sync(method) => {
            Started::Answered(method(id, params, usize::MAX, extensions))
        }
        MethodCallback::Async(method) => {
            let mut call = method(id, params, ConnectionId(0), usize::MAX, extensions);
            match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(response) => Started::Answered(response),
                Poll::Pending => Started::Running(call),
            }
        }
        // Subscriptions need jsonrpsee's connection; here `ask` itself streams.
        MethodCallback::Subscription(_) | MethodCallback::Unsubscription(_) => {
            let error = RpcError::InvalidRequest(
                "subscriptions are served over WebSocket (--listen); on this connection \
                 `ask` sends its events as ask/event notifications itself"
                    .into(),
            );
            Started::Answered(MethodResponse::error(id, error.to_error_object()))
        }
    }
}

/// How jsonrpsee begins every response made under a null id; the result or the error
/// follows.
const NULL_ID_HEAD: &str = r#"{"jsonrpc":"2.0","id":null,"#;

/// The response's line, with the request's id (JSON text, exactly as the client wrote
/// it) in place of jsonrpsee's null: the response is not parsed again.
fn with_id(raw_id: &str, response: MethodResponse) -> String {
    let json = response.into_json();
    match json.get().strip_prefix(NULL_ID_HEAD) {
        Some(rest) => format!(r#"{{"jsonrpc":"2.0","id":{raw_id},{rest}"#),
        // Only if a jsonrpsee upgrade changed its layout (a unit test pins it).
        None => format!(
            r#"{{"jsonrpc":"2.0","id":{raw_id},"error":{{"code":{},"message":"internal error: the method's response has an unknown layout"}}}}"#,
            crate::error::code::INTERNAL_ERROR
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonrpsee::{ResponsePayload, RpcModule};
    use serde_json::json;

    #[test]
    fn an_answer_carries_the_request_id_exactly_as_written() {
        let big = "123456789012345678901234567890";
        let ok = MethodResponse::response(
            Id::Null,
            ResponsePayload::success(json!({"a": 1})),
            usize::MAX,
        );
        assert_eq!(
            with_id(big, ok),
            format!(r#"{{"jsonrpc":"2.0","id":{big},"result":{{"a":1}}}}"#)
        );
        let error = RpcError::MethodNotFound("nope".into()).to_error_object();
        let line = with_id("-1.50", MethodResponse::error(Id::Null, error));
        assert!(line.starts_with(r#"{"jsonrpc":"2.0","id":-1.50,"error":{"code":-32601,"#));
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["error"]["data"], json!({"method": "nope"}));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn asks_queue_in_the_order_their_lines_were_read_whatever_order_their_tasks_run() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut module = RpcModule::from_arc(seen.clone());
        module
            .register_async_method("ask", |params, seen, ext| async move {
                let n: u64 = params.parse::<Value>().unwrap()["n"].as_u64().unwrap();
                // The first lines' tasks wait longest, so later ones try to queue first.
                tokio::time::sleep(std::time::Duration::from_millis(40 - 2 * n)).await;
                let place = ext.get::<RequestCtx>().and_then(|ctx| ctx.place.clone());
                let place = place.unwrap_or_else(crate::arrivals::Place::alone);
                place.in_turn(|| lock(&seen).push(n)).await;
                n
            })
            .unwrap();
        let mut server = Server {
            methods: module.into(),
            out: Outbox::spawn(tokio::io::sink()).0,
            in_flight: Arc::default(),
            client: ClientRequests::default(),
            tasks: JoinSet::new(),
            caller: None,
            arrivals: Arrivals::new(),
        };
        for n in 0..20 {
            let line =
                format!(r#"{{"jsonrpc":"2.0","id":{n},"method":"ask","params":{{"n":{n}}}}}"#);
            server.on_line(line.as_bytes());
        }
        server.finish().await;
        assert_eq!(*lock(&seen), (0..20).collect::<Vec<_>>());
    }
}
