//! The MCP half of `fuzz_inputs`: generated message sequences through `mcp::run`.
//!
//! A sequence is a handshake (most of the time; a session that never starts is a case
//! too) followed by tool calls (`ask` with the double's quick prompts, `status`,
//! `events`, unknown tools, bad arguments), pings, `logging/setLevel`, more
//! `initialize`s, cancellations of ids in flight or not, stray notifications, client
//! responses, plain-surface shapes and random bytes, with ids drawn from a small pool so
//! duplicates in flight and cancellations of real requests happen often.

use claude_coded::inbox::Input;
use claude_coded::mcp::OutputDrain;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;

use super::*;

/// Valid ids, few so that they collide: numbers of any size, strings.
const IDS: [&str; 8] = [
    "1",
    "2",
    "3",
    "-7",
    "1.5",
    "18446744073709551617",
    "\"a\"",
    "\"b\"",
];
/// Ids that are no string or number (`null` is refused by MCP, answered under `null`).
const BAD_IDS: [&str; 4] = ["true", "{}", "[1]", "null"];
/// The notifications a server may send: progress and log lines.
const SERVER_NOTIFICATIONS: [&str; 2] = ["notifications/progress", "notifications/message"];
/// How long a case waits, stdin still open, for the answers it is sure to get.
const SETTLE: Duration = Duration::from_secs(10);

pub fn sequences(cases: u32) -> Result<(), String> {
    let lines = (
        prop::bool::weighted(0.85),
        prop::collection::vec(mcp_line(), 1..16),
    )
        .prop_map(|(handshake, body)| Lines(with_handshake(handshake, body)));
    run_property(cases, lines, |Lines(lines)| verify_mcp(&lines).map(|_| ()))
}

/// Asks with prompts `order <i>` among noise: the child's turn numbers follow `i`.
pub fn ask_order(cases: u32) -> Result<(), String> {
    let slots = prop::collection::vec(prop::option::weighted(0.5, noise_line()), 2..9);
    let lines = slots.prop_map(|slots| {
        let body = slots
            .into_iter()
            .enumerate()
            .map(|(i, noise)| match noise {
                Some(noise) => noise,
                None => ask_line(&format!("\"ask-{i}\""), &format!("order {i}")),
            })
            .collect();
        Lines(with_handshake(true, body))
    });
    run_property(cases, lines, |Lines(lines)| {
        let answers = verify_mcp(&lines)?;
        let mut turns = Vec::new();
        for line in &lines {
            let Some(id) = ask_id(line) else { continue };
            let text = answers
                .get(&id)
                .and_then(|a| a.pointer("/result/structuredContent/result"))
                .and_then(Value::as_str);
            if let Some(turn) = text.and_then(turn_number) {
                turns.push(turn);
            }
        }
        prop_assert!(
            turns.windows(2).all(|w| w[0] < w[1]),
            "asks ran out of arrival order: turns {:?}",
            turns
        );
        Ok(())
    })
}

// ----- generators ---------------------------------------------------------------------

fn with_handshake(handshake: bool, body: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    if handshake {
        lines.push(initialize_line("\"init\"", "2025-11-25"));
        lines.push(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec());
    }
    lines.extend(body);
    lines
}

fn id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(IDS.to_vec()),
        1 => prop::sample::select(BAD_IDS.to_vec()),
    ]
    .prop_map(str::to_string)
}

fn request(id: &str, method: &str, params: Option<&Value>) -> Vec<u8> {
    let params = params
        .map(|p| format!(r#","params":{p}"#))
        .unwrap_or_default();
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}"{params}}}"#).into_bytes()
}

fn initialize_line(id: &str, version: &str) -> Vec<u8> {
    let params = json!({"protocolVersion": version, "capabilities": {},
                        "clientInfo": {"name": "fuzz", "version": "0"}});
    request(id, "initialize", Some(&params))
}

fn ask_line(id: &str, prompt: &str) -> Vec<u8> {
    let params = json!({"name": "ask", "arguments": {"prompt": prompt}});
    request(id, "tools/call", Some(&params))
}

/// The params of a `tools/call`: mostly sound, sometimes not.
fn tool_params() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prompt().prop_map(|p| json!({"name": "ask", "arguments": {"prompt": p}})),
        2 => Just(json!({"name": "status", "arguments": {}})),
        1 => (0u64..30).prop_map(|n| json!({"name": "events", "arguments": {"limit": n}})),
        1 => Just(json!({"name": "ask", "arguments": {"prompt": 5}})),
        1 => Just(json!({"name": "nope", "arguments": {}})),
        1 => Just(json!({"name": "status", "arguments": ["x"]})),
        1 => Just(json!({"arguments": {}})),
    ]
}

fn other_request() -> impl Strategy<Value = (&'static str, Option<Value>)> {
    let level = prop::sample::select(vec!["debug", "info", "warning", "bogus"]);
    prop_oneof![
        3 => Just(("ping", None)),
        2 => Just(("tools/list", None)),
        1 => level.prop_map(|l| ("logging/setLevel", Some(json!({"level": l})))),
        1 => Just(("server/discover", None)),
        1 => Just(("ping", Some(json!([])))),
        1 => Just(("prompts/list", None)),
        1 => Just(("ask", Some(json!({"prompt": "plain"})))),
    ]
}

fn notification() -> impl Strategy<Value = Vec<u8>> {
    let cancel = prop::sample::select(IDS.to_vec()).prop_map(|id| {
        format!(r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{id}}}}}"#)
    });
    prop_oneof![
        4 => cancel,
        1 => Just(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string()),
        1 => Just(r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}"#.to_string()),
        1 => Just(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":[]}"#.to_string()),
        1 => Just(r#"{"jsonrpc":"2.0","method":"notifications/anything"}"#.to_string()),
    ]
    .prop_map(String::into_bytes)
}

fn client_response() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(IDS.to_vec())
        .prop_map(|id| format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#).into_bytes())
}

fn mcp_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        5 => (id_text(), tool_params()).prop_map(|(id, p)| request(&id, "tools/call", Some(&p))),
        3 => (id_text(), other_request()).prop_map(|(id, (m, p))| request(&id, m, p.as_ref())),
        1 => (id_text(), prop::sample::select(vec!["2025-06-18", "2026-07-28", "1999-01-01"]))
            .prop_map(|(id, v)| initialize_line(&id, v)),
        3 => notification(),
        1 => client_response(),
        1 => request_line(),
        1 => random_bytes(),
    ]
}

/// Lines that neither ask nor cancel (for the ordering property).
fn noise_line() -> impl Strategy<Value = Vec<u8>> {
    let status = json!({"name": "status", "arguments": {}});
    prop_oneof![
        2 => Just(request("\"noise\"", "ping", None)),
        2 => Just(request("\"noise-s\"", "tools/call", Some(&status))),
        1 => Just(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec()),
        1 => client_response(),
        1 => random_bytes(),
    ]
}

// ----- the oracle ---------------------------------------------------------------------

/// The id text (as `answer_owed` keys it) of an `ask` line of the ordering property.
fn ask_id(line: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(line).ok()?;
    (value.pointer("/params/name")? == "ask").then(|| value["id"].to_string())
}

/// N of the double's `mock reply #N to: ...`.
fn turn_number(text: &str) -> Option<u64> {
    text.strip_prefix("mock reply #")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// Ids (as `answer_owed` keys them) that a cancellation in the input names: a request
/// under such an id may go unanswered (MCP: a cancelled request is not answered).
fn cancelled_ids(lines: &[Vec<u8>]) -> HashSet<String> {
    lines
        .iter()
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .filter(|v| v["method"] == "notifications/cancelled" && v.get("id").is_none())
        .filter_map(|v| v.pointer("/params/requestId").map(Value::to_string))
        .collect()
}

/// Serves `lines` and checks the MCP properties; returns the responses by id text.
fn verify_mcp(lines: &[Vec<u8>]) -> Result<BTreeMap<String, Value>, TestCaseError> {
    let cancellable = cancelled_ids(lines);
    let mut owed: BTreeMap<String, usize> = BTreeMap::new();
    for line in lines {
        if let Some(id) = answer_owed(line) {
            *owed.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    let sure: usize = owed
        .iter()
        .filter(|(id, _)| !cancellable.contains(*id))
        .map(|(_, n)| n)
        .sum();
    let served = serve_mcp(lines, sure).map_err(TestCaseError::fail)?;
    prop_assert!(
        served.open_after_answers,
        "the server exited while its stdin was open"
    );
    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    let mut responses = BTreeMap::new();
    for (number, line) in served.out.lines().enumerate() {
        let message: Value = serde_json::from_str(line)
            .map_err(|e| fail(format!("output line {number} is not JSON ({e}): {line}")))?;
        check_mcp_message(&message).map_err(|e| fail(format!("{e}: {line}")))?;
        if message.get("method").is_none() {
            let id = message["id"].to_string();
            *answered.entry(id.clone()).or_insert(0) += 1;
            responses.insert(id, message);
        }
    }
    for (id, times) in &answered {
        prop_assert!(
            owed.contains_key(id),
            "an answer under {} owed to nobody",
            id
        );
        prop_assert!(*times <= owed[id], "{} answers under {}", times, id);
    }
    for (id, times) in &owed {
        if !cancellable.contains(id) {
            let got = answered.get(id).copied().unwrap_or(0);
            prop_assert_eq!(got, *times, "answers under {}", id);
        }
    }
    prop_assert!(served.left.is_empty(), "processes left: {:?}", served.left);
    Ok(responses)
}

fn check_mcp_message(message: &Value) -> Result<(), String> {
    let object = message.as_object().ok_or("not an object")?;
    if object.get("jsonrpc") != Some(&Value::from("2.0")) {
        return Err("jsonrpc is not \"2.0\"".into());
    }
    if let Some(method) = object.get("method") {
        return match method.as_str() {
            Some(m) if SERVER_NOTIFICATIONS.contains(&m) && !object.contains_key("id") => Ok(()),
            _ => Err("unexpected message with a method".into()),
        };
    }
    check_message(message, &BTreeMap::new())
}

// ----- one session --------------------------------------------------------------------

struct Served {
    out: String,
    /// The server still ran once the sure answers were in (or `SETTLE` passed).
    open_after_answers: bool,
    left: Vec<u32>,
}

/// Serves `lines` through `mcp::run`, keeping stdin open until `sure` answers came, then
/// closes it and waits for the end.
fn serve_mcp(lines: &[Vec<u8>], sure: usize) -> Result<Served, String> {
    let dir = TempDir::new("fuzz-mcp");
    let config = case_config(&dir)?;
    let input = joined(lines);
    case_runtime()?.block_on(async move {
        let daemon = Daemon::start(config);
        let daemon_id = daemon.status().identity.daemon_id;
        let (mut stdin, stdin_rx) = tokio::io::duplex(1 << 20);
        let (stdout, stdout_rx) = tokio::io::duplex(64 * 1024);
        let (answers_tx, mut answers) = watch::channel(0usize);
        let collect = tokio::spawn(collect_lines(stdout_rx, answers_tx));
        let input_side = Input::new(BufReader::new(stdin_rx));
        let pending = std::future::pending();
        let run = claude_coded::mcp::run(input_side, stdout, OutputDrain::Settle, daemon, pending);
        let served = tokio::spawn(run);
        stdin.write_all(&input).await.map_err(|e| e.to_string())?;
        let _ = tokio::time::timeout(SETTLE, answers.wait_for(|n| *n >= sure)).await;
        let open_after_answers = !served.is_finished();
        drop(stdin);
        match tokio::time::timeout(CASE_LIMIT, served).await {
            Err(_) => {
                return Err(format!(
                    "mcp::run did not finish in {CASE_LIMIT:?} after EOF"
                ));
            }
            Ok(Err(err)) => return Err(format!("mcp::run panicked: {err}")),
            Ok(Ok(Err(err))) => return Err(format!("mcp::run failed: {err}")),
            Ok(Ok(Ok(()))) => {}
        }
        let out = tokio::time::timeout(CASE_LIMIT, collect)
            .await
            .map_err(|_| "stdout was not closed after run returned".to_string())?
            .map_err(|e| e.to_string())?;
        let left = proc_info::survivors_of_daemon(&daemon_id, Duration::from_secs(5));
        Ok(Served {
            out,
            open_after_answers,
            left,
        })
    })
}

/// Reads stdout to its end, counting responses as they come.
async fn collect_lines(stdout: tokio::io::DuplexStream, answers: watch::Sender<usize>) -> String {
    let mut lines = BufReader::new(stdout).lines();
    let mut out = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let response = serde_json::from_str::<Value>(&line)
            .is_ok_and(|m| m.get("method").is_none() && m.get("id").is_some());
        if response {
            answers.send_modify(|n| *n += 1);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}
