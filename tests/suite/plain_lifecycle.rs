//! Start, stop and what is left on disk: EOF and signals, no orphans, identity,
//! the event log, status and events, and the `status`/`config` subcommands.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{Value, json};
use test_support::{Bridge, Options, TempDir, error_code, process_alive, wait_gone};

fn child_pid(status: &Value) -> i32 {
    status["child"]["pid"].as_i64().expect("child pid") as i32
}

#[tokio::test]
async fn stdin_eof_exits_zero_and_leaves_no_child() {
    let mut bridge = Bridge::start();
    bridge.ask_ok("hello").await;
    let pid = child_pid(&bridge.status().await);
    assert_eq!(bridge.close_and_wait().await, 0);
    assert!(!process_alive(pid), "child {pid} outlived the bridge");
    let state: Value = serde_json::from_slice(
        &std::fs::read(bridge.state_dir().join("daemon-state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["daemon"]["state"], "stopped");
    assert_eq!(state["child"]["status"], "stopped");
    assert_eq!(state["child"]["exitCode"], 0);
    // A stop we asked for is not an error.
    assert_eq!(state["child"]["lastError"], Value::Null, "{state}");
}

#[tokio::test]
async fn a_piped_ask_is_answered_before_the_bridge_exits() {
    // `echo '{...ask...}' | claude-coded`: EOF comes right after the request.
    let mut bridge = Bridge::start();
    let id = bridge.request("ask", json!({"prompt": "SLOW 100 3"})).await;
    bridge.stdin = None;
    let (response, notes) = bridge.response_for(&id).await;
    assert_eq!(response["result"]["ok"], true, "{response}");
    assert!(!notes.is_empty());
    assert_eq!(bridge.wait_exit().await, 0);
}

#[tokio::test]
async fn sigterm_stops_gracefully_and_fails_the_turn_in_flight() {
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let mut bridge = Bridge::start();
        let id = bridge
            .request("ask", json!({"prompt": "SLOW 1000 10"}))
            .await;
        let status = bridge
            .wait_status("the ask to run", |s| s["child"]["status"] == "busy")
            .await;
        let pid = child_pid(&status);
        unsafe { libc::kill(bridge.pid(), signal) };
        let (response, _) = bridge.response_for(&id).await;
        assert_eq!(
            error_code(&response),
            Some(-32004),
            "signal {signal}: {response}"
        );
        assert_eq!(bridge.wait_exit().await, 0, "signal {signal}");
        assert!(
            !process_alive(pid),
            "signal {signal}: child {pid} left behind"
        );
    }
}

#[tokio::test]
async fn a_child_that_ignores_sigterm_is_killed_on_stop() {
    let mut bridge = Bridge::start_with(
        Options::default()
            .env("DOUBLE_IGNORE_SIGTERM", "1")
            .args(&["--stop-grace-ms", "200"]),
    );
    let id = bridge.request("ask", json!({"prompt": "HANG"})).await;
    let status = bridge
        .wait_status("the ask to run", |s| s["child"]["status"] == "busy")
        .await;
    let pid = child_pid(&status);
    bridge.stdin = None;
    unsafe { libc::kill(bridge.pid(), libc::SIGTERM) };
    let (response, _) = bridge.response_for(&id).await;
    assert_eq!(error_code(&response), Some(-32004));
    assert_eq!(bridge.wait_exit().await, 0);
    assert!(!process_alive(pid));
}

#[tokio::test]
async fn sigkill_of_the_bridge_takes_the_child_with_it() {
    let mut bridge = Bridge::start();
    bridge.ask_ok("hello").await;
    let pid = child_pid(&bridge.status().await);
    unsafe { libc::kill(bridge.pid(), libc::SIGKILL) };
    bridge.wait_exit().await;
    assert!(
        wait_gone(pid, Duration::from_secs(10)).await,
        "child {pid} orphaned"
    );
}

#[tokio::test]
async fn identity_is_stable_across_bridge_restarts() {
    let mut first = Bridge::start();
    let id1 = first.status().await["identity"]["daemonId"].clone();
    assert_eq!(first.close_and_wait().await, 0);
    let dir = std::mem::replace(&mut first.dir, TempDir::new("unused"));
    let mut second = Bridge::start_with(Options {
        dir: Some(dir),
        ..Options::default()
    });
    let status = second.status().await;
    assert_eq!(status["identity"]["daemonId"], id1);
    let mode = std::fs::metadata(second.state_dir().join("identity.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(second.state_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[tokio::test]
async fn a_corrupt_identity_is_reported_and_replaced() {
    let dir = TempDir::new("corrupt");
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state/identity.json"), "{garbage").unwrap();
    let mut bridge = Bridge::start_with(Options {
        dir: Some(dir),
        ..Options::default()
    });
    let events = bridge.call("events", json!({"level": "warn"})).await;
    let corrupt = events["result"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "state.corrupt")
        .cloned();
    assert!(corrupt.is_some(), "{events}");
    assert_eq!(bridge.ask_ok("fine").await["ok"], true);
}

/// A turn that streams fast (a long answer's partial messages) reaches the client in
/// fewer, larger reads: claude-coded grows the pipe it writes to from 64 KiB to 1 MiB.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_pipe_to_the_client_is_grown_for_fast_streams() {
    use std::os::fd::AsRawFd;
    let mut bridge = Bridge::start();
    bridge.ask_ok("hello").await;
    let fd = bridge.stdout.get_ref().get_ref().as_raw_fd();
    // SAFETY: F_GETPIPE_SZ returns an int and touches no memory; `fd` is our open end.
    let size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    assert_eq!(size, 1 << 20);
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn events_jsonl_holds_one_event_per_line() {
    let mut bridge = Bridge::start();
    bridge.ask_ok("hello").await;
    assert_eq!(bridge.close_and_wait().await, 0);
    let path = bridge.state_dir().join("events.jsonl");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("event line is JSON"))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for kind in [
        "daemon.started",
        "child.started",
        "child.ready",
        "turn.started",
        "turn.finished",
        "daemon.stopping",
        "child.exited",
        "daemon.stopped",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    for event in &events {
        for field in ["seq", "createdAt", "level", "type", "message", "detail"] {
            assert!(event.get(field).is_some(), "{field} missing in {event}");
        }
    }
}

#[tokio::test]
async fn status_reports_identity_child_turn_queue_totals_and_config() {
    let mut bridge = Bridge::start();
    let status = bridge
        .wait_status("the child to warm up", |s| s["child"]["ready"] == true)
        .await;
    assert_eq!(status["identity"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(status["identity"]["daemonId"].as_str().is_some());
    assert_eq!(status["daemon"]["state"], "running");
    assert_eq!(status["daemon"]["pid"], bridge.pid());
    assert_eq!(status["child"]["status"], "ready");
    assert_eq!(status["child"]["cliVersion"], "2.1.332");
    assert!(status["child"]["readyAt"].as_str().is_some());
    assert_eq!(status["child"]["restartCount"], 0);
    assert_eq!(status["turn"], Value::Null);
    assert_eq!(status["queue"]["length"], 0);
    assert_eq!(status["config"]["queueSize"], 16);
    assert_eq!(status["config"]["turnTimeoutMs"], 300000);
    assert_eq!(
        status["daemon"]["stateDir"],
        bridge.state_dir().to_str().unwrap()
    );
    let id = bridge.request("ask", json!({"prompt": "SLOW 300 2"})).await;
    let busy = bridge
        .wait_status("a turn in flight", |s| {
            s["turn"]["messages"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(busy["child"]["status"], "busy");
    assert_eq!(busy["turn"]["promptPreview"], "SLOW 300 2");
    assert!(busy["turn"]["elapsedMs"].as_u64().is_some());
    assert_eq!(busy["turn"]["timeoutMs"], 300000);
    assert!(busy["child"]["sessionId"].as_str().is_some());
    bridge.response_for(&id).await;
    let after = bridge.status().await;
    assert_eq!(after["totals"]["asks"], 1);
    assert_eq!(after["totals"]["turnsOk"], 1);
    assert!(after["events"]["total"].as_u64().unwrap() >= 5);
    assert!(after.to_string().find("ANTHROPIC_API_KEY").is_none());
}

#[tokio::test]
async fn the_events_cursor_pages_without_gaps() {
    let mut bridge = Bridge::start_with(Options::default().args(&["--events-ring-size", "500"]));
    for i in 0..3 {
        bridge.ask_ok(&format!("ask {i}")).await;
    }
    let all = bridge.call("events", json!({"since": 0})).await["result"].clone();
    let total = all["events"].as_array().unwrap().len();
    let mut since = 0;
    let mut seen = Vec::new();
    loop {
        let page = bridge
            .call("events", json!({"since": since, "limit": 4}))
            .await["result"]
            .clone();
        seen.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        since = page["nextSeq"].as_u64().unwrap() - 1;
        if page["truncated"] == false {
            break;
        }
    }
    assert!(seen.len() >= total, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[1] > w[0]));
    let newer = bridge.call("events", json!({"since": since})).await["result"].clone();
    // Only events recorded by the calls above (none are: events and status record nothing).
    assert_eq!(newer["events"], json!([]));
    let warn = bridge.call("events", json!({"level": "warn"})).await["result"]["events"].clone();
    assert!(
        warn.as_array()
            .unwrap()
            .iter()
            .all(|e| e["level"] == "warn" || e["level"] == "error")
    );
}

#[tokio::test]
async fn the_ring_buffer_keeps_the_newest_events() {
    let mut bridge = Bridge::start_with(Options::default().args(&["--events-ring-size", "5"]));
    for prompt in ["one", "two", "three", "four", "five", "six"] {
        bridge.ask_ok(prompt).await;
    }
    let page = bridge.call("events", json!({})).await["result"].clone();
    let events = page["events"].as_array().unwrap();
    // Five of the lifecycle, and beside them (in a ring of their own) five turn steps.
    let steps = events.iter().filter(|e| e["type"] == "turn.step").count();
    assert_eq!((events.len() - steps, steps), (5, 5), "{events:#?}");
    assert!(
        events
            .windows(2)
            .all(|w| w[1]["seq"].as_u64() > w[0]["seq"].as_u64())
    );
    assert_eq!(page["oldestSeq"], events[0]["seq"]);
    assert_eq!(
        page["nextSeq"].as_u64().unwrap(),
        events[events.len() - 1]["seq"].as_u64().unwrap() + 1
    );
}

#[tokio::test]
async fn status_and_config_subcommands() {
    let mut bridge = Bridge::start();
    bridge.ask_ok("hello").await;
    assert_eq!(bridge.close_and_wait().await, 0);
    let state = bridge.state_dir();
    let out = std::process::Command::new(test_support::bridge())
        .args(["status", "--json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["daemon"]["state"], "stopped");
    assert_eq!(status["totals"]["turnsOk"], 1);
    let out = std::process::Command::new(test_support::bridge())
        .args(["status", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("child: stopped"), "{text}");
    assert!(text.contains("turns: 1 ok, 0 failed, 0 errors"), "{text}");
    assert!(
        text.contains(&format!("cwd: {}", bridge.cwd().display())),
        "{text}"
    );
    // A state file in another version's format is shown whole, with a word on why.
    let older = test_support::TempDir::new("older-state");
    std::fs::write(
        older.path().join("daemon-state.json"),
        r#"{"daemon":{"state":"stopped"},"child":{"status":"ready"}}"#,
    )
    .unwrap();
    let out = std::process::Command::new(test_support::bridge())
        .args(["status", "--state-dir"])
        .arg(older.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["child"]["status"], "ready");
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(why.contains("not in this version's status format"), "{why}");
    let out = std::process::Command::new(test_support::bridge())
        .args(["config", "--queue-size", "3", "--cwd"])
        .arg(bridge.cwd())
        .env("CLAUDE_CODED_TURN_TIMEOUT_MS", "1234")
        .output()
        .unwrap();
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["queueSize"], 3);
    assert_eq!(config["turnTimeoutMs"], 1234);
    assert_eq!(config["claudeBin"], "claude");
    let missing = std::process::Command::new(test_support::bridge())
        .args(["status", "--state-dir", "/nonexistent/cc"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no state"));
    // A state file that is a link (to another daemon's state, say) is not followed.
    let linked = test_support::TempDir::new("linked-state");
    std::os::unix::fs::symlink(
        state.join("daemon-state.json"),
        linked.path().join("daemon-state.json"),
    )
    .unwrap();
    let out = std::process::Command::new(test_support::bridge())
        .args(["status", "--state-dir"])
        .arg(linked.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("symbolic link"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = std::process::Command::new(test_support::bridge())
        .args(["--cwd", "/nonexistent/dir"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--cwd"));
}

#[tokio::test]
async fn claude_args_come_from_a_json_array_in_the_environment() {
    let dir = TempDir::new("cfg");
    let out = std::process::Command::new(test_support::bridge())
        .args(["config", "--cwd"])
        .arg(dir.path())
        .env(
            "CLAUDE_CODED_CLAUDE_ARGS",
            r#"["--append-system-prompt", "Be brief"]"#,
        )
        .output()
        .unwrap();
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        config["claudeArgs"],
        json!(["--append-system-prompt", "Be brief"])
    );
    let out = std::process::Command::new(test_support::bridge())
        .args(["config", "--cwd"])
        .arg(dir.path())
        .env("CLAUDE_CODED_CLAUDE_ARGS", "--oops")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JSON array"));
}

/// A bridge whose child runs a turn that ignores the interrupt and stdin EOF (HANG) and
/// SIGTERM (DOUBLE_IGNORE_SIGTERM): only the final SIGKILL ends it.
async fn bridge_with_a_child_that_ignores_everything(options: Options) -> (Bridge, Value, i32) {
    let mut bridge = Bridge::start_with(options.env("DOUBLE_IGNORE_SIGTERM", "1"));
    let id = bridge.request("ask", json!({"prompt": "HANG"})).await;
    let status = bridge
        .wait_status("the ask to run", |s| s["child"]["status"] == "busy")
        .await;
    let pid = child_pid(&status);
    (bridge, id, pid)
}

#[tokio::test]
async fn a_stop_on_sigterm_ends_a_child_that_ignores_everything() {
    // Default grace periods: a signal skips them (the time is in `cargo bench --bench
    // mcp_startup`); the test checks the outcome, with the harness's generous deadline.
    let (mut bridge, id, pid) =
        bridge_with_a_child_that_ignores_everything(Options::default()).await;
    unsafe { libc::kill(bridge.pid(), libc::SIGTERM) };
    let (response, _) = bridge.response_for(&id).await;
    assert_eq!(error_code(&response), Some(-32004));
    assert_eq!(bridge.wait_exit().await, 0);
    assert!(!process_alive(pid));
}
