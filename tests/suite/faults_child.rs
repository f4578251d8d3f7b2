//! Faults of the child beyond crashes: stalls, crash loops, resume after a restart,
//! and the whole process group going away.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::{Bridge, Options, TempDir, error_code, process_alive, wait_gone};

#[tokio::test]
async fn a_silent_child_is_reported_as_stalled_then_killed_and_restarted() {
    let mut bridge = Bridge::start_with(Options::default().args(&[
        "--stall-timeout-ms",
        "300",
        "--interrupt-grace-ms",
        "300",
    ]));
    bridge.ask_ok("warm up").await;
    let pid = bridge.status().await["child"]["pid"].as_i64().unwrap() as i32;
    let response = bridge.call("ask", json!({"prompt": "HANG"})).await;
    assert_eq!(error_code(&response), Some(-32008), "{response}");
    let message = response["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("stalled") && message.contains("ms"),
        "{message}"
    );
    assert!(response["error"]["data"]["silentMs"].as_u64().unwrap() >= 300);
    assert!(
        wait_gone(pid, Duration::from_secs(5)).await,
        "stalled child not killed"
    );
    assert_eq!(bridge.ask_ok("after").await["ok"], true);
    let events = bridge.call("events", json!({"level": "warn"})).await["result"]["events"].clone();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "turn.stalled")
    );
}

#[tokio::test]
async fn output_and_keep_alive_lines_count_as_life() {
    let mut bridge = Bridge::start_with(Options::default().args(&["--stall-timeout-ms", "2000"]));
    // 4.5 s of turn, a line every 150 ms: well inside the 2 s watchdog, unless lines
    // did not count, when the turn would outlive it.
    assert_eq!(bridge.ask_ok("SLOW 150 30").await["ok"], true);
    assert_eq!(bridge.ask_ok("KEEPALIVE 150 30").await["ok"], true);
    assert_eq!(bridge.status().await["child"]["restartCount"], 0);
}

#[tokio::test]
async fn a_crash_loop_marks_the_child_failed_and_asks_fail_fast() {
    let dir = TempDir::new("loop");
    let counter = dir.path().join("starts");
    let mut bridge = Bridge::start_with(
        Options::default()
            .args(&["--crash-loop-max", "3", "--backoff-initial-ms", "50"])
            .env(
                "DOUBLE_STARTUP",
                &format!("crash-count:{}:3", counter.display()),
            ),
    );
    let status = bridge
        .wait_status("the crash loop", |s| s["child"]["status"] == "failed")
        .await;
    let last_error = status["child"]["lastError"].as_str().unwrap();
    assert!(last_error.contains("crash loop"), "{last_error}");
    let tail = status["child"]["stderrTail"].to_string();
    assert!(tail.contains("startup crash requested"), "{tail}");
    // The next ask tries again (the fourth start succeeds here) and is served.
    assert_eq!(bridge.ask_ok("after the loop").await["ok"], true);
}

#[tokio::test]
async fn while_failed_an_ask_fails_fast_with_the_reason_and_restart_recovers() {
    let dir = TempDir::new("loop2");
    let counter = dir.path().join("starts");
    let mut bridge = Bridge::start_with(
        Options::default()
            .args(&["--crash-loop-max", "2", "--backoff-initial-ms", "50"])
            .env(
                "DOUBLE_STARTUP",
                &format!("crash-count:{}:4", counter.display()),
            ),
    );
    bridge
        .wait_status("the crash loop", |s| s["child"]["status"] == "failed")
        .await;
    // Third start (the ask's retry) crashes again: the ask fails fast with the reason.
    let response = bridge.call("ask", json!({"prompt": "hello"})).await;
    assert_eq!(error_code(&response), Some(-32003), "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("crash loop")
    );
    // Fourth start via an explicit restart succeeds... after one more crash it is the fifth.
    let restart = bridge.call("restart", json!({})).await;
    assert_eq!(restart["result"]["restarting"], true, "{restart}");
    let status = bridge
        .wait_status("a ready child", |s| {
            s["child"]["ready"] == true || s["child"]["status"] == "failed"
        })
        .await;
    if status["child"]["status"] == "failed" {
        bridge.call("restart", json!({})).await;
        bridge
            .wait_status("a ready child", |s| s["child"]["ready"] == true)
            .await;
    }
    assert_eq!(bridge.ask_ok("recovered").await["ok"], true);
}

#[tokio::test]
async fn restart_kills_a_running_child_and_starts_a_new_one() {
    let mut bridge = Bridge::start();
    bridge.ask_ok("hello").await;
    let old = bridge.status().await["child"]["pid"].clone();
    let restart = bridge.call("restart", json!({})).await;
    assert_eq!(restart["result"]["killedPid"], old);
    let status = bridge
        .wait_status("a new child", |s| {
            s["child"]["ready"] == true && s["child"]["pid"] != old
        })
        .await;
    assert_eq!(status["child"]["restartCount"], 1);
    assert_eq!(bridge.ask_ok("again").await["ok"], true);
}

#[tokio::test]
async fn after_a_crash_the_next_child_resumes_the_session() {
    let dir = TempDir::new("resume");
    let record = dir.path().join("record.jsonl");
    let mut bridge =
        Bridge::start_with(Options::default().env("DOUBLE_RECORD", record.to_str().unwrap()));
    let first = bridge.ask_ok("hello").await;
    let session = first["sessionId"].clone();
    let crash = bridge.call("ask", json!({"prompt": "CRASH 2"})).await;
    assert_eq!(error_code(&crash), Some(-32002));
    let after = bridge.ask_ok("do you remember?").await;
    assert_eq!(after["sessionId"], session);
    let status = bridge.status().await;
    assert_eq!(status["child"]["sessionId"], session);
    assert_eq!(status["child"]["resumedFrom"], session);
    let starts: Vec<Value> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(starts.len(), 2);
    let argv = starts[1]["argv"].to_string();
    assert!(argv.contains(&format!("\"--resume\",{session}")), "{argv}");
}

#[tokio::test]
async fn resume_can_be_turned_off() {
    let mut bridge = Bridge::start_with(Options::default().args(&["--resume-on-restart", "false"]));
    let first = bridge.ask_ok("hello").await;
    bridge.call("ask", json!({"prompt": "CRASH 2"})).await;
    let after = bridge.ask_ok("fresh").await;
    assert_ne!(after["sessionId"], first["sessionId"]);
    assert_eq!(bridge.status().await["child"]["resumedFrom"], Value::Null);
}

#[tokio::test]
async fn a_session_that_cannot_be_resumed_falls_back_to_a_new_one() {
    let mut bridge = Bridge::start_with(Options::default().env("DOUBLE_RESUME_FAILS", "1"));
    let first = bridge.ask_ok("hello").await;
    bridge.call("ask", json!({"prompt": "CRASH 2"})).await;
    let after = bridge.ask_ok("new session").await;
    assert_eq!(after["ok"], true);
    assert_ne!(after["sessionId"], first["sessionId"]);
    let events = bridge.call("events", json!({"level": "warn"})).await["result"]["events"].clone();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "child.resume.failed"),
        "{events}"
    );
}

/// The guard's mechanisms a test runs under: Linux's own (parent-death signal, child
/// subreaper), or the portable ones macOS runs (a pipe, the marked tree).
#[derive(Clone, Copy, PartialEq)]
enum Guard {
    Linux,
    Portable,
}

/// A bridge over the double whose guards use `mechanisms`.
fn bridge_under(mechanisms: Guard) -> Bridge {
    let options = Options::default();
    Bridge::start_with(match mechanisms {
        Guard::Linux => options,
        Guard::Portable => options.env(claude_coded::guard::PORTABLE_ENV, "1"),
    })
}

async fn sigkill_of_the_bridge_takes_the_childs_whole_group(mechanisms: Guard) {
    let mut bridge = bridge_under(mechanisms);
    let reply = bridge.ask_ok("SPAWN_GRANDCHILD").await;
    let text = reply["result"].as_str().unwrap().to_string();
    let grandchild: i32 = text
        .trim_start_matches("grandchild ")
        .parse()
        .unwrap_or_else(|_| panic!("{text}"));
    let child = bridge.status().await["child"]["pid"].as_i64().unwrap() as i32;
    assert_eq!(
        guard_has_pipe(child),
        mechanisms == Guard::Portable,
        "the guard's pipe"
    );
    assert!(process_alive(grandchild));
    // A turn that ignores stdin's EOF: only the guard's notice of our death ends it.
    bridge.request("ask", json!({"prompt": "HANG"})).await;
    bridge
        .wait_status("the HANG turn", |s| s["child"]["status"] == "busy")
        .await;
    unsafe { libc::kill(bridge.pid(), libc::SIGKILL) };
    bridge.wait_exit().await;
    assert!(
        wait_gone(child, Duration::from_secs(10)).await,
        "child {child} survived"
    );
    assert!(
        wait_gone(grandchild, Duration::from_secs(10)).await,
        "grandchild {grandchild} survived"
    );
}

/// Whether the guard `pid` was given the parent-death pipe (the portable mechanism).
fn guard_has_pipe(pid: i32) -> bool {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    environ
        .split(|b| *b == 0)
        .any(|entry| entry.starts_with(b"CLAUDE_CODED_GUARD_PIPE="))
}

#[tokio::test]
async fn sigkill_of_the_bridge_takes_the_childs_whole_group_by_the_death_signal() {
    sigkill_of_the_bridge_takes_the_childs_whole_group(Guard::Linux).await;
}

#[tokio::test]
async fn sigkill_of_the_bridge_takes_the_childs_whole_group_by_the_pipe() {
    sigkill_of_the_bridge_takes_the_childs_whole_group(Guard::Portable).await;
}

#[tokio::test]
async fn a_graceful_stop_also_ends_the_childs_tool_processes() {
    for mechanisms in [Guard::Linux, Guard::Portable] {
        let mut bridge = bridge_under(mechanisms);
        let reply = bridge.ask_ok("SPAWN_GRANDCHILD").await;
        let grandchild: i32 = reply["result"]
            .as_str()
            .unwrap()
            .trim_start_matches("grandchild ")
            .parse()
            .unwrap();
        assert_eq!(bridge.close_and_wait().await, 0);
        assert!(wait_gone(grandchild, Duration::from_secs(10)).await);
    }
}

/// Asks the double to start `setsid nohup sleep 1000 &`, as a Bash tool may; its pid.
/// Under the portable mechanisms (no subreaper) it is init's, no longer the guard's
/// descendant: only its mark finds it.
async fn spawn_detached(bridge: &mut Bridge, mechanisms: Guard) -> i32 {
    let reply = bridge.ask_ok("SPAWN_DETACHED").await;
    let text = reply["result"].as_str().unwrap_or_default().to_string();
    let pid: i32 = text
        .trim_start_matches("detached ")
        .parse()
        .unwrap_or_else(|_| panic!("{text}"));
    assert!(process_alive(pid), "{text}");
    let guard = bridge.status().await["child"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: getpgid and getsid only read the process table.
    let (group, session) = unsafe { (libc::getpgid(pid), libc::getsid(pid)) };
    assert_ne!(
        group, guard,
        "the detached process is still in the child's group"
    );
    assert_ne!(
        session,
        unsafe { libc::getsid(guard) },
        "still in the session"
    );
    if mechanisms == Guard::Portable {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !is_descendant_of_init_only(pid, guard) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{pid} stayed below the guard {guard}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    pid
}

/// The parent of `pid` (field 4 of `/proc/<pid>/stat`).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Whether `guard` is not among the ancestors of `pid`.
fn is_descendant_of_init_only(pid: i32, guard: i32) -> bool {
    let mut current = pid;
    while let Some(parent) = parent_of(current) {
        if parent == guard {
            return false;
        }
        if parent <= 1 {
            return true;
        }
        current = parent;
    }
    true
}

/// Kills `pid` if a test failed with it alive, so no sleeper outlives the suite.
struct Reap(i32);

impl Drop for Reap {
    fn drop(&mut self) {
        // SAFETY: signals a process this test started (through the double).
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

#[tokio::test]
async fn a_tool_process_that_left_the_group_ends_with_a_graceful_stop() {
    for mechanisms in [Guard::Linux, Guard::Portable] {
        let mut bridge = bridge_under(mechanisms);
        let detached = spawn_detached(&mut bridge, mechanisms).await;
        let _reap = Reap(detached);
        assert_eq!(bridge.close_and_wait().await, 0);
        assert!(
            wait_gone(detached, Duration::from_secs(10)).await,
            "setsid'd tool process {detached} survived the stop"
        );
    }
}

async fn a_tool_process_that_left_the_group_ends_when_the_bridge_is_sigkilled(mechanisms: Guard) {
    let mut bridge = bridge_under(mechanisms);
    let detached = spawn_detached(&mut bridge, mechanisms).await;
    let _reap = Reap(detached);
    unsafe { libc::kill(bridge.pid(), libc::SIGKILL) };
    bridge.wait_exit().await;
    assert!(
        wait_gone(detached, Duration::from_secs(10)).await,
        "setsid'd tool process {detached} survived the bridge's SIGKILL"
    );
}

#[tokio::test]
async fn a_tool_process_that_left_the_group_ends_when_the_bridge_is_sigkilled_by_the_subreaper() {
    a_tool_process_that_left_the_group_ends_when_the_bridge_is_sigkilled(Guard::Linux).await;
}

#[tokio::test]
async fn a_tool_process_that_left_the_group_ends_when_the_bridge_is_sigkilled_by_its_mark() {
    a_tool_process_that_left_the_group_ends_when_the_bridge_is_sigkilled(Guard::Portable).await;
}

#[tokio::test]
async fn a_tool_process_that_left_the_group_ends_when_the_child_is_killed_for_a_restart() {
    for mechanisms in [Guard::Linux, Guard::Portable] {
        let mut bridge = bridge_under(mechanisms);
        let detached = spawn_detached(&mut bridge, mechanisms).await;
        let _reap = Reap(detached);
        let restart = bridge.call("restart", json!({})).await;
        assert_eq!(restart["result"]["restarting"], true, "{restart}");
        assert!(
            wait_gone(detached, Duration::from_secs(10)).await,
            "setsid'd tool process {detached} survived the restart"
        );
        bridge
            .wait_status("a new child", |s| s["child"]["ready"] == true)
            .await;
        assert_eq!(bridge.close_and_wait().await, 0);
    }
}

#[tokio::test]
async fn the_guard_adopts_an_orphaned_tool_process_and_reaps_it_when_it_exits() {
    let mut bridge = Bridge::start();
    let detached = spawn_detached(&mut bridge, Guard::Linux).await;
    let _reap = Reap(detached);
    let guard = bridge.status().await["child"]["pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{detached}/stat")).unwrap();
    let parent: i64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        parent, guard,
        "the orphan went to {parent}, not to the guard {guard}"
    );
    unsafe { libc::kill(detached, libc::SIGKILL) };
    // Reaped, not left a zombie of the guard: its /proc entry goes away.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{detached}")).exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{detached} left as a zombie"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(bridge.ask_ok("still fine").await["ok"], true);
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn restarts_keep_working_after_the_binary_is_replaced_on_disk() {
    // An upgrade (cargo install, a package manager) replaces the file under a running daemon.
    let dir = TempDir::new("upgrade");
    let copy = dir.path().join("claude-coded");
    std::fs::copy(test_support::bridge(), &copy).unwrap();
    let mut bridge = Bridge::start_with(Options {
        bridge: Some(copy.clone()),
        ..Options::default()
    });
    bridge.ask_ok("before").await;
    std::fs::remove_file(&copy).unwrap();
    let restart = bridge.call("restart", json!({})).await;
    assert_eq!(restart["result"]["restarting"], true, "{restart}");
    bridge
        .wait_status("a new child", |s| {
            s["child"]["ready"] == true && s["child"]["restartCount"] == 1
        })
        .await;
    assert_eq!(bridge.ask_ok("after").await["ok"], true);
}

/// A turn of 30 s (30 chunks, 1 s apart): one that ends within a test's waits was ended
/// by an interrupt.
const LONG_TURN: &str = "SLOW ms=1000 chunks=30";
/// Far below the 30 s turn, far above how long an honoured interrupt takes.
const GRACE: [&str; 2] = ["--interrupt-grace-ms", "10000"];

/// The double takes 100 ms from reading a prompt to starting its turn; an interrupt in
/// that window is answered and ignored, as the real CLI sometimes does (issue 9).
fn slow_to_start() -> Options {
    Options::default()
        .env("DOUBLE_TURN_START_DELAY_MS", "100")
        .args(&GRACE)
}

/// After an abandoned turn: it ended by an interrupt (an interrupted result, no kill at
/// the end of the grace period), and the same child serves on.
async fn interrupted_not_killed(bridge: &mut Bridge, pid: &Value) {
    bridge
        .wait_status("the abandoned turn to end", |s| s["turn"].is_null())
        .await;
    let status = bridge.status().await;
    assert_eq!(&status["child"]["pid"], pid, "{status}");
    assert_eq!(status["child"]["restartCount"], 0, "{status}");
    let events = bridge.call("events", json!({"limit": 1000})).await["result"]["events"].clone();
    let finished = events
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["type"] == "turn.abandoned.finished")
        .cloned()
        .unwrap_or_else(|| panic!("no interrupted result: {events}"));
    assert_eq!(finished["detail"]["subtype"], "error_during_execution");
}

#[tokio::test]
async fn a_timeout_before_the_turn_started_still_interrupts_it_without_a_kill() {
    let mut bridge = Bridge::start_with(slow_to_start());
    bridge.ask_ok("warm up").await;
    let pid = bridge.status().await["child"]["pid"].clone();
    for _ in 0..3 {
        let ask = json!({"prompt": LONG_TURN, "timeoutMs": 1});
        let response = bridge.call("ask", ask).await;
        assert_eq!(error_code(&response), Some(-32001), "{response}");
        interrupted_not_killed(&mut bridge, &pid).await;
    }
    assert_eq!(bridge.ask_ok("after").await["ok"], true);
}

#[tokio::test]
async fn an_mcp_cancel_right_behind_the_prompt_interrupts_without_a_kill() {
    let mut bridge = Bridge::start_with(slow_to_start());
    let init = json!({"protocolVersion": "2025-11-25", "capabilities": {},
                      "clientInfo": {"name": "cancel-at-start", "version": "0"}});
    assert!(bridge.call("initialize", init).await["result"].is_object());
    bridge
        .send_raw(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    let status = json!({"name": "status", "arguments": {"full": true}});
    let full = |answer: Value| answer["result"]["structuredContent"]["full"].clone();
    let pid = full(bridge.call("tools/call", status.clone()).await)["child"]["pid"].clone();
    for round in 0..3 {
        let id = format!("slow-{round}");
        let ask = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                         "params": {"name": "ask", "arguments": {"prompt": LONG_TURN}}});
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                            "params": {"requestId": id}});
        bridge.send_raw(ask.to_string().as_bytes()).await;
        // Cancel once the turn is dispatched (out of the queue) but not started in the child.
        loop {
            let s = full(bridge.call("tools/call", status.clone()).await);
            if s["turn"].is_object() {
                assert_eq!(s["turn"]["messages"], 0, "the double started the turn: {s}");
                break;
            }
        }
        bridge.send_raw(cancel.to_string().as_bytes()).await;
        let deadline = tokio::time::Instant::now() + test_support::READ_TIMEOUT;
        let s = loop {
            let s = full(bridge.call("tools/call", status.clone()).await);
            if s["turn"].is_null() {
                break s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the turn never ended: {s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Within the wait, far short of its 30 s: ended by an interrupt, not by a kill.
        assert_eq!(s["child"]["pid"], pid, "{s}");
        assert_eq!(s["child"]["restartCount"], 0, "{s}");
    }
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn an_interrupt_the_child_did_not_heed_is_sent_again_before_any_kill() {
    let mut bridge = Bridge::start_with(
        Options::default()
            .env("DOUBLE_IGNORE_INTERRUPTS", "1")
            .args(&GRACE),
    );
    bridge.ask_ok("warm up").await;
    let pid = bridge.status().await["child"]["pid"].clone();
    // The timeout fires mid-stream; the first interrupt is answered and ignored.
    let ask = json!({"prompt": LONG_TURN, "timeoutMs": 1500});
    let response = bridge.call("ask", ask).await;
    assert_eq!(error_code(&response), Some(-32001), "{response}");
    interrupted_not_killed(&mut bridge, &pid).await;
}
