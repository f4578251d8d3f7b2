//! Property tests of both surfaces end to end, in process: generated stdin (random bytes,
//! random JSON, requests and notifications of every shape with ids of every JSON type;
//! for MCP, generated message sequences of handshakes, tool calls, cancellations, stray
//! notifications and client responses) goes through `plain::run` or `mcp::run` to a real
//! `Daemon` whose child is the CLI double, and the whole stdout is checked:
//!
//! - nothing panics and nothing hangs (each case must finish within `CASE_LIMIT`);
//! - every output line is one JSON-RPC 2.0 message: a response with exactly one of
//!   `result`/`error` (a well-formed error object), or an `ask/event` notification of an
//!   `ask` that was sent;
//! - every line that needs an answer gets exactly one, under its own id (or `null` when
//!   the id cannot be known), and notifications and client responses get none;
//! - an answered ask's notifications are numbered 1..=n without gaps, `n` is the
//!   result's `messages`, and they all come before its response;
//! - once `run` returns, no process of the daemon is left;
//! - MCP: every request is answered exactly once under its own id (at most once when the
//!   client cancelled it), asks queue in arrival order, and the server does not exit
//!   while its stdin is open.
//!
//! Runs without libtest (`harness = false` in Cargo.toml): the daemon starts its child
//! under a guard that is the current executable (`<exe> __guard <cli> ...`, see
//! `src/guard.rs`), so this binary must act as that guard when started that way.
//! Case counts are small (the daemon and its child are started per case) so the file
//! runs in seconds; `PROPTEST_CASES` raises them for a longer hunt.
// Test code: a failed unwrap is a failed test, its output is the report, and its helper
// modules are shared between test crates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

mod mcp;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use claude_coded::config::{Config, ConfigArgs};
use claude_coded::daemon::Daemon;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestError, TestRunner};
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;

use test_support::arb_json::{json, scalar};
use test_support::{TempDir, double, proc_info};

/// A case that takes longer than this hung.
const CASE_LIMIT: Duration = Duration::from_secs(30);

/// A property: runs its cases and says what failed.
type Property = fn(u32) -> Result<(), String>;

fn main() {
    if let Some(code) = claude_coded::guard::main_if_guard() {
        std::process::exit(code);
    }
    let properties: [(&str, u32, Property); 5] = [
        ("any_lines_get_well_formed_answers", 48, any_lines),
        (
            "requests_of_every_shape_are_answered_once",
            64,
            request_lines,
        ),
        ("a_few_real_turns_stream_then_answer", 12, turn_lines),
        (
            "mcp_sequences_answer_every_request_once_under_its_id",
            48,
            mcp::sequences,
        ),
        ("mcp_asks_queue_in_arrival_order", 12, mcp::ask_order),
    ];
    let filters = name_filters(std::env::args().skip(1));
    let (mut passed, mut failed) = (0, 0);
    for (name, cases, property) in properties {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases);
        match property(cases) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ({cases} cases) ... ok");
            }
            Err(message) => {
                failed += 1;
                println!("test {name} ... FAILED\n{message}");
            }
        }
    }
    println!("\nfuzz_inputs: {passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 101 });
}

/// Like libtest: bare arguments are name filters (`cargo test <filter>`), flags are
/// ignored, and so is the value of a libtest flag written apart (`--test-threads 1`),
/// which would otherwise filter out every property and pass with none run.
fn name_filters(args: impl Iterator<Item = String>) -> Vec<String> {
    const TAKES_A_VALUE: [&str; 7] = [
        "--test-threads",
        "--skip",
        "--format",
        "--color",
        "--logfile",
        "-Z",
        "--shuffle-seed",
    ];
    let mut filters = Vec::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        if TAKES_A_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            filters.push(arg);
        }
    }
    filters
}

/// Runs `check` on `cases` generated inputs; on failure, the shrunk input and the reason.
fn run_property<S: Strategy>(
    cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> Result<(), String>
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        // Each shrinking step starts a daemon: keep the search short.
        max_shrink_iters: 64,
        // No source file to keep regressions next to: the failure is printed instead.
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    runner.run(&strategy, check).map_err(|err| match err {
        TestError::Fail(reason, input) => format!("{reason}\nminimal input: {input:#?}"),
        TestError::Abort(reason) => format!("aborted: {reason}"),
    })
}

fn any_lines(cases: u32) -> Result<(), String> {
    let line = prop_oneof![
        3 => random_bytes(),
        3 => json().prop_map(|v| v.to_string().into_bytes()),
        4 => request_line(),
    ];
    run_property(cases, session(line, 1..24), check_session)
}

fn request_lines(cases: u32) -> Result<(), String> {
    run_property(cases, session(request_line(), 1..32), check_session)
}

/// Asks that run real turns (ids `"turn-<n>"`, unique), among other requests: each is
/// answered with a result, its messages streamed before it.
fn turn_lines(cases: u32) -> Result<(), String> {
    let line = prop_oneof![3 => prompt().prop_map(Ok), 1 => request_line().prop_map(Err)];
    let lines = prop::collection::vec(line, 1..6).prop_map(|lines| {
        let lines = lines.into_iter().enumerate().map(|(n, line)| match line {
            Ok(prompt) => json!({"jsonrpc": "2.0", "id": format!("turn-{n}"),
                                 "method": "ask", "params": {"prompt": prompt}})
            .to_string()
            .into_bytes(),
            Err(other) => other,
        });
        Lines(lines.collect())
    });
    run_property(cases, lines, |Lines(lines)| {
        let turns = lines
            .iter()
            .filter(|l| l.starts_with(br#"{"jsonrpc":"2.0","id":"turn-"#))
            .count();
        let responses = verify_session(&lines)?;
        let results = responses
            .iter()
            .filter(|(id, r)| id.starts_with("\"turn-") && r.get("result").is_some())
            .count();
        prop_assert_eq!(
            results,
            turns,
            "every turn ends with a result: {:?}",
            responses
        );
        Ok(())
    })
}

// ----- generators ---------------------------------------------------------------------

/// The lines of one session (without their newlines); shown as text when a case fails.
#[derive(Clone)]
struct Lines(Vec<Vec<u8>>);

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|l| String::from_utf8_lossy(l)))
            .finish()
    }
}

fn session(
    line: impl Strategy<Value = Vec<u8>>,
    count: std::ops::Range<usize>,
) -> impl Strategy<Value = Lines> {
    prop::collection::vec(line, count).prop_map(Lines)
}

/// Any bytes but `\n`, which would make two lines of one.
fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..80)
        .prop_map(|bytes| bytes.into_iter().filter(|b| *b != b'\n').collect())
}

/// Ids of every JSON type, valid ones (string, number, null) most often.
fn id() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => ".{0,8}".prop_map(Value::from),
        3 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        1 => (0u8..4).prop_map(Value::from),
        1 => Just(Value::Null),
        1 => json(),
    ]
}

fn method() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => prop::sample::select(vec!["ask", "status", "events", "ping", "restart"])
            .prop_map(Value::from),
        2 => prop::sample::select(vec!["ASK", "", "rpc.discover", "ask/event", "initialize"])
            .prop_map(Value::from),
        1 => ".{0,10}".prop_map(Value::from),
        1 => scalar(),
    ]
}

/// Prompts for the few asks that start real turns: quick ones of the double.
fn prompt() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("hi".to_string()),
        Just("GARBAGE".to_string()),
        Just("SLOW 1 20".to_string()),
        Just("UNKNOWN".to_string()),
        Just("ERR400".to_string()),
        Just("MAXTURNS".to_string()),
        "[a-z][a-z ]{0,11}",
    ]
}

/// A value for a known parameter: mostly well-typed, often not.
fn param_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => (1u64..5000).prop_map(Value::from),
        1 => prop::sample::select(vec!["debug", "info", "warn", "error", "loud"])
            .prop_map(Value::from),
        1 => scalar(),
        1 => json(),
    ]
}

fn params() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        prop::sample::select(vec!["prompt", "timeoutMs", "since", "limit", "level"])
            .prop_map(str::to_string),
        "[a-zA-Z]{1,8}",
    ];
    let object = prop::collection::vec((name, param_value()), 0..3)
        .prop_map(|pairs| Value::Object(pairs.into_iter().collect()));
    prop_oneof![6 => object, 1 => json()]
}

/// A request-shaped object: each member present or not, valid or not, in any order.
fn request_line() -> impl Strategy<Value = Vec<u8>> {
    let member = |valid: BoxedStrategy<Value>| prop_oneof![1 => Just(None), 6 => valid.prop_map(Some), 1 => json().prop_map(Some)];
    (
        member(Just(Value::from("2.0")).boxed()),
        member(id().boxed()),
        member(method().boxed()),
        member(params().boxed()),
        prop::option::weighted(0.1, ("result|error", json())),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(jsonrpc, id, method, params, reply, rotate)| {
            let mut members = vec![
                ("jsonrpc".to_string(), jsonrpc),
                ("id".to_string(), id),
                ("method".to_string(), method),
                ("params".to_string(), params),
            ];
            if let Some((key, value)) = reply {
                members.push((key, Some(value)));
            }
            let shift = rotate.index(members.len());
            members.rotate_left(shift);
            let object: Map<String, Value> = members
                .into_iter()
                .filter_map(|(key, value)| Some((key, value?)))
                .collect();
            // A prompt that would hang or kill the child makes a slow case; keep turns quick.
            let line = Value::Object(object).to_string();
            line.replace("HANG", "hang").into_bytes()
        })
}

// ----- the oracle ---------------------------------------------------------------------

/// What JSON-RPC 2.0 says a line needs: `Some(id)` for one answer under that id (`null`
/// when the line is too broken to have one), `None` for no answer at all.
fn answer_owed(line: &[u8]) -> Option<Value> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(line) else {
        return Some(Value::Null);
    };
    let id = match object.get("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id.clone()),
        Some(_) => return Some(Value::Null),
    };
    let or_null = || Some(id.clone().unwrap_or(Value::Null));
    if object.get("jsonrpc") != Some(&Value::from("2.0")) {
        return or_null();
    }
    match object.get("method") {
        // A response from the client: we send no requests, so there is nothing to answer.
        None if object.contains_key("result") || object.contains_key("error") => None,
        // A notification is never answered, whatever its params.
        Some(Value::String(_)) if id.is_none() => None,
        Some(Value::String(_)) => match object.get("params") {
            None | Some(Value::Null | Value::Object(_)) => id,
            Some(_) => or_null(),
        },
        _ => or_null(),
    }
}

/// Ids of the `ask` calls in the input, by their canonical text, with how often each is used.
fn ask_ids(lines: &[Vec<u8>]) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for line in lines {
        if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(line)
            && object.get("method") == Some(&Value::from("ask"))
            && let Some(id) = object.get("id")
        {
            *ids.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    ids
}

// ----- one session --------------------------------------------------------------------

/// Serves `lines` (then EOF) through `plain::run`; returns stdout and the daemon's
/// processes still alive once `run` returned.
fn serve(lines: &[Vec<u8>]) -> Result<(Vec<u8>, Vec<u32>), String> {
    let dir = TempDir::new("fuzz");
    let config = case_config(&dir)?;
    let input = joined(lines);
    let runtime = case_runtime()?;
    runtime.block_on(async move {
        let daemon = Daemon::start(config);
        let daemon_id = daemon.status().identity.daemon_id;
        let (writer, mut reader) = tokio::io::duplex(64 * 1024);
        let collect = tokio::spawn(async move {
            let mut out = Vec::new();
            reader.read_to_end(&mut out).await.map(|_| out)
        });
        let served = claude_coded::plain::run(
            std::io::Cursor::new(input),
            writer,
            daemon,
            std::future::pending(),
        );
        match tokio::time::timeout(CASE_LIMIT, served).await {
            Err(_) => return Err(format!("plain::run did not finish in {CASE_LIMIT:?}")),
            Ok(Err(err)) => return Err(format!("plain::run failed: {err}")),
            Ok(Ok(())) => {}
        }
        let out = tokio::time::timeout(CASE_LIMIT, collect)
            .await
            .map_err(|_| "stdout was not closed after run returned".to_string())?
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        // Checked before the runtime goes: its worker threads spawned the child, and their
        // exit would fire the child's parent-death signal and hide a leak.
        let left = proc_info::survivors_of_daemon(&daemon_id, Duration::from_secs(5));
        Ok((out, left))
    })
}

/// The daemon's configuration for one case, in `dir`: the double, quick restarts.
fn case_config(dir: &TempDir) -> Result<Config, String> {
    // An explicit, empty config file: the developer's own config must not change the test.
    let config_file = dir.path().join("config.json");
    std::fs::write(&config_file, "{}").map_err(|e| e.to_string())?;
    let args = ConfigArgs {
        claude_bin: Some(double().display().to_string()),
        cwd: Some(dir.path().to_path_buf()),
        state_dir: Some(dir.path().join("state")),
        backoff_initial_ms: Some(20),
        backoff_max_ms: Some(100),
        interrupt_grace_ms: Some(300),
        stop_grace_ms: Some(2000),
        ..ConfigArgs::default()
    };
    Config::resolve(&args, Some(&config_file)).map_err(|e| e.to_string())
}

/// The lines as stdin bytes, each ended by a newline.
fn joined(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut input = Vec::new();
    for line in lines {
        input.extend_from_slice(line);
        input.push(b'\n');
    }
    input
}

fn case_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn check_session(Lines(lines): Lines) -> Result<(), TestCaseError> {
    verify_session(&lines).map(|_| ())
}

/// Serves `lines` and checks everything in the module doc; returns the responses by id.
fn verify_session(lines: &[Vec<u8>]) -> Result<BTreeMap<String, Value>, TestCaseError> {
    let (out, left) = serve(lines).map_err(TestCaseError::fail)?;
    let text = String::from_utf8(out).map_err(|e| fail(format!("stdout not UTF-8: {e}")))?;
    prop_assert!(
        text.is_empty() || text.ends_with('\n'),
        "unterminated output"
    );

    let asks = ask_ids(lines);
    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    // Per ask id used once: notification seqs in order, and the response's line number.
    let mut streamed: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut results: BTreeMap<String, (usize, Value)> = BTreeMap::new();
    let mut last_note: BTreeMap<String, usize> = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let message: Value = serde_json::from_str(line)
            .map_err(|e| fail(format!("output line {number} is not JSON ({e}): {line}")))?;
        check_message(&message, &asks).map_err(|e| fail(format!("{e}: {line}")))?;
        if message.get("method").is_some() {
            let request = message["params"]["requestId"].to_string();
            streamed
                .entry(request.clone())
                .or_default()
                .push(message["params"]["seq"].as_u64().unwrap_or(0));
            last_note.insert(request, number);
        } else {
            let id = message["id"].to_string();
            *answered.entry(id.clone()).or_insert(0) += 1;
            results.insert(id, (number, message));
        }
    }

    let mut owed: BTreeMap<String, usize> = BTreeMap::new();
    for line in lines {
        if let Some(id) = answer_owed(line) {
            *owed.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    prop_assert_eq!(
        &answered,
        &owed,
        "answers by id differ from what the input needs"
    );

    for (id, uses) in &asks {
        if *uses != 1 {
            continue;
        }
        let seqs = streamed.get(id).cloned().unwrap_or_default();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        prop_assert_eq!(
            &seqs,
            &expected,
            "ask {} notifications out of order or lost",
            id
        );
        if let Some((at, response)) = results.get(id) {
            if let Some(messages) = response.pointer("/result/messages") {
                prop_assert_eq!(messages, &json!(seqs.len()), "ask {} message count", id);
            }
            if let Some(note) = last_note.get(id) {
                prop_assert!(
                    note < at,
                    "ask {} answered before its last notification",
                    id
                );
            }
        }
    }

    prop_assert!(left.is_empty(), "processes left after run: {:?}", left);
    Ok(results.into_iter().map(|(id, (_, r))| (id, r)).collect())
}

/// One output line must be a well-formed response or an `ask/event` of a sent ask.
fn check_message(message: &Value, asks: &BTreeMap<String, usize>) -> Result<(), String> {
    let object = message.as_object().ok_or("not an object")?;
    if object.get("jsonrpc") != Some(&Value::from("2.0")) {
        return Err("jsonrpc is not \"2.0\"".into());
    }
    if object.contains_key("method") {
        let keys: HashSet<&str> = object.keys().map(String::as_str).collect();
        if keys != HashSet::from(["jsonrpc", "method", "params"]) {
            return Err(format!("notification members {keys:?}"));
        }
        if object["method"] != "ask/event" {
            return Err("unexpected notification method".into());
        }
        let request = object["params"]["requestId"].to_string();
        if !asks.contains_key(&request) {
            return Err(format!("ask/event for {request}, which is no ask"));
        }
        if object["params"]["seq"].as_u64().is_none_or(|s| s == 0) {
            return Err("ask/event without a positive seq".into());
        }
        return Ok(());
    }
    let keys: HashSet<&str> = object.keys().map(String::as_str).collect();
    let with_result = HashSet::from(["jsonrpc", "id", "result"]);
    let with_error = HashSet::from(["jsonrpc", "id", "error"]);
    if keys != with_result && keys != with_error {
        return Err(format!("response members {keys:?}"));
    }
    if !matches!(
        object["id"],
        Value::String(_) | Value::Number(_) | Value::Null
    ) {
        return Err("id of a response must be a string, number or null".into());
    }
    if let Some(error) = object.get("error") {
        let code_ok = error["code"].as_i64().is_some();
        let message_ok = error["message"].as_str().is_some_and(|m| !m.is_empty());
        let members_ok = error.as_object().is_some_and(|e| {
            e.keys()
                .all(|k| ["code", "message", "data"].contains(&k.as_str()))
        });
        if !(code_ok && message_ok && members_ok) {
            return Err("malformed error object".into());
        }
    }
    Ok(())
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}
