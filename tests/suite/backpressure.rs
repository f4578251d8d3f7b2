//! The event path under load: a client that reads slowly (or not at all for a while)
//! gets every message of the turn, in order, because the child is slowed down instead
//! of its messages dropped; and the child stays under control meanwhile: timeouts,
//! cancels and `status` work, and a client that goes away does not hold it forever.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use test_support::{Bridge, Options, TempDir};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::time::Instant;

/// Assistant lines in the flooding turns: far more than every buffer between the child
/// and the client holds (the turn's queue, the outbox, two pipes).
const CHUNKS: u64 = 20_000;

const OPT_IN: &str = r#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"experimental":{"claude-coded/events":{}}},"clientInfo":{"name":"backpressure","version":"0"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// An MCP session that opted in to raw events.
async fn mcp_with_raw_events() -> Bridge {
    let mut bridge = Bridge::start();
    bridge.send_raw(OPT_IN.as_bytes()).await;
    let answer = bridge.next_message().await;
    assert!(answer["result"].is_object(), "{answer}");
    bridge.send_raw(INITIALIZED.as_bytes()).await;
    bridge
}

/// The persisted state, read from the file the bridge writes (not from stdout).
fn state(bridge: &Bridge) -> Value {
    std::fs::read_to_string(bridge.state_dir().join("daemon-state.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// A turn of [`CHUNKS`] messages of 4 KiB each, for the tests that never read it
/// whole: bigger messages fill the pipes in fewer of them, so the child is held back
/// sooner (most of what is held is the turn's buffer, counted in messages).
fn held_prompt() -> String {
    format!("SLOW 0 {CHUNKS} bytes=4096")
}

/// How long a turn may take to be held back. Nothing here depends on how soon that
/// comes; this only bounds a failing test, on a machine as loaded as CI's.
const HOLD_WITHIN: Duration = Duration::from_secs(40);

/// Waits, not reading stdout, until the turn's message count stops moving: the child is
/// held back. Returns the count it stopped at.
async fn until_held_back(bridge: &Bridge) -> u64 {
    let deadline = Instant::now() + HOLD_WITHIN;
    let mut last = None;
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let state = state(bridge);
        let messages = state["turn"]["messages"].as_u64();
        assert!(
            last.is_none() || messages.is_some(),
            "the turn ended before it was held back: {state}"
        );
        if messages.is_some() && messages == last {
            return messages.unwrap_or(0);
        }
        last = messages;
        assert!(Instant::now() < deadline, "never held back: {state}");
    }
}

/// Reads slowly until the response to `id`: a pause every few hundred lines. Returns
/// the response and the `seq` of every event notification about `id`.
async fn read_slowly(bridge: &mut Bridge, id: &Value, method: &str) -> (Value, Vec<u64>) {
    let mut seqs = Vec::new();
    let mut lines = 0u64;
    loop {
        let message = bridge.next_message().await;
        lines += 1;
        if lines.is_multiple_of(500) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if message["method"] == method && message["params"]["requestId"] == *id {
            seqs.push(message["params"]["seq"].as_u64().unwrap());
        } else if message["id"] == *id && message.get("method").is_none() {
            return (message, seqs);
        }
    }
}

#[tokio::test]
async fn a_slow_reader_gets_every_message_in_order_on_both_surfaces() {
    let prompt = format!("SLOW 0 {CHUNKS}");
    let mut plain = Bridge::start();
    let ask = plain.request("ask", json!({ "prompt": prompt })).await;
    let (response, seqs) = read_slowly(&mut plain, &ask, "ask/event").await;
    // init, one assistant line per chunk, the result.
    let total = CHUNKS + 2;
    assert_eq!(response["result"]["messages"], total, "{response}");
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    assert_eq!(plain.status().await["totals"]["notificationsDropped"], 0);

    let mut mcp = mcp_with_raw_events().await;
    let call = json!({ "name": "ask", "arguments": { "prompt": prompt } });
    let ask = mcp.request("tools/call", call).await;
    let method = "notifications/claude-coded/event";
    let (response, seqs) = read_slowly(&mut mcp, &ask, method).await;
    assert_eq!(response["result"]["isError"], false, "{response}");
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    assert_eq!(mcp.close_and_wait().await, 0);
    assert_eq!(plain.close_and_wait().await, 0);
}

#[tokio::test]
async fn status_is_answered_during_a_held_back_turn_not_after_it() {
    let mut bridge = Bridge::start();
    let ask = bridge
        .request("ask", json!({ "prompt": format!("SLOW 0 {CHUNKS}") }))
        .await;
    let held_at = until_held_back(&bridge).await;
    assert!(
        held_at < CHUNKS,
        "the turn ran to its end unread: {held_at}"
    );
    let status = bridge.request("status", json!({})).await;
    // Reading again, the status answer comes while the turn still streams: behind what
    // was already on its way to the client, ahead of what the child was held back on.
    let mut before_status = 0u64;
    let answer = loop {
        let message = bridge.next_message().await;
        if message["id"] == status {
            break message;
        }
        assert_ne!(
            message["id"], ask,
            "the ask ended before status was answered"
        );
        before_status += u64::from(message["method"] == "ask/event");
    };
    assert!(answer["result"]["turn"].is_object(), "{answer}");
    assert!(
        before_status < CHUNKS / 2,
        "status waited for the whole turn ({before_status} events first)"
    );
    let (response, notes) = bridge.response_for(&ask).await;
    assert_eq!(response["result"]["ok"], true, "{response}");
    let after = notes.iter().filter(|n| n["method"] == "ask/event").count() as u64;
    assert_eq!(
        before_status + after,
        CHUNKS + 2,
        "events lost around status"
    );
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn a_turn_timeout_fires_while_the_output_is_held_back() {
    let mut bridge = Bridge::start();
    bridge.ask_ok("warm up").await;
    // Held back within a second or two on a quiet machine, in about 7 s with six busy
    // loops beside it on two cores: the timeout comes well after that (a turn timed out
    // before it was held back would test nothing here, and fails in `until_held_back`).
    let timeout_ms = 25_000;
    let params = json!({ "prompt": held_prompt(), "timeoutMs": timeout_ms });
    let asked = Instant::now();
    let ask = bridge.request("ask", params).await;
    until_held_back(&bridge).await;
    assert!(
        asked.elapsed() < Duration::from_millis(timeout_ms),
        "held back only after the timeout"
    );
    // Still not reading: the timeout goes off all the same, and the child is interrupted.
    let deadline = asked + Duration::from_millis(timeout_ms) + Duration::from_secs(20);
    while state(&bridge)["totals"]["asksErrored"] != 1 {
        assert!(Instant::now() < deadline, "no timeout: {}", state(&bridge));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (response, notes) = bridge.response_for(&ask).await;
    assert_eq!(
        test_support::error_code(&response),
        Some(-32001),
        "{response}"
    );
    // What was streamed before the timeout came whole and in order.
    let seqs: Vec<u64> = notes
        .iter()
        .filter(|n| n["params"]["requestId"] == ask)
        .map(|n| n["params"]["seq"].as_u64().unwrap())
        .collect();
    assert!(!seqs.is_empty());
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    // The interrupted child keeps its session and serves the next ask.
    assert_eq!(bridge.ask_ok("after").await["ok"], true);
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn a_cancel_is_heard_while_the_output_is_held_back() {
    let mut bridge = mcp_with_raw_events().await;
    let call = json!({ "name": "ask", "arguments": { "prompt": held_prompt() } });
    let cancelled = bridge.request("tools/call", call).await;
    until_held_back(&bridge).await;
    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                         "params": { "requestId": cancelled, "reason": "test" } });
    bridge.send_raw(cancel.to_string().as_bytes()).await;
    // The turn ends (interrupted) while the client still reads nothing.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !state(&bridge)["turn"].is_null() {
        assert!(
            Instant::now() < deadline,
            "turn still running: {}",
            state(&bridge)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let call = json!({ "name": "ask", "arguments": { "prompt": "after" } });
    let next = bridge.request("tools/call", call).await;
    let (response, seen) = bridge.response_for(&next).await;
    assert!(
        seen.iter().all(|m| m.get("id") != Some(&cancelled)),
        "a response to the cancelled ask"
    );
    let seqs: Vec<u64> = seen
        .iter()
        .filter(|n| n["params"]["requestId"] == cancelled)
        .map(|n| n["params"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert!(
        (seqs.len() as u64) < CHUNKS,
        "the cancelled turn ran to its end"
    );
    assert_eq!(response["result"]["isError"], false, "{response}");
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn a_client_that_closes_its_stdout_mid_turn_does_not_hold_the_child() {
    let dir = TempDir::new("closes-stdout");
    let mut command = test_support::bridge_command(dir.path(), &Options::default());
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let mut bridge = command.spawn().expect("spawn claude-coded");
    let mut stdin = bridge.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(bridge.stdout.take().expect("stdout")).lines();
    let ask = json!({"jsonrpc": "2.0", "id": 1, "method": "ask",
                     "params": { "prompt": format!("SLOW 0 {CHUNKS}") }});
    stdin
        .write_all(format!("{ask}\n").as_bytes())
        .await
        .unwrap();
    for _ in 0..10 {
        let line = tokio::time::timeout(test_support::READ_TIMEOUT, stdout.next_line()).await;
        assert!(line.unwrap().unwrap().is_some());
    }
    let state_file = dir.path().join("state").join("daemon-state.json");
    let deadline = Instant::now() + test_support::READ_TIMEOUT;
    let child = loop {
        let pid = std::fs::read_to_string(&state_file)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|s| s["child"]["pid"].as_i64());
        if let Some(pid) = pid {
            break pid as i32;
        }
        assert!(Instant::now() < deadline, "no child pid in the state file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The client goes away: it closes the read end of its stdout, mid-turn.
    drop(stdout);
    let exit = tokio::time::timeout(Duration::from_secs(20), bridge.wait())
        .await
        .expect("claude-coded still running 20 s after its stdout closed")
        .expect("wait");
    assert!(exit.code().is_some() || exit.success(), "{exit:?}");
    assert!(
        test_support::wait_gone(child, Duration::from_secs(10)).await,
        "the child {child} outlived the bridge"
    );
    drop(stdin);
}
