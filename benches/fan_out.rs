//! Fan-out: a new session's first answer, cold and from a warm spare, against a warm ask.
//!
//! Run: `CLAUDE_BIN=$(scripts/install-claude-cli.sh) cargo bench --bench fan_out` (the real
//! CLI on the mock Messages API, offline); without `CLAUDE_BIN` the CLI double. One
//! claude-coded per row (`--spare-sessions 0`, then `1`), each round a warm ask to the
//! default session, then (with a spare, once `status` says one is ready) the first ask of
//! a new session. `FAN_OUT_ROUNDS=<n>` sets the rounds (default 5). A last row is the
//! anchor: the CLI alone, written to directly, its first turn after `initialize` (a
//! spare's first turn) against its second. It prints numbers and asserts nothing about
//! them; the target (issue 26) is a new session's first answer at most 2x a warm ask.
// Bench code: a failed unwrap is a failed run, its output is the report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

mod support;

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use mock_api::MockApi;
use serde_json::{Value, json};
use support::{Proc, Sandbox, check, median, ms};

const DEFAULT_ROUNDS: usize = 5;

fn main() -> std::io::Result<()> {
    let (child, which) = support::child_cli();
    let rounds = std::env::var("FAN_OUT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_ROUNDS);
    let mock = MockApi::start();
    println!("fan-out: child {which}, {rounds} rounds per row");
    println!("| spares | new session's first answer (median) | warm ask (median) | ratio |");
    println!("| --- | --- | --- | --- |");
    for spares in [0, 1] {
        let root =
            std::env::temp_dir().join(format!("cc-fan-out-bench-{}-{spares}", std::process::id()));
        let row = row(&child, &mock, &root, spares, rounds);
        let _ = std::fs::remove_dir_all(&root);
        let (first, warm) = row?;
        print_row(&format!("{spares}"), first, warm);
    }
    // The anchor: the CLI alone, its first turn after `initialize` (what a spare's first
    // turn is) against its next one, with no claude-coded in between.
    let root = std::env::temp_dir().join(format!("cc-fan-out-bench-{}-cli", std::process::id()));
    let alone = cli_alone(&child, &mock, &root, rounds);
    let _ = std::fs::remove_dir_all(&root);
    let (first, warm) = alone?;
    print_row("the CLI alone", first, warm);
    Ok(())
}

fn print_row(what: &str, first: Duration, warm: Duration) {
    println!(
        "| {what} | {:.0} ms | {:.0} ms | {:.2}x |",
        ms(first),
        ms(warm),
        first.as_secs_f64() / warm.as_secs_f64().max(f64::MIN_POSITIVE)
    );
}

/// Medians of (the first turn of a CLI that answered `initialize` and then waited a
/// second, as a spare does, its second turn) over `rounds` CLIs, written to directly.
fn cli_alone(
    child: &OsString,
    mock: &MockApi,
    root: &Path,
    rounds: usize,
) -> std::io::Result<(Duration, Duration)> {
    let sandbox = Sandbox::new(root)?;
    let (mut firsts, mut warms) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut command = sandbox.command(Path::new(child), &mock.base_url());
        command.args([
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-partial-messages",
            "--permission-prompt-tool",
            "stdio",
        ]);
        let mut cli = Proc::spawn(&mut command)?;
        let init = json!({"type": "control_request", "request_id": "init",
            "request": {"subtype": "initialize"}});
        cli.write_line(&init)?;
        cli.read_until(|v| v["type"] == "control_response")?;
        std::thread::sleep(Duration::from_secs(1));
        firsts.push(turn(&mut cli, &format!("first {round}"))?);
        warms.push(turn(&mut cli, &format!("warm {round}"))?);
        cli.finish()?;
    }
    Ok((median(&firsts), median(&warms)))
}

/// One stream-json turn written straight to the CLI, timed to its `result`.
fn turn(cli: &mut Proc, prompt: &str) -> std::io::Result<Duration> {
    let started = Instant::now();
    cli.write_line(
        &json!({"type": "user", "message": {"role": "user", "content": prompt},
        "parent_tool_use_id": null, "session_id": null}),
    )?;
    let result = cli.read_until(|v| v["type"] == "result")?;
    let took = started.elapsed();
    check(result["subtype"] == "success", &result)?;
    Ok(took)
}

/// Medians of (a new session's first answer, a warm ask) with `spares` spares.
fn row(
    child: &OsString,
    mock: &MockApi,
    root: &Path,
    spares: usize,
    rounds: usize,
) -> std::io::Result<(Duration, Duration)> {
    let sandbox = Sandbox::new(root)?;
    let mut command = support::claude_coded(&sandbox, root, child, &mock.base_url());
    command
        .args(["--max-sessions", &(rounds + 1).to_string()])
        .args(["--spare-sessions", &spares.to_string()]);
    let mut client = Client {
        proc: Proc::spawn(&mut command)?,
        next_id: 0,
    };
    client.ask("default", "warm up")?;
    let (mut firsts, mut warms) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        warms.push(client.ask("default", &format!("warm {round}"))?);
        while spares > 0 && client.call("status", json!({}))?["result"]["spares"]["ready"] == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        firsts.push(client.ask(&format!("new{round}"), "first")?);
    }
    client.proc.finish()?;
    Ok((median(&firsts), median(&warms)))
}

/// claude-coded over its stdio.
struct Client {
    proc: Proc,
    next_id: u64,
}

impl Client {
    fn call(&mut self, method: &str, params: Value) -> std::io::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.proc.write_line(&request)?;
        self.proc
            .read_until(|v| v["id"] == id && v.get("method").is_none())
    }

    /// An ask, timed from writing it to reading its answer (a failed ask is an error).
    fn ask(&mut self, session: &str, prompt: &str) -> std::io::Result<Duration> {
        let started = Instant::now();
        let answer = self.call("ask", json!({"session": session, "prompt": prompt}))?;
        let took = started.elapsed();
        check(answer["result"]["ok"] == true, &answer)?;
        Ok(took)
    }
}
