//! `ask/subscribe`: one ask as a jsonrpsee subscription, for WebSocket clients (served
//! by jsonrpsee's own server, see [`crate::http`]), which get no notifications outside
//! a subscription.
//!
//! The ask is queued as the `ask` method queues it ([`super::methods::queue_ask`]); each
//! child message goes out as an `ask/event` notification whose `result` is
//! `{"event": <the params of ask/event on stdio>}`, written by the same
//! [`EventParams`] as stdio's lines, then one last `{"result": ...}` or
//! `{"error": ...}` ([`AskSubscriptionItem`]), and jsonrpsee's close notice ends the
//! subscription. A client that
//! unsubscribes or disconnects withdraws its ask, as a socket client that leaves does.
//! A subscription's sink is bounded: a client that reads slowly slows the child down.

use std::sync::Arc;

use jsonrpsee::core::SubscriptionError;
use jsonrpsee::core::server::SubscriptionCloseResponse;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{PendingSubscriptionSink, SubscriptionMessage, SubscriptionSink};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::methods::{Carries, Queued, queue_ask};
use crate::api::{AskSubscriptionItem, ErrorInfo, RequestId};
use crate::daemon::Daemon;
use crate::error::DaemonError;
use crate::event_lines::EventParams;
use crate::rpc_error::RpcError;
use crate::supervisor::TurnMessage;

/// The `error` of the notice that ends a subscription after its last item.
const ENDED: &str = "the ask ended; its result or error was the last item";

/// Runs one ask under the subscription `pending`; what it returns closes it.
pub(super) async fn ask(
    params: Params<'static>,
    pending: PendingSubscriptionSink,
    daemon: Arc<Daemon>,
) -> SubscriptionCloseResponse {
    // Refused asks (bad params, a full queue) answer the subscribe call itself: the
    // subscription is accepted only once the session's actor has taken the ask in.
    let queued = match admitted(&params, &daemon).await {
        Ok(queued) => queued,
        Err(error) => {
            pending.reject(error).await;
            return SubscriptionCloseResponse::None;
        }
    };
    // A client gone before its subscription started: dropping `queued` withdraws the ask.
    let Ok(sink) = pending.accept().await else {
        return SubscriptionCloseResponse::None;
    };
    let Queued {
        pending,
        messages,
        session,
        ..
    } = queued;
    let turn = async { tokio::join!(pending.wait(), forward(messages, &sink, &session)).0 };
    let answer = tokio::select! {
        answer = turn => answer,
        () = sink.closed() => {
            tracing::debug!("a WebSocket client left its ask/subscribe; withdrawing the ask");
            return SubscriptionCloseResponse::None;
        }
    };
    let last = match answer {
        Ok(result) => AskSubscriptionItem::Result(Box::new(result)),
        Err(error) => {
            let error = RpcError::from(DaemonError::from(error)).to_error_object();
            AskSubscriptionItem::Error(error_info(error))
        }
    };
    let delivered = match serde_json::value::to_raw_value(&last) {
        Ok(raw) => sink.send(SubscriptionMessage::from(raw)).await.is_ok(),
        Err(err) => {
            tracing::error!(%err, "cannot write the last message of an ask/subscribe");
            true
        }
    };
    // jsonrpsee's way to end a subscription from the server is a notification with
    // `error` in place of `result`: its clients end the stream on it (and drop its
    // text), so the answer went out before it as an item of its own.
    match delivered {
        true => SubscriptionCloseResponse::NotifErr(SubscriptionError::from(ENDED)),
        false => SubscriptionCloseResponse::None,
    }
}

/// Queues the ask and waits until its session's actor has taken it in; its refusal
/// (bad params, a full queue, a child that cannot start) is the error.
async fn admitted(params: &Params<'static>, daemon: &Daemon) -> Result<Queued, ErrorObjectOwned> {
    // Over WebSocket (TCP) the kernel does not say which process called.
    let params = super::methods::parse::<crate::api::AskParams>(params)?;
    let place = crate::arrivals::Place::alone();
    let mut queued = queue_ask(&place, params, daemon, Carries::Events, None).await?;
    match queued.pending.admitted().await {
        Ok(()) => Ok(queued),
        Err(error) => Err(RpcError::from(DaemonError::from(error)).to_error_object()),
    }
}

/// Sends each message of the turn as an `event` item, in order; returns when the turn
/// has no more (all sent) or the client is gone.
async fn forward(
    messages: Option<mpsc::Receiver<TurnMessage>>,
    sink: &SubscriptionSink,
    session: &str,
) {
    let Some(mut messages) = messages else {
        return;
    };
    let id = serde_json::to_value(sink.subscription_id()).unwrap_or_default();
    let params = EventParams::new(&RequestId::from_value(&id), session);
    while let Some(item) = messages.recv().await {
        let Some(event) = event_item(&params, &item) else {
            continue;
        };
        if sink.send(event).await.is_err() {
            return;
        }
    }
}

/// `{"event": <params>}` for one message.
fn event_item(params: &EventParams, item: &TurnMessage) -> Option<Box<RawValue>> {
    let mut json = br#"{"event":"#.to_vec();
    params.write(&mut json, item);
    json.push(b'}');
    // The child's text was checked as JSON (and UTF-8) when it was read, so neither
    // check fails; each is cheap next to sending the message.
    let text = String::from_utf8(json).ok()?;
    match RawValue::from_string(text) {
        Ok(raw) => Some(raw),
        Err(err) => {
            tracing::error!(%err, seq = item.seq, "an ask/subscribe event is not JSON; skipped");
            None
        }
    }
}

fn error_info(error: ErrorObjectOwned) -> ErrorInfo {
    ErrorInfo {
        code: error.code(),
        message: error.message().to_string(),
        data: error
            .data()
            .and_then(|data| serde_json::from_str(data.get()).ok()),
    }
}
