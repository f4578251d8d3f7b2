//! Warm spares (`--spare-sessions N`): CLIs started ahead of need, taken by new sessions,
//! replaced behind them, counted in `status` apart from the sessions, and gone with
//! claude-coded.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::{Bridge, Options, READ_TIMEOUT, TempDir, listed_session, process_alive};

/// The CLI starts the double recorded, once there are at least `count` (within the read
/// timeout).
async fn starts(record: &Path, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let starts: Vec<Value> = std::fs::read_to_string(record)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        if starts.len() >= count {
            return starts;
        }
        assert!(
            Instant::now() < deadline,
            "{} CLI starts, not {count}: {starts:?}",
            starts.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn pid_of(start: &Value) -> u32 {
    start["pid"].as_u64().expect("a pid") as u32
}

/// Waits for the default session's CLI and one spare beside it, initialized; the spare's
/// pid, and the status that shows it ready.
async fn ready_spare(bridge: &mut Bridge, record: &Path) -> (u32, Value) {
    let first = starts(record, 2).await;
    // The default session's own CLI pid comes with its warm-up answer, which may follow
    // the spare's: wait for both, or the spare cannot be told from it.
    let status = bridge
        .wait_status("a warm spare beside the ready default session", |s| {
            s["spares"]["ready"] == 1 && s["child"]["cliPid"].is_u64()
        })
        .await;
    (not_the_default(&first, &status), status)
}

/// The pid of the start that is not the default session's CLI: the spare (the two start
/// at once, so the record's order says nothing).
fn not_the_default(starts: &[Value], status: &Value) -> u32 {
    let default = status["child"]["cliPid"]
        .as_u64()
        .or_else(|| listed_session(status, "default")["pid"].as_u64())
        .expect("the default session's pid") as u32;
    let spares: Vec<u32> = starts
        .iter()
        .map(pid_of)
        .filter(|p| *p != default)
        .collect();
    assert_eq!(spares.len(), 1, "{starts:?} beside {default}");
    spares[0]
}

fn with_spares(spares: &str, record: &Path) -> Bridge {
    let options = Options::default()
        .args(&["--surface", "plain", "--spare-sessions", spares])
        .env("DOUBLE_RECORD", &record.display().to_string());
    Bridge::start_with(options)
}

#[tokio::test]
async fn a_new_session_takes_a_warm_spare_and_another_is_started_behind_it() {
    let dir = TempDir::new("spares");
    let record = dir.path().join("starts.jsonl");
    let mut bridge = with_spares("1", &record);
    let (spare, status) = ready_spare(&mut bridge, &record).await;
    assert_eq!(status["sessions"].as_array().unwrap().len(), 1, "{status}");
    let answer = bridge
        .ask_ok_with(json!({"session": "a", "prompt": "hello"}))
        .await;
    assert_eq!(answer["ok"], true, "{answer}");
    let listed = bridge.call("sessions", json!({})).await["result"].clone();
    assert_eq!(
        listed_session(&listed, "a")["pid"],
        spare,
        "session a runs in the spare: {listed}"
    );
    // A new spare behind it, started with the same command line.
    let now = starts(&record, 3).await;
    assert_eq!(now[2]["argv"], now[1]["argv"]);
    let replacement = pid_of(&now[2]);
    let status = bridge
        .wait_status("the next spare", |s| s["spares"]["ready"] == 1)
        .await;
    assert_eq!(status["spares"]["warming"], 0, "{status}");
    assert_eq!(bridge.close_and_wait().await, 0);
    for pid in [spare, replacement] {
        assert!(
            test_support::wait_gone(pid as i32, Duration::from_secs(5)).await,
            "CLI {pid} outlived claude-coded"
        );
    }
}

#[tokio::test]
async fn a_resumed_session_does_not_take_a_spare_and_without_spares_none_is_started() {
    let dir = TempDir::new("spares-resume");
    let record = dir.path().join("starts.jsonl");
    let mut bridge = with_spares("1", &record);
    let (spare, _) = ready_spare(&mut bridge, &record).await;
    let session = bridge.ask_ok("hello").await["sessionId"].clone();
    let resumed = bridge
        .ask_ok_with(json!({"session": "b", "prompt": "again", "resume": session}))
        .await;
    assert_eq!(resumed["ok"], true, "{resumed}");
    let listed = bridge.call("sessions", json!({})).await["result"].clone();
    assert_ne!(listed_session(&listed, "b")["pid"], spare, "{listed}");
    assert!(process_alive(spare as i32), "the spare still waits");
    assert_eq!(bridge.close_and_wait().await, 0);

    let record = dir.path().join("none.jsonl");
    let mut bridge = with_spares("0", &record);
    bridge.ask_ok("hello").await;
    bridge
        .ask_ok_with(json!({"session": "c", "prompt": "hello"}))
        .await;
    assert_eq!(bridge.close_and_wait().await, 0);
    assert_eq!(starts(&record, 2).await.len(), 2, "no spare was started");
}

#[tokio::test]
async fn a_session_that_takes_a_spare_answers_without_a_second_initialize() {
    // Every `initialize` takes the double this long to answer: a session that sent the
    // spare its own would wait that long again before its first turn.
    const INIT_DELAY_MS: u64 = 3_000;
    let dir = TempDir::new("spares-init");
    let record = dir.path().join("starts.jsonl");
    let options = Options::default()
        .args(&["--surface", "plain", "--spare-sessions", "1"])
        .env("DOUBLE_RECORD", &record.display().to_string())
        .env("DOUBLE_INIT_DELAY_MS", &INIT_DELAY_MS.to_string());
    let mut bridge = Bridge::start_with(options);
    let (spare, _) = ready_spare(&mut bridge, &record).await;
    let asked = Instant::now();
    let answer = bridge
        .ask_ok_with(json!({"session": "a", "prompt": "hello"}))
        .await;
    let took = asked.elapsed();
    assert_eq!(answer["ok"], true, "{answer}");
    let listed = bridge.call("sessions", json!({})).await["result"].clone();
    assert_eq!(listed_session(&listed, "a")["pid"], spare, "{listed}");
    assert!(
        took < Duration::from_millis(INIT_DELAY_MS),
        "the first answer took {took:?}: the spare was sent a second initialize"
    );
    assert_eq!(bridge.close_and_wait().await, 0);
}
