//! Harness for the tests in which the real Claude Code CLI is the MCP host of claude-coded
//! (its parent module, `e2e_real_host`): a sandbox (HOME, project dir, TMPDIR, a `bin/` with
//! `claude` and `claude-coded` for PATH), registration the way the README says, the outer
//! CLI run with a timeout while a sampler records its process tree, and the host's own
//! debug log read back (how it logged our stderr, how it stopped us).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::proc_info;
use tokio::sync::MutexGuard;

use mock_api::MockApi;
use test_support::TempDir;
/// The MCP server name, as `claude mcp add` registers it; tools are `mcp__<name>__<tool>`.
pub const SERVER: &str = "claude-coded";
pub const ASK: &str = "mcp__claude-coded__ask";
pub const STATUS: &str = "mcp__claude-coded__status";
pub const EVENTS: &str = "mcp__claude-coded__events";
pub const WAIT: &str = "mcp__claude-coded__wait";

/// Longest an outer CLI run may take before the test kills it and fails. A round trip
/// takes about 3 s on two cores; this only stops a hung run from hanging the suite.
pub const OUTER_DEADLINE: Duration = Duration::from_secs(90);
/// How long the processes of a sandbox may take to go away once the outer CLI exited.
pub const CLEANUP_DEADLINE: Duration = Duration::from_secs(10);
/// Time between two samples of the process tree.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// `CLAUDE_BIN` (see `test_support::real_cli_bin`).
pub fn claude_bin() -> PathBuf {
    test_support::real_cli_bin()
}

/// One real CLI tree at a time, and not beside the real-CLI tests of `e2e_real_cli`: two
/// would share two cores with ~200 MB CLIs each (a failed test poisons nothing).
pub fn serial() -> MutexGuard<'static, ()> {
    test_support::real_cli::one_real_cli_blocking()
}

/// What keeps a real CLI offline on the mock: loopback API with a dummy key, no telemetry,
/// no update checks. claude-coded passes its environment on to its CLI.
pub fn offline_env(mock: &MockApi) -> Vec<(String, String)> {
    test_support::offline_env(&mock.base_url())
}

/// A directory tree for one outer CLI and everything it starts: `home/` (HOME of all of
/// them), `project/` (the cwd, where `.mcp.json` goes), `tmp/` (TMPDIR) and `bin/`
/// (`claude` and `claude-coded` links, first on PATH, so the README's bare
/// `claude-coded` and claude-coded's default `claude` are found).
pub struct Sandbox {
    dir: TempDir,
    /// The real CLI binary, resolved (what `/proc/<pid>/exe` shows for a CLI).
    pub cli_exe: PathBuf,
    /// claude-coded, resolved.
    pub bridge_exe: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let cli = claude_bin();
        let serial = serial();
        let dir = TempDir::new("real-host");
        let cli_exe = std::fs::canonicalize(&cli).expect("resolve CLAUDE_BIN");
        let bridge_exe =
            std::fs::canonicalize(test_support::bridge()).expect("resolve claude-coded");
        let sandbox = Sandbox {
            dir,
            cli_exe,
            bridge_exe,
            _serial: serial,
        };
        for sub in ["home", "project", "tmp", "bin"] {
            std::fs::create_dir_all(sandbox.root().join(sub)).expect("create sandbox dir");
        }
        std::os::unix::fs::symlink(&sandbox.cli_exe, sandbox.bin().join("claude"))
            .expect("link claude");
        std::os::unix::fs::symlink(&sandbox.bridge_exe, sandbox.bin().join(SERVER))
            .expect("link claude-coded");
        sandbox
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }
    pub fn project(&self) -> PathBuf {
        self.root().join("project")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root().join("tmp")
    }
    pub fn bin(&self) -> PathBuf {
        self.root().join("bin")
    }
    /// Where the outer CLI writes its debug log (`--debug-file`).
    pub fn host_log_path(&self) -> PathBuf {
        self.root().join("host-debug.log")
    }

    /// The environment of every CLI of this sandbox: only PATH (with `bin/` first) from
    /// the test's, so nothing of the developer's keys or `CLAUDE_*` settings leaks in.
    pub fn env(&self, mock: &MockApi) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_default();
        let mut env = vec![
            (
                "PATH".to_string(),
                format!("{}:{path}", self.bin().display()),
            ),
            ("HOME".to_string(), self.home().display().to_string()),
            ("TMPDIR".to_string(), self.tmp().display().to_string()),
        ];
        env.extend(offline_env(mock));
        env
    }

    /// `claude <args>` in the project dir with [`Sandbox::env`].
    pub fn claude(&self, mock: &MockApi, args: &[&str]) -> Command {
        let mut command = Command::new(self.bin().join("claude"));
        command
            .args(args)
            .current_dir(self.project())
            .env_clear()
            .envs(self.env(mock));
        command
    }

    /// `claude mcp add --scope project claude-coded -- claude-coded --cwd <project>
    /// <server_args>`, as the README tells users; checks the `.mcp.json` it wrote.
    pub fn register_with_mcp_add(&self, mock: &MockApi, server_args: &[&str]) {
        let project = self.project().display().to_string();
        let mut args = vec!["mcp", "add", "--scope", "project", SERVER, "--", SERVER];
        args.extend(["--cwd", project.as_str()]);
        args.extend(server_args);
        let out = run_with_deadline(self.claude(mock, &args), Duration::from_secs(60));
        assert!(
            out.status.success(),
            "claude mcp add failed ({}): {}{}",
            out.status,
            out.stdout,
            out.stderr
        );
        let written = std::fs::read_to_string(self.project().join(".mcp.json"))
            .expect("claude mcp add --scope project writes .mcp.json");
        let config: Value = serde_json::from_str(&written).expect(".mcp.json is JSON");
        let server = &config["mcpServers"][SERVER];
        assert_eq!(server["command"], SERVER, "{written}");
        assert_eq!(server["args"][1], project.as_str(), "{written}");
    }

    /// A file for `--mcp-config` with the same server, outside the project dir (a child
    /// CLI does not inherit `--mcp-config`).
    pub fn write_mcp_config(&self, server_args: &[&str]) -> PathBuf {
        self.write_mcp_config_in(&self.project(), server_args)
    }

    /// [`Sandbox::write_mcp_config`] with the server started in `cwd` (`--cwd`).
    pub fn write_mcp_config_in(&self, cwd: &Path, server_args: &[&str]) -> PathBuf {
        let mut args = vec!["--cwd".to_string(), cwd.display().to_string()];
        args.extend(server_args.iter().map(|a| a.to_string()));
        let config = serde_json::json!({
            "mcpServers": {SERVER: {"type": "stdio", "command": SERVER, "args": args}}
        });
        let path = self.root().join("mcp-config.json");
        std::fs::write(&path, config.to_string()).expect("write mcp config");
        path
    }

    /// Runs `claude -p <prompt> --output-format stream-json --verbose` with the four
    /// claude-coded tools it uses allowed (no prompt, no `--dangerously-skip-permissions`), the
    /// host's debug log on, and `extra_args` (e.g. `--mcp-config FILE`); samples its
    /// process tree until it exits. Kills it and fails after [`OUTER_DEADLINE`].
    pub fn run_outer(&self, mock: &MockApi, prompt: &str, extra_args: &[&str]) -> OuterRun {
        self.run_outer_with_env(mock, prompt, extra_args, &[])
    }

    /// [`Sandbox::run_outer`] with more environment for the outer CLI (and so for
    /// claude-coded and its CLI, which inherit it).
    pub fn run_outer_with_env(
        &self,
        mock: &MockApi,
        prompt: &str,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> OuterRun {
        let log = self.host_log_path();
        let _ = std::fs::remove_file(&log);
        let log_arg = log.display().to_string();
        let allowed = [ASK, WAIT, STATUS, EVENTS].join(",");
        let mut args = vec!["-p", prompt, "--output-format", "stream-json", "--verbose"];
        args.extend(["--allowedTools", allowed.as_str(), "--debug-file", &log_arg]);
        args.extend(extra_args);
        let mut command = self.claude(mock, &args);
        command
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command.spawn().expect("start the outer claude");
        let outer_pid = child.id();
        let stdout = drain(child.stdout.take().expect("stdout"));
        let stderr = drain(child.stderr.take().expect("stderr"));
        let sampler = Sampler::start(outer_pid, self.cli_exe.clone(), self.bridge_exe.clone());
        let exit = loop {
            if let Some(status) = child.try_wait().expect("wait for the outer claude") {
                break status;
            }
            if started.elapsed() > OUTER_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                let tree = sampler.stop();
                panic!(
                    "the outer claude did not finish within {OUTER_DEADLINE:?}\nstdout:\n{}\n\
                     stderr:\n{}\nprocesses:\n{}",
                    stdout.join().unwrap_or_default(),
                    stderr.join().unwrap_or_default(),
                    tree.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = started.elapsed();
        let tree = sampler.stop();
        let stdout = stdout.join().unwrap_or_default();
        let lines = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect();
        let host_log = HostLog::read(&log);
        OuterRun {
            exit,
            lines,
            stdout,
            stderr: stderr.join().unwrap_or_default(),
            took,
            tree,
            host_log,
        }
    }

    /// Live processes that belong to this sandbox (its HOME), other than the test.
    pub fn leftovers(&self) -> Vec<u32> {
        proc_info::processes_with_env(&format!("HOME={}", self.home().display()))
    }

    /// Waits up to `limit` for every process of the sandbox to be gone; returns the time
    /// it took, or the survivors.
    pub fn wait_empty(&self, limit: Duration) -> Result<Duration, Vec<u32>> {
        let started = Instant::now();
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                return Err(left);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Sandbox {
    /// Also after a failed test: nothing of this sandbox outlives it (the CLIs rewrite
    /// `$HOME/.claude.json` as they die, so the tree is removed only after them).
    fn drop(&mut self) {
        if self.wait_empty(Duration::from_secs(3)).is_err() {
            for pid in self.leftovers() {
                // SAFETY: kill(2) on a process of this test's sandbox (found by its HOME).
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            let _ = self.wait_empty(Duration::from_secs(5));
        }
    }
}

/// Parent, process group and session of `pid` (fields 4-6 of `/proc/<pid>/stat`).
pub fn parent_group_session(pid: u32) -> Option<(u32, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(1);
    let mut next = || fields.next()?.parse().ok();
    Some((next()?, next()?, next()?))
}

/// `pid (parent, group, session): command line`, one per line, for failure messages.
pub fn describe_pids(pids: &[u32]) -> String {
    pids.iter()
        .map(|p| {
            let ids = parent_group_session(*p).map_or("gone".to_string(), |(pp, g, s)| {
                format!("parent {pp}, group {g}, session {s}")
            });
            let command: String = proc_info::command_line(*p).chars().take(160).collect();
            format!("  {p} ({ids}): {command}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads a pipe to the end on its own thread.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// Output of a command run to completion.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` with its output captured; kills it and fails after `limit`.
pub fn run_with_deadline(mut command: Command, limit: Duration) -> Output {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// One finished outer CLI run.
pub struct OuterRun {
    pub exit: ExitStatus,
    /// Its stdout lines that are JSON.
    pub lines: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
    /// Its process tree as sampled while it ran.
    pub tree: Tree,
    pub host_log: HostLog,
}

impl OuterRun {
    /// The `result` line (panics with the output when there is none).
    pub fn result(&self) -> &Value {
        self.lines
            .iter()
            .find(|l| l["type"] == "result")
            .unwrap_or_else(|| panic!("no result line from the outer claude\n{}", self.dump()))
    }

    /// Its final text (the outer model's last answer).
    pub fn result_text(&self) -> &str {
        self.result()["result"].as_str().unwrap_or_default()
    }

    /// Exit status, stdout and stderr, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "exit: {}\nstdout:\n{}\nstderr:\n{}",
            self.exit, self.stdout, self.stderr
        )
    }

    /// A few lines on how the run went, for the test output.
    pub fn summary(&self) -> String {
        format!(
            "outer claude exited {} after {:?}\n{}\nhost log: {}",
            self.exit,
            self.took,
            self.tree.summary(),
            self.host_log.summary()
        )
    }
}

/// What a process in the outer CLI's tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The real Claude Code CLI.
    Cli,
    /// claude-coded serving (not its guard).
    Server,
    /// claude-coded's guard (`claude-coded __guard <cli> ...`).
    Guard,
    /// Anything else (a shell, a tool process).
    Other,
}

/// A process seen by the sampler. `level` counts claude-coded servers: the outer CLI is
/// level 0, the claude-coded it starts and that one's CLI are level 1, a claude-coded
/// started by that CLI and its CLI are level 2, and so on.
#[derive(Debug, Clone)]
pub struct Seen {
    pub kind: Kind,
    pub level: usize,
    /// Samples in which it was seen with this kind and level.
    pub samples: usize,
    pub command: String,
}

/// The outer CLI's process tree over a run.
#[derive(Debug, Default, Clone)]
pub struct Tree {
    pub samples: usize,
    /// Every process ever seen under the outer CLI, by pid (the outer CLI included).
    pub seen: BTreeMap<u32, Seen>,
    /// The most processes of a (kind, level) alive at once.
    pub max_at_once: BTreeMap<(Kind, usize), usize>,
}

impl Tree {
    /// Processes of this kind and level seen in at least two samples: a process caught
    /// between fork and exec looks like its parent for an instant, never twice.
    pub fn pids(&self, kind: Kind, level: usize) -> Vec<u32> {
        self.seen
            .iter()
            .filter(|(_, s)| s.kind == kind && s.level == level && s.samples >= 2)
            .map(|(pid, _)| *pid)
            .collect()
    }

    pub fn count(&self, kind: Kind, level: usize) -> usize {
        self.pids(kind, level).len()
    }

    /// CLIs and servers seen (twice or more) at `level` or deeper.
    pub fn count_at_or_below(&self, level: usize) -> usize {
        self.seen
            .values()
            .filter(|s| s.level >= level && s.samples >= 2)
            .filter(|s| matches!(s.kind, Kind::Cli | Kind::Server))
            .count()
    }

    /// The deepest level any CLI or claude-coded reached.
    pub fn deepest(&self) -> usize {
        self.seen
            .values()
            .filter(|s| matches!(s.kind, Kind::Cli | Kind::Server) && s.samples >= 2)
            .map(|s| s.level)
            .max()
            .unwrap_or(0)
    }

    /// Counts by kind and level, e.g. `L0 cli 1 | L1 claude-coded 1, cli 1 | L2 ...`.
    pub fn summary(&self) -> String {
        let mut levels: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for kind in [Kind::Server, Kind::Guard, Kind::Cli, Kind::Other] {
            for level in 0..=self.deepest() + 1 {
                let n = self.count(kind, level);
                if n > 0 {
                    let at_once = self.max_at_once.get(&(kind, level)).copied().unwrap_or(0);
                    let name = match kind {
                        Kind::Cli => "cli",
                        Kind::Server => "claude-coded",
                        Kind::Guard => "guard",
                        Kind::Other => "other",
                    };
                    levels
                        .entry(level)
                        .or_default()
                        .push(format!("{name} {n} (at once {at_once})"));
                }
            }
        }
        let parts: Vec<String> = levels
            .iter()
            .map(|(level, kinds)| format!("L{level} {}", kinds.join(", ")))
            .collect();
        format!(
            "process tree over {} samples: {}",
            self.samples,
            parts.join(" | ")
        )
    }

    /// Every process seen, one per line.
    pub fn describe(&self) -> String {
        self.seen
            .iter()
            .map(|(pid, s)| {
                format!(
                    "  {pid} L{} {:?} x{}: {}",
                    s.level, s.kind, s.samples, s.command
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn add(&mut self, snapshot: Vec<(u32, Kind, usize, String)>) {
        self.samples += 1;
        let mut now: BTreeMap<(Kind, usize), usize> = BTreeMap::new();
        for (pid, kind, level, command) in snapshot {
            *now.entry((kind, level)).or_default() += 1;
            let entry = self.seen.entry(pid).or_insert_with(|| Seen {
                kind,
                level,
                samples: 0,
                command: command.clone(),
            });
            if entry.kind != kind || entry.level != level {
                // It exec'd since the last sample: only the new identity counts.
                *entry = Seen {
                    kind,
                    level,
                    samples: 0,
                    command,
                };
            }
            entry.samples += 1;
        }
        for (key, n) in now {
            let max = self.max_at_once.entry(key).or_default();
            *max = (*max).max(n);
        }
    }
}

/// Samples the tree under a pid on its own thread until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Tree>,
}

impl Sampler {
    fn start(root: u32, cli_exe: PathBuf, bridge_exe: PathBuf) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut tree = Tree::default();
            loop {
                // One last sample after the stop request, so the end state is in.
                let last = flag.load(Ordering::SeqCst);
                tree.add(snapshot(root, &cli_exe, &bridge_exe));
                if last {
                    return tree;
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        Sampler { stop, thread }
    }

    fn stop(self) -> Tree {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("sampler thread")
    }
}

/// The live descendants of `root` (and `root`) with their kind and level.
pub fn snapshot(root: u32, cli_exe: &Path, bridge_exe: &Path) -> Vec<(u32, Kind, usize, String)> {
    let table = proc_info::process_table();
    let mut out = Vec::new();
    // (pid, servers above it, including itself when it is one)
    let mut queue = vec![(root, 0usize)];
    while let Some((pid, servers_above)) = queue.pop() {
        let Some(kind) = classify(pid, cli_exe, bridge_exe) else {
            continue; // gone, or a zombie
        };
        let (level, below) = match kind {
            Kind::Server => (servers_above + 1, servers_above + 1),
            _ => (servers_above, servers_above),
        };
        let command: String = proc_info::command_line(pid).chars().take(160).collect();
        out.push((pid, kind, level, command));
        for (child, parent) in &table {
            if *parent == pid {
                queue.push((*child, below));
            }
        }
    }
    out
}

fn classify(pid: u32, cli_exe: &Path, bridge_exe: &Path) -> Option<Kind> {
    if !proc_info::alive(pid) {
        return None;
    }
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(if exe == cli_exe {
        Kind::Cli
    } else if exe == bridge_exe {
        let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let first_arg = argv.split(|b| *b == 0).nth(1).unwrap_or_default();
        if first_arg == b"__guard" {
            Kind::Guard
        } else {
            Kind::Server
        }
    } else {
        Kind::Other
    })
}

/// What the outer CLI's debug log says about the claude-coded server.
#[derive(Debug, Default, Clone)]
pub struct HostLog {
    /// Entries logged as `[ERROR] ... Server stderr: ...` (one entry may hold several of
    /// our lines).
    pub stderr_entries: usize,
    /// Our stderr lines inside those entries.
    pub stderr_lines: usize,
    /// The host logged `Sending SIGINT` (it stopped the server).
    pub sigint_sent: bool,
    /// Milliseconds from SIGINT to `SIGINT failed, sending SIGTERM`.
    pub sigterm_after_ms: Option<i64>,
    /// Milliseconds from SIGINT to `SIGTERM failed, sending SIGKILL`.
    pub sigkill_after_ms: Option<i64>,
    /// Milliseconds from SIGINT to `STDIO connection closed`.
    pub closed_after_ms: Option<i64>,
    /// The lines about the claude-coded server, for the test output.
    pub server_lines: Vec<String>,
}

impl HostLog {
    pub fn read(path: &Path) -> HostLog {
        let mut log = HostLog::default();
        let Ok(file) = std::fs::File::open(path) else {
            return log;
        };
        let tag = format!("MCP server \\\"{SERVER}\\\"");
        let plain_tag = format!("MCP server \"{SERVER}\"");
        let mut sigint = None;
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            if !line.contains(&tag) && !line.contains(&plain_tag) {
                continue;
            }
            let at = log_time_ms(&line);
            if line.contains("Server stderr:") {
                log.stderr_entries += 1;
                log.stderr_lines += 1 + line.matches("\\n").count();
            }
            let since = |at: Option<i64>| Some(at? - sigint?);
            if line.contains("Sending SIGINT") {
                sigint = at;
                log.sigint_sent = true;
            } else if line.contains("SIGINT failed") {
                log.sigterm_after_ms = since(at);
            } else if line.contains("SIGTERM failed") {
                log.sigkill_after_ms = since(at);
            } else if line.contains("connection closed") {
                log.closed_after_ms = since(at);
            }
            let short: String = line.chars().take(240).collect();
            log.server_lines.push(short);
        }
        log
    }

    pub fn summary(&self) -> String {
        let stop = match (
            self.sigint_sent,
            self.sigterm_after_ms,
            self.sigkill_after_ms,
        ) {
            (false, _, _) => "no SIGINT logged".to_string(),
            (true, None, _) => "SIGINT sufficed".to_string(),
            (true, Some(term), None) => format!("SIGINT, then SIGTERM after {term} ms"),
            (true, Some(term), Some(kill)) => {
                format!("SIGINT, then SIGTERM after {term} ms, then SIGKILL after {kill} ms")
            }
        };
        let closed = self
            .closed_after_ms
            .map_or(String::new(), |ms| format!(", closed {ms} ms after SIGINT"));
        format!(
            "{stop}{closed}; {} `[ERROR] Server stderr` entries holding {} of our lines",
            self.stderr_entries, self.stderr_lines
        )
    }
}

/// Milliseconds since midnight of a debug log line (`2026-11-30T09:54:04.860Z [DEBUG] ...`).
fn log_time_ms(line: &str) -> Option<i64> {
    let time = line.get(11..23)?; // HH:MM:SS.mmm
    let h: i64 = time.get(0..2)?.parse().ok()?;
    let m: i64 = time.get(3..5)?.parse().ok()?;
    let s: i64 = time.get(6..8)?.parse().ok()?;
    let ms: i64 = time.get(9..12)?.parse().ok()?;
    Some(((h * 60 + m) * 60 + s) * 1000 + ms)
}
