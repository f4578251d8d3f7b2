//! The human-readable form of a persisted status, for `claude-coded status`.

use std::fmt::Display;

use crate::api::StatusResult;

/// A few aligned lines from the state file's status.
pub(crate) fn render(status: &StatusResult) -> String {
    let (identity, daemon, child, totals) = (
        &status.identity,
        &status.daemon,
        &status.child,
        &status.totals,
    );
    let cwd = status.config.cwd.display();
    let rows = [
        (
            "daemon",
            format!(
                "{} (pid {}, {})",
                identity.daemon_id, daemon.pid, daemon.state
            ),
        ),
        ("started", daemon.started_at.clone()),
        ("state dir", or_dash(daemon.state_dir.as_ref())),
        ("serving", serving(daemon)),
        (
            "child",
            format!(
                "{} since {} (pid {})",
                child.status.as_str(),
                child.status_since,
                or_dash(child.pid.as_ref())
            ),
        ),
        ("session", or_dash(child.session_id.as_ref())),
        ("restarts", child.restart_count.to_string()),
        ("last error", or_dash(child.last_error.as_ref())),
        (
            "turns",
            format!(
                "{} ok, {} failed, {} errors",
                totals.turns_ok, totals.turns_failed, totals.asks_errored
            ),
        ),
        ("cost", format!("${}", totals.cost_usd)),
        ("cwd", cwd.to_string()),
    ];
    let dropped = (daemon.log_lines_dropped > 0).then(|| {
        (
            "log",
            format!(
                "{} lines dropped: nobody read stderr",
                daemon.log_lines_dropped
            ),
        )
    });
    let mut text = rows
        .iter()
        .chain(dropped.as_ref())
        .map(|(k, v)| format!("{k:>10}: {v}"))
        .collect::<Vec<_>>()
        .join("\n");
    if !status.sessions.is_empty() {
        text.push_str("\n  sessions:\n");
        text.push_str(&sessions(&status.sessions));
    }
    text
}

/// One line per session: name, state, process, work done, what it waits for, cwd.
pub(crate) fn sessions(list: &[crate::api::SessionInfo]) -> String {
    let width = list.iter().map(|s| s.name.len()).max().unwrap_or(0).max(7);
    list.iter()
        .map(|s| {
            let pid = s.pid.map_or("-".to_string(), |pid| format!("pid {pid}"));
            let queue = match (s.busy, s.queue) {
                (false, 0) => String::new(),
                (true, 0) => " · busy".to_string(),
                (_, n) => format!(" · busy, {n} queued"),
            };
            format!(
                "    {name:<width$}  {state:<8} {pid:<10} {turns} turn{plural} · ${cost}{queue} · {cwd}",
                name = s.name,
                state = s.state.as_str(),
                turns = s.turns,
                plural = if s.turns == 1 { "" } else { "s" },
                cost = s.cost_usd,
                cwd = s.cwd,
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How it serves, and where other processes reach it.
fn serving(daemon: &crate::api::DaemonInfo) -> String {
    let how = match daemon.serving {
        crate::api::Serving::Stdio => "stdio",
        crate::api::Serving::Background => "background",
        crate::api::Serving::Ask => "one ask",
    };
    let reached = match (&daemon.socket, &daemon.socket_error) {
        (Some(socket), _) => format!("{how}, socket {socket}"),
        (None, Some(error)) => format!("{how}, no socket: {error}"),
        (None, None) => how.to_string(),
    };
    match (&daemon.listen, &daemon.listen_token_file) {
        (Some(url), Some(file)) => format!("{reached}, HTTP {url} (token in {file})"),
        (Some(url), None) => format!("{reached}, HTTP {url}"),
        (None, _) => reached,
    }
}

fn or_dash<T: Display>(value: Option<&T>) -> String {
    value.map_or_else(|| "-".to_string(), ToString::to_string)
}
