//! Throughput and memory of the event path: a child that floods one turn with messages.
//!
//! Run: `cargo bench --bench event_flood` (release build); `-- --quick` runs only the
//! smaller cases. The stand-in child is this executable itself: started as the CLI
//! (with `--input-format stream-json`), it answers `initialize` and `interrupt`, and
//! answers a prompt `FLOOD <n>` with a `system/init` line, `n` assistant messages of
//! about 400 bytes and a `result`; `FLOOD <n> partial` with `n` partial messages of the
//! same size instead (`stream_event` text deltas: how a long answer streams), asked for
//! with `partialMessages`. Each assistant message is a step, recorded as a `turn.step`
//! event; a partial message is only forwarded. Prints, per case:
//!
//! - events per second delivered to a client that reads stdout in 1 MiB chunks as fast
//!   as it can, and to one that reads 16 KiB per millisecond (a slow reader);
//! - events missing (gaps in `seq`, and `notificationsDropped` from `status`);
//! - the bridge's peak RSS (`VmHWM`) after the turn;
//! - the limit: the same child's bytes through `cat` into the same reader, measured just
//!   before, and each rate as a share of it (the figure to compare across runs: the
//!   machine may be busier in one run than in another, less so within one).
// Test code: a failed unwrap is a failed benchmark, its output is the report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

mod support;

use std::io::{BufRead, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Bytes of filler text in each assistant message (the line is about 400 bytes).
const FILLER: usize = 230;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--input-format") {
        flood_child();
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--raw") {
        let out = std::io::stdout().lock();
        write_turn(
            &mut BufWriter::with_capacity(1 << 20, out),
            args[i + 1].parse().unwrap(),
            Kind::named(&args[i + 2]),
        )
        .unwrap();
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let sizes: &[u64] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    println!(
        "event flood: one turn of N assistant messages, or N partial messages, of ~400 bytes \
         (+ init and result)"
    );
    for &n in sizes {
        for (kind, surfaces) in [
            (Kind::Message, &[Surface::Plain, Surface::McpRaw][..]),
            (Kind::Partial, &[Surface::PlainPartial][..]),
        ] {
            let limit = cat_limit(n, kind);
            println!(
                "N={n:>9}  cat through a pipe ({}): {:>10.0} lines/s ({} ms)",
                kind.name(),
                limit.rate(),
                limit.elapsed.as_millis()
            );
            for &surface in surfaces {
                let fast = run_case(surface, n, Reader::Fast);
                fast.print(surface, "fast reader", Some(&limit));
            }
        }
    }
    let n = if quick { 20_000 } else { 100_000 };
    for surface in [Surface::Plain, Surface::McpRaw] {
        run_case(surface, n, Reader::Slow).print(surface, "slow reader", None);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Surface {
    Plain,
    McpRaw,
    /// The plain surface with `partialMessages`, flooded with partial messages.
    PlainPartial,
}

impl Surface {
    fn name(self) -> &'static str {
        match self {
            Surface::Plain => "plain ask/event",
            Surface::McpRaw => "MCP raw events ",
            Surface::PlainPartial => "plain, partials",
        }
    }
}

#[derive(Clone, Copy)]
enum Reader {
    /// 1 MiB reads, as fast as the pipe gives.
    Fast,
    /// 16 KiB per millisecond at most (about 16 MB/s).
    Slow,
}

struct Outcome {
    n: u64,
    events: u64,
    missing: u64,
    dropped: Option<u64>,
    elapsed: Duration,
    peak_rss_kib: Option<u64>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    /// One line; with `cat`'s outcome, the rate as a share of its.
    fn print(&self, surface: Surface, reader: &str, cat: Option<&Outcome>) {
        let share = cat.map_or(String::new(), |cat| {
            format!(" = {:.0}% of cat", 100.0 * self.rate() / cat.rate())
        });
        println!(
            "N={:>9}  {} {reader}: {:>10.0} events/s{share} ({} ms), {} of {} delivered, \
             {} missing, notificationsDropped {}, bridge peak RSS {} KiB",
            self.n,
            surface.name(),
            self.rate(),
            self.elapsed.as_millis(),
            self.events,
            self.n + 2,
            self.missing,
            self.dropped.map_or("?".into(), |d| d.to_string()),
            self.peak_rss_kib.map_or("?".into(), |k| k.to_string()),
        );
    }
}

/// The child's bytes for one turn through `cat`, read in 1 MiB chunks: the pipe's limit.
fn cat_limit(n: u64, kind: Kind) -> Outcome {
    let exe = std::env::current_exe().unwrap();
    let start = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" --raw "$1" "$2" | cat"#)
        .arg(&exe)
        .arg(n.to_string())
        .arg(kind.name())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let got = stdout.read(&mut buf).unwrap();
        if got == 0 {
            break;
        }
        lines += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
    }
    child.wait().unwrap();
    Outcome {
        n,
        events: lines,
        missing: (n + 2).saturating_sub(lines),
        dropped: None,
        elapsed: start.elapsed(),
        peak_rss_kib: None,
    }
}

fn run_case(surface: Surface, n: u64, reader: Reader) -> Outcome {
    let exe = std::env::current_exe().unwrap();
    let dir = std::env::temp_dir().join(format!("cc-flood-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bridge = Command::new(env!("CARGO_BIN_EXE_claude-coded"))
        .arg("--claude-bin")
        .arg(&exe)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--cwd")
        .arg(&dir)
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = bridge.stdin.take().unwrap();
    let mut stdout = bridge.stdout.take().unwrap();
    if surface == Surface::McpRaw {
        mcp_handshake(&mut stdin, &mut stdout);
    }
    // Let the child warm up, so the case times the turn alone.
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    writeln!(stdin, "{}", ask_line(surface, n)).unwrap();
    let counted = count_events(&mut stdout, reader);
    let elapsed = start.elapsed();
    let peak_rss_kib = peak_rss(bridge.id());
    writeln!(stdin, "{}", status_line(surface)).unwrap();
    let dropped = read_dropped(&mut stdout);
    drop(stdin);
    finish(&mut bridge);
    let _ = std::fs::remove_dir_all(&dir);
    Outcome {
        n,
        events: counted.events,
        missing: counted.missing,
        dropped,
        elapsed,
        peak_rss_kib,
    }
}

fn ask_line(surface: Surface, n: u64) -> String {
    match surface {
        Surface::Plain => format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ask","params":{{"prompt":"FLOOD {n}","timeoutMs":600000}}}}"#
        ),
        Surface::McpRaw => format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"ask","arguments":{{"prompt":"FLOOD {n}","timeoutMs":600000}}}}}}"#
        ),
        Surface::PlainPartial => format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ask","params":{{"prompt":"FLOOD {n} partial","timeoutMs":600000,"partialMessages":true}}}}"#
        ),
    }
}

fn status_line(surface: Surface) -> &'static str {
    match surface {
        Surface::Plain | Surface::PlainPartial => r#"{"jsonrpc":"2.0","id":2,"method":"status"}"#,
        Surface::McpRaw => {
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"status","arguments":{"full":true}}}"#
        }
    }
}

fn mcp_handshake(stdin: &mut ChildStdin, stdout: &mut ChildStdout) {
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{"experimental":{{"claude-coded/events":{{}}}}}},"clientInfo":{{"name":"bench","version":"0"}}}}}}"#
    )
    .unwrap();
    read_line(stdout);
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )
    .unwrap();
}

/// One line, byte by byte (only used before and after the flood).
fn read_line(stdout: &mut ChildStdout) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

struct Counted {
    events: u64,
    missing: u64,
}

/// Reads until the ask's response, counting event notifications and gaps in their `seq`.
fn count_events(stdout: &mut ChildStdout, reader: Reader) -> Counted {
    let chunk = match reader {
        Reader::Fast => 1 << 20,
        Reader::Slow => 16 << 10,
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut partial: Vec<u8> = Vec::new();
    let (mut events, mut missing, mut last_seq) = (0u64, 0u64, 0u64);
    loop {
        let got = stdout.read(&mut buf[..chunk]).unwrap();
        assert!(got > 0, "the bridge closed stdout before answering");
        partial.extend_from_slice(&buf[..got]);
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &partial[start..]) {
            let line = &partial[start..start + end];
            start += end + 1;
            if let Some(seq) = event_seq(line) {
                events += 1;
                missing += seq.saturating_sub(last_seq + 1);
                last_seq = seq;
            } else if line.starts_with(br#"{"jsonrpc":"2.0","id":1,"#) {
                return Counted { events, missing };
            }
        }
        partial.drain(..start);
        if let Reader::Slow = reader {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The `seq` of an event notification (plain or MCP raw), `None` for other lines.
fn event_seq(line: &[u8]) -> Option<u64> {
    let is_event = line.starts_with(br#"{"jsonrpc":"2.0","method":"ask/event""#)
        || line.starts_with(br#"{"jsonrpc":"2.0","method":"notifications/claude-coded/event""#);
    if !is_event {
        return None;
    }
    let at = find(line, br#""seq":"#)? + 6;
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// `notificationsDropped` from the status answer (id 2).
fn read_dropped(stdout: &mut ChildStdout) -> Option<u64> {
    loop {
        let line = read_line(stdout);
        if line.is_empty() {
            return None;
        }
        if !line.contains(r#""id":2"#) {
            continue;
        }
        let at = line.find("notificationsDropped")? + "notificationsDropped".len();
        let rest = line[at..].trim_start_matches(|c: char| !c.is_ascii_digit());
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return digits.parse().ok();
    }
}

fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn finish(bridge: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if bridge.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = bridge.kill();
    let _ = bridge.wait();
}

/// The stand-in CLI: answers control requests, floods on `FLOOD <n>`, echoes otherwise.
fn flood_child() {
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    for line in stdin.lines() {
        let Ok(line) = line else { return };
        if let Some(ok) = support::control_success(&line) {
            writeln!(out, "{ok}").unwrap();
        } else if let Some(n) = support::between(&line, "FLOOD ", "\"") {
            let (n, kind) = n.split_once(' ').unwrap_or((n, "messages"));
            write_turn(&mut out, n.parse().unwrap_or(0), Kind::named(kind)).unwrap();
        } else if line.contains(r#""type":"user""#) {
            write_turn(&mut out, 0, Kind::Message).unwrap();
        }
        if out.flush().is_err() {
            return;
        }
    }
}

/// What a flood is made of.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Whole assistant messages: each is a step, recorded as a `turn.step` event.
    Message,
    /// Partial messages (`stream_event` text deltas, as `--include-partial-messages`
    /// streams a long answer): forwarded, not steps.
    Partial,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Message => "messages",
            Kind::Partial => "partial",
        }
    }

    fn named(name: &str) -> Kind {
        if name == Kind::Partial.name() {
            Kind::Partial
        } else {
            Kind::Message
        }
    }
}

/// One turn as the CLI prints it: init, `n` messages of `kind`, result.
fn write_turn(out: &mut impl Write, n: u64, kind: Kind) -> std::io::Result<()> {
    const SESSION: &str = "0b7d3c3e-5f0e-4d8a-9d55-1e0f6e2c0a11";
    writeln!(
        out,
        r#"{{"type":"system","subtype":"init","cwd":"/tmp","session_id":"{SESSION}","tools":[],"model":"flood"}}"#
    )?;
    let filler = "x".repeat(FILLER);
    for seq in 1..=n {
        if kind == Kind::Partial {
            writeln!(
                out,
                r#"{{"type":"stream_event","event":{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{filler} {seq}"}}}},"session_id":"{SESSION}","parent_tool_use_id":null,"uuid":"00000000-0000-4000-8000-{seq:012}"}}"#
            )?;
            continue;
        }
        writeln!(
            out,
            r#"{{"type":"assistant","message":{{"id":"msg_{seq:012}","type":"message","role":"assistant","model":"flood","content":[{{"type":"text","text":"{filler} {seq}"}}]}},"parent_tool_use_id":null,"session_id":"{SESSION}","uuid":"00000000-0000-4000-8000-{seq:012}"}}"#
        )?;
    }
    writeln!(
        out,
        r#"{{"type":"result","subtype":"success","is_error":false,"duration_ms":1,"num_turns":1,"result":"flooded {n}","session_id":"{SESSION}","total_cost_usd":0,"usage":{{"input_tokens":1,"output_tokens":1}},"permission_denials":[]}}"#
    )
}
