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

use crate::api::{Event, EventsResult, Serving, StatusResult, StopResult};
use crate::client::{self, Client, QUICK};
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

/// `start`: a daemon for the project in the background, detached from this terminal,
/// unless one already answers.
pub(super) async fn start(config: Config) -> i32 {
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
            eprintln!(
                "claude-coded: started (pid {pid}), on {}; log: {}",
                found.client.path().display(),
                log.display()
            );
            return 0;
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
    let text = std::fs::read_to_string(log).unwrap_or_default();
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
    let stop_grace = Duration::from_millis(config_u64(&found.status, "stopGraceMs"));
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

fn config_u64(status: &StatusResult, key: &str) -> u64 {
    status.config.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// The socket of instance `n` of the project.
fn instance_socket(config: &Config, instance: u32) -> PathBuf {
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
        let mut client = Client::connect(&instance_socket(&config, instance))
            .await
            .ok()?;
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

fn print_event(event: &Event, as_json: bool) {
    let line = match as_json {
        true => serde_json::to_string(event).unwrap_or_default(),
        false => format!(
            "{} {:<5} {} {}",
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
    let text = crate::state_dir::read_no_follow(path).map_err(|err| {
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
    let mut offset = text.len() as u64;
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
