//! For the tests of the daemon's socket and of the `claude-coded` subcommands (`ask`,
//! `start`, `stop`, `status`, `events`), over the double and the real CLI: a
//! plain-protocol client on the Unix socket, and running a subcommand in a sandbox with a
//! deadline.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::Command;

use crate::READ_TIMEOUT;

/// The socket of the first instance in `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("daemon.sock")
}

/// The permission bits of `path` (not following a link).
pub fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A plain-protocol client on the daemon's socket.
pub struct SocketClient {
    lines: Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

impl SocketClient {
    /// Connects, waiting up to the read timeout for the socket to appear.
    pub async fn connect(path: &Path) -> SocketClient {
        let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
        let stream = loop {
            match UnixStream::connect(path).await {
                Ok(stream) => break stream,
                Err(err) if tokio::time::Instant::now() > deadline => {
                    panic!("cannot connect to {}: {err}", path.display())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let (read, writer) = stream.into_split();
        SocketClient {
            lines: BufReader::new(read).lines(),
            writer,
            next_id: 1,
        }
    }

    pub async fn send_raw(&mut self, line: &[u8]) {
        self.writer.write_all(line).await.expect("write");
        self.writer.write_all(b"\n").await.expect("write newline");
        self.writer.flush().await.expect("flush");
    }

    /// Sends a request; returns its id.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = json!(self.next_id);
        self.next_id += 1;
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(line.to_string().as_bytes()).await;
        id
    }

    /// The next line as JSON; `None` at EOF. Panics on timeout.
    pub async fn next_message(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(READ_TIMEOUT, self.lines.next_line())
            .await
            .expect("timed out waiting for a line on the socket")
            .expect("read the socket")?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
    }

    /// Reads until the response to `id`; returns it and the notifications before it.
    pub async fn response_for(&mut self, id: &Value) -> (Value, Vec<Value>) {
        let mut notes = Vec::new();
        loop {
            let message = self
                .next_message()
                .await
                .expect("the daemon closed the socket before answering");
            if message.get("id") == Some(id) && message.get("method").is_none() {
                return (message, notes);
            }
            notes.push(message);
        }
    }

    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.request(method, params).await;
        self.response_for(&id).await.0
    }

    /// `ask`'s result; panics on an error.
    pub async fn ask_ok(&mut self, prompt: &str) -> Value {
        let response = self.call("ask", json!({ "prompt": prompt })).await;
        match response.get("result") {
            Some(result) => result.clone(),
            None => panic!("ask {prompt:?} failed: {response}"),
        }
    }

    /// Closes the writing side, as `printf ... | socat` does after its last request.
    pub async fn close_write(&mut self) {
        self.writer.shutdown().await.expect("shut down writing");
    }

    /// Waits for the daemon to close the connection.
    pub async fn wait_closed(&mut self) {
        while self.next_message().await.is_some() {}
    }
}

/// What a finished subcommand left.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `claude-coded <args>` for the project `home/cwd` with its state in `home/state`, the
/// double as the CLI unless `args` name another, and `HOME=home`.
pub fn cli(home: &Path, args: &[&str]) -> Command {
    let cwd = home.join("cwd");
    std::fs::create_dir_all(&cwd).expect("create cwd");
    let mut command = Command::new(crate::bridge_under_test());
    command
        .args(args)
        .current_dir(&cwd)
        .env("HOME", home)
        .env("CLAUDE_CODED_STATE_DIR", home.join("state"))
        .env_remove("RUST_LOG")
        .env_remove("CLAUDE_CODED_DEPTH")
        .env_remove("CLAUDE_CODED_DEPTH_LIMIT");
    // As a person runs them: no RUST_LOG, unless CLAUDE_CODED_TEST_LOG asks for a log.
    if let Ok(level) = std::env::var("CLAUDE_CODED_TEST_LOG") {
        command.env("RUST_LOG", level);
    }
    if !args.contains(&"--claude-bin") {
        command.env("CLAUDE_CODED_CLAUDE_BIN", crate::double());
    }
    command
}

/// Runs `command` to its end with `stdin` as its input (none: an empty pipe), within
/// the read timeout.
pub async fn run(mut command: Command, stdin: Option<&str>) -> Output {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("spawn claude-coded");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    let output = tokio::time::timeout(READ_TIMEOUT, child.wait_with_output())
        .await
        .expect("claude-coded did not finish in time")
        .expect("wait for claude-coded");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
