//! What the benchmarks that spawn claude-coded share: a sandbox per process (HOME, cwd,
//! TMPDIR, an environment that keeps a real CLI offline), a kept process with its pipes,
//! and the timing and its report.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A HOME with `cwd/` and `tmp/` inside, as each e2e test gets.
pub struct Sandbox {
    pub home: PathBuf,
    pub cwd: PathBuf,
    pub tmp: PathBuf,
}

impl Sandbox {
    pub fn new(home: &Path) -> std::io::Result<Sandbox> {
        let sandbox = Sandbox {
            home: home.to_path_buf(),
            cwd: home.join("cwd"),
            tmp: home.join("tmp"),
        };
        std::fs::create_dir_all(&sandbox.cwd)?;
        std::fs::create_dir_all(&sandbox.tmp)?;
        Ok(sandbox)
    }

    /// `program` in this sandbox, with only the environment that keeps the CLI offline on
    /// the mock API at `base_url`.
    pub fn command(&self, program: &Path, base_url: &str) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("TMPDIR", &self.tmp)
            .env("ANTHROPIC_BASE_URL", base_url)
            .env("ANTHROPIC_API_KEY", "test-key")
            .env("DISABLE_TELEMETRY", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1");
        command
    }
}

/// The CLI the benchmarks run as the child: the real one when `CLAUDE_BIN` names it
/// (offline on the mock API), else the double; and words for the report.
pub fn child_cli() -> (std::ffi::OsString, &'static str) {
    match std::env::var_os("CLAUDE_BIN").filter(|v| !v.is_empty()) {
        Some(bin) => (bin, "the real CLI on the mock API"),
        None => (
            test_support::double().as_os_str().to_owned(),
            "the CLI double (set CLAUDE_BIN for the real CLI)",
        ),
    }
}

/// `claude-coded` in `sandbox` with `child` as its CLI, its state under `root`, quiet.
pub fn claude_coded(
    sandbox: &Sandbox,
    root: &Path,
    child: &std::ffi::OsStr,
    base_url: &str,
) -> Command {
    let mut command = sandbox.command(Path::new(env!("CARGO_BIN_EXE_claude-coded")), base_url);
    command
        .arg("--claude-bin")
        .arg(child)
        .arg("--state-dir")
        .arg(root.join("state"))
        .arg("--cwd")
        .arg(&sandbox.cwd)
        .env("RUST_LOG", "error");
    command
}

/// A kept process with its pipes; killed if dropped before [`Proc::finish`].
pub struct Proc {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: BufReader<ChildStdout>,
}

impl Proc {
    pub fn spawn(command: &mut Command) -> std::io::Result<Proc> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        Ok(Proc {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    pub fn write_line(&mut self, value: &Value) -> std::io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("stdin closed"))?;
        writeln!(stdin, "{value}")?;
        stdin.flush()
    }

    /// Reads JSON lines until `done` picks one.
    pub fn read_until(&mut self, done: impl Fn(&Value) -> bool) -> std::io::Result<Value> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("unexpected EOF"));
            }
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && done(&value)
            {
                return Ok(value);
            }
        }
    }

    /// Closes stdin (a clean stop for both claude-coded and the CLI) and waits.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.stdin = None;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Turns a wrong answer into an error, so a broken setup is not measured as fast.
pub fn check(ok: bool, what: &Value) -> std::io::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("unexpected answer: {what}")))
    }
}

pub fn timed(ask: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<Duration> {
    let start = Instant::now();
    ask()?;
    Ok(start.elapsed())
}

pub fn median(times: &[Duration]) -> Duration {
    percentile(times, 50)
}

pub fn percentile(times: &[Duration], p: usize) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[(sorted.len() - 1) * p / 100]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn report(what: &str, times: &[Duration]) {
    println!(
        "{what}: median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms, n={}",
        ms(median(times)),
        ms(percentile(times, 90)),
        ms(percentile(times, 0)),
        ms(percentile(times, 100)),
        times.len()
    );
}

/// What a stand-in CLI (a bench's own executable, started as the child) answers to a
/// control request line: success, with an empty response. `None` for other lines.
pub fn control_success(line: &str) -> Option<String> {
    if !line.contains(r#""type":"control_request""#) {
        return None;
    }
    let id = between(line, r#""request_id":""#, "\"").unwrap_or("?");
    Some(format!(
        r#"{{"type":"control_response","response":{{"subtype":"success","request_id":"{id}","response":{{}}}}}}"#
    ))
}

/// The text between the first `start` in `text` and the `end` after it.
pub fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}
