//! Checks that the CLI double (`claude-double`, crates/claude-double) prints what the real
//! Claude Code CLI prints, shape for shape.
//!
//! For every scenario `tests/fixtures/cli/<name>.stdin.jsonl` with its
//! `<name>.stdout.jsonl` (what the real CLI printed for that stdin), the same stdin is fed
//! to the double and its stdout is compared with the real one:
//! - turns (the lines up to and including each `result`, `control_response` lines left
//!   out) must have the same sequence of kinds, a kind being `(type, subtype)` (for
//!   `stream_event`: `(type, event.type)`);
//! - each line must have every field the real line has; inside `message`, `usage`, `event`,
//!   `request` and `response` this holds recursively (arrays element by element), except in
//!   free-form values (`commands`, `agents`, `models`, `input`, `tool_input`, ...);
//! - each `control_response` of the real run must have one from the double with the same
//!   `request_id` and `subtype`, with the same fields;
//! - `session_id` never changes (and equals `--resume`/`--session-id` when given), and the
//!   double exits 0 after stdin is closed.
//!
//! All mismatches of all scenarios are reported in one failure.
//!
//! Command line: `<name>.args.json` (a JSON array) if present, else the `args=[..]` of the
//! first line of `<name>.events.txt` (the capture tool's transcript), else the plain
//! `-p --input-format stream-json --output-format stream-json --verbose`.
//!
//! The stdin lines are written by the runner rules of `test_support::replay`, the same code
//! the capture tool (`capture_cli`) feeds the real CLI with, so the double sees its
//! input at the same points of a turn as the real CLI did. Every wait times out after 10 s.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::replay::{Replay, Step, default_args, read_stdin_file, type_of};

const WAIT: Duration = Duration::from_secs(10);

/// Objects below these keys of a line are compared recursively.
const RECURSE_KEYS: &[&str] = &["message", "usage", "event", "request", "response"];
/// Free-form values: their insides differ between runs and are not compared.
const FREE_FORM_KEYS: &[&str] = &[
    "commands",
    "agents",
    "models",
    "input",
    "tool_input",
    "updatedInput",
    "modelUsage",
    "model_usage_since_last_result",
];

struct Fixture {
    name: String,
    args: Vec<String>,
    /// Raw stdin lines with their parsed JSON.
    stdin: Vec<(String, Value)>,
    /// The real CLI's stdout lines (non-JSON lines dropped).
    expected: Vec<Value>,
}

/// The committed fixtures, or `CAPTURE_FIXTURES_DIR` (as for the capture tool), so a
/// fresh capture can be checked against the double before it replaces the committed one.
fn fixtures_dir() -> PathBuf {
    match std::env::var_os("CAPTURE_FIXTURES_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cli"),
    }
}

fn kind(v: &Value) -> String {
    let t = type_of(v);
    let sub = if t == "stream_event" {
        v.pointer("/event/type")
    } else {
        v.get("subtype")
    };
    match sub.and_then(Value::as_str) {
        Some(s) => format!("{t}/{s}"),
        None => t.to_string(),
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect()
}

/// The CLI arguments of a scenario (see the module doc).
fn scenario_args(dir: &Path, name: &str) -> Result<Vec<String>, String> {
    let args_path = dir.join(format!("{name}.args.json"));
    if let Ok(text) = std::fs::read_to_string(&args_path) {
        return serde_json::from_str(&text).map_err(|e| format!("{}: {e}", args_path.display()));
    }
    let events = std::fs::read_to_string(dir.join(format!("{name}.events.txt")));
    let first = events.ok().and_then(|e| e.lines().next().map(String::from));
    if let Some(list) = first.as_deref().and_then(|l| l.split_once("args=")) {
        // Rust's `{:?}` of a string list is JSON; Python's repr uses single quotes.
        let list = list.1.trim();
        if let Ok(args) = serde_json::from_str(list) {
            return Ok(args);
        }
        if let Ok(args) = serde_json::from_str(&list.replace('\'', "\"")) {
            return Ok(args);
        }
    }
    Ok(default_args())
}

fn load_fixtures() -> Result<Vec<Fixture>, String> {
    let dir = fixtures_dir();
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            file.strip_suffix(".stdin.jsonl").map(String::from)
        })
        .filter(|name| dir.join(format!("{name}.stdout.jsonl")).exists())
        .collect();
    names.sort();
    let mut fixtures = Vec::new();
    for name in names {
        let read = |suffix: &str| {
            let path = dir.join(format!("{name}.{suffix}"));
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let stdin = read_stdin_file(&dir.join(format!("{name}.stdin.jsonl")))?;
        fixtures.push(Fixture {
            args: scenario_args(&dir, &name)?,
            expected: json_lines(&read("stdout.jsonl")?),
            stdin,
            name,
        });
    }
    Ok(fixtures)
}

/// Kills the child if the run is abandoned half-way.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

struct Runner {
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<Vec<u8>>,
    replay: Replay,
    /// The double's stdout lines that are JSON objects.
    lines: Vec<Value>,
    /// Stdout lines that are not.
    raw_problems: Vec<String>,
    eof: bool,
}

impl Runner {
    fn note_line(&mut self, raw: Vec<u8>) {
        let text = String::from_utf8_lossy(&raw);
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.is_object() => {
                self.replay.observe(&v);
                self.lines.push(v);
            }
            _ => self
                .raw_problems
                .push(format!("non-JSON-object stdout line {text:?}")),
        }
    }

    /// Writes stdin as the replay rules say, up to its last line.
    fn feed(&mut self) -> Result<(), String> {
        let mut deadline = Instant::now();
        loop {
            match self.replay.next_step() {
                Step::Write { line, .. } => self.write_line(&line)?,
                Step::Wait { what, fresh } => {
                    if fresh {
                        deadline = Instant::now() + WAIT;
                    }
                    self.read_line(&what, deadline)?;
                }
                Step::Done => return Ok(()),
            }
        }
    }

    /// Reads one stdout line (or its EOF) for `what`; fails at `deadline`.
    fn read_line(&mut self, what: &str, deadline: Instant) -> Result<(), String> {
        if self.eof {
            return Err(format!("stdout closed while waiting for {what}"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(line) => self.note_line(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => self.eof = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!("timeout ({WAIT:?}) waiting for {what}"));
            }
        }
        Ok(())
    }

    fn write_line(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin already closed")?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing the double's stdin: {e}"))
    }
}

/// Feeds the scenario's stdin to a fresh double; returns its stdout lines.
fn run_double(f: &Fixture, cwd: &Path) -> Result<Vec<Value>, String> {
    let double = test_support::double();
    let mut cmd = Command::new(double);
    cmd.args(&f.args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DOUBLE_") {
            cmd.env_remove(key);
        }
    }
    let mut child = Guard(
        cmd.spawn()
            .map_err(|e| format!("spawn {}: {e}", double.display()))?,
    );
    let stdout = child.0.stdout.take().ok_or("no stdout pipe")?;
    let mut stderr = child.0.stderr.take().ok_or("no stderr pipe")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    // Drained so a chatty stderr never blocks the double.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink);
    });

    let mut run = Runner {
        stdin: child.0.stdin.take(),
        rx,
        replay: Replay::new(f.stdin.clone()),
        lines: Vec::new(),
        raw_problems: Vec::new(),
        eof: false,
    };
    run.feed()?;
    run.stdin = None; // EOF for the double
    let deadline = Instant::now() + WAIT;
    while !run.eof {
        run.read_line("stdout EOF after stdin was closed", deadline)?;
    }
    let status = wait_exit(&mut child.0)?;
    if !status.success() {
        return Err(format!("the double exited with {status} after stdin EOF"));
    }
    if !run.raw_problems.is_empty() {
        return Err(run.raw_problems.join("; "));
    }
    Ok(run.lines)
}

fn wait_exit(child: &mut Child) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) => return Err("the double did not exit after stdin EOF".into()),
            Err(e) => return Err(format!("waiting for the double: {e}")),
        }
    }
}

/// Turns (lines up to each `result`, without `control_response` lines) and the
/// `control_response` lines by request_id.
fn split(lines: &[Value]) -> (Vec<Vec<&Value>>, HashMap<String, &Value>) {
    let mut turns = Vec::new();
    let mut current = Vec::new();
    let mut controls = HashMap::new();
    for v in lines {
        if type_of(v) == "control_response" {
            let id = v.pointer("/response/request_id").and_then(Value::as_str);
            controls.insert(id.unwrap_or("").to_string(), v);
            continue;
        }
        current.push(v);
        if type_of(v) == "result" {
            turns.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        turns.push(current);
    }
    (turns, controls)
}

/// Notes every field of `real` missing from `double` (recursively where `deep`).
fn missing_fields(path: &str, real: &Value, double: &Value, deep: bool, out: &mut Vec<String>) {
    match (real, double) {
        (Value::Object(r), Value::Object(d)) => {
            for (key, rv) in r {
                let here = format!("{path}.{key}");
                match d.get(key) {
                    None => out.push(format!("missing {here}")),
                    Some(dv) => {
                        let recurse = if deep {
                            !FREE_FORM_KEYS.contains(&key.as_str())
                        } else {
                            RECURSE_KEYS.contains(&key.as_str())
                        };
                        if recurse {
                            missing_fields(&here, rv, dv, true, out);
                        }
                    }
                }
            }
        }
        (Value::Object(_), _) => out.push(format!("{path} is not an object")),
        (Value::Array(r), Value::Array(d)) if deep => {
            for (i, (rv, dv)) in r.iter().zip(d).enumerate() {
                missing_fields(&format!("{path}[{i}]"), rv, dv, true, out);
            }
        }
        _ => {}
    }
}

fn compare(f: &Fixture, got: &[Value], problems: &mut Vec<String>) {
    let name = &f.name;
    let (want_turns, want_controls) = split(&f.expected);
    let (got_turns, got_controls) = split(got);
    if want_turns.len() != got_turns.len() {
        problems.push(format!(
            "{name}: {} turns from the real CLI, {} from the double",
            want_turns.len(),
            got_turns.len()
        ));
    }
    for (i, (want, got)) in want_turns.iter().zip(&got_turns).enumerate() {
        let want_kinds: Vec<String> = want.iter().map(|v| kind(v)).collect();
        let got_kinds: Vec<String> = got.iter().map(|v| kind(v)).collect();
        if want_kinds != got_kinds {
            problems.push(format!(
                "{name}: turn {i}: kinds differ\n    real:   {want_kinds:?}\n    double: {got_kinds:?}"
            ));
            continue;
        }
        for (j, (w, g)) in want.iter().zip(got).enumerate() {
            let mut missing = Vec::new();
            missing_fields("", w, g, false, &mut missing);
            if !missing.is_empty() {
                problems.push(format!(
                    "{name}: turn {i} line {j} ({}): {}",
                    want_kinds[j],
                    missing.join(", ")
                ));
            }
        }
    }
    let mut ids: Vec<&String> = want_controls.keys().collect();
    ids.sort();
    for id in ids {
        let want = want_controls[id];
        let Some(got) = got_controls.get(id) else {
            problems.push(format!("{name}: no control_response for request {id:?}"));
            continue;
        };
        let (ws, gs) = (
            want.pointer("/response/subtype"),
            got.pointer("/response/subtype"),
        );
        if ws != gs {
            problems.push(format!(
                "{name}: control_response {id:?}: subtype {ws:?} from the real CLI, {gs:?} from the double"
            ));
        }
        let mut missing = Vec::new();
        missing_fields("", want, got, false, &mut missing);
        if !missing.is_empty() {
            problems.push(format!(
                "{name}: control_response {id:?}: {}",
                missing.join(", ")
            ));
        }
    }

    // One session id per process; the one asked for, if any.
    let asked = f
        .args
        .windows(2)
        .find(|w| w[0] == "--session-id" || w[0] == "--resume" || w[0] == "-r")
        .map(|w| w[1].clone());
    let ids: HashSet<&str> = got
        .iter()
        .filter_map(|v| v.get("session_id").and_then(Value::as_str))
        .collect();
    if ids.len() > 1 {
        problems.push(format!(
            "{name}: several session ids from the double: {ids:?}"
        ));
    }
    if let Some(asked) = asked
        && ids.iter().any(|id| *id != asked)
    {
        problems.push(format!(
            "{name}: session id {ids:?} from the double, {asked:?} asked"
        ));
    }
}

#[test]
fn double_matches_real_cli_shapes() {
    let fixtures = match load_fixtures() {
        Ok(f) => f,
        Err(e) => panic!("loading fixtures: {e}"),
    };
    assert!(
        !fixtures.is_empty(),
        "no fixtures in {}",
        fixtures_dir().display()
    );
    let cwd = std::env::temp_dir().join(format!("double-shapes-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&cwd) {
        panic!("creating {}: {e}", cwd.display());
    }
    let mut problems = Vec::new();
    for f in &fixtures {
        match run_double(f, &cwd) {
            Ok(lines) => compare(f, &lines, &mut problems),
            Err(e) => problems.push(format!("{}: {e}", f.name)),
        }
    }
    let _ = std::fs::remove_dir_all(&cwd);
    assert!(
        problems.is_empty(),
        "the double differs from the real CLI in {} place(s) (scenarios: {}):\n{}",
        problems.len(),
        fixtures
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        problems.join("\n")
    );
}
