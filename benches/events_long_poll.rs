//! How soon a long poll answers, and how soon a background ask hands back its handle.
//!
//! Run: `cargo bench --bench events_long_poll` (claude-coded over the CLI double: these
//! are the bridge's own latencies). `POLL_BENCH_ROUNDS=<n>` sets the rounds per row
//! (default 30). It prints numbers and asserts nothing about them.
//!
//! Rows, each from writing a request to reading the answer named:
//! - `ping round trip`: the floor of a request over stdio;
//! - `events waitMs, woken by an ask`: an `events` long poll (`waitMs` 10000) is already
//!   waiting; an `ask` is written, whose `turn.queued` event wakes the poll: the time from
//!   writing the ask to the poll's answer (the target: within 50 ms);
//! - `ask wait:false to its handle`: an ask that does not wait, to its answer.
// Bench code: a failed unwrap is a failed run, its output is the report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use mock_api::MockApi;
use serde_json::{Value, json};
use support::{Proc, Sandbox, check, report};

const DEFAULT_ROUNDS: usize = 30;

fn main() -> std::io::Result<()> {
    let rounds = std::env::var("POLL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_ROUNDS);
    let mock = MockApi::start();
    let root = std::env::temp_dir().join(format!("cc-poll-bench-{}", std::process::id()));
    println!("long poll and hand-off: {rounds} rounds per row, child: the CLI double");
    let outcome = run(&mock, &root, rounds);
    let _ = std::fs::remove_dir_all(&root);
    outcome
}

struct Bridge {
    proc: Proc,
    next_id: u64,
}

impl Bridge {
    fn send(&mut self, method: &str, params: Value) -> std::io::Result<u64> {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.proc.write_line(&request)?;
        Ok(id)
    }

    fn answer(&mut self, id: u64) -> std::io::Result<Value> {
        let answer = self
            .proc
            .read_until(|v| v["id"] == id && v.get("method").is_none())?;
        check(answer.get("result").is_some(), &answer)?;
        Ok(answer["result"].clone())
    }

    fn call(&mut self, method: &str, params: Value) -> std::io::Result<Value> {
        let id = self.send(method, params)?;
        self.answer(id)
    }
}

fn run(mock: &MockApi, root: &Path, rounds: usize) -> std::io::Result<()> {
    let sandbox = Sandbox::new(root)?;
    let mut command = sandbox.command(
        Path::new(env!("CARGO_BIN_EXE_claude-coded")),
        &mock.base_url(),
    );
    command
        .arg("--claude-bin")
        .arg(test_support::double())
        .arg("--state-dir")
        .arg(root.join("state"))
        .arg("--cwd")
        .arg(&sandbox.cwd)
        .env("RUST_LOG", "error");
    let mut bridge = Bridge {
        proc: Proc::spawn(&mut command)?,
        next_id: 0,
    };
    bridge.call("ask", json!({"prompt": "warm up"}))?;
    let (mut pings, mut polls, mut handoffs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let start = Instant::now();
        bridge.call("ping", json!({}))?;
        pings.push(start.elapsed());
        polls.push(poll_woken_by_an_ask(&mut bridge)?);
        let start = Instant::now();
        let handle = bridge.call("ask", json!({"prompt": "hand off", "background": true}))?;
        handoffs.push(start.elapsed());
        let waited = bridge.call("wait", json!({"turnId": handle["turnId"]}))?;
        check(waited["running"] == false, &waited)?;
    }
    report("ping round trip", &pings);
    report("events waitMs, woken by an ask", &polls);
    report("ask wait:false to its handle", &handoffs);
    bridge.proc.finish()
}

/// One long poll, woken by an ask's first event: from writing the ask to the poll's answer.
fn poll_woken_by_an_ask(bridge: &mut Bridge) -> std::io::Result<Duration> {
    let next = bridge.call("events", json!({}))?["nextSeq"]
        .as_u64()
        .unwrap_or(1);
    let poll = bridge.send(
        "events",
        json!({"since": next - 1, "waitMs": 10_000, "session": "default"}),
    )?;
    // Long enough for the poll to be waiting, short next to its 10 s.
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    let ask = bridge.send("ask", json!({"prompt": "wake the poll"}))?;
    let page = bridge.answer(poll)?;
    let took = start.elapsed();
    check(
        page["events"].as_array().is_some_and(|e| !e.is_empty()),
        &page,
    )?;
    bridge.answer(ask)?;
    Ok(took)
}
