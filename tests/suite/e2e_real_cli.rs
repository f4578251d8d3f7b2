//! End to end with the real Claude Code CLI as claude-coded's child, offline.
//!
//! The pinned CLI (`scripts/install-claude-cli.sh` installs it and prints its path) talks
//! to the mock Messages API of `crates/mock-api` on 127.0.0.1: no internet, no
//! API key. Run:
//!
//! ```sh
//! CLAUDE_BIN=$(scripts/install-claude-cli.sh) cargo test --test all e2e_real_cli::
//! ```
//!
//! Built without `CLAUDE_BIN` the tests are ignored, with the reason (see `build.rs`), so
//! a skip never counts as a pass; under `CI=true` or `CI=1` the test
//! `in_ci_the_real_cli_tests_are_built_to_run` fails then (CI must not go green by
//! skipping).
//!
//! Every test gets its own mock, HOME, cwd, TMPDIR and state dir; claude-coded starts
//! with a cleared environment plus the variables that keep the CLI on loopback, and
//! passes it on to the child. The tests run one at a time, and not beside those of
//! `e2e_real_host` (`test_support::real_cli::one_real_cli`): the CLI takes ~0.5 s and
//! ~200 MB to start, and the warm-latency check must not share two cores with another CLI
//! starting.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mock_api::MockApi;
use serde_json::{Value, json};
use test_support::mcp::{Connect, McpBridge, call_result, structured, texts};
use test_support::real_cli::{
    Real, kill, offline_env_in, processes_with_home, wait_for_session_file, wait_sandbox_idle,
    wait_streaming,
};
use test_support::{
    Bridge, Options, READ_TIMEOUT, TempDir, error_code, proc_info, process_alive, wait_gone,
};
use tokio::sync::MutexGuard;

/// The pinned CLI version; `install-claude-cli.sh` installs exactly this one.
const CLI_VERSION: &str = "2.1.332";

fn claude_bin() -> String {
    test_support::real_cli_bin().display().to_string()
}

#[test]
fn in_ci_the_real_cli_tests_are_built_to_run() {
    test_support::assert_real_cli_tests_run_in_ci(cfg!(real_cli));
}

/// Types (`type` or `type/subtype`) of the `ask/event` notifications, in order.
fn note_kinds(notes: &[Value]) -> Vec<String> {
    notes
        .iter()
        .filter(|n| n["method"] == "ask/event")
        .map(|n| match n["params"]["subtype"].as_str() {
            Some(sub) => format!("{}/{sub}", n["params"]["type"].as_str().unwrap_or("?")),
            None => n["params"]["type"].as_str().unwrap_or("?").to_string(),
        })
        .collect()
}

fn is_uuid(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

fn approx(value: &Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 1e-9)
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn ask_round_trip_returns_the_real_result_line_with_session_cost_and_usage() {
    let mut real = Real::start().await;
    let status = real.ready().await;
    // The warm-up `initialize` answered with the CLI's version before any ask.
    assert_eq!(status["child"]["cliVersion"], CLI_VERSION, "{status}");
    assert_eq!(status["child"]["status"], "ready");

    let id = real.bridge.request("ask", json!({"prompt": "hello"})).await;
    let (response, notes) = real.bridge.response_for(&id).await;
    let result = &response["result"];
    assert_eq!(result["ok"], true, "{response}");
    assert_eq!(result["result"], "mock reply #1 to: hello");
    assert_eq!(result["subtype"], "success");
    assert_eq!(result["isError"], false);
    assert_eq!(result["terminalReason"], "completed");
    assert_eq!(result["stopReason"], "end_turn");
    assert_eq!(result["numTurns"], 1);
    assert!(is_uuid(&result["sessionId"]), "{result}");
    // The mock's default usage (10 in, 5 out) priced by the pinned CLI.
    assert!(approx(&result["costUsd"], 0.00014), "{result}");
    assert!(approx(&result["sessionCostUsd"], 0.00014), "{result}");
    assert_eq!(result["usage"]["input_tokens"], 10);
    assert_eq!(result["usage"]["output_tokens"], 5);
    assert_eq!(result["permissionDenials"], json!([]));
    assert_eq!(result["raw"]["type"], "result");
    assert_eq!(result["raw"]["session_id"], result["sessionId"]);
    assert!(result["raw"]["modelUsage"].is_object(), "{result}");

    // Every line of the turn was streamed, from system/init to the result.
    let kinds = note_kinds(&notes);
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("system/init"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("result/success"),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "assistant"), "{kinds:?}");
    assert_eq!(result["messages"], notes.len());
    let init = &notes[0]["params"]["message"];
    assert_eq!(init["session_id"], result["sessionId"]);
    assert_eq!(init["claude_code_version"], CLI_VERSION);
    assert_eq!(
        Path::new(init["cwd"].as_str().expect("init cwd")),
        real.bridge.cwd()
    );

    let status = real.bridge.status().await;
    assert_eq!(status["child"]["sessionId"], result["sessionId"]);
    assert_eq!(status["totals"]["turnsOk"], 1);
    assert!(approx(&status["totals"]["costUsd"], 0.00014), "{status}");

    // The CLI reached the mock, and only the mock, with the test key.
    let requests = real.mock.messages_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].query.as_deref(), Some("beta=true"));
    assert_eq!(requests[0].header("x-api-key"), Some("test-key"));
    assert_eq!(requests[0].body["stream"], true);
    assert_eq!(requests[0].prompt(), "hello");
    assert_eq!(real.bridge.close_and_wait().await, 0);
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn usage_numbers_flow_into_per_turn_cost_and_the_totals() {
    let mut real = Real::start().await;
    let first = real.bridge.ask_ok("USAGE 1234 567").await;
    assert_eq!(first["usage"]["input_tokens"], 1234);
    assert_eq!(first["usage"]["output_tokens"], 567);
    // The pinned CLI prices the mock's model at $4 / $20 per million tokens.
    assert!(approx(&first["costUsd"], 0.016276), "{first}");
    let second = real.bridge.ask_ok("hello").await;
    // The CLI reports a running total per process; each answer carries its own turn.
    assert!(approx(&second["sessionCostUsd"], 0.016416), "{second}");
    assert!(approx(&second["costUsd"], 0.00014), "{second}");
    let totals = real.bridge.status().await["totals"].clone();
    assert_eq!(totals["turnsOk"], 2);
    assert_eq!(totals["inputTokens"], 1244);
    assert_eq!(totals["outputTokens"], 572);
    assert!(approx(&totals["costUsd"], 0.016416), "{totals}");
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn two_asks_share_one_process_and_session_and_the_second_is_warm() {
    let mut real = Real::start().await;
    real.ready().await;
    let pid = real.child_pid().await;
    let started = Instant::now();
    let first = real.bridge.ask_ok("one").await;
    let first_took = started.elapsed();
    let started = Instant::now();
    let second = real.bridge.ask_ok("two").await;
    let second_took = started.elapsed();
    eprintln!("real CLI via claude-coded: first ask {first_took:?}, second ask {second_took:?}");
    assert_eq!(first["sessionId"], second["sessionId"]);
    assert_eq!(second["result"], "mock reply #2 to: two");
    // The second turn's request carries the first exchange: the same conversation.
    let requests = real.mock.messages_requests();
    let messages = requests[1].body["messages"].to_string();
    assert!(messages.contains("mock reply #1 to: one"), "{messages}");
    let status = real.bridge.status().await;
    assert_eq!(status["child"]["pid"], json!(pid));
    assert_eq!(status["child"]["restartCount"], 0);
    // How fast a warm turn is belongs to `cargo bench --bench real_cli_latency`; here the
    // proof of warmth is one process and one `child.started`.
    let started: Vec<Value> = real
        .events()
        .await
        .into_iter()
        .filter(|e| e["type"] == "child.started")
        .collect();
    assert_eq!(started.len(), 1, "{started:?}");
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn the_real_clis_text_deltas_reach_only_the_ask_that_asked_for_partial_messages() {
    let mut real = Real::start().await;
    real.ready().await;
    let prompt = "SLOW ms=50 chunks=3";
    let id = real
        .bridge
        .request("ask", json!({"prompt": prompt, "partialMessages": true}))
        .await;
    let (watched, notes) = real.bridge.response_for(&id).await;
    assert_eq!(watched["result"]["ok"], true, "{watched}");
    assert_eq!(watched["result"]["messages"], notes.len());
    let deltas: String = notes
        .iter()
        .map(|n| &n["params"]["message"])
        .filter(|m| m["type"] == "stream_event" && m["parent_tool_use_id"].is_null())
        .filter(|m| m["event"]["delta"]["type"] == "text_delta")
        .filter_map(|m| m["event"]["delta"]["text"].as_str())
        .collect();
    let answer = watched["result"]["result"].as_str().unwrap_or_default();
    assert!(
        !answer.is_empty() && deltas.ends_with(answer),
        "{deltas:?} vs {answer:?}"
    );

    // The same turn for an ask that did not ask: the lines it got without the flag.
    let id = real.bridge.request("ask", json!({"prompt": prompt})).await;
    let (plain, notes) = real.bridge.response_for(&id).await;
    assert_eq!(plain["result"]["ok"], true, "{plain}");
    assert_eq!(plain["result"]["messages"], notes.len());
    let kinds = note_kinds(&notes);
    assert!(
        kinds
            .iter()
            .all(|k| k != "stream_event" && k != "system/status"),
        "{kinds:?}"
    );
    assert_eq!(kinds.first().map(String::as_str), Some("system/init"));
    assert_eq!(real.bridge.close_and_wait().await, 0);
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn a_timeout_during_a_slow_stream_interrupts_and_the_child_keeps_its_session() {
    let mut real = Real::start().await;
    let before = real.bridge.ask_ok("warm up").await;
    let pid = real.child_pid().await;
    // ~30 s of stream; the timeout fires after the first block was printed.
    let started = Instant::now();
    let id = real
        .bridge
        .request(
            "ask",
            json!({"prompt": "SLOW ms=300 chunks=100", "timeoutMs": 1000}),
        )
        .await;
    let (response, notes) = real.bridge.response_for(&id).await;
    let waited = started.elapsed();
    assert_eq!(error_code(&response), Some(-32001), "{response}");
    assert_eq!(response["error"]["data"]["timeoutMs"], 1000);
    assert!(
        waited < Duration::from_secs(15),
        "timeout answered after {waited:?}"
    );
    assert!(
        note_kinds(&notes).iter().any(|k| k == "assistant"),
        "the stream had started: {notes:?}"
    );

    // The interrupt ends the turn with the CLI's aborted result, well before the stream would.
    let finished = real.wait_event("turn.abandoned.finished").await;
    assert_eq!(finished["detail"]["subtype"], "error_during_execution");
    assert_eq!(finished["detail"]["terminalReason"], "aborted_streaming");
    assert_eq!(finished["detail"]["ok"], false);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "aborted after {:?}",
        started.elapsed()
    );
    // The API side of an interrupt: the CLI dropped the slow stream.
    let deadline = Instant::now() + Duration::from_secs(5);
    while real.mock.aborted_streams() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(real.mock.aborted_streams(), 1);
    let status = real.bridge.status().await;
    assert_eq!(status["child"]["status"], "ready", "{status}");
    assert_eq!(status["turn"], Value::Null);

    let after = real.bridge.ask_ok("after the interrupt").await;
    assert_eq!(after["ok"], true, "{after}");
    assert_eq!(after["sessionId"], before["sessionId"]);
    let status = real.bridge.status().await;
    assert_eq!(status["child"]["pid"], json!(pid));
    assert_eq!(status["child"]["restartCount"], 0);
    assert_eq!(status["totals"]["asksErrored"], 1);
    let kinds: Vec<Value> = real
        .events()
        .await
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert!(kinds.contains(&json!("turn.timeout")), "{kinds:?}");
    assert!(!kinds.contains(&json!("child.killing")), "{kinds:?}");
}

/// Rounds of an ask abandoned the moment it is sent (issue 9: 4 of 20 got the child killed).
const START_ROUNDS: usize = 12;

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn a_timeout_as_the_turn_starts_interrupts_it_without_killing_the_child() {
    let mut real = Real::start().await;
    real.bridge.ask_ok("warm up").await;
    let pid = real.child_pid().await;
    for _ in 0..START_ROUNDS {
        // 30 s of stream, abandoned after 1 ms.
        let ask = json!({"prompt": "SLOW ms=1000 chunks=30", "timeoutMs": 1});
        let response = real.bridge.call("ask", ask).await;
        assert_eq!(error_code(&response), Some(-32001), "{response}");
        real.bridge
            .wait_status("the abandoned turn to end", |s| {
                s["turn"].is_null() && s["child"]["ready"] == true
            })
            .await;
    }
    // Each turn ended at an interrupt (within the wait, far short of its 30 s), never by
    // a kill after the grace period.
    let status = real.bridge.status().await;
    assert_eq!(status["child"]["pid"], json!(pid), "{status}");
    assert_eq!(status["child"]["restartCount"], 0, "{status}");
    let events = real.events().await;
    let kinds: Vec<&Value> = events.iter().map(|e| &e["type"]).collect();
    assert!(!kinds.contains(&&json!("child.killing")), "{kinds:?}");
    let aborted = events
        .iter()
        .filter(|e| e["type"] == "turn.abandoned.finished")
        .filter(|e| e["detail"]["subtype"] == "error_during_execution")
        .count();
    assert!(
        aborted > 0,
        "no interrupted turn among the events: {kinds:?}"
    );
    assert_eq!(real.bridge.ask_ok("after the rounds").await["ok"], true);
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn sigkill_of_the_cli_mid_turn_fails_the_ask_then_the_restarted_cli_continues_the_session() {
    let mut real = Real::start().await;
    let before = real.bridge.ask_ok("remember the word banana").await;
    let session = before["sessionId"]
        .as_str()
        .expect("session id")
        .to_string();
    // The CLI writes its session file lazily; `--resume` needs it (see the next test).
    wait_for_session_file(&real.home, &session).await;
    let (old_pid, old_cli) = real.pids().await;
    let id = real
        .bridge
        .request("ask", json!({"prompt": "SLOW ms=200 chunks=50"}))
        .await;
    wait_streaming(&mut real.bridge, &id).await;
    kill(old_cli);
    // Answered with the exit itself: without it, only the 20 s read deadline would end this.
    let (response, _) = real.bridge.response_for(&id).await;
    assert_eq!(error_code(&response), Some(-32002), "{response}");
    assert_eq!(response["error"]["data"]["signal"], 9, "{response}");
    assert!(wait_gone(old_cli, Duration::from_secs(5)).await);
    assert!(wait_gone(old_pid, Duration::from_secs(5)).await);

    let status = real
        .bridge
        .wait_status("the child to be restarted", |s| {
            s["child"]["restartCount"] == 1 && s["child"]["ready"] == true
        })
        .await;
    assert_eq!(status["child"]["signal"], 9, "{status}");
    assert_ne!(status["child"]["pid"], json!(old_pid));
    assert_eq!(status["child"]["cliVersion"], CLI_VERSION);
    let after = real.bridge.ask_ok("what was the word?").await;
    assert_eq!(after["ok"], true, "{after}");
    let status = real.bridge.status().await;
    assert_eq!(status["child"]["sessionId"], after["sessionId"]);
    assert_eq!(status["totals"]["asksErrored"], 1);
    // Restarted with `--resume` (the default): the real CLI really continued the
    // conversation, so the model saw the turn from before the crash.
    assert_eq!(status["child"]["resumedFrom"], json!(session), "{status}");
    assert_eq!(after["sessionId"], json!(session));
    let last = real.mock.messages_requests().pop().expect("a request");
    let history = last.body["messages"].to_string();
    assert!(history.contains("remember the word banana"), "{history}");
    assert!(history.contains("mock reply #1 to: remember"), "{history}");
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn a_session_the_restarted_cli_cannot_resume_falls_back_to_a_fresh_one() {
    let mut real = Real::start().await;
    // A finished turn: the CLI has saved the session, so a restart will try to resume it.
    let first = real.bridge.ask_ok("remember banana").await;
    let lost = first["sessionId"].clone();
    let (_, old_cli) = real.pids().await;
    let id = real
        .bridge
        .request("ask", json!({"prompt": "SLOW ms=200 chunks=50"}))
        .await;
    wait_streaming(&mut real.bridge, &id).await;
    // Without its session files the restarted CLI cannot resume (it exits 1 before ready).
    std::fs::remove_dir_all(real.home.join(".claude/projects")).expect("remove sessions");
    kill(old_cli);
    let (response, _) = real.bridge.response_for(&id).await;
    assert_eq!(error_code(&response), Some(-32002), "{response}");

    let after = real.bridge.ask_ok("after the lost session").await;
    assert_eq!(after["ok"], true, "{after}");
    assert!(is_uuid(&after["sessionId"]), "{after}");
    assert_ne!(after["sessionId"], lost);
    let failed = real.wait_event("child.resume.failed").await;
    assert_eq!(failed["detail"]["sessionId"], lost, "{failed}");
    let status = real.bridge.status().await;
    assert_eq!(status["child"]["resumedFrom"], Value::Null, "{status}");
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn a_cli_killed_in_its_first_turn_restarts_without_resuming() {
    let mut real = Real::start().await;
    real.ready().await;
    let (_, old_cli) = real.pids().await;
    let id = real
        .bridge
        .request("ask", json!({"prompt": "SLOW ms=200 chunks=50"}))
        .await;
    wait_streaming(&mut real.bridge, &id).await;
    kill(old_cli);
    let (response, _) = real.bridge.response_for(&id).await;
    assert_eq!(error_code(&response), Some(-32002), "{response}");
    // Nothing was saved yet: the next child starts a new session at once, no failed resume.
    let after = real.bridge.ask_ok("fresh start").await;
    assert_eq!(after["ok"], true, "{after}");
    let events = real.events().await;
    assert!(
        !events.iter().any(|e| e["type"] == "child.resume.failed"),
        "{events:?}"
    );
    assert_eq!(
        real.bridge.status().await["child"]["resumedFrom"],
        Value::Null
    );
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn a_bash_tool_process_that_left_the_group_does_not_outlive_claude_coded() {
    a_bash_tool_process_that_left_the_group_does_not_outlive(Guard::Linux).await;
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn a_bash_tool_process_that_left_the_group_does_not_outlive_claude_coded_found_by_its_mark() {
    a_bash_tool_process_that_left_the_group_does_not_outlive(Guard::Portable).await;
}

/// The guard's mechanisms a test runs under: Linux's own, or the portable ones macOS
/// runs (see `src/platform`).
#[derive(Clone, Copy)]
enum Guard {
    Linux,
    Portable,
}

impl Guard {
    fn options(self, options: Options) -> Options {
        match self {
            Guard::Linux => options,
            Guard::Portable => options.env(claude_coded::guard::PORTABLE_ENV, "1"),
        }
    }
}

async fn a_bash_tool_process_that_left_the_group_does_not_outlive(mechanisms: Guard) {
    // Issue 9: the guard's group kill missed `setsid nohup sleep 307 &`.
    let bypass = move |o: Options| {
        mechanisms
            .options(o)
            .args(&["--permission-mode", "bypassPermissions"])
            // The CLI refuses to bypass permissions as root outside a sandbox.
            .env("IS_SANDBOX", "1")
    };
    let mut real = Real::start_with(MockApi::start(), bypass).await;
    let status = real.ready().await;
    let daemon_id = status["identity"]["daemonId"].as_str().unwrap().to_string();
    let result = real
        .bridge
        .call(
            "ask",
            json!({"prompt": "RUN_TOOL setsid nohup sleep 307 >/dev/null 2>&1 &", "timeoutMs": 30000}),
        )
        .await;
    assert_eq!(result["result"]["ok"], true, "{result}");
    let sleeper = proc_info::processes_of_daemon(&daemon_id)
        .into_iter()
        .find(|pid| proc_info::command_line(*pid).contains("sleep 307"))
        .expect("the tool's sleep 307 is running");
    let guard = status["child"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: getpgid only reads the process table.
    assert_ne!(
        unsafe { libc::getpgid(sleeper as i32) },
        guard,
        "still in the group"
    );
    assert_eq!(real.bridge.close_and_wait().await, 0);
    let left = proc_info::survivors_of_daemon(&daemon_id, Duration::from_secs(3));
    for pid in &left {
        // SAFETY: kills what this test started, so nothing outlives it.
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    assert!(left.is_empty(), "outlived claude-coded: {left:?}");
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn with_nobody_to_ask_a_tool_is_denied_at_once_saying_what_to_allow() {
    let mut real = Real::start().await;
    let id = real
        .bridge
        .request(
            "ask",
            json!({"prompt": "RUN_TOOL touch created_by_tool.txt", "timeoutMs": 30000}),
        )
        .await;
    let (response, notes) = real.bridge.response_for(&id).await;
    let result = &response["result"];
    assert_eq!(result["ok"], true, "{response}");
    let denials = result["permissionDenials"].as_array().expect("denials");
    assert_eq!(denials.len(), 1, "{result}");
    assert_eq!(denials[0]["tool_name"], "Bash");
    assert_eq!(
        denials[0]["tool_input"]["command"],
        "touch created_by_tool.txt"
    );
    // The model saw our denial as an error tool result (the mock echoes it): it names
    // the rule the user could add.
    let text = result["result"].as_str().expect("result text");
    assert!(
        text.starts_with("tool result was (is_error=True)"),
        "{text}"
    );
    assert!(
        text.contains("--allow-tool 'Bash(touch created_by_tool.txt)'"),
        "{text}"
    );
    assert!(!real.bridge.cwd().join("created_by_tool.txt").exists());
    let kinds = note_kinds(&notes);
    assert!(kinds.iter().any(|k| k == "control_request"), "{kinds:?}");
    let events = real.events().await;
    let decided = events
        .iter()
        .find(|e| e["type"] == "permission.decided")
        .expect("a decision event");
    assert_eq!(decided["detail"]["decidedBy"], "fallback", "{decided}");
    assert_eq!(real.mock.messages_requests().len(), 2);
    let status = real.bridge.status().await;
    assert_eq!(status["child"]["status"], "ready", "{status}");
    assert_eq!(status["child"]["restartCount"], 0);
    assert_eq!(status["turn"], Value::Null);
    assert_eq!(status["totals"]["turnsOk"], 1);
}

/// Answers the next `permission/request` of the ask `id` with `answer`; returns the
/// ask's response.
async fn answer_question(bridge: &mut Bridge, id: &Value, answer: Value) -> Value {
    let question = next_question(bridge, id).await;
    let line = json!({"jsonrpc": "2.0", "id": question["id"], "result": answer});
    bridge.send_raw(line.to_string().as_bytes()).await;
    bridge.response_for(id).await.0
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn the_client_allows_or_denies_a_real_tool_use_and_a_session_allow_is_not_asked_again() {
    let mut real = Real::start().await;
    let cwd = real.bridge.cwd();
    let ask = |file: &str| {
        json!({"prompt": format!("RUN_TOOL touch {file}"), "permissions": "client",
               "timeoutMs": 30000})
    };
    // Deny: no file, and the agent got the message.
    let id = real.bridge.request("ask", ask("denied.txt")).await;
    let denied = json!({"behavior": "deny", "message": "not in this repo"});
    let response = answer_question(&mut real.bridge, &id, denied).await;
    let text = response["result"]["result"].as_str().unwrap_or_default();
    assert!(text.contains("not in this repo"), "{response}");
    assert!(!cwd.join("denied.txt").exists());
    // Allow once: the real command ran.
    let id = real.bridge.request("ask", ask("allowed.txt")).await;
    let once = json!({"behavior": "allow"});
    let response = answer_question(&mut real.bridge, &id, once).await;
    assert_eq!(response["result"]["ok"], true, "{response}");
    assert!(cwd.join("allowed.txt").exists());
    // Allow for the session: the same use later runs without a question.
    let id = real.bridge.request("ask", ask("again.txt")).await;
    let remember = json!({"behavior": "allow", "remember": true});
    answer_question(&mut real.bridge, &id, remember).await;
    std::fs::remove_file(cwd.join("again.txt")).expect("the file was made");
    let id = real.bridge.request("ask", ask("again.txt")).await;
    let (response, notes) = real.bridge.response_for(&id).await;
    assert!(
        notes.iter().all(|n| n["method"] != "permission/request"),
        "asked again: {notes:?}"
    );
    assert_eq!(response["result"]["ok"], true, "{response}");
    assert!(cwd.join("again.txt").exists());
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn a_rule_the_user_configured_lets_the_tool_run_without_a_question() {
    let mut real = Real::start_with(MockApi::start(), |o| {
        o.args(&["--allow-tool", "Bash(touch ruled.txt)"])
    })
    .await;
    let id = real
        .bridge
        .request(
            "ask",
            json!({"prompt": "RUN_TOOL touch ruled.txt", "permissions": "client"}),
        )
        .await;
    let (response, notes) = real.bridge.response_for(&id).await;
    assert!(notes.iter().all(|n| n["method"] != "permission/request"));
    assert_eq!(response["result"]["ok"], true, "{response}");
    assert!(real.bridge.cwd().join("ruled.txt").exists());
}

/// Waits for the next `permission/request` of the ask `id` and returns it unanswered.
async fn next_question(bridge: &mut Bridge, id: &Value) -> Value {
    loop {
        let message = bridge.next_message().await;
        if message["method"] == "permission/request" {
            assert_eq!(message["params"]["requestId"], *id, "{message}");
            return message;
        }
        assert!(
            message.get("id") != Some(id),
            "answered without asking: {message}"
        );
    }
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn accept_edits_within_the_ceiling_lets_a_write_through_and_the_next_ask_is_asked_again() {
    let mut real = Real::start_with(MockApi::start(), |o| {
        o.args(&["--permission-ceiling", "acceptEdits"])
    })
    .await;
    let cwd = real.bridge.cwd();
    let write = |file: &str, mode: Option<&str>| {
        let mut params = json!({"prompt": format!("WRITE_FILE {} hello", cwd.join(file).display()),
                                "permissions": "client", "timeoutMs": 30000});
        if let Some(mode) = mode {
            params["permissionMode"] = json!(mode);
        }
        params
    };
    // Above the ceiling: refused before anything reaches the child.
    let id = real
        .bridge
        .request("ask", write("bypass.txt", Some("bypassPermissions")))
        .await;
    let (response, _) = real.bridge.response_for(&id).await;
    assert_eq!(response["error"]["code"], -32602, "{response}");
    let message = response["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("acceptEdits"), "{message}");
    // Within it: the real Write runs with no question.
    let id = real
        .bridge
        .request("ask", write("edited.txt", Some("acceptEdits")))
        .await;
    let (response, notes) = real.bridge.response_for(&id).await;
    assert!(
        notes.iter().all(|n| n["method"] != "permission/request"),
        "asked: {notes:?}"
    );
    assert_eq!(response["result"]["ok"], true, "{response}");
    assert_eq!(response["result"]["permissionDenials"], json!([]));
    let written = std::fs::read_to_string(cwd.join("edited.txt")).expect("the Write ran");
    assert_eq!(written, "hello");
    // The next ask that sets no mode runs in the configured one again: the Write is asked.
    let id = real.bridge.request("ask", write("asked.txt", None)).await;
    let deny = json!({"behavior": "deny", "message": "not now"});
    let response = answer_question(&mut real.bridge, &id, deny).await;
    assert_eq!(response["result"]["ok"], true, "{response}");
    let asked = real.events().await;
    assert!(
        asked
            .iter()
            .any(|e| e["type"] == "permission.requested" && e["detail"]["toolName"] == "Write"),
        "{asked:?}"
    );
    assert!(!cwd.join("asked.txt").exists());
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn ask_user_question_reaches_the_client_with_its_options_and_the_answer_reaches_the_model() {
    let mut real = Real::start().await;
    let params = json!({"prompt": "ASK_USER Which colour? Red|Blue", "permissions": "client",
                        "timeoutMs": 30000});
    let id = real.bridge.request("ask", params).await;
    let question = next_question(&mut real.bridge, &id).await;
    let asked = &question["params"];
    assert_eq!(asked["tool"], "AskUserQuestion", "{question}");
    assert_eq!(
        asked["questions"][0]["question"], "Which colour?",
        "{question}"
    );
    assert_eq!(asked["questions"][0]["options"], json!(["Red", "Blue"]));
    let answer = json!({"jsonrpc": "2.0", "id": question["id"],
                        "result": {"behavior": "allow", "answers": {"Which colour?": "Blue"}}});
    real.bridge.send_raw(answer.to_string().as_bytes()).await;
    let (response, _) = real.bridge.response_for(&id).await;
    assert_eq!(response["result"]["ok"], true, "{response}");
    let result = real
        .mock
        .tool_result_of("AskUserQuestion")
        .expect("the model got the tool result");
    assert!(!result.is_error, "{result:?}");
    assert!(result.text().contains("Blue"), "{result:?}");
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn with_nobody_to_ask_the_child_is_told_no_user_is_available() {
    let mut real = Real::start().await;
    let params = json!({"prompt": "ASK_USER Which colour? Red|Blue", "timeoutMs": 30000});
    let id = real.bridge.request("ask", params).await;
    let (response, notes) = real.bridge.response_for(&id).await;
    assert!(notes.iter().all(|n| n["method"] != "permission/request"));
    assert_eq!(response["result"]["ok"], true, "{response}");
    let result = real
        .mock
        .tool_result_of("AskUserQuestion")
        .expect("the model got the tool result");
    assert!(result.is_error, "{result:?}");
    assert!(result.text().contains("No user is available"), "{result:?}");
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn an_api_400_ends_the_turn_with_ok_false_and_the_status() {
    let mut real = Real::start().await;
    real.ready().await;
    let pid = real.child_pid().await;
    let result = real.bridge.ask_ok("ERR400").await;
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["isError"], true);
    assert_eq!(result["apiErrorStatus"], 400);
    assert_eq!(result["terminalReason"], "api_error");
    assert!(
        result["result"]
            .as_str()
            .is_some_and(|t| t.contains("API Error: 400")),
        "{result}"
    );
    // The child is fine: same process, next turn works.
    let after = real.bridge.ask_ok("hello after the error").await;
    assert_eq!(after["ok"], true, "{after}");
    let status = real.bridge.status().await;
    assert_eq!(status["child"]["pid"], json!(pid));
    assert_eq!(status["totals"]["turnsFailed"], 1);
    assert_eq!(status["totals"]["turnsOk"], 1);
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn api_500_and_429_with_one_retry_end_the_turn_quickly_with_the_status() {
    let mut real =
        Real::start_with(MockApi::start(), |o| o.env("CLAUDE_CODE_MAX_RETRIES", "1")).await;
    real.ready().await;
    let pid = real.child_pid().await;
    for status_code in [500, 429] {
        let started = Instant::now();
        let id = real
            .bridge
            .request("ask", json!({"prompt": format!("ERR{status_code}")}))
            .await;
        let (response, notes) = real.bridge.response_for(&id).await;
        let took = started.elapsed();
        let result = &response["result"];
        assert_eq!(result["ok"], false, "{response}");
        assert_eq!(result["apiErrorStatus"], status_code);
        assert_eq!(result["terminalReason"], "api_error");
        // With the CLI's default 10 retries this would take about 170 s.
        assert!(
            took < Duration::from_secs(60),
            "ERR{status_code} took {took:?}"
        );
        let retries: Vec<&Value> = notes
            .iter()
            .filter(|n| n["params"]["subtype"] == "api_retry")
            .collect();
        assert_eq!(retries.len(), 1, "{notes:?}");
        assert_eq!(retries[0]["params"]["message"]["error_status"], status_code);
    }
    assert_eq!(real.bridge.ask_ok("hello").await["ok"], true);
    assert_eq!(real.child_pid().await, pid);
    let status = real.bridge.status().await;
    assert_eq!(status["child"]["restartCount"], 0);
    assert_eq!(status["totals"]["turnsFailed"], 2);
    assert_eq!(status["totals"]["turnsOk"], 1);
}

/// The command line of `pid`, its arguments joined by spaces.
fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default()
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn sigkill_of_claude_coded_during_a_real_bash_tool_leaves_no_process() {
    sigkill_during_a_real_bash_tool_leaves_no_process(Guard::Linux).await;
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn sigkill_of_claude_coded_during_a_real_bash_tool_leaves_no_process_by_the_pipe() {
    sigkill_during_a_real_bash_tool_leaves_no_process(Guard::Portable).await;
}

async fn sigkill_during_a_real_bash_tool_leaves_no_process(mechanisms: Guard) {
    // The real CLI runs Bash tools its own way (a shell snapshot, its own process tree),
    // not like the double's `sleep`: allow Bash so the tool really runs, then kill.
    let allow_bash = move |o: Options| {
        mechanisms
            .options(o)
            .args(&["--claude-arg", "--allowedTools", "--claude-arg", "Bash"])
    };
    let mut real = Real::start_with(MockApi::start(), allow_bash).await;
    real.ready().await;
    // Not `sleep`, which the CLI's Bash tool refuses to run as a wait.
    let _id = real
        .bridge
        .request("ask", json!({"prompt": "RUN_TOOL tail -f /dev/null"}))
        .await;
    let deadline = Instant::now() + READ_TIMEOUT;
    let sleeper = loop {
        let found = processes_with_home(&real.home)
            .into_iter()
            .find(|pid| cmdline(*pid).starts_with("tail -f /dev/null"));
        if let Some(pid) = found {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the Bash tool never started `tail`; processes: {:?}",
            processes_with_home(&real.home)
                .into_iter()
                .map(|pid| (pid, cmdline(pid)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    kill(real.bridge.pid());
    real.bridge.wait_exit().await;
    assert!(
        wait_gone(sleeper, Duration::from_secs(10)).await,
        "the Bash tool's tail {sleeper} outlived claude-coded"
    );
    wait_sandbox_idle(&real.home);
    let left = processes_with_home(&real.home);
    assert!(
        left.is_empty(),
        "processes left with this test's HOME: {left:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn stdin_eof_stops_the_real_child_and_leaves_no_process() {
    let mut real = Real::start().await;
    real.bridge.ask_ok("hello").await;
    let (child, cli) = real.pids().await;
    let bridge = real.bridge.pid();
    // A piped ask: EOF right after the request; it is answered before the exit.
    let id = real
        .bridge
        .request("ask", json!({"prompt": "SLOW ms=100 chunks=4"}))
        .await;
    real.bridge.stdin = None;
    let (response, _) = real.bridge.response_for(&id).await;
    assert_eq!(response["result"]["ok"], true, "{response}");
    assert_eq!(real.bridge.wait_exit().await, 0);
    assert!(
        !process_alive(child),
        "the child {child} outlived claude-coded"
    );
    assert!(!process_alive(cli), "the CLI {cli} outlived claude-coded");
    assert!(!process_alive(bridge));
    let left = processes_with_home(&real.home);
    assert!(
        left.is_empty(),
        "processes left with this test's HOME: {left:?}"
    );
    let state: Value = serde_json::from_slice(
        &std::fs::read(real.bridge.state_dir().join("daemon-state.json")).expect("state file"),
    )
    .expect("state JSON");
    assert_eq!(state["child"]["status"], "stopped");
    // Exit code 0, no signal: the CLI left on its own, claude-coded did not TERM or KILL it.
    assert_eq!(state["child"]["exitCode"], 0, "{state}");
    assert_eq!(state["child"]["signal"], Value::Null, "{state}");
}

/// One ask's streamed kinds and its answer.
async fn transcript(bridge: &mut Bridge, prompt: &str) -> (Vec<String>, Value) {
    let id = bridge.request("ask", json!({"prompt": prompt})).await;
    let (response, notes) = bridge.response_for(&id).await;
    let result = response
        .get("result")
        .unwrap_or_else(|| panic!("ask {prompt:?} failed: {response}"))
        .clone();
    (note_kinds(&notes), result)
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn the_double_answers_like_the_real_cli_through_claude_coded() {
    let mut real = Real::start().await;
    let mut double = Bridge::start();
    // The fixtures check the double line by line; this checks what claude-coded makes of
    // it, for the prompts the other integration tests lean on.
    for prompt in ["hello", "RUN_TOOL touch parity.txt", "ERR400"] {
        let (real_kinds, real_result) = transcript(&mut real.bridge, prompt).await;
        let (double_kinds, double_result) = transcript(&mut double, prompt).await;
        assert_eq!(real_kinds, double_kinds, "message kinds of {prompt:?}");
        for field in [
            "ok",
            "isError",
            "subtype",
            "terminalReason",
            "stopReason",
            "apiErrorStatus",
            "numTurns",
            "errors",
            "messages",
        ] {
            assert_eq!(
                real_result[field], double_result[field],
                "{field} of {prompt:?}: real {real_result}, double {double_result}"
            );
        }
        if prompt == "hello" {
            // Both number replies from 1 (the mock per API request, the double per turn).
            assert_eq!(real_result["result"], double_result["result"]);
        }
        // Accounting, for a plain turn, a tool turn (two API calls, each charged) and an
        // API error (a refused call is not charged): the same cost and usage.
        let real_cost = real_result["costUsd"].as_f64().unwrap_or(f64::NAN);
        assert!(
            approx(&double_result["costUsd"], real_cost),
            "cost of {prompt:?}: real {real_result}, double {double_result}"
        );
        for tokens in ["input_tokens", "output_tokens"] {
            assert_eq!(
                real_result["usage"][tokens], double_result["usage"][tokens],
                "{tokens} of {prompt:?}"
            );
        }
        let denied = |r: &Value| {
            r["permissionDenials"]
                .as_array()
                .expect("denials")
                .iter()
                .map(|d| (d["tool_name"].clone(), d["tool_input"].clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(denied(&real_result), denied(&double_result), "{prompt:?}");
        // Every field of the real result line is in the double's.
        let keys = |r: &Value| {
            r["raw"]
                .as_object()
                .expect("raw result")
                .keys()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
        };
        let missing: Vec<String> = keys(&real_result)
            .difference(&keys(&double_result))
            .cloned()
            .collect();
        assert!(
            missing.is_empty(),
            "{prompt:?}: the double lacks {missing:?}"
        );
    }
}

/// claude-coded's MCP surface over the real CLI, driven by rmcp's client.
struct RealMcp {
    /// `None` once closed.
    bridge: Option<McpBridge>,
    mock: MockApi,
    home: PathBuf,
    _tmp: TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl RealMcp {
    async fn start() -> RealMcp {
        RealMcp::start_with_env(&[]).await
    }

    /// Like [`RealMcp::start`] with extra environment for claude-coded and its CLI.
    async fn start_with_env(extra: &[(&str, &str)]) -> RealMcp {
        let bin = claude_bin();
        let serial = test_support::real_cli::one_real_cli().await;
        let mock = MockApi::start();
        let tmp = TempDir::new("real-cli-mcp-tmp");
        let mut env = offline_env_in(&mock, tmp.path());
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let bridge = McpBridge::connect(Connect {
            claude_bin: Some(bin),
            env,
            clean_env: true,
            ..Connect::default()
        })
        .await;
        RealMcp {
            home: bridge.dir.path().to_path_buf(),
            bridge: Some(bridge),
            mock,
            _tmp: tmp,
            _serial: serial,
        }
    }

    fn bridge(&self) -> &McpBridge {
        self.bridge.as_ref().expect("open")
    }

    /// Closes the client (stdin EOF) and waits for claude-coded and its CLI to exit.
    async fn close(mut self) {
        if let Some(bridge) = self.bridge.take() {
            bridge.close().await;
        }
        let left = processes_with_home(&self.home);
        assert!(
            left.is_empty(),
            "processes left with this test's HOME: {left:?}"
        );
    }
}

impl Drop for RealMcp {
    /// On a failing test: stop claude-coded before its sandbox goes (see `Real`'s drop).
    fn drop(&mut self) {
        if let Some(bridge) = self.bridge.take() {
            // SAFETY: kill(2) on the pid of the claude-coded this test started.
            unsafe { libc::kill(bridge.pid, libc::SIGKILL) };
            wait_sandbox_idle(&self.home);
        }
    }
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn mcp_ask_round_trip_with_the_real_cli() {
    let real = RealMcp::start().await;
    let status = real
        .bridge()
        .wait_status("the real CLI to be ready", |s| s["child"]["ready"] == true)
        .await;
    assert_eq!(status["child"]["cliVersion"], CLI_VERSION);
    let handle = real
        .bridge()
        .start_call("ask", json!({"prompt": "hello"}))
        .await;
    let token = handle.progress_token.clone();
    let result = call_result(handle).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(texts(&result)[0], "mock reply #1 to: hello");
    let answer = structured(&result);
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(is_uuid(&answer["sessionId"]), "{answer}");
    // Compact for the calling model: the cost rounded, no raw line, no usage block.
    assert!(approx(&answer["costUsd"], 0.0001), "{answer}");
    assert_eq!(answer["numTurns"], 1, "{answer}");
    assert!(
        answer.get("raw").is_none() && answer.get("usage").is_none(),
        "{answer}"
    );
    // The real CLI's lines became progress on the call's token, ending with the result.
    real.bridge()
        .wait_seen("the result step", |seen| {
            seen.progress()
                .iter()
                .any(|p| p.message.as_deref() == Some("result: success"))
        })
        .await;
    let progress = real.bridge().seen.progress().clone();
    assert!(progress.iter().all(|p| p.progress_token == token));
    let second = structured(&real.bridge().call("ask", json!({"prompt": "again"})).await);
    assert_eq!(second["sessionId"], answer["sessionId"]);
    assert_eq!(real.mock.messages_requests().len(), 2);
    real.close().await;
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn an_mcp_cancel_right_after_the_ask_interrupts_without_killing_the_child() {
    let real = RealMcp::start().await;
    real.bridge()
        .call("ask", json!({"prompt": "warm up"}))
        .await;
    let before = real.bridge().status().await;
    for _ in 0..START_ROUNDS {
        let handle = real
            .bridge()
            .start_call("ask", json!({"prompt": "SLOW ms=1000 chunks=30"}))
            .await;
        // No pause: the cancel reaches the child right behind the prompt.
        handle.cancel(Some("test".into())).await.expect("cancel");
        real.bridge()
            .wait_status("the cancelled turn to end", |s| {
                s["turn"].is_null() && s["queue"]["length"] == 0 && s["child"]["ready"] == true
            })
            .await;
    }
    // A 30 s turn that ended within the wait above ended at an interrupt; one the CLI
    // ignored would have run into the grace period and a kill.
    let after = real.bridge().status().await;
    assert_eq!(after["child"]["pid"], before["child"]["pid"], "{after}");
    assert_eq!(after["child"]["restartCount"], 0, "{after}");
    let events = structured(&real.bridge().call("events", json!({"limit": 1000})).await);
    let kinds: Vec<Value> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert!(!kinds.contains(&json!("child.killing")), "{kinds:?}");
    let next = structured(&real.bridge().call("ask", json!({"prompt": "after"})).await);
    assert_eq!(next["ok"], true, "{next}");
    real.close().await;
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn mcp_cancel_interrupts_the_real_cli_which_keeps_its_session() {
    let real = RealMcp::start().await;
    let warm = structured(
        &real
            .bridge()
            .call("ask", json!({"prompt": "warm up"}))
            .await,
    );
    let before = real.bridge().status().await;
    let handle = real
        .bridge()
        .start_call("ask", json!({"prompt": "SLOW ms=300 chunks=100"}))
        .await;
    // Cancel once the stream is visibly running (system/init and the first block).
    real.bridge()
        .wait_status("the slow turn to stream", |s| {
            s["turn"]["messages"].as_u64().is_some_and(|m| m >= 2)
        })
        .await;
    let cancelled_at = Instant::now();
    handle.cancel(Some("test".into())).await.expect("cancel");
    let after = real
        .bridge()
        .wait_status("the interrupted turn to end", |s| {
            s["turn"].is_null() && s["child"]["ready"] == true
        })
        .await;
    // The 30 s stream ended at the interrupt, not by running out.
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(15),
        "the turn ended {:?} after the cancel",
        cancelled_at.elapsed()
    );
    assert_eq!(after["child"]["pid"], before["child"]["pid"]);
    assert_eq!(after["child"]["restartCount"], 0);
    let events = real
        .bridge()
        .call("events", json!({"limit": 1000, "full": true}))
        .await;
    let events = structured(&events)["full"]
        .as_array()
        .expect("events")
        .clone();
    assert!(
        events.iter().any(|e| e["type"] == "turn.cancelled"),
        "{events:?}"
    );
    let finished = events
        .iter()
        .find(|e| e["type"] == "turn.abandoned.finished")
        .unwrap_or_else(|| panic!("no aborted result recorded: {events:?}"));
    assert_eq!(finished["detail"]["terminalReason"], "aborted_streaming");
    assert_eq!(finished["detail"]["subtype"], "error_during_execution");

    let next = structured(&real.bridge().call("ask", json!({"prompt": "after"})).await);
    assert_eq!(next["ok"], true, "{next}");
    assert_eq!(next["sessionId"], warm["sessionId"]);
    assert_eq!(real.mock.aborted_streams(), 1);
    real.close().await;
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn mcp_progress_reports_the_real_clis_api_retries() {
    // Without this, an inner API error kept the outer call silent while the CLI retried.
    let real = RealMcp::start_with_env(&[("CLAUDE_CODE_MAX_RETRIES", "2")]).await;
    let handle = real
        .bridge()
        .start_call("ask", json!({"prompt": "ERR500"}))
        .await;
    let result = call_result(handle).await;
    assert_eq!(result.is_error, Some(true), "{result:?}");
    real.bridge()
        .wait_seen("progress naming the retry", |seen| {
            seen.progress().iter().any(|p| {
                p.message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("API error 500: Claude Code retries"))
            })
        })
        .await;
    real.close().await;
}
