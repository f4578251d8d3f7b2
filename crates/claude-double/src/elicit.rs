//! `ELICIT`: one of the CLI's MCP servers asks the user something, as the real CLI relays
//! it to an SDK host: a `control_request` with subtype `elicitation` (the server's name,
//! its message, `mode: "form"` and the form's `requested_schema`), answered by the host
//! with MCP's `ElicitResult` (`{"action": "accept", "content": {...}}`, `decline` or
//! `cancel`) as the `control_response`'s `response`. The turn then says what came back:
//! assistant text `elicitation answered: <action> <content as JSON>` (or `elicitation
//! failed: <error>` for an error response). An interrupt withdraws the request
//! (`control_cancel_request`) and ends the turn aborted.

use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::ids::uuid4;
use crate::result::aborted;
use crate::session::{Session, Turn, interrupted};

/// The server name the double's elicitation comes from.
pub(crate) const SERVER: &str = "double-server";

impl Session {
    pub(crate) async fn elicit(&mut self, t: &mut Turn) {
        let request_id = uuid4();
        let (tx, rx) = oneshot::channel();
        self.sh.state().pending.insert(request_id.clone(), tx);
        let request = json!({
            "type": "control_request",
            "request_id": &request_id,
            "request": {
                "subtype": "elicitation",
                "mcp_server_name": SERVER,
                "message": "Which environment should I deploy to?",
                "mode": "form",
                "requested_schema": {
                    "type": "object",
                    "properties": {"env": {"type": "string", "title": "Environment",
                                           "enum": ["staging", "production"]}},
                    "required": ["env"]
                },
                "property_order": ["env"]
            }
        });
        self.sh.out.send(&request).await;
        let answer = tokio::select! {
            answer = rx => answer.unwrap_or(Value::Null),
            () = interrupted(&mut t.interrupt) => {
                self.sh.state().pending.remove(&request_id);
                self.sh.out.send(&json!({"type": "control_cancel_request",
                                         "request_id": &request_id})).await;
                self.interrupted_user_line().await;
                self.result(t, aborted("aborted_tools")).await;
                return;
            }
        };
        let text = said(&answer);
        self.single_text(t, text).await;
    }
}

/// What the host's `control_response` said, as the turn's text.
fn said(answer: &Value) -> String {
    let response = answer.get("response").cloned().unwrap_or(Value::Null);
    if response.get("subtype").and_then(Value::as_str) == Some("error") {
        let error = response.get("error").and_then(Value::as_str).unwrap_or("?");
        return format!("elicitation failed: {error}");
    }
    let body = response.get("response").cloned().unwrap_or(Value::Null);
    let action = body.get("action").and_then(Value::as_str).unwrap_or("none");
    let content = body.get("content").cloned().unwrap_or(Value::Null);
    format!("elicitation answered: {action} {content}")
}
