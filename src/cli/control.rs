//! The commands that manage or read a project's daemon: `start`, `stop`, `status`,
//! `events`. They talk to the live daemon over its socket ([`crate::client`]) and fall
//! back to the files of the state directory when none answers.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::api::{ChildStatus, Event, EventsResult, Serving, StatusResult, StopResult};
use crate::client::{self, Client, ClientError, QUICK};
use crate::config::Config;
use crate::state_dir::EVENTS_FILE;

/// The background daemon's log, in the state directory.
pub(crate) const LOG_FILE: &str = "daemon.log";
/// How long `start` waits for the new daemon's socket.
const START_LIMIT: Duration = Duration::from_secs(15);
/// How often `start` looks for it, and `events --follow` for new events.
const POLL: Duration = Duration::from_millis(50);
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// Beyond the daemon's stop grace, how long `stop` waits for it to be gone.
const STOP_MARGIN: Duration = Duration::from_secs(5);
/// Log lines shown when a start fails.
const LOG_TAIL: usize = 20;
/// How much of the end of `daemon.log` is read for them.
const TAIL_BYTES: u64 = 1 << 20;
/// How much of the end of `events.jsonl` `events` reads when no daemon answers (more than
/// the daemon lets it grow before rotating it).
const EVENTS_TAIL_BYTES: u64 = 16 << 20;

/// `start`: a daemon for the project in the background, detached from this terminal,
/// unless one already answers.
pub(super) async fn start(config: Config) -> i32 {
    // Racing starts take turns: each looks for a daemon only after the one before it has
    // seen its own listen, so they find it rather than start another.
    let _starting = match start_lock(&config.state_dir).await {
        Ok(lock) => lock,
        Err(err) => {
            eprintln!("claude-coded: cannot start the daemon: {err}");
            return 1;
        }
    };
    // One nested in an agent of the project's daemon starts no child: not the one meant.
    let usable = |s: &StatusResult| s.daemon.nesting.may_start_child();
    if let Some(found) = client::find(&config.state_dir, usable).await {
        let daemon = &found.status.daemon;
        eprintln!(
            "claude-coded: already running for this project (pid {}, {}), on {}",
            daemon.pid,
            serving_text(daemon.serving),
            found.client.path().display()
        );
        return 0;
    }
    let log = config.state_dir.join(LOG_FILE);
    let mut child = match spawn_background(&config, &log) {
        Ok(child) => child,
        Err(err) => {
            eprintln!("claude-coded: cannot start the daemon: {err}");
            return 1;
        }
    };
    let pid = child.id();
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Some(found) = client::find(&config.state_dir, |s| s.daemon.pid == pid).await {
            return started(found, &log, deadline, config.listen.is_some()).await;
        }
        if let Ok(Some(exit)) = child.try_wait() {
            eprintln!("claude-coded: the daemon exited at start ({exit}); its log says:");
            eprintln!("{}", log_tail(&log));
            return 1;
        }
        if Instant::now() > deadline {
            eprintln!(
                "claude-coded: the daemon (pid {pid}) did not listen within {START_LIMIT:?}; see {}",
                log.display()
            );
            return 1;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `start.lock` in the state directory, locked; waits while another `start` holds it.
async fn start_lock(state_dir: &Path) -> Result<std::fs::File, String> {
    crate::state_dir::create_private_dir(state_dir).map_err(|err| err.to_string())?;
    let path = state_dir.join(crate::state_dir::START_LOCK_FILE);
    let deadline = Instant::now() + START_LIMIT * 2;
    loop {
        match crate::state_dir::try_lock(&path) {
            Ok(Some(lock)) => return Ok(lock),
            Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
            Ok(None) => {
                return Err(format!(
                    "another `claude-coded start` held {} for {:?}",
                    path.display(),
                    START_LIMIT * 2
                ));
            }
            Err(err) => return Err(err.to_string()),
        }
    }
}

/// `background.lock` in the state directory, locked for as long as the background
/// daemon lives: one per project, however it was started. `Err` says why not.
pub(super) fn background_lock(state_dir: &Path) -> Result<std::fs::File, String> {
    crate::state_dir::create_private_dir(state_dir).map_err(|err| err.to_string())?;
    let path = state_dir.join(crate::state_dir::BACKGROUND_LOCK_FILE);
    match crate::state_dir::try_lock(&path) {
        Ok(Some(lock)) => Ok(lock),
        Ok(None) => Err(format!(
            "a background claude-coded already runs for this project ({} is locked); `claude-coded stop` stops it",
            path.display()
        )),
        Err(err) => Err(err.to_string()),
    }
}

/// Spawns `serve --background` in a session of its own, its output appended to `log`.
fn spawn_background(config: &Config, log: &Path) -> std::io::Result<std::process::Child> {
    crate::state_dir::create_private_dir(&config.state_dir).map_err(std::io::Error::other)?;
    let output = crate::state_dir::private_file(log, true)?;
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command
        .args(["serve", "--background"])
        // Exactly this configuration, whatever flags gave it.
        .envs(config.to_env())
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output);
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| match libc::setsid() {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    command.spawn()
}

fn log_tail(log: &Path) -> String {
    // Its end only: anything of the user's may have grown it without bound.
    let bytes = crate::state_dir::read_tail(log, TAIL_BYTES).map_or(Vec::new(), |(b, _)| b);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}

fn serving_text(serving: Serving) -> &'static str {
    match serving {
        Serving::Stdio => "serving a client on stdio",
        Serving::Background => "in the background",
        Serving::Ask => "for one ask",
    }
}

/// `stop`: asks the background daemon to stop and waits until it is gone.
pub(super) async fn stop(config: Config) -> i32 {
    let background = |s: &StatusResult| s.daemon.serving == Serving::Background;
    let Some(found) = client::find(&config.state_dir, background).await else {
        eprintln!("claude-coded: no claude-coded runs in the background for this project");
        return 0;
    };
    let mut client = found.client;
    let stop_grace = Duration::from_millis(found.status.config.stop_grace_ms);
    let answer: Result<StopResult, _> = client.call("stop", json!({}), QUICK).await;
    let pid = match answer {
        Ok(answer) => answer.pid,
        Err(err) => {
            eprintln!("claude-coded: the daemon refused to stop: {err}");
            return 1;
        }
    };
    let limit = stop_grace + STOP_MARGIN;
    let deadline = Instant::now() + limit;
    let closed = client.closed(limit).await;
    while crate::platform::is_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    if closed.is_err() || crate::platform::is_alive(pid) {
        eprintln!("claude-coded: the daemon (pid {pid}) is still running after {limit:?}");
        return 1;
    }
    eprintln!("claude-coded: stopped (pid {pid})");
    0
}

/// The new daemon listens: says so once its Claude Code is ready. A daemon whose CLI
/// cannot start is no start at all: it is stopped, and the reason is the exit message.
async fn started(found: client::Found, log: &Path, deadline: Instant, http: bool) -> i32 {
    let client::Found {
        mut client,
        mut status,
    } = found;
    let pid = status.daemon.pid;
    let socket = client.path().display().to_string();
    // The socket answers before HTTP listens and before the CLI is ready: wait for both
    // (a nested daemon starts its child on its first ask; it has no CLI to wait for).
    let waiting = |s: &StatusResult| {
        let warming = s.daemon.nesting.may_start_child()
            && matches!(s.child.status, ChildStatus::Idle | ChildStatus::Starting);
        warming || (http && s.daemon.listen.is_none())
    };
    while waiting(&status) && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        match client
            .call::<StatusResult>("status", json!({}), QUICK)
            .await
        {
            Ok(now) => status = now,
            Err(_) => break,
        }
    }
    let child = status.child;
    if matches!(child.status, ChildStatus::Failed | ChildStatus::Backoff) {
        let why = child
            .last_error
            .unwrap_or_else(|| "it exited at start".to_string());
        eprintln!("claude-coded: Claude Code cannot start: {why}; the daemon is stopped");
        // Already failing: whatever stop answers, the start failed.
        let _ = client.call::<StopResult>("stop", json!({}), QUICK).await;
        let gone_by = Instant::now() + STOP_MARGIN;
        while crate::platform::is_alive(pid) && Instant::now() < gone_by {
            tokio::time::sleep(POLL).await;
        }
        return 1;
    }
    let warming = match child.status {
        ChildStatus::Starting | ChildStatus::Idle if status.daemon.nesting.may_start_child() => {
            " (Claude Code still starting)"
        }
        _ => "",
    };
    let http = match (status.daemon.listen, status.daemon.listen_token_file) {
        (Some(url), Some(file)) => format!(", HTTP {url} (token in {file})"),
        (Some(url), None) => format!(", HTTP {url}"),
        (None, _) => String::new(),
    };
    eprintln!(
        "claude-coded: started (pid {pid}){warming}, on {socket}{http}; log: {}",
        log.display()
    );
    0
}

/// The socket of instance `n` of the project.
pub(super) fn instance_socket(config: &Config, instance: u32) -> PathBuf {
    instance_dir(config, instance).join(crate::socket::SOCKET_FILE)
}

pub(super) fn instance_dir(config: &Config, instance: u32) -> PathBuf {
    match instance {
        1 => config.state_dir.clone(),
        n => config.state_dir.join("instances").join(n.to_string()),
    }
}

/// `status`: the live daemon's, else the persisted one.
pub(super) async fn status(config: Config, json: bool, instance: u32) -> i32 {
    let live = async {
        let mut client = match Client::connect(&instance_socket(&config, instance)).await {
            Ok(client) => client,
            Err(err @ ClientError::ForeignPeer { .. }) => {
                eprintln!("claude-coded: {err}");
                return None;
            }
            Err(_) => return None,
        };
        client.call::<Value>("status", json!({}), QUICK).await.ok()
    };
    let Some(value) = live.await else {
        return super::print_status(&config, json, instance);
    };
    if json {
        return super::print_json(&value);
    }
    match serde_json::from_value::<StatusResult>(value.clone()) {
        Ok(status) => super::print_out(&crate::status_text::render(&status)),
        Err(_) => super::print_json(&value),
    }
}

/// The project's running daemon, or a one-line reason on stderr (and `None`).
async fn running(config: &Config, command: &str) -> Option<Client> {
    let usable = |s: &StatusResult| s.daemon.nesting.may_start_child();
    match client::find(&config.state_dir, usable).await {
        Some(found) => Some(found.client),
        None => {
            eprintln!(
                "claude-coded {command}: no claude-coded runs for this project; start one with `claude-coded start`"
            );
            None
        }
    }
}

/// `sessions`: the running daemon's sessions, one line each (`--close NAME` first stops one).
pub(super) async fn sessions(config: Config, json: bool, close: Option<String>) -> i32 {
    let Some(mut client) = running(&config, "sessions").await else {
        return 1;
    };
    if let Some(name) = close {
        let closed: Result<Value, _> = client
            .call("closeSession", json!({ "session": name }), QUICK)
            .await;
        if let Err(err) = closed {
            eprintln!("claude-coded sessions: cannot close `{name}`: {err}");
            return 1;
        }
        eprintln!("claude-coded: session `{name}` stopped; its next ask resumes its conversation");
    }
    let list: Result<Value, _> = client.call("sessions", json!({}), QUICK).await;
    let list = match list {
        Ok(list) => list,
        Err(err) => {
            eprintln!("claude-coded sessions: {err}");
            return 1;
        }
    };
    if json {
        return super::print_json(&list);
    }
    match serde_json::from_value::<crate::api::SessionsResult>(list.clone()) {
        Ok(result) => super::print_out(&format!(
            "{} live of {} (at most {})\n{}",
            result.live,
            result.sessions.len(),
            result.max_sessions,
            crate::status_text::sessions(&result.sessions)
        )),
        Err(_) => super::print_json(&list),
    }
}

/// `restart`: a new Claude Code for the default session of the running daemon.
pub(super) async fn restart(config: Config) -> i32 {
    let Some(mut client) = running(&config, "restart").await else {
        return 1;
    };
    let answer: Result<crate::api::RestartResult, _> =
        client.call("restart", json!({}), QUICK).await;
    match answer {
        Ok(answer) => {
            let killed = answer
                .killed_pid
                .map_or(String::new(), |pid| format!(" (pid {pid} stopped)"));
            eprintln!(
                "claude-coded: restarting Claude Code{killed}; `claude-coded status` shows when it is ready"
            );
            0
        }
        Err(err) => {
            eprintln!("claude-coded restart: {err}");
            1
        }
    }
}

/// What `events` shows, and how.
pub(super) struct EventsShow {
    pub(super) follow: bool,
    pub(super) json: bool,
    pub(super) lines: usize,
    pub(super) instance: u32,
}

/// `events`: the live daemon's ring buffer, else `events.jsonl`; `--follow` keeps going.
pub(super) async fn events(config: Config, show: EventsShow) -> i32 {
    let socket = instance_socket(&config, show.instance);
    let outcome = tokio::select! {
        outcome = async {
            match Client::connect(&socket).await {
                Ok(client) => live_events(client, &show).await,
                Err(err @ ClientError::ForeignPeer { .. }) => Err(err.to_string()),
                Err(_) => file_events(&instance_dir(&config, show.instance).join(EVENTS_FILE), &show).await,
            }
        } => outcome,
        _ = crate::shutdown::signal() => Ok(()),
    };
    match outcome {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("claude-coded: {message}");
            1
        }
    }
}

async fn live_events(mut client: Client, show: &EventsShow) -> Result<(), String> {
    let mut since = 0;
    let mut first = true;
    loop {
        let params = json!({ "since": since, "limit": 1000 });
        let answer: Result<EventsResult, _> = client.call("events", params, QUICK).await;
        let answer = match answer {
            Ok(answer) => answer,
            // The daemon stopped while we followed it; its last events were shown.
            Err(_) if !first => return Ok(()),
            Err(err) => return Err(err.to_string()),
        };
        let skip = match first {
            true => answer.events.len().saturating_sub(show.lines),
            false => 0,
        };
        for event in &answer.events[skip..] {
            print_event(event, show.json);
        }
        since = answer.next_seq.saturating_sub(1);
        first = false;
        if !show.follow {
            return Ok(());
        }
        if !answer.truncated {
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }
}

/// One event as a line: time, level, type, the session it is about (`[name]`), message.
fn print_event(event: &Event, as_json: bool) {
    let session = event
        .session
        .as_ref()
        .map_or(String::new(), |name| format!(" [{name}]"));
    let line = match as_json {
        true => serde_json::to_string(event).unwrap_or_default(),
        false => format!(
            "{} {:<5} {}{session} {}",
            event.created_at,
            event.level.as_str(),
            event.kind,
            event.message
        ),
    };
    super::print_out(&line);
}

/// The last lines of `events.jsonl`, then (`--follow`) what is appended to it.
async fn file_events(path: &Path, show: &EventsShow) -> Result<(), String> {
    let (text, len) = crate::state_dir::read_tail(path, EVENTS_TAIL_BYTES).map_err(|err| {
        format!(
            "no daemon answers and {} cannot be read ({err})",
            path.display()
        )
    })?;
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(show.lines)..] {
        print_line(line, show.json);
    }
    if !show.follow {
        return Ok(());
    }
    let mut offset = len;
    loop {
        tokio::time::sleep(FOLLOW_POLL).await;
        offset = print_appended(path, offset, show.json);
    }
}

/// Prints the whole lines appended to `path` after `offset`; returns the new offset
/// (0 again after a rotation made the file shorter).
fn print_appended(path: &Path, offset: u64, as_json: bool) -> u64 {
    let Ok(mut file) = std::fs::File::open(path) else {
        return offset;
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = if len < offset { 0 } else { offset };
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return offset;
    }
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    for line in String::from_utf8_lossy(&bytes[..whole]).lines() {
        print_line(line, as_json);
    }
    from + whole as u64
}

/// One line of `events.jsonl`, as JSON or as text.
fn print_line(line: &str, as_json: bool) {
    match serde_json::from_str::<Event>(line) {
        Ok(event) => print_event(&event, as_json),
        // Another version's event: shown as it is.
        Err(_) => {
            super::print_out(line);
        }
    }
}
