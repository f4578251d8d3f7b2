//! Requests this server sends its plain client (`permission/request`), and the routing
//! of the client's responses back to whoever waits for them.
//!
//! Our ids are strings (`"claude-coded-1"`, ...), apart from any id the client uses for
//! its own requests. A response that answers none of ours (late, after the question was
//! decided without it, or unknown) is logged and ignored, never applied to another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::outbox::Outbox;
use crate::sync::lock;

/// The client's response: its `result`, or its `error` object.
pub(crate) type Response = Result<Value, Value>;

/// Requests sent and not yet answered; cloneable, shared by the calls of one session.
#[derive(Clone, Default)]
pub(crate) struct ClientRequests {
    inner: Arc<Mutex<Waiting>>,
}

#[derive(Default)]
struct Waiting {
    last: u64,
    by_id: HashMap<String, oneshot::Sender<Response>>,
}

impl ClientRequests {
    /// Sends a request and waits for its response; `None` when `give_up` resolves first
    /// (the question was decided without the client) or the output is gone.
    pub(crate) async fn call(
        &self,
        out: &Outbox,
        method: &str,
        params: Value,
        give_up: impl Future<Output = ()>,
    ) -> Option<Response> {
        self.call_then(out, method, params, give_up, None).await
    }

    /// [`ClientRequests::call`], telling the client with the notification `withdraw`
    /// (`{"requestId": id}`) when it gives up, so the client stops asking its user
    /// (ACP's `$/cancel_request`).
    pub(crate) async fn call_withdrawable(
        &self,
        out: &Outbox,
        method: &str,
        params: Value,
        give_up: impl Future<Output = ()>,
        withdraw: &str,
    ) -> Option<Response> {
        self.call_then(out, method, params, give_up, Some(withdraw))
            .await
    }

    async fn call_then(
        &self,
        out: &Outbox,
        method: &str,
        params: Value,
        give_up: impl Future<Output = ()>,
        withdraw: Option<&str>,
    ) -> Option<Response> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut waiting = lock(&self.inner);
            waiting.last += 1;
            let id = format!("claude-coded-{}", waiting.last);
            waiting.by_id.insert(id.clone(), tx);
            id
        };
        let line = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let sent = out.push(line.to_string());
        let answer = async {
            sent.await.ok()?;
            rx.await.ok()
        };
        let outcome = tokio::select! {
            answer = answer => answer,
            () = give_up => {
                if let Some(withdraw) = withdraw {
                    let note = json!({ "jsonrpc": "2.0", "method": withdraw,
                                       "params": { "requestId": id } });
                    drop(out.push(note.to_string()));
                }
                None
            }
        };
        lock(&self.inner).by_id.remove(&id);
        outcome
    }

    /// A response line from the client; false when it answers no request of ours.
    pub(crate) fn on_response(&self, line: &[u8]) -> bool {
        let Ok(message) = serde_json::from_slice::<Value>(line) else {
            return false;
        };
        let Some(id) = message.get("id").and_then(Value::as_str) else {
            return false;
        };
        let Some(waiter) = lock(&self.inner).by_id.remove(id) else {
            return false;
        };
        let response = match (message.get("result"), message.get("error")) {
            (Some(result), None) => Ok(result.clone()),
            (_, Some(error)) => Err(error.clone()),
            (None, None) => Err(json!({"message": "a response with neither result nor error"})),
        };
        waiter.send(response).is_ok()
    }
}
