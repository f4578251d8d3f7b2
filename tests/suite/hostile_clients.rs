//! Hostile and careless clients on both surfaces (issue 9), with raw lines: stray
//! messages before the MCP session, malformed lines and wrong params after it, odd and
//! duplicate ids, pipelined asks, a second `initialize`, stdin EOF with work in flight,
//! and a client that stops reading its stdout. Every request gets exactly one answer
//! under its own id (unless the client cancelled it or is gone), and the server never
//! exits while stdin is open.
//!
//! `CLAUDE_CODED_TEST_BRIDGE=<older build>` runs these against another binary.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::{Bridge, Options, error_code, proc_info};
use tokio::io::AsyncWriteExt;

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"hostile","version":"0"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// A bridge on `surface` ("mcp" after the handshake, or "plain").
async fn session(surface: &str, options: Options) -> Bridge {
    let mut bridge = Bridge::start_with(options);
    if surface == "mcp" {
        bridge.send_raw(INITIALIZE.as_bytes()).await;
        let answer = bridge.next_message().await;
        assert_eq!(
            answer["result"]["protocolVersion"], "2025-11-25",
            "{answer}"
        );
        bridge.send_raw(INITIALIZED.as_bytes()).await;
    }
    bridge
}

/// Sends `line` and returns the next line written, which must be its answer.
async fn answer_to(bridge: &mut Bridge, line: &[u8]) -> Value {
    bridge.send_raw(line).await;
    bridge.next_message().await
}

/// Asserts the bridge still answers: a `ping` right after whatever came before.
async fn still_serving(bridge: &mut Bridge, id: &str) {
    let ping = format!(r#"{{"jsonrpc":"2.0","id":"{id}","method":"ping"}}"#);
    let answer = answer_to(bridge, ping.as_bytes()).await;
    assert_eq!(answer["id"], id, "not the ping's answer: {answer}");
    assert_eq!(answer["result"], json!({}), "{answer}");
}

fn tools_call(id: &str, tool: &str, arguments: Value) -> String {
    let call = json!({"jsonrpc": "2.0", "method": "tools/call",
                      "params": {"name": tool, "arguments": arguments}});
    // The id goes in as written (it may be a number no `Value` holds exactly).
    let mut line = call.to_string();
    line.insert_str(1, &format!(r#""id":{id},"#));
    line
}

#[tokio::test]
async fn stray_messages_before_the_mcp_session_are_ignored_never_fatal() {
    // `initialized` as the very first line, with the surface forced.
    let mut bridge = Bridge::start_with(Options::default().args(&["--surface", "mcp"]));
    bridge.send_raw(INITIALIZED.as_bytes()).await;
    let answer = answer_to(&mut bridge, INITIALIZE.as_bytes()).await;
    assert_eq!(answer["id"], "init", "{answer}");
    assert!(answer["result"]["protocolVersion"].is_string(), "{answer}");
    still_serving(&mut bridge, "after-forced").await;
    assert_eq!(bridge.close_and_wait().await, 0);

    // A probe without `_meta`, then every kind of stray message, then the handshake.
    let mut bridge = Bridge::start();
    let bare = answer_to(
        &mut bridge,
        br#"{"jsonrpc":"2.0","id":"d","method":"server/discover"}"#,
    )
    .await;
    assert_eq!(error_code(&bare), Some(-32602), "{bare}");
    for stray in [
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"d"}}"#,
        INITIALIZED,
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}"#,
        r#"{"jsonrpc":"2.0","id":"d","result":{}}"#,
        r#"{"jsonrpc":"2.0","id":"e","error":{"code":-1,"message":"x"}}"#,
    ] {
        bridge.send_raw(stray.as_bytes()).await;
    }
    let answer = answer_to(&mut bridge, INITIALIZE.as_bytes()).await;
    assert_eq!(
        answer["id"], "init",
        "a stray message was answered: {answer}"
    );
    assert_eq!(answer["result"]["protocolVersion"], "2025-11-25");
    still_serving(&mut bridge, "after-strays").await;
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn malformed_lines_after_initialize_are_answered_on_both_surfaces() {
    let mut deep = b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\",\"params\":{\"x\":".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 50_000));
    deep.extend(std::iter::repeat_n(b']', 50_000));
    deep.extend_from_slice(b"}}");
    let cases: Vec<(&str, Vec<u8>, i64)> = vec![
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\",\"params\":{\"x\":\"\xff\"}}"
                .to_vec(),
            -32700,
        ),
        (
            "a NUL byte",
            b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\",\"params\":{\"x\":\"a\0b\"}}"
                .to_vec(),
            -32700,
        ),
        ("nesting deeper than the parser allows", deep, -32700),
        ("not JSON at all", b"{\"jsonrpc\":".to_vec(), -32700),
        (
            "a batch",
            b"[{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}]".to_vec(),
            -32600,
        ),
        (
            "a line over --max-request-bytes",
            format!(
                r#"{{"jsonrpc":"2.0","id":5,"method":"ping","params":{{"x":"{}"}}}}"#,
                "y".repeat(300_000)
            )
            .into_bytes(),
            -32005,
        ),
    ];
    for surface in ["mcp", "plain"] {
        let options = Options::default().args(&["--max-request-bytes", "200000"]);
        let mut bridge = session(surface, options).await;
        for (what, line, code) in &cases {
            let answer = answer_to(&mut bridge, line).await;
            assert_eq!(
                error_code(&answer),
                Some(*code),
                "{surface}, {what}: {answer}"
            );
            assert_eq!(answer["id"], Value::Null, "{surface}, {what}: {answer}");
            still_serving(&mut bridge, &format!("after {what}")).await;
        }
        assert_eq!(bridge.close_and_wait().await, 0);
    }
}

#[tokio::test]
async fn known_methods_with_bad_params_get_invalid_params_under_their_own_id() {
    let mut bridge = session("mcp", Options::default()).await;
    let cases = [
        (tools_call("7", "status", json!(["x"])), "tools/call"),
        (
            r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{}}"#.to_string(),
            "name",
        ),
        (
            r#"{"jsonrpc":"2.0","id":9,"method":"logging/setLevel","params":{"level":"bogus"}}"#
                .to_string(),
            "bogus",
        ),
        (
            r#"{"jsonrpc":"2.0","id":5,"method":"ping","params":[]}"#.to_string(),
            "params",
        ),
    ];
    for (line, mentions) in &cases {
        let sent: Value = serde_json::from_str(line).unwrap();
        let answer = answer_to(&mut bridge, line.as_bytes()).await;
        assert_eq!(answer["id"], sent["id"], "{line}: {answer}");
        assert_eq!(error_code(&answer), Some(-32602), "{line}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(mentions), "{line}: {answer}");
    }
    // An unknown method: rmcp's -32601 said only the name (nothing at all for "").
    for method in ["", "tools/nope"] {
        let line = format!(r#"{{"jsonrpc":"2.0","id":11,"method":"{method}","params":{{}}}}"#);
        let answer = answer_to(&mut bridge, line.as_bytes()).await;
        assert_eq!(error_code(&answer), Some(-32601), "{answer}");
        assert_eq!(
            answer["error"]["message"],
            format!("method not found: {method}"),
            "{answer}"
        );
        assert_eq!(answer["error"]["data"]["method"], method, "{answer}");
    }
    still_serving(&mut bridge, "after bad params").await;
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn any_number_or_string_id_comes_back_exactly_and_a_bad_id_gets_a_null_one() {
    let mut bridge = session("mcp", Options::default()).await;
    for id in [
        "9223372036854775808",
        "18446744073709551617",
        "1.5",
        "-3",
        "\"7\"",
        "7",
    ] {
        let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        bridge.send_raw(line.as_bytes()).await;
        let answer = bridge.next_line().await;
        assert_eq!(
            answer,
            format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#),
            "id {id}"
        );
    }
    for id in ["true", "{}", "[1]", "null"] {
        let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        let answer = answer_to(&mut bridge, line.as_bytes()).await;
        assert_eq!(error_code(&answer), Some(-32600), "id {id}: {answer}");
        assert_eq!(answer["id"], Value::Null, "id {id}: {answer}");
    }
    still_serving(&mut bridge, "after odd ids").await;
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn notifications_with_bad_params_are_never_answered_on_either_surface() {
    for surface in ["mcp", "plain"] {
        let mut bridge = session(surface, Options::default()).await;
        for line in [
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":[]}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":{}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":"x"}"#,
            r#"{"jsonrpc":"2.0","method":"ask","params":[1]}"#,
            r#"{"jsonrpc":"2.0","method":"status","params":7}"#,
        ] {
            bridge.send_raw(line.as_bytes()).await;
        }
        // The next line written is the ping's answer: nothing answered the notifications.
        still_serving(&mut bridge, surface).await;
        assert_eq!(bridge.close_and_wait().await, 0);
    }
}

#[tokio::test]
async fn a_duplicate_id_in_flight_is_refused_and_the_first_request_still_answers() {
    let mut bridge = session("mcp", Options::default()).await;
    let slow = json!({"prompt": "SLOW ms=200 chunks=3"});
    bridge
        .send_raw(tools_call("9", "ask", slow.clone()).as_bytes())
        .await;
    bridge
        .send_raw(br#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#)
        .await;
    bridge
        .send_raw(tools_call("9", "status", json!({})).as_bytes())
        .await;
    bridge
        .send_raw(tools_call("9", "ask", json!({"prompt": "second"})).as_bytes())
        .await;
    let mut refusals = 0;
    let answer = loop {
        let message = bridge.next_message().await;
        assert_eq!(message["id"], 9, "{message}");
        if error_code(&message) == Some(-32600) {
            refusals += 1;
            continue;
        }
        break message;
    };
    assert_eq!(refusals, 3);
    let result = &answer["result"]["structuredContent"];
    assert_eq!(result["ok"], true, "the first ask was disturbed: {answer}");
    assert_eq!(
        result["result"], "slow chunk 1slow chunk 2slow chunk 3",
        "{answer}"
    );
    // Answered, the id is free again.
    let again = answer_to(&mut bridge, tools_call("9", "status", json!({})).as_bytes()).await;
    assert!(again["result"]["structuredContent"].is_object(), "{again}");
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn pipelined_asks_queue_in_arrival_order_on_both_surfaces() {
    for surface in ["mcp", "plain"] {
        let mut bridge = session(surface, Options::default()).await;
        for round in 0..3 {
            let mut burst = Vec::new();
            for i in 0..12 {
                let prompt = json!({"prompt": format!("order {i}")});
                let line = match surface {
                    "mcp" => tools_call(&i.to_string(), "ask", prompt),
                    _ => json!({"jsonrpc": "2.0", "id": i, "method": "ask", "params": prompt})
                        .to_string(),
                };
                burst.extend_from_slice(line.as_bytes());
                burst.push(b'\n');
            }
            // One write: the asks arrive together.
            let stdin = bridge.stdin.as_mut().expect("stdin");
            stdin.write_all(&burst).await.unwrap();
            stdin.flush().await.unwrap();
            let mut turn_of = HashMap::new();
            while turn_of.len() < 12 {
                let message = bridge.next_message().await;
                let Some(id) = message["id"].as_u64() else {
                    continue;
                };
                let text = match surface {
                    "mcp" => &message["result"]["structuredContent"]["result"],
                    _ => &message["result"]["result"],
                };
                // "mock reply #N to: order i": N counts the child's turns.
                let text = text.as_str().unwrap_or_else(|| panic!("{message}"));
                let turn: u64 = text["mock reply #".len()..]
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{text}"));
                turn_of.insert(id, turn);
            }
            let order: Vec<u64> = (0..12).map(|i| turn_of[&i]).collect();
            assert!(
                order.windows(2).all(|w| w[1] == w[0] + 1),
                "{surface}, round {round}: turns {order:?}"
            );
        }
        assert_eq!(bridge.close_and_wait().await, 0);
    }
}

#[tokio::test]
async fn a_second_initialize_is_refused_and_the_session_keeps_its_revision() {
    let mut bridge = session("mcp", Options::default()).await;
    let again = answer_to(
        &mut bridge,
        br#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"again","version":"0"}}}"#,
    )
    .await;
    assert_eq!(error_code(&again), Some(-32600), "{again}");
    assert!(
        again["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("2025-11-25")),
        "{again}"
    );
    still_serving(&mut bridge, "ping after re-initialize").await;
    let status = answer_to(&mut bridge, tools_call("3", "status", json!({})).as_bytes()).await;
    assert!(
        status["result"]["structuredContent"].is_object(),
        "{status}"
    );
    assert!(
        status["result"].get("resultType").is_none(),
        "a 2026-07-28 result in a 2025-11-25 session: {status}"
    );
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn at_stdin_eof_every_request_already_received_is_answered() {
    for surface in ["mcp", "plain"] {
        let mut bridge = session(surface, Options::default()).await;
        // Longer than the 5 s rmcp gives answers in flight at EOF.
        let slow = json!({"prompt": "SLOW ms=500 chunks=13"});
        let queued = json!({"prompt": "queued behind it"});
        let lines = match surface {
            "mcp" => vec![
                tools_call("1", "ask", slow),
                tools_call("2", "ask", queued),
                tools_call("3", "status", json!({})),
            ],
            _ => vec![
                json!({"jsonrpc":"2.0","id":1,"method":"ask","params":slow}).to_string(),
                json!({"jsonrpc":"2.0","id":2,"method":"ask","params":queued}).to_string(),
                json!({"jsonrpc":"2.0","id":3,"method":"status"}).to_string(),
            ],
        };
        for line in &lines {
            bridge.send_raw(line.as_bytes()).await;
        }
        bridge.stdin = None;
        let mut answers = HashMap::new();
        while answers.len() < 3 {
            let message = tokio::time::timeout(Duration::from_secs(30), bridge.stdout.next_line())
                .await
                .expect("an answer in time")
                .expect("read")
                .unwrap_or_else(|| panic!("{surface}: stdout closed with answers {answers:?}"));
            let message: Value = serde_json::from_str(&message).unwrap();
            if let Some(id) = message["id"].as_u64() {
                assert!(answers.insert(id, message).is_none(), "two answers to {id}");
            }
        }
        for id in [1, 2] {
            let ok = match surface {
                "mcp" => &answers[&id]["result"]["structuredContent"]["ok"],
                _ => &answers[&id]["result"]["ok"],
            };
            assert_eq!(ok, true, "{surface}: ask {id}: {}", answers[&id]);
        }
        assert_eq!(bridge.wait_exit().await, 0);
    }
}

/// Writes `status` requests (ids from 1) without reading stdout, until the bridge has
/// not taken one for 500 ms or `cap` were written; returns how many it took.
async fn flood_without_reading(bridge: &mut Bridge, surface: &str, cap: u64) -> u64 {
    let stdin = bridge.stdin.as_mut().expect("stdin");
    let mut written = 0;
    while written < cap {
        let id = written + 1;
        let line = match surface {
            "mcp" => format!("{}\n", tools_call(&id.to_string(), "status", json!({}))),
            _ => format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"status"}}"#) + "\n",
        };
        // Under PIPE_BUF, so the pipe takes the whole line or none of it.
        match tokio::time::timeout(Duration::from_millis(500), stdin.write(line.as_bytes())).await {
            Ok(Ok(n)) => assert_eq!(n, line.len()),
            Ok(Err(err)) => panic!("writing stdin: {err}"),
            Err(_) => break,
        }
        written += 1;
    }
    written
}

#[tokio::test]
async fn a_client_that_stops_reading_is_not_read_from_and_memory_stays_bounded() {
    const CAP: u64 = 50_000;
    for surface in ["mcp", "plain"] {
        let mut bridge = session(surface, Options::default()).await;
        still_serving(&mut bridge, "warm").await;
        let taken = flood_without_reading(&mut bridge, surface, CAP).await;
        let peak = proc_info::peak_rss_kib(bridge.pid() as u32).expect("VmHWM");
        eprintln!("{surface}: the bridge took {taken} requests, peak RSS {peak} KiB");
        assert!(
            taken < CAP / 5,
            "{surface}: kept reading ({taken} requests)"
        );
        assert!(peak < 64 * 1024, "{surface}: peak RSS {peak} KiB");
        // Reading again: every request taken is answered, once (MCP serves them
        // concurrently, so not necessarily in order).
        let mut answered = std::collections::HashSet::new();
        while (answered.len() as u64) < taken {
            let message = bridge.next_message().await;
            let id = message["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{message}"));
            assert!((1..=taken).contains(&id), "{surface}: {message}");
            assert!(answered.insert(id), "{surface}: {id} answered twice");
        }
        still_serving(&mut bridge, "after the flood").await;
        assert_eq!(bridge.close_and_wait().await, 0);
    }
}

#[tokio::test]
async fn stdin_eof_with_stdout_never_read_exits_within_the_documented_time() {
    for surface in ["mcp", "plain"] {
        let mut bridge = session(surface, Options::default()).await;
        still_serving(&mut bridge, "warm").await;
        let state = bridge.state_dir().join("daemon-state.json");
        let child = wait_for_child_pid(&state).await;
        let taken = flood_without_reading(&mut bridge, surface, 50_000).await;
        assert!(taken < 50_000, "{surface}: the flood never blocked");
        let closed = Instant::now();
        bridge.stdin = None;
        // Documented: 5 s without a read, then the stop (the double exits at once on stdin
        // EOF). Before, it never exited while stdout stayed blocked; 30 s is a wide margin.
        let exit = tokio::time::timeout(Duration::from_secs(30), bridge.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{surface}: still running 30 s after stdin EOF"))
            .expect("wait");
        eprintln!(
            "{surface}: exited {:?} after stdin EOF with stdout blocked",
            closed.elapsed()
        );
        assert_eq!(exit.code(), Some(0), "{surface}");
        assert!(
            test_support::wait_gone(child, Duration::from_secs(10)).await,
            "{surface}: the child {child} outlived the bridge"
        );
    }
}

/// The guard's pid, once the persisted state shows a ready child.
async fn wait_for_child_pid(state: &std::path::Path) -> i32 {
    let deadline = Instant::now() + test_support::READ_TIMEOUT;
    loop {
        let pid = std::fs::read_to_string(state)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|s| s["child"]["pid"].as_i64());
        if let Some(pid) = pid {
            return pid as i32;
        }
        assert!(Instant::now() < deadline, "no child pid in {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn raw_events_carry_the_client_id_exactly_as_written() {
    let mut bridge = Bridge::start();
    let opt_in = INITIALIZE.replace(
        r#""capabilities":{}"#,
        r#""capabilities":{"experimental":{"claude-coded/events":{}}}"#,
    );
    let answer = answer_to(&mut bridge, opt_in.as_bytes()).await;
    assert!(answer["result"].is_object(), "{answer}");
    bridge.send_raw(INITIALIZED.as_bytes()).await;
    for id in ["18446744073709551617", r#""ask \"one\"""#] {
        let ask = tools_call(id, "ask", json!({"prompt": "hello"}));
        bridge.send_raw(ask.as_bytes()).await;
        let mut events = 0;
        loop {
            let line = bridge.next_line().await;
            if line.contains(r#""method":"notifications/claude-coded/event""#) {
                assert!(
                    line.contains(&format!(r#""requestId":{id},"#)),
                    "not the client's id {id}: {line}"
                );
                events += 1;
                continue;
            }
            assert!(
                line.starts_with(&format!(r#"{{"jsonrpc":"2.0","id":{id},"result""#)),
                "{line}"
            );
            break;
        }
        assert!(events >= 3, "{events} raw events for {id}");
    }
    assert_eq!(bridge.close_and_wait().await, 0);
}

#[tokio::test]
async fn a_secret_in_a_prompt_shows_nowhere_but_in_the_turn_itself() {
    const SECRET: &str = "sk-ant-test-0123456789abcdef";
    for surface in ["mcp", "plain"] {
        let logs = test_support::TempDir::new("secret-logs");
        let stderr = logs.path().join("stderr.log");
        let options = Options {
            env: vec![
                ("ANTHROPIC_API_KEY".into(), SECRET.into()),
                // Everything, rmcp's own debug lines (whole requests) included.
                ("RUST_LOG".into(), "debug".into()),
            ],
            stderr_file: Some(stderr.clone()),
            ..Options::default()
        };
        let mut bridge = session(surface, options).await;
        let running = format!("SLOW ms=300 chunks=4 the key is {SECRET} ok");
        let queued = format!("{SECRET} comes first here");
        for (id, prompt) in [(1, &running), (2, &queued)] {
            let params = json!({"prompt": prompt});
            let line = match surface {
                "mcp" => tools_call(&id.to_string(), "ask", params),
                _ => json!({"jsonrpc":"2.0","id":id,"method":"ask","params":params}).to_string(),
            };
            bridge.send_raw(line.as_bytes()).await;
        }
        // While the first turn runs and the second waits: status and the state file.
        let state_file = bridge.state_dir().join("daemon-state.json");
        let deadline = Instant::now() + test_support::READ_TIMEOUT;
        let state = loop {
            let state = std::fs::read_to_string(&state_file).unwrap_or_default();
            let parsed: Value = serde_json::from_str(&state).unwrap_or_default();
            if parsed["queue"]["length"] == 1 && parsed["turn"].is_object() {
                break state;
            }
            assert!(
                Instant::now() < deadline,
                "{surface}: no waiting ask in {state}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(
            !state.contains(SECRET),
            "{surface}: daemon-state.json: {state}"
        );
        assert!(state.contains("[REDACTED]"), "{surface}: {state}");
        let status = match surface {
            "mcp" => tools_call("3", "status", json!({"full": true})),
            _ => r#"{"jsonrpc":"2.0","id":3,"method":"status"}"#.to_string(),
        };
        bridge.send_raw(status.as_bytes()).await;
        let mut answered = 0;
        while answered < 3 {
            let line = bridge.next_line().await;
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == 3 {
                assert!(!line.contains(SECRET), "{surface}: status: {line}");
                assert!(line.contains("[REDACTED]"), "{surface}: status: {line}");
            }
            if message.get("id").is_some() {
                answered += 1;
            }
        }
        assert_eq!(bridge.close_and_wait().await, 0);
        for file in [stderr, bridge.state_dir().join("events.jsonl")] {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(!text.is_empty(), "{file:?} is empty");
            assert!(
                !text.contains(SECRET),
                "{surface}: {file:?} holds the secret"
            );
        }
    }
}

#[tokio::test]
async fn a_state_dir_that_is_a_symlink_is_refused_with_a_clear_error() {
    let elsewhere = test_support::TempDir::new("link-target");
    std::fs::set_permissions(
        elsewhere.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let dir = test_support::TempDir::new("link");
    let link = dir.path().join("state");
    std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
    let mut bridge = Bridge::start_with(Options::default().dir(dir));
    let status = bridge.status().await;
    let error = status["daemon"]["stateError"].as_str().unwrap_or_default();
    assert!(error.contains("symbolic link"), "{status}");
    assert_eq!(bridge.close_and_wait().await, 0);
    let mode = std::fs::metadata(elsewhere.path()).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o755,
        "the link's target was chmodded"
    );
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}
