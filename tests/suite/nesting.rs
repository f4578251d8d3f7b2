//! Nesting is bounded by construction: claude-coded tells its child how deep it runs, a
//! nested claude-coded at the limit serves the protocol but starts no Claude Code, one
//! below a raised limit starts its child only when first asked, and fails fast with the
//! child's stderr when it cannot start.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::{Bridge, Options, error_code};

/// The environment of a running process, as `KEY=VALUE` strings.
fn environ(pid: i64) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_else(|err| panic!("cannot read the environment of pid {pid}: {err}"));
    raw.split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// A script in `dir` that runs claude-coded under a guard (as claude-coded starts every
/// child) whose `argv[0]` is `argv0`.
fn under_a_guard(dir: &std::path::Path, argv0: &str) -> std::path::PathBuf {
    let wrapper = dir.join("under-a-guard.sh");
    let script = format!(
        "#!/bin/bash\nexec -a {argv0} {bridge} __guard {bridge} \"$@\"\n",
        bridge = test_support::bridge().display()
    );
    std::fs::write(&wrapper, script).expect("write wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod wrapper");
    wrapper
}

fn nested(depth: &str, limit: &str) -> Options {
    Options::default()
        .env("CLAUDE_CODED_DEPTH", depth)
        .env("CLAUDE_CODED_DEPTH_LIMIT", limit)
}

#[tokio::test]
async fn a_top_level_server_tells_its_child_how_deep_it_runs() {
    let mut bridge = Bridge::start();
    let status = bridge
        .wait_status("a ready child", |s| s["child"]["ready"] == true)
        .await;
    assert_eq!(status["daemon"]["nesting"], json!({"depth": 0, "limit": 1}));
    let env = environ(status["child"]["pid"].as_i64().expect("child pid"));
    assert!(env.contains(&"CLAUDE_CODED_DEPTH=1".to_string()), "{env:?}");
    assert!(
        env.contains(&"CLAUDE_CODED_DEPTH_LIMIT=1".to_string()),
        "{env:?}"
    );
}

#[tokio::test]
async fn a_server_at_the_limit_refuses_asks_at_once_and_starts_no_child() {
    let mut bridge = Bridge::start_with(nested("1", "1"));
    let response = bridge.call("ask", json!({"prompt": "hello"})).await;
    assert_eq!(error_code(&response), Some(-32009), "{response}");
    let message = response["error"]["message"].as_str().expect("message");
    assert!(message.contains("--max-depth"), "{message}");
    assert_eq!(response["error"]["data"]["kind"], "nestingLimit");
    // A ping's answer comes after anything the refused ask could have started.
    bridge.call("ping", json!({})).await;
    let status = bridge.status().await;
    assert_eq!(status["child"]["status"], "idle", "{status}");
    assert_eq!(status["child"]["pid"], Value::Null, "{status}");
    assert_eq!(status["daemon"]["nesting"], json!({"depth": 1, "limit": 1}));
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn a_nested_server_cannot_raise_the_limit_it_inherited() {
    let mut bridge =
        Bridge::start_with(nested("1", "1").args(&["--max-depth", "5", "--surface", "plain"]));
    let response = bridge.call("ask", json!({"prompt": "hello"})).await;
    assert_eq!(error_code(&response), Some(-32009), "{response}");
}

#[tokio::test]
async fn a_reset_depth_variable_does_not_hide_the_guard_above() {
    // Started under a guard (as claude-coded starts every child) with the variables
    // claiming the top level, as an MCP config's `env` could: the guard counts.
    let dir = test_support::TempDir::new("reset");
    let mut options = nested("0", "1").args(&["--surface", "plain"]);
    options.bridge = Some(under_a_guard(dir.path(), "claude-coded"));
    let mut bridge = Bridge::start_with(options.dir(dir));
    let response = bridge.call("ask", json!({"prompt": "hello"})).await;
    assert_eq!(error_code(&response), Some(-32009), "{response}");
    let status = bridge.status().await;
    assert_eq!(status["daemon"]["nesting"]["depth"], 1, "{status}");
}

/// An agent (its Bash, or an MCP config's `env`) overwrote `CLAUDE_CODED_DEPTH_LIMIT`
/// and passed `--max-depth`: the limit rose. The guard above carries the limit in its
/// own command line, which nothing below it can rewrite.
#[tokio::test]
async fn an_agent_cannot_raise_the_limit_by_rewriting_the_variable_and_max_depth() {
    let dir = test_support::TempDir::new("raise");
    let mut options = nested("1", "3").args(&["--max-depth", "3", "--surface", "plain"]);
    options.bridge = Some(under_a_guard(dir.path(), "claude-coded:limit=1"));
    let mut bridge = Bridge::start_with(options.dir(dir));
    let response = bridge.call("ask", json!({"prompt": "hello"})).await;
    assert_eq!(error_code(&response), Some(-32009), "{response}");
    let status = bridge.status().await;
    assert_eq!(
        status["daemon"]["nesting"],
        json!({"depth": 1, "limit": 1}),
        "{status}"
    );
}

#[tokio::test]
async fn a_nested_server_below_a_raised_limit_starts_its_child_on_the_first_ask() {
    let mut bridge = Bridge::start_with(nested("1", "2").args(&["--max-depth", "2"]));
    // Unused, it costs no Claude Code: the child waits for the first ask.
    bridge.call("ping", json!({})).await;
    let status = bridge.status().await;
    assert_eq!(status["child"]["status"], "idle", "{status}");
    assert_eq!(bridge.ask_ok("hello").await["ok"], true);
    let status = bridge.status().await;
    assert_eq!(status["child"]["status"], "ready", "{status}");
    let env = environ(status["child"]["pid"].as_i64().expect("child pid"));
    assert!(env.contains(&"CLAUDE_CODED_DEPTH=2".to_string()), "{env:?}");
    assert!(
        env.contains(&"CLAUDE_CODED_DEPTH_LIMIT=2".to_string()),
        "{env:?}"
    );
}

#[tokio::test]
async fn the_mcp_ask_tool_names_the_limit_when_nested() {
    let mut bridge = Bridge::start_with(nested("1", "1"));
    let params = json!({ "protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": { "name": "nesting", "version": "1" } });
    bridge.call("initialize", params).await;
    let params = json!({ "name": "ask", "arguments": { "prompt": "hello" } });
    let response = bridge.call("tools/call", params).await;
    assert_eq!(response["result"]["isError"], true, "{response}");
    let text = response["result"]["content"][0]["text"]
        .as_str()
        .expect("text");
    assert!(
        text.contains("-32009") && text.contains("--max-depth"),
        "{text}"
    );
    let params = json!({ "name": "status", "arguments": {} });
    let status = bridge.call("tools/call", params).await;
    let report = &status["result"]["structuredContent"];
    assert_eq!(
        report["nesting"],
        json!({"depth": 1, "limit": 1}),
        "{status}"
    );
    assert_eq!(report["state"], "idle", "{status}");
}

#[tokio::test]
async fn an_ask_to_a_child_that_cannot_start_fails_fast_with_its_stderr() {
    // Every start crashes; backoff is long, so only the fail-fast rule can answer quickly.
    let mut bridge = Bridge::start_with(
        Options::default()
            .args(&["--backoff-initial-ms", "30000", "--surface", "plain"])
            .env("DOUBLE_STARTUP", "crash"),
    );
    bridge
        .wait_status("the first failed start", |s| {
            s["child"]["status"] == "backoff"
        })
        .await;
    let asked = Instant::now();
    let response = bridge.call("ask", json!({"prompt": "hello"})).await;
    let waited = asked.elapsed();
    assert_eq!(error_code(&response), Some(-32003), "{response}");
    let tail = response["error"]["data"]["stderrTail"].to_string();
    assert!(tail.contains("startup crash requested"), "{response}");
    let message = response["error"]["message"].as_str().expect("message");
    assert!(message.contains("next start is due"), "{message}");
    // Not a stopwatch: the ask was answered without waiting out the 30 s backoff.
    assert!(waited < Duration::from_secs(20), "waited {waited:?}");
}

#[tokio::test]
async fn an_ask_waiting_for_a_first_start_that_fails_gets_the_failure() {
    let mut bridge = Bridge::start_with(
        Options::default()
            .args(&["--backoff-initial-ms", "30000", "--surface", "plain"])
            .env("DOUBLE_STARTUP", "crash")
            .env("DOUBLE_INIT_DELAY_MS", "200"),
    );
    let response = bridge.call("ask", json!({"prompt": "hello"})).await;
    assert_eq!(error_code(&response), Some(-32003), "{response}");
    let tail = response["error"]["data"]["stderrTail"].to_string();
    assert!(tail.contains("startup crash requested"), "{response}");
}
