//! Configuration: command-line flag, then environment variable, then config file, then default.
//!
//! clap merges flags and `CLAUDE_CODED_*` variables into [`ConfigArgs`]; the JSON config
//! file fills what both left unset; [`Config`] is the resolved result that the rest of
//! the program reads (and that `status` and `claude-coded config` show).
//!
//! Each setting is declared once, in the `settings!` invocation below: name, type,
//! default, help, variable (the flag and the file key follow from the name). Adding a
//! setting is one entry there, a row in the table in docs/reference.md, and its field in
//! `status`'s typed view (`api::StatusConfig`, filled by [`Config::status_config`]); tests
//! check the table and the view.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::api::StatusConfig;
use crate::permissions::{Decider, PermissionMode};
use crate::redact::redact;
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
    #[error("invalid --{} ({name} in a config file): {reason}", flag_name(.name))]
    Invalid { name: &'static str, reason: String },
}

/// `maxSessions` as its flag is spelled: `max-sessions`.
fn flag_name(key: &str) -> String {
    let mut flag = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            flag.push('-');
            flag.push(c.to_ascii_lowercase());
        } else {
            flag.push(c);
        }
    }
    flag
}

/// One setting with a default, as declared: for `--help`, the table in docs/reference.md and its test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The field name (`queue_size`): the flag is `--queue-size`, the file key `queueSize`.
    pub name: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The default as the docs show it.
    pub default: &'static str,
}

/// Declares every setting once and derives the rest: [`ConfigArgs`] (flags, variables and
/// file keys, all optional), [`Config`] (resolved), the field-by-field merge, the defaults
/// and [`SETTINGS`]. `special` settings have no plain default (they are resolved by hand
/// in [`Config::resolve`]); `defaulted` ones have one, shown in `--help` and the docs.
macro_rules! settings {
    (
        special {
            $( $(#[$smeta:meta])* $sname:ident : $sin:ty => $sout:ty ; )*
        }
        defaulted {
            $(
                $name:ident : $ty:ty = $default:expr , shown $shown:literal ,
                env $env:literal $(, value_name $value_name:literal)? , help $help:literal ;
            )*
        }
    ) => {
        /// Settings that can come from flags, `CLAUDE_CODED_*` variables or the config file.
        #[derive(Debug, Clone, Default, Args, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct ConfigArgs {
            $( $(#[$smeta])* pub $sname: $sin, )*
            $(
                #[doc = $help]
                #[arg(
                    long,
                    global = true,
                    env = $env,
                    help = concat!($help, " [default: ", $shown, "]")
                    $(, value_name = $value_name)?
                )]
                pub $name: Option<$ty>,
            )*
        }

        /// The resolved configuration.
        #[derive(Debug, Clone, Serialize, PartialEq)]
        #[serde(rename_all = "camelCase")]
        pub struct Config {
            $( pub $sname: $sout, )*
            $( pub $name: $ty, )*
            /// The config file that was read, if any.
            pub config_file: Option<PathBuf>,
        }

        /// The special settings, resolved by hand.
        struct Special {
            $( $sname: $sout, )*
        }

        /// Flags and environment win over the file, field by field.
        fn merge(args: &ConfigArgs, file: ConfigArgs) -> ConfigArgs {
            let a = args.clone();
            ConfigArgs {
                $( $sname: Merge::over(a.$sname, file.$sname), )*
                $( $name: a.$name.or(file.$name), )*
            }
        }

        impl Config {
            /// The special settings as resolved, the others from `merged` or their defaults.
            fn assemble(special: Special, merged: &ConfigArgs, config_file: Option<PathBuf>) -> Config {
                Config {
                    $( $sname: special.$sname, )*
                    $( $name: merged.$name.clone().unwrap_or_else(|| $default), )*
                    config_file,
                }
            }
        }

        impl Config {
            /// The settings with a default as `CLAUDE_CODED_*` variables and their values.
            fn defaulted_env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
                vec![ $( ($env, self.$name.to_string().into()), )* ]
            }
        }

        /// Every setting with a default, in declaration order.
        pub const SETTINGS: &[Setting] = &[
            $( Setting { name: stringify!($name), env: $env, default: $shown }, )*
        ];
    };
}

/// How a special setting given in two places combines: the first (flags and environment)
/// wins when it says anything.
trait Merge {
    fn over(first: Self, second: Self) -> Self;
}

impl<T> Merge for Option<T> {
    fn over(first: Self, second: Self) -> Self {
        first.or(second)
    }
}

impl<T> Merge for Vec<T> {
    fn over(first: Self, second: Self) -> Self {
        if first.is_empty() { second } else { first }
    }
}

settings! {
    special {
        /// Extra argument for the CLI (repeat for several), after the stream-json flags;
        /// CLAUDE_CODED_CLAUDE_ARGS takes a JSON array of strings
        #[arg(
            long = "claude-arg",
            global = true,
            value_name = "ARG",
            allow_hyphen_values = true
        )]
        #[serde(default)]
        claude_args: Vec<String> => Vec<String>;
        /// Model for the child (`--model` of the CLI)
        #[arg(long, global = true, env = "CLAUDE_CODED_MODEL")]
        model: Option<String> => Option<String>;
        /// Permission mode for the child (`--permission-mode` of the CLI); unset keeps the CLI's default
        #[arg(long, global = true, env = "CLAUDE_CODED_PERMISSION_MODE")]
        permission_mode: Option<PermissionMode> => Option<PermissionMode>;
        /// The most permissive mode an ask may choose with its `permissionMode`
        /// [default: the permission mode, or `default`]
        #[arg(long, global = true, env = "CLAUDE_CODED_PERMISSION_CEILING", value_name = "MODE")]
        permission_ceiling: Option<PermissionMode> => PermissionMode;
        /// A rule the CLI allows without asking, in its syntax (`Bash(git diff:*)`, `Edit`,
        /// `mcp__github__*`); repeat for several; CLAUDE_CODED_ALLOW_TOOLS takes a JSON array
        #[arg(long = "allow-tool", global = true, value_name = "RULE")]
        #[serde(default)]
        allow_tools: Vec<String> => Vec<String>;
        /// A rule the CLI denies without asking (the same syntax); repeat for several;
        /// CLAUDE_CODED_DENY_TOOLS takes a JSON array
        #[arg(long = "deny-tool", global = true, value_name = "RULE")]
        #[serde(default)]
        deny_tools: Vec<String> => Vec<String>;
        /// Working directory of the child [default: the current directory]
        #[arg(long, global = true, env = "CLAUDE_CODED_CWD", value_name = "DIR")]
        cwd: Option<PathBuf> => PathBuf;
        /// A directory (and what is below it) where an ask may start a session with its
        /// `cwd`; repeat for several; CLAUDE_CODED_ALLOW_DIRS takes a JSON array
        /// [default: the working directory]
        #[arg(long = "allow-dir", global = true, value_name = "DIR")]
        #[serde(default)]
        allow_dirs: Vec<PathBuf> => Vec<PathBuf>;
        /// Most a session may spend in USD while this claude-coded runs (its CLI is started
        /// with what is left as --max-budget-usd; an ask to a session that has spent it is
        /// refused) [default: no limit]
        #[arg(long, global = true, env = "CLAUDE_CODED_SESSION_BUDGET_USD", value_name = "USD")]
        session_budget_usd: Option<f64> => Option<f64>;
        /// Most all sessions together may spend in USD while this claude-coded runs
        /// [default: no limit]
        #[arg(long, global = true, env = "CLAUDE_CODED_BUDGET_USD", value_name = "USD")]
        budget_usd: Option<f64> => Option<f64>;
        /// Directory for identity.json, daemon-state.json and events.jsonl
        /// [default: $XDG_STATE_HOME/claude-coded/CWD-KEY]
        #[arg(long, global = true, env = "CLAUDE_CODED_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf> => PathBuf;
        /// Also serve over HTTP on this address (`127.0.0.1:8080`, or `localhost:8080` for
        /// 127.0.0.1; port 0 picks one, written to listen.json): MCP at /mcp, the plain
        /// methods at /rpc (HTTP and WebSocket), /healthz [default: no HTTP]
        #[arg(long, global = true, env = "CLAUDE_CODED_LISTEN", value_name = "ADDR:PORT")]
        listen: Option<ListenAddr> => Option<SocketAddr>;
        /// The bearer token HTTP clients must send (on loopback too: other local users
        /// reach it) [default: one generated into listen-token in the state directory]
        #[arg(long, global = true, env = "CLAUDE_CODED_LISTEN_TOKEN", value_name = "TOKEN",
              hide_env_values = true)]
        listen_token: Option<Secret> => Option<Secret>;
    }
    defaulted {
        claude_bin: String = "claude".to_string(), shown "claude", env "CLAUDE_CODED_CLAUDE_BIN", value_name "PATH",
            help "Claude Code CLI to run (a path, or a name looked up on PATH)";
        queue_size: usize = 16, shown "16", env "CLAUDE_CODED_QUEUE_SIZE",
            help "Asks that may wait behind the running one before \"busy\" errors";
        turn_timeout_ms: u64 = 300_000, shown "300000", env "CLAUDE_CODED_TURN_TIMEOUT_MS",
            help "Default turn timeout in ms";
        interrupt_grace_ms: u64 = 5_000, shown "5000", env "CLAUDE_CODED_INTERRUPT_GRACE_MS",
            help "After a timeout's interrupt, how long to wait for the result before killing the child, in ms";
        events_ring_size: usize = 50, shown "50", env "CLAUDE_CODED_EVENTS_RING_SIZE",
            help "Events kept in memory for `events` (and as many `turn.step` events, in a ring of their own)";
        max_child_line_bytes: usize = 64 << 20, shown "67108864", env "CLAUDE_CODED_MAX_CHILD_LINE_BYTES",
            help "Longest line accepted from the child, in bytes";
        max_request_bytes: usize = 16 << 20, shown "16777216", env "CLAUDE_CODED_MAX_REQUEST_BYTES",
            help "Longest request line accepted on stdin, in bytes";
        backoff_initial_ms: u64 = 1_000, shown "1000", env "CLAUDE_CODED_BACKOFF_INITIAL_MS",
            help "First restart delay in ms; doubles per failed start";
        backoff_max_ms: u64 = 60_000, shown "60000", env "CLAUDE_CODED_BACKOFF_MAX_MS",
            help "Longest restart delay in ms";
        healthy_after_ms: u64 = 10_000, shown "10000", env "CLAUDE_CODED_HEALTHY_AFTER_MS",
            help "A child that ran this long (ms) counts as healthy and resets the backoff";
        stop_grace_ms: u64 = 5_000, shown "5000", env "CLAUDE_CODED_STOP_GRACE_MS",
            help "On stop, how long the child may take to exit after its stdin closes, in ms";
        stall_timeout_ms: u64 = 120_000, shown "120000", env "CLAUDE_CODED_STALL_TIMEOUT_MS",
            help "A turn whose child prints nothing for this long (ms) is interrupted, then killed; 0 turns the watchdog off";
        crash_loop_max: u32 = 5, shown "5", env "CLAUDE_CODED_CRASH_LOOP_MAX",
            help "Failed starts within --crash-loop-window-ms that mark the child `failed`";
        crash_loop_window_ms: u64 = 60_000, shown "60000", env "CLAUDE_CODED_CRASH_LOOP_WINDOW_MS",
            help "Window for counting failed starts, in ms";
        resume_on_restart: bool = true, shown "true", env "CLAUDE_CODED_RESUME_ON_RESTART", value_name "BOOL",
            help "After the child dies, start the next one with `--resume <sessionId>`";
        event_log_max_bytes: u64 = 10 << 20, shown "10485760", env "CLAUDE_CODED_EVENT_LOG_MAX_BYTES",
            help "events.jsonl is rotated past this size in bytes";
        event_log_keep: usize = 3, shown "3", env "CLAUDE_CODED_EVENT_LOG_KEEP",
            help "Rotated event logs kept (events.jsonl.1 ... .N)";
        permission_decider: Decider = Decider::Relay, shown "relay", env "CLAUDE_CODED_PERMISSION_DECIDER", value_name "WHO",
            help "Who decides what the permission rules leave open: `relay` (ask the client, deny when it cannot be asked), `deny` or `allow`";
        permission_timeout_ms: u64 = 60_000, shown "60000", env "CLAUDE_CODED_PERMISSION_TIMEOUT_MS",
            help "How long a relayed permission question waits for the client before it is denied, in ms";
        max_sessions: usize = 4, shown "4", env "CLAUDE_CODED_MAX_SESSIONS",
            help "Sessions whose Claude Code child may run at once; an ask to another one stops the least recently used idle one, or gets \"busy\"";
        spare_sessions: usize = 0, shown "0", env "CLAUDE_CODED_SPARE_SESSIONS", value_name "N",
            help "Claude Code CLIs kept started ahead of need, so a new session answers without the CLI's cold start (each is an idle CLI's memory; besides --max-sessions)";
        session_idle_ms: u64 = 1_800_000, shown "1800000", env "CLAUDE_CODED_SESSION_IDLE_MS",
            help "A session idle this long (ms) has its child stopped; its next ask starts it again and continues its conversation";
        result_ttl_ms: u64 = 3_600_000, shown "3600000", env "CLAUDE_CODED_RESULT_TTL_MS",
            help "How long the result of a background ask (`background: true`) is kept for `wait`/`result` once the turn ended, in ms, also across restarts";
        max_depth: u32 = 1, shown "1", env "CLAUDE_CODED_MAX_DEPTH",
            help "How many claude-coded may run nested in each other's Claude Code (1 to 8): at the default, a sub-agent cannot delegate through claude-coded again";
        listen_no_token: bool = false, shown "false", env "CLAUDE_CODED_LISTEN_NO_TOKEN", value_name "BOOL",
            help "Serve loopback HTTP without a token: every local user (and every process of theirs) can then drive the agent as you; only on a machine nobody else uses";
    }
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
            && let Some(env_args) = list_from_env("CLAUDE_CODED_CLAUDE_ARGS")?
        {
            merged.claude_args = env_args;
        }
        if args.allow_tools.is_empty()
            && let Some(rules) = list_from_env("CLAUDE_CODED_ALLOW_TOOLS")?
        {
            merged.allow_tools = rules;
        }
        if args.deny_tools.is_empty()
            && let Some(rules) = list_from_env("CLAUDE_CODED_DENY_TOOLS")?
        {
            merged.deny_tools = rules;
        }
        let cwd = resolve_cwd(merged.cwd.clone())?;
        if merged.allow_dirs.is_empty()
            && let Some(dirs) = list_from_env("CLAUDE_CODED_ALLOW_DIRS")?
        {
            merged.allow_dirs = dirs.into_iter().map(PathBuf::from).collect();
        }
        let allow_dirs = resolve_allow_dirs(std::mem::take(&mut merged.allow_dirs), &cwd)?;
        let state_dir = match &merged.state_dir {
            Some(dir) => absolute(dir),
            None => default_state_dir(&cwd),
        };
        let special = Special {
            claude_args: std::mem::take(&mut merged.claude_args),
            model: merged.model.take(),
            permission_ceiling: merged
                .permission_ceiling
                .or(merged.permission_mode)
                .unwrap_or(PermissionMode::Default),
            permission_mode: merged.permission_mode.take(),
            allow_tools: std::mem::take(&mut merged.allow_tools),
            deny_tools: std::mem::take(&mut merged.deny_tools),
            allow_dirs,
            session_budget_usd: merged.session_budget_usd,
            budget_usd: merged.budget_usd,
            cwd,
            state_dir,
            listen: merged.listen.take().map(|ListenAddr(addr)| addr),
            listen_token: merged.listen_token.take(),
        };
        let config = Config::assemble(special, &merged, file_path);
        config.validate()?;
        Ok(config)
    }

    /// This configuration as `CLAUDE_CODED_*` variables, which a claude-coded started with
    /// them (and no flags) resolves to the same configuration: how `claude-coded start`
    /// hands its settings to the daemon it starts.
    pub fn to_env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        let mut env = self.defaulted_env();
        let args = serde_json::to_string(&self.claude_args).unwrap_or_else(|_| "[]".into());
        env.push(("CLAUDE_CODED_CLAUDE_ARGS", args.into()));
        env.push(("CLAUDE_CODED_CWD", self.cwd.clone().into()));
        env.push(("CLAUDE_CODED_STATE_DIR", self.state_dir.clone().into()));
        if let Some(model) = &self.model {
            env.push(("CLAUDE_CODED_MODEL", model.into()));
        }
        if let Some(mode) = &self.permission_mode {
            env.push(("CLAUDE_CODED_PERMISSION_MODE", mode.as_str().into()));
        }
        let ceiling = self.permission_ceiling.as_str();
        env.push(("CLAUDE_CODED_PERMISSION_CEILING", ceiling.into()));
        for (var, rules) in [
            ("CLAUDE_CODED_ALLOW_TOOLS", &self.allow_tools),
            ("CLAUDE_CODED_DENY_TOOLS", &self.deny_tools),
        ] {
            let rules = serde_json::to_string(rules).unwrap_or_else(|_| "[]".into());
            env.push((var, rules.into()));
        }
        for (var, budget) in [
            ("CLAUDE_CODED_SESSION_BUDGET_USD", self.session_budget_usd),
            ("CLAUDE_CODED_BUDGET_USD", self.budget_usd),
        ] {
            if let Some(usd) = budget {
                env.push((var, usd.to_string().into()));
            }
        }
        let dirs = serde_json::to_string(&self.allow_dirs).unwrap_or_else(|_| "[]".into());
        env.push(("CLAUDE_CODED_ALLOW_DIRS", dirs.into()));
        if let Some(file) = &self.config_file {
            env.push(("CLAUDE_CODED_CONFIG", file.clone().into()));
        }
        if let Some(listen) = &self.listen {
            env.push(("CLAUDE_CODED_LISTEN", listen.to_string().into()));
        }
        if let Some(token) = &self.listen_token {
            env.push(("CLAUDE_CODED_LISTEN_TOKEN", token.expose().into()));
        }
        env
    }

    /// What the child layer needs to start a CLI under these settings.
    pub(crate) fn cli_settings(&self) -> crate::child::spawn::CliSettings<'_> {
        crate::child::spawn::CliSettings {
            claude_bin: &self.claude_bin,
            model: self.model.as_deref(),
            permission_mode: self.permission_mode,
            allow_tools: &self.allow_tools,
            deny_tools: &self.deny_tools,
            claude_args: &self.claude_args,
            cwd: &self.cwd,
            allow_dirs: &self.allow_dirs,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mode = self.permission_mode.unwrap_or(PermissionMode::Default);
        // The CLI takes a budget to the millionth of a dollar: less would reach it as 0.
        let budget_ok = |usd: Option<f64>| {
            usd.is_none_or(|usd| usd.is_finite() && usd >= crate::api::MIN_BUDGET_USD)
        };
        let checks: [(&'static str, bool, &str); 18] = [
            (
                "sessionBudgetUsd",
                budget_ok(self.session_budget_usd),
                "must be a number of USD of at least 0.000001",
            ),
            (
                "budgetUsd",
                budget_ok(self.budget_usd),
                "must be a number of USD of at least 0.000001",
            ),
            (
                "maxSessions",
                (1..=64).contains(&self.max_sessions),
                "must be between 1 and 64",
            ),
            (
                "spareSessions",
                self.spare_sessions <= 8,
                "must be between 0 and 8",
            ),
            (
                "sessionIdleMs",
                self.session_idle_ms >= 1,
                "must be at least 1",
            ),
            (
                "listenToken",
                // Guessable tokens would make the rule that requires one pointless.
                self.listen_token
                    .as_ref()
                    .is_none_or(|t| t.expose().trim().len() >= 16),
                "must have at least 16 characters",
            ),
            (
                "permissionCeiling",
                mode.within(self.permission_ceiling),
                "must not be below permissionMode",
            ),
            ("resultTtlMs", self.result_ttl_ms >= 1, "must be at least 1"),
            (
                "permissionTimeoutMs",
                self.permission_timeout_ms >= 1,
                "must be at least 1",
            ),
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

/// A list setting's variable as a JSON array, so items with spaces or commas need no
/// quoting rules.
fn list_from_env(name: &'static str) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(raw) = std::env::var_os(name) else {
        return Ok(None);
    };
    serde_json::from_str(&raw.to_string_lossy())
        .map(Some)
        .map_err(|e| ConfigError::Invalid {
            name,
            reason: format!("must be a JSON array of strings ({e})"),
        })
}

/// `--listen`'s address: an IP address and port, or `localhost:PORT`, which is
/// 127.0.0.1 (the loopback address itself, never what a resolver says the name is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<ListenAddr, String> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(ListenAddr(addr));
        }
        let refused = || {
            format!(
                "{s:?} is not ADDR:PORT: give an IP address (127.0.0.1:8080, [::1]:8080) or localhost:PORT"
            )
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(refused)?;
        let port: u16 = port.parse().map_err(|_| refused())?;
        match host.eq_ignore_ascii_case("localhost") {
            true => Ok(ListenAddr(SocketAddr::from(([127, 0, 0, 1], port)))),
            false => Err(refused()),
        }
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A setting that is a secret (the HTTP bearer token): it never shows in `--help`,
/// `claude-coded config`, `status`, the state file or a log line, only to the code that
/// compares it ([`Secret::expose`]).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one comparison (and handing it on to `start`'s daemon).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// What a secret that was given serialises to.
const SECRET_SET: &str = "(set)";

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(SECRET_SET)
    }
}

impl Config {
    /// The configuration as `status` shows it: what `Config` serialises to, with every
    /// text masked as the event log masks it (a token among the CLI's arguments, say).
    pub fn status_config(&self) -> StatusConfig {
        let text = |s: &str| redact(s).into_owned();
        let texts = |list: &[String]| list.iter().map(|s| text(s)).collect();
        let path = |p: &Path| PathBuf::from(text(&p.to_string_lossy()));
        StatusConfig {
            claude_args: texts(&self.claude_args),
            model: self.model.as_deref().map(text),
            permission_mode: self.permission_mode,
            permission_ceiling: self.permission_ceiling,
            allow_tools: texts(&self.allow_tools),
            deny_tools: texts(&self.deny_tools),
            cwd: path(&self.cwd),
            allow_dirs: self.allow_dirs.iter().map(|p| path(p)).collect(),
            session_budget_usd: self.session_budget_usd,
            budget_usd: self.budget_usd,
            state_dir: path(&self.state_dir),
            listen: self.listen.map(|addr| addr.to_string()),
            listen_token: self.listen_token.as_ref().map(|_| SECRET_SET.to_string()),
            claude_bin: text(&self.claude_bin),
            queue_size: self.queue_size,
            turn_timeout_ms: self.turn_timeout_ms,
            interrupt_grace_ms: self.interrupt_grace_ms,
            events_ring_size: self.events_ring_size,
            max_child_line_bytes: self.max_child_line_bytes,
            max_request_bytes: self.max_request_bytes,
            backoff_initial_ms: self.backoff_initial_ms,
            backoff_max_ms: self.backoff_max_ms,
            healthy_after_ms: self.healthy_after_ms,
            stop_grace_ms: self.stop_grace_ms,
            stall_timeout_ms: self.stall_timeout_ms,
            crash_loop_max: self.crash_loop_max,
            crash_loop_window_ms: self.crash_loop_window_ms,
            resume_on_restart: self.resume_on_restart,
            event_log_max_bytes: self.event_log_max_bytes,
            event_log_keep: self.event_log_keep,
            permission_decider: self.permission_decider,
            permission_timeout_ms: self.permission_timeout_ms,
            max_sessions: self.max_sessions,
            spare_sessions: self.spare_sessions,
            session_idle_ms: self.session_idle_ms,
            result_ttl_ms: self.result_ttl_ms,
            max_depth: self.max_depth,
            listen_no_token: self.listen_no_token,
            config_file: self.config_file.as_deref().map(path),
        }
    }
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

/// The directories sessions may run in, each canonical (symlinks resolved, so a session's
/// `cwd` is compared with where they really are); none given means the working directory.
fn resolve_allow_dirs(dirs: Vec<PathBuf>, cwd: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    if dirs.is_empty() {
        return Ok(vec![cwd.to_path_buf()]);
    }
    dirs.into_iter()
        .map(|dir| {
            let dir = if dir.is_absolute() {
                dir
            } else {
                cwd.join(dir)
            };
            std::fs::canonicalize(&dir)
                .ok()
                .filter(|d| d.is_dir())
                .ok_or_else(|| ConfigError::Invalid {
                    name: "allowDirs",
                    reason: format!("{} is not an existing directory", dir.display()),
                })
        })
        .collect()
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `$XDG_STATE_HOME/claude-coded/<cwd-key>`: one state directory per project.
pub(crate) fn default_state_dir(cwd: &Path) -> PathBuf {
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
    fn the_status_config_is_the_config_as_it_serialises_masked() {
        let dir = std::env::temp_dir().join(format!("cc-config-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let args = ConfigArgs {
            claude_args: vec!["--verbose".into()],
            model: Some("sonnet".into()),
            permission_mode: Some(PermissionMode::AcceptEdits),
            allow_tools: vec!["Bash(git diff:*)".into()],
            cwd: Some(dir.clone()),
            session_budget_usd: Some(0.5),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            listen_token: Some("hunter2-hunter2-hunter2".parse().unwrap()),
            max_sessions: Some(2),
            ..ConfigArgs::default()
        };
        let config = Config::resolve(&args, None).unwrap();
        let mut expected = serde_json::to_value(&config).unwrap();
        crate::redact::redact_value(&mut expected);
        let status = config.status_config();
        // The same JSON, key for key and in the same order.
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            expected.to_string()
        );
        assert_eq!(
            serde_json::from_value::<StatusConfig>(expected).unwrap(),
            status
        );
        assert_eq!(status.listen_token.as_deref(), Some("(set)"));
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
    fn an_invalid_setting_is_named_by_its_flag_and_its_file_key() {
        let args = ConfigArgs {
            max_sessions: Some(0),
            cwd: Some(std::env::temp_dir()),
            ..ConfigArgs::default()
        };
        let err = Config::resolve(&args, None);
        let err = err.map(|_| ()).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid --max-sessions (maxSessions in a config file): "),
            "{err}"
        );
    }

    /// The rows of docs/reference.md's command-line table: flag (`--queue-size`), variable, default.
    fn readme_rows() -> Vec<(String, String, String)> {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md"))
                .expect("docs/reference.md");
        readme
            .lines()
            .filter(|l| l.starts_with("| `--"))
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                let flag = cells[1]
                    .trim_matches('`')
                    .split_whitespace()
                    .next()
                    .unwrap();
                let env = cells[2].split('`').nth(1).unwrap_or_default();
                (flag.to_string(), env.to_string(), cells[3].replace('`', ""))
            })
            .collect()
    }

    #[test]
    fn the_readme_table_shows_every_setting_with_its_variable_and_default() {
        let rows = readme_rows();
        for setting in SETTINGS {
            let flag = format!("--{}", setting.name.replace('_', "-"));
            let row = rows.iter().find(|(f, _, _)| *f == flag);
            let (_, env, default) = row.unwrap_or_else(|| panic!("docs/reference.md lacks {flag}"));
            assert_eq!(env, setting.env, "{flag}");
            assert_eq!(
                default.split_whitespace().next(),
                Some(setting.default),
                "{flag}: docs/reference.md says {default:?}"
            );
        }
    }

    #[test]
    fn every_flag_in_the_readme_table_exists() {
        use clap::CommandFactory;
        let command = crate::cli::Cli::command();
        let longs: Vec<String> = command
            .get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        for (flag, _, _) in readme_rows() {
            assert!(
                longs.contains(&flag),
                "docs/reference.md documents {flag}, which the CLI lacks"
            );
        }
    }

    #[test]
    fn the_defaults_shown_are_the_defaults_used() {
        let dir = std::env::temp_dir();
        let args = ConfigArgs {
            cwd: Some(dir.clone()),
            ..ConfigArgs::default()
        };
        let missing = dir.join(format!("cc-no-config-{}.json", std::process::id()));
        std::fs::write(&missing, "{}").unwrap();
        let config = serde_json::to_value(Config::resolve(&args, Some(&missing)).unwrap()).unwrap();
        std::fs::remove_file(&missing).unwrap();
        for setting in SETTINGS {
            let key = camel(setting.name);
            let value = match &config[&key] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(value, setting.default, "{key}");
        }
    }

    fn camel(snake: &str) -> String {
        let mut out = String::new();
        let mut upper = false;
        for c in snake.chars() {
            match (c, upper) {
                ('_', _) => upper = true,
                (c, true) => {
                    out.extend(c.to_uppercase());
                    upper = false;
                }
                (c, false) => out.push(c),
            }
        }
        out
    }

    #[test]
    fn listen_takes_an_ip_address_or_localhost_and_nothing_else() {
        let parsed = |s: &str| s.parse::<ListenAddr>().map(|ListenAddr(a)| a.to_string());
        assert_eq!(parsed("localhost:8700").unwrap(), "127.0.0.1:8700");
        assert_eq!(parsed("LocalHost:0").unwrap(), "127.0.0.1:0");
        assert_eq!(parsed("[::1]:9").unwrap(), "[::1]:9");
        assert_eq!(parsed("0.0.0.0:80").unwrap(), "0.0.0.0:80");
        for bad in [
            "localhost",
            "localhost:65536",
            "example.com:80",
            "localhost.evil:1",
            ":80",
        ] {
            assert!(parsed(bad).unwrap_err().contains("localhost:PORT"), "{bad}");
        }
        let file: ConfigArgs = serde_json::from_str(r#"{"listen": "localhost:1"}"#).unwrap();
        assert_eq!(
            file.listen,
            Some(ListenAddr(SocketAddr::from(([127, 0, 0, 1], 1))))
        );
        assert!(serde_json::from_str::<ConfigArgs>(r#"{"listen": "nowhere:1"}"#).is_err());
    }

    #[test]
    fn cwd_key_is_stable_and_distinct() {
        let a = cwd_key(Path::new("/home/u/project"));
        assert_eq!(a, cwd_key(Path::new("/home/u/project")));
        assert_ne!(a, cwd_key(Path::new("/home/v/project")));
        assert!(a.starts_with("project-"));
    }
}
