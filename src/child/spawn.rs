//! Spawning the child: under the guard in its own process group (see `crate::platform`),
//! a clean environment.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::BufReader;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::ChildError;
use crate::nesting::Nesting;
use crate::permissions::PermissionMode;

/// Flags that make the CLI speak stream-json on stdin/stdout. Partial messages (the text
/// as it streams) are always on: the flag is per process, and one warm child serves both
/// the clients that watch the text come and those that do not (the supervisor keeps the
/// partial lines from a turn that did not ask for them).
pub(crate) const STREAM_JSON_ARGS: [&str; 6] = [
    "--input-format",
    "stream-json",
    "--output-format",
    "stream-json",
    "--verbose",
    "--include-partial-messages",
];

/// Variables never passed on: `CLAUDECODE` makes a nested CLI refuse to start.
const REMOVED_ENV: [&str; 1] = ["CLAUDECODE"];
/// claude-coded's own variables: its settings (`start` hands the daemon its whole
/// configuration this way, `--listen-token` included) and its config file. The agent can
/// read its environment, and a nested claude-coded would take them as its own settings
/// (a second listener): the child gets only those `SpawnSpec::env` sets.
const OWN_ENV_PREFIX: &str = "CLAUDE_CODED_";

/// What the child layer needs of the settings to start a CLI (the config layer makes it:
/// `Config::cli_settings`), so this layer never names the whole configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CliSettings<'a> {
    pub claude_bin: &'a str,
    pub model: Option<&'a str>,
    pub permission_mode: Option<PermissionMode>,
    pub allow_tools: &'a [String],
    pub deny_tools: &'a [String],
    pub claude_args: &'a [String],
    /// The session's directory, and where it may resolve to.
    pub cwd: &'a Path,
    pub allow_dirs: &'a [PathBuf],
}

/// What to run, resolved from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpawnSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Added to (or replacing in) the inherited environment.
    pub env: Vec<(String, String)>,
    /// The nesting limit in force, written into the guard's command line (see
    /// [`crate::nesting`]), where the agent cannot change it.
    pub nesting_limit: u32,
}

impl SpawnSpec {
    /// The command line for `config`; `how.resume` continues a session (after a restart,
    /// or as asked), `how.fork` branches it into a new one, `how.budget_usd` caps what the
    /// process may spend.
    pub(crate) fn from_settings(
        config: &CliSettings<'_>,
        daemon_id: &str,
        nesting: &Nesting,
        how: &Launch<'_>,
    ) -> Result<SpawnSpec, ChildError> {
        let mut args: Vec<String> = STREAM_JSON_ARGS.iter().map(|s| s.to_string()).collect();
        if let Some(model) = config.model {
            args.extend(["--model".to_string(), model.to_string()]);
        }
        if let Some(mode) = config.permission_mode {
            args.extend(["--permission-mode".to_string(), mode.as_str().to_string()]);
        }
        // What the rules leave open comes to us as `can_use_tool`, never to a terminal.
        args.extend(["--permission-prompt-tool".to_string(), "stdio".to_string()]);
        // One `--flag=rule` each: the CLI's list flags take every following word otherwise.
        let rules = |flag: &str, rules: &[String]| -> Vec<String> {
            rules.iter().map(|rule| format!("{flag}={rule}")).collect()
        };
        args.extend(rules("--allowedTools", config.allow_tools));
        args.extend(rules("--disallowedTools", config.deny_tools));
        if let Some(session) = how.resume {
            args.extend(["--resume".to_string(), session.to_string()]);
            if how.fork {
                args.push("--fork-session".to_string());
            }
        }
        args.extend(config.claude_args.iter().cloned());
        // The CLI counts what its own process spends against it, and ends the turn that
        // reaches it.
        if let Some(usd) = how.budget_usd {
            args.extend(["--max-budget-usd".to_string(), budget_flag(usd)]);
        }
        Ok(SpawnSpec {
            program: resolve_program(config.claude_bin)?,
            args,
            cwd: confined_cwd(config)?,
            env: std::iter::once(("CLAUDE_CODED_DAEMON_ID".to_string(), daemon_id.to_string()))
                .chain(nesting.child_env())
                .collect(),
            nesting_limit: nesting.limit,
        })
    }
}

/// How a child starts: the session it continues (`--resume`), branched into a new one
/// when `fork`, and the most it may spend (`--max-budget-usd`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Launch<'a> {
    pub(crate) resume: Option<&'a str>,
    pub(crate) fork: bool,
    pub(crate) budget_usd: Option<f64>,
}

/// A budget as `--max-budget-usd` takes it: dollars to the millionth.
pub(crate) fn budget_flag(usd: f64) -> String {
    format!("{usd:.6}")
}

/// A running child with its three pipes. Its stdout is buffered from the start, so a
/// reader that took some lines (a warm spare's warm-up) hands over the rest intact.
pub(crate) struct Spawned {
    pub child: Child,
    pub pid: u32,
    pub stdin: ChildStdin,
    pub stdout: BufReader<ChildStdout>,
    pub stderr: ChildStderr,
}

/// The buffer of a child's stdout: a stream-json line is often tens of KiB.
const STDOUT_BUFFER: usize = 64 * 1024;

/// The session's directory as it resolves now, checked at every start, not once: after
/// its directory was swapped for a symlink, or `--allow-dir` dropped at a restart, a
/// revived CLI would otherwise run outside. The resolved path is what the CLI gets.
fn confined_cwd(config: &CliSettings<'_>) -> Result<PathBuf, ChildError> {
    let allowed = || {
        config
            .allow_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let refuse = |reason: String| ChildError::Confined {
        cwd: config.cwd.to_path_buf(),
        reason,
        allowed: allowed(),
    };
    let real = std::fs::canonicalize(config.cwd)
        .map_err(|err| refuse(format!("it cannot be resolved ({err})")))?;
    if !real.is_dir() {
        return Err(refuse("it is not a directory".into()));
    }
    match config.allow_dirs.iter().any(|dir| real.starts_with(dir)) {
        true => Ok(real),
        false => Err(refuse(format!("it resolves to {}", real.display()))),
    }
}

pub(crate) use super::locate::resolve_program;

/// Starts the child in its own process group, set to die with the bridge.
pub(crate) fn spawn(spec: &SpawnSpec) -> Result<Spawned, ChildError> {
    let mut command = guarded(spec);
    command
        .current_dir(&spec.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in REMOVED_ENV {
        command.env_remove(name);
    }
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with(OWN_ENV_PREFIX) {
            command.env_remove(name);
        }
    }
    for (key, value) in &spec.env {
        command.env(key, value);
    }
    // Own group: signals aimed at the bridge's terminal group do not hit the child
    // directly, and we can signal the child's whole tree at once. The guard also learns
    // when the bridge dies.
    crate::platform::link_guard(&mut command);
    let spawn_error = |source| ChildError::Spawn {
        program: spec.program.clone(),
        source,
    };
    let mut child = command.spawn().map_err(spawn_error)?;
    let missing = || spawn_error(std::io::Error::other("child pipe missing"));
    let pid = child.id().ok_or_else(missing)?;
    let stdin = child.stdin.take().ok_or_else(missing)?;
    let stdout = child.stdout.take().ok_or_else(missing)?;
    let stderr = child.stderr.take().ok_or_else(missing)?;
    Ok(Spawned {
        child,
        pid,
        stdin,
        stdout: BufReader::with_capacity(STDOUT_BUFFER, stdout),
        stderr,
    })
}

/// `claude-coded __guard <program> <args>` (see [`crate::guard`]), or the program itself
/// when our own executable cannot be found.
fn guarded(spec: &SpawnSpec) -> Command {
    match crate::platform::own_executable() {
        Ok(exe) => {
            let mut command = Command::new(exe);
            command
                .arg0(crate::nesting::guard_arg0(spec.nesting_limit))
                .arg(crate::guard::GUARD_ARG)
                .arg(&spec.program)
                .args(&spec.args)
                .env(crate::guard::PARENT_ENV, std::process::id().to_string());
            command
        }
        Err(err) => {
            tracing::warn!(%err, "cannot find our own executable; the CLI runs without its guard");
            let mut command = Command::new(&spec.program);
            command.args(&spec.args);
            command
        }
    }
}

/// Sends `stop` to the child's whole process group (see [`crate::platform::end_group`]).
pub(crate) fn signal_group(pid: u32, stop: crate::platform::Stop) {
    crate::platform::end_group(pid, stop);
}
