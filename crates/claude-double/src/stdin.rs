//! stdin: user turns go to the queue, control messages are handled right here.
//!
//! Other stdin lines than control requests (see [`crate::control`]): `control_response`
//! answers the double's own `can_use_tool` request with that `request_id` (others are noted
//! on stderr); `control_cancel_request` and `keep_alive` are ignored; user turns are
//! `{"type":"user","message":{"content":..}}` where `content` is a string or an array of
//! blocks whose `text` fields are concatenated; a line that is not JSON, or has another
//! `type`, is noted on stderr and ignored.

use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::control::handle_control;
use crate::note;
use crate::state::Shared;

pub(crate) async fn read_stdin(sh: Arc<Shared>, queue: mpsc::UnboundedSender<String>) {
    let mut reader = BufReader::new(tokio::io::stdin());
    let mut buf = Vec::new();
    let mut delayed = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                note(&format!("stdin read failed ({e}), treating as EOF"));
                break;
            }
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let msg: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                note(&format!("stdin line is not JSON ({e}), ignored"));
                continue;
            }
        };
        match msg.get("type").and_then(Value::as_str) {
            Some("user") => {
                // The runner only stops receiving after it is done, so a failed send means
                // we are exiting anyway.
                let _ = queue.send(prompt_text(&msg));
            }
            Some("control_request") => {
                if let Some(task) = handle_control(&sh, &msg).await {
                    delayed.push(task);
                }
            }
            Some("control_response") => route_control_response(&sh, msg),
            Some("control_cancel_request" | "keep_alive") => {}
            Some(other) => note(&format!("stdin message of type {other:?} ignored")),
            None => note("stdin message without a type, ignored"),
        }
    }
    // EOF: answer the delayed initialize requests still owed, then let the runner finish.
    for task in delayed {
        let _ = task.await;
    }
    // A CLI slow to exit once its stdin closes (`DOUBLE_EXIT_DELAY_MS`).
    let exit_delay = std::env::var("DOUBLE_EXIT_DELAY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_millis(exit_delay)).await;
    let mut st = sh.state();
    st.stdin_closed = true;
    // Dropping the senders tells waiting tool permissions that no answer will come.
    st.pending.clear();
}

/// The text of a user message: a string, or the `text` of its content blocks, concatenated.
fn prompt_text(msg: &Value) -> String {
    match msg.pointer("/message/content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn route_control_response(sh: &Shared, msg: Value) {
    let id = msg
        .pointer("/response/request_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let waiter = sh.state().pending.remove(&id);
    match waiter {
        Some(tx) => {
            let _ = tx.send(msg);
        }
        None => note(&format!(
            "control_response for unknown request {id:?}, ignored"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn prompt_text_from_string_or_blocks() {
        let s = json!({"type": "user", "message": {"role": "user", "content": "hi"}});
        assert_eq!(prompt_text(&s), "hi");
        let b = json!({"type": "user", "message": {"content": [
            {"type": "text", "text": "SLOW "}, {"type": "image"}, {"type": "text", "text": "ms=5"}
        ]}});
        assert_eq!(prompt_text(&b), "SLOW ms=5");
    }
}
