//! `ask` over the plain surface, end to end through the real binary and the CLI double.

use serde_json::{Value, json};
use test_support::{Bridge, Options, error_code};

#[tokio::test]
async fn ask_round_trip() {
    let mut bridge = Bridge::start();
    let result = bridge.ask_ok("hello").await;
    assert_eq!(result["ok"], true);
    assert_eq!(result["result"], "mock reply #1 to: hello");
    assert_eq!(result["isError"], false);
    assert_eq!(result["subtype"], "success");
    assert_eq!(result["terminalReason"], "completed");
    assert_eq!(result["numTurns"], 1);
    assert!(
        result["sessionId"].as_str().is_some_and(|s| s.len() == 36),
        "{result}"
    );
    assert!((result["costUsd"].as_f64().unwrap() - 0.00014).abs() < 1e-9);
    assert_eq!(result["usage"]["input_tokens"], 10);
    assert_eq!(result["permissionDenials"], json!([]));
    // Fields we do not map stay reachable.
    assert_eq!(result["raw"]["type"], "result");
    assert!(result["raw"].get("modelUsage").is_some());
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn second_ask_reuses_the_session_and_reports_its_own_cost() {
    let mut bridge = Bridge::start();
    let first = bridge.ask_ok("one").await;
    let second = bridge.ask_ok("two").await;
    assert_eq!(first["sessionId"], second["sessionId"]);
    assert_eq!(second["result"], "mock reply #2 to: two");
    // The CLI reports a running total; each answer carries its own turn's cost.
    assert!(
        (second["costUsd"].as_f64().unwrap() - 0.00014).abs() < 1e-9,
        "{second}"
    );
    assert!((second["sessionCostUsd"].as_f64().unwrap() - 0.00028).abs() < 1e-9);
    let status = bridge.status().await;
    assert_eq!(status["totals"]["turnsOk"], 2);
    assert!((status["totals"]["costUsd"].as_f64().unwrap() - 0.00028).abs() < 1e-9);
    assert_eq!(status["totals"]["inputTokens"], 20);
}

#[tokio::test]
async fn notifications_come_before_the_response_and_in_order() {
    let mut bridge = Bridge::start();
    let id = bridge.request("ask", json!({"prompt": "MULTI"})).await;
    let (response, notes) = bridge.response_for(&id).await;
    assert_eq!(response["result"]["result"], "multi text 1multi text 2");
    let seqs: Vec<u64> = notes
        .iter()
        .map(|n| n["params"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=notes.len() as u64).collect::<Vec<_>>());
    for note in &notes {
        assert_eq!(note["jsonrpc"], "2.0");
        assert_eq!(note["method"], "ask/event");
        assert!(note.get("id").is_none(), "a notification has no id: {note}");
        assert_eq!(note["params"]["requestId"], id);
        assert_eq!(note["params"]["type"], note["params"]["message"]["type"]);
    }
    let kinds: Vec<&str> = notes
        .iter()
        .map(|n| n["params"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"system"));
    assert_eq!(kinds.last(), Some(&"result"));
    assert!(
        kinds.iter().filter(|k| **k == "assistant").count() >= 3,
        "{kinds:?}"
    );
    assert_eq!(response["result"]["messages"], notes.len());
}

#[tokio::test]
async fn concurrent_asks_are_served_one_at_a_time_in_order() {
    let mut bridge = Bridge::start();
    let a = bridge.request("ask", json!({"prompt": "SLOW 50 2"})).await;
    let b = bridge.request("ask", json!({"prompt": "bravo"})).await;
    let c = bridge.request("ask", json!({"prompt": "charlie"})).await;
    let mut results = std::collections::HashMap::new();
    while results.len() < 3 {
        let message = bridge.next_message().await;
        if let Some(id) = message
            .get("id")
            .filter(|_| message.get("method").is_none())
        {
            results.insert(id.to_string(), message["result"].clone());
        }
    }
    // The child ran them in the order they were sent: its result_index counts its turns
    // (responses themselves may be written in any order, each by its own task).
    let index = |id: &Value| results[&id.to_string()]["raw"]["result_index"].clone();
    assert_eq!(
        [index(&a), index(&b), index(&c)],
        [json!(0), json!(1), json!(2)]
    );
    // And each turn got its own prompt.
    assert_eq!(results[&b.to_string()]["result"], "mock reply #2 to: bravo");
    assert_eq!(
        results[&c.to_string()]["result"],
        "mock reply #3 to: charlie"
    );
}

#[tokio::test]
async fn a_full_queue_answers_busy_and_keeps_serving() {
    let mut bridge = Bridge::start_with(Options::default().args(&["--queue-size", "1"]));
    let running = bridge.request("ask", json!({"prompt": "SLOW 200 3"})).await;
    bridge
        .wait_status("the first ask to run", |s| s["child"]["status"] == "busy")
        .await;
    let queued = bridge.request("ask", json!({"prompt": "queued"})).await;
    bridge
        .wait_status("one queued ask", |s| s["queue"]["length"] == 1)
        .await;
    let status = bridge.status().await;
    assert_eq!(status["queue"]["capacity"], 1);
    assert_eq!(status["queue"]["waiting"][0]["promptPreview"], "queued");
    assert_eq!(status["turn"]["promptPreview"], "SLOW 200 3");
    let rejected = bridge
        .request("ask", json!({"prompt": "one too many"}))
        .await;
    let (busy, _) = bridge.response_for(&rejected).await;
    assert_eq!(error_code(&busy), Some(-32000), "{busy}");
    assert!(busy["error"]["message"].as_str().unwrap().contains("busy"));
    assert_eq!(busy["error"]["data"]["capacity"], 1);
    let (first, _) = bridge.response_for(&running).await;
    assert_eq!(first["result"]["ok"], true);
    let (second, _) = bridge.response_for(&queued).await;
    assert_eq!(second["result"]["result"], "mock reply #2 to: queued");
}

#[tokio::test]
async fn an_answer_that_comes_while_the_test_awaits_another_is_kept_for_later() {
    // Answers to different requests come in any order: here `status` answers while the
    // slow ask runs. Awaiting the ask first must not lose the status answer (the harness
    // once dropped it, and `a_full_queue_answers_busy_and_keeps_serving` timed out when
    // the first ask's answer overtook the busy one on a loaded machine).
    let mut bridge = Bridge::start();
    let slow = bridge.request("ask", json!({"prompt": "SLOW 100 3"})).await;
    let status = bridge.request("status", json!({})).await;
    let (answer, _) = bridge.response_for(&slow).await;
    assert_eq!(answer["result"]["ok"], true, "{answer}");
    let (state, _) = bridge.response_for(&status).await;
    assert!(state["result"]["child"].is_object(), "{state}");
}

#[tokio::test]
async fn a_failed_turn_is_a_normal_result_with_ok_false() {
    let mut bridge = Bridge::start();
    let result = bridge.ask_ok("ERR400").await;
    assert_eq!(result["ok"], false);
    assert_eq!(result["isError"], true);
    assert_eq!(result["terminalReason"], "api_error");
    assert_eq!(result["apiErrorStatus"], 400);
    let result = bridge.ask_ok("MAXTURNS").await;
    assert_eq!(result["ok"], false);
    assert_eq!(result["subtype"], "error_max_turns");
    assert_eq!(result["result"], Value::Null);
    assert!(
        result["errors"][0]
            .as_str()
            .unwrap()
            .contains("maximum number of turns")
    );
    let status = bridge.status().await;
    assert_eq!(status["totals"]["turnsFailed"], 2);
}

#[tokio::test]
async fn denied_tools_are_reported() {
    let mut bridge = Bridge::start();
    let result = bridge.ask_ok("RUN_TOOL touch x.txt").await;
    assert_eq!(result["ok"], true);
    assert_eq!(result["permissionDenials"][0]["tool_name"], "Bash");
    assert_eq!(
        result["permissionDenials"][0]["tool_input"]["command"],
        "touch x.txt"
    );
}

#[tokio::test]
async fn garbage_lines_are_skipped_and_recorded() {
    let mut bridge = Bridge::start();
    let id = bridge.request("ask", json!({"prompt": "GARBAGE"})).await;
    let (response, notes) = bridge.response_for(&id).await;
    assert_eq!(response["result"]["ok"], true, "{response}");
    // The unknown-but-typed message is passed on; untyped and non-JSON lines are not.
    assert!(
        notes
            .iter()
            .any(|n| n["params"]["type"] == "future_message_kind")
    );
    let events = bridge.call("events", json!({"level": "warn"})).await;
    let garbage: Vec<&Value> = events["result"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "child.output.garbage")
        .collect();
    // this is not json, {broken, [1,2,3], 42, "a string", {"no_type":true}, invalid UTF-8.
    assert_eq!(garbage.len(), 7, "{events}");
    let previews: Vec<&str> = garbage
        .iter()
        .map(|e| e["detail"]["preview"].as_str().unwrap())
        .collect();
    assert!(previews.contains(&"this is not json"), "{previews:?}");
    assert!(
        previews.iter().any(|p| p.contains("invalid utf-8")),
        "{previews:?}"
    );
    // The child keeps serving.
    assert_eq!(bridge.ask_ok("after").await["ok"], true);
}

#[tokio::test]
async fn the_child_gets_a_clean_environment_and_the_stream_json_flags() {
    let dir = test_support::TempDir::new("env");
    let record = dir.path().join("record.jsonl");
    let mut bridge = Bridge::start_with(
        Options::default()
            .env("CLAUDECODE", "1")
            .env("DOUBLE_RECORD", record.to_str().unwrap())
            .args(&[
                "--model",
                "claude-test-model",
                "--claude-arg",
                "--max-turns",
                "--claude-arg",
                "3",
            ]),
    );
    bridge.ask_ok("hello").await;
    let status = bridge.status().await;
    let line = std::fs::read_to_string(&record).unwrap();
    let seen: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert!(
        seen["env"].get("CLAUDECODE").is_none(),
        "CLAUDECODE must be removed"
    );
    assert_eq!(
        seen["env"]["CLAUDE_CODED_DAEMON_ID"],
        status["identity"]["daemonId"]
    );
    let argv: Vec<&str> = seen["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for flag in [
        "--input-format",
        "stream-json",
        "--output-format",
        "--verbose",
        "--model",
        "claude-test-model",
        "--max-turns",
        "3",
    ] {
        assert!(argv.contains(&flag), "{flag} missing from {argv:?}");
    }
    assert_eq!(
        seen["cwd"],
        bridge.cwd().canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(seen["pid"], status["child"]["cliPid"]);
}

#[tokio::test]
async fn stderr_is_drained_and_its_tail_kept() {
    // 200k lines of stderr before the child reads stdin: a bridge that did not drain
    // the pipe would never see the child get ready.
    let mut bridge =
        Bridge::start_with(Options::default().env("DOUBLE_STDERR_LINES", "200000").env(
            "RUST_LOG",
            "claude_coded=info,claude_coded::child::stderr=off",
        ));
    assert_eq!(bridge.ask_ok("hello").await["ok"], true);
    let status = bridge.status().await;
    let tail = status["child"]["stderrTail"].as_array().unwrap();
    assert!(!tail.is_empty() && tail.len() <= 20, "{tail:?}");
    assert!(
        tail.last()
            .unwrap()
            .as_str()
            .unwrap()
            .contains("filler line"),
        "{tail:?}"
    );
}
