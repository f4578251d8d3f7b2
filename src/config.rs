//! Configuration: command-line flag, then environment variable, then config file, then default.
//!
//! clap merges flags and `CLAUDE_CODED_*` variables into [`ConfigArgs`]; the JSON config
//! file fills what both left unset; [`Config`] is the resolved result that the rest of
//! the program reads (and that `status` and `claude-coded config` show).

use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Errors of this layer: the configuration cannot be resolved.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    ParseFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "the child's working directory {path} does not exist or is not a directory ({source}); set --cwd"
    )]
    BadCwd {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Settings that can come from flags, `CLAUDE_CODED_*` variables or the config file.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigArgs {
    /// Claude Code CLI to run (a path, or a name looked up on PATH) [default: claude]
    #[arg(
        long,
        global = true,
        env = "CLAUDE_CODED_CLAUDE_BIN",
        value_name = "PATH"
    )]
    pub claude_bin: Option<String>,
    /// Extra argument for the CLI (repeat for several), after the stream-json flags;
    /// CLAUDE_CODED_CLAUDE_ARGS takes a JSON array of strings
    #[arg(
        long = "claude-arg",
        global = true,
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    #[serde(default)]
    pub claude_args: Vec<String>,
    /// Model for the child (`--model` of the CLI)
    #[arg(long, global = true, env = "CLAUDE_CODED_MODEL")]
    pub model: Option<String>,
    /// Permission mode for the child (`--permission-mode` of the CLI); unset keeps the CLI's default
    #[arg(long, global = true, env = "CLAUDE_CODED_PERMISSION_MODE")]
    pub permission_mode: Option<String>,
    /// Working directory of the child [default: the current directory]
    #[arg(long, global = true, env = "CLAUDE_CODED_CWD", value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Directory for identity.json, daemon-state.json and events.jsonl
    /// [default: $XDG_STATE_HOME/claude-coded/CWD-KEY]
    #[arg(
        long,
        global = true,
        env = "CLAUDE_CODED_STATE_DIR",
        value_name = "DIR"
    )]
    pub state_dir: Option<PathBuf>,
    /// Asks that may wait behind the running one before "busy" errors [default: 16]
    #[arg(long, global = true, env = "CLAUDE_CODED_QUEUE_SIZE")]
    pub queue_size: Option<usize>,
    /// Default turn timeout in ms [default: 300000]
    #[arg(long, global = true, env = "CLAUDE_CODED_TURN_TIMEOUT_MS")]
    pub turn_timeout_ms: Option<u64>,
    /// After a timeout's interrupt, how long to wait for the result before killing the child, in ms [default: 5000]
    #[arg(long, global = true, env = "CLAUDE_CODED_INTERRUPT_GRACE_MS")]
    pub interrupt_grace_ms: Option<u64>,
    /// Events kept in memory for `events` [default: 50]
    #[arg(long, global = true, env = "CLAUDE_CODED_EVENTS_RING_SIZE")]
    pub events_ring_size: Option<usize>,
    /// Longest line accepted from the child, in bytes [default: 67108864]
    #[arg(long, global = true, env = "CLAUDE_CODED_MAX_CHILD_LINE_BYTES")]
    pub max_child_line_bytes: Option<usize>,
    /// Longest request line accepted on stdin, in bytes [default: 16777216]
    #[arg(long, global = true, env = "CLAUDE_CODED_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// First restart delay in ms; doubles per failed start [default: 1000]
    #[arg(long, global = true, env = "CLAUDE_CODED_BACKOFF_INITIAL_MS")]
    pub backoff_initial_ms: Option<u64>,
    /// Longest restart delay in ms [default: 60000]
    #[arg(long, global = true, env = "CLAUDE_CODED_BACKOFF_MAX_MS")]
    pub backoff_max_ms: Option<u64>,
    /// A child that ran this long (ms) counts as healthy and resets the backoff [default: 10000]
    #[arg(long, global = true, env = "CLAUDE_CODED_HEALTHY_AFTER_MS")]
    pub healthy_after_ms: Option<u64>,
    /// On stop, how long the child may take to exit after its stdin closes, in ms [default: 5000]
    #[arg(long, global = true, env = "CLAUDE_CODED_STOP_GRACE_MS")]
    pub stop_grace_ms: Option<u64>,
    /// A turn whose child prints nothing for this long (ms) is interrupted, then killed;
    /// 0 turns the watchdog off [default: 120000]
    #[arg(long, global = true, env = "CLAUDE_CODED_STALL_TIMEOUT_MS")]
    pub stall_timeout_ms: Option<u64>,
    /// Failed starts within --crash-loop-window-ms that mark the child `failed` [default: 5]
    #[arg(long, global = true, env = "CLAUDE_CODED_CRASH_LOOP_MAX")]
    pub crash_loop_max: Option<u32>,
    /// Window for counting failed starts, in ms [default: 60000]
    #[arg(long, global = true, env = "CLAUDE_CODED_CRASH_LOOP_WINDOW_MS")]
    pub crash_loop_window_ms: Option<u64>,
    /// After the child dies, start the next one with `--resume <sessionId>` [default: true]
    #[arg(
        long,
        global = true,
        env = "CLAUDE_CODED_RESUME_ON_RESTART",
        value_name = "BOOL"
    )]
    pub resume_on_restart: Option<bool>,
    /// events.jsonl is rotated past this size in bytes [default: 10485760]
    #[arg(long, global = true, env = "CLAUDE_CODED_EVENT_LOG_MAX_BYTES")]
    pub event_log_max_bytes: Option<u64>,
    /// Rotated event logs kept (events.jsonl.1 ... .N) [default: 3]
    #[arg(long, global = true, env = "CLAUDE_CODED_EVENT_LOG_KEEP")]
    pub event_log_keep: Option<usize>,
    /// How many claude-coded may run nested in each other's Claude Code (1 to 8): at the
    /// default, a sub-agent cannot delegate through claude-coded again [default: 1]
    #[arg(long, global = true, env = "CLAUDE_CODED_MAX_DEPTH")]
    pub max_depth: Option<u32>,
}

/// The resolved configuration.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    pub claude_bin: String,
    pub claude_args: Vec<String>,
    pub model: Option<String>,
    pub permission_mode: Option<String>,
    pub cwd: PathBuf,
    pub state_dir: PathBuf,
    pub queue_size: usize,
    pub turn_timeout_ms: u64,
    pub interrupt_grace_ms: u64,
    pub events_ring_size: usize,
    pub max_child_line_bytes: usize,
    pub max_request_bytes: usize,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub healthy_after_ms: u64,
    pub stop_grace_ms: u64,
    pub stall_timeout_ms: u64,
    pub crash_loop_max: u32,
    pub crash_loop_window_ms: u64,
    pub resume_on_restart: bool,
    pub event_log_max_bytes: u64,
    pub event_log_keep: usize,
    pub max_depth: u32,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
}

impl Config {
    /// Resolves flags and environment (`args`) over the config file over the defaults.
    ///
    /// `config_file` is the explicit `--config`; without it the default location is read
    /// when it exists.
    pub fn resolve(args: &ConfigArgs, config_file: Option<&Path>) -> Result<Config, ConfigError> {
        let (file, file_path) = load_file(config_file)?;
        let mut merged = merge(args, file);
        if args.claude_args.is_empty()
            && let Some(env_args) = claude_args_from_env()?
        {
            merged.claude_args = env_args;
        }
        let cwd = resolve_cwd(merged.cwd)?;
        let state_dir = match merged.state_dir {
            Some(dir) => absolute(&dir),
            None => default_state_dir(&cwd),
        };
        let config = Config {
            claude_bin: merged.claude_bin.unwrap_or_else(|| "claude".to_string()),
            claude_args: merged.claude_args,
            model: merged.model,
            permission_mode: merged.permission_mode,
            cwd,
            state_dir,
            queue_size: merged.queue_size.unwrap_or(16),
            turn_timeout_ms: merged.turn_timeout_ms.unwrap_or(300_000),
            interrupt_grace_ms: merged.interrupt_grace_ms.unwrap_or(5_000),
            events_ring_size: merged.events_ring_size.unwrap_or(50),
            max_child_line_bytes: merged.max_child_line_bytes.unwrap_or(64 << 20),
            max_request_bytes: merged.max_request_bytes.unwrap_or(16 << 20),
            backoff_initial_ms: merged.backoff_initial_ms.unwrap_or(1_000),
            backoff_max_ms: merged.backoff_max_ms.unwrap_or(60_000),
            healthy_after_ms: merged.healthy_after_ms.unwrap_or(10_000),
            stop_grace_ms: merged.stop_grace_ms.unwrap_or(5_000),
            stall_timeout_ms: merged.stall_timeout_ms.unwrap_or(120_000),
            crash_loop_max: merged.crash_loop_max.unwrap_or(5),
            crash_loop_window_ms: merged.crash_loop_window_ms.unwrap_or(60_000),
            resume_on_restart: merged.resume_on_restart.unwrap_or(true),
            event_log_max_bytes: merged.event_log_max_bytes.unwrap_or(10 << 20),
            event_log_keep: merged.event_log_keep.unwrap_or(3),
            max_depth: merged.max_depth.unwrap_or(1),
            config_file: file_path,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let checks: [(&'static str, bool, &str); 9] = [
            (
                "maxDepth",
                (1..=crate::nesting::MAX_DEPTH_CAP).contains(&self.max_depth),
                "must be between 1 and 8",
            ),
            (
                "crashLoopMax",
                self.crash_loop_max >= 1,
                "must be at least 1",
            ),
            (
                "claudeBin",
                !self.claude_bin.is_empty(),
                "must not be empty",
            ),
            (
                "eventsRingSize",
                self.events_ring_size >= 1,
                "must be at least 1",
            ),
            (
                "turnTimeoutMs",
                self.turn_timeout_ms >= 1,
                "must be at least 1",
            ),
            (
                "maxChildLineBytes",
                self.max_child_line_bytes >= 1024,
                "must be at least 1024",
            ),
            (
                "maxRequestBytes",
                self.max_request_bytes >= 1024,
                "must be at least 1024",
            ),
            (
                "backoffInitialMs",
                self.backoff_initial_ms >= 1,
                "must be at least 1",
            ),
            (
                "backoffMaxMs",
                self.backoff_max_ms >= self.backoff_initial_ms,
                "must not be below backoffInitialMs",
            ),
        ];
        match checks.iter().find(|(_, ok, _)| !ok) {
            Some((name, _, reason)) => Err(ConfigError::Invalid {
                name,
                reason: reason.to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// `CLAUDE_CODED_CLAUDE_ARGS` as a JSON array, so arguments with spaces need no quoting rules.
fn claude_args_from_env() -> Result<Option<Vec<String>>, ConfigError> {
    let Some(raw) = std::env::var_os("CLAUDE_CODED_CLAUDE_ARGS") else {
        return Ok(None);
    };
    serde_json::from_str(&raw.to_string_lossy())
        .map(Some)
        .map_err(|e| ConfigError::Invalid {
            name: "CLAUDE_CODED_CLAUDE_ARGS",
            reason: format!("must be a JSON array of strings ({e})"),
        })
}

/// The default config file: `$XDG_CONFIG_HOME/claude-coded/config.json`.
pub fn default_config_file() -> Option<PathBuf> {
    xdg_dir("XDG_CONFIG_HOME", ".config").map(|d| d.join("claude-coded").join("config.json"))
}

fn load_file(explicit: Option<&Path>) -> Result<(ConfigArgs, Option<PathBuf>), ConfigError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match default_config_file() {
            Some(p) if p.is_file() => p,
            _ => return Ok((ConfigArgs::default(), None)),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::ReadFile {
        path: path.clone(),
        source,
    })?;
    let args = serde_json::from_str(&text).map_err(|source| ConfigError::ParseFile {
        path: path.clone(),
        source,
    })?;
    Ok((args, Some(path)))
}

/// Flags and environment win over the file, field by field.
fn merge(args: &ConfigArgs, file: ConfigArgs) -> ConfigArgs {
    let a = args.clone();
    ConfigArgs {
        claude_bin: a.claude_bin.or(file.claude_bin),
        claude_args: if a.claude_args.is_empty() {
            file.claude_args
        } else {
            a.claude_args
        },
        model: a.model.or(file.model),
        permission_mode: a.permission_mode.or(file.permission_mode),
        cwd: a.cwd.or(file.cwd),
        state_dir: a.state_dir.or(file.state_dir),
        queue_size: a.queue_size.or(file.queue_size),
        turn_timeout_ms: a.turn_timeout_ms.or(file.turn_timeout_ms),
        interrupt_grace_ms: a.interrupt_grace_ms.or(file.interrupt_grace_ms),
        events_ring_size: a.events_ring_size.or(file.events_ring_size),
        max_child_line_bytes: a.max_child_line_bytes.or(file.max_child_line_bytes),
        max_request_bytes: a.max_request_bytes.or(file.max_request_bytes),
        backoff_initial_ms: a.backoff_initial_ms.or(file.backoff_initial_ms),
        backoff_max_ms: a.backoff_max_ms.or(file.backoff_max_ms),
        healthy_after_ms: a.healthy_after_ms.or(file.healthy_after_ms),
        stop_grace_ms: a.stop_grace_ms.or(file.stop_grace_ms),
        stall_timeout_ms: a.stall_timeout_ms.or(file.stall_timeout_ms),
        crash_loop_max: a.crash_loop_max.or(file.crash_loop_max),
        crash_loop_window_ms: a.crash_loop_window_ms.or(file.crash_loop_window_ms),
        resume_on_restart: a.resume_on_restart.or(file.resume_on_restart),
        event_log_max_bytes: a.event_log_max_bytes.or(file.event_log_max_bytes),
        event_log_keep: a.event_log_keep.or(file.event_log_keep),
        max_depth: a.max_depth.or(file.max_depth),
    }
}

fn resolve_cwd(cwd: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    let path = cwd.unwrap_or_else(|| PathBuf::from("."));
    let canonical = std::fs::canonicalize(&path).map_err(|source| ConfigError::BadCwd {
        path: path.clone(),
        source,
    })?;
    if !canonical.is_dir() {
        return Err(ConfigError::BadCwd {
            path,
            source: std::io::Error::other("not a directory"),
        });
    }
    Ok(canonical)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `$XDG_STATE_HOME/claude-coded/<cwd-key>`: one state directory per project.
fn default_state_dir(cwd: &Path) -> PathBuf {
    let base = xdg_dir("XDG_STATE_HOME", ".local/state")
        .unwrap_or_else(std::env::temp_dir)
        .join("claude-coded");
    base.join(cwd_key(cwd))
}

/// A readable, collision-resistant directory name for a cwd: last component plus a hash.
pub fn cwd_key(cwd: &Path) -> String {
    let name: String = cwd
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".to_string())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{name}-{:016x}", fnv1a(cwd.as_os_str().as_encoded_bytes()))
}

/// FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn xdg_dir(var: &str, fallback_under_home: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(dir) if Path::new(&dir).is_absolute() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(fallback_under_home)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("cc-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        std::fs::write(
            &file,
            r#"{"queueSize": 3, "model": "from-file", "turnTimeoutMs": 7}"#,
        )
        .unwrap();
        let args = ConfigArgs {
            model: Some("from-flag".into()),
            cwd: Some(dir.clone()),
            ..ConfigArgs::default()
        };
        let config = Config::resolve(&args, Some(&file)).unwrap();
        assert_eq!(config.model.as_deref(), Some("from-flag"));
        assert_eq!(config.queue_size, 3);
        assert_eq!(config.turn_timeout_ms, 7);
        assert_eq!(config.backoff_max_ms, 60_000);
        assert_eq!(config.claude_bin, "claude");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_file_keys_and_bad_cwd_are_errors() {
        let dir = std::env::temp_dir().join(format!("cc-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        std::fs::write(&file, r#"{"queueSzie": 3}"#).unwrap();
        let err = Config::resolve(&ConfigArgs::default(), Some(&file)).unwrap_err();
        assert!(err.to_string().contains("queueSzie"), "{err}");
        let args = ConfigArgs {
            cwd: Some(dir.join("missing")),
            ..ConfigArgs::default()
        };
        let err = Config::resolve(&args, Some(Path::new("/nonexistent/cc.json"))).unwrap_err();
        assert!(matches!(err, ConfigError::ReadFile { .. }), "{err}");
        std::fs::write(&file, "{}").unwrap();
        let err = Config::resolve(&args, Some(&file)).unwrap_err();
        assert!(matches!(err, ConfigError::BadCwd { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cwd_key_is_stable_and_distinct() {
        let a = cwd_key(Path::new("/home/u/project"));
        assert_eq!(a, cwd_key(Path::new("/home/u/project")));
        assert_ne!(a, cwd_key(Path::new("/home/v/project")));
        assert!(a.starts_with("project-"));
    }
}
