//! Permissions over the plain surface, with the CLI double as the child: the user's
//! policy decides, or the client that asked is asked (`permission/request`) with a
//! deadline; the outer caller can pick a mode only up to the ceiling.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::{Bridge, Options, error_code};
use tokio::time::Instant;

/// Reads until the next `permission/request`, returning it (notifications are skipped).
async fn next_question(bridge: &mut Bridge) -> Value {
    loop {
        let message = bridge.next_message().await;
        if message["method"] == "permission/request" {
            return message;
        }
        assert!(
            message.get("result").is_none() && message.get("error").is_none(),
            "the ask ended before it asked: {message}"
        );
    }
}

/// Answers a `permission/request` with `result`.
async fn reply(bridge: &mut Bridge, question: &Value, result: Value) {
    let line = json!({"jsonrpc": "2.0", "id": question["id"], "result": result});
    bridge.send_raw(line.to_string().as_bytes()).await;
}

/// The ask's result text (the double echoes the tool result it got).
async fn result_text(bridge: &mut Bridge, ask: &Value) -> String {
    let (response, _) = bridge.response_for(ask).await;
    response["result"]["result"]
        .as_str()
        .unwrap_or_else(|| panic!("no result text: {response}"))
        .to_string()
}

#[tokio::test]
async fn a_client_that_opted_in_is_asked_and_its_answer_is_what_the_agent_gets() {
    let mut bridge = Bridge::start();
    let params = json!({"prompt": "RUN_TOOL touch made.txt", "permissions": "client"});
    let ask = bridge.request("ask", params.clone()).await;
    let question = next_question(&mut bridge).await;
    let asked = &question["params"];
    assert_eq!(asked["requestId"], ask);
    assert_eq!(asked["tool"], "Bash");
    assert_eq!(asked["summary"], "run `touch made.txt`");
    assert_eq!(asked["input"]["command"], "touch made.txt");
    assert_eq!(asked["deadlineMs"], 60_000);
    reply(&mut bridge, &question, json!({"behavior": "allow"})).await;
    let text = result_text(&mut bridge, &ask).await;
    assert!(text.contains("is_error=False"), "{text}");

    let ask = bridge.request("ask", params).await;
    let question = next_question(&mut bridge).await;
    let answer = json!({"behavior": "deny", "message": "use the sandbox instead"});
    reply(&mut bridge, &question, answer).await;
    let text = result_text(&mut bridge, &ask).await;
    assert!(
        text.contains("is_error=True") && text.contains("use the sandbox instead"),
        "{text}"
    );
    let totals = bridge.status().await["totals"].clone();
    assert_eq!(
        (
            &totals["permissionsRequested"],
            &totals["permissionsAllowed"],
            &totals["permissionsDenied"]
        ),
        (&json!(2), &json!(1), &json!(1))
    );
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn without_anyone_to_ask_the_fallback_denies_at_once_and_says_what_to_configure() {
    let mut bridge = Bridge::start();
    let started = Instant::now();
    let ask = bridge
        .request("ask", json!({"prompt": "RUN_TOOL touch made.txt"}))
        .await;
    let text = result_text(&mut bridge, &ask).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(text.contains("is_error=True"), "{text}");
    assert!(text.contains("--allow-tool"), "{text}");
    let events = bridge
        .call("events", json!({"level": "info", "limit": 100}))
        .await;
    let decided: Vec<&Value> = events["result"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "permission.decided")
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["detail"]["decidedBy"], "fallback");
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn a_client_that_never_answers_meets_the_deadline_and_a_late_answer_is_ignored() {
    let options = Options::default().args(&["--permission-timeout-ms", "700"]);
    let mut bridge = Bridge::start_with(options);
    let params = json!({"prompt": "RUN_TOOL touch made.txt", "permissions": "client"});
    let ask = bridge.request("ask", params).await;
    let question = next_question(&mut bridge).await;
    let asked_at = Instant::now();
    let text = result_text(&mut bridge, &ask).await;
    assert!(asked_at.elapsed() >= Duration::from_millis(500));
    assert!(
        text.contains("is_error=True") && text.contains("within 0.7 s"),
        "{text}"
    );
    // Answering now changes nothing, and the bridge goes on serving.
    reply(&mut bridge, &question, json!({"behavior": "allow"})).await;
    assert_eq!(bridge.ask_ok("after").await["ok"], true);
    assert_eq!(bridge.status().await["totals"]["permissionsAllowed"], 0);
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn an_answer_that_is_an_error_or_nonsense_denies() {
    let mut bridge = Bridge::start();
    let params = json!({"prompt": "RUN_TOOL touch made.txt", "permissions": "client"});
    let ask = bridge.request("ask", params.clone()).await;
    let question = next_question(&mut bridge).await;
    let line = json!({"jsonrpc": "2.0", "id": question["id"],
                      "error": {"code": -1, "message": "no UI"}});
    bridge.send_raw(line.to_string().as_bytes()).await;
    assert!(
        result_text(&mut bridge, &ask)
            .await
            .contains("is_error=True")
    );
    let ask = bridge.request("ask", params).await;
    let question = next_question(&mut bridge).await;
    reply(&mut bridge, &question, json!({"behavior": "maybe"})).await;
    assert!(
        result_text(&mut bridge, &ask)
            .await
            .contains("not understood")
    );
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn an_ask_may_pick_a_mode_up_to_the_ceiling_and_the_next_ask_is_back_in_the_configured_one() {
    let mut bridge = Bridge::start();
    // The default ceiling is the configured mode: nothing above it.
    for mode in ["acceptEdits", "bypassPermissions"] {
        let refused = bridge
            .call("ask", json!({"prompt": "hi", "permissionMode": mode}))
            .await;
        assert_eq!(error_code(&refused), Some(-32602), "{refused}");
        let message = refused["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("ceiling `default`"), "{message}");
    }
    let bad = bridge
        .call("ask", json!({"prompt": "hi", "permissionMode": "yolo"}))
        .await;
    assert_eq!(error_code(&bad), Some(-32602), "{bad}");
    assert_eq!(bridge.close_and_wait().await, 0);

    let options = Options::default().args(&["--permission-ceiling", "acceptEdits"]);
    let mut bridge = Bridge::start_with(options);
    let init_mode = |notes: &[Value]| {
        notes
            .iter()
            .find(|n| n["params"]["subtype"] == "init")
            .map(|n| n["params"]["message"]["permissionMode"].clone())
    };
    let ask = bridge
        .request(
            "ask",
            json!({"prompt": "hi", "permissionMode": "acceptEdits", "model": "claude-haiku-9"}),
        )
        .await;
    let (response, notes) = bridge.response_for(&ask).await;
    assert_eq!(response["result"]["ok"], true, "{response}");
    assert_eq!(init_mode(&notes), Some(json!("acceptEdits")));
    let model = notes
        .iter()
        .find(|n| n["params"]["subtype"] == "init")
        .unwrap();
    assert_eq!(model["params"]["message"]["model"], "claude-haiku-9");
    let ask = bridge.request("ask", json!({"prompt": "again"})).await;
    let (_, notes) = bridge.response_for(&ask).await;
    assert_eq!(init_mode(&notes), Some(json!("default")));
    assert_eq!(bridge.close_and_wait().await, 0);
}

const ELICITING: &str = r#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{"form":{}}},"clientInfo":{"name":"forms","version":"0"}}}"#;

/// claude-coded over the double with an MCP client that declared form elicitation.
async fn mcp_client_with_forms() -> Bridge {
    let mut bridge = Bridge::start();
    bridge.send_raw(ELICITING.as_bytes()).await;
    let answer = bridge.next_message().await;
    assert!(answer["result"].is_object(), "{answer}");
    bridge
        .send_raw(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    bridge
}

/// Reads until the next `elicitation/create` (notifications are skipped).
async fn next_form(bridge: &mut Bridge) -> Value {
    loop {
        let message = bridge.next_message().await;
        if message["method"] == "elicitation/create" {
            return message;
        }
    }
}

#[tokio::test]
async fn cancelling_an_mcp_ask_while_its_form_is_open_denies_it_and_keeps_the_session() {
    let mut bridge = mcp_client_with_forms().await;
    let call = json!({"name": "ask", "arguments": {"prompt": "RUN_TOOL touch x.txt"}});
    let asked = bridge.request("tools/call", call).await;
    // The form arrives; it is never answered.
    let form = next_form(&mut bridge).await;
    let text = form["params"]["message"].as_str().unwrap_or_default();
    assert!(text.contains("run `touch x.txt`"), "{form}");
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": asked, "reason": "changed my mind"}});
    bridge.send_raw(cancel.to_string().as_bytes()).await;
    // The turn ends at once (no deadline to wait out) and the session goes on.
    let started = Instant::now();
    let call = json!({"name": "ask", "arguments": {"prompt": "after"}});
    let next = bridge.request("tools/call", call).await;
    let (response, seen) = bridge.response_for(&next).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(seen.iter().all(|m| m.get("id") != Some(&asked)), "{seen:?}");
    assert_eq!(response["result"]["isError"], false, "{response}");
    let call = json!({"name": "events", "arguments": {"full": true, "level": "info"}});
    let events = bridge.call("tools/call", call).await;
    let cancelled = events["result"]["structuredContent"]["full"]
        .as_array()
        .expect("the full events")
        .iter()
        .any(|e| e["type"] == "permission.decided" && e["detail"]["decidedBy"] == "cancelled");
    assert!(cancelled, "{events}");
    assert_eq!(bridge.close_and_wait().await, 0);
}

/// The agent's text for an `ELICIT` turn (the double says what its MCP server got back).
fn elicited(text: &str) -> &str {
    text.strip_prefix("elicitation answered: ").unwrap_or(text)
}

#[tokio::test]
async fn an_mcp_servers_question_reaches_an_mcp_client_as_its_own_form_and_the_answer_goes_back() {
    let mut bridge = mcp_client_with_forms().await;
    let call = json!({"name": "ask", "arguments": {"prompt": "ELICIT"}});
    let asked = bridge.request("tools/call", call).await;
    let form = next_form(&mut bridge).await;
    let params = &form["params"];
    assert!(
        params["message"]
            .as_str()
            .unwrap()
            .contains("double-server"),
        "{form}"
    );
    assert_eq!(
        params["requestedSchema"]["properties"]["env"]["enum"][1],
        "production"
    );
    let reply = json!({"jsonrpc": "2.0", "id": form["id"],
                       "result": {"action": "accept", "content": {"env": "staging"}}});
    bridge.send_raw(reply.to_string().as_bytes()).await;
    let (response, _) = bridge.response_for(&asked).await;
    let text = response["result"]["structuredContent"]["result"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(elicited(text), r#"accept {"env":"staging"}"#, "{response}");
}

#[tokio::test]
async fn an_mcp_servers_question_reaches_a_plain_client_and_without_one_it_is_declined() {
    let mut bridge = Bridge::start();
    let ask = bridge
        .request("ask", json!({"prompt": "ELICIT", "permissions": "client"}))
        .await;
    let question = next_question(&mut bridge).await;
    let asked = &question["params"];
    assert_eq!(asked["tool"], "mcp__double-server");
    assert_eq!(asked["elicitation"]["server"], "double-server");
    assert_eq!(
        asked["elicitation"]["requestedSchema"]["required"][0],
        "env"
    );
    reply(
        &mut bridge,
        &question,
        json!({"behavior": "allow", "content": {"env": "production"}}),
    )
    .await;
    assert_eq!(
        elicited(&result_text(&mut bridge, &ask).await),
        r#"accept {"env":"production"}"#
    );
    // Nobody to ask: declined, whatever the policy (no policy answers for a person).
    let bridge_allowing =
        &mut Bridge::start_with(Options::default().args(&["--permission-decider", "allow"]));
    let ask = bridge_allowing
        .request("ask", json!({"prompt": "ELICIT"}))
        .await;
    assert_eq!(
        elicited(&result_text(bridge_allowing, &ask).await),
        "decline null"
    );
}
