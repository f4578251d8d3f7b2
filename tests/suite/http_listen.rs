//! HTTP (`--listen`) over the CLI double: MCP over Streamable HTTP with rmcp's client,
//! the plain methods over HTTP POST, `ask/subscribe` with jsonrpsee's WebSocket client,
//! `/healthz`, and the guard: a foreign Origin is refused, a non-loopback address needs
//! the token it generates, a port in use is a clear error. Loopback only: a listener
//! bound to 0.0.0.0 is reached through 127.0.0.1.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use jsonrpsee_core::client::{ClientT, SubscriptionClientT};
use jsonrpsee_core::params::ObjectParams;
use jsonrpsee_core::rpc_params;
use jsonrpsee_ws_client::{HeaderMap, HeaderValue, WsClientBuilder};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};
use test_support::{Bridge, Options, READ_TIMEOUT, TempDir, bridge_command};

/// A bridge serving stdio and HTTP on `listen`, and what its `listen.json` says. On
/// loopback without a token (`--listen-no-token true`), so that these tests exercise
/// what they name; the token every listener has by default is tested on its own below.
pub(super) async fn listening(listen: &str, options: Options) -> (Bridge, Value) {
    let options = options.args(&["--listen", listen, "--listen-no-token", "true"]);
    let bridge = Bridge::start_with(options);
    let info = listen_info(&bridge.state_dir()).await;
    (bridge, info)
}

/// `listen.json`, once the bridge wrote it.
pub(super) async fn listen_info(state_dir: &Path) -> Value {
    let path = state_dir.join("listen.json");
    let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(info) = serde_json::from_str::<Value>(&text)
        {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {} in time",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(READ_TIMEOUT)
        .build()
        .unwrap()
}

pub(super) async fn post_rpc(url: &str, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = http().post(url).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

pub(super) async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = http().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("GET");
    let status = response.status().as_u16();
    (
        status,
        response.json::<Value>().await.unwrap_or(Value::Null),
    )
}

/// Named params `{"prompt": prompt}`, as the plain methods take them.
fn prompt(prompt: &str) -> ObjectParams {
    let mut params = ObjectParams::new();
    params.insert("prompt", prompt).unwrap();
    params
}

pub(super) fn text(info: &Value, key: &str) -> String {
    info[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {info}"))
        .to_string()
}

#[tokio::test]
async fn an_mcp_client_over_streamable_http_initializes_lists_the_tools_and_asks() {
    let (mut bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    let transport = StreamableHttpClientTransport::from_uri(text(&info, "mcp"));
    let client = tokio::time::timeout(READ_TIMEOUT, ().serve(transport))
        .await
        .expect("initialize in time")
        .expect("initialize");
    let server = client.peer_info().expect("server info");
    assert_eq!(server.server_info.as_ref().unwrap().name, "claude-coded");
    let tools = tokio::time::timeout(READ_TIMEOUT, client.list_all_tools())
        .await
        .unwrap()
        .unwrap();
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        ["ask", "cancel", "events", "sessions", "status", "wait"]
    );
    let arguments = json!({"prompt": "hello"}).as_object().cloned().unwrap();
    let call = CallToolRequestParams::new("ask").with_arguments(arguments);
    let result = tokio::time::timeout(READ_TIMEOUT, client.call_tool(call))
        .await
        .unwrap()
        .unwrap();
    let answer = result.content[0].as_text().expect("text").text.clone();
    assert_eq!(answer, "mock reply #1 to: hello");
    // The same child and session as stdio: the next ask there is the second turn.
    assert_eq!(
        bridge.ask_ok("on stdio").await["result"],
        "mock reply #2 to: on stdio"
    );
    client.cancel().await.unwrap();
    let status = bridge.status().await;
    assert_eq!(status["daemon"]["listen"], info["url"], "{status}");
    assert_eq!(bridge.close_and_wait().await, 0);
    // It takes listen.json with it.
    assert!(!bridge.state_dir().join("listen.json").exists());
}

#[tokio::test]
async fn the_plain_methods_answer_over_http_post_on_rpc_and_on_the_root() {
    let (_bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    let rpc = text(&info, "rpc");
    let ask = json!({"jsonrpc": "2.0", "id": 7, "method": "ask", "params": {"prompt": "hi"}});
    let (code, answer) = post_rpc(&rpc, ask, &[]).await;
    assert_eq!(code, 200);
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["ok"], true, "{answer}");
    assert_eq!(answer["result"]["result"], "mock reply #1 to: hi");
    let status = json!({"jsonrpc": "2.0", "id": "s", "method": "status"});
    let (_, status) = post_rpc(&text(&info, "url"), status, &[]).await;
    assert_eq!(status["result"]["totals"]["turnsOk"], 1, "{status}");
    // Asking the client about permissions needs a connection that carries requests.
    let relay = json!({"jsonrpc": "2.0", "id": 8, "method": "ask",
                       "params": {"prompt": "hi", "permissions": "client"}});
    let (_, refused) = post_rpc(&rpc, relay, &[]).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert_eq!(refused["error"]["data"]["field"], "permissions");
    let subscribe = json!({"jsonrpc": "2.0", "id": 10, "method": "ask/subscribe",
                           "params": {"prompt": "hi"}});
    let (_, refused) = post_rpc(&rpc, subscribe, &[]).await;
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    assert!(text(&refused["error"], "message").contains("WebSocket"));
    let bad = json!({"jsonrpc": "2.0", "id": 9, "method": "ask", "params": {"prompt": 3}});
    let (_, bad) = post_rpc(&rpc, bad, &[]).await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
}

/// A WebSocket client of `info`, sending `headers`.
pub(super) async fn ws_client(info: &Value, headers: HeaderMap) -> jsonrpsee_ws_client::WsClient {
    tokio::time::timeout(
        READ_TIMEOUT,
        WsClientBuilder::default()
            .set_headers(headers)
            .request_timeout(READ_TIMEOUT)
            .build(text(info, "ws")),
    )
    .await
    .expect("connect in time")
    .expect("connect")
}

#[tokio::test]
async fn a_websocket_client_subscribes_to_an_asks_events_and_gets_them_then_the_result() {
    let (mut bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    let client = ws_client(&info, HeaderMap::new()).await;
    let params = prompt("SLOW ms=50 chunks=3");
    let mut subscription = client
        .subscribe::<Value, _>("ask/subscribe", params, "ask/unsubscribe")
        .await
        .expect("subscribed");
    let mut events = Vec::new();
    let last = loop {
        let item = tokio::time::timeout(READ_TIMEOUT, subscription.next())
            .await
            .expect("an item in time")
            .expect("the subscription goes on until the result")
            .expect("a valid item");
        match item.get("event") {
            Some(event) => events.push(event.clone()),
            None => break item,
        }
    };
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert!(events.len() >= 5, "init, three chunks, result: {events:?}");
    assert_eq!(events.last().unwrap()["type"], "result");
    assert_eq!(
        last["result"]["result"], "slow chunk 1slow chunk 2slow chunk 3",
        "{last}"
    );
    // The result ends the subscription.
    let end = tokio::time::timeout(READ_TIMEOUT, subscription.next())
        .await
        .unwrap();
    assert!(end.is_none(), "{end:?}");
    // Plain calls work on the same connection; an ask there answers without events.
    let status: Value = client.request("status", rpc_params![]).await.unwrap();
    assert_eq!(status["totals"]["turnsOk"], 1);
    // A refused ask refuses the subscription itself.
    let refused = client
        .subscribe::<Value, _>("ask/subscribe", prompt(""), "ask/unsubscribe")
        .await;
    assert!(format!("{refused:?}").contains("prompt"), "{refused:?}");
    // A subscription streams the ask it waits for: handing one off is `ask`'s.
    let mut params = prompt("hi");
    params.insert("wait", false).unwrap();
    let handed_off = client
        .subscribe::<Value, _>("ask/subscribe", params, "ask/unsubscribe")
        .await;
    assert!(format!("{handed_off:?}").contains("wait"), "{handed_off:?}");
    assert_eq!(bridge.ask_ok("after").await["ok"], true);
}

#[tokio::test]
async fn a_websocket_client_that_unsubscribes_has_its_ask_withdrawn() {
    let (mut bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    let client = ws_client(&info, HeaderMap::new()).await;
    let params = prompt("SLOW ms=200 chunks=20");
    let mut subscription = client
        .subscribe::<Value, _>("ask/subscribe", params, "ask/unsubscribe")
        .await
        .unwrap();
    let first = tokio::time::timeout(READ_TIMEOUT, subscription.next())
        .await
        .unwrap();
    assert!(first.is_some_and(|item| item.is_ok()));
    subscription.unsubscribe().await.unwrap();
    // Withdrawn (interrupted), not waited out for 4 s.
    let status = bridge
        .wait_status("the withdrawn turn to end", |s| {
            s["turn"].is_null() && s["totals"]["asksErrored"] == 1
        })
        .await;
    assert_eq!(status["daemon"]["state"], "running");
}

#[tokio::test]
async fn healthz_answers_with_the_version_and_the_childs_state() {
    let (mut bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    bridge
        .wait_status("a ready child", |s| s["child"]["ready"] == true)
        .await;
    let (code, health) = get(&format!("{}/healthz", text(&info, "url")), &[]).await;
    assert_eq!(code, 200);
    assert_eq!(
        health,
        json!({"ok": true, "version": env!("CARGO_PKG_VERSION"), "child": "ready", "ready": true})
    );
}

#[tokio::test]
async fn a_request_from_a_foreign_origin_is_refused_on_every_path() {
    let (_bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    let url = text(&info, "url");
    let foreign = [("origin", "http://evil.example")];
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let mcp_headers = [("accept", "application/json, text/event-stream")];
    let status = json!({"jsonrpc": "2.0", "id": 1, "method": "status"});
    for (path, body) in [("/mcp", &initialize), ("/rpc", &status), ("/", &status)] {
        let mut headers = vec![foreign[0]];
        headers.extend(mcp_headers);
        let (code, refused) = post_rpc(&format!("{url}{path}"), body.clone(), &headers).await;
        assert_eq!(code, 403, "{path}: {refused}");
        assert!(
            text(&refused, "error").contains("evil.example"),
            "{refused}"
        );
    }
    assert_eq!(get(&format!("{url}/healthz"), &foreign).await.0, 403);
    // A page whose name was rebound to 127.0.0.1 sends its own name as Host.
    let rebound = [("host", "evil.example")];
    assert_eq!(get(&format!("{url}/healthz"), &rebound).await.0, 403);
    let mut headers = HeaderMap::new();
    headers.insert("origin", HeaderValue::from_static("http://evil.example"));
    let upgrade = WsClientBuilder::default()
        .set_headers(headers)
        .build(text(&info, "ws"));
    let refused = tokio::time::timeout(READ_TIMEOUT, upgrade).await.unwrap();
    assert!(format!("{:?}", refused.err()).contains("403"));
    // Loopback origins pass, for each of the three names.
    for origin in [
        "http://127.0.0.1:9",
        "http://localhost:3000",
        "http://[::1]:80",
    ] {
        let (code, body) =
            post_rpc(&format!("{url}/rpc"), status.clone(), &[("origin", origin)]).await;
        assert_eq!(code, 200, "{origin}: {body}");
        let (code, _) = post_rpc(
            &format!("{url}/mcp"),
            initialize.clone(),
            &[("origin", origin), mcp_headers[0]],
        )
        .await;
        assert_eq!(code, 200, "{origin} on /mcp");
    }
}

/// Every local user can connect to 127.0.0.1: without a token, another user's curl made
/// the agent read the owner's files and ran commands as the owner.
#[tokio::test]
async fn a_loopback_listener_requires_its_token_by_default_even_from_another_local_user() {
    let bridge = Bridge::start_with(Options::default().args(&["--listen", "127.0.0.1:0"]));
    let info = listen_info(&bridge.state_dir()).await;
    assert_eq!(info["tokenRequired"], true, "{info}");
    let file = text(&info, "tokenFile");
    assert_eq!(Path::new(&file), bridge.state_dir().join("listen-token"));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = std::fs::read_to_string(&file).unwrap().trim().to_string();
    let status = json!({"jsonrpc": "2.0", "id": 1, "method": "status"});
    let rpc = text(&info, "rpc");
    assert_eq!(post_rpc(&rpc, status.clone(), &[]).await.0, 401);
    let mcp = text(&info, "mcp");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "other-user", "version": "0"}}});
    let accept = [("accept", "application/json, text/event-stream")];
    assert_eq!(post_rpc(&mcp, init, &accept).await.0, 401);
    let right = format!("Bearer {token}");
    let (code, answer) = post_rpc(&rpc, status, &[("authorization", right.as_str())]).await;
    assert_eq!(
        (code, answer["result"]["daemon"]["state"].clone()),
        (200, json!("running"))
    );
    // status and the listening event say where the token is, never what it is.
    assert_eq!(answer["result"]["daemon"]["listenTokenFile"], json!(file));
    let events = json!({"jsonrpc": "2.0", "id": 2, "method": "events", "params": {}});
    let (_, events) = post_rpc(&rpc, events, &[("authorization", right.as_str())]).await;
    let listening = events["result"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "http.listening")
        .cloned()
        .unwrap_or_else(|| panic!("{events}"));
    assert_eq!(listening["detail"]["tokenFile"], json!(file), "{listening}");
    assert!(!events.to_string().contains(&token));
    // Another user of the machine: refused without the token, and cannot read it.
    let Some(_) = super::state_security::probe_user() else {
        return;
    };
    let as_other = |script: &str| {
        std::process::Command::new("runuser")
            .args([
                "-u",
                super::state_security::PROBE_USER,
                "--",
                "python3",
                "-c",
                script,
            ])
            .output()
            .expect("runuser")
    };
    let post = format!(
        "import urllib.request,urllib.error\n\
         r=urllib.request.Request({rpc:?},data=b'{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}}',headers={{'content-type':'application/json'}})\n\
         try:\n    print(urllib.request.urlopen(r).status)\n\
         except urllib.error.HTTPError as e:\n    print(e.code)"
    );
    let refused = as_other(&post);
    assert_eq!(
        String::from_utf8_lossy(&refused.stdout).trim(),
        "401",
        "{refused:?}"
    );
    let read = as_other(&format!("open({file:?}).read()"));
    assert!(
        !read.status.success(),
        "another user read the token: {read:?}"
    );
    assert!(
        String::from_utf8_lossy(&read.stderr).contains("PermissionError"),
        "{read:?}"
    );
}

/// The status line of a raw HTTP/1.1 request (headers as written, duplicates kept).
pub(super) async fn raw_status(url: &str, head: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://").split('/').next().unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let request = format!(
        "POST /rpc HTTP/1.1\r\n{head}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(READ_TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// jsonrpsee's own limit answered -32007, which is the code for a cancelled ask.
#[tokio::test]
async fn an_oversized_body_gets_the_request_too_large_code_as_on_stdio() {
    let options = Options::default().args(&["--max-request-bytes", "1024"]);
    let (_bridge, info) = listening("127.0.0.1:0", options).await;
    let rpc = text(&info, "rpc");
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "ask",
                     "params": {"prompt": "x".repeat(2000)}});
    let (code, answer) = post_rpc(&rpc, big, &[]).await;
    assert_eq!(code, 413, "{answer}");
    assert_eq!(answer["error"]["code"], -32005, "{answer}");
    assert_eq!(answer["error"]["data"]["limit"], 1024, "{answer}");
    // A request within the limit is served as before.
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    assert_eq!(post_rpc(&rpc, ping, &[]).await.0, 200);
}

#[tokio::test]
async fn lenient_hosts_and_second_origins_are_refused() {
    let (_bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    let url = text(&info, "url");
    let port = url.rsplit(':').next().unwrap().to_string();
    let host = format!("host: 127.0.0.1:{port}\r\n");
    assert_eq!(raw_status(&url, &host).await, 200);
    let userinfo = format!("host: evil.com@127.0.0.1:{port}\r\n");
    assert_eq!(raw_status(&url, &userinfo).await, 400);
    let two_hosts = format!("{host}host: evil.example\r\n");
    assert_eq!(raw_status(&url, &two_hosts).await, 400);
    let two_origins =
        format!("{host}origin: http://127.0.0.1:{port}\r\norigin: http://evil.example\r\n");
    assert_eq!(raw_status(&url, &two_origins).await, 400);
    let bad_port = format!("{host}origin: http://127.0.0.1:99999\r\n");
    assert_eq!(raw_status(&url, &bad_port).await, 403);
}

#[tokio::test]
async fn a_non_loopback_listener_requires_the_token_it_generates_into_a_private_file() {
    let dir = TempDir::new("http-token");
    let log = dir.path().join("stderr.log");
    let options = Options {
        stderr_file: Some(log.clone()),
        ..Options::default()
    };
    let options = options.env("RUST_LOG", "info").dir(dir);
    let (bridge, info) = listening("0.0.0.0:0", options).await;
    assert_eq!(info["tokenRequired"], true);
    let file = text(&info, "tokenFile");
    assert_eq!(Path::new(&file), bridge.state_dir().join("listen-token"));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(token.len() >= 32);
    // Reached through loopback; a non-loopback address takes any Host.
    let url = text(&info, "url");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let healthz = format!("{url}/healthz");
    assert_eq!(get(&healthz, &[]).await.0, 401);
    assert_eq!(
        get(
            &healthz,
            &[("authorization", "Bearer wrong-token-000000000000000")]
        )
        .await
        .0,
        401
    );
    let right = format!("Bearer {token}");
    let elsewhere = [
        ("authorization", right.as_str()),
        ("host", "build-box.lan:1"),
    ];
    assert_eq!(get(&healthz, &elsewhere).await.0, 200);
    let status = json!({"jsonrpc": "2.0", "id": 1, "method": "status"});
    let rpc = text(&info, "rpc");
    assert_eq!(post_rpc(&rpc, status.clone(), &[]).await.0, 401);
    let (code, answer) = post_rpc(&rpc, status, &[("authorization", right.as_str())]).await;
    assert_eq!(
        (code, answer["result"]["daemon"]["state"].clone()),
        (200, json!("running"))
    );
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_str(&right).unwrap());
    let client = ws_client(&info, headers).await;
    let pong: Value = client.request("ping", rpc_params![]).await.unwrap();
    assert_eq!(pong, json!({}));
    let unauthorized = WsClientBuilder::default().build(text(&info, "ws")).await;
    assert!(format!("{:?}", unauthorized.err()).contains("401"));
    // The log names the file, never the token.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains(&file), "{logged}");
    assert!(!logged.contains(&token));
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error_with_exit_status_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = TempDir::new("http-taken");
    let options = Options::default().args(&["--listen", &addr]);
    let output = tokio::time::timeout(
        READ_TIMEOUT,
        bridge_command(dir.path(), &options)
            .stdin(std::process::Stdio::piped())
            .output(),
    )
    .await
    .expect("exits at once")
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    // Nothing started: no child, no state written.
    assert!(!dir.path().join("state").join("daemon-state.json").exists());
}

#[tokio::test]
async fn a_subscribe_to_a_full_queue_is_refused_as_busy_instead_of_accepted_then_failed() {
    let options = Options::default().args(&["--queue-size", "1"]);
    let (mut bridge, info) = listening("127.0.0.1:0", options).await;
    // One turn running, one ask waiting: the queue (of size 1) is full. (Before the
    // child is ready the first ask would wait in the queue too, and the second be refused.)
    bridge
        .wait_status("a ready child", |s| s["child"]["ready"] == true)
        .await;
    bridge
        .request("ask", json!({"prompt": "SLOW ms=200 chunks=25"}))
        .await;
    bridge.request("ask", json!({"prompt": "hi"})).await;
    bridge
        .wait_status("a running turn and a full queue", |s| {
            !s["turn"].is_null() && s["queue"]["length"] == 1
        })
        .await;
    let client = ws_client(&info, HeaderMap::new()).await;
    let subscribed = tokio::time::timeout(
        READ_TIMEOUT,
        client.subscribe::<Value, _>("ask/subscribe", prompt("hi"), "ask/unsubscribe"),
    )
    .await
    .expect("the subscribe call answered in time");
    let error = match subscribed {
        Ok(mut accepted) => {
            let first = tokio::time::timeout(READ_TIMEOUT, accepted.next()).await;
            panic!("the subscription was accepted; its first item: {first:?}")
        }
        Err(jsonrpsee_core::ClientError::Call(error)) => error,
        Err(other) => panic!("not a JSON-RPC error response: {other:?}"),
    };
    assert_eq!(error.code(), -32000, "{error:?}");
    assert!(error.message().contains("busy"), "{error:?}");
}
