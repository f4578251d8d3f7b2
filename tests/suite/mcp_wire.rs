//! The MCP surface on the wire: raw JSON lines to and from the real binary, to pin what
//! no SDK hides: revision negotiation, `server/discover`, the 2026-07-28 lifecycle
//! without `initialize`, ordering of progress against the response, no response for a
//! cancelled request, and nothing but JSON on stdout.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use test_support::{Bridge, Options, error_code};

const HANDSHAKE_REVISIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
const ALL_REVISIONS: [&str; 5] = [
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

fn initialize_params(version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": {},
        "clientInfo": { "name": "wire-test", "version": "0" }
    })
}

/// The `_meta` a 2026-07-28 request carries instead of a handshake.
fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "wire-test", "version": "0" },
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// Starts a bridge and completes the handshake at `version`; returns the answer.
async fn initialized(version: &str) -> (Bridge, Value) {
    let mut bridge = Bridge::start();
    let answer = bridge.call("initialize", initialize_params(version)).await;
    bridge
        .send_raw(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    (bridge, answer)
}

fn progress_of<'a>(notes: &'a [Value], token: &str) -> Vec<&'a Value> {
    notes
        .iter()
        .filter(|n| {
            n["method"] == "notifications/progress" && n["params"]["progressToken"] == token
        })
        .collect()
}

#[tokio::test]
async fn initialize_echoes_each_handshake_revision() {
    for version in HANDSHAKE_REVISIONS {
        let (mut bridge, answer) = initialized(version).await;
        assert_eq!(answer["result"]["protocolVersion"], version, "{answer}");
        assert_eq!(bridge.close_and_wait().await, 0);
    }
}

#[tokio::test]
async fn initialize_counter_offers_for_unknown_or_handshakeless_versions() {
    // 2026-07-28 has no handshake (rmcp's own client offers it in `initialize`).
    for offered in ["2026-07-28", "2099-01-01", "2000-01-01"] {
        let (mut bridge, answer) = initialized(offered).await;
        assert_eq!(
            answer["result"]["protocolVersion"], "2025-11-25",
            "offered {offered}: {answer}"
        );
        // The session then works at the counter-offered revision.
        let tools = bridge.call("tools/list", json!({})).await;
        assert_eq!(tools["result"]["tools"].as_array().map(Vec::len), Some(6));
        assert_eq!(bridge.close_and_wait().await, 0);
    }
}

#[tokio::test]
async fn initialize_result_names_and_explains_the_server() {
    let (mut bridge, answer) = initialized("2025-06-18").await;
    let result = &answer["result"];
    let info = &result["serverInfo"];
    assert_eq!(info["name"], "claude-coded");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        info["title"].is_string() && info["description"].is_string(),
        "{info}"
    );
    assert!(
        result["instructions"]
            .as_str()
            .is_some_and(|i| i.contains("`ask`"))
    );
    assert!(result["capabilities"]["tools"].is_object());
    assert!(result["capabilities"]["logging"].is_object());
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn server_discover_is_answered_at_once_and_initialize_still_works() {
    let mut bridge = Bridge::start();
    let started = Instant::now();
    let discover = bridge
        .call("server/discover", json!({ "_meta": modern_meta() }))
        .await;
    // At once, not after the 20 s read deadline a client without `_meta` support would
    // hit; the margin is wide so a loaded machine does not matter.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered in {:?}",
        started.elapsed()
    );
    let result = &discover["result"];
    assert_eq!(
        result["supportedVersions"],
        json!(ALL_REVISIONS),
        "{discover}"
    );
    assert!(result["capabilities"]["tools"].is_object());
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "claude-coded"
    );

    // A probe without the required `_meta` is refused at once, not left waiting.
    let bare = bridge.call("server/discover", json!({})).await;
    assert!(error_code(&bare).is_some(), "{bare}");

    // An auto-mode client that prefers the handshake falls back on the same connection.
    let answer = bridge
        .call("initialize", initialize_params("2025-11-25"))
        .await;
    assert_eq!(answer["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn a_2026_07_28_session_needs_no_initialize() {
    let mut bridge = Bridge::start();
    // The first message is picked as MCP by its `_meta` protocol version alone.
    let tools = bridge
        .call("tools/list", json!({ "_meta": modern_meta() }))
        .await;
    assert_eq!(
        tools["result"]["tools"].as_array().map(Vec::len),
        Some(6),
        "{tools}"
    );

    let mut meta = modern_meta();
    meta["progressToken"] = json!("modern-1");
    let params = json!({ "name": "ask", "arguments": { "prompt": "MULTI" }, "_meta": meta });
    let id = bridge.request("tools/call", params).await;
    let (response, notes) = bridge.response_for(&id).await;
    assert_eq!(
        response["result"]["structuredContent"]["result"],
        "multi text 1multi text 2"
    );
    assert_eq!(
        response["result"]["content"][0]["text"],
        "multi text 1multi text 2"
    );
    assert!(!progress_of(&notes, "modern-1").is_empty());
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn progress_precedes_the_response_and_never_follows_it() {
    let (mut bridge, _) = initialized("2025-11-25").await;
    let params = json!({ "name": "ask", "arguments": { "prompt": "RUN_TOOL ls" }, "_meta": { "progressToken": "t1" } });
    let id = bridge.request("tools/call", params).await;
    let (response, notes) = bridge.response_for(&id).await;
    assert_eq!(response["result"]["isError"], false, "{response}");
    let progress = progress_of(&notes, "t1");
    let values: Vec<f64> = progress
        .iter()
        .filter_map(|n| n["params"]["progress"].as_f64())
        .collect();
    assert!(
        values.len() >= 4 && values.windows(2).all(|w| w[0] < w[1]),
        "{values:?}"
    );
    let last = progress.last().map(|n| n["params"]["message"].clone());
    assert_eq!(last, Some(json!("result: success")));

    // Anything written after the response arrives before the answer to a later ping.
    let ping = bridge.request("ping", json!({})).await;
    let (pong, after) = bridge.response_for(&ping).await;
    assert_eq!(pong["result"], json!({}));
    assert!(
        progress_of(&after, "t1").is_empty(),
        "progress after the response: {after:?}"
    );
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn a_cancelled_ask_gets_no_response_and_the_next_one_works() {
    let (mut bridge, _) = initialized("2025-11-25").await;
    let params = json!({ "name": "ask", "arguments": { "prompt": "SLOW 100 100" }, "_meta": { "progressToken": "slow" } });
    let cancelled = bridge.request("tools/call", params).await;
    // Wait for the turn to be streaming, then cancel it.
    loop {
        let message = bridge.next_message().await;
        if message["params"]["message"] == "assistant: slow chunk 1" {
            break;
        }
    }
    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                         "params": { "requestId": cancelled, "reason": "test" } });
    bridge.send_raw(cancel.to_string().as_bytes()).await;

    let params = json!({ "name": "ask", "arguments": { "prompt": "after" } });
    let next = bridge.request("tools/call", params).await;
    let (response, seen) = bridge.response_for(&next).await;
    assert!(
        seen.iter().all(|m| m.get("id") != Some(&cancelled)),
        "a response to the cancelled ask: {seen:?}"
    );
    assert_eq!(
        response["result"]["content"][0]["text"],
        "mock reply #2 to: after"
    );
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn ping_is_answered_before_and_after_initialize() {
    let mut bridge = Bridge::start_with(Options::default().args(&["--surface", "mcp"]));
    // `--surface mcp` forces MCP even though `ping` alone would pick the plain surface.
    let early = bridge.call("ping", json!({})).await;
    assert_eq!(early["result"], json!({}), "{early}");
    bridge
        .call("initialize", initialize_params("2025-03-26"))
        .await;
    let late = bridge.call("ping", json!({})).await;
    assert_eq!(late["result"], json!({}));
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn stdout_carries_only_json_through_a_whole_session() {
    let (mut bridge, _) = initialized("2025-11-25").await;
    bridge
        .call("logging/setLevel", json!({ "level": "debug" }))
        .await;
    for prompt in ["GARBAGE", "STDERR 3", "ERR400", "MULTI"] {
        let params = json!({ "name": "ask", "arguments": { "prompt": prompt }, "_meta": { "progressToken": prompt } });
        bridge.call("tools/call", params).await;
    }
    bridge.stdin = None;
    // Every remaining line up to EOF must parse too (`next_message` panics on anything else).
    while let Ok(Some(line)) = bridge.stdout.next_line().await {
        serde_json::from_str::<Value>(&line)
            .unwrap_or_else(|e| panic!("non-JSON on stdout ({e}): {line}"));
    }
    assert_eq!(bridge.wait_exit().await, 0);
}

#[tokio::test]
async fn sigterm_ends_a_running_ask_with_a_stopping_result_then_exits() {
    let (mut bridge, _) = initialized("2025-11-25").await;
    let params = json!({ "name": "ask", "arguments": { "prompt": "SLOW 100 100" }, "_meta": { "progressToken": "s" } });
    let id = bridge.request("tools/call", params).await;
    loop {
        let message = bridge.next_message().await;
        if message["params"]["message"] == "assistant: slow chunk 1" {
            break;
        }
    }
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
    assert_eq!(unsafe { libc::kill(bridge.pid(), libc::SIGTERM) }, 0);
    let (response, _) = bridge.response_for(&id).await;
    assert_eq!(response["result"]["isError"], true, "{response}");
    assert_eq!(
        response["result"]["_meta"]["claude-coded/error"]["code"], -32004,
        "{response}"
    );
    assert_eq!(bridge.wait_exit().await, 0);
}

/// A client that reads late must still find the last progress of an `ask` in an earlier
/// read than the response: SDKs that handle notifications a tick after responses (the
/// TypeScript one) otherwise drop it. Checked on a pipe and on a Unix socket (what Node
/// gives its children), reading only every 20 ms so a fixed pause of 5 ms could not be enough.
#[test]
fn ask_response_waits_until_the_client_has_read_the_last_progress() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    for transport in ["pipe", "socket"] {
        let dir = test_support::TempDir::new("drain");
        let mut command = test_support::bridge_command(dir.path(), &Options::default()).into_std();
        command
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        let socket = (transport == "socket").then(|| UnixStream::pair().expect("socketpair"));
        let mut our_end = None;
        match socket {
            Some((ours, theirs)) => {
                command.stdout(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                    theirs,
                )));
                our_end = Some(ours);
            }
            None => {
                command.stdout(std::process::Stdio::piped());
            }
        }
        let mut child = command.spawn().expect("spawn claude-coded");
        let mut reader: Box<dyn Read> = match (our_end, child.stdout.take()) {
            (Some(socket), _) => Box::new(socket),
            (None, Some(pipe)) => Box::new(pipe),
            (None, None) => panic!("no stdout"),
        };
        // Every read below blocks; a hung bridge is killed so the test fails instead.
        let pid = child.id() as i32;
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            let waited = finished.recv_timeout(test_support::READ_TIMEOUT);
            if waited == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        let mut stdin = child.stdin.take().expect("stdin");
        let ask = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{
            "name":"ask","arguments":{"prompt":"RUN_TOOL ls"},"_meta":{"progressToken":"late"}}});
        let lines = [
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":initialize_params("2025-11-25")}),
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            ask,
        ];
        for line in lines {
            writeln!(stdin, "{line}").expect("write");
        }

        // Which read completed each message.
        let mut messages: Vec<(usize, Value)> = Vec::new();
        let mut pending = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        for read_no in 0.. {
            // A reader slower than the writer, yet 25 times inside the bridge's 500 ms
            // wait for it, so a loaded machine cannot make it look like a non-reader.
            std::thread::sleep(Duration::from_millis(20));
            let n = reader.read(&mut buf).expect("read stdout");
            assert!(
                n > 0,
                "{transport}: stdout closed before the ask's response"
            );
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                messages.push((read_no, serde_json::from_slice(&line).expect("JSON line")));
            }
            if messages.iter().any(|(_, m)| m["id"] == 2) {
                break;
            }
        }
        let read_of = |pred: &dyn Fn(&Value) -> bool| {
            messages
                .iter()
                .filter(|(_, m)| pred(m))
                .map(|(r, _)| *r)
                .last()
        };
        let last_progress =
            read_of(&|m| m["method"] == "notifications/progress").expect("progress notifications");
        let response = read_of(&|m| m["id"] == 2).expect("response");
        let last_message = messages
            .iter()
            .rev()
            .find(|(_, m)| m["method"] == "notifications/progress")
            .map(|(_, m)| m["params"]["message"].clone());
        assert_eq!(last_message, Some(json!("result: success")), "{transport}");
        assert!(
            last_progress < response,
            "{transport}: the last progress came in read {last_progress}, the response in read {response}"
        );
        drop(stdin);
        let exit = child.wait().expect("wait");
        drop(done);
        watchdog.join().expect("watchdog");
        assert!(exit.success(), "{transport}: {exit}");
    }
}
