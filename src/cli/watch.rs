//! `claude-coded status -w`: the running daemon's sessions as a live view, one line per
//! live session (its state, how long its turn has run, what it has cost, its turn's
//! latest step), redrawn in place every half second until Ctrl-C. Not on a terminal it
//! prints the view once and exits, so a script or a log gets the same lines.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::json;

use crate::api::{ChildStatus, SessionInfo, SessionsResult};
use crate::client::{Client, QUICK};
use crate::config::Config;

/// How often the view is redrawn.
const EVERY: Duration = Duration::from_millis(500);
/// Columns assumed when stdout is not a terminal.
const PLAIN_WIDTH: usize = 200;

/// Runs the view; returns the exit status.
pub(super) async fn run(config: Config, instance: u32) -> i32 {
    let socket = super::control::instance_socket(&config, instance);
    let mut client = match Client::connect(&socket).await {
        Ok(client) => client,
        Err(err) => {
            eprintln!(
                "claude-coded status -w: no claude-coded answers for this project ({err}); start one with `claude-coded start`"
            );
            return 1;
        }
    };
    if !std::io::stdout().is_terminal() {
        return match sessions(&mut client).await {
            Ok(list) => super::print_out(&view(&list, PLAIN_WIDTH).join("\n")),
            Err(message) => fail(&message),
        };
    }
    write_out("\x1b[?25l");
    let outcome = tokio::select! {
        outcome = redraw_until_gone(&mut client) => outcome,
        _ = crate::shutdown::signal() => Ok(()),
    };
    write_out("\x1b[?25h");
    match outcome {
        Ok(()) => 0,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> i32 {
    eprintln!("claude-coded status -w: {message}");
    1
}

/// Redraws the view in place until the daemon stops answering.
async fn redraw_until_gone(client: &mut Client) -> Result<(), String> {
    let mut drawn = 0;
    loop {
        let list = sessions(client).await?;
        let width = super::progress::terminal_width(libc::STDOUT_FILENO).saturating_sub(1);
        let lines = view(&list, width.max(20));
        write_out(&frame(&lines, drawn));
        drawn = lines.len();
        tokio::time::sleep(EVERY).await;
    }
}

async fn sessions(client: &mut Client) -> Result<SessionsResult, String> {
    client
        .call("sessions", json!({}), QUICK)
        .await
        .map_err(|err| format!("the daemon stopped answering ({err})"))
}

/// The escape sequences that put `lines` over the `drawn` lines of the last frame: up to
/// its first line, each line cleared and written, what is left below cleared.
fn frame(lines: &[String], drawn: usize) -> String {
    let mut out = String::new();
    if drawn > 0 {
        out.push_str(&format!("\x1b[{drawn}A"));
    }
    for line in lines {
        out.push_str("\r\x1b[2K");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("\x1b[J");
    out
}

/// The view: a heading, then one line per live session, each cut to `width` columns.
fn view(list: &SessionsResult, width: usize) -> Vec<String> {
    let live: Vec<&SessionInfo> = list
        .sessions
        .iter()
        .filter(|s| s.state != ChildStatus::Stopped)
        .collect();
    let stopped = list.sessions.len() - live.len();
    let mut lines = vec![format!(
        "claude-coded: {} live of at most {}{} · Ctrl-C quits",
        live.len(),
        list.max_sessions,
        match stopped {
            0 => String::new(),
            n => format!(", {n} stopped"),
        }
    )];
    let name_width = live.iter().map(|s| s.name.len()).max().unwrap_or(0).max(7);
    lines.extend(live.iter().map(|s| session_line(s, name_width)));
    if live.is_empty() {
        lines.push("  no live session: the next ask starts one".to_string());
    }
    lines
        .into_iter()
        .map(|line| line.chars().take(width).collect())
        .collect()
}

/// `default  busy      12.3s  $0.0123  3 turns  tool use: Bash`.
fn session_line(session: &SessionInfo, name_width: usize) -> String {
    let (elapsed, step) = match &session.turn {
        Some(turn) => (
            format!("{:.1}s", turn.elapsed_ms as f64 / 1000.0),
            turn.step
                .clone()
                .unwrap_or_else(|| format!("asked: {}", turn.prompt_preview)),
        ),
        None => ("-".to_string(), String::new()),
    };
    let queued = match session.queue {
        0 => String::new(),
        n => format!(" (+{n} queued)"),
    };
    format!(
        "  {name:<name_width$}  {state:<8} {elapsed:>7}  ${cost:<8.4} {turns:>3} turn{plural}  {step}{queued}",
        name = session.name,
        state = session.state.as_str(),
        cost = session.cost_usd,
        turns = session.turns,
        plural = if session.turns == 1 { " " } else { "s" },
    )
}

fn write_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TurnInfo;

    fn session(name: &str, state: ChildStatus, turn: Option<TurnInfo>) -> SessionInfo {
        SessionInfo {
            name: name.to_string(),
            state,
            session_id: None,
            cwd: "/p".to_string(),
            pid: None,
            rss_bytes: None,
            turns: 2,
            cost_usd: 0.0123,
            queue: 0,
            busy: turn.is_some(),
            turn,
            created_at: String::new(),
            last_used_at: String::new(),
        }
    }

    #[test]
    fn the_view_has_a_line_per_live_session_with_its_state_time_cost_and_step() {
        let turn = TurnInfo {
            turn_id: 3,
            started_at: String::new(),
            elapsed_ms: 12_345,
            timeout_ms: 1,
            prompt_preview: "fix it".to_string(),
            messages: 4,
            abandoned: false,
            step: Some("tool use: Bash".to_string()),
        };
        let list = SessionsResult {
            sessions: vec![
                session("default", ChildStatus::Busy, Some(turn)),
                session("docs", ChildStatus::Ready, None),
                session("old", ChildStatus::Stopped, None),
            ],
            live: 2,
            max_sessions: 4,
        };
        let lines = view(&list, 200);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0].contains("2 live of at most 4, 1 stopped"));
        assert!(lines[1].contains("default") && lines[1].contains("busy"));
        assert!(lines[1].contains("12.3s") && lines[1].contains("$0.0123"));
        assert!(lines[1].ends_with("tool use: Bash"), "{}", lines[1]);
        assert!(lines[2].contains("docs") && lines[2].contains("ready"));
        assert!(view(&list, 30).iter().all(|l| l.chars().count() <= 30));
    }

    #[test]
    fn each_frame_starts_where_the_last_one_did_and_clears_what_it_left() {
        let lines = ["a".to_string(), "b".to_string()];
        assert_eq!(frame(&lines, 0), "\r\x1b[2Ka\n\r\x1b[2Kb\n\x1b[J");
        assert!(frame(&lines, 3).starts_with("\x1b[3A"));
    }
}
