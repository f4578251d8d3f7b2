//! Background asks on the MCP surface, for hosts without tasks: rmcp's client over a
//! spawned claude-coded (with the CLI double): `ask` with `background: true` answers at
//! once with a turnId, `wait` returns the answer or "still running" with the latest step,
//! `cancel` stops the turn and the session takes the next ask.

use claude_coded::mcp::output::{AskReply, WaitReply};
use serde_json::{Value, json};
use test_support::mcp::{McpBridge, structured, texts};

/// Starts a background ask and returns its turnId.
async fn start(bridge: &McpBridge, prompt: &str) -> String {
    let started = bridge
        .call("ask", json!({"prompt": prompt, "background": true}))
        .await;
    assert_ne!(started.is_error, Some(true), "{started:?}");
    let reply: AskReply = serde_json::from_value(structured(&started)).expect("an AskReply");
    assert_eq!(reply.running, Some(true));
    assert!(
        texts(&started)[0].contains("`wait`"),
        "{:?}",
        texts(&started)
    );
    reply.turn_id.expect("a turnId")
}

#[tokio::test]
async fn a_background_ask_answers_at_once_and_wait_collects_its_answer() {
    let bridge = McpBridge::start().await;
    let turn_id = start(&bridge, "SLOW ms=50 chunks=3").await;
    let waited = bridge
        .call("wait", json!({"turnId": turn_id, "timeoutMs": 15_000}))
        .await;
    assert_ne!(waited.is_error, Some(true), "{waited:?}");
    let reply: WaitReply = serde_json::from_value(structured(&waited)).expect("a WaitReply");
    assert!(!reply.running);
    let answer = reply.answer.expect("the answer");
    assert_eq!(
        answer.result.as_deref(),
        Some("slow chunk 1slow chunk 2slow chunk 3")
    );
    // Answer first, as `ask` gives it.
    assert_eq!(texts(&waited)[0], "slow chunk 1slow chunk 2slow chunk 3");
    // Collected once; then the handle is unknown.
    let again = bridge.call("wait", json!({"turnId": turn_id})).await;
    assert_eq!(again.is_error, Some(true));
    assert!(texts(&again)[0].contains("-32602"), "{:?}", texts(&again));
    bridge.close().await;
}

#[tokio::test]
async fn wait_says_still_running_and_cancel_leaves_the_session_working() {
    let bridge = McpBridge::start().await;
    let turn_id = start(&bridge, "SLOW ms=400 chunks=50").await;
    let waited = bridge
        .call("wait", json!({"turnId": turn_id, "timeoutMs": 600}))
        .await;
    let reply: WaitReply = serde_json::from_value(structured(&waited)).expect("a WaitReply");
    assert!(reply.running, "{reply:?}");
    assert!(reply.elapsed_ms >= 500, "{reply:?}");
    assert!(reply.answer.is_none());
    let text = &texts(&waited)[0];
    assert!(text.starts_with("Still running after"), "{text}");
    let cancelled = bridge.call("cancel", json!({"turnId": turn_id})).await;
    assert_ne!(cancelled.is_error, Some(true), "{cancelled:?}");
    assert_eq!(structured(&cancelled)["cancelled"], Value::Bool(true));
    let after = bridge
        .call("wait", json!({"turnId": turn_id, "timeoutMs": 15_000}))
        .await;
    assert_eq!(after.is_error, Some(true));
    assert!(texts(&after)[0].contains("-32007"), "{:?}", texts(&after));
    let next = bridge.call("ask", json!({"prompt": "hello"})).await;
    assert_ne!(next.is_error, Some(true), "{next:?}");
    assert!(texts(&next)[0].ends_with("to: hello"), "{:?}", texts(&next));
    bridge.close().await;
}

#[tokio::test]
async fn a_background_turn_whose_child_crashes_reports_it_to_wait() {
    let bridge = McpBridge::start().await;
    let turn_id = start(&bridge, "CRASH").await;
    let waited = bridge
        .call("wait", json!({"turnId": turn_id, "timeoutMs": 15_000}))
        .await;
    assert_eq!(waited.is_error, Some(true));
    assert!(texts(&waited)[0].contains("-32002"), "{:?}", texts(&waited));
    bridge.close().await;
}
