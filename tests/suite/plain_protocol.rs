//! Malformed and unusual input on the plain surface: every case gets a clear answer
//! (or, for notifications, none) and the bridge keeps serving.

use serde_json::{Value, json};
use test_support::{Bridge, Options, error_code};

async fn raw(bridge: &mut Bridge, line: &[u8]) -> Value {
    bridge.send_raw(line).await;
    bridge.next_message().await
}

#[tokio::test]
async fn malformed_lines_get_standard_errors_and_serving_goes_on() {
    let mut bridge = Bridge::start();
    let cases: [(&[u8], i64, Value); 9] = [
        (b"{not json", -32700, Value::Null),
        (b"\xff\xfe\xfd", -32700, Value::Null),
        (b"[1,2,3]", -32600, Value::Null),
        (b"\"just a string\"", -32600, Value::Null),
        (
            br#"{"jsonrpc":"1.0","id":5,"method":"status"}"#,
            -32600,
            json!(5),
        ),
        (br#"{"id":6,"method":"status"}"#, -32600, json!(6)),
        (
            br#"{"jsonrpc":"2.0","id":[1],"method":"status"}"#,
            -32600,
            Value::Null,
        ),
        (br#"{"jsonrpc":"2.0","id":7,"method":42}"#, -32600, json!(7)),
        (br#"{"jsonrpc":"2.0","id":8}"#, -32600, json!(8)),
    ];
    for (line, code, id) in cases {
        let answer = raw(&mut bridge, line).await;
        let shown = String::from_utf8_lossy(line);
        assert_eq!(error_code(&answer), Some(code), "{shown}: {answer}");
        assert_eq!(answer["id"], id, "{shown}: {answer}");
        assert_eq!(answer["jsonrpc"], "2.0");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    assert_eq!(bridge.ask_ok("still here").await["ok"], true);
}

#[tokio::test]
async fn unknown_methods_and_bad_params_name_what_is_wrong() {
    let mut bridge = Bridge::start();
    let unknown = bridge.call("summon", json!({})).await;
    assert_eq!(error_code(&unknown), Some(-32601));
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("summon")
    );
    let cases = [
        ("ask", json!({}), "prompt"),
        ("ask", json!({"prompt": 5}), "expected a string"),
        (
            "ask",
            json!({"prompt": "x", "timeoutMs": "soon"}),
            "expected u64",
        ),
        (
            "ask",
            json!({"prompt": "x", "timeoutMs": -1}),
            "expected u64",
        ),
        ("ask", json!({"prompt": "x", "timeoutMs": 0}), "timeoutMs"),
        (
            "ask",
            json!({"prompt": "x", "timeoutMs": 1e12}),
            "expected u64",
        ),
        ("ask", json!({"prompt": "   "}), "prompt"),
        ("ask", json!({"promt": "typo"}), "promt"),
        ("events", json!({"limit": 0}), "limit"),
        ("events", json!({"level": "loud"}), "loud"),
        ("events", json!({"since": "yesterday"}), "expected u64"),
        ("status", json!({"verbose": true}), "verbose"),
    ];
    for (method, params, needle) in cases {
        let answer = bridge.call(method, params.clone()).await;
        assert_eq!(
            error_code(&answer),
            Some(-32602),
            "{method} {params}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{method} {params}: {message}");
    }
    let positional = raw(
        &mut bridge,
        br#"{"jsonrpc":"2.0","id":"p","method":"ask","params":["hi"]}"#,
    )
    .await;
    assert_eq!(error_code(&positional), Some(-32602));
    assert_eq!(bridge.call("ping", json!({})).await["result"], json!({}));
}

#[tokio::test]
async fn notifications_and_client_responses_get_no_answer() {
    let mut bridge = Bridge::start();
    bridge
        .send_raw(br#"{"jsonrpc":"2.0","method":"status"}"#)
        .await;
    bridge
        .send_raw(br#"{"jsonrpc":"2.0","method":"nonexistent"}"#)
        .await;
    bridge
        .send_raw(br#"{"jsonrpc":"2.0","id":99,"result":{}}"#)
        .await;
    bridge.send_raw(b"").await;
    bridge.send_raw(b"   ").await;
    let id = bridge.request("ping", json!({})).await;
    // The very next line on stdout is the ping's answer: nothing was sent for the lines
    // above (read directly, not through `response_for`, which would skip other lines).
    let next = bridge.next_message().await;
    assert_eq!(next["id"], id, "{next}");
    assert_eq!(next["result"], json!({}), "{next}");
}

#[tokio::test]
async fn ids_of_every_json_type_come_back_unchanged() {
    let mut bridge = Bridge::start();
    for id in [
        json!("abc"),
        json!(""),
        json!(0),
        json!(-7),
        json!(1.5),
        json!(u64::MAX),
        Value::Null,
    ] {
        let line = json!({"jsonrpc": "2.0", "id": id, "method": "ping"}).to_string();
        let answer = raw(&mut bridge, line.as_bytes()).await;
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["result"], json!({}));
    }
}

#[tokio::test]
async fn a_duplicate_id_in_flight_is_refused() {
    let mut bridge = Bridge::start();
    let line = json!({"jsonrpc": "2.0", "id": "same", "method": "ask", "params": {"prompt": "SLOW 100 3"}}).to_string();
    bridge.send_raw(line.as_bytes()).await;
    bridge
        .wait_status("the ask to run", |s| s["child"]["status"] == "busy")
        .await;
    bridge.send_raw(line.as_bytes()).await;
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let message = bridge.next_message().await;
        if message["id"] == "same" {
            answers.push(message);
        }
    }
    assert_eq!(error_code(&answers[0]), Some(-32600), "{}", answers[0]);
    assert!(
        answers[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    assert_eq!(answers[1]["result"]["ok"], true);
}

#[tokio::test]
async fn an_oversized_line_is_refused_and_serving_goes_on() {
    let mut bridge = Bridge::start_with(Options::default().args(&["--max-request-bytes", "4096"]));
    let prompt = "x".repeat(10_000);
    let line = json!({"jsonrpc": "2.0", "id": 1, "method": "ask", "params": {"prompt": prompt}})
        .to_string();
    let answer = raw(&mut bridge, line.as_bytes()).await;
    assert_eq!(error_code(&answer), Some(-32005), "{answer}");
    assert_eq!(answer["id"], Value::Null);
    assert_eq!(answer["error"]["data"]["limit"], 4096);
    assert!(answer["error"]["data"]["length"].as_u64().unwrap() > 10_000);
    assert_eq!(bridge.ask_ok("small").await["ok"], true);
}

#[tokio::test]
async fn prompts_with_newlines_and_unicode_arrive_intact() {
    let mut bridge = Bridge::start();
    let prompt = "line one\nline two \"quoted\" — ünïcödé 🚀";
    let result = bridge.ask_ok(prompt).await;
    assert_eq!(result["result"], format!("mock reply #1 to: {prompt}"));
}
