//! The harness that runs the real `claude-coded` binary (with the CLI double as its child,
//! unless told otherwise) and talks to it over pipes, with a timeout on every read.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::bins::double;
use crate::temp_dir::TempDir;

/// Upper bound for any single read; generous so a loaded CI machine does not flake.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A running bridge with its pipes.
pub struct Bridge {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Lines<BufReader<ChildStdout>>,
    pub dir: TempDir,
    next_id: u64,
    /// Responses read while another was awaited: answers to different requests come in
    /// any order, so each is kept until [`Bridge::response_for`] asks for it.
    answered: Vec<Value>,
}

/// How to start a bridge.
#[derive(Default)]
pub struct Options {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Reuse this directory (for state across restarts); otherwise a fresh one.
    pub dir: Option<TempDir>,
    /// The child program given as `--claude-bin` (default: the CLI double).
    pub claude_bin: Option<String>,
    /// Start claude-coded with only `PATH` from the test's environment (plus `HOME`,
    /// `RUST_LOG` and `env`): claude-coded passes its environment on to the child, and a
    /// real CLI must not see the developer's API keys, proxies or `CLAUDE_*` settings.
    pub clean_env: bool,
    /// Run this copy of claude-coded instead of the one cargo built.
    pub bridge: Option<PathBuf>,
    /// Send claude-coded's stderr to this file instead of the test's stderr.
    pub stderr_file: Option<PathBuf>,
    /// Pipe claude-coded's stderr and never read it, as Gemini CLI does without
    /// `--debug` (the pipe stays open, unread, in `Bridge::child.stderr`).
    pub stderr_unread: bool,
    /// No `--claude-bin`: claude-coded finds `claude` itself (PATH, the installers' places).
    pub find_claude: bool,
}

impl Options {
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn claude_bin(mut self, path: &str) -> Self {
        self.claude_bin = Some(path.to_string());
        self
    }

    pub fn clean_env(mut self) -> Self {
        self.clean_env = true;
        self
    }

    pub fn dir(mut self, dir: TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    pub fn find_claude(mut self) -> Self {
        self.find_claude = true;
        self
    }
}

impl Bridge {
    /// A bridge over the double with a fresh state dir and cwd.
    pub fn start() -> Bridge {
        Bridge::start_with(Options::default())
    }

    pub fn start_with(mut options: Options) -> Bridge {
        let dir = options.dir.take().unwrap_or_else(|| TempDir::new("bridge"));
        let mut command = bridge_command(dir.path(), &options);
        let stderr = match &options.stderr_file {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create stderr file")),
            None if options.stderr_unread => Stdio::piped(),
            None => Stdio::inherit(),
        };
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn claude-coded");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Bridge {
            child,
            stdin,
            stdout,
            dir,
            next_id: 1,
            answered: Vec::new(),
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn cwd(&self) -> PathBuf {
        self.dir.path().join("cwd")
    }

    /// Writes one raw line (a newline is added).
    pub async fn send_raw(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line).await.expect("write");
        stdin.write_all(b"\n").await.expect("write newline");
        stdin.flush().await.expect("flush");
    }

    /// Sends a request and returns its id.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = json!(self.next_id);
        self.next_id += 1;
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(line.to_string().as_bytes()).await;
        id
    }

    /// Reads the next stdout line as written; panics on timeout or EOF.
    pub async fn next_line(&mut self) -> String {
        tokio::time::timeout(READ_TIMEOUT, self.stdout.next_line())
            .await
            .expect("timed out waiting for a line from claude-coded")
            .expect("read stdout")
            .expect("claude-coded closed stdout")
    }

    /// Reads the next stdout line as JSON; panics on timeout, EOF or non-JSON output.
    pub async fn next_message(&mut self) -> Value {
        let line = tokio::time::timeout(READ_TIMEOUT, self.stdout.next_line())
            .await
            .expect("timed out waiting for a line from claude-coded")
            .expect("read stdout")
            .expect("claude-coded closed stdout");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("non-JSON on stdout ({e}): {line}"))
    }

    /// Reads until the response with `id`, returning it and the messages seen before it.
    /// A response to another request read on the way is kept for its own call (it is in
    /// the messages too); one read earlier that way is returned at once, with none.
    pub async fn response_for(&mut self, id: &Value) -> (Value, Vec<Value>) {
        let is_response = |m: &Value| m.get("id").is_some() && m.get("method").is_none();
        if let Some(at) = self.answered.iter().position(|m| m.get("id") == Some(id)) {
            return (self.answered.remove(at), Vec::new());
        }
        let mut notes = Vec::new();
        loop {
            let message = self.next_message().await;
            if is_response(&message) {
                if message.get("id") == Some(id) {
                    return (message, notes);
                }
                self.answered.push(message.clone());
            }
            notes.push(message);
        }
    }

    /// Sends a request and waits for its response.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.request(method, params).await;
        self.response_for(&id).await.0
    }

    /// `ask` and the result object (panics on a JSON-RPC error).
    pub async fn ask_ok(&mut self, prompt: &str) -> Value {
        let response = self.call("ask", json!({ "prompt": prompt })).await;
        match response.get("result") {
            Some(result) => result.clone(),
            None => panic!("ask {prompt:?} failed: {response}"),
        }
    }

    /// Sends an `ask` to the named session and returns its id (the answer is read later).
    pub async fn ask_in(&mut self, session: &str, prompt: &str) -> Value {
        self.request("ask", json!({"session": session, "prompt": prompt}))
            .await
    }

    /// `ask` with these params and its result object (panics on a JSON-RPC error).
    pub async fn ask_ok_with(&mut self, params: Value) -> Value {
        let response = self.call("ask", params.clone()).await;
        match response.get("result") {
            Some(result) => result.clone(),
            None => panic!("ask {params} failed: {response}"),
        }
    }

    pub async fn status(&mut self) -> Value {
        let response = self.call("status", json!({})).await;
        response["result"].clone()
    }

    /// Waits until `status` satisfies `pred` (polling), or panics with the last status.
    pub async fn wait_status(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
        loop {
            let status = self.status().await;
            if pred(&status) {
                return status;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; last status: {status}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Closes stdin and waits for the exit code.
    pub async fn close_and_wait(&mut self) -> i32 {
        self.stdin = None;
        self.wait_exit().await
    }

    pub async fn wait_exit(&mut self) -> i32 {
        let status = tokio::time::timeout(READ_TIMEOUT, self.child.wait())
            .await
            .expect("claude-coded did not exit")
            .expect("wait");
        status.code().unwrap_or(-1)
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("running") as i32
    }
}

/// The command that starts claude-coded for `options` in `dir` (its HOME, with `state/`
/// and `cwd/` inside), without its stdio: shared by every harness that spawns a bridge.
pub fn bridge_command(dir: &Path, options: &Options) -> Command {
    let cwd = dir.join("cwd");
    std::fs::create_dir_all(&cwd).expect("create cwd");
    // CLAUDE_CODED_TEST_BRIDGE runs the tests against another build (an older commit's,
    // to see a new test fail there).
    let bridge = options
        .bridge
        .clone()
        .unwrap_or_else(crate::bridge_under_test);
    let mut command = Command::new(bridge);
    if options.clean_env {
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    }
    if !options.find_claude && !options.args.iter().any(|a| a == "--claude-bin") {
        let bin = options
            .claude_bin
            .as_deref()
            .map_or(double().as_os_str(), std::ffi::OsStr::new);
        command.arg("--claude-bin").arg(bin);
    }
    if !options.args.iter().any(|a| a == "--state-dir") {
        command.arg("--state-dir").arg(dir.join("state"));
    }
    if !options.args.iter().any(|a| a == "--cwd") {
        command.arg("--cwd").arg(&cwd);
    }
    command
        .args(&options.args)
        // Quiet by default; CLAUDE_CODED_TEST_LOG=debug shows the bridge's logs.
        .env(
            "RUST_LOG",
            std::env::var("CLAUDE_CODED_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env("HOME", dir)
        // A test run inside a claude-coded's agent must not inherit its nesting depth.
        .env_remove("CLAUDE_CODED_DEPTH")
        .env_remove("CLAUDE_CODED_DEPTH_LIMIT")
        .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command
}

/// True while a process with this pid exists (zombies count as gone).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits up to `limit` for `pid` to disappear.
pub async fn wait_gone(pid: i32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if !process_alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    !process_alive(pid)
}

/// The session `name` in a `sessions` result (or `status`'s list); panics when absent.
pub fn listed_session<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["sessions"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no session {name} in {list}"))
}

/// The error code of a JSON-RPC response, if it is an error.
pub fn error_code(response: &Value) -> Option<i64> {
    response.pointer("/error/code").and_then(Value::as_i64)
}
