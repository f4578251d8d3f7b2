//! Named sessions side by side: N asks to N sessions at once, against one ask alone.
//!
//! Run: `CLAUDE_BIN=$(scripts/install-claude-cli.sh) cargo bench --bench sessions_parallel`
//! (the real CLI on the mock Messages API, offline; a turn is the mock's
//! `SLOW ms=125 chunks=10`, about 1 s of stream); without `CLAUDE_BIN` the CLI double
//! (`SLOW ms=200 chunks=5`, 1 s). One claude-coded with `--max-sessions 8`.
//! `SESSIONS_BENCH_ROUNDS=<n>` sets the rounds per row (default 3). It prints numbers
//! and asserts nothing about them.
//!
//! Rows:
//! - N = 1, 2, 4, 8: wall time from writing N asks (one per session, sessions already
//!   warm) to the last answer, median of the rounds, and its ratio to N = 1 (the issue's
//!   target: at most 1.3x up to the machine's core count; past it the CLIs share cores);
//! - the RSS of claude-coded itself (`VmRSS` of its process) with 8 live sessions, and
//!   their CLIs' RSS as `sessions` reports it;
//! - time to first answer of a new session (a cold CLI, in a full pool: the least
//!   recently used idle session makes room), next to a warm ask to a running one.
// Bench code: a failed unwrap is a failed run, its output is the report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

mod support;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use mock_api::MockApi;
use serde_json::{Value, json};
use support::{Proc, Sandbox, check, median, ms};
use test_support::proc_info;

const DEFAULT_ROUNDS: usize = 3;
const MAX_SESSIONS: usize = 8;
const WIDTHS: [usize; 4] = [1, 2, 4, 8];

fn main() -> std::io::Result<()> {
    let real = std::env::var_os("CLAUDE_BIN").filter(|v| !v.is_empty());
    let (child, slow, which) = match &real {
        Some(bin) => (
            bin.clone(),
            "SLOW ms=125 chunks=10",
            "the real CLI on the mock API",
        ),
        None => (
            test_support::double().as_os_str().to_owned(),
            "SLOW ms=200 chunks=5",
            "the CLI double (set CLAUDE_BIN for the real CLI)",
        ),
    };
    let rounds = std::env::var("SESSIONS_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_ROUNDS);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mock = MockApi::start();
    let root = std::env::temp_dir().join(format!("cc-sessions-bench-{}", std::process::id()));
    println!(
        "sessions in parallel: child {which}, a turn is `{slow}`, {rounds} rounds per row, \
         {cores} cores"
    );
    let outcome = run(&child, slow, &mock, &root, rounds, cores);
    let _ = std::fs::remove_dir_all(&root);
    outcome
}

fn run(
    child: &OsString,
    slow: &str,
    mock: &MockApi,
    root: &Path,
    rounds: usize,
    cores: usize,
) -> std::io::Result<()> {
    let sandbox = Sandbox::new(root)?;
    let mut command = support::claude_coded(&sandbox, root, child, &mock.base_url());
    command.args(["--max-sessions", &MAX_SESSIONS.to_string()]);
    let mut bridge = Bridge {
        proc: Proc::spawn(&mut command)?,
        next_id: 0,
    };
    let pid = bridge.proc.child.id();
    let names: Vec<String> = (1..=MAX_SESSIONS).map(|i| format!("s{i}")).collect();

    // Every session warm first: the rows time turns, not cold starts.
    let warm: Vec<(String, String)> = names
        .iter()
        .map(|name| (name.clone(), "warm up".to_string()))
        .collect();
    bridge.asks_at_once(&warm)?;

    let mut medians = Vec::new();
    for width in WIDTHS {
        let mut times = Vec::new();
        for _ in 0..rounds {
            let asks: Vec<(String, String)> = names[..width]
                .iter()
                .map(|name| (name.clone(), slow.to_string()))
                .collect();
            let started = Instant::now();
            let ids = bridge.asks_at_once(&asks)?;
            times.push(started.elapsed());
            check(ids.len() == width, &json!({"sessionIds": ids.len()}))?;
        }
        medians.push((width, median(&times)));
    }

    let list = bridge.call("sessions", json!({}))?;
    let live = list["result"]["live"].as_u64().unwrap_or(0);
    let cli_rss: u64 = list["result"]["sessions"]
        .as_array()
        .map(|all| all.iter().filter_map(|s| s["rssBytes"].as_u64()).sum())
        .unwrap_or(0);
    let bridge_rss = proc_info::rss_kib(pid).unwrap_or(0);
    let bridge_hwm = proc_info::peak_rss_kib(pid).unwrap_or(0);

    let mut warm_asks = Vec::new();
    let mut cold_asks = Vec::new();
    for round in 0..rounds.max(3) {
        let started = Instant::now();
        bridge.asks_at_once(&[(names[0].clone(), format!("warm {round}"))])?;
        warm_asks.push(started.elapsed());
        let started = Instant::now();
        bridge.asks_at_once(&[(format!("new{round}"), format!("first {round}"))])?;
        cold_asks.push(started.elapsed());
    }
    bridge.proc.finish()?;

    let one = medians[0].1;
    println!("| asks at once | wall time (median) | vs one ask |");
    println!("| --- | --- | --- |");
    for (width, took) in &medians {
        let mark = if *width > cores {
            " (more CLIs than cores)"
        } else {
            ""
        };
        println!(
            "| {width} | {:.0} ms | {:.2}x{mark} |",
            ms(*took),
            took.as_secs_f64() / one.as_secs_f64().max(f64::MIN_POSITIVE)
        );
    }
    println!(
        "claude-coded with {live} live sessions: VmRSS {:.1} MiB (peak VmHWM {:.1} MiB); \
         its {live} CLIs: {:.0} MiB in all",
        bridge_rss as f64 / 1024.0,
        bridge_hwm as f64 / 1024.0,
        cli_rss as f64 / (1024.0 * 1024.0)
    );
    println!(
        "first answer of a new session (cold CLI, full pool): median {:.0} ms; a warm ask to \
         a running session: median {:.0} ms (n={})",
        ms(median(&cold_asks)),
        ms(median(&warm_asks)),
        cold_asks.len()
    );
    Ok(())
}

/// claude-coded over its stdio.
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

    fn call(&mut self, method: &str, params: Value) -> std::io::Result<Value> {
        let id = self.send(method, params)?;
        self.proc
            .read_until(|v| v["id"] == id && v.get("method").is_none())
    }

    /// Writes one ask per `(session, prompt)` at once and reads until all are answered;
    /// returns their distinct session ids. A failed ask is an error.
    fn asks_at_once(&mut self, asks: &[(String, String)]) -> std::io::Result<BTreeSet<String>> {
        let mut open = BTreeSet::new();
        for (session, prompt) in asks {
            open.insert(self.send("ask", json!({"session": session, "prompt": prompt}))?);
        }
        let mut session_ids = BTreeSet::new();
        while !open.is_empty() {
            let answer = self.proc.read_until(|v| {
                v.get("method").is_none() && v["id"].as_u64().is_some_and(|id| open.contains(&id))
            })?;
            check(answer["result"]["ok"] == true, &answer)?;
            if let Some(id) = answer["id"].as_u64() {
                open.remove(&id);
            }
            if let Some(session_id) = answer["result"]["sessionId"].as_str() {
                session_ids.insert(session_id.to_string());
            }
        }
        Ok(session_ids)
    }
}
