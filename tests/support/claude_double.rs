//! `claude-double`: a scripted stream-json test double of the Claude Code CLI 2.1.332.
//!
//! Tests spawn it in place of the real `claude`. Its output lines have the same shapes as
//! the real CLI's (same `type`/`subtype`, field names, nesting, order of messages within a
//! turn, top-level key order; see `tests/fixtures/cli/`), but what it does is chosen by the
//! prompt and by environment variables, so every failure mode can be produced on demand.
//!
//! # Command line
//!
//! Accepts the real CLI flags: `-p`/`--print`, `--verbose`, `--include-partial-messages`,
//! `--input-format F`, `--output-format F`, `--model M`, `--resume ID` (`-r`),
//! `--session-id ID`, `--permission-mode M`, `--permission-prompt-tool T`, `--max-turns N`,
//! `--append-system-prompt S`, and the multi-valued `--allowedTools X..`,
//! `--disallowedTools X..`, `--mcp-config X..`, `--add-dir D..` (each takes every following
//! argument up to the next one starting with `-`). `--flag=value` works too. A value-taking
//! flag consumes the next argument unless it starts with `--` or is `-p`. A few more real
//! flags (`--continue`, `--fork-session`, `--settings`, `--system-prompt`, ...) are accepted
//! and ignored. Unknown flags and stray arguments are noted on stderr and ignored.
//! `--output-format stream-json` without `--verbose` prints
//! `Error: When using --print, --output-format=stream-json requires --verbose` to stderr and
//! exits 1, as the real CLI does.
//!
//! `session_id` is fixed for the life of the process: `--session-id`, else `--resume`, else a
//! random UUID v4. `model` comes from `--model` (default `claude-opus-5-5`), `permissionMode`
//! from `--permission-mode` (default `default`); both can be changed by `set_model` and
//! `set_permission_mode` and show in the next turn's `system/init`.
//!
//! # Lifecycle
//!
//! Prints nothing until the first stdin line. One process serves many turns, one at a time:
//! user messages that arrive during a turn are queued and run after it, in order. stdin is
//! read concurrently with the running turn (control requests are answered mid-turn). On stdin
//! EOF it finishes the turn in flight and the queued ones, then exits 0 at once (a few ms
//! when idle). A HANG or CLOSE_STDOUT turn never finishes, so such a process ignores EOF.
//! Every stdout line is written whole and flushed by a single writer. If writing stdout fails
//! (the reader went away) it notes that on stderr and exits 1.
//!
//! # Environment knobs (read at startup, in this order)
//!
//! The `--verbose` check above runs right after `DOUBLE_RECORD`, before `DOUBLE_STARTUP`.
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
//! | `DOUBLE_TURN_START_DELAY_MS=<ms>` | wait this long after taking a user message before its turn starts (`system/init`); an interrupt in between finds no turn and is answered but ignored, as the real CLI does with an interrupt right behind a prompt (default 0) |
//!
//! # Control protocol (stdin `{"type":"control_request","request_id":ID,"request":{"subtype":..}}`)
//!
//! Answered with `{"type":"control_response","response":{"subtype":"success","request_id":ID,"response":{..}}}`:
//!
//! | subtype | response |
//! | --- | --- |
//! | `initialize` | the real key set (`commands`, `agents`, `output_style`, `available_output_styles`, `user_output_styles_dir`, `models`, `account`, `pid` (the double's pid), `claude_code_version` `"2.1.332"`, `current_permission_mode`, ..., `session_state` (`idle`/`running`), `capabilities`), small contents; the envelope (beside `response`) also has `pending_permission_requests:[]` and `pending_user_dialog_requests:[]`, as the real one |
//! | `interrupt` | `{"still_queued":[]}`, written first; then the running turn, if interruptible, ends (see below) |
//! | `set_model` | `{}`; `request.model` (missing or `default` = `claude-opus-5-5`) is used from the next turn |
//! | `set_permission_mode` | `{}`; `request.mode` is used from the next turn |
//! | `mcp_status` | `{"mcpServers":[]}` |
//! | `get_context_usage` | small object (`categories`, `totalTokens`, `maxTokens`, `percentage`, `model`, ...) |
//! | anything else | `{"subtype":"error","request_id":ID,"error":"Unsupported control request subtype: X"}` |
//!
//! Other stdin lines: `control_response` answers the double's own `can_use_tool` request with
//! that `request_id` (others are noted on stderr); `control_cancel_request` and `keep_alive`
//! are ignored; user turns are `{"type":"user","message":{"content":..}}` where `content` is a
//! string or an array of blocks whose `text` fields are concatenated; a line that is not JSON,
//! or has another `type`, is noted on stderr and ignored.
//!
//! An interrupt takes effect once the turn's `system/init` line has been written. An
//! interrupted SLOW turn writes the block it was streaming as an `assistant` line with
//! `"aborted":true` (text `slow chunk i`, as the real CLI writes the partial block), then a
//! `user` line with content `[{"type":"text","text":"[Request interrupted by user]"}]`, then a
//! `result` with `subtype:"error_during_execution"`, `is_error:true`, no `result` field,
//! `errors:[..]`, `stop_reason:null`, `terminal_reason:"aborted_streaming"`. A RUN_TOOL turn
//! interrupted while waiting for `can_use_tool` writes `{"type":"control_cancel_request",
//! "request_id":..}`, a rejected `tool_result`, the interrupted `user` line, and a result with
//! `terminal_reason:"aborted_tools"`. Other turns finish normally (they do not wait on
//! anything); HANG and CLOSE_STDOUT are not interruptible.
//!
//! # Turns
//!
//! Every turn starts with a `system/init` line (real key set; `cwd` is the actual cwd,
//! `additional_directories` from `--add-dir`). Assistant lines carry `message.id`
//! `msg_double_NNNN` (one per simulated API call, process-wide counter from 1, shared by the
//! blocks of one call), `request_id` `req_double_<12 hex>`, RFC 3339 UTC `timestamp`. Each
//! `result` has the real key order (`type` is not first), `result_index` counting from 0,
//! `queued_turn_count` = user messages waiting, per-turn `usage` (10 input and 5 output tokens per API call, cache 0)
//! and `total_cost_usd`/`modelUsage` CUMULATIVE over the process: every turn that writes a
//! result costs 0.00014 (10 in / 5 out tokens) per simulated API call (RUN_TOOL makes two),
//! and an `ERR400` turn costs nothing, as with the real CLI.
//!
//! With `--include-partial-messages`, each simulated API call also writes a
//! `system/status` (`requesting`) line and `stream_event` lines as the real CLI does:
//! `message_start`, per block `content_block_start`, two `content_block_delta` (text in two
//! halves; one `thinking_delta`/`input_json_delta` + `signature_delta` for other blocks), the
//! `assistant` line, `content_block_stop`; then `message_delta`, `message_stop`; the result
//! then has `begun_message_ids`.
//!
//! The prompt's first whitespace-separated word picks the behaviour (case-sensitive).
//! Arguments are `key=value` or bare numbers as shown; anything unparsable (e.g.
//! `SLOW please`) gives the default.
//!
//! | prompt | lines after `system/init` | result |
//! | --- | --- | --- |
//! | anything else | assistant text `mock reply #N to: <prompt>` (N = turn number in this process, from 1) | success, `result` = that text |
//! | `SLOW [ms=200] [chunks=5]` | `chunks` assistant lines `slow chunk 1`.. each after `ms` ms (one API call) | success, `result` = the texts concatenated (`slow chunk 1slow chunk 2..`); interruptible |
//! | `HANG` | nothing, ever; interrupts are answered but ignored; stdin EOF ignored | none |
//! | `CRASH [code=1]` (or `CRASH 7`) | assistant `about to crash`; stderr `double: crashing on request`; exit with that code | none |
//! | `KILL` | SIGKILL to itself | none |
//! | `GARBAGE` | raw lines `this is not json`, `{broken`, `[1,2,3]`, `42`, `"a string"`, an empty line, `{"no_type":true}`, bytes `ff fe` + ` invalid utf-8`, `{"type":"future_message_kind","data":1}`; then the default reply | success (default reply) |
//! | `HUGE [bytes=2097152]` (e.g. `HUGE 10000000`) | assistant text of exactly `bytes` `x` | success, `result` = the same text |
//! | `ERR400` | synthetic assistant (model `<synthetic>`, `is_api_error_message:true`, `api_error_status:400`) text `API Error: 400 mock 400` | `subtype:"success"`, `is_error:true`, `terminal_reason:"api_error"`, `api_error_status:400`, `stop_reason:"stop_sequence"`, `result` = that text |
//! | `MAXTURNS` | assistant text `mock reply #N to: MAXTURNS` | `error_max_turns`, `is_error:true`, `terminal_reason:"max_turns"`, `errors:["Reached maximum number of turns (K)"]` (K = `--max-turns`, default 1), no `result` |
//! | `RUN_TOOL <command..>` | assistant text `I'll run a command.`; assistant `tool_use` `{id:"toolu_double_NNNN",name:"Bash",input:{command,description:"Run a test command"}}` (same message id); then see below | success, `num_turns:2`, `result` = the final text |
//! | `STDERR [n=1]` | n stderr lines `double: stderr line i/n in turn N`; then the default reply | success |
//! | `CLOSE_STDOUT` | fd 1 closed; keeps running (later writes dropped), ignores stdin EOF | none |
//! | `UNKNOWN` | `{"type":"system","subtype":"brand_new_subtype",..}`, `{"type":"rate_limit_event",..}`; then the default reply | success |
//! | `KEEPALIVE [ms=100] [n=5]` | n `{"type":"keep_alive"}` lines, ms apart; then the default reply | success |
//! | `SPAWN_GRANDCHILD` | spawns `sleep 1000` (in the double's process group, like a tool); assistant text `grandchild <pid>` | success, same text |
//! | `SPAWN_DETACHED` | runs `sh -c 'setsid nohup sleep 1000 >/dev/null 2>&1 & echo $!'`, as a Bash tool may: the `sleep` leaves the process group and session, and is orphaned when `sh` exits; assistant text `detached <pid>` | success, same text |
//! | `LEAK <VAR>` | stderr `double: leaking VAR=<value>`, a non-JSON stdout line containing the value; then the default reply | success |
//! | `MULTI` | one API call: assistant `thinking`, assistant text `multi text 1`, assistant text `multi text 2`; then `system/status` (`status:null`) | success, `result` = `multi text 1multi text 2` |
//!
//! RUN_TOOL never runs the command. `toolu_double_NNNN` counts tool uses in the process from 1.
//! Permission, by the mode in force and `--permission-prompt-tool`:
//! - `bypassPermissions` mode: allowed at once.
//! - `--permission-prompt-tool stdio`: writes `{"type":"control_request","request_id":<uuid>,
//!   "request":{"subtype":"can_use_tool","tool_name":"Bash","display_name":"Bash","input":..,
//!   "description":..,"permission_suggestions":[..],"blocked_path":..,"tool_use_id":..}}` and
//!   waits for the matching `control_response`: `behavior:"allow"` gives a `user`
//!   `tool_result` `(Bash completed with no output)` with `is_error:false`; `behavior:"deny"`
//!   (or an error response, or stdin EOF) gives a `tool_result` with the deny message,
//!   `is_error:true`, listed in `permission_denials`.
//! - otherwise (default): `system/permission_denied` line, `user` `tool_result` with the
//!   denial message and `is_error:true`, listed in `permission_denials`
//!   (`[{tool_name,tool_use_id,tool_input}]`).
//!
//! then assistant text `tool result was (is_error=True|False): <tool result text>`.
// Test code: a failed unwrap is a failed test, its output is the report, and its helper
// modules are shared between test crates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch};

const VERSION: &str = "2.1.332";
const DEFAULT_MODEL: &str = "claude-opus-5-5";
/// What one turn costs, as the real CLI charged 10 input and 5 output tokens.
const TURN_COST_USD: f64 = 0.00014;
const DEFAULT_HUGE_BYTES: usize = 2 * 1024 * 1024;
const INTERRUPTED_TEXT: &str = "[Request interrupted by user]";
const TOOL_DESCRIPTION: &str = "Run a test command";

// ---------------------------------------------------------------------------------------
// Ordered JSON: the real CLI's key order matters to tests (e.g. `type` is not first in
// `result` lines). This package builds serde_json with `preserve_order`, so a `Map` would
// keep the order too; `J` states it in the double itself instead of leaning on a feature
// chosen for the bridge (a double split into a crate of its own keeps working).
// ---------------------------------------------------------------------------------------

/// A JSON value whose objects keep their keys in insertion order.
#[derive(Debug, Clone)]
enum J {
    V(Value),
    O(Vec<(String, J)>),
    A(Vec<J>),
}

const NULL: J = J::V(Value::Null);

impl J {
    fn push(&mut self, key: &str, value: impl ToJ) {
        if let J::O(fields) = self {
            fields.push((key.to_string(), value.j()));
        }
    }
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::V(v) => v.serialize(s),
            J::O(fields) => {
                let mut m = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            J::A(items) => {
                let mut q = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    q.serialize_element(item)?;
                }
                q.end()
            }
        }
    }
}

trait ToJ {
    fn j(self) -> J;
}

impl ToJ for J {
    fn j(self) -> J {
        self
    }
}
impl ToJ for Vec<J> {
    fn j(self) -> J {
        J::A(self)
    }
}
macro_rules! to_j_via_value {
    ($($t:ty),*) => { $(impl ToJ for $t { fn j(self) -> J { J::V(Value::from(self)) } })* };
}
to_j_via_value!(Value, &str, String, bool, u32, u64, i64, usize, f64);
impl ToJ for &String {
    fn j(self) -> J {
        J::V(Value::from(self.as_str()))
    }
}

/// Builds an ordered object: `obj! { "k" => value, ... }`.
macro_rules! obj {
    ($($k:literal => $v:expr),* $(,)?) => {
        J::O(vec![$(($k.to_string(), ToJ::j($v))),*])
    };
}

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let args = parse_args(argv.get(1..).unwrap_or_default());

    // Before anything else, so a test may send SIGTERM as soon as it sees the record.
    if std::env::var("DOUBLE_IGNORE_SIGTERM").is_ok_and(|v| v == "1") {
        // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
        }
    }
    if let Ok(path) = std::env::var("DOUBLE_RECORD") {
        record_start(&path, &argv);
    }
    for n in &args.notes {
        note(n);
    }
    if args.output_format.as_deref() == Some("stream-json") && !args.verbose {
        let _ = writeln!(
            std::io::stderr(),
            "Error: When using --print, --output-format=stream-json requires --verbose"
        );
        std::process::exit(1);
    }
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

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            note(&format!("cannot start the tokio runtime: {e}"));
            std::process::exit(1);
        }
    };
    runtime.block_on(run(args));
    // Exit here rather than dropping the runtime: nothing is left to flush (every line was
    // flushed) and a blocked stdin read must not delay the exit.
    std::process::exit(0);
}

/// Notes something on stderr; never panics (stderr may be closed).
fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "double: {msg}");
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, PartialEq)]
struct Args {
    print: bool,
    verbose: bool,
    include_partial_messages: bool,
    input_format: Option<String>,
    output_format: Option<String>,
    model: Option<String>,
    resume: Option<String>,
    session_id: Option<String>,
    permission_mode: Option<String>,
    permission_prompt_tool: Option<String>,
    max_turns: Option<u32>,
    append_system_prompt: Option<String>,
    allowed_tools: Vec<String>,
    disallowed_tools: Vec<String>,
    mcp_config: Vec<String>,
    add_dirs: Vec<String>,
    /// Things to say on stderr (unknown flags, missing values).
    notes: Vec<String>,
}

enum Arity {
    Flag,
    One,
    Many,
}

fn arity(flag: &str) -> Option<Arity> {
    Some(match flag {
        "-p"
        | "--print"
        | "--verbose"
        | "--include-partial-messages"
        | "-c"
        | "--continue"
        | "--fork-session"
        | "--replay-user-messages"
        | "--strict-mcp-config"
        | "--dangerously-skip-permissions"
        | "-d"
        | "--debug" => Arity::Flag,
        "--input-format"
        | "--output-format"
        | "--model"
        | "-r"
        | "--resume"
        | "--session-id"
        | "--permission-mode"
        | "--permission-prompt-tool"
        | "--max-turns"
        | "--append-system-prompt"
        | "--system-prompt"
        | "--fallback-model"
        | "--settings"
        | "--setting-sources"
        | "--max-thinking-tokens"
        | "--max-budget-usd"
        | "--agents" => Arity::One,
        "--allowedTools" | "--allowed-tools" | "--disallowedTools" | "--disallowed-tools"
        | "--mcp-config" | "--add-dir" | "--plugin-dir" | "--betas" => Arity::Many,
        _ => return None,
    })
}

fn parse_args(argv: &[String]) -> Args {
    let mut a = Args::default();
    let mut i = 0;
    while i < argv.len() {
        let raw = argv[i].as_str();
        i += 1;
        let (flag, inline) = match raw.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (raw, None),
        };
        match arity(flag) {
            Some(Arity::Flag) => match flag {
                "-p" | "--print" => a.print = true,
                "--verbose" => a.verbose = true,
                "--include-partial-messages" => a.include_partial_messages = true,
                _ => {}
            },
            Some(Arity::One) => {
                let value = inline.or_else(|| {
                    let next = argv.get(i)?;
                    if next.starts_with("--") || next == "-p" {
                        return None;
                    }
                    i += 1;
                    Some(next.clone())
                });
                match value {
                    Some(v) => a.set_one(flag, v),
                    None => a.notes.push(format!("{flag} needs a value, ignored")),
                }
            }
            Some(Arity::Many) => {
                let mut values: Vec<String> = inline.into_iter().collect();
                while let Some(next) = argv.get(i).filter(|n| !n.starts_with('-')) {
                    values.push(next.clone());
                    i += 1;
                }
                if values.is_empty() {
                    a.notes.push(format!("{flag} needs a value, ignored"));
                }
                match flag {
                    "--allowedTools" | "--allowed-tools" => a.allowed_tools.extend(values),
                    "--disallowedTools" | "--disallowed-tools" => a.disallowed_tools.extend(values),
                    "--mcp-config" => a.mcp_config.extend(values),
                    "--add-dir" => a.add_dirs.extend(values),
                    _ => {}
                }
            }
            None if raw.starts_with('-') => a.notes.push(format!("unknown flag {raw}, ignored")),
            None => a.notes.push(format!("stray argument {raw:?}, ignored")),
        }
    }
    a
}

impl Args {
    fn set_one(&mut self, flag: &str, v: String) {
        match flag {
            "--input-format" => self.input_format = Some(v),
            "--output-format" => self.output_format = Some(v),
            "--model" => self.model = Some(v),
            "-r" | "--resume" => self.resume = Some(v),
            "--session-id" => self.session_id = Some(v),
            "--permission-mode" => self.permission_mode = Some(v),
            "--permission-prompt-tool" => self.permission_prompt_tool = Some(v),
            "--append-system-prompt" => self.append_system_prompt = Some(v),
            "--max-turns" => match v.parse() {
                Ok(n) => self.max_turns = Some(n),
                Err(_) => self
                    .notes
                    .push(format!("--max-turns {v:?} is not a number")),
            },
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Startup knobs
// ---------------------------------------------------------------------------------------

fn record_start(path: &str, argv: &[String]) {
    let env: serde_json::Map<String, Value> = std::env::vars_os()
        .map(|(k, v)| {
            let v = v.to_string_lossy().into_owned();
            (k.to_string_lossy().into_owned(), Value::String(v))
        })
        .collect();
    let cwd = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rec = obj! {
        "pid" => std::process::id(),
        "argv" => json!(argv),
        "env" => Value::Object(env),
        "cwd" => cwd,
    };
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
    let line = obj! {
        "type" => "result",
        "subtype" => "error_during_execution",
        "duration_ms" => 0u64,
        "is_error" => true,
        "num_turns" => 0u64,
        "session_id" => session,
        "total_cost_usd" => 0u64,
        "errors" => serde_json::json!([format!("No conversation found with session ID: {session}")]),
    };
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

fn uuid4() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `2026-11-27T00:48:15.576Z`, computed by hand (no chrono here).
fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

// ---------------------------------------------------------------------------------------
// Shared state, stdout writer
// ---------------------------------------------------------------------------------------

/// The only writer of stdout: a line is written and flushed under the lock, so lines never
/// interleave and a line is out before the next step (e.g. an exit) happens.
struct Out {
    stdout: tokio::sync::Mutex<Option<tokio::io::Stdout>>,
}

impl Out {
    async fn raw(&self, bytes: &[u8]) {
        let mut guard = self.stdout.lock().await;
        // None: stdout was closed on request (CLOSE_STDOUT); later lines are dropped.
        let Some(out) = guard.as_mut() else { return };
        let res = async {
            out.write_all(bytes).await?;
            out.write_all(b"\n").await?;
            out.flush().await
        }
        .await;
        if let Err(e) = res {
            note(&format!("cannot write stdout ({e}), exiting"));
            std::process::exit(1);
        }
    }

    async fn send(&self, line: &J) {
        match serde_json::to_vec(line) {
            Ok(bytes) => self.raw(&bytes).await,
            Err(e) => note(&format!("cannot encode an output line: {e}")),
        }
    }

    async fn close(&self) {
        let mut guard = self.stdout.lock().await;
        if let Some(mut out) = guard.take() {
            let _ = out.flush().await;
        }
        // SAFETY: closing fd 1 only affects this process's stdout, which nothing else uses
        // from now on (the writer above is gone).
        unsafe {
            libc::close(1);
        }
    }
}

struct TurnCtl {
    interruptible: bool,
    interrupt: watch::Sender<bool>,
}

struct State {
    model: String,
    permission_mode: String,
    turn: Option<TurnCtl>,
    /// Our `can_use_tool` requests waiting for the host's answer, by request_id.
    pending: HashMap<String, oneshot::Sender<Value>>,
    stdin_closed: bool,
    /// Interrupts still to be ignored (`DOUBLE_IGNORE_INTERRUPTS`).
    ignore_interrupts: u32,
}

struct Shared {
    out: Out,
    args: Args,
    session_id: String,
    cwd: String,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another task panicked; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn partial(&self) -> bool {
        self.args.include_partial_messages
    }
}

async fn run(args: Args) {
    let session_id = args
        .session_id
        .clone()
        .or_else(|| args.resume.clone())
        .unwrap_or_else(uuid4);
    let cwd = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let state = State {
        model: args
            .model
            .clone()
            .unwrap_or_else(|| DEFAULT_MODEL.to_string()),
        permission_mode: args
            .permission_mode
            .clone()
            .unwrap_or_else(|| "default".to_string()),
        turn: None,
        pending: HashMap::new(),
        stdin_closed: false,
        ignore_interrupts: std::env::var("DOUBLE_IGNORE_INTERRUPTS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
    };
    let shared = Arc::new(Shared {
        out: Out {
            stdout: tokio::sync::Mutex::new(Some(tokio::io::stdout())),
        },
        args,
        session_id,
        cwd,
        state: Mutex::new(state),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(read_stdin(shared.clone(), tx));
    let mut session = Session {
        sh: shared,
        queue: rx,
        turns: 0,
        api_calls: 0,
        tool_uses: 0,
        results: 0,
        cost_usd: 0.0,
        turns_by_model: BTreeMap::new(),
    };
    let start_delay = std::env::var("DOUBLE_TURN_START_DELAY_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis);
    while let Some(prompt) = session.queue.recv().await {
        if let Some(delay) = start_delay {
            tokio::time::sleep(delay).await;
        }
        session.turn(prompt).await;
    }
}

// ---------------------------------------------------------------------------------------
// stdin: user turns go to the queue, control messages are handled right here
// ---------------------------------------------------------------------------------------

async fn read_stdin(sh: Arc<Shared>, queue: mpsc::UnboundedSender<String>) {
    let mut reader = BufReader::new(tokio::io::stdin());
    let mut buf = Vec::new();
    let mut delayed = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                note(&format!("stdin read failed ({e}), treating as EOF"));
                break;
            }
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let msg: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                note(&format!("stdin line is not JSON ({e}), ignored"));
                continue;
            }
        };
        match msg.get("type").and_then(Value::as_str) {
            Some("user") => {
                // The runner only stops receiving after it is done, so a failed send means
                // we are exiting anyway.
                let _ = queue.send(prompt_text(&msg));
            }
            Some("control_request") => {
                if let Some(task) = handle_control(&sh, &msg).await {
                    delayed.push(task);
                }
            }
            Some("control_response") => route_control_response(&sh, msg),
            Some("control_cancel_request" | "keep_alive") => {}
            Some(other) => note(&format!("stdin message of type {other:?} ignored")),
            None => note("stdin message without a type, ignored"),
        }
    }
    // EOF: answer the delayed initialize requests still owed, then let the runner finish.
    for task in delayed {
        let _ = task.await;
    }
    let mut st = sh.state();
    st.stdin_closed = true;
    // Dropping the senders tells waiting tool permissions that no answer will come.
    st.pending.clear();
}

/// The text of a user message: a string, or the `text` of its content blocks, concatenated.
fn prompt_text(msg: &Value) -> String {
    match msg.pointer("/message/content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn route_control_response(sh: &Shared, msg: Value) {
    let id = msg
        .pointer("/response/request_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let waiter = sh.state().pending.remove(&id);
    match waiter {
        Some(tx) => {
            let _ = tx.send(msg);
        }
        None => note(&format!(
            "control_response for unknown request {id:?}, ignored"
        )),
    }
}

fn control_success(request_id: &Value, response: J) -> J {
    obj! {
        "type" => "control_response",
        "response" => obj! {
            "subtype" => "success",
            "request_id" => request_id.clone(),
            "response" => response,
        },
    }
}

/// Answers one control request. Returns the task answering a delayed `initialize`.
async fn handle_control(sh: &Arc<Shared>, msg: &Value) -> Option<tokio::task::JoinHandle<()>> {
    let request_id = msg.get("request_id").cloned().unwrap_or(Value::Null);
    let request = msg.get("request").cloned().unwrap_or(Value::Null);
    let subtype = request
        .get("subtype")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match subtype {
        "initialize" => {
            let delay_ms = std::env::var("DOUBLE_INIT_DELAY_MS")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            if delay_ms == 0 {
                sh.out.send(&initialize_answer(&request_id, sh)).await;
                return None;
            }
            let sh = sh.clone();
            return Some(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                sh.out.send(&initialize_answer(&request_id, &sh)).await;
            }));
        }
        "interrupt" => {
            // The answer goes out before the interrupted turn's last lines, as seen from
            // the real CLI.
            sh.out
                .send(&control_success(
                    &request_id,
                    obj! { "still_queued" => Vec::<J>::new() },
                ))
                .await;
            let mut state = sh.state();
            if state.turn.is_some() && state.ignore_interrupts > 0 {
                state.ignore_interrupts -= 1;
            } else if let Some(turn) = &state.turn
                && turn.interruptible
            {
                turn.interrupt.send_replace(true);
            }
        }
        "set_model" => {
            let model = match request.get("model").and_then(Value::as_str) {
                None | Some("default") => DEFAULT_MODEL.to_string(),
                Some(m) => m.to_string(),
            };
            sh.state().model = model;
            sh.out.send(&control_success(&request_id, obj! {})).await;
        }
        "set_permission_mode" => {
            if let Some(mode) = request.get("mode").and_then(Value::as_str) {
                sh.state().permission_mode = mode.to_string();
            }
            sh.out.send(&control_success(&request_id, obj! {})).await;
        }
        "mcp_status" => {
            let resp = obj! { "mcpServers" => Vec::<J>::new() };
            sh.out.send(&control_success(&request_id, resp)).await;
        }
        "get_context_usage" => {
            let model = sh.state().model.clone();
            let resp = obj! {
                "categories" => json!([{"name": "Messages", "tokens": 0, "color": "purple"}]),
                "totalTokens" => 0u64,
                "maxTokens" => 1_000_000u64,
                "rawMaxTokens" => 1_000_000u64,
                "percentage" => 0u64,
                "model" => model,
                "memoryFiles" => Vec::<J>::new(),
                "mcpTools" => Vec::<J>::new(),
            };
            sh.out.send(&control_success(&request_id, resp)).await;
        }
        other => {
            let resp = obj! {
                "type" => "control_response",
                "response" => obj! {
                    "subtype" => "error",
                    "request_id" => request_id,
                    "error" => format!("Unsupported control request subtype: {other}"),
                },
            };
            sh.out.send(&resp).await;
        }
    }
    None
}

/// The `initialize` answer: unlike the others, its envelope also lists pending requests.
fn initialize_answer(request_id: &Value, sh: &Shared) -> J {
    let mut line = control_success(request_id, initialize_response(sh));
    if let J::O(fields) = &mut line
        && let Some((_, envelope)) = fields.iter_mut().find(|(k, _)| k == "response")
    {
        envelope.push("pending_permission_requests", Vec::<J>::new());
        envelope.push("pending_user_dialog_requests", Vec::<J>::new());
    }
    line
}

fn initialize_response(sh: &Shared) -> J {
    let (mode, running) = {
        let st = sh.state();
        (st.permission_mode.clone(), st.turn.is_some())
    };
    let home = std::env::var("HOME").unwrap_or_default();
    let model_entry = |value: &str, resolved: &str, display: &str, description: &str| {
        json!({
            "value": value, "resolvedModel": resolved, "displayName": display,
            "description": description, "supportsEffort": true,
            "supportedEffortLevels": ["low", "medium", "high", "xhigh", "max"],
            "supportsAdaptiveThinking": true, "supportsFastMode": true,
            "supportsAutoMode": true, "supportsThinkingOff": false
        })
    };
    obj! {
        "commands" => json!([
            {"name": "compact", "description": "Clear conversation history but keep a summary in context", "argumentHint": "<optional custom summarization instructions>", "builtin": true},
            {"name": "review", "description": "Review a pull request", "argumentHint": "", "builtin": true},
        ]),
        "agents" => json!([
            {"name": "general-purpose", "description": "General-purpose agent for multi-step tasks."},
            {"name": "Explore", "description": "Fast read-only search agent for locating code."},
        ]),
        "output_style" => "default",
        "available_output_styles" => json!(["default", "Explanatory", "Learning"]),
        "user_output_styles_dir" => format!("{home}/.claude/output-styles"),
        "models" => json!([
            model_entry("default", DEFAULT_MODEL, "Default (recommended)", "Use the default model"),
            model_entry("sonnet", "claude-sonnet-5", "Sonnet", "Sonnet for everyday tasks"),
        ]),
        "account" => obj! {
            "tokenSource" => "none",
            "apiKeySource" => api_key_source(),
            "apiProvider" => "firstParty",
        },
        "pid" => std::process::id(),
        "claude_code_version" => VERSION,
        "current_permission_mode" => mode,
        "hook_on_failure_supported" => true,
        "hooks_when_unanswered_kept" => 0u64,
        "other_hook_ask_outranks_host" => true,
        "feedback_mode" => obj! { "kind" => "disabled" },
        "analytics_disabled" => true,
        "sandbox_enabled" => false,
        "remote_control_auto_enable" => false,
        "remote_control_auto_connect_default" => false,
        "remote_control_available" => false,
        "remote_control_auto_on_by_default" => false,
        "ide_rc_auto_enable_gate" => false,
        "fast_mode_state" => "off",
        "fast_mode_disabled_reason" => "sdk_opt_in_required",
        "session_state" => if running { "running" } else { "idle" },
        "capabilities" => json!(["ui_surface_v1", "get_usage_detached_v1"]),
    }
}

fn api_key_source() -> &'static str {
    if std::env::var_os("ANTHROPIC_API_KEY").is_some() {
        "ANTHROPIC_API_KEY"
    } else {
        "none"
    }
}

// ---------------------------------------------------------------------------------------
// Directives
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Directive {
    Reply,
    Slow { ms: u64, chunks: u32 },
    Hang,
    Crash { code: i32 },
    Kill,
    Garbage,
    Huge { bytes: usize },
    Err400,
    MaxTurns,
    RunTool { command: String },
    Stderr { lines: u64 },
    CloseStdout,
    Unknown,
    Multi,
    KeepAlive { ms: u64, count: u32 },
    SpawnGrandchild,
    SpawnDetached,
    Leak { var: String },
}

/// `key=value` among the words, parsed; unparsable values count as absent.
fn keyed<T: std::str::FromStr>(words: &[&str], key: &str) -> Option<T> {
    words.iter().find_map(|w| {
        let (k, v) = w.split_once('=')?;
        if k == key { v.parse().ok() } else { None }
    })
}

/// The `index`-th word that is not `key=value`, parsed (positional arguments).
fn bare<T: std::str::FromStr>(words: &[&str], index: usize) -> Option<T> {
    words
        .iter()
        .filter(|w| !w.contains('='))
        .nth(index)
        .and_then(|w| w.parse().ok())
}

/// `key=value`, else the first bare word that parses.
fn keyed_or_bare<T: std::str::FromStr>(words: &[&str], key: &str) -> Option<T> {
    keyed(words, key).or_else(|| words.iter().find_map(|w| w.parse().ok()))
}

fn parse_directive(prompt: &str) -> Directive {
    let trimmed = prompt.trim();
    let mut words = trimmed.split_whitespace();
    let Some(first) = words.next() else {
        return Directive::Reply;
    };
    let rest: Vec<&str> = words.collect();
    match first {
        "SLOW" => Directive::Slow {
            ms: keyed(&rest, "ms").or_else(|| bare(&rest, 0)).unwrap_or(200),
            chunks: keyed(&rest, "chunks")
                .or_else(|| bare(&rest, 1))
                .unwrap_or(5),
        },
        "KEEPALIVE" => Directive::KeepAlive {
            ms: keyed(&rest, "ms").or_else(|| bare(&rest, 0)).unwrap_or(100),
            count: keyed(&rest, "n").or_else(|| bare(&rest, 1)).unwrap_or(5),
        },
        "SPAWN_GRANDCHILD" => Directive::SpawnGrandchild,
        "SPAWN_DETACHED" => Directive::SpawnDetached,
        "LEAK" => Directive::Leak {
            var: rest.first().map(|v| v.to_string()).unwrap_or_default(),
        },
        "HANG" => Directive::Hang,
        "CRASH" => Directive::Crash {
            code: keyed_or_bare(&rest, "code").unwrap_or(1),
        },
        "KILL" => Directive::Kill,
        "GARBAGE" => Directive::Garbage,
        "HUGE" => Directive::Huge {
            bytes: keyed_or_bare(&rest, "bytes").unwrap_or(DEFAULT_HUGE_BYTES),
        },
        "ERR400" => Directive::Err400,
        "MAXTURNS" => Directive::MaxTurns,
        "RUN_TOOL" => {
            let command = trimmed[first.len()..].trim();
            Directive::RunTool {
                command: if command.is_empty() { "true" } else { command }.to_string(),
            }
        }
        "STDERR" => Directive::Stderr {
            lines: keyed_or_bare(&rest, "n").unwrap_or(1),
        },
        "CLOSE_STDOUT" => Directive::CloseStdout,
        "UNKNOWN" => Directive::Unknown,
        "MULTI" => Directive::Multi,
        _ => Directive::Reply,
    }
}

// ---------------------------------------------------------------------------------------
// Turns
// ---------------------------------------------------------------------------------------

struct Session {
    sh: Arc<Shared>,
    queue: mpsc::UnboundedReceiver<String>,
    /// User turns started (the N of `mock reply #N`).
    turns: u64,
    /// Simulated API calls (the NNNN of `msg_double_NNNN`).
    api_calls: u64,
    tool_uses: u64,
    /// Results written (the next `result_index`).
    results: u64,
    cost_usd: f64,
    turns_by_model: BTreeMap<String, u64>,
}

struct Turn {
    prompt: String,
    model: String,
    started: Instant,
    interrupt: watch::Receiver<bool>,
    begun_message_ids: Vec<String>,
    /// Simulated API calls in this turn: the real CLI charges per call.
    calls: u64,
}

/// One simulated Messages API call: its blocks share the message and request ids.
struct Api {
    id: String,
    request_id: String,
    index: usize,
}

enum Block {
    Text(String),
    Thinking(String),
    ToolUse { id: String, input: Value },
}

enum Outcome {
    Success {
        text: String,
        num_turns: u64,
        denials: Vec<J>,
    },
    ApiError400 {
        text: String,
    },
    Error {
        subtype: &'static str,
        terminal_reason: &'static str,
        errors: Vec<String>,
    },
}

enum Permission {
    Allow,
    Deny { message: String, by_host: bool },
    Interrupted,
}

/// Waits until the turn is interrupted; never returns if it is not.
async fn interrupted(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Session {
    async fn turn(&mut self, prompt: String) {
        self.turns += 1;
        let directive = parse_directive(&prompt);
        let interruptible = !matches!(directive, Directive::Hang | Directive::CloseStdout);
        let (tx, rx) = watch::channel(false);
        // Registered before system/init goes out, so whoever saw init can interrupt.
        let model = {
            let mut st = self.sh.state();
            st.turn = Some(TurnCtl {
                interruptible,
                interrupt: tx,
            });
            st.model.clone()
        };
        let mut t = Turn {
            prompt,
            model,
            started: Instant::now(),
            interrupt: rx,
            begun_message_ids: Vec::new(),
            calls: 0,
        };
        self.system_init(&t).await;
        self.run_directive(&mut t, directive).await;
        self.sh.state().turn = None;
    }

    async fn run_directive(&mut self, t: &mut Turn, directive: Directive) {
        let sh = self.sh.clone();
        let out = &sh.out;
        match directive {
            Directive::Reply => self.reply(t).await,
            Directive::Slow { ms, chunks } => self.slow(t, ms, chunks).await,
            Directive::Hang => std::future::pending::<()>().await,
            Directive::Crash { code } => {
                let api = self.api_start(t).await;
                self.block(t, &api, Block::Text("about to crash".into()))
                    .await;
                let _ = writeln!(std::io::stderr(), "double: crashing on request");
                std::process::exit(code);
            }
            Directive::Kill => {
                // SAFETY: sending a signal to our own pid has no memory-safety preconditions.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
                std::future::pending::<()>().await;
            }
            Directive::Garbage => {
                let lines: [&[u8]; 9] = [
                    b"this is not json",
                    b"{broken",
                    b"[1,2,3]",
                    b"42",
                    b"\"a string\"",
                    b"",
                    b"{\"no_type\":true}",
                    b"\xff\xfe invalid utf-8",
                    b"{\"type\":\"future_message_kind\",\"data\":1}",
                ];
                for line in lines {
                    out.raw(line).await;
                }
                self.reply(t).await;
            }
            Directive::Huge { bytes } => {
                let text = "x".repeat(bytes);
                self.single_text(t, text).await;
            }
            Directive::Err400 => self.err400(t).await,
            Directive::MaxTurns => {
                let text = format!("mock reply #{} to: {}", self.turns, t.prompt);
                let api = self.api_start(t).await;
                self.block(t, &api, Block::Text(text)).await;
                self.api_stop(&api, "tool_use").await;
                let max = self.sh.args.max_turns.unwrap_or(1);
                let outcome = Outcome::Error {
                    subtype: "error_max_turns",
                    terminal_reason: "max_turns",
                    errors: vec![format!("Reached maximum number of turns ({max})")],
                };
                self.result(t, outcome).await;
            }
            Directive::RunTool { command } => self.run_tool(t, command).await,
            Directive::Stderr { lines } => {
                let mut err = tokio::io::stderr();
                for i in 1..=lines {
                    let line = format!("double: stderr line {i}/{lines} in turn {}\n", self.turns);
                    if err.write_all(line.as_bytes()).await.is_err() {
                        break;
                    }
                }
                let _ = err.flush().await;
                self.reply(t).await;
            }
            Directive::CloseStdout => {
                out.close().await;
                std::future::pending::<()>().await;
            }
            Directive::Unknown => {
                out.send(&obj! {
                    "type" => "system",
                    "subtype" => "brand_new_subtype",
                    "session_id" => &self.sh.session_id,
                    "uuid" => uuid4(),
                })
                .await;
                let resets_at = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs()
                    + 3600;
                out.send(&obj! {
                    "type" => "rate_limit_event",
                    "rate_limit_info" => obj! {
                        "status" => "allowed",
                        "resetsAt" => resets_at,
                        "rateLimitType" => "five_hour",
                        "overageStatus" => "rejected",
                        "overageDisabledReason" => "org_level_disabled",
                        "isUsingOverage" => false,
                    },
                    "uuid" => uuid4(),
                    "session_id" => &self.sh.session_id,
                })
                .await;
                self.reply(t).await;
            }
            Directive::KeepAlive { ms, count } => {
                for _ in 0..count {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    out.send(&obj! { "type" => "keep_alive" }).await;
                }
                self.reply(t).await;
            }
            Directive::Leak { var } => {
                // A child that echoes a secret where the bridge records things.
                let value = std::env::var(&var).unwrap_or_default();
                let _ = writeln!(std::io::stderr(), "double: leaking {var}={value}");
                out.raw(format!("not json, leaking {value}").as_bytes())
                    .await;
                self.reply(t).await;
            }
            Directive::SpawnGrandchild => {
                // A tool process in the CLI's process group, as Bash tools are.
                let text = match std::process::Command::new("sleep").arg("1000").spawn() {
                    Ok(child) => format!("grandchild {}", child.id()),
                    Err(e) => format!("grandchild spawn failed: {e}"),
                };
                self.single_text(t, text).await;
            }
            Directive::SpawnDetached => {
                // A tool process that leaves the group and is orphaned (`setsid nohup ... &`).
                let script = "setsid nohup sleep 1000 >/dev/null 2>&1 & echo $!";
                let spawned = std::process::Command::new("sh")
                    .args(["-c", script])
                    .stdin(std::process::Stdio::null())
                    .output();
                let text = match spawned {
                    Ok(out) => format!("detached {}", String::from_utf8_lossy(&out.stdout).trim()),
                    Err(e) => format!("detached spawn failed: {e}"),
                };
                self.single_text(t, text).await;
            }
            Directive::Multi => {
                let api = self.api_start(t).await;
                self.block(t, &api, Block::Thinking("Let me think about this.".into()))
                    .await;
                self.block(t, &api, Block::Text("multi text 1".into()))
                    .await;
                self.block(t, &api, Block::Text("multi text 2".into()))
                    .await;
                self.api_stop(&api, "end_turn").await;
                out.send(&obj! {
                    "type" => "system",
                    "subtype" => "status",
                    "status" => NULL,
                    "session_id" => &self.sh.session_id,
                    "uuid" => uuid4(),
                })
                .await;
                let outcome = Outcome::Success {
                    text: "multi text 1multi text 2".into(),
                    num_turns: 1,
                    denials: Vec::new(),
                };
                self.result(t, outcome).await;
            }
        }
    }

    /// The default reply: `mock reply #N to: <prompt>`.
    async fn reply(&mut self, t: &mut Turn) {
        let text = format!("mock reply #{} to: {}", self.turns, t.prompt);
        self.single_text(t, text).await;
    }

    async fn single_text(&mut self, t: &mut Turn, text: String) {
        let api = self.api_start(t).await;
        self.block(t, &api, Block::Text(text.clone())).await;
        self.api_stop(&api, "end_turn").await;
        let outcome = Outcome::Success {
            text,
            num_turns: 1,
            denials: Vec::new(),
        };
        self.result(t, outcome).await;
    }

    async fn slow(&mut self, t: &mut Turn, ms: u64, chunks: u32) {
        let api = self.api_start(t).await;
        let mut text = String::new();
        for i in 1..=chunks {
            let chunk = format!("slow chunk {i}");
            tokio::select! {
                () = pause(ms) => {}
                () = interrupted(&mut t.interrupt) => {
                    // Like the real CLI: the block being streamed comes out marked aborted.
                    let mut line = self.assistant_line(t, &api, block_json(&Block::Text(chunk)));
                    line.push("aborted", true);
                    self.sh.out.send(&line).await;
                    self.interrupted_user_line().await;
                    self.result(t, aborted("aborted_streaming")).await;
                    return;
                }
            }
            text.push_str(&chunk);
            self.block(t, &api, Block::Text(chunk)).await;
        }
        self.api_stop(&api, "end_turn").await;
        let outcome = Outcome::Success {
            text,
            num_turns: 1,
            denials: Vec::new(),
        };
        self.result(t, outcome).await;
    }

    async fn err400(&mut self, t: &mut Turn) {
        let text = "API Error: 400 mock 400";
        let line = obj! {
            "type" => "assistant",
            "message" => obj! {
                "diagnostics" => NULL,
                "id" => uuid4(),
                "container" => NULL,
                "model" => "<synthetic>",
                "role" => "assistant",
                "stop_details" => NULL,
                "stop_reason" => "stop_sequence",
                "stop_sequence" => "",
                "type" => "message",
                "usage" => obj! {
                    "output_tokens_details" => NULL,
                    "input_tokens" => 0u64,
                    "output_tokens" => 0u64,
                    "cache_creation_input_tokens" => 0u64,
                    "cache_read_input_tokens" => 0u64,
                    "server_tool_use" => obj! { "web_search_requests" => 0u64, "web_fetch_requests" => 0u64 },
                    "service_tier" => NULL,
                    "cache_creation" => obj! { "ephemeral_1h_input_tokens" => 0u64, "ephemeral_5m_input_tokens" => 0u64 },
                    "inference_geo" => NULL,
                    "iterations" => NULL,
                    "speed" => NULL,
                    "fallback_credit" => NULL,
                },
                "content" => vec![obj! { "type" => "text", "text" => text }],
                "context_management" => NULL,
            },
            "parent_tool_use_id" => NULL,
            "session_id" => &self.sh.session_id,
            "uuid" => uuid4(),
            "timestamp" => now_rfc3339(),
            "error" => "unknown",
            "request_id" => request_id(),
            "is_api_error_message" => true,
            "api_error_status" => 400u64,
            "api_error_type" => "invalid_request_error",
        };
        self.sh.out.send(&line).await;
        self.result(t, Outcome::ApiError400 { text: text.into() })
            .await;
    }

    async fn run_tool(&mut self, t: &mut Turn, command: String) {
        self.tool_uses += 1;
        let tool_use_id = format!("toolu_double_{:04}", self.tool_uses);
        let input = json!({"command": command, "description": TOOL_DESCRIPTION});
        let api = self.api_start(t).await;
        self.block(t, &api, Block::Text("I'll run a command.".into()))
            .await;
        let tool_use = Block::ToolUse {
            id: tool_use_id.clone(),
            input: input.clone(),
        };
        self.block(t, &api, tool_use).await;
        self.api_stop(&api, "tool_use").await;

        let (mode, prompt_tool) = {
            let st = self.sh.state();
            let tool = self.sh.args.permission_prompt_tool.clone();
            (st.permission_mode.clone(), tool)
        };
        let decision = if mode == "bypassPermissions" {
            Permission::Allow
        } else if prompt_tool.as_deref() == Some("stdio") {
            self.ask_permission(t, &tool_use_id, &command, &input).await
        } else {
            Permission::Deny {
                message: format!(
                    "{command} needs approval. Claude Code asks before a shell command creates, \
                     changes or removes files in the working directories for this session ('{}').",
                    self.sh.cwd
                ),
                by_host: false,
            }
        };

        let sid = &self.sh.session_id;
        let mut denials = Vec::new();
        let (result_text, is_error, tool_line) = match decision {
            Permission::Allow => {
                let text = "(Bash completed with no output)".to_string();
                let line = obj! {
                    "type" => "user",
                    "message" => obj! {
                        "role" => "user",
                        "content" => vec![obj! {
                            "tool_use_id" => &tool_use_id,
                            "type" => "tool_result",
                            "content" => &text,
                            "is_error" => false,
                        }],
                    },
                    "parent_tool_use_id" => NULL,
                    "session_id" => sid,
                    "uuid" => uuid4(),
                    "timestamp" => now_rfc3339(),
                    "tool_use_result" => json!({
                        "stdout": "", "stderr": "", "interrupted": false,
                        "isImage": false, "noOutputExpected": true
                    }),
                    "tool_result_meta" => json!([{
                        "id": tool_use_id,
                        "permission_decision": {"decision": "accept", "source": "user_temporary"}
                    }]),
                };
                (text, false, line)
            }
            Permission::Deny { message, by_host } => {
                if !by_host {
                    self.sh
                        .out
                        .send(&obj! {
                            "type" => "system",
                            "subtype" => "permission_denied",
                            "tool_name" => "Bash",
                            "tool_use_id" => &tool_use_id,
                            "message" => &message,
                            "uuid" => uuid4(),
                            "session_id" => sid,
                        })
                        .await;
                }
                denials.push(obj! {
                    "tool_name" => "Bash",
                    "tool_use_id" => &tool_use_id,
                    "tool_input" => input.clone(),
                });
                let (kind, source) = if by_host {
                    ("permission-rule", "user_reject")
                } else {
                    ("user-rejected", "config")
                };
                let line = rejected_tool_result(sid, &tool_use_id, &message, kind, source);
                (message, true, line)
            }
            Permission::Interrupted => {
                let message = "The user doesn't want to proceed with this tool use. The tool use \
                               was rejected (eg. if it was a file edit, the new_string was NOT \
                               written to the file). STOP what you are doing and wait for the \
                               user to tell you how to proceed.";
                let line =
                    rejected_tool_result(sid, &tool_use_id, message, "interrupted", "user_abort");
                self.sh.out.send(&line).await;
                self.interrupted_user_line().await;
                self.result(t, aborted("aborted_tools")).await;
                return;
            }
        };
        self.sh.out.send(&tool_line).await;

        let text = format!(
            "tool result was (is_error={}): {result_text}",
            if is_error { "True" } else { "False" }
        );
        let api = self.api_start(t).await;
        self.block(t, &api, Block::Text(text.clone())).await;
        self.api_stop(&api, "end_turn").await;
        let outcome = Outcome::Success {
            text,
            num_turns: 2,
            denials,
        };
        self.result(t, outcome).await;
    }

    /// Sends `can_use_tool` and waits for the host's answer or an interrupt.
    async fn ask_permission(
        &mut self,
        t: &mut Turn,
        tool_use_id: &str,
        command: &str,
        input: &Value,
    ) -> Permission {
        let request_id = uuid4();
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.sh.state();
            if st.stdin_closed {
                return Permission::Deny {
                    message: "Permission prompt unanswered: stdin is closed".into(),
                    by_host: true,
                };
            }
            st.pending.insert(request_id.clone(), tx);
        }
        // The path a `touch x`-like command would write, as the real CLI reports it.
        let blocked_path = command
            .split_whitespace()
            .last()
            .filter(|w| !w.starts_with('-') && command.split_whitespace().count() > 1)
            .map(|w| {
                if w.starts_with('/') {
                    w.to_string()
                } else {
                    format!("{}/{w}", self.sh.cwd)
                }
            });
        let request = obj! {
            "type" => "control_request",
            "request_id" => &request_id,
            "request" => obj! {
                "subtype" => "can_use_tool",
                "tool_name" => "Bash",
                "display_name" => "Bash",
                "input" => input.clone(),
                "description" => TOOL_DESCRIPTION,
                "permission_suggestions" => json!([
                    {"type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": command}],
                     "behavior": "allow", "destination": "localSettings"},
                    {"type": "addDirectories", "directories": [self.sh.cwd], "destination": "session"},
                    {"type": "setMode", "mode": "acceptEdits", "destination": "session"}
                ]),
                "blocked_path" => blocked_path.map_or(Value::Null, Value::from),
                "tool_use_id" => tool_use_id,
            },
        };
        self.sh.out.send(&request).await;
        let answer = tokio::select! {
            answer = rx => answer,
            () = interrupted(&mut t.interrupt) => {
                self.sh.state().pending.remove(&request_id);
                self.sh.out.send(&obj! {
                    "type" => "control_cancel_request",
                    "request_id" => &request_id,
                }).await;
                return Permission::Interrupted;
            }
        };
        let Ok(answer) = answer else {
            return Permission::Deny {
                message: "Permission prompt unanswered: stdin is closed".into(),
                by_host: true,
            };
        };
        let response = answer.get("response").cloned().unwrap_or(Value::Null);
        if response.get("subtype").and_then(Value::as_str) == Some("error") {
            let err = response.get("error").and_then(Value::as_str);
            return Permission::Deny {
                message: err.unwrap_or("Permission prompt failed").to_string(),
                by_host: true,
            };
        }
        let body = response.get("response").cloned().unwrap_or(Value::Null);
        match body.get("behavior").and_then(Value::as_str) {
            Some("allow") => Permission::Allow,
            _ => Permission::Deny {
                message: body
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("Permission denied")
                    .to_string(),
                by_host: true,
            },
        }
    }

    // --- line builders ---------------------------------------------------------------

    async fn system_init(&self, t: &Turn) {
        let sh = &self.sh;
        let permission_mode = sh.state().permission_mode.clone();
        let home = std::env::var("HOME").unwrap_or_default();
        let slug: String = sh
            .cwd
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let line = obj! {
            "type" => "system",
            "subtype" => "init",
            "cwd" => &sh.cwd,
            "session_id" => &sh.session_id,
            "tools" => json!([
                "Task", "Bash", "CronCreate", "CronDelete", "CronList", "Edit", "EnterWorktree",
                "ExitWorktree", "ListAgents", "Monitor", "NotebookEdit", "Read", "ReportFindings",
                "ScheduleWakeup", "SendMessage", "Skill", "TaskStop", "ToolSearch", "WebFetch",
                "WebSearch", "Workflow", "Write"
            ]),
            "mcp_servers" => Vec::<J>::new(),
            "model" => &t.model,
            "permissionMode" => permission_mode,
            "slash_commands" => json!(["verify", "debug", "code-review", "compact", "context", "init", "mcp", "model", "review"]),
            "terminal_slash_commands" => json!(["doctor", "color"]),
            "apiKeySource" => api_key_source(),
            "claude_code_version" => VERSION,
            "output_style" => "default",
            "agents" => json!(["claude", "Explore", "general-purpose", "Plan", "statusline-setup"]),
            "skills" => json!(["verify", "debug", "code-review"]),
            "plugins" => json!([
                {"name": "cc-plugin-agents-md", "path": "builtin", "source": "cc-plugin-agents-md@builtin"}
            ]),
            "capabilities" => json!(["interrupt_receipt_v1", "msg_lifecycle_v1", "ui_surface_v1"]),
            "analytics_disabled" => true,
            "product_feedback_disabled" => true,
            "served_by_anthropic" => false,
            "uuid" => uuid4(),
            "sandbox_enabled" => false,
            "memory_paths" => obj! { "auto" => format!("{home}/.claude/projects/{slug}/memory/") },
            "original_cwd" => &sh.cwd,
            "additional_directories" => json!(sh.args.add_dirs),
            "messaging_socket_path" => format!("/tmp/cc-socks/{}.sock", std::process::id()),
            "fast_mode_state" => "off",
            "fast_mode_disabled_reason" => "sdk_opt_in_required",
            "per_turn_effort_active" => true,
            "ultrathink_available" => false,
            "ultrathink_typed_raises" => false,
            "view_mode" => "default",
        };
        sh.out.send(&line).await;
    }

    fn stream_event(&self, api: &Api, event: J, extra: Vec<(String, J)>) -> J {
        let mut line = obj! {
            "type" => "stream_event",
            "event" => event,
            "session_id" => &self.sh.session_id,
            "parent_tool_use_id" => NULL,
            "uuid" => uuid4(),
        };
        if let J::O(fields) = &mut line {
            fields.extend(extra);
        }
        line.push("api_message_id", &api.id);
        line
    }

    /// Starts a simulated API call (with partial messages: status and message_start).
    async fn api_start(&mut self, t: &mut Turn) -> Api {
        self.api_calls += 1;
        t.calls += 1;
        let api = Api {
            id: format!("msg_double_{:04}", self.api_calls),
            request_id: request_id(),
            index: 0,
        };
        if self.sh.partial() {
            t.begun_message_ids.push(api.id.clone());
            let sh = &self.sh;
            sh.out
                .send(&obj! {
                    "type" => "system",
                    "subtype" => "status",
                    "status" => "requesting",
                    "session_id" => &sh.session_id,
                    "uuid" => uuid4(),
                })
                .await;
            let event = obj! {
                "type" => "message_start",
                "message" => obj! {
                    "id" => &api.id,
                    "type" => "message",
                    "role" => "assistant",
                    "model" => &t.model,
                    "content" => Vec::<J>::new(),
                    "stop_reason" => NULL,
                    "stop_sequence" => NULL,
                    "usage" => assistant_usage(),
                },
            };
            let ttft = t.started.elapsed().as_millis() as u64;
            let extra = vec![
                ("ttft_ms".to_string(), ttft.j()),
                ("thinking_display".to_string(), "updates".j()),
            ];
            sh.out.send(&self.stream_event(&api, event, extra)).await;
        }
        api
    }

    /// One finished content block: its `assistant` line (with partial messages, wrapped
    /// in content_block_start/delta/stop events).
    async fn block(&self, t: &Turn, api: &Api, block: Block) {
        let out = &self.sh.out;
        let partial = self.sh.partial();
        let index = api.index;
        if partial {
            let start = match &block {
                Block::Text(_) => obj! { "type" => "text", "text" => "" },
                Block::Thinking(_) => {
                    obj! { "type" => "thinking", "thinking" => "", "signature" => "" }
                }
                Block::ToolUse { id, .. } => {
                    obj! { "type" => "tool_use", "id" => id, "name" => "Bash", "input" => obj! {} }
                }
            };
            let event = obj! { "type" => "content_block_start", "index" => index, "content_block" => start };
            out.send(&self.stream_event(api, event, Vec::new())).await;
            let deltas = match &block {
                Block::Text(text) => {
                    // Two halves, split on a char boundary: consumers must join deltas.
                    let mut mid = text.len() / 2;
                    while !text.is_char_boundary(mid) {
                        mid += 1;
                    }
                    let (a, b) = text.split_at(mid);
                    vec![
                        obj! { "type" => "text_delta", "text" => a },
                        obj! { "type" => "text_delta", "text" => b },
                    ]
                }
                Block::Thinking(thinking) => vec![
                    obj! { "type" => "thinking_delta", "thinking" => thinking },
                    obj! { "type" => "signature_delta", "signature" => "double-signature" },
                ],
                Block::ToolUse { input, .. } => vec![obj! {
                    "type" => "input_json_delta",
                    "partial_json" => input.to_string(),
                }],
            };
            for delta in deltas {
                let event =
                    obj! { "type" => "content_block_delta", "index" => index, "delta" => delta };
                out.send(&self.stream_event(api, event, Vec::new())).await;
            }
        }
        out.send(&self.assistant_line(t, api, block_json(&block)))
            .await;
        if partial {
            let event = obj! { "type" => "content_block_stop", "index" => index };
            out.send(&self.stream_event(api, event, Vec::new())).await;
        }
    }

    /// Ends a simulated API call (with partial messages: message_delta, message_stop).
    async fn api_stop(&self, api: &Api, stop_reason: &str) {
        if self.sh.partial() {
            let event = obj! {
                "type" => "message_delta",
                "delta" => obj! { "stop_reason" => stop_reason, "stop_sequence" => NULL },
                "usage" => obj! { "output_tokens" => 5u64 },
            };
            self.sh
                .out
                .send(&self.stream_event(api, event, Vec::new()))
                .await;
            let event = obj! { "type" => "message_stop" };
            self.sh
                .out
                .send(&self.stream_event(api, event, Vec::new()))
                .await;
        }
    }

    fn assistant_line(&self, t: &Turn, api: &Api, content: J) -> J {
        obj! {
            "type" => "assistant",
            "message" => obj! {
                "id" => &api.id,
                "type" => "message",
                "role" => "assistant",
                "model" => &t.model,
                "content" => vec![content],
                "stop_reason" => NULL,
                "stop_sequence" => NULL,
                "usage" => assistant_usage(),
                "context_management" => NULL,
            },
            "parent_tool_use_id" => NULL,
            "session_id" => &self.sh.session_id,
            "uuid" => uuid4(),
            "timestamp" => now_rfc3339(),
            "request_id" => &api.request_id,
        }
    }

    async fn interrupted_user_line(&self) {
        let line = obj! {
            "type" => "user",
            "message" => obj! {
                "role" => "user",
                "content" => vec![obj! { "type" => "text", "text" => INTERRUPTED_TEXT }],
            },
            "parent_tool_use_id" => NULL,
            "session_id" => &self.sh.session_id,
            "uuid" => uuid4(),
            "timestamp" => now_rfc3339(),
        };
        self.sh.out.send(&line).await;
    }

    /// Writes the turn's `result`, with the real CLI's key order for each kind of outcome.
    async fn result(&mut self, t: &Turn, outcome: Outcome) {
        // Accounting first: total_cost_usd and modelUsage include this turn. Like the real
        // CLI, every API call is charged, and a call the API refused (400) is not.
        let calls = match &outcome {
            Outcome::ApiError400 { .. } => 0,
            _ => t.calls,
        };
        self.cost_usd += TURN_COST_USD * calls as f64;
        *self.turns_by_model.entry(t.model.clone()).or_insert(0) += calls;
        let result_index = self.results;
        self.results += 1;

        let elapsed = t.started.elapsed().as_millis() as u64;
        let model_usage = J::O(
            self.turns_by_model
                .iter()
                .map(|(model, turns)| (model.clone(), model_usage_entry(model, *turns)))
                .collect(),
        );
        let since_last = J::O(vec![(t.model.clone(), model_usage_entry(&t.model, calls))]);
        let (stop_reason, terminal_reason, is_error, num_turns) = match &outcome {
            Outcome::Success { num_turns, .. } => ("end_turn".j(), "completed", false, *num_turns),
            Outcome::ApiError400 { .. } => ("stop_sequence".j(), "api_error", true, 1),
            Outcome::Error {
                terminal_reason, ..
            } => (NULL, *terminal_reason, true, 1),
        };
        let denials = match &outcome {
            Outcome::Success { denials, .. } => denials.clone(),
            _ => Vec::new(),
        };
        let mut line = obj! {
            "duration_api_ms" => elapsed,
            "stop_reason" => stop_reason,
            "session_id" => &self.sh.session_id,
            "total_cost_usd" => self.cost_usd,
            "usage" => result_usage(calls),
            "modelUsage" => model_usage,
            "permission_denials" => denials,
            "terminal_reason" => terminal_reason,
            "fast_mode_state" => "off",
            "fast_mode_disabled_reason" => "sdk_opt_in_required",
            "subagent_stats" => json!({
                "spawned": 0, "requested": {"background": 0, "foreground": 0, "unset": 0},
                "started_in_background": 0, "max_depth": 0, "spawned_by_subagents": 0,
                "completed": 0, "failed": 0, "killed": {"parent": 0, "user": 0, "system": 0},
                "refused": {"depth_limit": 0, "concurrency_limit": 0, "budget": 0}, "by_type": {}
            }),
            "safety_stops" => 0u64,
            "is_error" => is_error,
            "num_turns" => num_turns,
        };
        let timings = match outcome {
            Outcome::Success { text, .. } => {
                line.push("subtype", "success");
                line.push("api_error_status", NULL);
                line.push("result", text);
                true
            }
            Outcome::ApiError400 { text } => {
                line.push("subtype", "success");
                line.push("api_error_status", 400u64);
                line.push("api_error_type", "invalid_request_error");
                line.push("result", text);
                false
            }
            Outcome::Error {
                subtype, errors, ..
            } => {
                line.push("subtype", subtype);
                line.push("errors", json!(errors));
                false
            }
        };
        if timings {
            line.push("ttft_ms", elapsed);
        }
        line.push("type", "result");
        line.push("duration_ms", elapsed);
        line.push("uuid", uuid4());
        if self.sh.partial() {
            line.push("begun_message_ids", json!(t.begun_message_ids));
        }
        if timings {
            line.push("ttft_stream_ms", elapsed);
            line.push("time_to_request_ms", 0u64);
            line.push("first_content_frame_ms", elapsed);
        }
        line.push("queued_turn_count", self.queue.len());
        line.push("result_index", result_index);
        line.push("model_usage_since_last_result", since_last);
        self.sh.out.send(&line).await;
    }
}

/// Waits `ms` between chunks; `0` only yields (a timer would round it up to 1 ms, which
/// makes a flood of 20,000 chunks take 20 s).
async fn pause(ms: u64) {
    match ms {
        0 => tokio::task::yield_now().await,
        ms => tokio::time::sleep(Duration::from_millis(ms)).await,
    }
}

fn aborted(terminal_reason: &'static str) -> Outcome {
    Outcome::Error {
        subtype: "error_during_execution",
        terminal_reason,
        errors: vec![
            "[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null".into(),
        ],
    }
}

fn rejected_tool_result(
    sid: &str,
    tool_use_id: &str,
    message: &str,
    kind: &str,
    source: &str,
) -> J {
    obj! {
        "type" => "user",
        "message" => obj! {
            "role" => "user",
            "content" => vec![obj! {
                "type" => "tool_result",
                "content" => message,
                "is_error" => true,
                "tool_use_id" => tool_use_id,
            }],
        },
        "parent_tool_use_id" => NULL,
        "session_id" => sid,
        "uuid" => uuid4(),
        "timestamp" => now_rfc3339(),
        "tool_use_result" => format!("Error: {message}"),
        "tool_result_meta" => json!([{
            "id": tool_use_id,
            "non_execution_kind": kind,
            "permission_decision": {"decision": "reject", "source": source}
        }]),
    }
}

fn block_json(block: &Block) -> J {
    match block {
        Block::Text(text) => obj! { "type" => "text", "text" => text },
        Block::Thinking(thinking) => obj! {
            "type" => "thinking",
            "thinking" => thinking,
            "signature" => "double-signature",
        },
        Block::ToolUse { id, input } => obj! {
            "type" => "tool_use",
            "id" => id,
            "name" => "Bash",
            "input" => input.clone(),
        },
    }
}

fn request_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("req_double_{}", &hex[..12])
}

fn assistant_usage() -> J {
    obj! {
        "input_tokens" => 10u64,
        "output_tokens" => 1u64,
        "cache_creation_input_tokens" => 0u64,
        "cache_read_input_tokens" => 0u64,
    }
}

fn result_usage(calls: u64) -> J {
    obj! {
        "input_tokens" => 10 * calls,
        "cache_creation_input_tokens" => 0u64,
        "cache_read_input_tokens" => 0u64,
        "output_tokens" => 5 * calls,
        "output_tokens_details" => obj! { "thinking_tokens" => 0u64 },
        "server_tool_use" => obj! { "web_search_requests" => 0u64, "web_fetch_requests" => 0u64 },
        "service_tier" => "standard",
        "cache_creation" => obj! { "ephemeral_1h_input_tokens" => 0u64, "ephemeral_5m_input_tokens" => 0u64 },
        "inference_geo" => "",
        "iterations" => Vec::<J>::new(),
        "speed" => "standard",
        "fallback_credit" => NULL,
    }
}

fn model_usage_entry(model: &str, turns: u64) -> J {
    obj! {
        "inputTokens" => 10 * turns,
        "outputTokens" => 5 * turns,
        "cacheReadInputTokens" => 0u64,
        "cacheCreationInputTokens" => 0u64,
        "webSearchRequests" => 0u64,
        "costUSD" => TURN_COST_USD * turns as f64,
        "contextWindow" => 1_000_000u64,
        "maxOutputTokens" => 128_000u64,
        "thinkingTokens" => 0u64,
        "cacheCreationEphemeral5mInputTokens" => 0u64,
        "cacheCreationEphemeral1hInputTokens" => 0u64,
        "canonicalModel" => model,
        "provider" => "firstParty",
        "costBasis" => "list",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        let v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        parse_args(&v)
    }

    #[test]
    fn parses_the_usual_supervisor_command_line() {
        let a = args(&[
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "sonnet",
            "--resume",
            "abc",
            "--permission-mode",
            "acceptEdits",
            "--permission-prompt-tool",
            "stdio",
            "--include-partial-messages",
            "--max-turns",
            "3",
            "--append-system-prompt",
            "be brief",
        ]);
        assert!(a.print && a.verbose && a.include_partial_messages);
        assert_eq!(a.input_format.as_deref(), Some("stream-json"));
        assert_eq!(a.output_format.as_deref(), Some("stream-json"));
        assert_eq!(a.model.as_deref(), Some("sonnet"));
        assert_eq!(a.resume.as_deref(), Some("abc"));
        assert_eq!(a.permission_mode.as_deref(), Some("acceptEdits"));
        assert_eq!(a.permission_prompt_tool.as_deref(), Some("stdio"));
        assert_eq!(a.max_turns, Some(3));
        assert_eq!(a.append_system_prompt.as_deref(), Some("be brief"));
        assert!(a.notes.is_empty(), "{:?}", a.notes);
    }

    #[test]
    fn multi_valued_flags_and_inline_values() {
        let a = args(&[
            "--allowedTools",
            "Bash",
            "Read",
            "--add-dir=/a",
            "--add-dir",
            "/b",
            "--disallowedTools",
            "Write",
            "--mcp-config",
            "{}",
            "--session-id=s1",
        ]);
        assert_eq!(a.allowed_tools, ["Bash", "Read"]);
        assert_eq!(a.add_dirs, ["/a", "/b"]);
        assert_eq!(a.disallowed_tools, ["Write"]);
        assert_eq!(a.mcp_config, ["{}"]);
        assert_eq!(a.session_id.as_deref(), Some("s1"));
    }

    #[test]
    fn unknown_flags_are_noted_not_fatal() {
        let a = args(&["--frobnicate", "--verbose", "stray", "--model"]);
        assert!(a.verbose);
        assert_eq!(a.notes.len(), 3, "{:?}", a.notes);
        assert!(a.notes[0].contains("--frobnicate"));
        assert!(a.notes[1].contains("stray"));
        assert!(a.notes[2].contains("--model"));
        assert_eq!(a.model, None);
    }

    #[test]
    fn value_flag_does_not_swallow_the_next_flag() {
        let a = args(&["--model", "--verbose"]);
        assert!(a.verbose);
        assert_eq!(a.model, None);
    }

    #[test]
    fn directives() {
        use Directive as D;
        assert_eq!(parse_directive("hello"), D::Reply);
        assert_eq!(parse_directive("slow please"), D::Reply);
        assert_eq!(parse_directive(""), D::Reply);
        assert_eq!(
            parse_directive("SLOW please"),
            D::Slow { ms: 200, chunks: 5 }
        );
        assert_eq!(
            parse_directive("  SLOW chunks=2 ms=10"),
            D::Slow { ms: 10, chunks: 2 }
        );
        assert_eq!(
            parse_directive("SLOW ms=x chunks=-1"),
            D::Slow { ms: 200, chunks: 5 }
        );
        assert_eq!(parse_directive("HANG"), D::Hang);
        assert_eq!(parse_directive("CRASH"), D::Crash { code: 1 });
        assert_eq!(parse_directive("CRASH code=7"), D::Crash { code: 7 });
        assert_eq!(parse_directive("CRASH 9"), D::Crash { code: 9 });
        assert_eq!(parse_directive("KILL"), D::Kill);
        assert_eq!(parse_directive("GARBAGE"), D::Garbage);
        assert_eq!(
            parse_directive("HUGE 10000000"),
            D::Huge { bytes: 10_000_000 }
        );
        assert_eq!(
            parse_directive("HUGE"),
            D::Huge {
                bytes: DEFAULT_HUGE_BYTES
            }
        );
        assert_eq!(parse_directive("ERR400"), D::Err400);
        assert_eq!(parse_directive("MAXTURNS"), D::MaxTurns);
        assert_eq!(
            parse_directive("RUN_TOOL touch created_by_tool.txt"),
            D::RunTool {
                command: "touch created_by_tool.txt".into()
            }
        );
        assert_eq!(
            parse_directive("RUN_TOOL   echo  a  b "),
            D::RunTool {
                command: "echo  a  b".into()
            }
        );
        assert_eq!(
            parse_directive("RUN_TOOL"),
            D::RunTool {
                command: "true".into()
            }
        );
        assert_eq!(parse_directive("STDERR 5"), D::Stderr { lines: 5 });
        assert_eq!(parse_directive("CLOSE_STDOUT"), D::CloseStdout);
        assert_eq!(parse_directive("UNKNOWN"), D::Unknown);
        assert_eq!(parse_directive("MULTI"), D::Multi);
        assert_eq!(parse_directive("MULTIPLE"), D::Reply);
    }

    #[test]
    fn prompt_text_from_string_or_blocks() {
        let s = json!({"type": "user", "message": {"role": "user", "content": "hi"}});
        assert_eq!(prompt_text(&s), "hi");
        let b = json!({"type": "user", "message": {"content": [
            {"type": "text", "text": "SLOW "}, {"type": "image"}, {"type": "text", "text": "ms=5"}
        ]}});
        assert_eq!(prompt_text(&b), "SLOW ms=5");
    }

    #[test]
    fn ordered_objects_keep_key_order() {
        let mut o = obj! { "z" => 1u64, "a" => obj! { "y" => true, "b" => NULL } };
        o.push("m", "x");
        let s = serde_json::to_string(&o).unwrap_or_default();
        assert_eq!(s, r#"{"z":1,"a":{"y":true,"b":null},"m":"x"}"#);
    }

    #[test]
    fn timestamp_shape() {
        let ts = now_rfc3339();
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z') && &ts[10..11] == "T", "{ts}");
        assert!(ts.as_str() > "2024-01-01T00:00:00.000Z", "{ts}");
    }
}
