//! Hostile and unusual input on the plain surface, beyond `plain_protocol.rs`: a 100 MiB
//! line, deep nesting, wrong types for every parameter, extreme timeouts and ids, client
//! responses aimed at a request in flight, a burst of 10,000 requests, and a client that
//! stops reading while an ask streams. Every case gets its sane answer (or none), the
//! bridge keeps serving, and its memory stays bounded (VmHWM, a bound and not a timing).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use test_support::{Bridge, READ_TIMEOUT, error_code, proc_info};
use tokio::io::AsyncWriteExt;

/// Peak RSS the bridge may reach in these tests: far below the 100 MiB it is fed, far
/// above its own footprint (about 10 MiB).
const RSS_BOUND_KIB: u64 = 64 * 1024;

fn peak_rss_kib(bridge: &Bridge) -> u64 {
    proc_info::peak_rss_kib(bridge.pid() as u32).expect("VmHWM of the bridge")
}

/// Sends a raw line and returns the next message, which must be its answer.
async fn answer_to(bridge: &mut Bridge, line: &[u8]) -> Value {
    bridge.send_raw(line).await;
    bridge.next_message().await
}

/// The next stdout line as text (to see ids exactly as written).
async fn next_raw_line(bridge: &mut Bridge) -> String {
    tokio::time::timeout(READ_TIMEOUT, bridge.stdout.next_line())
        .await
        .expect("timed out waiting for a line")
        .expect("read stdout")
        .expect("stdout closed")
}

#[tokio::test]
async fn a_100_mib_line_is_refused_without_holding_it_in_memory() {
    let mut bridge = Bridge::start();
    assert_eq!(bridge.call("ping", json!({})).await["result"], json!({}));
    // A well-formed request whose prompt makes the line 100 MiB: over the 16 MiB default.
    let head = br#"{"jsonrpc":"2.0","id":1,"method":"ask","params":{"prompt":""#;
    let tail = br#""}}"#;
    let total = 100 << 20;
    let stdin = bridge.stdin.as_mut().expect("stdin");
    stdin.write_all(head).await.unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut written = head.len() + tail.len();
    while written < total {
        let n = chunk.len().min(total - written);
        stdin.write_all(&chunk[..n]).await.unwrap();
        written += n;
    }
    stdin.write_all(tail).await.unwrap();
    stdin.write_all(b"\n").await.unwrap();
    stdin.flush().await.unwrap();

    let answer = bridge.next_message().await;
    assert_eq!(error_code(&answer), Some(-32005), "{answer}");
    assert_eq!(answer["id"], Value::Null);
    assert_eq!(answer["error"]["data"]["length"], total);
    assert_eq!(answer["error"]["data"]["limit"], 16 << 20);
    // Still serving, and nothing of the line reached the child.
    assert_eq!(bridge.ask_ok("after the big line").await["ok"], true);
    assert_eq!(bridge.status().await["totals"]["asks"], 1);
    let peak = peak_rss_kib(&bridge);
    assert!(peak < RSS_BOUND_KIB, "peak RSS {peak} KiB");
}

#[tokio::test]
async fn a_100_mib_first_line_is_refused_too() {
    // The first line goes through surface detection, which frames it on its own.
    let mut bridge = Bridge::start();
    let line = vec![b'{'; 100 << 20];
    bridge.send_raw(&line).await;
    let answer = bridge.next_message().await;
    assert_eq!(error_code(&answer), Some(-32005), "{answer}");
    assert_eq!(answer["error"]["data"]["length"], 100 << 20);
    assert_eq!(bridge.call("ping", json!({})).await["result"], json!({}));
    let peak = peak_rss_kib(&bridge);
    assert!(peak < RSS_BOUND_KIB, "peak RSS {peak} KiB");
}

#[tokio::test]
async fn deep_nesting_is_a_parse_error_not_a_crash() {
    let mut bridge = Bridge::start();
    let deep_params = format!(
        r#"{{"jsonrpc":"2.0","id":"deep","method":"status","params":{{"a":{}}}}}"#,
        "[".repeat(100_000)
    );
    let lines = [
        "[".repeat(100_000),
        "{\"a\":".repeat(100_000),
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        deep_params,
    ];
    for line in &lines {
        let answer = answer_to(&mut bridge, line.as_bytes()).await;
        assert_eq!(error_code(&answer), Some(-32700), "{answer}");
        assert_eq!(answer["id"], Value::Null);
    }
    // Nesting within serde_json's limit (128) parses, and the method judges the params.
    let nested = format!(
        r#"{{"jsonrpc":"2.0","id":"ok","method":"status","params":{{"a":{}{}}}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let answer = answer_to(&mut bridge, nested.as_bytes()).await;
    assert_eq!(error_code(&answer), Some(-32602), "{answer}");
    assert_eq!(answer["id"], "ok");
    assert_eq!(bridge.ask_ok("after nesting").await["ok"], true);
}

/// Values of every JSON type but the one a parameter takes.
fn wrong_values(takes: &str) -> Vec<Value> {
    let all = [
        ("bool", json!(true)),
        ("negative", json!(-1)),
        ("integer", json!(7)),
        ("float", json!(1.5)),
        ("string", json!("5")),
        ("array", json!([1])),
        ("object", json!({"a": 1})),
    ];
    all.into_iter()
        .filter(|(kind, _)| match takes {
            "string" => *kind != "string",
            "u64" => *kind != "integer",
            // `level` takes one of four words.
            "level" => true,
            _ => unreachable!("{takes}"),
        })
        .map(|(_, value)| value)
        .collect()
}

#[tokio::test]
async fn wrong_types_for_every_param_of_every_method_are_invalid_params() {
    let mut bridge = Bridge::start();
    // (method, valid params to start from, field, type it takes)
    let table = [
        ("ask", json!({"prompt": "x"}), "prompt", "string"),
        ("ask", json!({"prompt": "x"}), "timeoutMs", "u64"),
        ("events", json!({}), "since", "u64"),
        ("events", json!({}), "limit", "u64"),
        ("events", json!({}), "level", "level"),
    ];
    let mut cases = Vec::new();
    for (method, base, field, takes) in table {
        for value in wrong_values(takes) {
            let mut params = base.clone();
            params[field] = value;
            cases.push((method, params));
        }
    }
    // A missing required field, null for it, and any field at all for the methods without.
    cases.push(("ask", json!({})));
    cases.push(("ask", json!({"prompt": null})));
    for method in ["status", "ping", "restart"] {
        for value in [json!(null), json!(1), json!("x"), json!({})] {
            cases.push((method, json!({ "unexpected": value })));
        }
    }
    // Positional params are refused for every method, even an empty list.
    for method in ["ask", "status", "events", "ping", "restart"] {
        cases.push((method, json!([])));
    }
    for (method, params) in &cases {
        let answer = bridge.call(method, params.clone()).await;
        assert_eq!(
            error_code(&answer),
            Some(-32602),
            "{method} {params}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("invalid params"), "{message}");
    }
    // Params that are not structured at all make the request itself invalid.
    for method in ["ask", "status", "events", "ping", "restart"] {
        for params in [json!(true), json!(3), json!("prompt")] {
            let answer = bridge.call(method, params.clone()).await;
            assert_eq!(
                error_code(&answer),
                Some(-32600),
                "{method} {params}: {answer}"
            );
        }
    }
    // None of them had an effect: no ask counted, no restart.
    let status = bridge.status().await;
    assert_eq!(status["totals"]["asks"], 0, "{}", status["totals"]);
    assert_eq!(status["child"]["restartCount"], 0);
    // Null for an optional field means "not given".
    let answer = bridge
        .call(
            "events",
            json!({"since": null, "limit": null, "level": null}),
        )
        .await;
    assert!(answer["result"]["events"].is_array(), "{answer}");
    assert_eq!(
        bridge
            .call("ask", json!({"prompt": "x", "timeoutMs": null}))
            .await["result"]["ok"],
        true
    );
}

#[tokio::test]
async fn extreme_timeouts_are_refused_and_the_largest_valid_one_works() {
    let mut bridge = Bridge::start();
    // Written as raw text: some of these are not representable as JSON numbers in Rust.
    let refused = [
        "-1",
        "-0",
        "1e300",
        "-1e300",
        "1.0",
        "18446744073709551615",
        "18446744073709551616",
        "86400001",
        "99999999999999999999999999999999",
    ];
    for timeout in refused {
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":"t","method":"ask","params":{{"prompt":"x","timeoutMs":{timeout}}}}}"#
        );
        let answer = answer_to(&mut bridge, line.as_bytes()).await;
        assert_eq!(error_code(&answer), Some(-32602), "{timeout}: {answer}");
        assert_eq!(answer["id"], "t", "{timeout}: {answer}");
    }
    let line =
        br#"{"jsonrpc":"2.0","id":"t","method":"ask","params":{"prompt":"x","timeoutMs":1e400}}"#;
    let answer = answer_to(&mut bridge, line).await;
    // Out of f64's range: the line cannot be parsed at all.
    assert_eq!(error_code(&answer), Some(-32700), "{answer}");
    // The range errors name the field.
    let answer = bridge
        .call("ask", json!({"prompt": "x", "timeoutMs": u64::MAX}))
        .await;
    assert_eq!(answer["error"]["data"]["field"], "timeoutMs", "{answer}");
    assert_eq!(bridge.status().await["totals"]["asks"], 0);
    // The largest valid timeout (a day) runs a normal turn.
    let answer = bridge
        .call("ask", json!({"prompt": "x", "timeoutMs": 86_400_000}))
        .await;
    assert_eq!(answer["result"]["ok"], true, "{answer}");
    // So do events cursors at the very end of the range.
    let answer = bridge
        .call("events", json!({"since": u64::MAX, "limit": 1000}))
        .await;
    assert_eq!(answer["result"]["events"], json!([]), "{answer}");
}

#[tokio::test]
async fn ids_come_back_exactly_as_written_or_get_a_parse_error() {
    let mut bridge = Bridge::start();
    // Numbers come back byte for byte, whatever a 64-bit integer or a float can hold;
    // strings come back as the same string (escapes may be written differently).
    let cases = [
        ("9223372036854775807", "9223372036854775807"),
        ("-9223372036854775808", "-9223372036854775808"),
        ("18446744073709551615", "18446744073709551615"),
        ("18446744073709551616", "18446744073709551616"),
        ("18446744073709551617", "18446744073709551617"),
        ("-9223372036854775809", "-9223372036854775809"),
        ("1e5", "1e5"),
        ("-0", "-0"),
        ("0.1", "0.1"),
        ("1.50", "1.50"),
        ("5e-324", "5e-324"),
        ("1.7976931348623157e308", "1.7976931348623157e308"),
        (r#""\u00e9\ud83d\ude80 \"q\"""#, r#""é🚀 \"q\"""#),
    ];
    for (sent, back) in cases {
        let line = format!(r#"{{"jsonrpc":"2.0","id":{sent},"method":"ping"}}"#);
        bridge.send_raw(line.as_bytes()).await;
        let raw = next_raw_line(&mut bridge).await;
        assert_eq!(
            raw,
            format!(r#"{{"jsonrpc":"2.0","id":{back},"result":{{}}}}"#)
        );
    }
    // Two big ids that a float would merge are two requests in flight, not a duplicate.
    for id in ["18446744073709551616", "18446744073709551617"] {
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"ask","params":{{"prompt":"SLOW 100 2"}}}}"#
        );
        bridge.send_raw(line.as_bytes()).await;
    }
    let mut answered = Vec::new();
    let mut events_of = std::collections::BTreeMap::<String, usize>::new();
    while answered.len() < 2 {
        let raw = next_raw_line(&mut bridge).await;
        if raw.contains("ask/event") {
            // Their notifications name them exactly too, not as the nearest float.
            let id = raw
                .split_once(r#""requestId":"#)
                .and_then(|(_, rest)| rest.split_once(','))
                .map(|(id, _)| id.to_string())
                .unwrap_or_default();
            *events_of.entry(id).or_default() += 1;
        } else {
            assert!(raw.contains(r#""result":{"ok":true"#), "{raw}");
            answered.push(raw[..45].to_string());
        }
    }
    let ids: Vec<&str> = events_of.keys().map(String::as_str).collect();
    assert_eq!(ids, ["18446744073709551616", "18446744073709551617"]);
    assert!(
        answered[0].contains("551616") && answered[1].contains("551617"),
        "{answered:?}"
    );
    // Beyond f64: the line cannot be parsed, so the id cannot be known.
    for sent in ["1e400", "-1e400"] {
        let line = format!(r#"{{"jsonrpc":"2.0","id":{sent},"method":"ping"}}"#);
        let answer = answer_to(&mut bridge, line.as_bytes()).await;
        assert_eq!(error_code(&answer), Some(-32700), "{answer}");
        assert_eq!(answer["id"], Value::Null);
    }
    // Ids that are not strings, numbers or null are refused without being echoed.
    for sent in ["true", "false", "{}", r#"{"id":1}"#, "[]"] {
        let line = format!(r#"{{"jsonrpc":"2.0","id":{sent},"method":"ping"}}"#);
        let answer = answer_to(&mut bridge, line.as_bytes()).await;
        assert_eq!(error_code(&answer), Some(-32600), "{sent}: {answer}");
        assert_eq!(answer["id"], Value::Null);
    }
    // A 1 MiB string id comes back whole.
    let long = "i".repeat(1 << 20);
    let line = json!({"jsonrpc": "2.0", "id": long, "method": "ping"}).to_string();
    let answer = answer_to(&mut bridge, line.as_bytes()).await;
    assert_eq!(answer["id"], long.as_str());
}

#[tokio::test]
async fn client_responses_never_answer_or_disturb_a_request_in_flight() {
    let mut bridge = Bridge::start();
    // An id the bridge's own requests (1, 2, 3, ... as `wait_status` polls) never reach:
    // a poll under id 5 collided with the ask under load.
    bridge
        .send_raw(br#"{"jsonrpc":"2.0","id":99999,"method":"ask","params":{"prompt":"SLOW 50 4"}}"#)
        .await;
    bridge
        .wait_status("the ask to run", |s| s["child"]["status"] == "busy")
        .await;
    // "Answers" to request 99999, as if the client took it for a request from us.
    for line in [
        br#"{"jsonrpc":"2.0","id":99999,"result":{"ok":true}}"#.as_slice(),
        br#"{"jsonrpc":"2.0","id":99999,"error":{"code":-1,"message":"no"}}"#,
        br#"{"jsonrpc":"2.0","id":99999,"result":null,"error":null}"#,
        br#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
        br#"{"jsonrpc":"2.0","result":{}}"#,
    ] {
        bridge.send_raw(line).await;
    }
    let ping = bridge.request("ping", json!({})).await;
    let mut answers: HashMap<String, Vec<Value>> = HashMap::new();
    while !answers.contains_key(&ping.to_string()) || !answers.contains_key("99999") {
        let message = bridge.next_message().await;
        if message.get("method").is_none() {
            answers
                .entry(message["id"].to_string())
                .or_default()
                .push(message);
        }
    }
    assert_eq!(answers["99999"].len(), 1, "{answers:?}");
    assert_eq!(answers["99999"][0]["result"]["ok"], true, "{answers:?}");
    assert!(!answers.contains_key("null"), "{answers:?}");
    // Nothing else is pending: the next message on stdout is the next request's answer.
    let last = bridge.request("ping", json!({})).await;
    let message = bridge.next_message().await;
    assert_eq!(message["id"], last, "{message}");
    // A malformed response is a malformed message like any other: answered, under its id.
    let answer = answer_to(&mut bridge, br#"{"jsonrpc":"1.0","id":"r","result":{}}"#).await;
    assert_eq!(error_code(&answer), Some(-32600), "{answer}");
    assert_eq!(answer["id"], "r");
}

#[tokio::test]
async fn a_burst_of_10000_requests_is_answered_once_each() {
    let mut bridge = Bridge::start();
    const COUNT: usize = 10_000;
    // Numbers and strings as ids, pings and statuses, all written before reading anything.
    let id_of = |n: usize| {
        if n.is_multiple_of(2) {
            json!(n)
        } else {
            json!(format!("s{n}"))
        }
    };
    let mut burst = Vec::new();
    for n in 0..COUNT {
        let method = if n.is_multiple_of(3) {
            "status"
        } else {
            "ping"
        };
        let line = json!({"jsonrpc": "2.0", "id": id_of(n), "method": method});
        burst.extend_from_slice(line.to_string().as_bytes());
        burst.push(b'\n');
    }
    let mut stdin = bridge.stdin.take().expect("stdin");
    // Written from a task so a full stdout pipe can never deadlock the test.
    let writer = tokio::spawn(async move {
        stdin.write_all(&burst).await.unwrap();
        stdin.flush().await.unwrap();
        stdin
    });
    let mut seen: HashMap<String, Value> = HashMap::new();
    while seen.len() < COUNT {
        let message = bridge.next_message().await;
        let id = message["id"].to_string();
        assert!(
            seen.insert(id.clone(), message).is_none(),
            "{id} answered twice"
        );
    }
    bridge.stdin = Some(writer.await.unwrap());
    for n in 0..COUNT {
        let id = id_of(n).to_string();
        let answer = seen.get(&id).unwrap_or_else(|| panic!("{id} not answered"));
        if n.is_multiple_of(3) {
            assert!(
                answer["result"]["identity"]["daemonId"].is_string(),
                "{answer}"
            );
        } else {
            assert_eq!(answer["result"], json!({}), "{answer}");
        }
    }
    // Nothing more was owed: stdin EOF ends the bridge cleanly with no extra line.
    bridge.stdin = None;
    let extra = tokio::time::timeout(READ_TIMEOUT, bridge.stdout.next_line())
        .await
        .expect("stdout not closed")
        .expect("read stdout");
    assert_eq!(extra, None, "an extra line after the burst");
    assert_eq!(bridge.wait_exit().await, 0);
}

/// The persisted state (`daemon-state.json`), readable while stdout is not being read.
fn persisted_state(bridge: &Bridge) -> Option<Value> {
    let text = std::fs::read_to_string(bridge.state_dir().join("daemon-state.json")).ok()?;
    serde_json::from_str(&text).ok()
}

#[tokio::test]
async fn a_client_that_stops_reading_holds_the_child_back_and_loses_nothing() {
    let mut bridge = Bridge::start();
    bridge.ask_ok("warm up").await;
    // Thousands of messages of 4 KiB in one turn: more than every buffer between the
    // child and a client that does not read (the turn's queue, the output queue, the
    // pipes) can hold, whose fill is about 1,400 of them (our stdout pipe is 1 MiB).
    const CHUNKS: u64 = 4000;
    let ask = bridge
        .request(
            "ask",
            json!({"prompt": format!("SLOW 0 {CHUNKS} bytes=4096")}),
        )
        .await;
    // Not reading stdout now: the child's messages have nowhere to go, so the turn is
    // held back; the state file (written by the bridge, not read from stdout) shows it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut last_messages = None;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let state = persisted_state(&bridge).unwrap_or_default();
        assert!(
            state["totals"]["turnsOk"] == 1,
            "the turn ended while its client was not reading: {state}"
        );
        let messages = state["turn"]["messages"].as_u64();
        if messages.is_some() && messages == last_messages {
            break;
        }
        last_messages = messages;
        assert!(tokio::time::Instant::now() < deadline, "{state}");
    }
    let held_at = last_messages.unwrap_or(0);
    assert!(held_at < CHUNKS, "held back only after {held_at} messages");
    let peak_while_blocked = peak_rss_kib(&bridge);
    // A status request is answered meanwhile (its answer queues behind what is waiting).
    let status_id = bridge.request("status", json!({})).await;

    // Reading again: every message comes, in order and without a gap, then the answer.
    let (response, notes) = bridge.response_for(&ask).await;
    let result = &response["result"];
    assert_eq!(result["ok"], true, "{response}");
    let total = result["messages"].as_u64().unwrap();
    // init, one assistant line per chunk, the result.
    assert_eq!(total, CHUNKS + 2);
    let seqs: Vec<u64> = notes
        .iter()
        .filter(|n| n["params"]["requestId"] == ask)
        .map(|n| n["params"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<u64>>());
    let status = notes
        .iter()
        .find(|n| n["id"] == status_id)
        .expect("the status answer came before the held-back turn ended");
    assert_eq!(status["result"]["child"]["status"], "busy", "{status}");
    let status = bridge.status().await;
    assert_eq!(status["totals"]["notificationsDropped"], 0);
    assert!(
        peak_while_blocked < RSS_BOUND_KIB,
        "peak RSS {peak_while_blocked} KiB"
    );
    assert_eq!(bridge.ask_ok("still serving").await["ok"], true);
}
