//! The child misbehaving: timeouts, hangs, crashes, failed starts.

use std::time::{Duration, Instant};

use serde_json::json;
use test_support::{Bridge, Options, error_code, process_alive, wait_gone};

#[tokio::test]
async fn timeout_interrupts_the_turn_and_the_child_keeps_its_session() {
    let mut bridge = Bridge::start();
    let before = bridge.ask_ok("warm up").await;
    let pid = bridge.status().await["child"]["pid"].clone();
    let started = Instant::now();
    let response = bridge
        .call("ask", json!({"prompt": "SLOW 500 60", "timeoutMs": 300}))
        .await;
    let waited = started.elapsed();
    assert_eq!(error_code(&response), Some(-32001), "{response}");
    assert_eq!(response["error"]["data"]["timeoutMs"], 300);
    // Answered at the timeout, not when the 30 s stream would have ended.
    assert!(
        waited < Duration::from_secs(15),
        "timeout answered after {waited:?}"
    );
    // The interrupt ended the turn; the same process serves the next one.
    let after = bridge.ask_ok("after the timeout").await;
    assert_eq!(after["ok"], true);
    assert_eq!(after["sessionId"], before["sessionId"]);
    let status = bridge.status().await;
    assert_eq!(status["child"]["pid"], pid);
    assert_eq!(status["child"]["restartCount"], 0);
    let events = bridge.call("events", json!({})).await["result"]["events"].clone();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"turn.timeout"), "{kinds:?}");
    assert!(kinds.contains(&"turn.abandoned.finished"), "{kinds:?}");
}

#[tokio::test]
async fn a_child_that_ignores_the_interrupt_is_killed_and_restarted() {
    let mut bridge = Bridge::start_with(Options::default().args(&["--interrupt-grace-ms", "300"]));
    bridge.ask_ok("warm up").await;
    let old_pid = bridge.status().await["child"]["pid"].as_i64().unwrap() as i32;
    let response = bridge
        .call("ask", json!({"prompt": "HANG", "timeoutMs": 200}))
        .await;
    assert_eq!(error_code(&response), Some(-32001), "{response}");
    assert!(
        wait_gone(old_pid, Duration::from_secs(5)).await,
        "hung child not killed"
    );
    let after = bridge.ask_ok("after the hang").await;
    assert_eq!(after["ok"], true);
    let status = bridge.status().await;
    assert_eq!(status["child"]["restartCount"], 1);
    assert_ne!(status["child"]["pid"], json!(old_pid));
}

#[tokio::test]
async fn a_crash_mid_ask_fails_fast_with_the_stderr_tail_then_restarts() {
    let mut bridge = Bridge::start();
    bridge.ask_ok("warm up").await;
    // Answered with the exit itself (not a timeout or the stall watchdog).
    let response = bridge.call("ask", json!({"prompt": "CRASH 3"})).await;
    assert_eq!(error_code(&response), Some(-32002), "{response}");
    let message = response["error"]["message"].as_str().unwrap();
    assert!(message.contains("exited with code 3"), "{message}");
    assert!(message.contains("crashing on request"), "{message}");
    assert_eq!(response["error"]["data"]["exitCode"], 3);
    let status = bridge
        .wait_status("the child to be restarted", |s| {
            s["child"]["restartCount"] == 1 && s["child"]["ready"] == true
        })
        .await;
    assert_eq!(status["child"]["exitCode"], 3);
    assert!(
        status["child"]["lastError"]
            .as_str()
            .unwrap()
            .contains("code 3")
    );
    assert_eq!(bridge.ask_ok("after the crash").await["ok"], true);
}

#[tokio::test]
async fn a_child_killed_by_a_signal_is_reported_with_the_signal() {
    let mut bridge = Bridge::start();
    let response = bridge.call("ask", json!({"prompt": "KILL"})).await;
    assert_eq!(error_code(&response), Some(-32002), "{response}");
    assert_eq!(response["error"]["data"]["signal"], 9);
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signal 9")
    );
    assert_eq!(bridge.ask_ok("next").await["ok"], true);
}

#[tokio::test]
async fn failed_starts_fail_asks_fast_while_restarts_go_on_and_backoff_grows() {
    let dir = test_support::TempDir::new("crashcount");
    let counter = dir.path().join("starts");
    let mut bridge = Bridge::start_with(
        Options::default()
            .args(&["--backoff-initial-ms", "100", "--backoff-max-ms", "250"])
            .env(
                "DOUBLE_STARTUP",
                &format!("crash-count:{}:3", counter.display()),
            ),
    );
    // An ask during the failed starts is told why at once, with the child's stderr...
    let response = bridge.call("ask", json!({"prompt": "too early"})).await;
    assert_eq!(error_code(&response), Some(-32003), "{response}");
    let tail = response["error"]["data"]["stderrTail"].to_string();
    assert!(tail.contains("startup crash requested"), "{response}");
    // ...while the restarts go on (backoff 100, 200, 250 ms) until a start succeeds.
    bridge
        .wait_status("a ready child", |s| s["child"]["ready"] == true)
        .await;
    assert_eq!(bridge.ask_ok("eventually").await["ok"], true);
    let events = bridge.call("events", json!({"limit": 1000})).await["result"]["events"].clone();
    let delays: Vec<u64> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "child.restart.scheduled")
        .map(|e| e["detail"]["delayMs"].as_u64().unwrap())
        .collect();
    assert_eq!(delays, vec![100, 200, 250]);
    let status = bridge.status().await;
    assert_eq!(status["child"]["restartCount"], 3);
    assert!(status["child"]["stderrTail"].as_array().is_some());
}

#[tokio::test]
async fn a_missing_cli_gives_one_clear_error_naming_the_flag() {
    let mut bridge =
        Bridge::start_with(Options::default().args(&["--claude-bin", "no-such-claude-binary"]));
    let response = bridge.call("ask", json!({"prompt": "hello"})).await;
    assert_eq!(error_code(&response), Some(-32003), "{response}");
    let message = response["error"]["message"].as_str().unwrap();
    assert!(message.contains("--claude-bin"), "{message}");
    assert!(
        message.contains("npm install -g @anthropic-ai/claude-code"),
        "{message}"
    );
    let status = bridge.status().await;
    assert_eq!(status["child"]["status"], "failed");
    // No restart loop for a binary that is not there.
    let events = bridge.call("events", json!({})).await["result"]["events"].clone();
    let scheduled = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "child.restart.scheduled")
        .count();
    assert_eq!(scheduled, 0);
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn huge_replies_pass_and_oversized_lines_restart_the_child() {
    let mut bridge =
        Bridge::start_with(Options::default().args(&["--max-child-line-bytes", "1000000"]));
    let result = bridge.ask_ok("HUGE 300000").await;
    assert_eq!(result["result"].as_str().unwrap().len(), 300_000);
    let response = bridge.call("ask", json!({"prompt": "HUGE 2000000"})).await;
    assert_eq!(error_code(&response), Some(-32006), "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("over the limit")
    );
    let after = bridge.ask_ok("after").await;
    assert_eq!(after["ok"], true);
    assert_eq!(bridge.status().await["child"]["restartCount"], 1);
}

#[tokio::test]
async fn a_child_that_closes_stdout_but_keeps_running_is_treated_as_dead() {
    let mut bridge = Bridge::start();
    bridge.ask_ok("warm up").await;
    let pid = bridge.status().await["child"]["pid"].as_i64().unwrap() as i32;
    let response = bridge.call("ask", json!({"prompt": "CLOSE_STDOUT"})).await;
    assert_eq!(error_code(&response), Some(-32002), "{response}");
    assert!(!process_alive(pid));
    assert_eq!(bridge.ask_ok("after").await["ok"], true);
    // One restart: the child that closed its stdout was killed and replaced.
    assert_eq!(bridge.status().await["child"]["restartCount"], 1);
}
