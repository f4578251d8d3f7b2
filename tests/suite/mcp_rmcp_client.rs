//! The MCP surface driven by rmcp's client over a spawned `claude-coded` (with the CLI
//! double as its child): handshake, tools/list, each tool, progress, cancellation,
//! logging, the raw-event opt-in, ping, and the 2026-07-28 discover lifecycle.
#![allow(deprecated)] // rmcp marks MCP logging deprecated (SEP-2577); the bridge still serves it.

use claude_coded::api::StatusResult;
use claude_coded::mcp::output::{AskReply, EventsPage, StatusReport};
use rmcp::model::{
    CallToolRequestParams, LoggingLevel, ProtocolVersion, ServerResult, SetLevelRequestParams,
};
use serde_json::{Value, json};
use test_support::mcp::{Connect, McpBridge, call_result, structured, texts};

#[tokio::test]
async fn handshake_counter_offers_and_describes_the_server() {
    // rmcp's client offers its newest revision, 2026-07-28, in `initialize`.
    let bridge = McpBridge::start().await;
    let info = bridge.client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    let server = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server.name, "claude-coded");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    assert!(
        server
            .title
            .as_deref()
            .is_some_and(|t| t.contains("Claude Code"))
    );
    assert!(server.description.is_some());
    let instructions = info.instructions.as_deref().expect("instructions");
    assert!(instructions.contains("one after another") && instructions.contains("session"));
    assert!(info.capabilities.tools.is_some() && info.capabilities.logging.is_some());
    bridge.close().await;
}

#[tokio::test]
async fn every_handshake_revision_is_accepted_as_offered() {
    for version in [
        ProtocolVersion::V_2024_11_05,
        ProtocolVersion::V_2025_03_26,
        ProtocolVersion::V_2025_06_18,
        ProtocolVersion::V_2025_11_25,
    ] {
        let bridge = McpBridge::connect(Connect {
            version: Some(version.clone()),
            ..Connect::default()
        })
        .await;
        let info = bridge.client.peer_info().expect("server info");
        assert_eq!(info.protocol_version, version);
        let result = bridge.call("ask", json!({ "prompt": "hello" })).await;
        assert_eq!(
            texts(&result)[0],
            "mock reply #1 to: hello",
            "revision {version}"
        );
        bridge.close().await;
    }
}

#[tokio::test]
async fn tools_list_has_six_tools_with_schemas_and_hints() {
    let bridge = McpBridge::start().await;
    let tools = bridge
        .client
        .peer()
        .list_all_tools()
        .await
        .expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        ["ask", "cancel", "events", "sessions", "status", "wait"]
    );
    for tool in &tools {
        assert!(tool.title.is_some(), "{} has a title", tool.name);
        assert!(tool.description.as_deref().is_some_and(|d| d.len() > 80));
        assert!(
            tool.output_schema.is_some(),
            "{} has an outputSchema",
            tool.name
        );
        // `sessions` may close one, `cancel` stops a turn: not read-only either.
        let read_only = tool.annotations.as_ref().and_then(|a| a.read_only_hint);
        assert_eq!(
            read_only,
            Some(!["ask", "sessions", "cancel"].contains(&tool.name.as_ref())),
            "{} readOnlyHint",
            tool.name
        );
    }
    let ask = &tools[0];
    let input = Value::Object((*ask.input_schema).clone());
    assert_eq!(input["required"], json!(["prompt"]));
    assert!(input["properties"]["timeoutMs"].is_object());
    let output = Value::Object((**ask.output_schema.as_ref().unwrap()).clone());
    assert!(output["properties"]["sessionId"].is_object());
    bridge.close().await;
}

#[tokio::test]
async fn status_and_events_are_compact_unless_asked_for_everything() {
    let bridge = McpBridge::start().await;
    let status = bridge.call("status", json!({})).await;
    assert_ne!(status.is_error, Some(true));
    let report: StatusReport = serde_json::from_value(structured(&status)).expect("a report");
    assert!(report.full.is_none());
    assert!(!report.agent.cwd.is_empty());
    assert!(
        texts(&status)[0].starts_with("agent "),
        "{}",
        texts(&status)[0]
    );
    // The sessions in a line: the warm `default` only.
    assert_eq!(
        (
            report.sessions.total,
            report.sessions.live,
            report.sessions.max
        ),
        (1, 1, Some(4))
    );
    assert!(report.sessions.busy.is_empty());
    assert!(
        texts(&status)[0].contains("\nsessions: 1 live of 1 (at most 4 at once); busy: none\n"),
        "{}",
        texts(&status)[0]
    );
    let full = bridge.call("status", json!({ "full": true })).await;
    let report: StatusReport = serde_json::from_value(structured(&full)).expect("a full report");
    let parsed: StatusResult = *report.full.expect("the complete status");
    assert_eq!(parsed.identity.version, env!("CARGO_PKG_VERSION"));
    let client = parsed.client.expect("the client is recorded");
    assert_eq!(client.surface, "mcp");
    assert!(client.protocol_version.is_some());

    let events = bridge.call("events", json!({ "since": 0 })).await;
    let page: EventsPage = serde_json::from_value(structured(&events)).expect("an EventsPage");
    assert!(page.events.iter().any(|e| e.contains(" daemon.started: ")));
    assert!(page.full.is_none());
    assert!(texts(&events)[0].contains("daemon.started"));
    let first = bridge
        .call("events", json!({ "since": 0, "limit": 1, "full": true }))
        .await;
    let page: EventsPage = serde_json::from_value(structured(&first)).unwrap();
    assert_eq!(page.events.len(), 1);
    assert!(page.truncated);
    let full = page.full.expect("full events");
    assert!(page.events[0].contains(&format!(" {}: ", full[0].kind)));

    let warnings = bridge
        .call("events", json!({ "level": "warn", "full": true }))
        .await;
    let page: EventsPage = serde_json::from_value(structured(&warnings)).unwrap();
    assert!(
        page.full
            .unwrap_or_default()
            .iter()
            .all(|e| e.level >= claude_coded::api::Level::Warn)
    );
    bridge.close().await;
}

#[tokio::test]
async fn ask_returns_the_reply_first_and_reports_progress() {
    let bridge = McpBridge::start().await;
    let handle = bridge
        .start_call("ask", json!({ "prompt": "RUN_TOOL ls" }))
        .await;
    let token = handle.progress_token.clone();
    let result = call_result(handle).await;
    assert_ne!(result.is_error, Some(true));
    let answer: AskReply = serde_json::from_value(structured(&result)).expect("an AskReply");
    assert!(answer.ok);
    assert_eq!(answer.num_turns, Some(2));
    assert_eq!(texts(&result)[0], answer.result.clone().unwrap());

    bridge
        .wait_seen("the result step", |seen| {
            seen.progress()
                .iter()
                .any(|p| p.message.as_deref() == Some("result: success"))
        })
        .await;
    let progress = bridge.seen.progress().clone();
    assert!(progress.iter().all(|p| p.progress_token == token));
    let values: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "increasing: {values:?}"
    );
    let messages: Vec<&str> = progress
        .iter()
        .filter_map(|p| p.message.as_deref())
        .collect();
    assert!(messages[0].starts_with("turn started"), "{messages:?}");
    assert!(messages.contains(&"tool use: Bash"), "{messages:?}");
    assert!(
        messages.iter().any(|m| m.starts_with("tool result")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("assistant: ")),
        "{messages:?}"
    );
    bridge.close().await;
}

#[tokio::test]
async fn an_asks_own_budget_ends_its_turn_as_a_failed_answer_and_a_bad_one_is_refused() {
    let bridge = McpBridge::start().await;
    // A turn of the double costs $0.00014: over this ask's budget.
    let capped = bridge
        .call("ask", json!({ "prompt": "hello", "maxBudgetUsd": 0.0001 }))
        .await;
    assert_eq!(capped.is_error, Some(true));
    let answer: AskReply = serde_json::from_value(structured(&capped)).unwrap();
    assert!(!answer.ok);
    let error = answer.error.expect("why it failed");
    assert!(error.contains("budget"), "{error}");
    let after = bridge.call("ask", json!({ "prompt": "hello" })).await;
    assert_ne!(after.is_error, Some(true), "{after:?}");
    let refused = bridge
        .call("ask", json!({ "prompt": "x", "maxBudgetUsd": 0 }))
        .await;
    assert_eq!(refused.is_error, Some(true));
    let text = &texts(&refused)[0];
    assert!(
        text.contains("-32602") && text.contains("maxBudgetUsd"),
        "{text}"
    );
    bridge.close().await;
}

#[tokio::test]
async fn failures_are_error_results_with_reasons() {
    let bridge = McpBridge::start().await;
    // A turn the child reports as failed keeps its structured answer.
    let failed = bridge.call("ask", json!({ "prompt": "ERR400" })).await;
    assert_eq!(failed.is_error, Some(true));
    let answer: AskReply = serde_json::from_value(structured(&failed)).unwrap();
    assert!(!answer.ok);
    let error = answer.error.expect("why it failed");
    assert_eq!(error, "API error 400: mock 400");
    assert_eq!(
        texts(&failed)[0],
        "Claude Code's turn failed: API error 400: mock 400"
    );

    // Invalid arguments: the core's check and the schema's, both as tool errors.
    let empty = bridge.call("ask", json!({ "prompt": "  " })).await;
    assert_eq!(empty.is_error, Some(true));
    assert!(texts(&empty)[0].contains("-32602") && texts(&empty)[0].contains("prompt"));
    let meta = empty.meta.as_ref().expect("error meta");
    assert_eq!(meta.0["claude-coded/error"]["code"], -32602);
    let bad_limit = bridge.call("events", json!({ "limit": 0 })).await;
    assert_eq!(bad_limit.is_error, Some(true));

    // A core error (timeout) carries its code from the error table.
    let timeout = bridge
        .call("ask", json!({ "prompt": "SLOW 300 5", "timeoutMs": 50 }))
        .await;
    assert_eq!(timeout.is_error, Some(true));
    assert!(timeout.structured_content.is_none());
    assert_eq!(
        timeout.meta.as_ref().unwrap().0["claude-coded/error"]["code"],
        -32001
    );

    // An unknown tool is a protocol error.
    let call = bridge
        .client
        .peer()
        .call_tool(CallToolRequestParams::new("nope"))
        .await;
    assert!(call.is_err());
    bridge.close().await;
}

#[tokio::test]
async fn arguments_a_tool_does_not_take_are_ignored_not_refused() {
    // Gemini CLI adds `wait_for_previous` to every call; plain-only fields are unknown
    // to MCP clients too.
    let bridge = McpBridge::start().await;
    let extra =
        json!({ "wait_for_previous": true, "colour": "y", "permissions": "client", "wait": false });
    let mut ask = extra.clone();
    ask["prompt"] = json!("hello");
    let answered = bridge.call("ask", ask).await;
    assert_ne!(answered.is_error, Some(true), "{answered:?}");
    let answer: AskReply = serde_json::from_value(structured(&answered)).unwrap();
    assert!(answer.ok, "{answer:?}");
    for tool in ["status", "sessions", "events"] {
        let result = bridge.call(tool, extra.clone()).await;
        assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
    }
    // A known argument of the wrong type is still refused.
    let bad = bridge
        .call("ask", json!({ "prompt": 7, "wait_for_previous": true }))
        .await;
    assert_eq!(bad.is_error, Some(true));
    bridge.close().await;
}

#[tokio::test]
async fn cancelling_a_running_ask_interrupts_the_child_and_keeps_it() {
    let bridge = McpBridge::start().await;
    let before = bridge
        .wait_status("ready", |s| s["child"]["ready"] == true)
        .await;
    let handle = bridge
        .start_call("ask", json!({ "prompt": "SLOW 100 100" }))
        .await;
    bridge
        .wait_seen("the first streamed chunk", |seen| {
            seen.progress()
                .iter()
                .any(|p| p.message.as_deref() == Some("assistant: slow chunk 1"))
        })
        .await;
    handle.cancel(Some("test".into())).await.expect("cancel");
    let after = bridge
        .wait_status("the interrupted turn to end", |s| {
            s["turn"].is_null() && s["child"]["ready"] == true
        })
        .await;
    assert_eq!(
        after["child"]["pid"], before["child"]["pid"],
        "the child was not restarted"
    );
    assert_eq!(after["child"]["restartCount"], 0);

    // The child kept its session: the next ask is its second turn.
    let next = bridge.call("ask", json!({ "prompt": "after" })).await;
    assert_eq!(texts(&next)[0], "mock reply #2 to: after");
    let answer: AskReply = serde_json::from_value(structured(&next)).unwrap();
    assert_eq!(
        answer.session_id,
        after["child"]["sessionId"].as_str().map(str::to_owned)
    );
    let events: EventsPage =
        serde_json::from_value(structured(&bridge.call("events", json!({})).await)).unwrap();
    assert!(
        events
            .events
            .iter()
            .any(|e| e.contains(" turn.cancelled: ")),
        "{:?}",
        events.events
    );
    bridge.close().await;
}

#[tokio::test]
async fn cancelling_a_queued_ask_removes_it() {
    let bridge = McpBridge::start().await;
    let running = bridge
        .start_call("ask", json!({ "prompt": "SLOW 50 10" }))
        .await;
    bridge
        .wait_status("the first turn", |s| !s["turn"].is_null())
        .await;
    let queued = bridge.start_call("ask", json!({ "prompt": "never" })).await;
    bridge
        .wait_status("the queued ask", |s| s["queue"]["length"] == 1)
        .await;
    queued.cancel(None).await.expect("cancel");
    bridge
        .wait_status("an empty queue", |s| s["queue"]["length"] == 0)
        .await;
    let first = call_result(running).await;
    assert_ne!(first.is_error, Some(true));
    // The cancelled ask never ran: the next one is the child's second turn.
    let next = bridge.call("ask", json!({ "prompt": "next" })).await;
    assert_eq!(texts(&next)[0], "mock reply #2 to: next");
    bridge.close().await;
}

#[tokio::test]
async fn status_answers_while_an_ask_runs() {
    let bridge = McpBridge::start().await;
    let running = bridge
        .start_call("ask", json!({ "prompt": "SLOW 200 5" }))
        .await;
    let status = bridge
        .wait_status("the turn in flight", |s| !s["turn"].is_null())
        .await;
    assert_eq!(status["child"]["status"], "busy");
    assert_ne!(call_result(running).await.is_error, Some(true));
    bridge.close().await;
}

#[tokio::test]
async fn ping_is_answered() {
    let bridge = McpBridge::start().await;
    let request = rmcp::model::ClientRequest::PingRequest(Default::default());
    let response = bridge
        .client
        .peer()
        .send_request(request)
        .await
        .expect("ping");
    assert!(matches!(response, ServerResult::EmptyResult(_)));
    bridge.close().await;
}

#[tokio::test]
async fn log_lines_follow_the_level_the_client_set() {
    let bridge = McpBridge::start().await;
    bridge.call("ask", json!({ "prompt": "before" })).await;
    bridge.round_trip().await;
    assert!(
        bridge.seen.logs().is_empty(),
        "no log lines before logging/setLevel"
    );

    let peer = bridge.client.peer();
    peer.set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .expect("setLevel");
    bridge.call("ask", json!({ "prompt": "logged" })).await;
    bridge
        .wait_seen("a turn event as a log line", |seen| {
            seen.logs().iter().any(|l| l.data["type"] == "turn.started")
        })
        .await;
    let logs = bridge.seen.logs().clone();
    assert!(
        logs.iter()
            .all(|l| l.logger.as_deref() == Some("claude-coded"))
    );
    assert!(
        logs.iter().all(|l| l.level != LoggingLevel::Debug),
        "info and above only"
    );

    peer.set_level(SetLevelRequestParams::new(LoggingLevel::Error))
        .await
        .expect("setLevel");
    let seen_before = bridge.seen.logs().len();
    bridge.call("ask", json!({ "prompt": "quiet" })).await;
    bridge.round_trip().await;
    assert_eq!(bridge.seen.logs().len(), seen_before, "nothing below error");
    bridge.close().await;
}

#[tokio::test]
async fn raw_child_events_only_for_clients_that_opt_in() {
    let plain = McpBridge::start().await;
    plain.call("ask", json!({ "prompt": "MULTI" })).await;
    plain.round_trip().await;
    assert!(plain.seen.custom().is_empty());
    plain.close().await;

    let opted = McpBridge::connect(Connect {
        raw_events: true,
        ..Connect::default()
    })
    .await;
    opted.call("ask", json!({ "prompt": "MULTI" })).await;
    opted
        .wait_seen("the result event", |seen| {
            seen.custom()
                .iter()
                .any(|n| n.params.as_ref().is_some_and(|p| p["type"] == "result"))
        })
        .await;
    let events = opted.seen.custom().clone();
    assert!(
        events
            .iter()
            .all(|n| n.method == claude_coded::mcp::EVENT_METHOD)
    );
    let first = events[0].params.clone().unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["type"], "system");
    assert_eq!(first["subtype"], "init");
    assert_eq!(first["message"]["type"], "system");
    assert!(first["requestId"].is_number() || first["requestId"].is_string());
    opted.close().await;
}

#[tokio::test]
async fn the_2026_07_28_discover_lifecycle_works() {
    let bridge = McpBridge::connect(Connect {
        discover: true,
        ..Connect::default()
    })
    .await;
    let info = bridge.client.peer_info().expect("discovered info");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2026_07_28);
    let tools = bridge
        .client
        .peer()
        .list_all_tools()
        .await
        .expect("tools/list");
    assert_eq!(tools.len(), 6);
    let result = bridge.call("ask", json!({ "prompt": "modern" })).await;
    assert_eq!(texts(&result)[0], "mock reply #1 to: modern");
    bridge
        .wait_seen("progress on 2026-07-28", |seen| !seen.progress().is_empty())
        .await;
    bridge.close().await;
}

/// The text of a form's message.
fn form_message(form: &rmcp::model::ElicitRequestParams) -> String {
    match form {
        rmcp::model::ElicitRequestParams::FormElicitationParams { message, .. } => message.clone(),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn permission_questions_are_forms_on_2025_11_25_and_input_rounds_on_2026_07_28() {
    for discover in [false, true] {
        let options = Connect {
            version: Some(ProtocolVersion::V_2025_11_25),
            discover,
            elicitation: true,
            ..Connect::default()
        };
        let bridge = McpBridge::connect(options).await;
        let era = if discover { "2026-07-28" } else { "2025-11-25" };
        bridge.seen.answer_next(json!({ "decision": "Allow once" }));
        let allowed = bridge
            .call_in_rounds("ask", json!({ "prompt": "RUN_TOOL touch rounds.txt" }))
            .await;
        assert_eq!(allowed.is_error, Some(false), "{era}: {allowed:?}");
        assert!(
            texts(&allowed)[0].contains("is_error=False"),
            "{era}: {allowed:?}"
        );
        let form = form_message(&bridge.seen.forms()[0]);
        assert!(form.contains("run `touch rounds.txt`"), "{era}: {form}");
        bridge
            .seen
            .answer_next(json!({ "decision": "Deny", "message": "not now" }));
        let denied = bridge
            .call_in_rounds("ask", json!({ "prompt": "RUN_TOOL touch rounds.txt" }))
            .await;
        assert!(texts(&denied)[0].contains("not now"), "{era}: {denied:?}");
        if discover {
            // On 2026-07-28 the question ends the call: `input_required` with the form
            // and a handle; a retry under an unknown handle is refused.
            let params = rmcp::model::CallToolRequestParams::new("ask").with_arguments(
                json!({ "prompt": "RUN_TOOL touch once.txt" })
                    .as_object()
                    .unwrap()
                    .clone(),
            );
            let first = bridge.client.call_tool_once(params.clone()).await.unwrap();
            let rmcp::model::CallToolResponse::InputRequired(round) = first else {
                panic!("not an input_required round: {first:?}");
            };
            assert!(round.request_state.is_some());
            let inputs = round.input_requests.unwrap_or_default();
            assert_eq!(inputs.keys().collect::<Vec<_>>(), ["permission1"]);
            let stale = params.with_request_state("ask-999");
            let refused = bridge.client.call_tool_once(stale).await.unwrap();
            let rmcp::model::CallToolResponse::Complete(refused) = refused else {
                panic!("{refused:?}");
            };
            assert!(texts(&refused)[0].contains("requestState"), "{refused:?}");
        }
        // The session goes on after the rounds (an abandoned round's turn is interrupted
        // once its question's deadline and grace pass, so only a plain ask is checked).
        bridge.close().await;
    }
}
