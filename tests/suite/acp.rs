//! The ACP surface with the CLI double as the child: the handshake, sessions, a prompt's
//! updates before its answer, cancel, permission round trips, a child that dies
//! mid-turn, and bad input that gets an error while the agent keeps serving.

use serde_json::{Value, json};
use test_support::{Bridge, Options, error_code};

async fn initialize(bridge: &mut Bridge) -> Value {
    let params = json!({"protocolVersion": 1, "clientCapabilities": {},
                        "clientInfo": {"name": "acp-test", "version": "1"}});
    let response = bridge.call("initialize", params).await;
    response["result"].clone()
}

async fn new_session(bridge: &mut Bridge) -> String {
    let cwd = bridge.cwd();
    let response = bridge
        .call("session/new", json!({"cwd": cwd, "mcpServers": []}))
        .await;
    response["result"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session id: {response}"))
        .to_string()
}

/// claude-coded over the double, initialized, with one new session.
async fn with_session() -> (Bridge, String) {
    let mut bridge = Bridge::start();
    initialize(&mut bridge).await;
    let session = new_session(&mut bridge).await;
    (bridge, session)
}

/// Sends `session/cancel` for `session`.
async fn cancel(bridge: &mut Bridge, session: &str) {
    let note =
        json!({"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session}});
    bridge.send_raw(note.to_string().as_bytes()).await;
}

fn prompt_params(session: &str, text: &str) -> Value {
    json!({"sessionId": session, "prompt": [{"type": "text", "text": text}]})
}

/// The `sessionUpdate` kinds among `messages`.
fn update_kinds(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["method"] == "session/update")
        .map(|m| {
            m["params"]["update"]["sessionUpdate"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

/// Reads until the next `session/request_permission`, returning it and what came before.
async fn next_permission_request(bridge: &mut Bridge) -> (Value, Vec<Value>) {
    let mut seen = Vec::new();
    loop {
        let message = bridge.next_message().await;
        if message["method"] == "session/request_permission" {
            return (message, seen);
        }
        assert!(
            message.get("result").is_none() && message.get("error").is_none(),
            "the prompt ended before it asked: {message}"
        );
        seen.push(message);
    }
}

async fn choose(bridge: &mut Bridge, request: &Value, option: &str) {
    let line = json!({"jsonrpc": "2.0", "id": request["id"],
                      "result": {"outcome": {"outcome": "selected", "optionId": option}}});
    bridge.send_raw(line.to_string().as_bytes()).await;
}

#[tokio::test]
async fn an_acp_client_is_served_from_its_first_initialize_and_its_prompt_streams_before_the_answer()
 {
    let mut bridge = Bridge::start();
    let init = initialize(&mut bridge).await;
    assert_eq!(init["protocolVersion"], 1);
    assert_eq!(init["agentCapabilities"]["loadSession"], true);
    assert_eq!(init["agentInfo"]["name"], "claude-coded");
    let session = new_session(&mut bridge).await;
    assert!(session.starts_with("acp-"), "{session}");
    let id = bridge
        .request("session/prompt", prompt_params(&session, "hello there"))
        .await;
    let (response, before) = bridge.response_for(&id).await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    let kinds = update_kinds(&before);
    assert!(
        kinds.contains(&"agent_message_chunk".to_string()),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("usage_update"),
        "{kinds:?}"
    );
    let text: String = before
        .iter()
        .filter(|m| m["params"]["update"]["sessionUpdate"] == "agent_message_chunk")
        .map(|m| {
            m["params"]["update"]["content"]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(text, "mock reply #1 to: hello there");
    assert!(
        before
            .iter()
            .all(|m| m["params"]["sessionId"] == session.as_str())
    );
    // The session is one of ours, named for the ACP session.
    let listed = bridge.call("session/list", json!({})).await;
    assert_eq!(
        listed["result"]["sessions"][0]["sessionId"],
        session.as_str()
    );
}

#[tokio::test]
async fn a_cancel_mid_turn_answers_cancelled_and_the_session_goes_on() {
    let (mut bridge, session) = with_session().await;
    let slow = bridge
        .request(
            "session/prompt",
            prompt_params(&session, "SLOW ms=300 chunks=30"),
        )
        .await;
    loop {
        let message = bridge.next_message().await;
        if message["params"]["update"]["sessionUpdate"] == "agent_message_chunk" {
            break;
        }
    }
    cancel(&mut bridge, &session).await;
    let (response, _) = bridge.response_for(&slow).await;
    assert_eq!(response["result"]["stopReason"], "cancelled", "{response}");
    let next = bridge
        .call("session/prompt", prompt_params(&session, "still there?"))
        .await;
    assert_eq!(next["result"]["stopReason"], "end_turn", "{next}");
}

#[tokio::test]
async fn a_permission_question_is_asked_with_four_choices_and_reject_always_holds_for_the_session()
{
    let (mut bridge, session) = with_session().await;
    let run = bridge
        .request(
            "session/prompt",
            prompt_params(&session, "RUN_TOOL touch made.txt"),
        )
        .await;
    let (request, before) = next_permission_request(&mut bridge).await;
    assert!(update_kinds(&before).contains(&"tool_call".to_string()));
    let params = &request["params"];
    assert_eq!(params["sessionId"], session.as_str());
    assert_eq!(params["toolCall"]["kind"], "execute");
    assert_eq!(params["toolCall"]["title"], "run `touch made.txt`");
    let kinds: Vec<&str> = params["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["allow_once", "allow_always", "reject_once", "reject_always"]
    );
    choose(&mut bridge, &request, "allow_once").await;
    let (response, after) = bridge.response_for(&run).await;
    assert_eq!(response["result"]["stopReason"], "end_turn");
    let update = after
        .iter()
        .find(|m| m["params"]["update"]["sessionUpdate"] == "tool_call_update")
        .expect("the tool's result as an update");
    assert_eq!(
        update["params"]["update"]["status"], "completed",
        "{update}"
    );

    // Rejected for good: the next same use is denied without asking.
    let run = bridge
        .request(
            "session/prompt",
            prompt_params(&session, "RUN_TOOL touch made.txt"),
        )
        .await;
    let (request, _) = next_permission_request(&mut bridge).await;
    choose(&mut bridge, &request, "reject_always").await;
    let (_, after) = bridge.response_for(&run).await;
    let update = after
        .iter()
        .find(|m| m["params"]["update"]["sessionUpdate"] == "tool_call_update")
        .unwrap();
    assert_eq!(update["params"]["update"]["status"], "failed");
    let again = bridge
        .request(
            "session/prompt",
            prompt_params(&session, "RUN_TOOL touch made.txt"),
        )
        .await;
    let (response, notes) = bridge.response_for(&again).await;
    assert_eq!(response["result"]["stopReason"], "end_turn");
    assert!(
        notes
            .iter()
            .all(|m| m["method"] != "session/request_permission"),
        "{notes:?}"
    );
    let text: String = notes
        .iter()
        .filter_map(|m| m["params"]["update"]["content"]["text"].as_str())
        .collect();
    assert!(
        text.contains("rejected this for the rest of the session"),
        "{text}"
    );
}

#[tokio::test]
async fn a_child_that_dies_mid_turn_fails_that_prompt_with_its_cause_and_the_session_continues() {
    let (mut bridge, session) = with_session().await;
    let crash = bridge
        .call("session/prompt", prompt_params(&session, "CRASH code=3"))
        .await;
    let message = crash["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{crash}"));
    assert!(message.contains("exit"), "the cause is named: {message}");
    let next = bridge
        .call("session/prompt", prompt_params(&session, "after the crash"))
        .await;
    assert_eq!(next["result"]["stopReason"], "end_turn", "{next}");
}

#[tokio::test]
async fn bad_input_gets_an_error_and_the_agent_keeps_serving() {
    let mut bridge = Bridge::start_with(Options::default().args(&["--surface", "acp"]));
    bridge.send_raw(b"{not json").await;
    let parse = bridge.next_message().await;
    assert_eq!(error_code(&parse), Some(-32700), "{parse}");
    initialize(&mut bridge).await;
    let unknown = bridge.call("session/teleport", json!({})).await;
    assert_eq!(error_code(&unknown), Some(-32601), "{unknown}");
    let no_session = bridge
        .call("session/prompt", prompt_params("acp-nope", "hi"))
        .await;
    assert!(no_session.get("error").is_some(), "{no_session}");
    let relative = bridge
        .call(
            "session/new",
            json!({"cwd": "relative/dir", "mcpServers": []}),
        )
        .await;
    assert_eq!(error_code(&relative), Some(-32602), "{relative}");
    let outside = bridge
        .call("session/new", json!({"cwd": "/", "mcpServers": []}))
        .await;
    assert!(
        outside["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cwd"),
        "{outside}"
    );
    let session = new_session(&mut bridge).await;
    let image = json!({"sessionId": session, "prompt": [{"type": "image", "data": "", "mimeType": "image/png"}]});
    let refused = bridge.call("session/prompt", image).await;
    assert_eq!(error_code(&refused), Some(-32602), "{refused}");
    let beyond = bridge
        .call(
            "session/set_mode",
            json!({"sessionId": session, "modeId": "bypassPermissions"}),
        )
        .await;
    assert!(
        beyond["error"]["data"]
            .as_str()
            .unwrap()
            .contains("ceiling"),
        "{beyond}"
    );
    let plan = bridge
        .request(
            "session/set_mode",
            json!({"sessionId": session, "modeId": "plan"}),
        )
        .await;
    let (response, notes) = bridge.response_for(&plan).await;
    assert!(response.get("result").is_some(), "{response}");
    // The session's commands are announced once its CLI has warmed up, whenever that
    // is: on a loaded machine, while this call is in flight (seen in a full run).
    let kinds: Vec<String> = update_kinds(&notes)
        .into_iter()
        .filter(|kind| kind != "available_commands_update")
        .collect();
    assert_eq!(kinds, ["current_mode_update"], "{notes:?}");
    let ok = bridge
        .call("session/prompt", prompt_params(&session, "still serving"))
        .await;
    assert_eq!(ok["result"]["stopReason"], "end_turn", "{ok}");
    let closed = bridge
        .call("session/close", json!({"sessionId": session}))
        .await;
    assert!(closed.get("result").is_some(), "{closed}");
    let gone = bridge
        .call("session/prompt", prompt_params(&session, "hi"))
        .await;
    assert!(gone.get("error").is_some(), "{gone}");
}

#[tokio::test]
async fn a_new_acp_session_in_the_default_directory_takes_a_warm_spare() {
    use test_support::TempDir;
    use test_support::cli::{SocketClient, socket_path};
    let dir = TempDir::new("acp-spare");
    let record = dir.path().join("starts.jsonl");
    let options = Options::default()
        .args(&["--surface", "acp", "--spare-sessions", "1"])
        .env("DOUBLE_RECORD", &record.display().to_string());
    let mut bridge = Bridge::start_with(options.dir(dir));
    initialize(&mut bridge).await;
    // The plain methods on the socket see what ACP does not show: spares and pids.
    let mut socket = SocketClient::connect(&socket_path(&bridge.state_dir())).await;
    let deadline = tokio::time::Instant::now() + test_support::READ_TIMEOUT;
    loop {
        let status = socket.call("status", json!({})).await["result"].clone();
        if status["spares"]["ready"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no warm spare: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The CLIs started before the session: the spare alone (with --surface acp no
    // default session is warmed at all).
    let started: Vec<u64> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["pid"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(started.len(), 1, "{started:?}");
    let session = new_session(&mut bridge).await;
    let answer = bridge
        .call("session/prompt", prompt_params(&session, "hello"))
        .await;
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let listed = socket.call("sessions", json!({})).await["result"].clone();
    let pid = test_support::listed_session(&listed, &session)["pid"]
        .as_u64()
        .unwrap();
    assert!(
        started.contains(&pid),
        "the ACP session runs in a CLI started before it (the spare): {pid} not in {started:?}"
    );
}

#[tokio::test]
async fn a_cancel_while_a_question_waits_withdraws_it_and_the_prompt_answers_cancelled() {
    let (mut bridge, session) = with_session().await;
    let run = bridge
        .request(
            "session/prompt",
            prompt_params(&session, "RUN_TOOL touch never.txt"),
        )
        .await;
    let (request, _) = next_permission_request(&mut bridge).await;
    cancel(&mut bridge, &session).await;
    let (response, notes) = bridge.response_for(&run).await;
    assert_eq!(response["result"]["stopReason"], "cancelled", "{response}");
    let withdrawn = notes
        .iter()
        .find(|m| m["method"] == "$/cancel_request")
        .unwrap_or_else(|| panic!("the question is withdrawn: {notes:?}"));
    assert_eq!(withdrawn["params"]["requestId"], request["id"]);
    // The client's late answer is ignored; the session goes on.
    choose(&mut bridge, &request, "allow_once").await;
    let next = bridge
        .call("session/prompt", prompt_params(&session, "go on"))
        .await;
    assert_eq!(next["result"]["stopReason"], "end_turn", "{next}");
}

#[tokio::test]
async fn an_acp_agent_keeps_no_idle_default_cli_beside_its_sessions() {
    use test_support::cli::{SocketClient, socket_path};
    let (mut bridge, session) = with_session().await;
    let answer = bridge
        .call("session/prompt", prompt_params(&session, "hello"))
        .await;
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let mut socket = SocketClient::connect(&socket_path(&bridge.state_dir())).await;
    let listed = socket.call("sessions", json!({})).await["result"].clone();
    assert_eq!(
        listed["live"], 1,
        "only the ACP session's CLI runs: {listed}"
    );
    let default = test_support::listed_session(&listed, "default");
    assert_eq!(default["state"], "stopped", "{listed}");
    assert!(default["pid"].is_null(), "{listed}");
}

#[tokio::test]
async fn an_mcp_servers_question_reaches_an_acp_client_that_shows_forms_and_is_declined_for_one_that_does_not()
 {
    let mut bridge = Bridge::start();
    let params = json!({"protocolVersion": 1,
                        "clientCapabilities": {"elicitation": {"form": {}}}});
    assert!(
        bridge
            .call("initialize", params)
            .await
            .get("result")
            .is_some()
    );
    let session = new_session(&mut bridge).await;
    let run = bridge
        .request("session/prompt", prompt_params(&session, "ELICIT"))
        .await;
    let form = loop {
        let message = bridge.next_message().await;
        if message["method"] == "elicitation/create" {
            break message;
        }
    };
    assert_eq!(form["params"]["sessionId"], session.as_str());
    assert_eq!(form["params"]["mode"], "form");
    assert_eq!(
        form["params"]["requestedSchema"]["properties"]["env"]["enum"][0],
        "staging"
    );
    let reply = json!({"jsonrpc": "2.0", "id": form["id"],
                       "result": {"action": "accept", "content": {"env": "staging"}}});
    bridge.send_raw(reply.to_string().as_bytes()).await;
    let (response, notes) = bridge.response_for(&run).await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    let text: String = notes
        .iter()
        .filter_map(|m| m["params"]["update"]["content"]["text"].as_str())
        .collect();
    assert_eq!(text, r#"elicitation answered: accept {"env":"staging"}"#);

    // A client without forms: declined, and told nothing it cannot show.
    let (mut plain, session) = with_session().await;
    let run = plain
        .request("session/prompt", prompt_params(&session, "ELICIT"))
        .await;
    let (_, notes) = plain.response_for(&run).await;
    assert!(
        notes.iter().all(|m| m["method"] != "elicitation/create"),
        "{notes:?}"
    );
    let text: String = notes
        .iter()
        .filter_map(|m| m["params"]["update"]["content"]["text"].as_str())
        .collect();
    assert_eq!(text, "elicitation answered: decline null");
}

#[tokio::test]
async fn a_new_session_announces_the_clis_slash_commands_with_their_descriptions() {
    let (mut bridge, session) = with_session().await;
    let update = loop {
        let message = bridge.next_message().await;
        if message["params"]["update"]["sessionUpdate"] == "available_commands_update" {
            break message;
        }
    };
    assert_eq!(update["params"]["sessionId"], session.as_str());
    let commands = update["params"]["update"]["availableCommands"]
        .as_array()
        .unwrap();
    let compact = commands.iter().find(|c| c["name"] == "compact").unwrap();
    assert_eq!(
        compact["description"],
        "Clear conversation history but keep a summary in context"
    );
    assert_eq!(
        compact["input"]["hint"],
        "<optional custom summarization instructions>"
    );
    // The first turn's init, which names the commands only, is not sent again.
    let id = bridge
        .request("session/prompt", prompt_params(&session, "hi"))
        .await;
    let (_, notes) = bridge.response_for(&id).await;
    assert!(
        !update_kinds(&notes).contains(&"available_commands_update".to_string()),
        "{notes:?}"
    );
}
