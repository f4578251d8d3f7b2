//! Ask latency with the real Claude Code CLI against the mock Messages API (offline):
//! a warm child kept by claude-coded versus spawning `claude -p` for every ask.
//!
//! Run: `CLAUDE_BIN=$(scripts/install-claude-cli.sh) cargo bench --bench real_cli_latency`
//! (`REAL_CLI_ROUNDS=<n>` changes the number of asks per row, default 30). Without
//! `CLAUDE_BIN` it prints how to enable it and exits 0. It prints numbers; it asserts
//! nothing about them, so a slow machine cannot fail a build.
//!
//! Rows, each the median and p90 of `ROUNDS` asks after a few warm-up asks, measured
//! in turns (one ask of each row per round):
//! - `claude-coded ask (warm child)`: an `ask` over the plain surface, from writing the
//!   request to reading its response (the `ask/event` notifications before it included);
//! - `real CLI alone (warm stream-json turn)`: the same turn written straight to a kept
//!   `claude --input-format stream-json` process, to read off what the bridge adds;
//! - `claude -p per ask`: spawning `claude -p <prompt> --output-format json` and waiting
//!   for it to exit, what a client without a kept-alive child pays per ask.
//!
//! Every process gets a sandbox HOME, cwd and TMPDIR and an environment of `PATH` plus the
//! variables that keep the CLI on loopback (as in `tests/suite/e2e_real_cli.rs`).
// Test code: a failed unwrap is a failed test, its output is the report, and its helper
// modules are shared between test crates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use mock_api::MockApi;
use serde_json::{Value, json};
use support::{Proc, Sandbox, check, median, ms, report, timed};

const DEFAULT_ROUNDS: usize = 30;
const WARMUP: usize = 3;

fn main() -> std::io::Result<()> {
    let Some(claude) = std::env::var_os("CLAUDE_BIN").filter(|v| !v.is_empty()) else {
        println!(
            "skipped: set CLAUDE_BIN=$(scripts/install-claude-cli.sh) to run the real-CLI benchmark"
        );
        return Ok(());
    };
    let claude = PathBuf::from(claude);
    let rounds = std::env::var("REAL_CLI_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_ROUNDS);
    let mock = MockApi::start();
    let root = std::env::temp_dir().join(format!("cc-real-bench-{}", std::process::id()));
    let outcome = run(&claude, &mock, &root, rounds);
    let _ = std::fs::remove_dir_all(&root);
    outcome
}

fn run(claude: &Path, mock: &MockApi, root: &Path, rounds: usize) -> std::io::Result<()> {
    println!(
        "real CLI latency: {rounds} asks per row after {WARMUP} warm-up asks, mock API at {}",
        mock.base_url()
    );
    let bridge_box = Sandbox::new(&root.join("bridge"))?;
    let mut bridge = bridge_box.command(
        Path::new(env!("CARGO_BIN_EXE_claude-coded")),
        &mock.base_url(),
    );
    bridge
        .arg("--claude-bin")
        .arg(claude)
        .arg("--state-dir")
        .arg(bridge_box.home.join("state"))
        .arg("--cwd")
        .arg(&bridge_box.cwd)
        .env("RUST_LOG", "error");
    let cold = Instant::now();
    let mut bridge = Proc::spawn(&mut bridge)?;
    bridge_ask(&mut bridge, 0)?;
    let cold = cold.elapsed();

    let stream_box = Sandbox::new(&root.join("stream"))?;
    let mut direct = stream_box.command(claude, &mock.base_url());
    direct.args([
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
    ]);
    let mut direct = Proc::spawn(&mut direct)?;
    let oneshot_box = Sandbox::new(&root.join("oneshot"))?;

    // The rows take turns ask by ask, so a load change on the machine (a build next
    // door) hits all three alike instead of skewing one row.
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for i in 1..=WARMUP + rounds {
        let took = [
            timed(|| bridge_ask(&mut bridge, i))?,
            timed(|| stream_json_turn(&mut direct, i))?,
            timed(|| print_mode_ask(&oneshot_box, claude, mock, i))?,
        ];
        if i > WARMUP {
            for (row, t) in times.iter_mut().zip(took) {
                row.push(t);
            }
        }
    }
    bridge.finish()?;
    direct.finish()?;
    let [bridged, alone, oneshot] = times;

    println!(
        "claude-coded first ask (spawn of claude-coded + cold CLI): {} ms",
        cold.as_millis()
    );
    report("claude-coded ask (warm child)", &bridged);
    report("real CLI alone (warm stream-json turn)", &alone);
    report("claude -p per ask (spawn each time)", &oneshot);
    println!(
        "bridge overhead (median difference): {:.1} ms; claude -p / claude-coded (medians): {:.1}x",
        ms(median(&bridged)) - ms(median(&alone)),
        ms(median(&oneshot)) / ms(median(&bridged)).max(f64::MIN_POSITIVE)
    );
    Ok(())
}

fn bridge_ask(proc: &mut Proc, i: usize) -> std::io::Result<()> {
    let request = json!({"jsonrpc": "2.0", "id": i, "method": "ask",
                         "params": {"prompt": format!("bench {i}")}});
    proc.write_line(&request)?;
    let response = proc.read_until(|v| v["id"] == i && v.get("method").is_none())?;
    check(response["result"]["ok"] == true, &response)
}

fn stream_json_turn(proc: &mut Proc, i: usize) -> std::io::Result<()> {
    let user = json!({"type": "user", "message": {"role": "user", "content": format!("bench {i}")},
                      "parent_tool_use_id": null, "session_id": null});
    proc.write_line(&user)?;
    let result = proc.read_until(|v| v["type"] == "result")?;
    check(result["is_error"] == false, &result)
}

fn print_mode_ask(
    sandbox: &Sandbox,
    claude: &Path,
    mock: &MockApi,
    i: usize,
) -> std::io::Result<()> {
    let output = sandbox
        .command(claude, &mock.base_url())
        .args(["-p", &format!("bench {i}"), "--output-format", "json"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    let result: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    check(
        output.status.success() && result["is_error"] == false,
        &result,
    )
}
