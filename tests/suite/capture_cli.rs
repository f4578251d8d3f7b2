//! Capture tool: runs the real Claude Code CLI against the mock API and records
//! what it prints, to refresh `tests/fixtures/cli/*.stdout.jsonl`.
//!
//! Ignored by default; run with
//! `CLAUDE_BIN=$(scripts/install-claude-cli.sh) cargo test --test all capture_cli:: -- --ignored --test-threads=1`
//!
//! Per scenario `<name>`: `<name>.stdin.jsonl` (input, one JSON object per
//! line), optional `<name>.args.json` (the full CLI argument list, default
//! `-p --input-format stream-json --output-format stream-json --verbose`),
//! optional `<name>.setup.stdin.jsonl` (see [`capture_with`]); output
//! `<name>.stdout.jsonl` (as printed) and `<name>.events.txt` (timed log).
//!
//! Optional env: `CAPTURE_FIXTURES_DIR` (default `<crate>/tests/fixtures/cli`),
//! `CAPTURE_REQUESTS_DIR` (if set, each scenario's HTTP requests to the mock
//! are dumped there as `<name>.requests.jsonl`).
//!
//! Stdin is fed by the runner rules of `test_support::replay` (listed for
//! users in tests/fixtures/cli/README.md), the same code that feeds the CLI
//! double in `double_shapes`, so a fixture replays there as it was
//! captured here. Every wait times out after 30 s.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use mock_api::MockApi;
use serde_json::Value;
use test_support::replay::{Replay, Step, default_args, read_stdin_file, type_of};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);
const CLI_VERSION: &str = "2.1.332";

/// Ad-hoc capture of any scenario: `CAPTURE_SCENARIO=<name>` (reads
/// `<name>.stdin.jsonl`), optional `CAPTURE_ARGS` (extra CLI args, split on
/// spaces) and `CAPTURE_CLI_ENV` (extra `K=V` pairs for the CLI, split on
/// spaces). Does nothing when `CAPTURE_SCENARIO` is unset.
#[tokio::test]
#[ignore = "needs the real CLI: CLAUDE_BIN=$(scripts/install-claude-cli.sh)"]
async fn capture_named() {
    let Ok(name) = std::env::var("CAPTURE_SCENARIO") else {
        eprintln!("CAPTURE_SCENARIO not set; nothing to do");
        return;
    };
    let args = std::env::var("CAPTURE_ARGS").unwrap_or_default();
    let args: Vec<&str> = args.split_whitespace().collect();
    let env = std::env::var("CAPTURE_CLI_ENV").unwrap_or_default();
    let env: Vec<(&str, &str)> = env
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    capture_with(&name, &[], &args, &env).await;
}

#[tokio::test]
#[ignore = "needs the real CLI: CLAUDE_BIN=$(scripts/install-claude-cli.sh)"]
async fn capture_basic() {
    capture("basic").await;
}

#[tokio::test]
#[ignore = "needs the real CLI: CLAUDE_BIN=$(scripts/install-claude-cli.sh)"]
async fn capture_control() {
    capture("control").await;
}

#[tokio::test]
#[ignore = "needs the real CLI: CLAUDE_BIN=$(scripts/install-claude-cli.sh)"]
async fn capture_err400() {
    capture("err400").await;
}

#[tokio::test]
#[ignore = "needs the real CLI: CLAUDE_BIN=$(scripts/install-claude-cli.sh)"]
async fn capture_interrupt_midstream() {
    capture("interrupt_midstream").await;
}

#[tokio::test]
#[ignore = "needs the real CLI: CLAUDE_BIN=$(scripts/install-claude-cli.sh)"]
async fn capture_tool_default_touch() {
    capture("tool_default_touch").await;
}

#[tokio::test]
#[ignore = "needs the real CLI: CLAUDE_BIN=$(scripts/install-claude-cli.sh)"]
async fn capture_partial() {
    capture_with("partial", &["--include-partial-messages"], &[], &[]).await;
}

#[tokio::test]
#[ignore = "needs the real CLI: CLAUDE_BIN=$(scripts/install-claude-cli.sh)"]
async fn capture_tool_stdio_allow() {
    capture("tool_stdio_allow").await;
}

#[tokio::test]
#[ignore = "needs the real CLI: CLAUDE_BIN=$(scripts/install-claude-cli.sh)"]
async fn capture_tool_stdio_deny() {
    capture("tool_stdio_deny").await;
}

#[tokio::test]
#[ignore = "needs the real CLI: CLAUDE_BIN=$(scripts/install-claude-cli.sh)"]
async fn capture_resume() {
    capture("resume").await;
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "claude-capture-{label}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixtures_dir() -> PathBuf {
    match std::env::var_os("CAPTURE_FIXTURES_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cli"),
    }
}

struct Run {
    t0: Instant,
    stdin: Option<ChildStdin>,
    lines_rx: mpsc::UnboundedReceiver<(Instant, String)>,
    stdout: Vec<String>,
    events: String,
    replay: Replay,
    first_line_at: Option<Duration>,
    turn_started: Option<Instant>,
    turn_times: Vec<Duration>,
    stdout_eof: bool,
}

impl Run {
    fn log(&mut self, at: Instant, marker: &str, text: &str) {
        let t = at.duration_since(self.t0).as_secs_f64();
        let _ = writeln!(self.events, "{t:8.3}s {marker} {text}");
    }

    fn note_line(&mut self, at: Instant, line: String) {
        self.log(at, "<<<", &line);
        self.first_line_at
            .get_or_insert_with(|| at.duration_since(self.t0));
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        self.replay.observe(&v);
        if type_of(&v) == "result"
            && let Some(start) = self.turn_started.take()
        {
            let took = at.duration_since(start);
            self.turn_times.push(took);
            self.log(at, "---", &format!("turn took {:.3}s", took.as_secs_f64()));
        }
        self.stdout.push(line);
    }

    /// Writes stdin as the replay rules say, up to its last line.
    async fn feed(&mut self) {
        let mut deadline = tokio::time::Instant::now();
        loop {
            match self.replay.next_step() {
                Step::Write { line, starts_turn } => {
                    self.write_line(&line).await;
                    if starts_turn {
                        self.turn_started = Some(Instant::now());
                    }
                }
                Step::Wait { what, fresh } => {
                    if fresh {
                        deadline = tokio::time::Instant::now() + WAIT;
                    }
                    self.read_line(&what, deadline).await;
                }
                Step::Done => return,
            }
        }
    }

    /// Reads one stdout line (or its EOF) for `what`; panics at `deadline`.
    async fn read_line(&mut self, what: &str, deadline: tokio::time::Instant) {
        if self.stdout_eof {
            panic!("stdout closed while waiting for {what}\n{}", self.events);
        }
        match tokio::time::timeout_at(deadline, self.lines_rx.recv()).await {
            Ok(Some((at, line))) => self.note_line(at, line),
            Ok(None) => self.stdout_eof = true,
            Err(_) => panic!("timeout waiting for {what}\n{}", self.events),
        }
    }

    async fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let data = format!("{line}\n");
        tokio::time::timeout(WAIT, async {
            stdin.write_all(data.as_bytes()).await?;
            stdin.flush().await
        })
        .await
        .expect("stdin write timed out")
        .expect("write to CLI stdin");
        self.log(Instant::now(), ">>>", line);
    }
}

/// Fresh HOME (with cwd `$HOME/project`) and TMPDIR for one scenario.
struct Sandbox {
    _root: TempDir,
    home: PathBuf,
    cwd: PathBuf,
    tmp: PathBuf,
}

impl Sandbox {
    fn new(name: &str) -> Sandbox {
        let root = TempDir::new(name);
        let home = root.0.join("home");
        let cwd = home.join("project");
        let tmp = root.0.join("tmp");
        for d in [&home, &cwd, &tmp] {
            std::fs::create_dir_all(d).expect("create capture dirs");
        }
        Sandbox {
            _root: root,
            home,
            cwd,
            tmp,
        }
    }
}

/// What one CLI run produced.
struct Outcome {
    stdout: Vec<String>,
    events: String,
    summary: Value,
    exit_ok: bool,
}

async fn capture(name: &str) {
    capture_with(name, &[], &[], &[]).await;
}

/// Captures `<name>.stdin.jsonl` with the args of `<name>.args.json`, or when
/// that file is absent the default args plus `fallback_args`; `extra_args`
/// are appended in both cases. If the args hold `--resume <id>`, a setup
/// session is run first in the same HOME and cwd with `--session-id <id>`,
/// fed `<name>.setup.stdin.jsonl` (or a single `hello`).
async fn capture_with(
    name: &str,
    fallback_args: &[&str],
    extra_args: &[&str],
    extra_env: &[(&str, &str)],
) {
    let dir = fixtures_dir();
    let input = stdin_lines(&dir.join(format!("{name}.stdin.jsonl")));
    let args_path = dir.join(format!("{name}.args.json"));
    let mut args: Vec<String> = if args_path.exists() {
        let text = std::fs::read_to_string(&args_path).expect("read args.json");
        serde_json::from_str(&text).expect("args.json is a JSON array of strings")
    } else {
        let mut a = default_args();
        a.extend(fallback_args.iter().map(|a| a.to_string()));
        a
    };
    args.extend(extra_args.iter().map(|a| a.to_string()));

    let sandbox = Sandbox::new(name);
    // The setup run's log goes after the captured run's, so the first line of
    // the transcript is always the captured spawn line (with its `args=`).
    let mut setup_events = String::new();
    let resume_id = args
        .iter()
        .position(|a| a == "--resume")
        .and_then(|i| args.get(i + 1))
        .cloned();
    if let Some(id) = resume_id {
        let setup_path = dir.join(format!("{name}.setup.stdin.jsonl"));
        let setup_input = if setup_path.exists() {
            stdin_lines(&setup_path)
        } else {
            let line = r#"{"type": "user", "message": {"role": "user", "content": "hello"}, "parent_tool_use_id": null, "session_id": null}"#;
            vec![(line.to_string(), serde_json::from_str(line).expect("JSON"))]
        };
        let mut setup_args = default_args();
        setup_args.extend(["--session-id".to_string(), id]);
        let setup = run_cli(&setup_args, &setup_input, &sandbox, extra_env, None).await;
        assert!(setup.exit_ok, "setup session failed\n{}", setup.events);
        setup_events = format!(
            "--- setup session run before the captured run (creates the session to resume):\n{}",
            setup.events
        );
    }

    let req_dump = std::env::var_os("CAPTURE_REQUESTS_DIR")
        .map(|d| PathBuf::from(d).join(format!("{name}.requests.jsonl")));
    let out = run_cli(&args, &input, &sandbox, extra_env, req_dump.as_deref()).await;
    let events = out.events.clone() + &setup_events;

    let mut text = out.stdout.join("\n");
    text.push('\n');
    std::fs::write(dir.join(format!("{name}.stdout.jsonl")), text).expect("write stdout fixture");
    std::fs::write(dir.join(format!("{name}.events.txt")), &events)
        .expect("write events transcript");

    let types: Vec<String> = out
        .stdout
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
            match v.get("subtype").and_then(Value::as_str) {
                Some(sub) if type_of(&v) != "result" => format!("{}/{sub}", type_of(&v)),
                _ => type_of(&v).to_string(),
            }
        })
        .collect();
    eprintln!("{name}: {types:?}\n{}", out.summary);
    // Not an assertion: the CLI exits 1 when its last turn ended in an API
    // error, and that is real behaviour worth capturing.
    if !out.exit_ok {
        eprintln!("{name}: CLI exited with {}", out.summary["exit_code"]);
    }
    let users = input.iter().filter(|(_, v)| type_of(v) == "user").count();
    let results = types.iter().filter(|t| *t == "result").count();
    assert_eq!(results, users, "one result per user line\n{events}");
}

fn stdin_lines(path: &Path) -> Vec<(String, Value)> {
    read_stdin_file(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the CLI once with a fresh mock API, feeding `input` by the runner
/// rules; optionally dumps the mock's recorded requests to `req_dump`.
async fn run_cli(
    args: &[String],
    input: &[(String, Value)],
    sandbox: &Sandbox,
    extra_env: &[(&str, &str)],
    req_dump: Option<&Path>,
) -> Outcome {
    let claude_bin = std::env::var("CLAUDE_BIN")
        .expect("set CLAUDE_BIN=$(scripts/install-claude-cli.sh) to run the capture tool");
    let mock = MockApi::start();
    let mut cmd = Command::new(&claude_bin);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &sandbox.home)
        .env("TMPDIR", &sandbox.tmp)
        .env("ANTHROPIC_BASE_URL", mock.base_url())
        .env("ANTHROPIC_API_KEY", "test-key")
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .envs(extra_env.iter().copied())
        .current_dir(&sandbox.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let t0 = Instant::now();
    let mut child: Child = cmd.spawn().expect("spawn CLAUDE_BIN");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");

    // Lines are timestamped when read, not when the runner gets to them.
    let (tx, lines_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    // Drained concurrently so a chatty stderr cannot block the CLI.
    let stderr_task = tokio::spawn(async move {
        let mut buf = String::new();
        let _ = stderr.read_to_string(&mut buf).await;
        buf
    });

    let mut run = Run {
        t0,
        stdin: child.stdin.take(),
        lines_rx,
        stdout: Vec::new(),
        events: String::new(),
        replay: Replay::new(input.to_vec()),
        first_line_at: None,
        turn_started: None,
        turn_times: Vec::new(),
        stdout_eof: false,
    };
    run.log(
        t0,
        "---",
        &format!(
            "spawned pid={} port={} home={} cwd={} args={args:?}",
            child.id().unwrap_or(0),
            mock.port(),
            sandbox.home.display(),
            sandbox.cwd.display()
        ),
    );

    run.feed().await;

    let closed_at = Instant::now();
    run.stdin = None; // EOF for the CLI
    run.log(closed_at, "---", "stdin closed");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !run.stdout_eof {
        run.read_line("stdout EOF", deadline).await;
    }
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("CLI did not exit 30 s after stdin EOF")
        .expect("wait for CLI");
    let exited = Instant::now();
    let stderr_text = tokio::time::timeout(WAIT, stderr_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    run.log(
        exited,
        "---",
        &format!(
            "exit {status} ({:.3}s after stdin close)",
            exited.duration_since(closed_at).as_secs_f64()
        ),
    );
    let requests = mock.requests();
    let summary = serde_json::json!({
        "cli_version": CLI_VERSION,
        "args": args,
        "extra_env": extra_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "exit_code": status.code(),
        "first_stdout_line_s": run.first_line_at.map(|d| d.as_secs_f64()),
        "turn_times_s": run.turn_times.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
        "exit_after_stdin_close_s": exited.duration_since(closed_at).as_secs_f64(),
        "api_requests": requests.iter().map(|r| format!("{} {}{}", r.method, r.path,
            r.query.as_ref().map(|q| format!("?{q}")).unwrap_or_default())).collect::<Vec<_>>(),
        "api_connections": mock.connections(),
        "aborted_streams": mock.aborted_streams(),
    });
    run.log(Instant::now(), "---", &format!("summary: {summary}"));
    if !stderr_text.is_empty() {
        let _ = writeln!(run.events, "--- stderr:\n{stderr_text}");
    }
    if let Some(path) = req_dump {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create CAPTURE_REQUESTS_DIR");
        }
        let dump: String = requests
            .iter()
            .map(|r| {
                serde_json::json!({
                    "method": r.method, "path": r.path, "query": r.query,
                    "headers": r.headers, "body": r.body, "at_s": r.at.as_secs_f64(),
                    "connection": r.connection,
                })
                .to_string()
                    + "\n"
            })
            .collect();
        std::fs::write(path, dump).expect("write request dump");
    }
    Outcome {
        stdout: run.stdout,
        events: run.events,
        summary,
        exit_ok: status.success(),
    }
}
