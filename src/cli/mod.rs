//! The command line: `serve` (the default), `ask`, `start`, `stop`, `status`, `events`,
//! `config`.
//!
//! `serve` runs here; `ask` is in `ask` (with its stderr display in `progress`), the
//! commands that manage or read a project's daemon in `control`.

pub mod ask;
mod control;
mod doctor;
mod progress;
mod project;
mod watch;

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::{Config, ConfigArgs};
use crate::daemon::Daemon;
use crate::http::HttpServer;
use crate::socket::SocketServer;
use crate::state_dir::STATE_FILE;
use crate::surface::{Surface, detect};

#[derive(Debug, Parser)]
#[command(
    name = "claude-coded",
    version,
    about = "Keeps a Claude Code CLI child alive and serves it as ask/status/events over JSON-RPC on stdio"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// JSON config file [default: $XDG_CONFIG_HOME/claude-coded/config.json when it exists]
    #[arg(long, global = true, env = "CLAUDE_CODED_CONFIG", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Protocol on stdio: auto (from the first message), plain or mcp
    #[arg(
        long,
        global = true,
        env = "CLAUDE_CODED_SURFACE",
        value_enum,
        default_value = "auto"
    )]
    pub surface: Surface,
    /// Log level for stderr (RUST_LOG wins when set) [default: warn on the MCP surface,
    /// whose hosts show every stderr line as an error; info on the plain surface]
    #[arg(long, global = true, env = "CLAUDE_CODED_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Show the log on stderr (at info) for `ask`, `start`, `stop`, `status` and
    /// `events`, which otherwise print only their own one-line messages
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve on stdin/stdout (the default); also on the socket in the state directory
    Serve {
        /// Serve on the socket only, without stdio (what `start` runs)
        #[arg(long, hide = true)]
        background: bool,
    },
    /// Ask the warm Claude Code of this project: the answer on stdout, its steps on stderr
    Ask(ask::AskArgs),
    /// Start a claude-coded for this project in the background (its log: daemon.log in
    /// the state directory)
    Start,
    /// Stop the background claude-coded of this project: asks in flight get a "stopping"
    /// error, and the CLI is let exit on its own (TERM, then KILL after --stop-grace-ms)
    Stop,
    /// Print the state of this project's claude-coded: live when one runs, else as last
    /// persisted
    Status {
        /// Print the raw JSON
        #[arg(long, conflicts_with = "watch")]
        json: bool,
        /// Watch: one line per live session (state, turn time, cost, latest step),
        /// redrawn in place every half second until Ctrl-C; printed once when stdout is not
        /// a terminal
        #[arg(short, long)]
        watch: bool,
        /// Which instance, when several daemons run for the project
        #[arg(long, default_value_t = 1)]
        instance: u32,
    },
    /// List the sessions of this project's running claude-coded, one line each
    Sessions {
        /// Print the raw JSON
        #[arg(long)]
        json: bool,
        /// Stop this session's Claude Code first (its conversation stays: its next ask
        /// resumes it)
        #[arg(long, value_name = "NAME")]
        close: Option<String>,
    },
    /// Check what a first run needs (the CLI and its version, a login, the state
    /// directory, a running daemon, the hosts that have claude-coded) and say what to do
    Doctor,
    /// Restart the Claude Code of this project's running claude-coded (the default
    /// session's; its conversation is resumed)
    Restart,
    /// Print the event log of this project's claude-coded: live when one runs, else from
    /// events.jsonl
    Events {
        /// Keep printing new events as they come (Ctrl-C to end)
        #[arg(short, long)]
        follow: bool,
        /// One JSON object per line
        #[arg(long)]
        json: bool,
        /// How many of the latest events to print first
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Which instance, when several daemons run for the project
        #[arg(long, default_value_t = 1)]
        instance: u32,
    },
    /// Print the resolved configuration as JSON
    Config,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let code = run();
    // The log's last lines (an error, say) still reach a reader before the process ends.
    crate::stderr_log::flush();
    code
}

fn run() -> i32 {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let server_flags = server_flags_given(&matches);
    let command = cli.command.unwrap_or(Command::Serve { background: false });
    if let Some(name) = reads_only(&command)
        && let Some(flag) = server_flags.first()
    {
        eprintln!(
            "claude-coded {name}: {flag} configures a claude-coded that starts (serve, start, or ask with none running); {name} only reads one: leave it out"
        );
        return 2;
    }
    // A server's log is for its host and its operator; a client command says what it
    // has to say in its own lines, and logs only when asked.
    let serving = matches!(command, Command::Serve { .. });
    let level = match (cli.log_level.as_deref(), cli.verbose) {
        (Some(level), _) => Some(level),
        (None, true) => Some("info"),
        (None, false) => None,
    };
    let logs = init_tracing(level, serving);
    let mut args = cli.config;
    if !serving && args.cwd.is_none() && args.state_dir.is_none() {
        // From anywhere inside the project, its daemon (or its root).
        args.cwd = std::env::current_dir()
            .ok()
            .and_then(|here| project::root_above(&here));
    }
    let config = match Config::resolve(&args, cli.config_file.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("claude-coded: {err}");
            return 2;
        }
    };
    // Before anything reads, writes or connects there: another user's directory could
    // hold their listener in place of daemon.sock.
    if let Err(err) = crate::state_dir::check_state_dir(&config.state_dir) {
        eprintln!("claude-coded: {err}");
        return 2;
    }
    match command {
        Command::Serve { background: false } => {
            run_server(serve_stdio(config, cli.surface, logs)).unwrap_or(1)
        }
        Command::Serve { background: true } => {
            logs.surface_chosen(Surface::Plain);
            run_server(serve_background(config)).unwrap_or(1)
        }
        Command::Ask(ask_args) => {
            run_async(ask::run(ask_args, config, &args, &server_flags)).unwrap_or(1)
        }
        Command::Start => run_async(control::start(config)).unwrap_or(1),
        Command::Stop => run_async(control::stop(config)).unwrap_or(1),
        Command::Status {
            watch: true,
            instance,
            ..
        } => run_async(watch::run(config, instance)).unwrap_or(1),
        Command::Status { json, instance, .. } => {
            run_async(control::status(config, json, instance)).unwrap_or(1)
        }
        Command::Events {
            follow,
            json,
            lines,
            instance,
        } => {
            let show = control::EventsShow {
                follow,
                json,
                lines,
                instance,
            };
            run_async(control::events(config, show)).unwrap_or(1)
        }
        Command::Sessions { json, close } => {
            run_async(control::sessions(config, json, close)).unwrap_or(1)
        }
        Command::Restart => run_async(control::restart(config)).unwrap_or(1),
        Command::Doctor => run_async(doctor::run(config)).unwrap_or(1),
        Command::Config => print_json(&config),
    }
}

/// The commands that only read or stop a running daemon, by name.
fn reads_only(command: &Command) -> Option<&'static str> {
    match command {
        Command::Stop => Some("stop"),
        Command::Status { .. } => Some("status"),
        Command::Events { .. } => Some("events"),
        Command::Sessions { .. } => Some("sessions"),
        Command::Restart => Some("restart"),
        Command::Serve { .. }
        | Command::Ask(_)
        | Command::Start
        | Command::Doctor
        | Command::Config => None,
    }
}

/// Server settings typed on the command line (`--turn-timeout-ms`), as typed. Not those
/// that pick the daemon (`--cwd`, `--state-dir`), nor `--model` and `--permission-mode`,
/// which are an ask's own; variables and the config file are a setting of the
/// environment, not a request of this command.
fn server_flags_given(matches: &clap::ArgMatches) -> Vec<String> {
    const NOT_SERVER: [&str; 4] = ["cwd", "state_dir", "model", "permission_mode"];
    let scopes: Vec<&clap::ArgMatches> = std::iter::once(matches)
        .chain(matches.subcommand().map(|(_, sub)| sub))
        .collect();
    let settings = ConfigArgs::augment_args(clap::Command::new("settings"));
    let mut given: Vec<String> = settings
        .get_arguments()
        .filter(|arg| !NOT_SERVER.contains(&arg.get_id().as_str()))
        .filter(|arg| {
            scopes.iter().any(|scope| {
                scope
                    .try_contains_id(arg.get_id().as_str())
                    .unwrap_or(false)
                    && scope.value_source(arg.get_id().as_str())
                        == Some(clap::parser::ValueSource::CommandLine)
            })
        })
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .collect();
    given.dedup();
    given
}

/// The stderr log level, while it still depends on the surface.
pub struct LogLevel {
    /// Set when neither `--log-level` nor `RUST_LOG` chose a level.
    by_surface: Option<reload::Handle<EnvFilter, Registry>>,
}

impl LogLevel {
    /// Once the surface is known: the plain surface logs at info (a script's stderr is
    /// read by a person), MCP stays at warn (hosts log every stderr line as an error).
    fn surface_chosen(&self, surface: Surface) {
        let Some(handle) = &self.by_surface else {
            return;
        };
        if surface == Surface::Plain
            && let Err(err) = handle.reload(EnvFilter::new("info"))
        {
            tracing::warn!(%err, "cannot raise the log level to info");
        }
    }
}

fn init_tracing(level: Option<&str>, serving: bool) -> LogLevel {
    let chosen = EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| level.and_then(|l| EnvFilter::try_new(l).ok()));
    // Until the surface is known, only warnings: an MCP host reads this stream too.
    // A client command logs nothing unless asked.
    let by_surface = chosen.is_none() && serving;
    let unchosen = if serving { "warn" } else { "off" };
    let (filter, handle) = reload::Layer::new(chosen.unwrap_or_else(|| EnvFilter::new(unchosen)));
    // stdout belongs to the protocol; every log line goes to stderr.
    let output = tracing_subscriber::fmt::layer()
        .with_writer(crate::redact::RedactedStderr)
        .with_ansi(false);
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .init();
    LogLevel {
        by_surface: by_surface.then_some(handle),
    }
}

/// [`run_async`] for a server: its future runs as a task on the runtime's workers, not
/// on this thread. Run here, the surface's loop would be woken from a worker for every
/// request read and every answer queued: a futex wake and two context switches each
/// (about 23 switches per `ask` were counted, and `ping` paid them too).
fn run_server<F: Future<Output = i32> + Send + 'static>(future: F) -> Option<i32> {
    run_async(async move {
        tokio::spawn(future).await.unwrap_or_else(|err| {
            eprintln!("claude-coded: the server's task failed: {err}");
            1
        })
    })
}

/// Runs `future` on a runtime with one worker thread; `None` when there is none to be
/// had.
///
/// One worker, because a turn's messages pass through several tasks (the child's reader,
/// the session's actor, the client's forwarder and writer): on one thread a hand-off is
/// a queue push, across two it is a futex or eventfd wake and a context switch. Measured
/// with the CLI double in one run, an ask cost the bridge 380-430 us of CPU and 12
/// context switches on one worker, against 450-480 us and 17 on two, and the latency it
/// adds to an ask fell from 293-457 us to 117-131 us (`ask_overhead`). A flood of
/// messages, which the reader and the actor parsed in parallel, moves about 20% fewer
/// per second (`event_flood`). The bridge's own work is small next to the CLIs it runs,
/// which have the other cores. What blocks (a state file synced to disk) steps aside
/// with [`crate::sync::blocking`], and the blocking pool is there as before.
fn run_async<F: Future<Output = i32>>(future: F) -> Option<i32> {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("claude-coded: cannot start the async runtime: {err}");
            return None;
        }
    };
    let code = runtime.block_on(future);
    // Do not wait for the blocking stdin reader thread; the child is already gone.
    runtime.shutdown_background();
    Some(code)
}

async fn serve_stdio(config: Config, surface: Surface, logs: LogLevel) -> i32 {
    let max_line = config.max_request_bytes;
    logs.surface_chosen(surface);
    let listener = match bind_listen(&config).await {
        Ok(listener) => listener,
        Err(code) => return code,
    };
    // The child starts warming up while we wait for the client's first message; an ACP
    // client (known from the flag) gets its own sessions, and only the spares warm.
    let daemon = match surface {
        Surface::Acp => Daemon::start_without_default(config),
        _ => Daemon::start(config),
    };
    let socket = SocketServer::start(&daemon);
    let http = match start_http(&daemon, listener, socket).await {
        Ok(http) => http,
        Err(code) => return code,
    };
    let outcome = serve_surface(&daemon, surface, max_line, logs).await;
    let Listeners { socket, http } = http;
    if let Some(socket) = socket {
        socket.closed().await;
    }
    if let Some(http) = http {
        http.closed().await;
    }
    match outcome {
        Ok(()) => 0,
        Err(err) => {
            tracing::error!(%err, "serving failed");
            1
        }
    }
}

async fn serve_surface(
    daemon: &Daemon,
    surface: Surface,
    max_line: usize,
    logs: LogLevel,
) -> std::io::Result<()> {
    let daemon = daemon.clone();
    let stdin = tokio::io::BufReader::new(crate::platform::stdio::input());
    let shutdown = crate::shutdown::signal();
    tokio::pin!(shutdown);
    let (detected, opening) = tokio::select! {
        detected = detect(stdin, max_line) => detected?,
        reason = &mut shutdown => {
            daemon.shutdown(reason).await;
            return Ok(());
        }
    };
    let chosen = if surface == Surface::Auto {
        detected
    } else {
        surface
    };
    logs.surface_chosen(chosen);
    tracing::info!(surface = ?chosen, "serving on stdio");
    let stdout = crate::platform::stdio::output();
    let input = opening
        .into_input(Some(libc::STDIN_FILENO))
        .answering_to(libc::STDOUT_FILENO);
    match chosen {
        Surface::Mcp => {
            let drain = crate::mcp::OutputDrain::stdout();
            crate::mcp::run(input, stdout, drain, daemon, shutdown).await
        }
        Surface::Acp => crate::acp::serve(input, stdout, daemon, shutdown).await,
        Surface::Plain | Surface::Auto => {
            daemon.record_client(crate::api::ClientSession::plain());
            crate::plain::serve(input, stdout, daemon, shutdown).await
        }
    }
}

/// `serve --background`, what `claude-coded start` runs: the socket is the only way in,
/// and a signal or `stop` ends it.
async fn serve_background(config: Config) -> i32 {
    // Taken before the instance directory, the socket or any file: a second background
    // daemon would take an instance of its own beside this one.
    let _background = match control::background_lock(&config.state_dir) {
        Ok(lock) => lock,
        Err(err) => {
            eprintln!("claude-coded: {err}");
            return 1;
        }
    };
    let listener = match bind_listen(&config).await {
        Ok(listener) => listener,
        Err(code) => return code,
    };
    let daemon = Daemon::start_as(config, crate::api::Serving::Background);
    let Some(socket) = SocketServer::start(&daemon) else {
        let reason = daemon.status().daemon.socket_error.unwrap_or_default();
        tracing::error!(%reason, "a background claude-coded needs its socket; stopping");
        daemon.shutdown("no socket").await;
        return 1;
    };
    let Listeners { socket, http } = match start_http(&daemon, listener, Some(socket)).await {
        Ok(listeners) => listeners,
        Err(code) => return code,
    };
    tracing::info!(pid = std::process::id(), "serving in the background");
    let reason = tokio::select! {
        reason = crate::shutdown::signal() => reason,
        reason = daemon.stop_begun() => reason,
    };
    daemon.shutdown(reason).await;
    if let Some(socket) = socket {
        socket.closed().await;
    }
    if let Some(http) = http {
        http.closed().await;
    }
    tracing::info!("stopped");
    0
}

/// Binds `--listen` before anything starts, so a port in use is a clear error (exit
/// status 2) rather than a daemon that runs without what it was asked to serve.
async fn bind_listen(config: &Config) -> Result<Option<tokio::net::TcpListener>, i32> {
    let Some(addr) = config.listen else {
        return Ok(None);
    };
    match crate::http::bind(addr).await {
        Ok(listener) => Ok(Some(listener)),
        Err(err) => {
            eprintln!("claude-coded: {err}");
            Err(2)
        }
    }
}

/// What a serving claude-coded listens on besides stdio.
struct Listeners {
    socket: Option<SocketServer>,
    http: Option<HttpServer>,
}

/// Serves HTTP on `listener` when `--listen` bound one; when that cannot be done, stops
/// the daemon and says why (exit status 2).
async fn start_http(
    daemon: &Daemon,
    listener: Option<tokio::net::TcpListener>,
    socket: Option<SocketServer>,
) -> Result<Listeners, i32> {
    let Some(listener) = listener else {
        return Ok(Listeners { socket, http: None });
    };
    match HttpServer::start(daemon, listener) {
        Ok(http) => Ok(Listeners {
            socket,
            http: Some(http),
        }),
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("claude-coded: {err}");
            daemon.shutdown("cannot serve HTTP").await;
            if let Some(socket) = socket {
                socket.closed().await;
            }
            Err(2)
        }
    }
}

/// `status` from the persisted file, when no daemon answers.
/// A saved state that says `running` or `stopping`, of a process that no longer exists
/// (killed with SIGKILL, as hosts do 24 ms after SIGTERM), is made to say what is true:
/// the daemon is `gone`, and none of its children or turns run. Returns the dead pid.
fn settle_killed(value: &mut serde_json::Value) -> Option<u64> {
    use crate::api::{ChildStatus, DaemonState};
    use serde_json::{Value, json};
    let daemon = value.get("daemon")?;
    let state: DaemonState = serde_json::from_value(daemon.get("state")?.clone()).ok()?;
    let pid = daemon.get("pid")?.as_u64()?;
    let alive = u32::try_from(pid).is_ok_and(crate::platform::is_alive);
    if state == DaemonState::Stopped || alive {
        return None;
    }
    value["daemon"]["state"] = json!(DaemonState::Gone);
    if let Some(child) = value.get_mut("child").and_then(Value::as_object_mut) {
        child.insert("status".into(), json!(ChildStatus::Stopped));
        child.insert("ready".into(), json!(false));
    }
    value["turn"] = Value::Null;
    if let Some(sessions) = value.get_mut("sessions").and_then(Value::as_array_mut) {
        for session in sessions {
            session["state"] = json!(ChildStatus::Stopped);
            session["busy"] = json!(false);
            session["pid"] = Value::Null;
        }
    }
    Some(pid)
}

fn print_status(config: &Config, json: bool, instance: u32) -> i32 {
    eprintln!(
        "claude-coded: no claude-coded answers for this project (instance {instance}); its last persisted state:"
    );
    let dir = match instance {
        1 => config.state_dir.clone(),
        n => config.state_dir.join("instances").join(n.to_string()),
    };
    let path = dir.join(STATE_FILE);
    // Like the daemon, never through a link: it could show another daemon's state.
    let text = match crate::state_dir::read_bounded(&path, crate::state_dir::MAX_SMALL_FILE) {
        Ok(text) => text,
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => {
            eprintln!(
                "claude-coded: {} is a symbolic link; claude-coded does not follow links in its state directory",
                path.display()
            );
            return 1;
        }
        Err(err) => {
            eprintln!(
                "claude-coded: no state at {} ({err}); has a daemon run for this cwd?",
                path.display()
            );
            return 1;
        }
    };
    let mut value: serde_json::Value = match serde_json::from_slice(&text) {
        Ok(value) => value,
        Err(err) => {
            eprintln!("claude-coded: {} is not valid JSON: {err}", path.display());
            return 1;
        }
    };
    if let Some(pid) = settle_killed(&mut value) {
        eprintln!(
            "claude-coded: its process (pid {pid}) is gone: it was killed before it could save its end; nothing of it runs"
        );
    }
    if json {
        return print_json(&value);
    }
    match serde_json::from_value::<crate::api::StatusResult>(value.clone()) {
        Ok(status) => print_out(&crate::status_text::render(&status)),
        // Written by another version: show it whole rather than guess at its fields.
        Err(err) => {
            eprintln!(
                "claude-coded: {} is not in this version's status format ({err}); here it is as JSON",
                path.display()
            );
            print_json(&value)
        }
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> i32 {
    match serde_json::to_string_pretty(value) {
        Ok(text) => print_out(&text),
        Err(err) => {
            eprintln!("claude-coded: {err}");
            1
        }
    }
}

/// A subcommand's answer on stdout (no protocol is served there). A reader that went away
/// (`claude-coded config | head`) is not an error worth a panic.
fn print_out(text: &str) -> i32 {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(err) => {
            eprintln!("claude-coded: cannot write to stdout: {err}");
            1
        }
    }
}
