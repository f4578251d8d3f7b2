//! The ACP surface end to end with the real Claude Code CLI, offline on the mock Messages
//! API: a session whose prompt streams, a permission the client allows that the real
//! Bash tool then runs, `session/load` after claude-coded restarts (the conversation
//! replayed from the CLI's transcript, then continued), and nothing left running when the
//! client kills claude-coded.
//!
//! ```sh
//! CLAUDE_BIN=$(scripts/install-claude-cli.sh) cargo test --test all e2e_real_cli_acp
//! ```

use std::time::Duration;

use serde_json::{Value, json};
use test_support::real_cli::{Real, kill, processes_with_home};
use test_support::{Bridge, READ_TIMEOUT};
use tokio::time::Instant;

#[test]
fn in_ci_the_real_cli_acp_tests_are_built_to_run() {
    test_support::assert_real_cli_tests_run_in_ci(cfg!(real_cli));
}

async fn initialize(bridge: &mut Bridge) {
    let params = json!({"protocolVersion": 1, "clientCapabilities": {}});
    let response = bridge.call("initialize", params).await;
    assert_eq!(response["result"]["protocolVersion"], 1, "{response}");
}

fn prompt(session: &str, text: &str) -> Value {
    json!({"sessionId": session, "prompt": [{"type": "text", "text": text}]})
}

/// Reads until the agent's request `method`; no prompt may answer before it.
async fn next_request(bridge: &mut Bridge, method: &str) -> Value {
    loop {
        let message = bridge.next_message().await;
        if message["method"] == method {
            return message;
        }
        assert!(
            message.get("result").is_none(),
            "answered before asking: {message}"
        );
    }
}

fn texts(messages: &[Value], kind: &str) -> String {
    messages
        .iter()
        .filter(|m| m["params"]["update"]["sessionUpdate"] == kind)
        .filter_map(|m| m["params"]["update"]["content"]["text"].as_str())
        .collect()
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn an_acp_session_streams_asks_permission_and_is_loaded_after_a_restart() {
    let mut real = Real::start().await;
    let bridge = &mut real.bridge;
    initialize(bridge).await;
    let cwd = bridge.cwd();
    let new = bridge
        .call("session/new", json!({"cwd": cwd, "mcpServers": []}))
        .await;
    let session = new["result"]["sessionId"]
        .as_str()
        .expect("session id")
        .to_string();

    let id = bridge
        .request("session/prompt", prompt(&session, "remember pineapple"))
        .await;
    let (response, updates) = bridge.response_for(&id).await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    assert!(
        texts(&updates, "agent_message_chunk").contains("to: remember pineapple"),
        "{updates:?}"
    );

    // The real Bash tool runs what the client allowed.
    let id = bridge
        .request(
            "session/prompt",
            prompt(&session, "RUN_TOOL touch allowed.txt"),
        )
        .await;
    let request = next_request(bridge, "session/request_permission").await;
    assert_eq!(
        request["params"]["toolCall"]["kind"], "execute",
        "{request}"
    );
    let choice = json!({"jsonrpc": "2.0", "id": request["id"],
                        "result": {"outcome": {"outcome": "selected", "optionId": "allow_once"}}});
    bridge.send_raw(choice.to_string().as_bytes()).await;
    let (response, updates) = bridge.response_for(&id).await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    assert!(cwd.join("allowed.txt").exists(), "the allowed command ran");
    assert!(
        updates.iter().any(
            |m| m["params"]["update"]["sessionUpdate"] == "tool_call_update"
                && m["params"]["update"]["status"] == "completed"
        ),
        "{updates:?}"
    );

    // A new claude-coded loads the session: its conversation replayed, then continued.
    real.restart_with(|o| o).await;
    let bridge = &mut real.bridge;
    initialize(bridge).await;
    let load = bridge
        .request(
            "session/load",
            json!({"sessionId": session, "cwd": cwd, "mcpServers": []}),
        )
        .await;
    let (response, replayed) = bridge.response_for(&load).await;
    assert!(response.get("result").is_some(), "{response}");
    assert!(
        texts(&replayed, "user_message_chunk").contains("remember pineapple"),
        "{replayed:?}"
    );
    assert!(
        texts(&replayed, "agent_message_chunk").contains("to: remember pineapple"),
        "{replayed:?}"
    );
    let id = bridge
        .request("session/prompt", prompt(&session, "what did I ask first?"))
        .await;
    let (response, _) = bridge.response_for(&id).await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    let last = real
        .mock
        .messages_requests()
        .last()
        .cloned()
        .expect("a request");
    assert!(
        last.body.to_string().contains("remember pineapple"),
        "the continued conversation holds the first prompt"
    );

    // A thread another Claude Code agent made (claude-agent-acp names a session by the
    // CLI's own id) is loaded by that id: replayed, then continued.
    let projects = real.home.join(".claude").join("projects");
    let cli_id = std::fs::read_dir(&projects)
        .unwrap()
        .flat_map(|dir| std::fs::read_dir(dir.unwrap().path()).unwrap())
        .map(|file| file.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .and_then(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .expect("the CLI's transcript");
    let bridge = &mut real.bridge;
    let load = bridge
        .request(
            "session/load",
            json!({"sessionId": cli_id, "cwd": cwd, "mcpServers": []}),
        )
        .await;
    let (response, replayed) = bridge.response_for(&load).await;
    assert!(response.get("result").is_some(), "{response}");
    assert!(
        texts(&replayed, "user_message_chunk").contains("remember pineapple"),
        "{replayed:?}"
    );
    let id = bridge
        .request("session/prompt", prompt(&cli_id, "and now?"))
        .await;
    let (response, updates) = bridge.response_for(&id).await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    assert!(
        updates
            .iter()
            .filter(|m| m["method"] == "session/update")
            .all(|m| m["params"]["sessionId"] == cli_id.as_str()),
        "{updates:?}"
    );

    // The client kills claude-coded: nothing of it is left running.
    kill(real.bridge.pid());
    real.bridge.wait_exit().await;
    let deadline = Instant::now() + READ_TIMEOUT;
    while !processes_with_home(&real.home).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left running: {:?}",
            processes_with_home(&real.home)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn the_real_agents_question_to_the_user_reaches_a_client_that_shows_forms_as_one() {
    let mut real = Real::start().await;
    let bridge = &mut real.bridge;
    let params = json!({"protocolVersion": 1,
                        "clientCapabilities": {"elicitation": {"form": {}}}});
    assert!(
        bridge
            .call("initialize", params)
            .await
            .get("result")
            .is_some()
    );
    let cwd = bridge.cwd();
    let new = bridge
        .call("session/new", json!({"cwd": cwd, "mcpServers": []}))
        .await;
    let session = new["result"]["sessionId"].as_str().unwrap().to_string();
    let id = bridge
        .request(
            "session/prompt",
            prompt(&session, "ASK_USER Which colour? Red|Blue"),
        )
        .await;
    let form = next_request(bridge, "elicitation/create").await;
    let field = &form["params"]["requestedSchema"]["properties"]["answer1"];
    assert_eq!(field["title"], "Which colour?", "{form}");
    assert_eq!(field["enum"], json!(["Red", "Blue"]), "{form}");
    let reply = json!({"jsonrpc": "2.0", "id": form["id"],
                       "result": {"action": "accept", "content": {"answer1": "Blue"}}});
    bridge.send_raw(reply.to_string().as_bytes()).await;
    let (response, updates) = bridge.response_for(&id).await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    assert!(
        texts(&updates, "agent_message_chunk").contains("Blue"),
        "the agent read the answer: {updates:?}"
    );
}
