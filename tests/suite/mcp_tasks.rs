//! `ask` as an MCP task (SEP-2663, `io.modelcontextprotocol/tasks`), driven by rmcp's
//! client declaring the extension, over a spawned claude-coded with the CLI double:
//! create, poll and complete (the status message following the turn), cancel a running
//! task (the next ask in the session works), a turn that times out, a child that
//! crashes, the TTL, and a permission question as the task's `input_required`.

use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, DetailedTask,
    ElicitRequestParams, GetTaskParams, InputRequest, TaskPayload, TaskStatus, UpdateTaskParams,
};
use serde_json::{Value, json};
use test_support::mcp::{Connect, McpBridge, texts};

async fn connect(args: &[&str]) -> McpBridge {
    McpBridge::connect(Connect {
        tasks: true,
        elicitation: true,
        args: args.iter().map(|a| a.to_string()).collect(),
        ..Connect::default()
    })
    .await
}

/// Calls `ask` and returns the id of the task it answers with.
async fn ask_task(bridge: &McpBridge, arguments: Value) -> String {
    let params = CallToolRequestParams::new("ask")
        .with_arguments(arguments.as_object().cloned().expect("an object"));
    let call = bridge.client.peer().call_tool_once(params);
    let response = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("tools/call timed out")
        .expect("tools/call");
    match response {
        CallToolResponse::Task(created) => {
            assert_eq!(created.task.status, TaskStatus::Working);
            created.task.task_id
        }
        other => panic!("expected a task, got {other:?}"),
    }
}

async fn get(bridge: &McpBridge, task_id: &str) -> Result<DetailedTask, String> {
    bridge
        .client
        .peer()
        .get_task(GetTaskParams::new(task_id.to_string()))
        .await
        .map(|result| result.task)
        .map_err(|e| e.to_string())
}

/// Polls until the task is terminal (20 s at most); the status messages seen on the way.
async fn settle(bridge: &McpBridge, task_id: &str) -> (DetailedTask, Vec<String>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut messages = Vec::new();
    loop {
        let task = get(bridge, task_id).await.expect("tasks/get");
        messages.extend(task.task.status_message.clone());
        if task.status().is_terminal() {
            return (task, messages);
        }
        assert!(tokio::time::Instant::now() < deadline, "{task:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn completed(task: &DetailedTask) -> CallToolResult {
    match &task.payload {
        TaskPayload::Completed { result } => {
            serde_json::from_value(Value::Object(result.clone())).expect("a CallToolResult")
        }
        other => panic!("expected completed, got {other:?}"),
    }
}

#[tokio::test]
async fn an_ask_runs_as_a_task_whose_status_follows_the_turn_to_its_result() {
    let bridge = connect(&[]).await;
    let info = bridge.client.peer_info().expect("server info");
    assert!(
        info.capabilities.supports_tasks(),
        "{:?}",
        info.capabilities
    );
    let task_id = ask_task(&bridge, json!({"prompt": "SLOW ms=100 chunks=5"})).await;
    let (task, messages) = settle(&bridge, &task_id).await;
    let result = completed(&task);
    assert_ne!(result.is_error, Some(true));
    assert_eq!(
        texts(&result)[0],
        "slow chunk 1slow chunk 2slow chunk 3slow chunk 4slow chunk 5"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("assistant: slow chunk")),
        "{messages:?}"
    );
    assert_eq!(task.task.status_message.as_deref(), Some("result: success"));
    bridge.close().await;
}

#[tokio::test]
async fn cancelling_a_running_task_interrupts_the_turn_and_the_session_goes_on() {
    let bridge = connect(&[]).await;
    let task_id = ask_task(&bridge, json!({"prompt": "SLOW ms=300 chunks=50"})).await;
    bridge
        .wait_status("the turn to run", |s| !s["turn"].is_null())
        .await;
    bridge
        .client
        .peer()
        .cancel_task(CancelTaskParams::new(task_id.clone()))
        .await
        .expect("tasks/cancel");
    let (task, _) = settle(&bridge, &task_id).await;
    assert_eq!(task.status(), TaskStatus::Cancelled);
    let next = ask_task(&bridge, json!({"prompt": "hello"})).await;
    let next = completed(&settle(&bridge, &next).await.0);
    assert_ne!(next.is_error, Some(true), "{next:?}");
    assert!(texts(&next)[0].ends_with("to: hello"), "{:?}", texts(&next));
    bridge.close().await;
}

#[tokio::test]
async fn a_task_whose_turn_times_out_or_whose_child_crashes_completes_with_the_error() {
    let bridge = connect(&[]).await;
    let slow = ask_task(
        &bridge,
        json!({"prompt": "SLOW ms=300 chunks=50", "timeoutMs": 200}),
    )
    .await;
    let (task, _) = settle(&bridge, &slow).await;
    let result = completed(&task);
    assert_eq!(result.is_error, Some(true));
    assert!(texts(&result)[0].contains("-32001"), "{:?}", texts(&result));
    let crash = ask_task(&bridge, json!({"prompt": "CRASH"})).await;
    let (task, _) = settle(&bridge, &crash).await;
    let result = completed(&task);
    assert_eq!(result.is_error, Some(true));
    assert!(texts(&result)[0].contains("-32002"), "{:?}", texts(&result));
    bridge.close().await;
}

#[tokio::test]
async fn a_task_outliving_its_ttl_fails_and_a_finished_one_is_dropped_after_it() {
    let bridge = connect(&["--result-ttl-ms", "600"]).await;
    let quick = ask_task(&bridge, json!({"prompt": "hello"})).await;
    let (task, _) = settle(&bridge, &quick).await;
    assert_eq!(task.task.ttl_ms, Some(600));
    assert_eq!(task.status(), TaskStatus::Completed);
    let slow = ask_task(&bridge, json!({"prompt": "SLOW ms=300 chunks=50"})).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (task, _) = settle(&bridge, &slow).await;
    assert_eq!(task.status(), TaskStatus::Failed, "{task:?}");
    // The finished one is gone a TTL after it ended.
    let gone = get(&bridge, &quick).await;
    assert!(gone.is_err(), "{gone:?}");
    // The expired task's turn was interrupted: the session takes the next ask.
    let next = ask_task(&bridge, json!({"prompt": "after"})).await;
    let next = completed(&settle(&bridge, &next).await.0);
    assert!(texts(&next)[0].ends_with("to: after"), "{:?}", texts(&next));
    bridge.close().await;
}

#[tokio::test]
async fn a_permission_question_is_the_tasks_input_required_and_its_answer_goes_on() {
    let bridge = connect(&[]).await;
    let task_id = ask_task(&bridge, json!({"prompt": "RUN_TOOL touch task.txt"})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let requests = loop {
        let task = get(&bridge, &task_id).await.expect("tasks/get");
        if let TaskPayload::InputRequired { input_requests } = task.payload {
            break input_requests;
        }
        assert!(!task.status().is_terminal(), "{task:?}");
        assert!(tokio::time::Instant::now() < deadline, "{task:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let Some(InputRequest::Elicitation(request)) = requests.get("permission1") else {
        panic!("no form under permission1: {requests:?}");
    };
    let ElicitRequestParams::FormElicitationParams { message, .. } = &request.params else {
        panic!("not a form: {request:?}");
    };
    assert!(message.contains("run `touch task.txt`"), "{message}");
    let answer = json!({"action": "accept", "content": {"decision": "Allow once"}});
    let responses = [("permission1".to_string(), answer)].into_iter().collect();
    bridge
        .client
        .peer()
        .update_task(UpdateTaskParams::new(task_id.clone(), responses))
        .await
        .expect("tasks/update");
    let (task, _) = settle(&bridge, &task_id).await;
    let result = completed(&task);
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert!(
        texts(&result)[0].contains("is_error=False"),
        "{:?}",
        texts(&result)
    );
    bridge.close().await;
}

#[tokio::test]
async fn a_tasks_end_outlives_a_restart_of_claude_coded_like_a_handles() {
    let dir = test_support::TempDir::new("tasks-restart");
    let state = dir.path().join("state");
    let state_arg = state.display().to_string();
    let bridge = connect(&["--state-dir", &state_arg]).await;
    let done = ask_task(&bridge, json!({"prompt": "hello"})).await;
    assert_eq!(
        settle(&bridge, &done).await.0.status(),
        TaskStatus::Completed
    );
    // Running when claude-coded stops: it ends with the stop's error.
    let running = ask_task(&bridge, json!({"prompt": "HANG"})).await;
    bridge
        .wait_status("the turn to run", |s| !s["turn"].is_null())
        .await;
    bridge.close().await;

    let bridge = connect(&["--state-dir", &state_arg]).await;
    let before = completed(&get(&bridge, &done).await.expect("the task's end was kept"));
    assert!(
        texts(&before)[0].ends_with("to: hello"),
        "{:?}",
        texts(&before)
    );
    let stopped = get(&bridge, &running)
        .await
        .expect("the running task's end was kept");
    assert_eq!(stopped.status(), TaskStatus::Completed);
    assert_eq!(completed(&stopped).is_error, Some(true), "{stopped:?}");
    // Read as often as polled: not collected.
    assert!(get(&bridge, &done).await.is_ok());
    bridge.close().await;
}
