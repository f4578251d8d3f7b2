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

#[path = "../tests/support/mock_api.rs"]
mod mock_api;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mock_api::MockApi;
use serde_json::{Value, json};

const BRIDGE: &str = env!("CARGO_BIN_EXE_claude-coded");
const DOUBLE: &str = env!("CARGO_BIN_EXE_claude-double");
const DEFAULT_ROUNDS: usize = 20;
const WARMUP: usize = 2;

fn main() -> std::io::Result<()> {
    let real = std::env::var_os("CLAUDE_BIN").filter(|v| !v.is_empty());
    let child = real.clone().unwrap_or_else(|| DOUBLE.into());
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
    let mut kept = Kept::spawn(&mut stdio.command(&[]))?;
    let started = daemon.command(&["start"]).stderr(Stdio::null()).status()?;
    check(started.success(), &json!({"start": started.code()}))?;
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for i in 1..=WARMUP + rounds {
        let took = [
            timed(|| kept.ask(i))?,
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

/// A project: HOME with `cwd/` (the project), `tmp/` and `state/`, and an environment of
/// `PATH` plus what keeps a real CLI offline.
struct Project {
    home: PathBuf,
    child: OsString,
    base_url: String,
}

impl Project {
    fn new(home: &Path, child: &OsString, mock: &MockApi) -> std::io::Result<Project> {
        std::fs::create_dir_all(home.join("cwd"))?;
        std::fs::create_dir_all(home.join("tmp"))?;
        Ok(Project {
            home: home.to_path_buf(),
            child: child.clone(),
            base_url: mock.base_url(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BRIDGE);
        command
            .args(args)
            .current_dir(self.home.join("cwd"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("TMPDIR", self.home.join("tmp"))
            .env("CLAUDE_CODED_STATE_DIR", self.home.join("state"))
            .env("CLAUDE_CODED_CLAUDE_BIN", &self.child)
            .env("RUST_LOG", "error")
            .env("ANTHROPIC_BASE_URL", &self.base_url)
            .env("ANTHROPIC_API_KEY", "test-key")
            .env("DISABLE_TELEMETRY", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1");
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

/// A kept claude-coded on stdio.
struct Kept {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Kept {
    fn spawn(command: &mut Command) -> std::io::Result<Kept> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        Ok(Kept {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    fn ask(&mut self, i: usize) -> std::io::Result<()> {
        let request = json!({"jsonrpc": "2.0", "id": i, "method": "ask",
                             "params": {"prompt": format!("bench {i}")}});
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("stdin closed"))?;
        writeln!(stdin, "{request}")?;
        stdin.flush()?;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("claude-coded closed stdout"));
            }
            let value: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if value["id"] == i && value.get("method").is_none() {
                return check(value["result"]["ok"] == true, &value);
            }
        }
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.stdin = None;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A wrong answer is an error, so a broken setup is not measured as fast.
fn check(ok: bool, what: &Value) -> std::io::Result<()> {
    match ok {
        true => Ok(()),
        false => Err(std::io::Error::other(format!("unexpected answer: {what}"))),
    }
}

fn timed(ask: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<Duration> {
    let start = Instant::now();
    ask()?;
    Ok(start.elapsed())
}

fn median(times: &[Duration]) -> Duration {
    percentile(times, 50)
}

fn percentile(times: &[Duration], p: usize) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[(sorted.len() - 1) * p / 100]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(what: &str, times: &[Duration]) {
    println!(
        "{what}: median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms, n={}",
        ms(median(times)),
        ms(percentile(times, 90)),
        ms(percentile(times, 0)),
        ms(percentile(times, 100)),
        times.len()
    );
}
