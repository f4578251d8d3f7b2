//! The method table of the plain surface, on jsonrpsee's `RpcModule`: adding a method
//! is registering it in [`module`], and nothing else names it.
//!
//! A method parses its own params (once, with [`parse`]) and returns its result or an
//! error object from [`crate::rpc_error`]. The stdio adapter (`super`) starts each call
//! in arrival order, up to the method's first `.await`: whatever a method must do in the
//! order requests came (an `ask` taking its place in the queue) it does before that, and
//! nothing slow: until then it holds up the reading of the next request.

use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{Extensions, RpcModule};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::{
    AskParams, AskResult, EventsParams, EventsResult, RequestId, StatusParams, StatusResult,
};
use crate::daemon::{Daemon, DaemonError};
use crate::event_lines::EventLines;
use crate::outbox::Outbox;
use crate::rpc_error::RpcError;
use crate::supervisor::{Pending, TurnMessage};

/// Method name of the notifications streamed during an `ask`.
pub(crate) const ASK_EVENT: &str = "ask/event";

/// Messages a turn may buffer for a slow client before the child is held back.
const TURN_BUFFER: usize = 1024;

/// Per-request facts the adapter passes to a method through its `Extensions`.
#[derive(Clone)]
pub(crate) struct RequestCtx {
    /// The request's id as the client wrote it, for its notifications.
    pub(crate) id: RequestId,
    /// Lines for stdout (notifications); the response itself is written by the adapter.
    pub(crate) out: Outbox,
}

type MethodResult<T> = Result<T, ErrorObjectOwned>;

/// Builds the method table: `ask`, `status`, `events`, `restart`, `ping`.
pub(crate) fn module(daemon: Daemon) -> Result<RpcModule<Daemon>, RpcError> {
    let mut module = RpcModule::new(daemon);
    let register = |e: jsonrpsee::core::RegisterMethodError| RpcError::Internal(e.to_string());
    module
        .register_async_method("ask", |params, daemon, ext| ask(&params, &daemon, &ext))
        .map_err(register)?;
    module
        .register_method("status", |params, daemon, _| status(params, daemon))
        .map_err(register)?;
    module
        .register_method("events", |params, daemon, _| events(params, daemon))
        .map_err(register)?;
    module
        .register_async_method("restart", |params, daemon, _| async move {
            parse::<StatusParams>(&params)?;
            daemon
                .restart()
                .await
                .map_err(|e| RpcError::from(e).to_error_object())
        })
        .map_err(register)?;
    module
        .register_method("ping", |params, _, _| -> MethodResult<Value> {
            parse::<StatusParams>(&params)?;
            Ok(json!({}))
        })
        .map_err(register)?;
    Ok(module)
}

/// Queues the ask, then streams its turn and waits for the answer.
///
/// Queueing is done before the future is built, not inside it, so it cannot slip behind
/// an `.await`: the adapter starts calls in arrival order (up to their first `.await`),
/// and pipelined asks must take their places in the queue in that order.
fn ask(
    params: &Params<'_>,
    daemon: &Daemon,
    ext: &Extensions,
) -> impl Future<Output = MethodResult<AskResult>> + use<> {
    let queued = queue_ask(params, daemon, ext);
    async move {
        let (pending, messages, ctx) = queued?;
        let (answer, ()) = tokio::join!(pending.wait(), forward(messages, &ctx));
        answer.map_err(|e| RpcError::from(DaemonError::from(e)).to_error_object())
    }
}

/// An ask in the queue, the stream of its turn's messages, and where they go.
type Queued = (Pending, mpsc::Receiver<TurnMessage>, RequestCtx);

fn queue_ask(params: &Params<'_>, daemon: &Daemon, ext: &Extensions) -> MethodResult<Queued> {
    let ctx = ext
        .get::<RequestCtx>()
        .cloned()
        .ok_or_else(|| RpcError::Internal("request context missing".into()).to_error_object())?;
    let params: AskParams = parse(params)?;
    let (sink, messages) = mpsc::channel(TURN_BUFFER);
    let pending = daemon
        .submit_ask(params, Some(sink))
        .map_err(|e| RpcError::from(e).to_error_object())?;
    Ok((pending, messages, ctx))
}

/// Writes each streamed message as an `ask/event` notification, in order; returns when
/// the turn drops its sink and all of them were written, so every notification precedes
/// the response. Waiting here when the client reads slowly is what slows the child down.
async fn forward(mut messages: mpsc::Receiver<TurnMessage>, ctx: &RequestCtx) {
    let mut lines = EventLines::new(ctx.out.clone(), ASK_EVENT, ctx.id.clone());
    while let Some(item) = messages.recv().await {
        lines.add(item);
        while lines.wants_more() {
            match messages.try_recv() {
                Ok(item) => lines.add(item),
                Err(_) => break,
            }
        }
        if lines.send().await.is_err() {
            return;
        }
    }
    let _ = lines.finish().await;
}

fn status(params: Params<'_>, daemon: &Daemon) -> MethodResult<StatusResult> {
    parse::<StatusParams>(&params)?;
    Ok(daemon.status())
}

fn events(params: Params<'_>, daemon: &Daemon) -> MethodResult<EventsResult> {
    let params: EventsParams = parse(&params)?;
    daemon
        .events(&params)
        .map_err(|e| RpcError::from(e).to_error_object())
}

/// Named params into `T`; absent params count as `{}`. Errors name the field.
fn parse<T: DeserializeOwned>(params: &Params<'_>) -> MethodResult<T> {
    let raw = params.as_str().unwrap_or("{}");
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let field = e.path().to_string();
        let message = e.inner().to_string();
        // serde appends " at line 1 column N", which means nothing to the caller.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        let error = match field.as_str() {
            // The problem is with the object itself (missing or unknown field, named already).
            "." => RpcError::InvalidParams(message),
            _ => RpcError::InvalidParam { field, message },
        };
        error.to_error_object()
    })
}
