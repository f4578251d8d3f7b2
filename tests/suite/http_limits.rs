//! What nobody who can reach the HTTP port (on loopback, every local user) can take from
//! the daemon: slow-header and idle connections are closed, idle WebSockets leave
//! `POST /rpc` and `/mcp` served, MCP sessions are bounded and made only for requests
//! that passed the token, and a flood of connections leaves the owner's socket served
//! (the descriptor limit is raised and a reserve kept). Also `--listen localhost:PORT`.

use std::time::{Duration, Instant};

use jsonrpsee_ws_client::{HeaderMap, WsClientBuilder};
use serde_json::{Value, json};
use test_support::{Bridge, Options, READ_TIMEOUT, TempDir, bridge_command};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http_listen::{listen_info, listening, post_rpc, text};

/// What the listener allows (src/http/conn.rs): a request's headers within 10 s,
/// 32 WebSockets, 32 MCP sessions.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_WEBSOCKETS: usize = 32;
const MAX_MCP_SESSIONS: usize = 32;

fn address(info: &Value) -> String {
    text(info, "url").trim_start_matches("http://").to_string()
}

/// How long until the server closes `stream` (reading and dropping what it sends).
async fn closed_after(mut stream: TcpStream, since: Instant) -> Duration {
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buf))
            .await
            .expect("the listener closes the connection within the read timeout");
        match read {
            Ok(0) | Err(_) => return since.elapsed(),
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn slow_header_and_idle_connections_are_closed_by_the_listener() {
    let (_bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    let address = address(&info);
    let start = Instant::now();
    // Headers begun and never finished (slowloris).
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"POST /rpc HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        .await
        .unwrap();
    // Connected and silent.
    let silent = TcpStream::connect(&address).await.unwrap();
    // One request answered, then kept alive and idle.
    let mut kept = TcpStream::connect(&address).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let request = format!(
        "POST /rpc HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    kept.write_all(request.as_bytes()).await.unwrap();
    let mut answer = [0u8; 512];
    let n = tokio::time::timeout(READ_TIMEOUT, kept.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &answer[..n]
    );
    let idle_since = Instant::now();
    let (slow, silent, kept) = tokio::join!(
        closed_after(slow, start),
        closed_after(silent, start),
        closed_after(kept, idle_since),
    );
    let bound = HEADER_READ_TIMEOUT + Duration::from_secs(3);
    for (what, after) in [("slow headers", slow), ("silent", silent), ("idle", kept)] {
        assert!(after <= bound, "{what}: closed after {after:?}");
        assert!(
            after >= HEADER_READ_TIMEOUT - Duration::from_secs(1),
            "{what}: {after:?}"
        );
    }
}

#[tokio::test]
async fn a_hundred_idle_websockets_leave_post_and_mcp_served() {
    let (_bridge, info) = listening("127.0.0.1:0", Options::default()).await;
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..100 {
        let connecting = WsClientBuilder::default()
            .set_headers(HeaderMap::new())
            .build(text(&info, "ws"));
        match tokio::time::timeout(READ_TIMEOUT, connecting)
            .await
            .unwrap()
        {
            Ok(client) => open.push(client),
            Err(err) => refused.push(format!("{err:?}")),
        }
    }
    assert_eq!(open.len(), MAX_WEBSOCKETS, "{refused:?}");
    assert!(refused.iter().all(|r| r.contains("429")), "{refused:?}");
    let status = json!({"jsonrpc": "2.0", "id": 1, "method": "status"});
    let (code, answer) = post_rpc(&text(&info, "rpc"), status, &[]).await;
    assert_eq!(code, 200, "{answer}");
    let (code, session) = initialize(&info, None).await;
    assert_eq!((code, session.is_some()), (200, true));
    // An open WebSocket still answers.
    use jsonrpsee_core::client::ClientT;
    let pong: Value = open[0]
        .request("ping", jsonrpsee_core::rpc_params![])
        .await
        .unwrap();
    assert_eq!(pong, json!({}));
}

/// A handshake-era `initialize` on `/mcp`: the status and the session id it made.
async fn initialize(info: &Value, token: Option<&str>) -> (u16, Option<String>) {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let mut request = super::http_listen::http()
        .post(text(info, "mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&init);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST /mcp");
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    (response.status().as_u16(), session)
}

#[tokio::test]
async fn mcp_sessions_are_made_only_after_the_token_and_are_bounded() {
    let bridge = Bridge::start_with(Options::default().args(&["--listen", "127.0.0.1:0"]));
    let info = listen_info(&bridge.state_dir()).await;
    let token = std::fs::read_to_string(text(&info, "tokenFile")).unwrap();
    let token = token.trim();
    // Refused before any session is made: these take no place under the bound.
    for _ in 0..MAX_MCP_SESSIONS + 8 {
        assert_eq!(initialize(&info, None).await, (401, None));
    }
    let mut sessions = Vec::new();
    for _ in 0..MAX_MCP_SESSIONS {
        let (code, session) = initialize(&info, Some(token)).await;
        assert_eq!(code, 200);
        sessions.push(session.expect("a session id"));
    }
    let (code, session) = initialize(&info, Some(token)).await;
    assert_eq!((code, session), (503, None));
    // The other kinds are still served.
    let status = json!({"jsonrpc": "2.0", "id": 1, "method": "status"});
    let bearer = format!("Bearer {token}");
    let rpc = text(&info, "rpc");
    assert_eq!(
        post_rpc(&rpc, status, &[("authorization", &bearer)])
            .await
            .0,
        200
    );
    // A session ended makes room for a new one.
    let ended = super::http_listen::http()
        .delete(text(&info, "mcp"))
        .bearer_auth(token)
        .header("mcp-session-id", &sessions[0])
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    assert_eq!(initialize(&info, Some(token)).await.0, 200);
}

/// The limits line of `/proc/<pid>/limits` for open files: (soft, hard).
#[cfg(target_os = "linux")]
fn open_files_limit(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_connection_flood_leaves_the_owners_socket_served_under_the_raised_descriptor_limit() {
    let dir = TempDir::new("http-flood");
    let options =
        Options::default().args(&["--listen", "127.0.0.1:0", "--listen-no-token", "true"]);
    let mut command = bridge_command(dir.path(), &options);
    // Started with a soft limit of 200 under a hard one of 400.
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the forked child.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 200,
                rlim_max: 400,
            };
            match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let mut bridge = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let state = dir.path().join("state");
    let info = listen_info(&state).await;
    let pid = bridge.id().unwrap();
    assert_eq!(open_files_limit(pid), (400, 400));
    // 400 descriptors less the reserve (128, and 8 for each of 4 sessions): 240 for HTTP.
    let address = address(&info);
    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(TcpStream::connect(&address).await.unwrap());
    }
    let mut answers = tokio::task::JoinSet::new();
    for mut stream in flood {
        answers.spawn(async move {
            let mut head = [0u8; 12];
            let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut head)).await;
            let refused = matches!(read, Ok(Ok(n)) if head[..n].starts_with(b"HTTP/1.1 503"));
            (refused, stream)
        });
    }
    let mut held = Vec::new();
    let mut refused = 0;
    while let Some(joined) = answers.join_next().await {
        let (was_refused, stream) = joined.unwrap();
        refused += usize::from(was_refused);
        held.push(stream);
    }
    assert_eq!(refused, 60, "the connections over 240 are answered 503");
    // The owner's socket is served while HTTP holds all it may.
    let mut socket = test_support::cli::SocketClient::connect(&state.join("daemon.sock")).await;
    let status = socket.call("status", json!({})).await;
    assert_eq!(status["result"]["daemon"]["state"], "running", "{status}");
    drop(held);
    drop(bridge.stdin.take());
    let exit = tokio::time::timeout(READ_TIMEOUT, bridge.wait())
        .await
        .unwrap();
    assert!(exit.unwrap().success());
}

#[tokio::test]
async fn listen_takes_localhost_as_the_loopback_address() {
    let (_bridge, info) = listening("localhost:0", Options::default()).await;
    let url = text(&info, "url");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let port = url.rsplit(':').next().unwrap();
    // As the README's curl sends it.
    let status = json!({"jsonrpc": "2.0", "id": 1, "method": "status"});
    let (code, answer) = post_rpc(&format!("http://localhost:{port}/rpc"), status, &[]).await;
    assert_eq!(code, 200, "{answer}");
    // Any other name is refused at start, saying what is accepted.
    let dir = TempDir::new("http-name");
    let options = Options::default().args(&["--listen", "example.com:80"]);
    let output = tokio::time::timeout(
        READ_TIMEOUT,
        bridge_command(dir.path(), &options)
            .stdin(std::process::Stdio::piped())
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("localhost:PORT"), "{stderr}");
}
