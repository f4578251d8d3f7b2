//! What the double does at startup, before it reads stdin: the `DOUBLE_*` knobs.
//!
//! Read at startup, in this order. The `--verbose` check (see [`crate::args`]) runs right
//! after `DOUBLE_RECORD`, before `DOUBLE_STARTUP`.
//!
//! | variable | effect |
//! | --- | --- |
//! | `DOUBLE_IGNORE_SIGTERM=1` | ignore SIGTERM (kill-escalation tests) |
//! | `DOUBLE_RECORD=<path>` | append one line `{"pid":..,"argv":[argv0,..],"env":{..},"cwd":".."}` |
//! | `DOUBLE_STARTUP=crash` | stderr `double: startup crash requested`, exit 3 |
//! | `DOUBLE_STARTUP=crash-once:<path>` | if `<path>` is missing: create it and crash as above; else start |
//! | `DOUBLE_STARTUP=crash-count:<path>:<n>` | counter file (missing = 0), incremented each start; crash while the value read is < n |
//! | `DOUBLE_STDERR_LINES=<n>` | write n lines of 100 bytes (`double: stderr filler line i ...`) to stderr before reading stdin, blocking if nobody drains the pipe |
//! | `DOUBLE_RESUME_FAILS=1` | with `--resume ID`: like the real CLI for an unknown session: stderr `No conversation found with session ID: ID`, an `error_during_execution` result line, exit 1 |
//! | `DOUBLE_INIT_DELAY_MS=<ms>` | delay the `initialize` answer (default 0; other input keeps being read meanwhile) |
//! | `DOUBLE_IGNORE_INTERRUPTS=<n>` | answer the first n interrupts that find a running turn, but do not act on them (default 0) |
//! | `DOUBLE_EXIT_DELAY_MS=<ms>` | once stdin closes, wait this long before exiting (default 0), as a CLI busy winding down does |
//! | `DOUBLE_TURN_START_DELAY_MS=<ms>` | wait this long after taking a user message before its turn starts (`system/init`); an interrupt in between finds no turn and is answered but ignored, as the real CLI does with an interrupt right behind a prompt (default 0) |
//!
//! The first two and the last three are read where they act (`main`, [`crate::control`],
//! [`crate::state`], [`crate::session`]); this module does the rest.

use std::io::Write as _;

use serde_json::{Value, json};

use crate::args::Args;
use crate::note;

/// `DOUBLE_STARTUP`, `DOUBLE_RESUME_FAILS` and `DOUBLE_STDERR_LINES`, in that order.
pub(crate) fn knobs(args: &Args) {
    if let Ok(spec) = std::env::var("DOUBLE_STARTUP") {
        startup_crash_check(&spec);
    }
    if let Some(session) = args
        .resume
        .as_deref()
        .filter(|_| std::env::var("DOUBLE_RESUME_FAILS").is_ok_and(|v| v == "1"))
    {
        resume_not_found(session);
    }
    if let Ok(n) = std::env::var("DOUBLE_STDERR_LINES") {
        match n.trim().parse::<u64>() {
            Ok(n) => stderr_filler(n),
            Err(_) => note(&format!(
                "DOUBLE_STDERR_LINES={n:?} is not a number, ignored"
            )),
        }
    }
}

pub(crate) fn record_start(path: &str, argv: &[String]) {
    let env: serde_json::Map<String, Value> = std::env::vars_os()
        .map(|(k, v)| {
            let v = v.to_string_lossy().into_owned();
            (k.to_string_lossy().into_owned(), Value::String(v))
        })
        .collect();
    let cwd = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rec = json!({
        "pid": std::process::id(),
        "argv": argv,
        "env": Value::Object(env),
        "cwd": cwd,
    });
    let mut line = match serde_json::to_vec(&rec) {
        Ok(l) => l,
        Err(e) => return note(&format!("cannot encode the DOUBLE_RECORD line: {e}")),
    };
    line.push(b'\n');
    // One write of the whole line to an O_APPEND file, so concurrent doubles do not mix lines.
    let res = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&line));
    if let Err(e) = res {
        note(&format!("cannot append to DOUBLE_RECORD={path}: {e}"));
    }
}

/// What the real CLI does for `--resume` of an unknown session: a message, an error
/// result line, exit 1 (before answering `initialize`).
fn resume_not_found(session: &str) -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "No conversation found with session ID: {session}"
    );
    let line = json!({
        "type": "result",
        "subtype": "error_during_execution",
        "duration_ms": 0u64,
        "is_error": true,
        "num_turns": 0u64,
        "session_id": session,
        "total_cost_usd": 0u64,
        "errors": [format!("No conversation found with session ID: {session}")],
    });
    if let Ok(bytes) = serde_json::to_vec(&line) {
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(&bytes);
        let _ = stdout.write_all(b"\n");
        let _ = stdout.flush();
    }
    std::process::exit(1);
}

fn startup_crash() -> ! {
    let _ = writeln!(std::io::stderr(), "double: startup crash requested");
    std::process::exit(3);
}

fn startup_crash_check(spec: &str) {
    if spec == "crash" {
        startup_crash();
    } else if let Some(path) = spec.strip_prefix("crash-once:") {
        if std::path::Path::new(path).exists() {
            return;
        }
        if let Err(e) = std::fs::write(path, b"crashed once\n") {
            note(&format!("cannot create {path}: {e}"));
        }
        startup_crash();
    } else if let Some(rest) = spec.strip_prefix("crash-count:") {
        // The count is after the last ':' so the path itself may contain ':'.
        let Some((path, n)) = rest.rsplit_once(':') else {
            return note(&format!(
                "DOUBLE_STARTUP={spec:?}: want crash-count:<path>:<n>"
            ));
        };
        let Ok(n) = n.trim().parse::<u64>() else {
            return note(&format!("DOUBLE_STARTUP={spec:?}: {n:?} is not a number"));
        };
        let seen = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if let Err(e) = std::fs::write(path, format!("{}\n", seen + 1)) {
            note(&format!("cannot write the counter {path}: {e}"));
        }
        if seen < n {
            startup_crash();
        }
    } else {
        note(&format!("DOUBLE_STARTUP={spec:?} not understood, ignored"));
    }
}

/// Writes n lines of exactly 100 bytes each, synchronously: a supervisor that does not drain
/// stderr blocks the double here, which is what the tests want to detect.
fn stderr_filler(n: u64) {
    let stderr = std::io::stderr();
    let mut w = std::io::BufWriter::new(stderr.lock());
    for i in 1..=n {
        let head = format!("double: stderr filler line {i} ");
        let line = format!("{head:.<99}\n");
        if w.write_all(line.as_bytes()).is_err() {
            return;
        }
    }
    let _ = w.flush();
}
