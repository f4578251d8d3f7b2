//! What the bridge adds to one ask, and how fast the plain surface answers the small
//! methods.
//!
//! Run: `cargo bench --bench ask_overhead` (release build; `-- --rounds N`, default 300).
//!
//! A stand-in CLI runs twice at once: once driven straight (stream-json on its stdin),
//! once under claude-coded (an `ask` on its stdin). It is this executable itself
//! (started with `--input-format`): it answers every control request at once, and a
//! prompt with the eleven lines the CLI prints for a short answer (init, status, the
//! partial messages, the message, the result), each written and flushed on its own as
//! the CLI does. Nothing else runs in it, so its own time is tens of microseconds and
//! steady, and the difference is the bridge's. (The CLI double, a fuller imitation with
//! its own runtime, took about 1 ms a turn with a few hundred microseconds of jitter,
//! which the differences inherited.) Each round makes one turn of each,
//! back to back, the order alternating from round to round, so both see the same moment
//! of a machine others may be using; the figure is the median (and p90) of the per-round
//! differences, bridged minus direct, not a difference of two medians taken minutes apart.
//!
//! Then the round trips of `ping`, `status`, `events` (the default first page, and a
//! poll from the newest cursor, which finds nothing new), and `wait` as a client polls a
//! running background turn (`timeoutMs: 0`), each on the plain surface.
// Test code: a failed unwrap is a failed test, its output is the report, and its helper
// modules are shared between test crates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const WARMUP: usize = 20;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    if args.iter().any(|a| a == "--input-format") {
        stand_in();
        return Ok(());
    }
    let stand_in = std::env::current_exe()?;
    let bridge = env!("CARGO_BIN_EXE_claude-coded");
    let dir = std::env::temp_dir().join(format!("cc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // The flags claude-coded starts the CLI with, so both children print the same lines
    // (their partial messages too) and the difference is what the bridge adds.
    let mut direct = Piped::spawn(Command::new(&stand_in).args([
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-partial-messages",
    ]))?;
    let mut bridged = Piped::spawn(
        Command::new(bridge)
            .arg("--claude-bin")
            .arg(&stand_in)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--cwd")
            .arg(&dir)
            .env("RUST_LOG", "error"),
    )?;
    let mut ids = 0u64;
    let mut pairs = Pairs::default();
    for i in 0..WARMUP + rounds {
        let (d, b) = if i % 2 == 0 {
            let d = timed(|| direct_turn(&mut direct, i))?;
            (d, timed(|| bridge_turn(&mut bridged, &mut ids, i))?)
        } else {
            let b = timed(|| bridge_turn(&mut bridged, &mut ids, i))?;
            (timed(|| direct_turn(&mut direct, i))?, b)
        };
        if i >= WARMUP {
            pairs.push(d, b);
        }
    }
    direct.close()?;
    pairs.report(rounds);
    small_methods(&mut bridged, &mut ids, rounds)?;
    bridged.close()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A child with its stdin and (buffered) stdout.
struct Piped {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Piped {
    fn spawn(command: &mut Command) -> std::io::Result<Piped> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Ok(Piped {
            child,
            stdin,
            stdout,
        })
    }

    fn send(&mut self, line: &str) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes())?;
        stdin.write_all(b"\n")
    }

    /// Reads lines until one passes `done`; returns it.
    fn read_until(&mut self, done: impl Fn(&str) -> bool) -> std::io::Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("unexpected EOF"));
            }
            if done(&line) {
                return Ok(line);
            }
        }
    }

    /// One request and its response (notifications before it are skipped).
    fn call(&mut self, id: u64, method: &str, params: &str) -> std::io::Result<String> {
        self.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
        ))?;
        let head = format!(r#"{{"jsonrpc":"2.0","id":{id},"#);
        self.read_until(|line| line.starts_with(&head))
    }

    fn close(mut self) -> std::io::Result<()> {
        drop(self.stdin.take());
        self.child.wait()?;
        Ok(())
    }
}

fn timed(turn: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<Duration> {
    let start = Instant::now();
    turn()?;
    Ok(start.elapsed())
}

fn direct_turn(child: &mut Piped, i: usize) -> std::io::Result<()> {
    child.send(&format!(
        r#"{{"type":"user","message":{{"role":"user","content":"bench {i}"}},"parent_tool_use_id":null,"session_id":null}}"#
    ))?;
    child
        .read_until(|line| line.contains(r#""type":"result""#))
        .map(drop)
}

fn bridge_turn(bridge: &mut Piped, ids: &mut u64, i: usize) -> std::io::Result<()> {
    *ids += 1;
    let answer = bridge.call(*ids, "ask", &format!(r#"{{"prompt":"bench {i}"}}"#))?;
    assert!(answer.contains(r#""result":{"#), "{answer}");
    Ok(())
}

/// The direct and bridged times of each round.
#[derive(Default)]
struct Pairs {
    direct: Vec<Duration>,
    bridged: Vec<Duration>,
}

impl Pairs {
    fn push(&mut self, direct: Duration, bridged: Duration) {
        self.direct.push(direct);
        self.bridged.push(bridged);
    }

    fn report(&self, rounds: usize) {
        report("stand-in alone (stream-json)   ", &self.direct);
        report("through claude-coded (ask)     ", &self.bridged);
        // Signed: in a round where the machine hiccuped during the direct turn, the
        // bridged one may come out faster.
        let mut added: Vec<i128> = self
            .direct
            .iter()
            .zip(&self.bridged)
            .map(|(d, b)| b.as_nanos() as i128 - d.as_nanos() as i128)
            .collect();
        added.sort_unstable();
        let at = |p: usize| added[(added.len() - 1) * p / 100] / 1000;
        println!(
            "bridge overhead per ask (median of {rounds} paired differences, interleaved): \
             median {} µs, p10 {} µs, p90 {} µs",
            at(50),
            at(10),
            at(90)
        );
    }
}

/// The round trips of the methods a client calls between asks.
fn small_methods(bridge: &mut Piped, ids: &mut u64, rounds: usize) -> std::io::Result<()> {
    let mut next = || {
        *ids += 1;
        *ids
    };
    let ping = round_trips(rounds, || bridge.call(next(), "ping", "{}").map(drop))?;
    report("ping                           ", &ping);
    let status = round_trips(rounds, || bridge.call(next(), "status", "{}").map(drop))?;
    report("status                         ", &status);
    let page = round_trips(rounds, || bridge.call(next(), "events", "{}").map(drop))?;
    report("events (first page)           ", &page);
    // A page that is not truncated ends at the newest event: its cursor is the next one's.
    let newest = bridge.call(next(), "events", r#"{"limit":1000}"#)?;
    assert!(newest.contains(r#""truncated":false"#), "{newest}");
    let cursor = number_after(&newest, r#""nextSeq":"#).saturating_sub(1);
    let params = format!(r#"{{"since":{cursor}}}"#);
    let poll = round_trips(rounds, || bridge.call(next(), "events", &params).map(drop))?;
    report("events (poll, nothing new)     ", &poll);
    let handle = bridge.call(
        next(),
        "ask",
        r#"{"prompt":"SLOW ms=600000 chunks=1","background":true}"#,
    )?;
    let turn_id = string_after(&handle, r#""turnId":""#);
    let params = format!(r#"{{"turnId":"{turn_id}","timeoutMs":0}}"#);
    let wait = round_trips(rounds, || {
        let answer = bridge.call(next(), "wait", &params)?;
        assert!(answer.contains(r#""running":true"#), "{answer}");
        Ok(())
    })?;
    report("wait (running turn, timeout 0) ", &wait);
    bridge
        .call(next(), "cancel", &format!(r#"{{"turnId":"{turn_id}"}}"#))
        .map(drop)
}

fn round_trips(
    rounds: usize,
    mut call: impl FnMut() -> std::io::Result<()>,
) -> std::io::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(rounds);
    for i in 0..WARMUP + rounds {
        let took = timed(&mut call)?;
        if i >= WARMUP {
            times.push(took);
        }
    }
    Ok(times)
}

fn number_after(text: &str, key: &str) -> u64 {
    let at = text.find(key).unwrap() + key.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

fn string_after(text: &str, key: &str) -> String {
    let at = text.find(key).unwrap() + key.len();
    text[at..].chars().take_while(|&c| c != '"').collect()
}

fn percentile(times: &[Duration], p: usize) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[(sorted.len() - 1) * p / 100]
}

fn report(what: &str, times: &[Duration]) {
    println!(
        "{what}: median {:>5} µs, p90 {:>5} µs, n={}",
        percentile(times, 50).as_micros(),
        percentile(times, 90).as_micros(),
        times.len()
    );
}

/// The stand-in CLI: answers control requests, and each prompt with one short turn; a
/// prompt that says `SLOW` gets nothing until an interrupt, then its result.
fn stand_in() {
    let stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    let mut slow = false;
    for line in stdin.lines() {
        let Ok(line) = line else { return };
        let mut lines: Vec<String> = Vec::new();
        if let Some(answer) = support::control_success(&line) {
            lines.push(answer);
            if std::mem::take(&mut slow) && line.contains(r#""subtype":"interrupt""#) {
                lines.push(TURN[TURN.len() - 1].replace("SESSION", SESSION));
            }
        } else if line.contains("SLOW") {
            slow = true;
        } else if line.contains(r#""type":"user""#) {
            lines.extend(TURN.iter().map(|l| l.replace("SESSION", SESSION)));
        }
        for line in lines {
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return;
            }
        }
    }
}

const SESSION: &str = "59dfe014-d17d-46be-bd4d-dbbe40f2ae51";

/// What the CLI prints for a short answer with partial messages (as the double does).
const TURN: [&str; 11] = [
    r#"{"type":"system","subtype":"init","cwd":"/tmp","session_id":"SESSION","tools":["Bash","Edit","Read"],"mcp_servers":[],"model":"claude-opus-5-5","permissionMode":"default","slash_commands":["compact"],"apiKeySource":"none","output_style":"default","uuid":"a8665b37-abf1-4562-af98-14e140d75ed0"}"#,
    r#"{"type":"system","subtype":"status","status":"requesting","session_id":"SESSION","uuid":"a8665b37-abf1-4562-af98-14e140d75edf"}"#,
    r#"{"type":"stream_event","event":{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-opus-5-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}},"session_id":"SESSION","parent_tool_use_id":null,"uuid":"a8665b37-abf1-4562-af98-14e140d75ee1"}"#,
    r#"{"type":"stream_event","event":{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}},"session_id":"SESSION","parent_tool_use_id":null,"uuid":"a8665b37-abf1-4562-af98-14e140d75ee2"}"#,
    r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"mock reply"}},"session_id":"SESSION","parent_tool_use_id":null,"uuid":"a8665b37-abf1-4562-af98-14e140d75ee3"}"#,
    r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" to: bench"}},"session_id":"SESSION","parent_tool_use_id":null,"uuid":"a8665b37-abf1-4562-af98-14e140d75ee4"}"#,
    r#"{"type":"assistant","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"text","text":"mock reply to: bench"}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":5}},"parent_tool_use_id":null,"session_id":"SESSION","uuid":"a8665b37-abf1-4562-af98-14e140d75ee5"}"#,
    r#"{"type":"stream_event","event":{"type":"content_block_stop","index":0},"session_id":"SESSION","parent_tool_use_id":null,"uuid":"a8665b37-abf1-4562-af98-14e140d75ee6"}"#,
    r#"{"type":"stream_event","event":{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}},"session_id":"SESSION","parent_tool_use_id":null,"uuid":"a8665b37-abf1-4562-af98-14e140d75ee7"}"#,
    r#"{"type":"stream_event","event":{"type":"message_stop"},"session_id":"SESSION","parent_tool_use_id":null,"uuid":"a8665b37-abf1-4562-af98-14e140d75ee8"}"#,
    r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":1,"duration_api_ms":1,"num_turns":1,"result":"mock reply to: bench","stop_reason":"end_turn","session_id":"SESSION","total_cost_usd":0.00014,"usage":{"input_tokens":10,"output_tokens":5},"permission_denials":[],"uuid":"a8665b37-abf1-4562-af98-14e140d75ee9"}"#,
];
