//! MCP start-up cost, idle memory and ask round trip of the bridge, with the CLI double
//! as its child.
//!
//! Run: `cargo bench --bench mcp_startup` (release build). Prints
//! - the time from spawning `claude-coded` to reading its `initialize` response (what an
//!   editor waits for before it can list tools), over 20 fresh processes;
//! - the bridge's resident memory (VmRSS of its own process, not the child's) once idle:
//!   after the handshake, and again after a few asks;
//! - the round trip of a `tools/call` of `ask` (write the request, read its response),
//!   without and with a `progressToken` (with one, the response also waits until the
//!   client has read the last progress notification);
//! - how long claude-coded takes to exit after SIGINT (what Claude Code sends, escalating
//!   to SIGTERM after 100 ms) while its child warms up, when it is ready, and mid-turn.
// Test code: a failed unwrap is a failed test, its output is the report, and its helper
// modules are shared between test crates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const SPAWNS: usize = 20;
/// Stops timed per state of the child.
const STOPS: usize = 10;
const ASKS: usize = 10;
/// Timed asks per variant, after [`WARM_UP`] untimed ones.
const TIMED_ASKS: usize = 100;
const WARM_UP: usize = 10;
/// How long the bridge is left alone before its memory is read.
const IDLE: Duration = Duration::from_millis(500);

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

type Io = (Child, ChildStdin, BufReader<ChildStdout>);

fn main() -> std::io::Result<()> {
    let dir = std::env::temp_dir().join(format!("cc-mcp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let outcome = run(&dir);
    std::fs::remove_dir_all(&dir)?;
    outcome
}

fn run(dir: &Path) -> std::io::Result<()> {
    let mut startups = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        let started = Instant::now();
        let (child, stdin, mut stdout) = spawn(dir)?;
        let mut stdin = stdin;
        writeln!(stdin, "{INITIALIZE}")?;
        read_response(&mut stdout, "0")?;
        startups.push(started.elapsed());
        finish(child, stdin)?;
    }
    startups.sort();
    println!(
        "spawn -> initialize response over {SPAWNS} runs: median {:.2} ms, min {:.2} ms, max {:.2} ms",
        ms(startups[SPAWNS / 2]),
        ms(startups[0]),
        ms(startups[SPAWNS - 1])
    );

    stop_times(dir)?;

    let (child, mut stdin, mut stdout) = spawn(dir)?;
    writeln!(stdin, "{INITIALIZE}\n{INITIALIZED}")?;
    read_response(&mut stdout, "0")?;
    std::thread::sleep(IDLE);
    println!("idle RSS after the handshake: {} kB", rss_kb(child.id())?);
    for id in 1..=ASKS {
        let call = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"ask","arguments":{{"prompt":"hello {id}"}},"_meta":{{"progressToken":{id}}}}}}}"#
        );
        writeln!(stdin, "{call}")?;
        read_response(&mut stdout, &id.to_string())?;
    }
    std::thread::sleep(IDLE);
    println!("idle RSS after {ASKS} asks: {} kB", rss_kb(child.id())?);
    let mut next_id = ASKS + 1;
    for progress in [false, true] {
        let mut times = Vec::with_capacity(TIMED_ASKS);
        for n in 0..WARM_UP + TIMED_ASKS {
            let took = timed_ask(&mut stdin, &mut stdout, next_id, progress)?;
            next_id += 1;
            if n >= WARM_UP {
                times.push(took);
            }
        }
        times.sort();
        println!(
            "ask round trip over {TIMED_ASKS} asks, progressToken {}: median {:.2} ms, p90 {:.2} ms",
            if progress { "set" } else { "unset" },
            ms(times[TIMED_ASKS / 2]),
            ms(times[TIMED_ASKS * 9 / 10])
        );
    }
    finish(child, stdin)
}

/// SIGINT to exit, in three states of the child, over [`STOPS`] runs each.
fn stop_times(dir: &Path) -> std::io::Result<()> {
    let states: [(&str, Option<&str>, Option<&str>); 3] = [
        ("warming up", Some("5000"), None),
        ("ready", None, None),
        ("mid-turn", None, Some("SLOW 100 50")),
    ];
    for (state, init_delay, prompt) in states {
        let mut times = Vec::with_capacity(STOPS);
        for _ in 0..STOPS {
            let (mut child, mut stdin, mut stdout) = spawn_with(dir, init_delay)?;
            writeln!(stdin, "{INITIALIZE}\n{INITIALIZED}")?;
            read_response(&mut stdout, "0")?;
            if let Some(prompt) = prompt {
                let call = format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"ask","arguments":{{"prompt":"{prompt}"}}}}}}"#
                );
                writeln!(stdin, "{call}")?;
            }
            // Let the child get into the state (the double starts in a few ms).
            std::thread::sleep(Duration::from_millis(300));
            let started = Instant::now();
            // SAFETY: a plain signal to our own child process.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
            child.wait()?;
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "SIGINT -> exit, {state}, over {STOPS} runs: median {:.1} ms, max {:.1} ms",
            ms(times[STOPS / 2]),
            ms(times[STOPS - 1])
        );
    }
    Ok(())
}

fn timed_ask(
    stdin: &mut ChildStdin,
    stdout: &mut BufReader<ChildStdout>,
    id: usize,
    progress: bool,
) -> std::io::Result<Duration> {
    let meta = if progress {
        format!(r#","_meta":{{"progressToken":{id}}}"#)
    } else {
        String::new()
    };
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"ask","arguments":{{"prompt":"hello {id}"}}{meta}}}}}"#
    );
    let started = Instant::now();
    writeln!(stdin, "{call}")?;
    read_response(stdout, &id.to_string())?;
    Ok(started.elapsed())
}

fn spawn(dir: &Path) -> std::io::Result<Io> {
    spawn_with(dir, None)
}

/// `init_delay`: how long the double takes to answer `initialize` (a warm-up in progress).
fn spawn_with(dir: &Path, init_delay: Option<&str>) -> std::io::Result<Io> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_claude-coded"));
    if let Some(delay) = init_delay {
        command.env("DOUBLE_INIT_DELAY_MS", delay);
    }
    let mut child = command
        .arg("--claude-bin")
        .arg(test_support::bins::double())
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--cwd")
        .arg(dir)
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    Ok((child, stdin, BufReader::new(stdout)))
}

/// Reads lines until the response with this id (notifications are skipped).
fn read_response(stdout: &mut BufReader<ChildStdout>, id: &str) -> std::io::Result<()> {
    let wanted = format!(r#""id":{id},"#);
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("claude-coded closed stdout"));
        }
        if line.contains(&wanted) && !line.contains(r#""method""#) {
            return Ok(());
        }
    }
}

fn finish(mut child: Child, stdin: ChildStdin) -> std::io::Result<()> {
    drop(stdin);
    child.wait()?;
    Ok(())
}

fn rss_kb(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no VmRSS"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
