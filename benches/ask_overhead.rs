//! Ask round-trip overhead of the bridge over the CLI double.
//!
//! Run: `cargo bench --bench ask_overhead` (release build). Prints the median and p90
//! of (a) an `ask` through claude-coded and (b) the same turn written straight to the
//! double, and their difference: what the bridge adds per ask.
// Test code: a failed unwrap is a failed test, its output is the report, and its helper
// modules are shared between test crates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 300;
const WARMUP: usize = 20;

fn main() -> std::io::Result<()> {
    let double = test_support::bins::double();
    let bridge = env!("CARGO_BIN_EXE_claude-coded");
    let dir = std::env::temp_dir().join(format!("cc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // The flags claude-coded starts the CLI with, so both rows have the child print the
    // same lines (its partial messages too) and the difference is what the bridge adds.
    let direct = measure(
        Command::new(double).args([
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-partial-messages",
        ]),
        direct_turn,
    )?;
    let mut via = Command::new(bridge);
    via.arg("--claude-bin")
        .arg(double)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--cwd")
        .arg(&dir)
        .env("RUST_LOG", "error");
    let bridged = measure(&mut via, bridge_turn)?;
    std::fs::remove_dir_all(&dir)?;
    report("double alone (stream-json turn)", &direct);
    report("through claude-coded (ask)", &bridged);
    let overhead = median(&bridged).saturating_sub(median(&direct));
    println!(
        "bridge overhead per ask (median difference): {} µs",
        overhead.as_micros()
    );
    Ok(())
}

type Turn = fn(&mut ChildStdin, &mut BufReader<ChildStdout>, usize) -> std::io::Result<()>;

fn measure(command: &mut Command, turn: Turn) -> std::io::Result<Vec<Duration>> {
    let mut child: Child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("stdin"))?;
    let mut stdout = BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("stdout"))?,
    );
    let mut times = Vec::with_capacity(ROUNDS);
    for i in 0..WARMUP + ROUNDS {
        let start = Instant::now();
        turn(&mut stdin, &mut stdout, i)?;
        if i >= WARMUP {
            times.push(start.elapsed());
        }
    }
    drop(stdin);
    child.wait()?;
    Ok(times)
}

fn direct_turn(
    stdin: &mut ChildStdin,
    stdout: &mut BufReader<ChildStdout>,
    i: usize,
) -> std::io::Result<()> {
    writeln!(
        stdin,
        r#"{{"type":"user","message":{{"role":"user","content":"bench {i}"}},"parent_tool_use_id":null,"session_id":null}}"#
    )?;
    read_until(stdout, |line| line.contains(r#""type":"result""#))
}

fn bridge_turn(
    stdin: &mut ChildStdin,
    stdout: &mut BufReader<ChildStdout>,
    i: usize,
) -> std::io::Result<()> {
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":{i},"method":"ask","params":{{"prompt":"bench {i}"}}}}"#
    )?;
    let id = format!(r#""id":{i},"#);
    read_until(stdout, |line| {
        line.starts_with(r#"{"jsonrpc":"2.0","id":"#) && line.contains(&id)
    })
}

fn read_until(
    stdout: &mut BufReader<ChildStdout>,
    done: impl Fn(&str) -> bool,
) -> std::io::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("unexpected EOF"));
        }
        if done(&line) {
            return Ok(());
        }
    }
}

fn median(times: &[Duration]) -> Duration {
    percentile(times, 50)
}

fn percentile(times: &[Duration], p: usize) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[(sorted.len() - 1) * p / 100]
}

fn report(what: &str, times: &[Duration]) {
    println!(
        "{what}: median {} µs, p90 {} µs, n={}",
        median(times).as_micros(),
        percentile(times, 90).as_micros(),
        times.len()
    );
}
