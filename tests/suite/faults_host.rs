//! Faults around the bridge: several daemons for one project, a state directory that
//! cannot be used, secrets in the environment, and the event log's size.

use std::process::Stdio;

use serde_json::{Value, json};
use test_support::{Bridge, Options, TempDir};

#[tokio::test]
async fn two_daemons_for_one_project_take_separate_instances() {
    let shared = TempDir::new("instances");
    let state = shared.path().join("state");
    let state_arg = state.to_str().unwrap().to_string();
    let mut first = Bridge::start_with(Options::default().args(&["--state-dir", &state_arg]));
    // The first must hold its lock before the second starts, or they may swap numbers.
    let a = first.status().await;
    let mut second = Bridge::start_with(Options::default().args(&["--state-dir", &state_arg]));
    let b = second.status().await;
    assert_eq!(a["daemon"]["instance"], 1);
    assert_eq!(b["daemon"]["instance"], 2);
    assert_ne!(a["identity"]["daemonId"], b["identity"]["daemonId"]);
    assert_ne!(a["daemon"]["stateDir"], b["daemon"]["stateDir"]);
    // Both serve and write their own logs, whole lines only.
    first.ask_ok("one").await;
    second.ask_ok("two").await;
    assert_eq!(first.close_and_wait().await, 0);
    assert_eq!(second.close_and_wait().await, 0);
    for dir in [state.clone(), state.join("instances/2")] {
        let log = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
        assert!(
            log.lines()
                .all(|l| serde_json::from_str::<Value>(l).is_ok())
        );
        let saved: Value =
            serde_json::from_slice(&std::fs::read(dir.join("daemon-state.json")).unwrap()).unwrap();
        assert_eq!(saved["daemon"]["state"], "stopped");
    }
    // The lock went with the first daemon: a new one is instance 1 again, same identity.
    let mut third = Bridge::start_with(Options::default().args(&["--state-dir", &state_arg]));
    let c = third.status().await;
    assert_eq!(c["daemon"]["instance"], 1);
    assert_eq!(c["identity"]["daemonId"], a["identity"]["daemonId"]);
}

#[tokio::test]
async fn an_unusable_state_dir_is_reported_and_serving_goes_on() {
    let dir = TempDir::new("nostate");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let bad = file.join("state");
    let mut bridge =
        Bridge::start_with(Options::default().args(&["--state-dir", bad.to_str().unwrap()]));
    assert_eq!(bridge.ask_ok("still works").await["ok"], true);
    let status = bridge.status().await;
    assert_eq!(status["daemon"]["stateDir"], Value::Null);
    assert!(
        status["daemon"]["stateError"]
            .as_str()
            .unwrap()
            .contains("cannot create state directory")
    );
    let events = bridge.call("events", json!({"level": "error"})).await["result"]["events"].clone();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "state.unavailable"),
        "{events}"
    );
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn secrets_never_reach_status_events_logs_or_errors() {
    const KEY: &str = "sk-ant-fake-0123456789abcdef";
    let dir = TempDir::new("secret");
    let state = dir.path().join("state");
    let cwd = dir.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let mut child = tokio::process::Command::new(test_support::bridge())
        .arg("--claude-bin")
        .arg(test_support::double())
        .arg("--state-dir")
        .arg(&state)
        .arg("--cwd")
        .arg(&cwd)
        .args(["--claude-arg", &format!("--api-key={KEY}")])
        .env("ANTHROPIC_API_KEY", KEY)
        .env("RUST_LOG", "claude_coded=debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    use tokio::io::AsyncWriteExt;
    let lines = [
        json!({"jsonrpc":"2.0","id":1,"method":"ask","params":{"prompt":"LEAK ANTHROPIC_API_KEY"}}),
        json!({"jsonrpc":"2.0","id":2,"method":"ask","params":{"prompt":"CRASH 4"}}),
        json!({"jsonrpc":"2.0","id":3,"method":"status"}),
        json!({"jsonrpc":"2.0","id":4,"method":"events","params":{"limit":1000}}),
    ];
    for line in lines {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    drop(stdin);
    let output = tokio::time::timeout(test_support::READ_TIMEOUT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The double did leak it: its stderr was recorded, masked.
    assert!(
        stdout.contains("[REDACTED]") || stderr.contains("[REDACTED]"),
        "no masked leak seen"
    );
    // The ask's own stream (the child's messages) is content, not a record: check the records.
    let records: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| [2, 3, 4].contains(&m["id"].as_i64().unwrap_or(0)))
        .collect();
    assert_eq!(records.len(), 3, "{stdout}");
    for record in &records {
        assert!(!record.to_string().contains(KEY), "secret in {record}");
    }
    assert!(!stderr.contains(KEY), "secret in the bridge's log");
    for file in ["events.jsonl", "daemon-state.json", "identity.json"] {
        let text = std::fs::read_to_string(state.join(file)).unwrap();
        assert!(!text.contains(KEY), "secret in {file}");
    }
}

#[tokio::test]
async fn the_event_log_rotates_by_size() {
    let mut bridge = Bridge::start_with(Options::default().args(&[
        "--event-log-max-bytes",
        "2000",
        "--event-log-keep",
        "2",
    ]));
    for i in 0..10 {
        bridge.ask_ok(&format!("ask {i}")).await;
    }
    assert_eq!(bridge.close_and_wait().await, 0);
    let state = bridge.state_dir();
    let mut names: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("events.jsonl"))
        .collect();
    names.sort();
    assert_eq!(names, ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]);
    for name in names {
        let len = std::fs::metadata(state.join(&name)).unwrap().len();
        assert!(len <= 2000, "{name}: {len} bytes");
    }
}

/// A host killed mid-ask (Codex escalates SIGTERM to SIGKILL in 24 ms) closes our stdin
/// and stdout at once. A turn that streams nothing (an MCP call with no progress token)
/// used to run to its end, since nothing was written that could fail; now the closed
/// stdout is noticed, the turn stops and claude-coded exits.
#[tokio::test]
async fn a_host_killed_mid_ask_stops_its_turn_at_once() {
    let bridge = Bridge::start();
    let state = bridge.state_dir();
    let test_support::Bridge {
        mut child,
        stdin,
        mut stdout,
        dir: _dir,
        ..
    } = bridge;
    let mut stdin = stdin.unwrap();
    use tokio::io::AsyncWriteExt;
    let lines = [
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"killed-host","version":"0"}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        // 40 s of turn unless it is stopped; no progress token, so nothing is written.
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ask","arguments":{"prompt":"SLOW 1000 40"}}}),
    ];
    for line in lines {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    let initialized = tokio::time::timeout(test_support::READ_TIMEOUT, stdout.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(initialized.contains("\"id\":1"), "{initialized}");
    // The CLI's pid, once its turn runs (from the state file the daemon keeps).
    let deadline = tokio::time::Instant::now() + test_support::READ_TIMEOUT;
    let cli_pid = loop {
        let saved: Option<Value> = std::fs::read(state.join("daemon-state.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        if let Some(saved) = saved
            && saved["turn"].is_object()
            && let Some(pid) = saved["child"]["pid"].as_i64()
        {
            break pid as i32;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the turn never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let killed = std::time::Instant::now();
    drop(stdin);
    drop(stdout);
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("claude-coded went on serving a host that is gone")
        .unwrap();
    assert!(
        test_support::bridge::wait_gone(cli_pid, std::time::Duration::from_secs(5)).await,
        "the CLI (pid {cli_pid}) outlived claude-coded"
    );
    // Well before the 40 s the turn would have taken.
    assert!(
        killed.elapsed() < std::time::Duration::from_secs(10),
        "{status:?}"
    );
}

/// Gemini CLI pipes a server's stderr and reads it only with `--debug`. Once the pipe
/// was full (~64 KB), a log write blocked and claude-coded stopped answering (at debug
/// level within a few asks). Now lines are dropped and counted instead.
#[tokio::test]
async fn a_host_that_never_reads_stderr_is_still_answered() {
    let mut bridge = Bridge::start_with(Options {
        stderr_unread: true,
        ..Options::default().env("RUST_LOG", "debug")
    });
    // Each ask logs ~340 bytes at debug level: ask until the pipe (~64 KB) and our
    // queue are full and lines are being dropped; every ask must still be answered.
    let mut dropped = 0;
    for n in 0..3000 {
        let asked = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            bridge.ask_ok(&format!("ask {n}")),
        )
        .await
        .unwrap_or_else(|_| panic!("ask {n} hung: a log write blocked the server"));
        assert_eq!(asked["ok"], true);
        if n % 100 == 99 {
            dropped = bridge.status().await["daemon"]["logLinesDropped"]
                .as_u64()
                .unwrap();
            if dropped > 0 {
                break;
            }
        }
    }
    assert!(dropped > 0, "stderr never filled up");
    assert_eq!(bridge.close_and_wait().await, 0);
}
