//! Time to answer of `claude-coded ask` from a shell: with this project's daemon running
//! (`claude-coded start`) against without one (the ask starts a CLI for itself), next to
//! a warm ask on stdio, the bridge's best case.
//!
//! Run: `CLAUDE_BIN=$(scripts/install-claude-cli.sh) cargo bench --bench ask_cli` (with
//! the real CLI against the mock Messages API, offline); without `CLAUDE_BIN` the rows
//! run over the CLI double instead, which shows what claude-coded itself costs.
//! `ASK_BENCH_ROUNDS=<n>` sets the asks per row (default 20). It prints numbers and
//! asserts nothing about them.
//!
//! Rows, each the median and p90 of the rounds after a warm-up, taken in turns so a load
//! change on the machine hits all alike; each is measured from spawning the command (or
//! writing the request) to its answer:
//! - `warm ask on stdio`: an `ask` request to a kept `claude-coded` over its stdin;
//! - `claude-coded ask, daemon running`: the command, answered by the daemon's warm CLI;
//! - `claude-coded ask, no daemon`: the command, which starts claude-coded's core and a
//!   CLI in its own process and stops them after the answer.
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
use std::process::{Command, Stdio};

use mock_api::MockApi;
use serde_json::json;
use support::{Proc, Sandbox, check, median, ms, report, timed};

const DEFAULT_ROUNDS: usize = 20;
const WARMUP: usize = 2;

fn main() -> std::io::Result<()> {
    let real = std::env::var_os("CLAUDE_BIN").filter(|v| !v.is_empty());
    let child = real
        .clone()
        .unwrap_or_else(|| test_support::double().as_os_str().to_owned());
    let rounds = std::env::var("ASK_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_ROUNDS);
    let mock = MockApi::start();
    let root = std::env::temp_dir().join(format!("cc-ask-bench-{}", std::process::id()));
    let which = match real {
        Some(_) => "the real CLI on the mock API",
        None => "the CLI double (set CLAUDE_BIN for the real CLI)",
    };
    println!("claude-coded ask: {rounds} asks per row after {WARMUP} warm-up asks, child: {which}");
    let outcome = run(&child, &mock, &root, rounds);
    let _ = std::fs::remove_dir_all(&root);
    outcome
}

fn run(child: &OsString, mock: &MockApi, root: &Path, rounds: usize) -> std::io::Result<()> {
    let stdio = Project::new(&root.join("stdio"), child, mock)?;
    let daemon = Project::new(&root.join("daemon"), child, mock)?;
    let alone = Project::new(&root.join("alone"), child, mock)?;
    let mut kept = Proc::spawn(&mut stdio.command(&[]))?;
    let started = daemon.command(&["start"]).stderr(Stdio::null()).status()?;
    check(started.success(), &json!({"start": started.code()}))?;
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for i in 1..=WARMUP + rounds {
        let took = [
            timed(|| stdio_ask(&mut kept, i))?,
            timed(|| daemon.ask(i))?,
            timed(|| alone.ask(i))?,
        ];
        if i > WARMUP {
            for (row, t) in times.iter_mut().zip(took) {
                row.push(t);
            }
        }
    }
    let stopped = daemon.command(&["stop"]).stderr(Stdio::null()).status()?;
    check(stopped.success(), &json!({"stop": stopped.code()}))?;
    kept.finish()?;
    let [on_stdio, with_daemon, without] = times;
    report("warm ask on stdio", &on_stdio);
    report("claude-coded ask, daemon running", &with_daemon);
    report("claude-coded ask, no daemon", &without);
    println!(
        "with the daemon: {:+.1} ms over a warm ask on stdio; without it: {:.1}x slower than with it (medians)",
        ms(median(&with_daemon)) - ms(median(&on_stdio)),
        ms(median(&without)) / ms(median(&with_daemon)).max(f64::MIN_POSITIVE)
    );
    Ok(())
}

/// A project: a sandbox whose `cwd/` is the project, with its state in `state/`.
struct Project {
    sandbox: Sandbox,
    child: OsString,
    base_url: String,
}

impl Project {
    fn new(home: &Path, child: &OsString, mock: &MockApi) -> std::io::Result<Project> {
        Ok(Project {
            sandbox: Sandbox::new(home)?,
            child: child.clone(),
            base_url: mock.base_url(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.sandbox.command(
            Path::new(env!("CARGO_BIN_EXE_claude-coded")),
            &self.base_url,
        );
        command
            .args(args)
            .env("CLAUDE_CODED_STATE_DIR", self.sandbox.home.join("state"))
            .env("CLAUDE_CODED_CLAUDE_BIN", &self.child)
            .env("RUST_LOG", "error");
        command
    }

    /// `claude-coded ask -q "bench i"`, to its exit.
    fn ask(&self, i: usize) -> std::io::Result<()> {
        let prompt = format!("bench {i}");
        let output = self
            .command(&["ask", "-q", &prompt])
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()?;
        let answer = String::from_utf8_lossy(&output.stdout);
        let expected = format!("to: {prompt}\n");
        check(
            output.status.success() && answer.ends_with(&expected),
            &json!({"code": output.status.code(), "stdout": answer}),
        )
    }
}

/// An `ask` to a kept claude-coded over its stdin.
fn stdio_ask(kept: &mut Proc, i: usize) -> std::io::Result<()> {
    let request = json!({"jsonrpc": "2.0", "id": i, "method": "ask",
                         "params": {"prompt": format!("bench {i}")}});
    kept.write_line(&request)?;
    let response = kept.read_until(|v| v["id"] == i && v.get("method").is_none())?;
    check(response["result"]["ok"] == true, &response)
}
