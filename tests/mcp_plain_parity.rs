//! Both surfaces share one core: the same asks give the same answers on each, the MCP
//! tool's `structuredContent` being the plain method's `result`.

mod common;

use serde_json::{Value, json};

use common::Bridge;

const PROMPTS: [&str; 5] = ["hello", "RUN_TOOL ls", "MULTI", "ERR400", "MAXTURNS"];

/// The answer without what differs from run to run (ids, timings, the temporary cwd).
fn stable(answer: &Value, cwd: &std::path::Path) -> Value {
    let text = answer
        .to_string()
        .replace(&cwd.display().to_string(), "<cwd>");
    let mut answer: Value = serde_json::from_str(&text).expect("JSON");
    let object = answer.as_object_mut().expect("an object");
    for volatile in ["sessionId", "durationMs", "durationApiMs"] {
        assert!(object.remove(volatile).is_some(), "{volatile} present");
    }
    let raw = object.remove("raw").expect("raw");
    object.insert(
        "raw".into(),
        json!({ "type": raw["type"], "subtype": raw["subtype"], "is_error": raw["is_error"], "result": raw["result"] }),
    );
    answer
}

async fn plain_answers() -> Vec<Value> {
    let mut bridge = Bridge::start_with(common::Options::default().args(&["--surface", "plain"]));
    let mut answers = Vec::new();
    for prompt in PROMPTS {
        answers.push(stable(&bridge.ask_ok(prompt).await, &bridge.cwd()));
    }
    assert_eq!(bridge.close_and_wait().await, 0);
    answers
}

async fn mcp_answers() -> Vec<Value> {
    let mut bridge = Bridge::start();
    let params = json!({ "protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": { "name": "parity", "version": "0" } });
    bridge.call("initialize", params).await;
    let mut answers = Vec::new();
    for prompt in PROMPTS {
        let params = json!({ "name": "ask", "arguments": { "prompt": prompt } });
        let response = bridge.call("tools/call", params).await;
        let result = &response["result"];
        assert_eq!(
            result["isError"],
            json!(result["structuredContent"]["ok"] == false),
            "{response}"
        );
        answers.push(stable(&result["structuredContent"], &bridge.cwd()));
    }
    assert_eq!(bridge.close_and_wait().await, 0);
    answers
}

#[tokio::test]
async fn the_same_asks_give_the_same_answers_on_both_surfaces() {
    let (plain, mcp) = tokio::join!(plain_answers(), mcp_answers());
    for ((prompt, plain), mcp) in PROMPTS.iter().zip(plain).zip(mcp) {
        assert_eq!(plain, mcp, "answers to {prompt:?} differ");
    }
}
