//! Both surfaces share one core: the same asks give the same answers on each, the MCP
//! tool's `structuredContent` being the compact form of the plain method's `result`
//! (the answer, the session, rounded cost, duration, model calls, refused tools; no
//! raw line, no `null`s).

use serde_json::{Value, json};

use test_support::Bridge;

const PROMPTS: [&str; 5] = ["hello", "RUN_TOOL ls", "MULTI", "ERR400", "MAXTURNS"];

/// The answer without what differs from run to run (ids, timings, the temporary cwd).
fn stable(answer: &Value, cwd: &std::path::Path) -> Value {
    let text = answer
        .to_string()
        .replace(&cwd.display().to_string(), "<cwd>");
    let mut answer: Value = serde_json::from_str(&text).expect("JSON");
    let object = answer.as_object_mut().expect("an object");
    for volatile in ["sessionId", "durationMs"] {
        assert!(object.remove(volatile).is_some(), "{volatile} present");
    }
    answer
}

/// What the MCP tool should carry for a plain `ask` result, written out independently.
fn compact(plain: &Value) -> Value {
    let mut out = serde_json::Map::new();
    // A failed turn's `result` is the CLI's echo of its error, which `error` says once.
    let answered = plain["ok"] == true;
    if let Some(text) = plain["result"]
        .as_str()
        .filter(|t| !t.is_empty() && answered)
    {
        out.insert("result".into(), json!(text));
    }
    out.insert("ok".into(), plain["ok"].clone());
    if plain["ok"] == false {
        out.insert("error".into(), json!("<error>"));
    }
    out.insert("sessionId".into(), plain["sessionId"].clone());
    if let Some(cost) = plain["costUsd"].as_f64() {
        out.insert(
            "costUsd".into(),
            json!((cost * 10_000.0).round() / 10_000.0),
        );
    }
    out.insert("durationMs".into(), plain["durationMs"].clone());
    out.insert("numTurns".into(), plain["numTurns"].clone());
    let denials: Vec<Value> = plain["permissionDenials"]
        .as_array()
        .expect("permissionDenials")
        .iter()
        .map(|d| json!({ "tool": d["tool_name"], "input": d["tool_input"]["command"] }))
        .collect();
    if !denials.is_empty() {
        out.insert("permissionDenials".into(), json!(denials));
    }
    Value::Object(out)
}

/// The MCP reply, its error text checked and replaced by a marker.
fn mcp_reply(structured: &Value, plain: &Value) -> Value {
    let mut reply = structured.clone();
    if let Some(error) = reply.get("error").and_then(Value::as_str) {
        // Both surfaces say a failed turn with the same words.
        let result: claude_coded::api::AskResult =
            serde_json::from_value(plain.clone()).expect("a plain ask result");
        assert_eq!(error, result.failure_reason());
        reply["error"] = json!("<error>");
    }
    reply
}

async fn plain_answers() -> Vec<Value> {
    let mut bridge =
        Bridge::start_with(test_support::Options::default().args(&["--surface", "plain"]));
    let mut answers = Vec::new();
    for prompt in PROMPTS {
        let answer = bridge.ask_ok(prompt).await;
        let text = answer
            .to_string()
            .replace(&bridge.cwd().display().to_string(), "<cwd>");
        answers.push(serde_json::from_str(&text).expect("JSON"));
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
        let expected = stable(&compact(&plain), std::path::Path::new("/nonexistent"));
        assert_eq!(
            mcp_reply(&mcp, &plain),
            expected,
            "answers to {prompt:?} differ"
        );
    }
}
