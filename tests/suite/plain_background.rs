//! Background asks on the plain surface, through the real binary and the CLI double:
//! `ask` with `wait: false` answers with a handle, `wait`, `result` and `cancel` take it,
//! a finished result survives until collected (across a restart too), and `events` with
//! `waitMs` is a long poll.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use test_support::{Bridge, Options, TempDir, error_code};

/// `ask` with `wait: false`: the handle, and the `ask/event` notifications read on the way.
async fn start_in_background(bridge: &mut Bridge, params: Value) -> (Value, Vec<Value>) {
    let mut params = params;
    params["wait"] = json!(false);
    let (response, notes) = {
        let id = bridge.request("ask", params).await;
        bridge.response_for(&id).await
    };
    let handle = response
        .get("result")
        .cloned()
        .unwrap_or_else(|| panic!("no handle: {response}"));
    assert!(
        handle["turnId"].as_str().is_some_and(|id| !id.is_empty()),
        "{handle}"
    );
    (handle, notes)
}

/// `wait` for `handle`, with the notifications read before its response.
async fn wait(bridge: &mut Bridge, handle: &Value, timeout_ms: u64) -> (Value, Vec<Value>) {
    let id = bridge
        .request(
            "wait",
            json!({"turnId": handle["turnId"], "timeoutMs": timeout_ms}),
        )
        .await;
    bridge.response_for(&id).await
}

#[tokio::test]
async fn an_ask_that_does_not_wait_answers_with_a_handle_and_wait_brings_its_answer() {
    let mut bridge = Bridge::start();
    let (handle, mut notes) =
        start_in_background(&mut bridge, json!({"prompt": "SLOW ms=50 chunks=3"})).await;
    assert_eq!(handle["session"], "default");
    let (response, more) = wait(&mut bridge, &handle, 15_000).await;
    notes.extend(more);
    let answer = &response["result"];
    assert_eq!(answer["running"], false, "{response}");
    assert_eq!(answer["turnId"], handle["turnId"]);
    assert_eq!(
        answer["result"]["result"],
        "slow chunk 1slow chunk 2slow chunk 3"
    );
    assert_eq!(answer["step"], "result: success");
    // The turn's events still stream, naming the handle.
    let events: Vec<&Value> = notes
        .iter()
        .filter(|n| n["method"] == "ask/event")
        .collect();
    assert!(!events.is_empty(), "{notes:?}");
    for event in &events {
        assert_eq!(event["params"]["turnId"], handle["turnId"], "{event}");
    }
    // Collected: the handle is spent.
    let again = bridge
        .call("result", json!({"turnId": handle["turnId"]}))
        .await;
    assert_eq!(error_code(&again), Some(-32602), "{again}");
}

#[tokio::test]
async fn wait_with_a_short_timeout_says_the_turn_still_runs_and_cancel_stops_it() {
    let mut bridge = Bridge::start();
    let (handle, _) =
        start_in_background(&mut bridge, json!({"prompt": "SLOW ms=400 chunks=50"})).await;
    let (response, _) = wait(&mut bridge, &handle, 600).await;
    let running = &response["result"];
    assert_eq!(running["running"], true, "{response}");
    assert!(running["elapsedMs"].as_u64().unwrap() >= 500, "{running}");
    assert!(running.get("result").is_none(), "{running}");
    assert!(running["messages"].as_u64().unwrap() >= 1, "{running}");
    assert!(
        running["step"].as_str().is_some_and(
            |s| s.starts_with("assistant: slow chunk") || s.starts_with("turn started")
        ),
        "{running}"
    );
    let cancel = bridge
        .call("cancel", json!({"turnId": handle["turnId"]}))
        .await;
    assert_eq!(cancel["result"]["cancelled"], true, "{cancel}");
    let (after, _) = wait(&mut bridge, &handle, 15_000).await;
    assert_eq!(error_code(&after), Some(-32007), "{after}");
    // The session stays: the next ask in it works.
    let next = bridge.ask_ok("hello").await;
    assert_eq!(next["ok"], true);
}

#[tokio::test]
async fn result_after_the_turn_ended_gives_the_answer_once() {
    let mut bridge = Bridge::start();
    let (handle, _) = start_in_background(&mut bridge, json!({"prompt": "hello"})).await;
    bridge
        .wait_status("the turn to end", |s| s["totals"]["turnsOk"] == 1)
        .await;
    let response = bridge
        .call("result", json!({"turnId": handle["turnId"]}))
        .await;
    assert_eq!(
        response["result"]["result"]["result"], "mock reply #1 to: hello",
        "{response}"
    );
    assert_eq!(response["result"]["running"], false);
}

#[tokio::test]
async fn an_uncollected_result_survives_a_restart_of_the_bridge() {
    let mut first = Bridge::start();
    let (handle, _) = start_in_background(&mut first, json!({"prompt": "keep me"})).await;
    first
        .wait_status("the turn to end", |s| s["totals"]["turnsOk"] == 1)
        .await;
    assert_eq!(first.close_and_wait().await, 0);
    let file = first.state_dir().join("results.json");
    assert_eq!(test_support::cli::mode(&file) & 0o777, 0o600);
    let dir = std::mem::replace(&mut first.dir, TempDir::new("unused"));
    let mut second = Bridge::start_with(Options {
        dir: Some(dir),
        ..Options::default()
    });
    let response = second
        .call("result", json!({"turnId": handle["turnId"]}))
        .await;
    assert_eq!(
        response["result"]["result"]["result"], "mock reply #1 to: keep me",
        "{response}"
    );
    // Collected, and so gone from the file too.
    let stored: Value =
        serde_json::from_slice(&std::fs::read(second.state_dir().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(stored, json!({}));
}

#[tokio::test]
async fn an_unknown_handle_gets_a_clear_error() {
    let mut bridge = Bridge::start();
    for method in ["wait", "result", "cancel"] {
        let response = bridge.call(method, json!({"turnId": "no-such-turn"})).await;
        assert_eq!(error_code(&response), Some(-32602), "{response}");
        assert_eq!(response["error"]["data"]["field"], "turnId");
        let message = response["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("no background turn `no-such-turn`"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_background_turn_that_times_out_or_whose_child_crashes_reports_that_error() {
    let mut bridge = Bridge::start();
    let (slow, _) = start_in_background(
        &mut bridge,
        json!({"prompt": "SLOW ms=300 chunks=50", "timeoutMs": 200}),
    )
    .await;
    let (timed_out, _) = wait(&mut bridge, &slow, 15_000).await;
    assert_eq!(error_code(&timed_out), Some(-32001), "{timed_out}");
    assert_eq!(timed_out["error"]["data"]["kind"], "timeout");
    let (crash, _) = start_in_background(&mut bridge, json!({"prompt": "CRASH"})).await;
    let (crashed, _) = wait(&mut bridge, &crash, 15_000).await;
    assert_eq!(error_code(&crashed), Some(-32002), "{crashed}");
}

#[tokio::test]
async fn permissions_from_the_client_need_an_ask_that_waits() {
    let mut bridge = Bridge::start();
    let response = bridge
        .call(
            "ask",
            json!({"prompt": "hi", "wait": false, "permissions": "client"}),
        )
        .await;
    assert_eq!(error_code(&response), Some(-32602), "{response}");
    assert_eq!(response["error"]["data"]["field"], "permissions");
}

#[tokio::test]
async fn a_long_poll_of_events_answers_when_a_new_event_is_recorded() {
    let mut bridge = Bridge::start();
    bridge
        .wait_status("the child to be ready", |s| s["child"]["ready"] == true)
        .await;
    let next = bridge.call("events", json!({})).await["result"]["nextSeq"]
        .as_u64()
        .unwrap();
    // Nothing new: the poll ends at its time, empty.
    let quiet = bridge
        .call(
            "events",
            json!({"since": next - 1, "waitMs": 200, "level": "error"}),
        )
        .await;
    assert_eq!(quiet["result"]["events"], json!([]), "{quiet}");
    let started = Instant::now();
    let poll = bridge
        .request("events", json!({"since": next - 1, "waitMs": 60_000}))
        .await;
    let ask = bridge.request("ask", json!({"prompt": "hello"})).await;
    let (response, _) = bridge.response_for(&poll).await;
    let events = response["result"]["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{response}");
    assert!(events[0]["seq"].as_u64().unwrap() >= next);
    // Far sooner than its 60 s: it answered on the event (bound generous for slow machines).
    assert!(started.elapsed() < Duration::from_secs(15));
    let (answer, _) = bridge.response_for(&ask).await;
    assert_eq!(answer["result"]["ok"], true);
}

#[tokio::test]
async fn a_result_nobody_collects_expires_after_its_ttl() {
    let mut bridge = Bridge::start_with(Options::default().args(&["--result-ttl-ms", "300"]));
    let (handle, _) = start_in_background(&mut bridge, json!({"prompt": "hello"})).await;
    bridge
        .wait_status("the turn to end", |s| s["totals"]["turnsOk"] == 1)
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let response = bridge
        .call("result", json!({"turnId": handle["turnId"]}))
        .await;
    assert_eq!(error_code(&response), Some(-32602), "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{response}"
    );
}
