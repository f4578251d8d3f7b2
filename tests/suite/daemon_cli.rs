//! The daemon's Unix socket and the subcommands that use it (`ask`, `start`, `stop`,
//! `status`, `events`), over the CLI double: fast, and every failure on demand. The same
//! with the real CLI is in `e2e_real_cli_daemon.rs`.

use std::os::unix::fs::FileTypeExt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::cli::{SocketClient, cli, mode, run, socket_path};
use test_support::{Bridge, Options, TempDir, error_code, wait_gone};

/// A stdio bridge and a client on its socket, once it listens.
async fn bridge_and_client() -> (Bridge, SocketClient) {
    let mut bridge = Bridge::start();
    let status = bridge
        .wait_status("the socket", |s| s["daemon"]["socket"].is_string())
        .await;
    let socket = socket_path(&bridge.state_dir());
    assert_eq!(
        status["daemon"]["socket"],
        json!(socket.display().to_string())
    );
    let client = SocketClient::connect(&socket).await;
    (bridge, client)
}

#[tokio::test]
async fn a_serving_claude_coded_listens_on_a_socket_only_its_user_may_open() {
    let (mut bridge, mut client) = bridge_and_client().await;
    let socket = socket_path(&bridge.state_dir());
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(&bridge.state_dir()), 0o700);
    let status = client.call("status", json!({})).await;
    assert_eq!(status["result"]["daemon"]["serving"], "stdio");
    assert_eq!(status["result"]["daemon"]["pid"], bridge.pid());
    assert_eq!(bridge.close_and_wait().await, 0);
    // The daemon takes its socket with it.
    assert!(!socket.exists(), "{} is left behind", socket.display());
}

#[tokio::test]
async fn socket_clients_and_stdio_share_one_child_session_and_queue() {
    let (mut bridge, mut first) = bridge_and_client().await;
    let on_stdio = bridge.ask_ok("hello").await;
    let socket = socket_path(&bridge.state_dir());
    let mut second = SocketClient::connect(&socket).await;
    // Both clients' asks are in the queue at once, and run one after the other.
    let one = first
        .request("ask", json!({"prompt": "SLOW ms=100 chunks=2"}))
        .await;
    let two = second
        .request("ask", json!({"prompt": "SLOW ms=100 chunks=2"}))
        .await;
    let ((a, a_notes), (b, b_notes)) =
        tokio::join!(first.response_for(&one), second.response_for(&two));
    for (answer, notes, id) in [(&a, &a_notes, &one), (&b, &b_notes, &two)] {
        assert_eq!(answer["result"]["ok"], true, "{answer}");
        assert_eq!(answer["result"]["sessionId"], on_stdio["sessionId"]);
        // Each client gets its own ask's events, under its own request id.
        assert!(!notes.is_empty());
        assert!(
            notes
                .iter()
                .all(|n| n["method"] == "ask/event" && n["params"]["requestId"] == *id)
        );
    }
    let status = bridge.status().await;
    assert_eq!(status["totals"]["turnsOk"], 3, "{status}");
    assert_eq!(status["child"]["restartCount"], 0);
    let started = first.call("events", json!({"limit": 1000})).await;
    let starts = started["result"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "child.started")
        .count();
    assert_eq!(starts, 1, "one child for all three clients");
}

#[tokio::test]
async fn a_socket_client_that_hangs_up_mid_turn_leaves_the_daemon_serving() {
    let (mut bridge, mut client) = bridge_and_client().await;
    client
        .request("ask", json!({"prompt": "SLOW ms=200 chunks=20"}))
        .await;
    // Its first event says the turn runs; then the client is gone.
    client.next_message().await.expect("an event");
    drop(client);
    // Its ask is withdrawn (the turn is interrupted), not waited out for 4 s.
    let status = bridge
        .wait_status("the withdrawn turn to end", |s| {
            s["turn"].is_null() && s["totals"]["asksErrored"] == 1
        })
        .await;
    assert_eq!(status["daemon"]["state"], "running");
    let mut again = SocketClient::connect(&socket_path(&bridge.state_dir())).await;
    assert_eq!(again.ask_ok("after").await["ok"], true);
    assert_eq!(bridge.ask_ok("on stdio").await["ok"], true);
}

#[tokio::test]
async fn a_socket_client_that_leaves_while_its_turn_is_silent_has_it_withdrawn_at_once() {
    let (mut bridge, mut client) = bridge_and_client().await;
    // The first chunk comes only after 5 s: nothing is written that could find it gone.
    client
        .request("ask", json!({"prompt": "SLOW ms=5000 chunks=3"}))
        .await;
    client.next_message().await.expect("the turn's first event");
    let left = Instant::now();
    drop(client);
    bridge
        .wait_status("the withdrawn turn to end", |s| {
            s["turn"].is_null() && s["totals"]["asksErrored"] == 1
        })
        .await;
    assert!(
        left.elapsed() < Duration::from_secs(3),
        "withdrawn after {:?}",
        left.elapsed()
    );
}

#[tokio::test]
async fn a_socket_client_that_closes_its_end_still_gets_its_answers() {
    let (mut bridge, mut client) = bridge_and_client().await;
    let ask = client
        .request("ask", json!({"prompt": "SLOW ms=100 chunks=3"}))
        .await;
    let status = client.request("status", json!({})).await;
    client.close_write().await;
    let (answer, notes) = client.response_for(&ask).await;
    assert_eq!(
        answer["result"]["result"], "slow chunk 1slow chunk 2slow chunk 3",
        "{answer}"
    );
    let events = notes.iter().filter(|n| n["method"] == "ask/event").count();
    assert!(events >= 5, "init, three chunks, result: {notes:?}");
    let mut answered = vec![];
    while let Some(message) = client.next_message().await {
        answered.push(message);
    }
    // The status came at once; then, all answered, the daemon closed the connection.
    assert_eq!(answered.len(), 0, "{answered:?}");
    assert!(notes.iter().any(|n| n["id"] == status), "{notes:?}");
    assert_eq!(bridge.status().await["daemon"]["state"], "running");
}

#[tokio::test]
async fn bad_lines_on_the_socket_get_errors_and_the_connection_keeps_serving() {
    let (_bridge, mut client) = bridge_and_client().await;
    client.send_raw(b"this is not json").await;
    let parse = client.next_message().await.unwrap();
    assert_eq!(error_code(&parse), Some(-32700), "{parse}");
    let unknown = client.call("nope", json!({})).await;
    assert_eq!(error_code(&unknown), Some(-32601), "{unknown}");
    let empty = client.call("ask", json!({"prompt": " "})).await;
    assert_eq!(error_code(&empty), Some(-32602), "{empty}");
    assert_eq!(client.call("ping", json!({})).await["result"], json!({}));
}

#[tokio::test]
async fn a_daemon_serving_stdio_refuses_stop_and_keeps_serving() {
    let (mut bridge, mut client) = bridge_and_client().await;
    let refused = client.call("stop", json!({})).await;
    assert_eq!(error_code(&refused), Some(-32600), "{refused}");
    assert_eq!(refused["error"]["data"]["kind"], "notStoppable");
    assert_eq!(bridge.ask_ok("still here").await["ok"], true);
}

/// `claude-coded start` in `home`; returns the daemon's pid.
async fn start(home: &std::path::Path) -> u32 {
    let started = run(cli(home, &["start"]), None).await;
    assert_eq!(started.code, 0, "{started:?}");
    assert!(started.stderr.contains("started (pid"), "{started:?}");
    let mut client = SocketClient::connect(&socket_path(&home.join("state"))).await;
    let status = client.call("status", json!({})).await;
    assert_eq!(status["result"]["daemon"]["serving"], "background");
    status["result"]["daemon"]["pid"].as_u64().unwrap() as u32
}

#[tokio::test]
async fn stop_ends_a_background_daemon_whose_clients_get_stopping_answers() {
    let home = TempDir::new("stop");
    let pid = start(home.path()).await;
    let again = run(cli(home.path(), &["start"]), None).await;
    assert_eq!(again.code, 0);
    assert!(again.stderr.contains("already running"), "{again:?}");
    let socket = socket_path(&home.path().join("state"));
    let mut client = SocketClient::connect(&socket).await;
    let id = client
        .request("ask", json!({"prompt": "SLOW ms=200 chunks=50"}))
        .await;
    client.next_message().await.expect("the turn runs");
    let stopped = run(cli(home.path(), &["stop"]), None).await;
    assert_eq!(stopped.code, 0, "{stopped:?}");
    assert!(
        stopped.stderr.contains(&format!("stopped (pid {pid})")),
        "{stopped:?}"
    );
    let (answer, _) = client.response_for(&id).await;
    assert_eq!(error_code(&answer), Some(-32004), "{answer}");
    client.wait_closed().await;
    assert!(wait_gone(pid as i32, Duration::from_secs(1)).await);
    assert!(!socket.exists());
    let events = std::fs::read_to_string(home.path().join("state/events.jsonl")).unwrap();
    assert!(
        events.contains(r#""type":"daemon.stop.requested""#),
        "{events}"
    );
    // Its output went to the log in the state directory, private like the rest.
    assert_eq!(mode(&home.path().join("state/daemon.log")), 0o600);
    // Nothing left to stop.
    let none = run(cli(home.path(), &["stop"]), None).await;
    assert_eq!(none.code, 0);
    assert!(none.stderr.contains("no claude-coded runs"), "{none:?}");
}

#[tokio::test]
async fn start_with_no_usable_claude_fails_and_says_why_once() {
    let home = TempDir::new("start-no-cli");
    let started = run(
        cli(
            home.path(),
            &["start", "--claude-bin", "/nonexistent/claude"],
        ),
        None,
    )
    .await;
    assert_eq!(started.code, 1, "{started:?}");
    assert_eq!(started.stderr.lines().count(), 1, "{started:?}");
    assert!(
        started
            .stderr
            .starts_with("claude-coded: Claude Code cannot start: cannot find"),
        "{started:?}"
    );
    // Nothing is left running: status finds no daemon answering.
    let status = run(cli(home.path(), &["status"]), None).await;
    assert!(
        status.stderr.contains("no claude-coded answers"),
        "{status:?}"
    );
}

#[tokio::test]
async fn start_with_listen_on_port_0_says_the_url_it_got() {
    let home = TempDir::new("start-listen");
    let started = run(
        cli(home.path(), &["start", "--listen", "127.0.0.1:0"]),
        None,
    )
    .await;
    assert_eq!(started.code, 0, "{started:?}");
    let url = started
        .stderr
        .split(", HTTP ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no URL: {started:?}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        !url.starts_with("http://127.0.0.1:0"),
        "the port it got: {url}"
    );
    // And where the token it needs is (the file, never the token).
    assert!(url.ends_with("/listen-token)"), "{url}");
    let file = url
        .split(" (token in ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')');
    let token = std::fs::read_to_string(file).unwrap();
    assert!(!started.stderr.contains(token.trim()), "{started:?}");
    let status = run(cli(home.path(), &["status"]), None).await;
    assert!(
        status.stdout.contains(&format!("(token in {file})")),
        "{status:?}"
    );
    assert_eq!(run(cli(home.path(), &["stop"]), None).await.code, 0);
}

#[tokio::test]
async fn the_plain_ask_example_exits_1_on_a_failed_turn() {
    let home = TempDir::new("plain-ask-example");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/plain-ask.sh");
    let example = |prompt: &str| {
        let mut command = tokio::process::Command::new("bash");
        command
            .arg(script)
            .arg(prompt)
            .arg(home.path())
            .env("HOME", home.path())
            .env("CLAUDE_CODED", test_support::bridge())
            .env("CLAUDE_CODED_CLAUDE_BIN", test_support::double())
            .env("CLAUDE_CODED_STATE_DIR", home.path().join("state"));
        command
    };
    let answered = run(example("hello"), None).await;
    assert_eq!(answered.code, 0, "{answered:?}");
    assert!(
        answered.stdout.contains("mock reply #1 to: hello"),
        "{answered:?}"
    );
    let failed = run(example("ERR400"), None).await;
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(failed.stderr.contains("the turn failed"), "{failed:?}");
}

/// A client command run in `dir`, with `home` as HOME and the default state directories
/// (under `home/.local/state`), as a person runs it.
fn cli_in(home: &std::path::Path, dir: &std::path::Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(test_support::bridge());
    command
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("CLAUDE_CODED_CLAUDE_BIN", test_support::double())
        .env_remove("XDG_STATE_HOME")
        .env_remove("CLAUDE_CODED_STATE_DIR")
        .env_remove("CLAUDE_CODED_CWD")
        .env_remove("RUST_LOG")
        .env_remove("CLAUDE_CODED_DEPTH")
        .env_remove("CLAUDE_CODED_DEPTH_LIMIT");
    command
}

#[tokio::test]
async fn client_commands_find_the_project_from_anywhere_inside_it() {
    let home = TempDir::new("walk-up");
    let repo = home.path().join("repo");
    let deep = repo.join("src/deep");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    let state_root = home.path().join(".local/state/claude-coded");
    // A cold ask where no daemon ever ran answers and leaves no state directory.
    let cold = run(cli_in(home.path(), &deep, &["ask", "-q", "hello"]), None).await;
    assert_eq!(cold.stdout, "mock reply #1 to: hello\n", "{cold:?}");
    assert!(
        !state_root.exists(),
        "a cold ask left {}",
        state_root.display()
    );
    // `start` deep inside starts the project's daemon, at the repository's root.
    let started = run(cli_in(home.path(), &deep, &["start"]), None).await;
    assert_eq!(started.code, 0, "{started:?}");
    let status = run(cli_in(home.path(), &deep, &["status", "--json"]), None).await;
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["config"]["cwd"], repo.display().to_string());
    // An ask from another subdirectory reaches that daemon: its conversation goes on.
    let other = repo.join("src");
    let first = run(cli_in(home.path(), &other, &["ask", "-q", "one"]), None).await;
    let second = run(cli_in(home.path(), &deep, &["ask", "-q", "two"]), None).await;
    assert_eq!(first.stdout, "mock reply #1 to: one\n", "{first:?}");
    assert_eq!(second.stdout, "mock reply #2 to: two\n", "{second:?}");
    let dirs: Vec<_> = std::fs::read_dir(&state_root).unwrap().collect();
    assert_eq!(
        dirs.len(),
        1,
        "one state directory for the project: {dirs:?}"
    );
    assert_eq!(
        run(cli_in(home.path(), &deep, &["stop"]), None).await.code,
        0
    );
}

#[tokio::test]
async fn a_server_flag_given_to_a_client_it_would_not_reach_is_an_error() {
    let home = TempDir::new("client-flags");
    // Reading commands never take server settings.
    let status = run(cli(home.path(), &["status", "--claude-bin", "/x"]), None).await;
    assert_eq!(status.code, 2, "{status:?}");
    assert!(
        status.stderr.contains("--claude-bin configures"),
        "{status:?}"
    );
    // A cold ask uses them; with a daemon running they would be ignored.
    let cold = run(
        cli(
            home.path(),
            &["ask", "-q", "--turn-timeout-ms", "5000", "hi"],
        ),
        None,
    )
    .await;
    assert_eq!(cold.code, 0, "{cold:?}");
    start(home.path()).await;
    let ignored = run(
        cli(home.path(), &["ask", "-q", "--turn-timeout-ms", "1", "hi"]),
        None,
    )
    .await;
    assert_eq!(ignored.code, 2, "{ignored:?}");
    assert!(
        ignored.stderr.contains(
            "--turn-timeout-ms configures a claude-coded that starts, and one already runs"
        ),
        "{ignored:?}"
    );
    // What belongs to the ask itself still goes through.
    let model = run(cli(home.path(), &["ask", "-q", "--model", "m", "hi"]), None).await;
    assert_eq!(model.code, 0, "{model:?}");
    assert_eq!(run(cli(home.path(), &["stop"]), None).await.code, 0);
}

#[tokio::test]
async fn sessions_and_restart_subcommands_and_status_show_every_session() {
    let home = TempDir::new("sessions-cmd");
    let none = run(cli(home.path(), &["sessions"]), None).await;
    assert_eq!(none.code, 1, "{none:?}");
    assert!(
        none.stderr
            .contains("no claude-coded runs for this project"),
        "{none:?}"
    );
    start(home.path()).await;
    run(cli(home.path(), &["ask", "-q", "one"]), None).await;
    run(
        cli(home.path(), &["ask", "-q", "--session", "worker", "two"]),
        None,
    )
    .await;
    let listed = run(cli(home.path(), &["sessions"]), None).await;
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(listed.stdout.starts_with("2 live of 2"), "{listed:?}");
    for name in ["default", "worker"] {
        assert!(
            listed
                .stdout
                .lines()
                .any(|l| l.trim_start().starts_with(name) && l.contains("1 turn ·")),
            "{name}: {listed:?}"
        );
    }
    let status = run(cli(home.path(), &["status"]), None).await;
    assert!(status.stdout.contains("sessions:"), "{status:?}");
    assert!(status.stdout.contains("    worker "), "{status:?}");
    let closed = run(cli(home.path(), &["sessions", "--close", "worker"]), None).await;
    assert_eq!(closed.code, 0, "{closed:?}");
    assert!(closed.stdout.starts_with("1 live of 2"), "{closed:?}");
    let restarted = run(cli(home.path(), &["restart"]), None).await;
    assert_eq!(restarted.code, 0, "{restarted:?}");
    assert!(
        restarted.stderr.contains("restarting Claude Code (pid"),
        "{restarted:?}"
    );
    assert_eq!(run(cli(home.path(), &["stop"]), None).await.code, 0);
}

#[tokio::test]
async fn doctor_checks_a_first_run_and_says_what_to_do() {
    let home = TempDir::new("doctor");
    let fine = run(cli(home.path(), &["doctor"]), None).await;
    assert_eq!(fine.code, 0, "{fine:?}");
    let line = |out: &str, what: &str| {
        out.lines()
            .find(|l| l[5..].starts_with(what))
            .unwrap_or_else(|| panic!("no {what} line: {out}"))
            .to_string()
    };
    assert!(
        line(&fine.stdout, "claude").starts_with("ok   claude       2.1.332 (Claude Code) at ")
    );
    assert!(line(&fine.stdout, "hosts").starts_with("warn"), "{fine:?}");
    assert!(line(&fine.stdout, "daemon").contains("none for this project"));
    start(home.path()).await;
    std::fs::write(
        home.path().join(".claude.json"),
        r#"{"mcpServers":{"claude-coded":{"command":"claude-coded"}}}"#,
    )
    .unwrap();
    let running = run(cli(home.path(), &["doctor"]), None).await;
    assert!(
        line(&running.stdout, "daemon").contains("running (pid"),
        "{running:?}"
    );
    assert!(
        line(&running.stdout, "hosts").contains("registered in Claude Code ("),
        "{running:?}"
    );
    assert_eq!(run(cli(home.path(), &["stop"]), None).await.code, 0);
    let broken = run(
        cli(
            home.path(),
            &["doctor", "--claude-bin", "/nonexistent/claude"],
        ),
        None,
    )
    .await;
    assert_eq!(broken.code, 1, "{broken:?}");
    assert!(
        line(&broken.stdout, "claude").starts_with("FAIL"),
        "{broken:?}"
    );
}

/// `start` hands the daemon its configuration as `CLAUDE_CODED_*` variables; the agent,
/// which can print its environment, saw them all, `--listen-token` included.
#[tokio::test]
async fn the_agent_sees_none_of_claude_codeds_settings_in_its_environment() {
    let home = TempDir::new("child-env");
    let record = home.path().join("double-starts.jsonl");
    let token = "a-listen-token-of-the-owner-0123456789";
    let mut command = cli(
        home.path(),
        &[
            "start",
            "--listen",
            "127.0.0.1:0",
            "--listen-token",
            token,
            "--queue-size",
            "7",
        ],
    );
    command
        .env("DOUBLE_RECORD", &record)
        .env("CLAUDE_CODED_TURN_TIMEOUT_MS", "90000");
    let started = run(command, None).await;
    assert_eq!(started.code, 0, "{started:?}");
    let line = std::fs::read_to_string(&record).unwrap();
    let start: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let env = start["env"].as_object().unwrap();
    let ours: Vec<&String> = env
        .keys()
        .filter(|k| k.starts_with("CLAUDE_CODED_"))
        .collect();
    // The nesting facts, and the guard's tree mark (two pids: what the portable sweep
    // finds the agent's orphaned tool processes by); none of our settings.
    assert_eq!(
        ours,
        [
            "CLAUDE_CODED_DAEMON_ID",
            "CLAUDE_CODED_DEPTH",
            "CLAUDE_CODED_DEPTH_LIMIT",
            "CLAUDE_CODED_TREE"
        ],
        "{env:?}"
    );
    let mark = env["CLAUDE_CODED_TREE"].as_str().unwrap();
    assert!(
        mark.split('-').all(|pid| pid.parse::<u32>().is_ok()),
        "{mark}"
    );
    assert!(!line.contains(token), "the token reached the agent: {line}");
    assert_eq!(run(cli(home.path(), &["stop"]), None).await.code, 0);
}

#[tokio::test]
async fn a_stale_socket_left_by_a_killed_daemon_is_detected_and_replaced() {
    let home = TempDir::new("stale");
    let pid = start(home.path()).await;
    // Once it has written its state, as a daemon that ran for a while has.
    let state_file = home.path().join("state/daemon-state.json");
    let deadline = Instant::now() + test_support::READ_TIMEOUT;
    while !state_file.exists() {
        assert!(Instant::now() < deadline, "the daemon wrote no state");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SAFETY: kill(2) on the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    assert!(wait_gone(pid as i32, Duration::from_secs(5)).await);
    let socket = socket_path(&home.path().join("state"));
    assert!(socket.exists(), "SIGKILL leaves the socket behind");
    // Nobody answers there: status falls back to the file and says so, and does not
    // call a killed daemon running.
    let status = run(cli(home.path(), &["status"]), None).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert!(
        status.stderr.contains("no claude-coded answers"),
        "{status:?}"
    );
    assert!(
        status.stderr.contains(&format!("(pid {pid}) is gone")),
        "{status:?}"
    );
    assert!(status.stdout.contains(", gone)"), "{status:?}");
    assert!(!status.stdout.contains("running"), "{status:?}");
    let saved = run(cli(home.path(), &["status", "--json"]), None).await;
    let saved: Value = serde_json::from_str(&saved.stdout).unwrap();
    assert_eq!(saved["daemon"]["state"], "gone");
    assert_eq!(saved["child"]["status"], "stopped");
    // ask does not hang on it: it runs a daemon of its own for the call.
    let asked = run(cli(home.path(), &["ask", "-q", "hello"]), None).await;
    assert_eq!(
        (asked.code, asked.stdout.as_str()),
        (0, "mock reply #1 to: hello\n"),
        "{asked:?}"
    );
    // A new daemon replaces the socket and answers on it.
    let new_pid = start(home.path()).await;
    assert_ne!(new_pid, pid);
    let mut client = SocketClient::connect(&socket).await;
    assert_eq!(client.ask_ok("hi").await["ok"], true);
    let events = client.call("events", json!({"limit": 1000})).await;
    assert!(
        events["result"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "socket.listening")
    );
    assert_eq!(run(cli(home.path(), &["stop"]), None).await.code, 0);
}

#[tokio::test]
async fn a_state_dir_too_long_for_a_socket_address_still_gets_its_socket() {
    let home = TempDir::new("long");
    // Hosts' sandboxes and deep homes make paths past the 107 bytes an address holds.
    let state = home.path().join("d".repeat(100)).join("state");
    let socket = socket_path(&state);
    assert!(socket.as_os_str().len() > 107);
    let with_state = |args: &[&str]| {
        let mut command = cli(home.path(), args);
        command.env("CLAUDE_CODED_STATE_DIR", &state);
        command
    };
    let started = run(with_state(&["start"]), None).await;
    assert_eq!(started.code, 0, "{started:?}");
    assert_eq!(mode(&socket), 0o600);
    let asked = run(with_state(&["ask", "hello"]), None).await;
    assert_eq!(asked.code, 0, "{asked:?}");
    assert!(
        asked.stderr.contains("asking claude-coded (pid"),
        "{asked:?}"
    );
    let status = run(with_state(&["status", "--json"]), None).await;
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        status["daemon"]["socket"],
        json!(socket.display().to_string())
    );
    assert_eq!(status["daemon"]["socketError"], Value::Null);
    assert_eq!(run(with_state(&["stop"]), None).await.code, 0);
    assert!(!socket.exists());
}

#[tokio::test]
async fn ask_prints_the_answer_on_stdout_and_each_step_on_a_line_of_stderr() {
    let home = TempDir::new("ask");
    let out = run(cli(home.path(), &["ask", "MULTI"]), None).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "multi text 1multi text 2\n");
    let steps: Vec<&str> = out.stderr.lines().collect();
    // Not a terminal: plain lines, each with the time since the start.
    assert!(
        steps
            .iter()
            .all(|l| l.starts_with('[') && l.contains("s] ")),
        "{steps:?}"
    );
    assert!(
        steps.iter().any(|l| l.contains("starting Claude Code")),
        "{steps:?}"
    );
    assert!(steps.iter().any(|l| l.contains("thinking")), "{steps:?}");
    assert!(
        steps.iter().any(|l| l.contains("result: success")),
        "{steps:?}"
    );
    let quiet = run(cli(home.path(), &["ask", "-q", "hello"]), None).await;
    assert_eq!((quiet.code, quiet.stderr.as_str()), (0, ""), "{quiet:?}");
}

#[tokio::test]
async fn ask_reads_the_prompt_from_a_pipe_or_from_a_dash_among_the_words() {
    let home = TempDir::new("ask-stdin");
    let piped = run(cli(home.path(), &["ask", "-q"]), Some("from the pipe\n")).await;
    assert_eq!(
        piped.stdout, "mock reply #1 to: from the pipe\n",
        "{piped:?}"
    );
    let dash = run(
        cli(home.path(), &["ask", "-q", "review", "-", "please"]),
        Some("THIS"),
    )
    .await;
    assert_eq!(
        dash.stdout, "mock reply #1 to: review\nTHIS\nplease\n",
        "{dash:?}"
    );
    // Words without a dash leave stdin alone (a `while read` loop keeps its input).
    let words = run(
        cli(home.path(), &["ask", "-q", "only", "words"]),
        Some("unread"),
    )
    .await;
    assert_eq!(words.stdout, "mock reply #1 to: only words\n", "{words:?}");
}

#[tokio::test]
async fn ask_json_prints_the_whole_result_or_the_error() {
    let home = TempDir::new("ask-json");
    let out = run(cli(home.path(), &["ask", "--json", "-q", "hello"]), None).await;
    let result: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(result["ok"], true);
    assert_eq!(result["result"], "mock reply #1 to: hello");
    assert!(result["sessionId"].is_string());
    let failed = run(
        cli(
            home.path(),
            &[
                "ask",
                "--json",
                "-q",
                "--timeout",
                "300ms",
                "--interrupt-grace-ms",
                "100",
                "HANG",
            ],
        ),
        None,
    )
    .await;
    assert_eq!(failed.code, 3, "{failed:?}");
    let error: Value = serde_json::from_str(&failed.stdout).unwrap();
    assert_eq!(error["error"]["code"], -32001, "{error}");
}

#[tokio::test]
async fn ask_exit_statuses_tell_failure_timeout_unavailable_usage_and_nesting_apart() {
    let home = TempDir::new("ask-exit");
    let ask = |args: &[&str]| cli(home.path(), &[&["ask", "-q"], args].concat());
    let failed = run(ask(&["ERR400"]), None).await;
    assert_eq!(failed.code, 1, "{failed:?}");
    // One line that says why, as a person reads it: no log lines, no "success".
    assert_eq!(
        failed.stderr, "claude-coded ask: the turn failed: API error 400: mock 400\n",
        "{failed:?}"
    );
    assert_eq!(failed.stdout, "");
    let started = Instant::now();
    let timeout = run(
        ask(&["--timeout", "300ms", "--interrupt-grace-ms", "100", "HANG"]),
        None,
    )
    .await;
    assert_eq!(timeout.code, 3, "{timeout:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let missing = run(ask(&["--claude-bin", "/nonexistent/claude", "hello"]), None).await;
    assert_eq!(missing.code, 4, "{missing:?}");
    assert_eq!(missing.stderr.lines().count(), 1, "said once: {missing:?}");
    assert!(
        missing.stderr.contains("cannot find the Claude Code CLI"),
        "{missing:?}"
    );
    let crashed = run(ask(&["CRASH 7"]), None).await;
    assert_eq!(crashed.code, 1, "{crashed:?}");
    for usage in [
        &["  "][..],
        &["--timeout", "soon", "hi"],
        &["--no-such-flag", "hi"],
    ] {
        let out = run(ask(usage), None).await;
        assert_eq!(out.code, 2, "{usage:?}: {out:?}");
    }
    let mut nested = ask(&["hello"]);
    nested.env("CLAUDE_CODED_DEPTH", "1");
    let nested = run(nested, None).await;
    assert_eq!(nested.code, 4, "{nested:?}");
    assert!(nested.stderr.contains("depth 1"), "{nested:?}");
}

#[tokio::test]
async fn ask_uses_the_running_daemon_and_its_session() {
    let mut bridge = Bridge::start();
    let on_stdio = bridge.ask_ok("hello").await;
    bridge
        .wait_status("the socket", |s| s["daemon"]["socket"].is_string())
        .await;
    let out = run(
        cli(bridge.dir.path(), &["ask", "--json", "-q", "from a script"]),
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let result: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(result["sessionId"], on_stdio["sessionId"]);
    assert_eq!(result["result"], "mock reply #2 to: from a script");
    let status = bridge.status().await;
    assert_eq!(status["totals"]["turnsOk"], 2);
    // --model and --permission-mode are this ask's own, within the daemon's ceiling.
    let own = [
        "ask",
        "--permission-mode",
        "plan",
        "--model",
        "per-ask-model",
        "hi",
    ];
    let own = run(cli(bridge.dir.path(), &own), None).await;
    assert_eq!(own.code, 0, "{own:?}");
    assert!(
        own.stderr.contains("turn started (per-ask-model)"),
        "{own:?}"
    );
    let above = ["ask", "-q", "--permission-mode", "bypassPermissions", "hi"];
    let above = run(cli(bridge.dir.path(), &above), None).await;
    assert_eq!(above.code, 2, "{above:?}");
    assert!(above.stderr.contains("ceiling"), "{above:?}");
}

#[tokio::test]
async fn ask_session_names_its_own_conversation_in_the_running_daemon() {
    let mut bridge = Bridge::start();
    let on_stdio = bridge.ask_ok("hello").await;
    bridge
        .wait_status("the socket", |s| s["daemon"]["socket"].is_string())
        .await;
    let args = ["ask", "--json", "-q", "--session", "review", "look"];
    let first = run(cli(bridge.dir.path(), &args), None).await;
    assert_eq!(first.code, 0, "{first:?}");
    let first: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(first["session"], "review");
    assert_ne!(first["sessionId"], on_stdio["sessionId"]);
    let again = run(cli(bridge.dir.path(), &args), None).await;
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again["sessionId"], first["sessionId"]);
    let fresh = [
        "ask",
        "--json",
        "-q",
        "--session",
        "review",
        "--new-session",
        "x",
    ];
    let fresh = run(cli(bridge.dir.path(), &fresh), None).await;
    let fresh: Value = serde_json::from_str(&fresh.stdout).unwrap();
    assert_ne!(fresh["sessionId"], first["sessionId"]);
    let bad = ["ask", "-q", "--session", "no spaces", "x"];
    let bad = run(cli(bridge.dir.path(), &bad), None).await;
    assert_eq!(bad.code, 2, "{bad:?}");
}

#[tokio::test]
async fn start_hands_the_daemon_exactly_the_configuration_it_resolved() {
    let home = TempDir::new("start-config");
    let flags = [
        "--queue-size",
        "3",
        "--permission-mode",
        "plan",
        "--permission-ceiling",
        "acceptEdits",
        "--allow-tool",
        "Bash(git diff:*)",
        "--deny-tool",
        "Write",
        "--claude-arg",
        "--verbose",
        "--model",
        "some-model",
        "--turn-timeout-ms",
        "1234",
    ];
    let resolved = run(cli(home.path(), &[&["config"][..], &flags].concat()), None).await;
    let mut expected: Value = serde_json::from_str(&resolved.stdout).unwrap();
    let started = run(cli(home.path(), &[&["start"][..], &flags].concat()), None).await;
    assert_eq!(started.code, 0, "{started:?}");
    let mut client = SocketClient::connect(&socket_path(&home.path().join("state"))).await;
    let mut running = client.call("status", json!({})).await["result"]["config"].clone();
    // The file it was given, if any, is the one thing passed as a path.
    for config in [&mut expected, &mut running] {
        config.as_object_mut().unwrap().remove("configFile");
    }
    assert_eq!(running, expected);
    assert_eq!(run(cli(home.path(), &["stop"]), None).await.code, 0);
}

#[tokio::test]
async fn status_and_events_read_the_live_daemon_then_the_files() {
    let mut bridge = Bridge::start_with(Options::default());
    bridge.ask_ok("hello").await;
    bridge
        .wait_status("the socket", |s| s["daemon"]["socket"].is_string())
        .await;
    let live = run(cli(bridge.dir.path(), &["status", "--json"]), None).await;
    let status: Value = serde_json::from_str(&live.stdout).unwrap();
    assert_eq!(status["daemon"]["state"], "running");
    assert_eq!(status["daemon"]["pid"], bridge.pid());
    let events = run(cli(bridge.dir.path(), &["events", "-n", "100"]), None).await;
    assert!(events.stdout.contains("turn.finished"), "{events:?}");
    assert!(events.stdout.contains("socket.listening"), "{events:?}");
    assert_eq!(bridge.close_and_wait().await, 0);
    let stored = run(cli(bridge.dir.path(), &["status", "--json"]), None).await;
    let status: Value = serde_json::from_str(&stored.stdout).unwrap();
    assert_eq!(status["daemon"]["state"], "stopped");
    let logged = run(
        cli(bridge.dir.path(), &["events", "--json", "-n", "3"]),
        None,
    )
    .await;
    let last: Vec<Value> = logged
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(last.len(), 3, "{logged:?}");
    assert_eq!(last[2]["type"], "daemon.stopped");
}

#[tokio::test]
async fn events_follow_shows_each_sessions_steps_tagged_with_the_session() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let home = TempDir::new("follow-steps");
    let started = run(cli(home.path(), &["start"]), None).await;
    assert_eq!(started.code, 0, "{started:?}");
    let mut follow = cli(home.path(), &["events", "--follow", "-n", "1"]);
    follow
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut follower = follow.spawn().unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    // The latest event comes first: from then on the follower is following.
    let latest = tokio::time::timeout(test_support::READ_TIMEOUT, lines.next_line()).await;
    assert!(matches!(latest, Ok(Ok(Some(_)))), "{latest:?}");
    let asked = run(
        cli(
            home.path(),
            &["ask", "-q", "--session", "docs", "RUN_TOOL echo hi"],
        ),
        None,
    )
    .await;
    assert_eq!(asked.code, 0, "{asked:?}");
    let mut seen = Vec::new();
    loop {
        let line = tokio::time::timeout(test_support::READ_TIMEOUT, lines.next_line())
            .await
            .expect("events --follow printed nothing more")
            .unwrap()
            .expect("events --follow ended");
        let finished = line.contains("turn.finished");
        seen.push(line);
        if finished {
            break;
        }
    }
    let step = |words: &str| {
        seen.iter()
            .any(|l| l.contains("turn.step [docs]") && l.contains(words))
    };
    assert!(step("tool use: Bash"), "{seen:#?}");
    assert!(step("assistant: "), "{seen:#?}");
    assert!(
        seen.iter().any(|l| l.contains("turn.finished [docs]")),
        "{seen:#?}"
    );
    follower.start_kill().unwrap();
    assert_eq!(run(cli(home.path(), &["stop"]), None).await.code, 0);
}
