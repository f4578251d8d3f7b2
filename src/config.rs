//! Configuration: command-line flag, then environment variable, then config file, then default.
//!
//! clap merges flags and `CLAUDE_CODED_*` variables into [`ConfigArgs`]; the JSON config
//! file fills what both left unset; [`Config`] is the resolved result that the rest of
//! the program reads (and that `status` and `claude-coded config` show).
//!
//! Each setting is declared once, in the `settings!` invocation below: its type, how it
//! resolves (a default, or a named resolver for the few derived from others), its
//! variable, its checks, an example value and its help; the flag, the file key, the
//! merge, `validate`, the variables [`Config::to_env`] hands on and [`SETTINGS`] follow
//! from the entries. Adding a setting is one entry there, a row in the table in
//! docs/reference.md, and its field in `status`'s typed view (`api::StatusConfig`, filled
//! by [`Config::status_config`]); tests check the table, the view, and (from the
//! examples) that every setting survives `start`'s hand-over.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;

mod values;

use values::SECRET_SET;
pub use values::{ListenAddr, Secret};

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
    /// A setting (`name` is its field, `max_sessions`) breaks a rule; the message names
    /// it as a flag and as a file key, since either may have given it.
    #[error("invalid {} ({} in a config file): {reason}", flag_of(.name), camel_case(.name))]
    Invalid { name: &'static str, reason: String },
    /// A list's variable is not the JSON array it takes.
    #[error("invalid {var}: {reason}")]
    BadVariable { var: &'static str, reason: String },
}

/// One setting as declared: for `--help`, the table in docs/reference.md and its test, and
/// the configuration of the round-trip test (`tests/suite/config_roundtrip.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The field name (`queue_size`): the file key is `queueSize`, the flag `--queue-size`
    /// unless [`Setting::long`] names another.
    pub name: &'static str,
    /// The flag when it is not the field's name: a list's flag is singular (`allow-tool`).
    pub long: Option<&'static str>,
    /// The environment variable (a list's takes a JSON array).
    pub env: &'static str,
    /// The default as the docs show it; `None` for a setting that is unset by default or
    /// whose default a resolver derives (the current directory, say).
    pub default: Option<&'static str>,
    /// A value other than the default, as JSON in a config file, where `{home}` stands for
    /// a directory the test provides; `None` for a setting the round-trip test must leave
    /// at its default (it says why).
    pub example: Option<&'static str>,
}

impl Setting {
    /// The flag as typed: `--queue-size`, `--allow-tool`.
    pub fn flag(&self) -> String {
        match self.long {
            Some(long) => format!("--{long}"),
            None => format!("--{}", self.name.replace('_', "-")),
        }
    }

    /// The key in a config file: `queueSize`.
    pub fn file_key(&self) -> String {
        camel_case(self.name)
    }
}

/// The flag of the setting whose field is `name`, as typed (`--allow-dir` for
/// `allow_dirs`).
fn flag_of(name: &str) -> String {
    SETTINGS
        .iter()
        .find(|setting| setting.name == name)
        .map_or_else(|| format!("--{}", name.replace('_', "-")), Setting::flag)
}

/// `max_sessions` as a config file spells it: `maxSessions`.
fn camel_case(snake: &str) -> String {
    let mut key = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        match (c, upper) {
            ('_', _) => upper = true,
            (c, true) => {
                key.push(c.to_ascii_uppercase());
                upper = false;
            }
            (c, false) => key.push(c),
        }
    }
    key
}

/// Declares every setting once and derives the rest from its entry: [`ConfigArgs`] (flags,
/// variables and file keys, all optional), [`Config`] (resolved), the field-by-field merge,
/// the resolution, [`Config::to_env`]'s variables, `validate` and [`SETTINGS`].
///
/// An entry, its parts in this order:
///
/// - `name: Given => Resolved,`: what flags, variables and the file give, in
///   [`ConfigArgs`] (clap reads `Option` and `Vec` there), and the resolved type, in
///   [`Config`]; `name: Type,` when the setting is what was given;
/// - optionally `default EXPR, shown "TEXT",`: the default, and as `--help` and the docs
///   show it;
/// - optionally `by resolver(earlier, ...),`: the function that resolves what was given,
///   with the settings declared above it that it needs, resolved (`cwd` for
///   `allow_dirs`); without a default or a resolver the setting is what was given;
/// - `env "VAR",` or `json_env "VAR",`: its variable; a `json_env` one is a list's and
///   takes a JSON array (read here, not by clap, so that items may hold commas);
/// - optionally `flag "name",`: the flag when it is not the field's name;
/// - optionally `arg(...),`: more of clap's attributes (`value_name`, `hide_env_values`);
/// - any number of `check |c| PREDICATE => "reason",`: what must hold of the resolved
///   [`Config`], and the reason its error gives when it does not;
/// - `example JSON,`: a value other than the default, for the round-trip test (`{home}`
///   in a path stands for the test's directory); `example _,` for the few that test
///   leaves at their default, each with its reason in its `SAME_AS_DEFAULT`;
/// - `help "TEXT";`: for `--help` (a default is added to it) and the docs of the field.
macro_rules! settings {
    ($(
        $name:ident : $in:ty $( => $out:ty )? ,
        $( default $default:expr , shown $shown:literal , )?
        $( by $resolver:ident ( $( $dep:ident ),* ) , )?
        $( env $env:literal , )?
        $( json_env $json_env:literal , )?
        $( flag $flag:literal , )?
        $( arg ( $( $arg:tt )* ) , )?
        $( check $check:expr => $reason:literal , )*
        example $example:tt ,
        help $help:literal ;
    )*) => {
        /// Settings that can come from flags, `CLAUDE_CODED_*` variables or the config file.
        #[derive(Debug, Clone, Default, Args, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields, default)]
        pub struct ConfigArgs {
            $(
                #[doc = $help]
                #[arg(
                    long $( = $flag )?,
                    global = true,
                    $( env = $env, )?
                    $( $( $arg )*, )?
                    help = concat!($help $( , " [default: ", $shown, "]" )?)
                )]
                pub $name: $in,
            )*
        }

        /// The resolved configuration.
        #[derive(Debug, Clone, Serialize, PartialEq)]
        #[serde(rename_all = "camelCase")]
        pub struct Config {
            $( #[doc = $help] pub $name: resolved_type!($in $( => $out )?), )*
            /// The config file that was read, if any.
            pub config_file: Option<PathBuf>,
        }

        /// Flags and environment win over the file, field by field.
        fn merge(args: &ConfigArgs, file: ConfigArgs) -> ConfigArgs {
            let a = args.clone();
            ConfigArgs {
                $( $name: Merge::over(a.$name, file.$name), )*
            }
        }

        /// A list's variable, read by hand (clap does not take JSON): it wins over the
        /// file, and a flag over it.
        fn lists_from_env(args: &ConfigArgs, merged: &mut ConfigArgs) -> Result<(), ConfigError> {
            $($(
                if args.$name.is_empty()
                    && let Some(list) = list_from_env($json_env)?
                {
                    merged.$name = list;
                }
            )?)*
            Ok(())
        }

        /// Each setting from what was given, in declaration order, so that a resolver gets
        /// the settings above it resolved.
        fn resolve_each(merged: ConfigArgs, config_file: Option<PathBuf>) -> Result<Config, ConfigError> {
            $(
                let $name = resolved!(
                    merged.$name $( , default $default )? $( , by $resolver( $( &$dep ),* ) )?
                );
            )*
            Ok(Config { $( $name, )* config_file })
        }

        impl Config {
            /// The settings as `CLAUDE_CODED_*` variables and their values, each in the form
            /// its variable is read in; a setting that is unset has none.
            fn settings_env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
                let vars = [ $( (concat!($( $env )? $( $json_env )?), ToEnv::to_env(&self.$name)), )* ];
                vars.into_iter()
                    .filter_map(|(var, value)| Some((var, value?)))
                    .collect()
            }

            /// The first setting that breaks one of its checks, in declaration order.
            fn validate(&self) -> Result<(), ConfigError> {
                let checks: &[(&'static str, fn(&Config) -> bool, &'static str)] = &[
                    $( $( (stringify!($name), $check, $reason), )* )*
                ];
                match checks.iter().find(|(_, holds, _)| !holds(self)) {
                    Some((name, _, reason)) => Err(ConfigError::Invalid {
                        name,
                        reason: reason.to_string(),
                    }),
                    None => Ok(()),
                }
            }
        }

        /// Every setting, in declaration order.
        pub const SETTINGS: &[Setting] = &[
            $(
                Setting {
                    name: stringify!($name),
                    long: optional!($( $flag )?),
                    env: concat!($( $env )? $( $json_env )?),
                    default: optional!($( $shown )?),
                    example: example!($example),
                },
            )*
        ];
    };
}

/// A setting's type in [`Config`]: the one after `=>`, or what was given when the setting
/// is what was given (an `Option` or a list already says "not given").
macro_rules! resolved_type {
    ($in:ty => $out:ty) => {
        $out
    };
    ($in:ty) => {
        $in
    };
}

/// A setting's resolved value from what was given (`resolve_each`).
macro_rules! resolved {
    ($given:expr) => { $given };
    ($given:expr, default $default:expr) => { $given.unwrap_or_else(|| $default) };
    ($given:expr, by $resolver:ident ( $( $dep:expr ),* )) => { $resolver($given $( , $dep )*)? };
}

/// `Some` of what is there, or `None`.
macro_rules! optional {
    () => {
        None
    };
    ($value:expr) => {
        Some($value)
    };
}

/// An entry's example as JSON text (its tokens are JSON), or `None` for `_`.
macro_rules! example {
    (_) => {
        None
    };
    ($json:tt) => {
        Some(stringify!($json))
    };
}

/// How a setting given in two places combines: the first (flags and environment) wins
/// when it says anything.
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

/// A resolved value as its `CLAUDE_CODED_*` variable says it, in the form the variable is
/// read in, so that a claude-coded started with it resolves the same value (how `start`
/// hands its settings on); `None` leaves the variable unset.
trait ToEnv {
    fn to_env(&self) -> Option<std::ffi::OsString>;
}

/// Unset stays unset: the variable is left out.
impl<T: ToEnv> ToEnv for Option<T> {
    fn to_env(&self) -> Option<std::ffi::OsString> {
        self.as_ref().and_then(ToEnv::to_env)
    }
}

/// A list as the JSON array its variable takes, empty too (an empty list is "not given",
/// as no variable would be).
impl<T: Serialize> ToEnv for Vec<T> {
    fn to_env(&self) -> Option<std::ffi::OsString> {
        let json = serde_json::to_string(self).unwrap_or_else(|_| "[]".into());
        Some(json.into())
    }
}

/// A path as it is, bytes and all: it need not be UTF-8.
impl ToEnv for PathBuf {
    fn to_env(&self) -> Option<std::ffi::OsString> {
        Some(self.clone().into_os_string())
    }
}

/// The secret itself: the daemon `start` starts must compare the same token.
impl ToEnv for Secret {
    fn to_env(&self) -> Option<std::ffi::OsString> {
        Some(self.expose().into())
    }
}

/// Types whose text (`Display`) is what clap parses back from their variable.
macro_rules! to_env_as_text {
    ($( $ty:ty ),*) => {$(
        impl ToEnv for $ty {
            fn to_env(&self) -> Option<std::ffi::OsString> {
                Some(self.to_string().into())
            }
        }
    )*};
}

to_env_as_text!(
    String,
    bool,
    u32,
    u64,
    usize,
    f64,
    SocketAddr,
    PermissionMode,
    Decider
);

/// The CLI takes a budget to the millionth of a dollar: less would reach it as 0.
fn budget_ok(usd: Option<f64>) -> bool {
    usd.is_none_or(|usd| usd.is_finite() && usd >= crate::api::MIN_BUDGET_USD)
}

settings! {
    claude_args: Vec<String>,
        json_env "CLAUDE_CODED_CLAUDE_ARGS", flag "claude-arg",
        arg(value_name = "ARG", allow_hyphen_values = true),
        example ["--max-turns", "7"],
        help "Extra argument for the CLI (repeat for several), after the stream-json flags; \
              CLAUDE_CODED_CLAUDE_ARGS takes a JSON array of strings";
    model: Option<String>,
        env "CLAUDE_CODED_MODEL",
        example "claude-roundtrip-model",
        help "Model for the child (`--model` of the CLI)";
    permission_mode: Option<PermissionMode>,
        env "CLAUDE_CODED_PERMISSION_MODE",
        example "acceptEdits",
        help "Permission mode for the child (`--permission-mode` of the CLI); unset keeps the CLI's default";
    // Its example is above the permission mode's, so that it is not what the mode alone
    // would give and its own variable is put to the test.
    permission_ceiling: Option<PermissionMode> => PermissionMode,
        by ceiling_or_mode(permission_mode),
        env "CLAUDE_CODED_PERMISSION_CEILING", arg(value_name = "MODE"),
        check |c| c.permission_mode.unwrap_or(PermissionMode::Default).within(c.permission_ceiling)
            => "must not be below permissionMode",
        example "auto",
        help "The most permissive mode an ask may choose with its `permissionMode` \
              [default: the permission mode, or `default`]";
    allow_tools: Vec<String>,
        json_env "CLAUDE_CODED_ALLOW_TOOLS", flag "allow-tool", arg(value_name = "RULE"),
        example ["Bash(ls:*)"],
        help "A rule the CLI allows without asking, in its syntax (`Bash(git diff:*)`, `Edit`, \
              `mcp__github__*`); repeat for several; CLAUDE_CODED_ALLOW_TOOLS takes a JSON array";
    deny_tools: Vec<String>,
        json_env "CLAUDE_CODED_DENY_TOOLS", flag "deny-tool", arg(value_name = "RULE"),
        example ["WebFetch"],
        help "A rule the CLI denies without asking (the same syntax); repeat for several; \
              CLAUDE_CODED_DENY_TOOLS takes a JSON array";
    cwd: Option<PathBuf> => PathBuf,
        by resolve_cwd(),
        env "CLAUDE_CODED_CWD", arg(value_name = "DIR"),
        example "{home}/other",
        help "Working directory of the child [default: the current directory]";
    allow_dirs: Vec<PathBuf>,
        by resolve_allow_dirs(cwd),
        json_env "CLAUDE_CODED_ALLOW_DIRS", flag "allow-dir", arg(value_name = "DIR"),
        example ["{home}/other", "{home}/cwd"],
        help "A directory (and what is below it) where an ask may start a session with its \
              `cwd`; repeat for several; CLAUDE_CODED_ALLOW_DIRS takes a JSON array \
              [default: the working directory]";
    session_budget_usd: Option<f64>,
        env "CLAUDE_CODED_SESSION_BUDGET_USD", arg(value_name = "USD"),
        check |c| budget_ok(c.session_budget_usd) => "must be a number of USD of at least 0.000001",
        example 2.5,
        help "Most a session may spend in USD while this claude-coded runs (its CLI is started \
              with what is left as --max-budget-usd; an ask to a session that has spent it is \
              refused) [default: no limit]";
    budget_usd: Option<f64>,
        env "CLAUDE_CODED_BUDGET_USD", arg(value_name = "USD"),
        check |c| budget_ok(c.budget_usd) => "must be a number of USD of at least 0.000001",
        example 5.0,
        help "Most all sessions together may spend in USD while this claude-coded runs \
              [default: no limit]";
    state_dir: Option<PathBuf> => PathBuf,
        by resolve_state_dir(cwd),
        env "CLAUDE_CODED_STATE_DIR", arg(value_name = "DIR"),
        example _,
        help "Directory for identity.json, daemon-state.json and events.jsonl \
              [default: $XDG_STATE_HOME/claude-coded/CWD-KEY]";
    listen: Option<ListenAddr> => Option<SocketAddr>,
        by listen_addr(),
        env "CLAUDE_CODED_LISTEN", arg(value_name = "ADDR:PORT"),
        example "127.0.0.1:0",
        help "Also serve over HTTP on this address (`127.0.0.1:8080`, or `localhost:8080` for \
              127.0.0.1; port 0 picks one, written to listen.json): MCP at /mcp, the plain \
              methods at /rpc (HTTP and WebSocket), /healthz [default: no HTTP]";
    // Guessable tokens would make the rule that requires one pointless.
    listen_token: Option<Secret>,
        env "CLAUDE_CODED_LISTEN_TOKEN", arg(value_name = "TOKEN", hide_env_values = true),
        check |c| c.listen_token.as_ref().is_none_or(|t| t.expose().trim().len() >= 16)
            => "must have at least 16 characters",
        example _,
        help "The bearer token HTTP clients must send (on loopback too: other local users \
              reach it) [default: one generated into listen-token in the state directory]";
    claude_bin: Option<String> => String,
        default "claude".to_string(), shown "claude",
        env "CLAUDE_CODED_CLAUDE_BIN", arg(value_name = "PATH"),
        check |c| !c.claude_bin.is_empty() => "must not be empty",
        example _,
        help "Claude Code CLI to run (a path, or a name looked up on PATH)";
    queue_size: Option<usize> => usize,
        default 16, shown "16",
        env "CLAUDE_CODED_QUEUE_SIZE",
        example 17,
        help "Asks that may wait behind the running one before \"busy\" errors";
    turn_timeout_ms: Option<u64> => u64,
        default 300_000, shown "300000",
        env "CLAUDE_CODED_TURN_TIMEOUT_MS",
        check |c| c.turn_timeout_ms >= 1 => "must be at least 1",
        example 300001,
        help "Default turn timeout in ms";
    interrupt_grace_ms: Option<u64> => u64,
        default 5_000, shown "5000",
        env "CLAUDE_CODED_INTERRUPT_GRACE_MS",
        example 5001,
        help "After a timeout's interrupt, how long to wait for the result before killing the child, in ms";
    events_ring_size: Option<usize> => usize,
        default 50, shown "50",
        env "CLAUDE_CODED_EVENTS_RING_SIZE",
        check |c| c.events_ring_size >= 1 => "must be at least 1",
        example 51,
        help "Events kept in memory for `events` (and as many `turn.step` events, in a ring of their own)";
    max_child_line_bytes: Option<usize> => usize,
        default 64 << 20, shown "67108864",
        env "CLAUDE_CODED_MAX_CHILD_LINE_BYTES",
        check |c| c.max_child_line_bytes >= 1024 => "must be at least 1024",
        example 67108865,
        help "Longest line accepted from the child, in bytes";
    max_request_bytes: Option<usize> => usize,
        default 16 << 20, shown "16777216",
        env "CLAUDE_CODED_MAX_REQUEST_BYTES",
        check |c| c.max_request_bytes >= 1024 => "must be at least 1024",
        example 16777217,
        help "Longest request line accepted on stdin, in bytes";
    backoff_initial_ms: Option<u64> => u64,
        default 1_000, shown "1000",
        env "CLAUDE_CODED_BACKOFF_INITIAL_MS",
        check |c| c.backoff_initial_ms >= 1 => "must be at least 1",
        example 1001,
        help "First restart delay in ms; doubles per failed start";
    backoff_max_ms: Option<u64> => u64,
        default 60_000, shown "60000",
        env "CLAUDE_CODED_BACKOFF_MAX_MS",
        check |c| c.backoff_max_ms >= c.backoff_initial_ms => "must not be below backoffInitialMs",
        example 60001,
        help "Longest restart delay in ms";
    healthy_after_ms: Option<u64> => u64,
        default 10_000, shown "10000",
        env "CLAUDE_CODED_HEALTHY_AFTER_MS",
        example 10001,
        help "A child that ran this long (ms) counts as healthy and resets the backoff";
    stop_grace_ms: Option<u64> => u64,
        default 5_000, shown "5000",
        env "CLAUDE_CODED_STOP_GRACE_MS",
        example 5001,
        help "On stop, how long the child may take to exit after its stdin closes, in ms";
    stall_timeout_ms: Option<u64> => u64,
        default 120_000, shown "120000",
        env "CLAUDE_CODED_STALL_TIMEOUT_MS",
        example 120001,
        help "A turn whose child prints nothing for this long (ms) is interrupted, then killed; 0 turns the watchdog off";
    crash_loop_max: Option<u32> => u32,
        default 5, shown "5",
        env "CLAUDE_CODED_CRASH_LOOP_MAX",
        check |c| c.crash_loop_max >= 1 => "must be at least 1",
        example 6,
        help "Failed starts within --crash-loop-window-ms that mark the child `failed`";
    crash_loop_window_ms: Option<u64> => u64,
        default 60_000, shown "60000",
        env "CLAUDE_CODED_CRASH_LOOP_WINDOW_MS",
        example 60001,
        help "Window for counting failed starts, in ms";
    resume_on_restart: Option<bool> => bool,
        default true, shown "true",
        env "CLAUDE_CODED_RESUME_ON_RESTART", arg(value_name = "BOOL"),
        example false,
        help "After the child dies, start the next one with `--resume <sessionId>`";
    event_log_max_bytes: Option<u64> => u64,
        default 10 << 20, shown "10485760",
        env "CLAUDE_CODED_EVENT_LOG_MAX_BYTES",
        example 10485761,
        help "events.jsonl is rotated past this size in bytes";
    event_log_keep: Option<usize> => usize,
        default 3, shown "3",
        env "CLAUDE_CODED_EVENT_LOG_KEEP",
        example 4,
        help "Rotated event logs kept (events.jsonl.1 ... .N)";
    permission_decider: Option<Decider> => Decider,
        default Decider::Relay, shown "relay",
        env "CLAUDE_CODED_PERMISSION_DECIDER", arg(value_name = "WHO"),
        example "deny",
        help "Who decides what the permission rules leave open: `relay` (ask the client, deny when it cannot be asked), `deny` or `allow`";
    permission_timeout_ms: Option<u64> => u64,
        default 60_000, shown "60000",
        env "CLAUDE_CODED_PERMISSION_TIMEOUT_MS",
        check |c| c.permission_timeout_ms >= 1 => "must be at least 1",
        example 60001,
        help "How long a relayed permission question waits for the client before it is denied, in ms";
    max_sessions: Option<usize> => usize,
        default 4, shown "4",
        env "CLAUDE_CODED_MAX_SESSIONS",
        check |c| (1..=64).contains(&c.max_sessions) => "must be between 1 and 64",
        example 5,
        help "Sessions whose Claude Code child may run at once; an ask to another one stops the least recently used idle one, or gets \"busy\"";
    spare_sessions: Option<usize> => usize,
        default 0, shown "0",
        env "CLAUDE_CODED_SPARE_SESSIONS", arg(value_name = "N"),
        check |c| c.spare_sessions <= 8 => "must be between 0 and 8",
        example 1,
        help "Claude Code CLIs kept started ahead of need, so a new session answers without the CLI's cold start (each is an idle CLI's memory; besides --max-sessions)";
    session_idle_ms: Option<u64> => u64,
        default 1_800_000, shown "1800000",
        env "CLAUDE_CODED_SESSION_IDLE_MS",
        check |c| c.session_idle_ms >= 1 => "must be at least 1",
        example 1800001,
        help "A session idle this long (ms) has its child stopped; its next ask starts it again and continues its conversation";
    result_ttl_ms: Option<u64> => u64,
        default 3_600_000, shown "3600000",
        env "CLAUDE_CODED_RESULT_TTL_MS",
        check |c| c.result_ttl_ms >= 1 => "must be at least 1",
        example 3600001,
        help "How long the result of a background ask (`background: true`) is kept for `wait`/`result` once the turn ended, in ms, also across restarts";
    max_depth: Option<u32> => u32,
        default 1, shown "1",
        env "CLAUDE_CODED_MAX_DEPTH",
        check |c| (1..=crate::nesting::MAX_DEPTH_CAP).contains(&c.max_depth) => "must be between 1 and 8",
        example 2,
        help "How many claude-coded may run nested in each other's Claude Code (1 to 8): at the default, a sub-agent cannot delegate through claude-coded again";
    listen_no_token: Option<bool> => bool,
        default false, shown "false",
        env "CLAUDE_CODED_LISTEN_NO_TOKEN", arg(value_name = "BOOL"),
        example true,
        help "Serve loopback HTTP without a token: every local user (and every process of theirs) can then drive the agent as you; only on a machine nobody else uses";
}

impl Config {
    /// Resolves flags and environment (`args`) over the config file over the defaults.
    ///
    /// `config_file` is the explicit `--config`; without it the default location is read
    /// when it exists.
    pub fn resolve(args: &ConfigArgs, config_file: Option<&Path>) -> Result<Config, ConfigError> {
        let (file, file_path) = load_file(config_file)?;
        let mut merged = merge(args, file);
        lists_from_env(args, &mut merged)?;
        let config = resolve_each(merged, file_path)?;
        config.validate()?;
        Ok(config)
    }

    /// This configuration as `CLAUDE_CODED_*` variables, which a claude-coded started with
    /// them (and no flags) resolves to the same configuration: how `claude-coded start`
    /// hands its settings to the daemon it starts.
    pub fn to_env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        let mut env = self.settings_env();
        // Not a setting but where some came from: the daemon reads the same file.
        if let Some(file) = &self.config_file {
            env.push(("CLAUDE_CODED_CONFIG", file.clone().into()));
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
}

/// A list setting's variable as a JSON array, so items with spaces or commas need no
/// quoting rules.
fn list_from_env<T: serde::de::DeserializeOwned>(
    var: &'static str,
) -> Result<Option<Vec<T>>, ConfigError> {
    let Some(raw) = std::env::var_os(var) else {
        return Ok(None);
    };
    serde_json::from_str(&raw.to_string_lossy())
        .map(Some)
        .map_err(|e| ConfigError::BadVariable {
            var,
            reason: format!("must be a JSON array of strings ({e})"),
        })
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

/// The working directory given, or the current one, canonical; it must be a directory.
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
                    name: "allow_dirs",
                    reason: format!("{} is not an existing directory", dir.display()),
                })
        })
        .collect()
}

/// The state directory given, made absolute, or the project's default one.
fn resolve_state_dir(dir: Option<PathBuf>, cwd: &Path) -> Result<PathBuf, ConfigError> {
    Ok(match dir {
        Some(dir) => absolute(&dir),
        None => default_state_dir(cwd),
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The ceiling given, or else the permission mode (the least ceiling its check admits),
/// or else the CLI's `default`.
fn ceiling_or_mode(
    ceiling: Option<PermissionMode>,
    mode: &Option<PermissionMode>,
) -> Result<PermissionMode, ConfigError> {
    Ok(ceiling.or(*mode).unwrap_or(PermissionMode::Default))
}

/// The address `--listen` parsed to: `localhost` became 127.0.0.1 as it was read.
fn listen_addr(listen: Option<ListenAddr>) -> Result<Option<SocketAddr>, ConfigError> {
    Ok(listen.map(|ListenAddr(addr)| addr))
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
mod tests;
