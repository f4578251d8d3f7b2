//! The plain JSON-RPC surface: one request per line on stdin, answers and `ask/event`
//! notifications one per line on stdout, no handshake.
//!
//! [`run`] takes any reader and writer so tests can drive it in-process. One task reads
//! and frames lines ([`crate::inbox`]), this loop validates and dispatches them (each
//! request in its own task, so `status` answers while an `ask` runs), and one writer task
//! owns the output ([`crate::outbox`]).

pub(crate) mod envelope;
pub mod methods;

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use jsonrpsee::types::{Id, Params};
use jsonrpsee::{ConnectionId, Extensions, MethodCallback, RpcModule};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufRead, AsyncWrite};
use tokio::task::JoinSet;

use crate::api::RequestId;
use crate::daemon::Daemon;
use crate::inbox::{Input, spawn_reader};
use crate::lines::Frame;
use crate::outbox::Outbox;
use crate::rpc_error::RpcError;
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
/// one that also closed stdin and stays silent for 5 s is gone: the daemon stops as on a
/// signal and claude-coded exits without waiting for a pipe nobody reads.
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
    let (out, writer_task) = Outbox::spawn(writer);
    let module = methods::module(daemon.clone()).map_err(std::io::Error::other)?;
    let mut server = Server {
        daemon: daemon.clone(),
        module: Arc::new(module),
        out: out.clone(),
        in_flight: Arc::new(Mutex::new(HashSet::new())),
        tasks: JoinSet::new(),
    };
    let max = daemon.config().max_request_bytes;
    let mut frames = spawn_reader(input, max, out.clone());
    tokio::pin!(shutdown);
    let reason = loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Some(Frame::Line(line)) => server.on_line(&line),
                Some(Frame::TooLong { len }) => server.on_too_long(len, max),
                Some(Frame::Eof) | None => break None,
            },
            reason = &mut shutdown => break Some(reason),
            Some(_) = server.tasks.join_next(), if !server.tasks.is_empty() => {}
        }
    };
    let reason = match reason {
        Some(reason) => reason,
        // stdin closed: let the requests already received finish, unless a signal comes
        // or the client turns out to be gone.
        None => tokio::select! {
            _ = server.finish() => "stdin closed",
            reason = &mut shutdown => reason,
            _ = out.abandon_when_stalled() => "the client is gone",
        },
    };
    daemon.shutdown(reason).await;
    server.finish().await;
    drop(server);
    out.finish(writer_task).await;
    Ok(())
}

struct Server {
    /// For queueing asks in arrival order, before their tasks start.
    daemon: Daemon,
    module: Arc<RpcModule<Daemon>>,
    /// Every stdout line goes through here to the one writer task.
    out: Outbox,
    /// Ids of requests being served, to refuse duplicates.
    in_flight: Arc<Mutex<HashSet<String>>>,
    tasks: JoinSet<()>,
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
            }) => self.on_call(id, raw_id, method, params),
            Ok(Incoming::Notification { method }) => {
                tracing::debug!(%method, "ignoring a notification (no id, so no answer is owed)");
            }
            Ok(Incoming::Response { id }) => {
                tracing::warn!(%id, "ignoring a response from the client: this server sends no requests");
            }
            Err(Rejected { id, error }) => self.reply_error(id, &error),
        }
    }

    fn on_too_long(&mut self, len: usize, limit: usize) {
        self.reply_error(Value::Null, &RpcError::RequestTooLarge { len, limit });
    }

    fn on_call(&mut self, id: Value, raw_id: String, method: String, params: Option<Value>) {
        let key = raw_id;
        if !lock(&self.in_flight).insert(key.clone()) {
            let error = RpcError::InvalidRequest(format!(
                "id {key} is already used by a request in flight"
            ));
            return self.reply_error(id, &error);
        }
        let Some(callback) = self.module.method(&method).cloned() else {
            lock(&self.in_flight).remove(&key);
            return self.reply_error(id, &RpcError::MethodNotFound(method));
        };
        let submitted = match method.as_str() {
            "ask" => methods::submit_ask(&self.daemon, params.as_ref()),
            _ => None,
        };
        let ctx = RequestCtx {
            id: RequestId::from_text(&key, &id),
            out: self.out.clone(),
            submitted: Arc::new(Mutex::new(submitted)),
        };
        let in_flight = self.in_flight.clone();
        let out = self.out.clone();
        self.tasks.spawn(async move {
            let line = call(callback, params, ctx).await;
            lock(&in_flight).remove(&key);
            let _ = out.push(with_id(&key, &line)).await;
        });
    }

    fn reply_error(&mut self, id: Value, error: &RpcError) {
        let line = serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": error.to_error_object(),
        })
        .to_string();
        // Queued at once and not waited for: reading goes on (or pauses) by the
        // outbox's backlog, not by how fast this one line drains.
        drop(self.out.push(line));
    }

    async fn finish(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Runs one method and returns jsonrpsee's response JSON.
async fn call(callback: MethodCallback, params: Option<Value>, ctx: RequestCtx) -> String {
    let raw = params.map(|p| p.to_string());
    let params = Params::new(raw.as_deref()).into_owned();
    let mut extensions = Extensions::new();
    extensions.insert(ctx);
    // The id is ours to put back (jsonrpsee ids cannot hold every JSON number).
    let response = match callback {
        MethodCallback::Async(cb) => {
            (cb)(Id::Null, params, ConnectionId(0), usize::MAX, extensions).await
        }
        MethodCallback::Sync(cb) => (cb)(Id::Null, params, usize::MAX, extensions),
        MethodCallback::Subscription(_) | MethodCallback::Unsubscription(_) => {
            return error_body(&RpcError::Internal("subscriptions are not offered".into()));
        }
    };
    response.into_parts().0.get().to_string()
}

fn error_body(error: &RpcError) -> String {
    serde_json::json!({ "jsonrpc": "2.0", "id": null, "error": error.to_error_object() })
        .to_string()
}

/// Re-frames jsonrpsee's response under the request's own id.
fn with_id(id: &str, response: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        result: Option<&'a RawValue>,
        #[serde(borrow)]
        error: Option<&'a RawValue>,
    }
    match serde_json::from_str::<Body>(response) {
        Ok(Body {
            result: Some(r), ..
        }) => format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{}}}"#, r.get()),
        Ok(Body { error: Some(e), .. }) => {
            format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{}}}"#, e.get())
        }
        _ => {
            let error = RpcError::Internal("the method produced no response".into());
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"error":{}}}"#,
                serde_json::json!(error.to_error_object())
            )
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
