//! What the tests with the real Claude Code CLI share: where it is, what keeps it offline,
//! the check that CI does not skip them, and [`Real`]: claude-coded over the real CLI on a
//! mock Messages API, in a sandbox of its own (`e2e_real_cli`, `e2e_real_cli_sessions`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mock_api::MockApi;
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

use crate::bridge::{Bridge, Options, READ_TIMEOUT};
use crate::proc_info;
use crate::temp_dir::TempDir;

/// One real CLI (or real CLI tree) at a time in the test process: the CLI takes ~0.5 s and
/// ~200 MB to start, two would share two cores, and the tests that time it must not run
/// beside another CLI starting. A tokio mutex works across the per-test runtimes and is
/// not poisoned by a failing test.
static ONE_REAL_CLI: Mutex<()> = Mutex::const_new(());

/// Waits for the real CLI to be free; hold the guard while the test runs it.
pub async fn one_real_cli() -> MutexGuard<'static, ()> {
    ONE_REAL_CLI.lock().await
}

/// [`one_real_cli`] for a plain `#[test]` (outside any tokio runtime).
pub fn one_real_cli_blocking() -> MutexGuard<'static, ()> {
    ONE_REAL_CLI.blocking_lock()
}

/// `CLAUDE_BIN`, for the tests built with it (`cfg(real_cli)`, see `build.rs`): it must
/// be set when they run too.
pub fn real_cli_bin() -> PathBuf {
    let bin = std::env::var("CLAUDE_BIN").unwrap_or_default();
    assert!(
        Path::new(&bin).is_file(),
        "CLAUDE_BIN={bin:?} is not a file; set CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
    );
    PathBuf::from(bin)
}

/// Fails under `CI=true` or `CI=1` when the real-CLI tests were built without
/// `CLAUDE_BIN` (and so are ignored): CI must not go green by skipping them.
/// `built_to_run` is the test crate's `cfg!(real_cli)` (its `build.rs` sets it; this crate
/// has none).
pub fn assert_real_cli_tests_run_in_ci(built_to_run: bool) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci || built_to_run,
        "CI is set but the real-CLI tests were built without CLAUDE_BIN, so they are \
         ignored; build with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
    );
}

/// What keeps the real CLI offline on a mock API at `base_url`: a dummy key, no
/// telemetry, no update checks (claude-coded passes its environment on to the CLI).
pub fn offline_env(base_url: &str) -> Vec<(String, String)> {
    [
        ("ANTHROPIC_BASE_URL", base_url),
        ("ANTHROPIC_API_KEY", "test-key"),
        ("DISABLE_TELEMETRY", "1"),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("DISABLE_AUTOUPDATER", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// [`offline_env`] for `mock`, with the CLI's own TMPDIR.
pub fn offline_env_in(mock: &MockApi, tmp: &Path) -> Vec<(String, String)> {
    let mut env = offline_env(&mock.base_url());
    env.push(("TMPDIR".into(), tmp.display().to_string()));
    env
}

/// A mock API and claude-coded over the real CLI, in a sandbox of their own; holds the
/// [`one_real_cli`] lock while it lives.
pub struct Real {
    pub bridge: Bridge,
    pub mock: MockApi,
    /// The sandbox: HOME of claude-coded and the CLI (`cwd/`, `tmp/`, `state/` inside).
    pub home: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl Real {
    /// Starts the pair.
    pub async fn start() -> Real {
        Real::start_with(MockApi::start(), |o| o).await
    }

    /// Like [`Real::start`] with this mock and extra claude-coded options.
    pub async fn start_with(mock: MockApi, options: impl FnOnce(Options) -> Options) -> Real {
        let serial = one_real_cli().await;
        let dir = TempDir::new("real-cli");
        let home = dir.path().to_path_buf();
        let bridge = Bridge::start_with(options(real_options(&mock, dir)));
        Real {
            bridge,
            mock,
            home,
            _serial: serial,
        }
    }

    /// Closes claude-coded (stdin EOF), waits for it to exit, and starts it again in the
    /// same sandbox (HOME, cwd, state dir: the CLI finds its saved sessions) with
    /// `options`; returns the first one's exit code.
    pub async fn restart_with(&mut self, options: impl FnOnce(Options) -> Options) -> i32 {
        let code = self.bridge.close_and_wait().await;
        wait_sandbox_idle(&self.home);
        let dir = std::mem::replace(&mut self.bridge.dir, TempDir::new("unused"));
        self.bridge = Bridge::start_with(options(real_options(&self.mock, dir)));
        code
    }

    /// Waits for the warm-up (`initialize` answered) and returns the status.
    pub async fn ready(&mut self) -> Value {
        self.bridge
            .wait_status("the real CLI to be ready", |s| s["child"]["ready"] == true)
            .await
    }

    pub async fn child_pid(&mut self) -> i32 {
        self.pids().await.0
    }

    /// The child's pid and the CLI's own: claude-coded may run the CLI under a guard
    /// process (then `cliPid`, from the warm-up answer, differs from `pid`).
    pub async fn pids(&mut self) -> (i32, i32) {
        let status = self.ready().await;
        let pid = status["child"]["pid"].as_i64().expect("child pid") as i32;
        let cli = status["child"]["cliPid"].as_i64().map_or(pid, |p| p as i32);
        (pid, cli)
    }

    /// All events still in the ring buffer.
    pub async fn events(&mut self) -> Vec<Value> {
        let response = self.bridge.call("events", json!({"limit": 1000})).await;
        response["result"]["events"]
            .as_array()
            .expect("events")
            .clone()
    }

    /// Polls `events` until one of `kind` appears; returns it.
    pub async fn wait_event(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            if let Some(event) = self.events().await.into_iter().find(|e| e["type"] == kind) {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} event within {READ_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// claude-coded over the real CLI in `dir` (its HOME), with a cleared environment plus
/// what keeps the CLI on `mock`.
fn real_options(mock: &MockApi, dir: TempDir) -> Options {
    let bin = real_cli_bin().display().to_string();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("create TMPDIR");
    let mut options = Options::default().claude_bin(&bin).clean_env().dir(dir);
    options.env = offline_env_in(mock, &tmp);
    options
}

impl Drop for Real {
    /// Also on a failing test: the CLI rewrites `$HOME/.claude.json` as it dies, so the
    /// sandbox is removed only once nothing of this test runs any more.
    fn drop(&mut self) {
        let _ = self.bridge.child.start_kill();
        wait_sandbox_idle(&self.home);
    }
}

/// Blocks (up to a few seconds) until no process with `HOME=<home>` is left.
pub fn wait_sandbox_idle(home: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_with_home(home).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Pids of live processes (other than this one) whose environment has `HOME=<home>`:
/// what a leaked claude-coded, CLI or tool process of a test would look like.
pub fn processes_with_home(home: &Path) -> Vec<i32> {
    proc_info::processes_with_env(&format!("HOME={}", home.display()))
        .into_iter()
        .map(|pid| pid as i32)
        .collect()
}

/// SIGKILL to `pid`, which must exist.
pub fn kill(pid: i32) {
    // SAFETY: kill(2) on a pid of the test's own process tree; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill {pid}");
}

/// Reads notifications of the ask `id` until its first `assistant` line: the turn is
/// streaming from the API.
pub async fn wait_streaming(bridge: &mut Bridge, id: &Value) {
    loop {
        let message = bridge.next_message().await;
        assert_ne!(
            message.get("id"),
            Some(id),
            "the turn ended early: {message}"
        );
        if message["params"]["type"] == "assistant" {
            return;
        }
    }
}

/// Waits until the CLI has written the session's transcript under `$HOME/.claude/projects`.
pub async fn wait_for_session_file(home: &Path, session: &str) {
    let name = format!("{session}.jsonl");
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let found = std::fs::read_dir(home.join(".claude/projects"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|project| project.path().join(&name).is_file());
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no session file {name} under {home:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
