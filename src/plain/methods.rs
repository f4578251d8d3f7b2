//! The method table of the plain surface, on jsonrpsee's `RpcModule`.

use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{Extensions, RpcModule};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::{
    AskEventParams, AskParams, AskResult, EventsParams, EventsResult, StatusParams, StatusResult,
};
use crate::child::protocol::kind_of;
use crate::daemon::Daemon;
use crate::rpc_error::RpcError;
use crate::supervisor::TurnMessage;

/// Method name of the notifications streamed during an `ask`.
pub const ASK_EVENT: &str = "ask/event";

/// Messages a turn may buffer for a slow client before the excess is dropped (and counted).
const TURN_BUFFER: usize = 1024;

/// Per-request facts the server loop passes to a method through its `Extensions`.
#[derive(Clone)]
pub struct RequestCtx {
    pub id: Value,
    /// Lines for stdout (notifications); the response itself is written by the loop.
    pub out: mpsc::Sender<String>,
}

type MethodResult<T> = Result<T, ErrorObjectOwned>;

/// Builds the method table: `ask`, `status`, `events`, `ping`.
pub fn module(daemon: Daemon) -> Result<RpcModule<Daemon>, RpcError> {
    let mut module = RpcModule::new(daemon);
    let register = |e: jsonrpsee::core::RegisterMethodError| RpcError::Internal(e.to_string());
    module
        .register_async_method("ask", |params, daemon, ext| async move {
            ask(params, &daemon, &ext).await
        })
        .map_err(register)?;
    module
        .register_method("status", |params, daemon, _| status(params, daemon))
        .map_err(register)?;
    module
        .register_method("events", |params, daemon, _| events(params, daemon))
        .map_err(register)?;
    module
        .register_method("ping", |params, _, _| -> MethodResult<Value> {
            parse::<StatusParams>(&params)?;
            Ok(json!({}))
        })
        .map_err(register)?;
    Ok(module)
}

async fn ask(
    params: Params<'static>,
    daemon: &Daemon,
    ext: &Extensions,
) -> MethodResult<AskResult> {
    let params: AskParams = parse(&params)?;
    let ctx = ext
        .get::<RequestCtx>()
        .cloned()
        .ok_or_else(|| RpcError::Internal("request context missing".into()).to_error_object())?;
    let (sink, messages) = mpsc::channel(TURN_BUFFER);
    let (answer, ()) = tokio::join!(daemon.ask(params, Some(sink)), forward(messages, &ctx));
    answer.map_err(|e| RpcError::from(e).to_error_object())
}

/// Writes each streamed message as an `ask/event` notification, in order; returns when
/// the turn drops its sink, so every notification precedes the response.
async fn forward(mut messages: mpsc::Receiver<TurnMessage>, ctx: &RequestCtx) {
    while let Some(TurnMessage { seq, message }) = messages.recv().await {
        let (kind, subtype) = kind_of(&message);
        let params = AskEventParams {
            request_id: ctx.id.clone(),
            seq,
            kind,
            subtype,
            message,
        };
        let line = json!({ "jsonrpc": "2.0", "method": ASK_EVENT, "params": params }).to_string();
        if ctx.out.send(line).await.is_err() {
            return;
        }
    }
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
    serde_json::from_str(raw).map_err(|e| {
        let message = e.to_string();
        // serde appends " at line 1 column N", which means nothing to the caller.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        RpcError::InvalidParams(message).to_error_object()
    })
}
