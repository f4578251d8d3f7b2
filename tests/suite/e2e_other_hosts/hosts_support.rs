//! Harness for the tests in which Codex CLI or Gemini CLI is claude-coded's MCP host (its
//! parent module, `e2e_other_hosts`): the pinned host binaries, a sandbox per run (HOME,
//! project dir, TMPDIR, `bin/` with `claude` and `claude-coded` first on PATH), the host's
//! configuration made from our example file (`examples/codex/config.toml`,
//! `examples/gemini/settings.json`) with the mock's address and the offline settings added,
//! a run with a deadline (optionally under `strace`, to see every connection it makes),
//! and the two hosts run side by side.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mock_api::MockApi;
use serde_json::{Value, json};
use test_support::{TempDir, proc_info};

/// The MCP server's name in both hosts' configurations (and in the examples).
pub const SERVER: &str = "claude-coded";
/// Longest a host run may take before the test kills it and fails (a round trip takes
/// 2-4 s; this only stops a hung run from hanging the suite).
pub const HOST_DEADLINE: Duration = Duration::from_secs(90);
/// How long the processes of a sandbox may take to go away once the host exited.
pub const CLEANUP_DEADLINE: Duration = Duration::from_secs(10);
/// The Gemini model the runs ask for: a fixed model, so Gemini CLI's router (a classifier
/// request to another model before every turn) stays out of the conversation.
const GEMINI_MODEL: &str = "gemini-2.5-pro";

/// The two hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Codex,
    Gemini,
}

impl Host {
    pub const BOTH: [Host; 2] = [Host::Codex, Host::Gemini];

    pub fn name(self) -> &'static str {
        match self {
            Host::Codex => "codex",
            Host::Gemini => "gemini",
        }
    }

    /// The pinned binary (see [`host_bins`]).
    pub fn bin(self) -> PathBuf {
        let bins = host_bins();
        match self {
            Host::Codex => bins.0.clone(),
            Host::Gemini => bins.1.clone(),
        }
    }
}

/// `CODEX_BIN` and `GEMINI_BIN`, else what `scripts/install-host-clis.sh` prints (it
/// installs the pinned versions under `.cache/` the first time, then only checks them).
fn host_bins() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        let from_env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let (Some(codex), Some(gemini)) = (from_env("CODEX_BIN"), from_env("GEMINI_BIN")) {
            return (codex, gemini);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-host-clis.sh");
        let out = Command::new(&script)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value = |k: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    panic!(
                        "no {k} from {} (set CODEX_BIN and GEMINI_BIN, or fix the install): {}",
                        script.display(),
                        String::from_utf8_lossy(&out.stderr)
                    )
                })
        };
        (value("CODEX_BIN"), value("GEMINI_BIN"))
    })
}

/// Runs `case` for both hosts at once, each on its own thread (they share nothing but
/// the machine), while holding the lock of the real-CLI tests; fails with every host's
/// failure. `E2E_HOSTS=codex` (or `gemini`) runs one, while working on a test.
pub fn for_both(case: fn(Host)) {
    let _serial = test_support::real_cli::one_real_cli_blocking();
    let only = std::env::var("E2E_HOSTS").unwrap_or_default();
    let threads: Vec<_> = Host::BOTH
        .iter()
        .filter(|h| only.is_empty() || only.contains(h.name()))
        .map(|&host| {
            let thread = std::thread::Builder::new()
                .name(host.name().to_string())
                .spawn(move || case(host))
                .expect("spawn a host thread");
            (host, thread)
        })
        .collect();
    let failed: Vec<String> = threads
        .into_iter()
        .filter_map(|(host, thread)| {
            thread.join().err().map(|e| {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("{}: {why}", host.name())
            })
        })
        .collect();
    assert!(failed.is_empty(), "failed with:\n{}", failed.join("\n\n"));
}

/// One sandbox for one host run and everything it starts.
pub struct HostSandbox {
    pub host: Host,
    dir: TempDir,
    pub bridge_exe: PathBuf,
    /// More environment for the host (and what it passes on to its servers).
    pub extra_env: Vec<(String, String)>,
}

impl HostSandbox {
    pub fn new(host: Host) -> HostSandbox {
        let dir = TempDir::new(&format!("host-{}", host.name()));
        // CLAUDE_CODED_TEST_BRIDGE: another build (an older commit's, to see a test fail
        // there), as for the other tests.
        let bridge = std::env::var_os("CLAUDE_CODED_TEST_BRIDGE")
            .map_or_else(|| test_support::bridge().to_path_buf(), PathBuf::from);
        let bridge_exe = std::fs::canonicalize(bridge).expect("resolve claude-coded");
        let sandbox = HostSandbox {
            host,
            dir,
            bridge_exe,
            extra_env: Vec::new(),
        };
        for sub in ["home", "project", "tmp", "bin"] {
            std::fs::create_dir_all(sandbox.root().join(sub)).expect("create sandbox dir");
        }
        let cli = std::fs::canonicalize(test_support::real_cli_bin()).expect("resolve CLAUDE_BIN");
        std::os::unix::fs::symlink(cli, sandbox.bin().join("claude")).expect("link claude");
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
    pub fn bin(&self) -> PathBuf {
        self.root().join("bin")
    }

    /// Writes the host's configuration: our example for it, with the sandbox's project
    /// (and `server_args` after it), plus what the test needs: the mock as the model's
    /// API, the inner CLI's offline settings passed through, no update checks, analytics,
    /// telemetry, plugins or apps.
    pub fn configure(&self, mock: &MockApi, server_args: &[&str]) {
        match self.host {
            Host::Codex => self.configure_codex(mock, server_args),
            Host::Gemini => self.configure_gemini(mock, server_args),
        }
    }

    fn configure_codex(&self, mock: &MockApi, server_args: &[&str]) {
        let example = read_example("examples/codex/config.toml");
        let args: Vec<String> = server_args.iter().map(|a| format!("\"{a}\"")).collect();
        let ours = replace_once(
            &example,
            "args = []",
            &format!("args = [{}]", args.join(", ")),
        );
        // Codex clears an MCP server's environment: the inner CLI's offline settings go
        // through by name, beside the API key the example passes.
        let names: Vec<String> = test_support::offline_env(&mock.base_url())
            .into_iter()
            .map(|(k, _)| format!("\"{k}\""))
            .filter(|k| k != "\"ANTHROPIC_API_KEY\"")
            .collect();
        let ours = replace_once(
            &ours,
            "env_vars = [\"ANTHROPIC_API_KEY\"",
            &format!("env_vars = [\"ANTHROPIC_API_KEY\", {}", names.join(", ")),
        );
        let preamble = format!(
            r#"# The test's own settings: the mock as the model's API, offline.
model = "gpt-5.4"
model_provider = "mock"
approval_policy = "never"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
apps = false
plugins = false
remote_plugin = false

[model_providers.mock]
name = "mock"
base_url = "{}/v1"
wire_api = "responses"
env_key = "MOCK_OPENAI_KEY"
request_max_retries = 0
stream_max_retries = 0

# examples/codex/config.toml, with this sandbox's paths:
"#,
            mock.base_url()
        );
        let dir = self.home().join(".codex");
        std::fs::create_dir_all(&dir).expect("create CODEX_HOME");
        std::fs::write(dir.join("config.toml"), preamble + &ours).expect("write config.toml");
    }

    fn configure_gemini(&self, _mock: &MockApi, server_args: &[&str]) {
        let example = read_example("examples/gemini/settings.json");
        let mut settings: Value = serde_json::from_str(&example).expect("the example is JSON");
        let server = &mut settings["mcpServers"][SERVER];
        let args = server["args"].as_array_mut().expect("the example has args");
        args.extend(server_args.iter().map(|a| json!(a)));
        // Offline and quiet: no auth dialog, no update check, no usage statistics.
        settings["security"] = json!({"auth": {"selectedType": "gemini-api-key"}});
        settings["general"] = json!({"disableAutoUpdate": true, "disableUpdateNag": true});
        settings["privacy"] = json!({"usageStatisticsEnabled": false});
        settings["telemetry"] = json!({"enabled": false});
        let dir = self.home().join(".gemini");
        std::fs::create_dir_all(&dir).expect("create ~/.gemini");
        std::fs::write(dir.join("settings.json"), settings.to_string()).expect("write settings");
        // What trusting the folder in Gemini CLI's dialog writes: headless runs refuse an
        // untrusted folder.
        let trusted = json!({ self.project().display().to_string(): "TRUST_FOLDER" });
        std::fs::write(dir.join("trustedFolders.json"), trusted.to_string()).expect("write trust");
    }

    /// The environment of the host and so of everything it starts: PATH with `bin/`
    /// first, HOME, TMPDIR, the inner CLI's offline settings, the host's API key and base.
    pub fn env(&self, mock: &MockApi) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_default();
        let mut env = vec![
            (
                "PATH".to_string(),
                format!("{}:{path}", self.bin().display()),
            ),
            ("HOME".to_string(), self.home().display().to_string()),
            (
                "TMPDIR".to_string(),
                self.root().join("tmp").display().to_string(),
            ),
            ("NO_COLOR".to_string(), "1".to_string()),
        ];
        env.extend(test_support::offline_env(&mock.base_url()));
        let own: &[(&str, String)] = match self.host {
            Host::Codex => &[
                (
                    "CODEX_HOME",
                    self.home().join(".codex").display().to_string(),
                ),
                ("MOCK_OPENAI_KEY", "test-key".to_string()),
            ],
            Host::Gemini => &[
                ("GEMINI_API_KEY", "test-key".to_string()),
                ("GOOGLE_GEMINI_BASE_URL", mock.base_url()),
                // One process: no relaunch of itself with a bigger heap.
                ("GEMINI_CLI_NO_RELAUNCH", "true".to_string()),
            ],
        };
        env.extend(own.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env.extend(self.extra_env.iter().cloned());
        env
    }

    /// The host's command for one non-interactive turn on `prompt`, its output as JSON
    /// lines: `codex exec --json`, `gemini -p --output-format stream-json`.
    pub fn command(&self, mock: &MockApi, prompt: &str) -> Command {
        let mut command = Command::new(self.host.bin());
        match self.host {
            Host::Codex => command.args(["exec", "--json", "--skip-git-repo-check", prompt]),
            Host::Gemini => command.args([
                "-m",
                GEMINI_MODEL,
                "--output-format",
                "stream-json",
                "-p",
                prompt,
            ]),
        };
        command
            .current_dir(self.project())
            .env_clear()
            .envs(self.env(mock))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Starts the host on `prompt`.
    pub fn spawn(&self, mock: &MockApi, prompt: &str) -> Running {
        Running::start(self.command(mock, prompt))
    }

    /// Runs the host on `prompt` to its end.
    pub fn run(&self, mock: &MockApi, prompt: &str) -> HostRun {
        self.spawn(mock, prompt).finish()
    }

    /// `codex app-server` (Codex's API for its TUI and IDE clients) in the sandbox, with the
    /// test as its client: JSON-RPC lines on its stdin and stdout.
    pub fn codex_app_server(&self, mock: &MockApi) -> AppServer {
        assert_eq!(self.host, Host::Codex, "app-server is Codex's");
        let mut child = Command::new(self.host.bin())
            .arg("app-server")
            .current_dir(self.project())
            .env_clear()
            .envs(self.env(mock))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start codex app-server");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        AppServer {
            child,
            stdin,
            lines: rx,
            next_id: 0,
        }
    }

    /// Runs the host under `strace -f`, recording every connect and send with an address
    /// of it and of everything it starts; returns the run and the trace.
    pub fn run_traced(&self, mock: &MockApi, prompt: &str) -> (HostRun, String) {
        let trace = self.root().join("strace.txt");
        let inner = self.command(mock, prompt);
        let mut command = Command::new("strace");
        command
            .args(["-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o"])
            .arg(&trace)
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(self.project())
            .env_clear()
            .envs(self.env(mock))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let run = Running::start(command).finish();
        let text = std::fs::read_to_string(&trace).unwrap_or_else(|e| {
            panic!(
                "no trace from strace ({e}); is strace installed?\n{}",
                run.dump()
            )
        });
        (run, text)
    }

    /// `claude-coded <args>` as the host started it (same HOME and environment), in the
    /// project.
    pub fn claude_coded(&self, mock: &MockApi, args: &[&str]) -> std::process::Output {
        Command::new(&self.bridge_exe)
            .args(args)
            .current_dir(self.project())
            .env_clear()
            .envs(self.env(mock))
            .stdin(Stdio::null())
            .output()
            .expect("run claude-coded")
    }

    /// Live processes of this sandbox (by its HOME).
    pub fn leftovers(&self) -> Vec<u32> {
        proc_info::processes_with_env(&format!("HOME={}", self.home().display()))
    }

    /// The claude-coded servers of this sandbox (not their guards).
    pub fn servers(&self) -> Vec<u32> {
        self.leftovers()
            .into_iter()
            .filter(|pid| {
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
                let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let first_arg = argv.split(|b| *b == 0).nth(1).unwrap_or_default().to_vec();
                exe.as_deref() == Some(self.bridge_exe.as_path()) && first_arg != b"__guard"
            })
            .collect()
    }

    /// Waits up to `limit` for every process of the sandbox to be gone; returns the time
    /// it took, or the survivors with their command lines.
    pub fn wait_empty(&self, limit: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                return Err(left
                    .iter()
                    .map(|p| format!("  {p}: {}", proc_info::command_line(*p)))
                    .collect::<Vec<_>>()
                    .join("\n"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for HostSandbox {
    /// Also after a failed test: nothing of this sandbox outlives it.
    fn drop(&mut self) {
        if self.wait_empty(Duration::from_secs(2)).is_err() {
            for pid in self.leftovers() {
                // SAFETY: kill(2) on a process of this test's sandbox (found by its HOME).
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            let _ = self.wait_empty(Duration::from_secs(5));
        }
    }
}

/// An example file of the repository.
fn read_example(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// `text` with `from` replaced once; fails when the example no longer has `from`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the example no longer contains {from:?}:\n{text}"
    );
    text.replacen(from, to, 1)
}

/// A host process being run.
pub struct Running {
    pub child: Child,
    started: Instant,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Running {
    fn start(mut command: Command) -> Running {
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let stdout = drain(child.stdout.take().expect("stdout"));
        let stderr = drain(child.stderr.take().expect("stderr"));
        Running {
            child,
            started,
            stdout,
            stderr,
        }
    }

    /// Waits for the host to exit (killing it and failing after [`HOST_DEADLINE`]).
    pub fn finish(mut self) -> HostRun {
        let exit = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the host") {
                break status;
            }
            if self.started.elapsed() > HOST_DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the host did not finish within {HOST_DEADLINE:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout.join().unwrap_or_default(),
                    self.stderr.join().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = self.started.elapsed();
        let stdout = self.stdout.join().unwrap_or_default();
        HostRun {
            exit,
            lines: stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
            stdout,
            stderr: self.stderr.join().unwrap_or_default(),
            took,
        }
    }
}

/// Reads a pipe to the end on its own thread.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// One finished host run.
pub struct HostRun {
    pub exit: ExitStatus,
    /// Its stdout lines that are JSON (`codex exec --json` events, Gemini's stream-json).
    pub lines: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl HostRun {
    pub fn dump(&self) -> String {
        format!(
            "exit: {} after {:?}\nstdout:\n{}\nstderr:\n{}",
            self.exit, self.took, self.stdout, self.stderr
        )
    }

    /// The model's last text: Codex's last `agent_message`, Gemini's assistant messages
    /// joined (it streams them as deltas).
    pub fn final_text(&self) -> String {
        let codex = self
            .lines
            .iter()
            .filter(|l| l["item"]["type"] == "agent_message")
            .filter_map(|l| l["item"]["text"].as_str())
            .next_back();
        if let Some(text) = codex {
            return text.to_string();
        }
        self.lines
            .iter()
            .filter(|l| l["type"] == "message" && l["role"] == "assistant")
            .filter_map(|l| l["content"].as_str())
            .collect()
    }
}

/// Every address a trace shows a process connecting or sending to that is not loopback
/// (`127.0.0.0/8`, `::1`, `::ffff:127.x`), with the line.
pub fn non_loopback(trace: &str) -> Vec<String> {
    trace
        .lines()
        .filter(|l| l.contains("AF_INET"))
        .filter(|l| {
            let v4 = l
                .split("inet_addr(\"")
                .nth(1)
                .and_then(|r| r.split('"').next());
            let v6 = l
                .split("inet_pton(AF_INET6, \"")
                .nth(1)
                .and_then(|r| r.split('"').next());
            match (v4, v6) {
                (Some(a), _) => !a.starts_with("127."),
                (None, Some(a)) => a != "::1" && !a.starts_with("::ffff:127."),
                (None, None) => false,
            }
        })
        .map(str::to_string)
        .collect()
}

/// A `codex app-server` with the test as its client.
pub struct AppServer {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    next_id: u64,
}

impl AppServer {
    /// Sends one JSON-RPC message.
    pub fn send(&mut self, message: &Value) {
        use std::io::Write;
        let mut line = message.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .expect("write to codex app-server");
    }

    /// Sends a request and returns its id.
    pub fn request(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// The next message for which `want` holds, within [`HOST_DEADLINE`]; every message
    /// read on the way is kept in `seen`.
    pub fn until(&mut self, seen: &mut Vec<Value>, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + HOST_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|e| {
                panic!("codex app-server said nothing wanted ({e}); it said: {seen:#?}")
            });
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            seen.push(message.clone());
            if want(&message) {
                return message;
            }
        }
    }

    /// The response to request `id`.
    pub fn response(&mut self, seen: &mut Vec<Value>, id: u64) -> Value {
        self.until(seen, |m| m["id"] == id && m.get("method").is_none())
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
