//! `claude-coded ask`, `start`, `stop` and `events` with the real Claude Code CLI as the
//! child, offline: the pinned CLI talks to the mock Messages API (`crates/mock-api`) on
//! 127.0.0.1. Run:
//!
//! ```sh
//! CLAUDE_BIN=$(scripts/install-claude-cli.sh) cargo test --test all e2e_real_cli_daemon:: -- --nocapture
//! ```
//!
//! Built without `CLAUDE_BIN` the tests are ignored with the reason (see `build.rs`);
//! under `CI` the first test fails then. Each test has its own mock, HOME, cwd, TMPDIR and
//! state dir, and runs claude-coded with a cleared environment plus what keeps the CLI on
//! loopback; the tests run one real CLI at a time (`test_support::real_cli`), as the CLI
//! is heavy to start.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use mock_api::MockApi;
use serde_json::{Value, json};
use test_support::cli::{Output, SocketClient, run, socket_path};
use test_support::{READ_TIMEOUT, TempDir, proc_info};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::MutexGuard;

#[test]
fn in_ci_the_real_cli_daemon_tests_are_built_to_run() {
    test_support::assert_real_cli_tests_run_in_ci(cfg!(real_cli));
}

/// A mock API and a project sandbox (`HOME` with `cwd/`, `tmp/` and `state/`).
struct Sandbox {
    mock: MockApi,
    dir: TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl Sandbox {
    async fn new() -> Sandbox {
        let serial = test_support::real_cli::one_real_cli().await;
        let dir = TempDir::new("real-daemon");
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::create_dir_all(dir.path().join("cwd")).unwrap();
        Sandbox {
            mock: MockApi::start(),
            dir,
            _serial: serial,
        }
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    fn state(&self) -> PathBuf {
        self.home().join("state")
    }

    /// `claude-coded <args>` in the project, with only `PATH` of the test's environment,
    /// the real CLI, and what keeps it offline.
    fn cli(&self, args: &[&str]) -> Command {
        let mut command = Command::new(test_support::bridge());
        command
            .args(args)
            .current_dir(self.home().join("cwd"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("TMPDIR", self.home().join("tmp"))
            .env("CLAUDE_CODED_STATE_DIR", self.state())
            .envs(test_support::offline_env(&self.mock.base_url()));
        // As a person runs it: no RUST_LOG, unless CLAUDE_CODED_TEST_LOG asks for a log.
        if let Ok(level) = std::env::var("CLAUDE_CODED_TEST_LOG") {
            command.env("RUST_LOG", level);
        }
        if !args.contains(&"--claude-bin") {
            command.env("CLAUDE_CODED_CLAUDE_BIN", test_support::real_cli_bin());
        }
        command
    }

    async fn run(&self, args: &[&str], stdin: Option<&str>) -> (Output, Duration) {
        let started = Instant::now();
        let output = run(self.cli(args), stdin).await;
        (output, started.elapsed())
    }

    /// `start`, then waits until the daemon's CLI is warm; returns the daemon's status.
    async fn start(&self) -> Value {
        self.start_with(&[], &[]).await
    }

    /// [`Sandbox::start`] with more flags, and variables for the daemon (and its CLI).
    async fn start_with(&self, flags: &[&str], env: &[(&str, &str)]) -> Value {
        let mut start = self.cli(&[&["start"], flags].concat());
        start.envs(env.iter().copied());
        let started = run(start, None).await;
        assert_eq!(started.code, 0, "{started:?}");
        let mut client = SocketClient::connect(&socket_path(&self.state())).await;
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            let status = client.call("status", json!({})).await["result"].clone();
            if status["child"]["ready"] == true {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon's CLI did not warm up: {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(&self) {
        let (stopped, _) = self.run(&["stop"], None).await;
        assert_eq!(stopped.code, 0, "{stopped:?}");
        assert!(stopped.stderr.contains("stopped (pid"), "{stopped:?}");
    }

    /// Processes of this sandbox still running (its daemon, CLI, guard, tools).
    fn processes(&self) -> Vec<u32> {
        proc_info::processes_with_env(&format!("HOME={}", self.home().display()))
    }

    /// Waits (a few seconds at most) until no process of the sandbox is left.
    async fn assert_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.processes().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            self.processes(),
            Vec::<u32>::new(),
            "processes of the sandbox left"
        );
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for pid in self.processes() {
            // SAFETY: kill(2) on a process of this test's sandbox.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn ask_without_a_daemon_runs_a_cli_for_the_call_and_leaves_no_process() {
    let sandbox = Sandbox::new().await;
    let (out, took) = sandbox.run(&["ask", "hello"], None).await;
    eprintln!("claude-coded ask without a daemon: {took:?}");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "mock reply #1 to: hello\n");
    assert!(out.stderr.contains("starting Claude Code"), "{out:?}");
    assert!(out.stderr.contains("result: success"), "{out:?}");
    let requests = sandbox.mock.messages_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("x-api-key"), Some("test-key"));
    sandbox.assert_idle().await;
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn after_start_three_asks_share_one_warm_cli_and_session_and_stop_leaves_nothing() {
    let sandbox = Sandbox::new().await;
    let (cold, cold_took) = sandbox.run(&["ask", "-q", "cold"], None).await;
    assert_eq!(cold.code, 0, "{cold:?}");
    let status = sandbox.start().await;
    let cli_pid = status["child"]["pid"].clone();
    let (first, first_took) = sandbox.run(&["ask", "-q", "one"], None).await;
    let (second, second_took) = sandbox.run(&["ask", "-q"], Some("two, from stdin")).await;
    let (third, third_took) = sandbox.run(&["ask", "-q", "--json", "three"], None).await;
    eprintln!(
        "claude-coded ask: without a daemon {cold_took:?}; with one {first_took:?}, {second_took:?}, {third_took:?}"
    );
    assert_eq!(first.stdout, "mock reply #2 to: one\n", "{first:?}");
    assert_eq!(
        second.stdout, "mock reply #3 to: two, from stdin\n",
        "{second:?}"
    );
    let third: Value = serde_json::from_str(&third.stdout).unwrap();
    assert_eq!(third["result"], "mock reply #4 to: three");
    // One conversation: the third request carries the two exchanges before it.
    let requests = sandbox.mock.messages_requests();
    let messages = requests.last().unwrap().body["messages"].to_string();
    assert!(messages.contains("mock reply #2 to: one"), "{messages}");
    assert!(messages.contains("two, from stdin"), "{messages}");
    let mut client = SocketClient::connect(&socket_path(&sandbox.state())).await;
    let status = client.call("status", json!({})).await["result"].clone();
    assert_eq!(
        status["child"]["pid"], cli_pid,
        "the same warm CLI answered all three"
    );
    assert_eq!(status["child"]["sessionId"], third["sessionId"]);
    assert_eq!(status["totals"]["turnsOk"], 3);
    // Each of them faster than the ask that had to start a CLI.
    for took in [first_took, second_took, third_took] {
        assert!(
            took < cold_took,
            "{took:?} is not faster than {cold_took:?} without a daemon"
        );
    }
    drop(client);
    sandbox.stop().await;
    assert!(!socket_path(&sandbox.state()).exists());
    sandbox.assert_idle().await;
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn ask_exit_statuses_with_the_real_cli_with_and_without_a_daemon() {
    let sandbox = Sandbox::new().await;
    let statuses = async |label: &str| {
        let (failed, _) = sandbox.run(&["ask", "-q", "ERR400"], None).await;
        assert_eq!(failed.code, 1, "{label}: {failed:?}");
        assert!(failed.stderr.contains("400"), "{label}: {failed:?}");
        assert!(!failed.stderr.contains("success"), "{label}: {failed:?}");
        let slow = ["ask", "-q", "--timeout", "1s", "SLOW ms=300 chunks=100"];
        let (timeout, took) = sandbox.run(&slow, None).await;
        assert_eq!(timeout.code, 3, "{label}: {timeout:?}");
        assert!(took < Duration::from_secs(15), "{label}: {took:?}");
        let (usage, _) = sandbox.run(&["ask", "-q", "   "], None).await;
        assert_eq!(usage.code, 2, "{label}: {usage:?}");
    };
    statuses("without a daemon").await;
    sandbox.start().await;
    statuses("through the daemon").await;
    // The daemon's CLI lived through both failures.
    let mut client = SocketClient::connect(&socket_path(&sandbox.state())).await;
    let status = client.call("status", json!({})).await["result"].clone();
    assert_eq!(status["child"]["restartCount"], 0, "{status}");
    drop(client);
    sandbox.stop().await;
    let (unavailable, _) = sandbox
        .run(
            &["ask", "-q", "--claude-bin", "/nonexistent/claude", "hello"],
            None,
        )
        .await;
    assert_eq!(unavailable.code, 4, "{unavailable:?}");
    sandbox.assert_idle().await;
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn the_real_agents_own_bash_finds_neither_the_http_token_nor_our_settings_in_its_environment()
{
    let sandbox = Sandbox::new().await;
    let status = sandbox
        .start_with(
            &[
                "--listen",
                "127.0.0.1:0",
                "--allow-tool",
                "Bash",
                "--turn-timeout-ms",
                "60000",
            ],
            &[],
        )
        .await;
    let token_file = status["daemon"]["listenTokenFile"]
        .as_str()
        .unwrap_or_else(|| panic!("no token file in {status}"));
    let token = std::fs::read_to_string(token_file).unwrap();
    let token = token.trim();
    assert!(token.len() >= 32, "{token}");
    // The agent's own Bash looks through its environment for ours and for the token (the
    // mock echoes the start of a tool's output back as the answer, so the command keeps
    // its output short: the lines of ours, and how many lines hold the token).
    let command = format!("RUN_TOOL env | grep CLAUDE_CODED_; env | grep -c {token}");
    let (asked, _) = sandbox.run(&["ask", "-q", &command], None).await;
    assert_eq!(asked.code, 0, "{asked:?}");
    let seen = &asked.stdout;
    assert!(seen.contains("is_error=False"), "{asked:?}");
    assert!(
        seen.contains("CLAUDE_CODED_DEPTH=1"),
        "the env did not run: {seen}"
    );
    assert!(
        seen.trim_end().ends_with("\n0"),
        "the agent found the HTTP token: {seen}"
    );
    let ours: Vec<&str> = seen
        .split_whitespace()
        .filter(|w| w.starts_with("CLAUDE_CODED_"))
        .filter_map(|w| w.split('=').next())
        .collect();
    for name in &ours {
        assert!(
            [
                "CLAUDE_CODED_DAEMON_ID",
                "CLAUDE_CODED_DEPTH",
                "CLAUDE_CODED_DEPTH_LIMIT",
                "CLAUDE_CODED_TREE"
            ]
            .contains(name),
            "{name} reached the agent: {seen}"
        );
    }
    sandbox.stop().await;
    sandbox.assert_idle().await;
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn events_follow_sees_the_turn_of_another_process() {
    let sandbox = Sandbox::new().await;
    sandbox.start().await;
    let mut follow = sandbox.cli(&["events", "--follow", "--json", "-n", "1"]);
    follow
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut follower = follow.spawn().unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    // The latest event comes first: from then on the follower is following.
    let latest = tokio::time::timeout(READ_TIMEOUT, lines.next_line()).await;
    assert!(matches!(latest, Ok(Ok(Some(_)))), "{latest:?}");
    let (asked, _) = sandbox
        .run(&["ask", "-q", "seen by the follower"], None)
        .await;
    assert_eq!(asked.code, 0, "{asked:?}");
    let mut seen = Vec::new();
    let finished = loop {
        let line = tokio::time::timeout(READ_TIMEOUT, lines.next_line())
            .await
            .expect("events --follow printed nothing more")
            .unwrap()
            .expect("events --follow ended");
        let event: Value = serde_json::from_str(&line).unwrap();
        seen.push(event["type"].as_str().unwrap_or_default().to_string());
        if event["type"] == "turn.finished" {
            break event;
        }
    };
    assert!(seen.contains(&"turn.started".to_string()), "{seen:?}");
    assert_eq!(finished["detail"]["ok"], true, "{finished}");
    follower.start_kill().unwrap();
    sandbox.stop().await;
    sandbox.assert_idle().await;
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn a_stale_socket_from_a_killed_daemon_is_detected_and_replaced() {
    let sandbox = Sandbox::new().await;
    let status = sandbox.start().await;
    let pid = status["daemon"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) on the daemon of this test's sandbox.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    // Its guard takes the CLI down with it; the socket file stays.
    sandbox.assert_idle().await;
    let socket = socket_path(&sandbox.state());
    assert!(socket.exists());
    let (asked, _) = sandbox.run(&["ask", "-q", "after the kill"], None).await;
    assert_eq!(asked.code, 0, "{asked:?}");
    assert!(asked.stdout.ends_with("to: after the kill\n"), "{asked:?}");
    let status = sandbox.start().await;
    assert_ne!(status["daemon"]["pid"], json!(pid));
    let (again, _) = sandbox
        .run(&["ask", "-q", "through the new daemon"], None)
        .await;
    assert_eq!(again.code, 0, "{again:?}");
    sandbox.stop().await;
    sandbox.assert_idle().await;
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn an_agents_ask_to_its_own_busy_session_is_refused_at_once_and_to_another_runs() {
    // Issue 21, 4b: from the agent's Bash tool, `claude-coded ask` reached its own daemon
    // and queued behind the turn that waited for it. Depth 2 lets the agent's
    // `claude-coded ask` through its own nesting check, as a user who allows delegation
    // would; a hand-made socket client skips that check anyway.
    let sandbox = Sandbox::new().await;
    let flags = ["--max-depth", "2", "--permission-mode", "bypassPermissions"];
    // The CLI refuses to bypass permissions as root outside a sandbox.
    sandbox.start_with(&flags, &[("IS_SANDBOX", "1")]).await;
    let ask = format!(
        "CLAUDE_CODED_STATE_DIR={state} CLAUDE_CODED_MAX_DEPTH=2 timeout 8 {bin} ask -q",
        state = sandbox.state().display(),
        bin = test_support::bridge().display()
    );
    // The mock echoes only the start of the tool's output: short facts, and the
    // refusal's key words picked out of it.
    let tool = format!(
        "S=$(date +%s%N); E=$({ask} inner 2>&1); echo self-exit=$? \
         ms=$((($(date +%s%N)-S)/1000000)); echo \"$E\" | grep -o 'would wait on that turn'; \
         echo \"$E\" | grep -o -- '--session NAME'; \
         {ask} --session other elsewhere 2>&1 | grep -o 'to: elsewhere'; echo other-exit=$?"
    );
    let started = Instant::now();
    let (outer, _) = sandbox
        .run(&["ask", "-q", &format!("RUN_TOOL {tool}")], None)
        .await;
    eprintln!(
        "the agent's two asks took {:?}: {outer:?}",
        started.elapsed()
    );
    assert_eq!(outer.code, 0, "{outer:?}");
    let text = &outer.stdout;
    assert!(
        !text.contains("self-exit=124"),
        "it waited on itself: {text}"
    );
    assert!(text.contains("self-exit=2 "), "{text}");
    assert!(text.contains("would wait on that turn"), "{text}");
    assert!(text.contains("--session NAME"), "{text}");
    let ms: u64 = text
        .split("ms=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no time in {text}"));
    assert!(ms < 5000, "refused at once, not after {ms} ms");
    // Another, idle session is the agent's to ask.
    assert!(text.contains("to: elsewhere"), "{text}");
    sandbox.stop().await;
    sandbox.assert_idle().await;
}
