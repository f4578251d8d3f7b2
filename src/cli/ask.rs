//! `claude-coded ask`: one question to this project's warm Claude Code, from a shell.
//!
//! The prompt comes from the arguments, or from stdin (`-`, or no argument with stdin not
//! a terminal); the answer goes to stdout and the turn's steps to stderr ([`Progress`]).
//! When a claude-coded of the project listens on its socket, the ask goes there and
//! shares its warm child, session and queue; otherwise one runs in this process for the
//! call. The exit status says what happened ([`exit`]).

use std::io::{IsTerminal, Read};
use std::time::Duration;

use clap::Args;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::progress::Progress;
use crate::api::{AskParams, AskResult, MAX_TIMEOUT_MS, Serving};
use crate::client::{self, ClientError, Found};
use crate::config::{Config, ConfigArgs};
use crate::daemon::{Daemon, Turn, Wants};
use crate::error::code;
use crate::nesting::Nesting;
use crate::rpc_error::RpcError;

/// Exit statuses of `claude-coded ask`, for scripts to branch on.
pub(crate) mod exit {
    /// Answered: the turn succeeded and the answer is on stdout.
    pub(crate) const ANSWERED: i32 = 0;
    /// The turn failed: the CLI reported an error (`ok: false`), or the child died, or
    /// printed more than the limit.
    pub(crate) const FAILED: i32 = 1;
    /// Bad usage: no prompt, bad flags, settings a running daemon does not have.
    pub(crate) const USAGE: i32 = 2;
    /// The turn timed out (`--timeout`, the turn timeout or the stall watchdog).
    pub(crate) const TIMEOUT: i32 = 3;
    /// No child to ask: the CLI cannot start, the queue is full, the daemon is stopping
    /// or cannot be reached, or this runs nested at the depth limit.
    pub(crate) const UNAVAILABLE: i32 = 4;
    /// Interrupted by a signal (Ctrl-C): the ask was withdrawn.
    pub(crate) const INTERRUPTED: i32 = 130;
}

/// Beyond the turn's own timeout, how long to wait for the daemon's answer (its
/// interrupt's grace period and the answer's way back).
const ANSWER_MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The prompt (words are joined with spaces); `-` stands for stdin, which is also read
    /// when no prompt is given and stdin is not a terminal
    #[arg(value_name = "PROMPT")]
    pub prompt: Vec<String>,
    /// Show no steps on stderr (errors are still printed)
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the whole result (or the error) as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    /// Turn timeout: seconds, or a number with ms, s, m or h (`90`, `1500ms`, `5m`)
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<u64>,
    /// The session to ask (its own agent and conversation; default `default`)
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// Start the session's conversation afresh
    #[arg(long)]
    pub new_session: bool,
}

/// Why an ask got no answer: a JSON-RPC error object, from the daemon or made here.
type Failure = ErrorObjectOwned;

/// Runs the ask; returns the exit status.
pub(super) async fn run(
    args: AskArgs,
    config: Config,
    given: &ConfigArgs,
    server_flags: &[String],
) -> i32 {
    let prompt = match read_prompt(&args.prompt, config.max_request_bytes) {
        Ok(prompt) => prompt,
        Err(message) => {
            eprintln!("claude-coded ask: {message}");
            return exit::USAGE;
        }
    };
    // `--model` and `--permission-mode` configure the CLI of a claude-coded started here,
    // and are this ask's own with a running one (which refuses a mode above its ceiling).
    // On a terminal the answer is written as it comes; a pipe gets exactly the answer.
    let streams_text = !args.json && std::io::stdout().is_terminal();
    let params = AskParams {
        prompt,
        partial_messages: streams_text,
        timeout_ms: args.timeout,
        model: given.model.clone(),
        permission_mode: given.permission_mode,
        session: args.session,
        new_session: args.new_session,
        ..AskParams::default()
    };
    let mut progress = Progress::new(args.quiet, streams_text);
    let outcome = tokio::select! {
        outcome = ask(params, config, server_flags, &progress) => outcome,
        signal = crate::shutdown::signal() => Err(failure(
            code::CANCELLED,
            format!("{signal}: the ask was withdrawn"),
        )),
    };
    progress.finish();
    report(outcome, args.json, args.quiet, &progress)
}

/// Asks the project's running daemon, or one started here for this call.
async fn ask(
    params: AskParams,
    config: Config,
    server_flags: &[String],
    progress: &Progress,
) -> Result<AskResult, Failure> {
    // Run by an agent of a claude-coded (its Bash tool): asking, even a running daemon,
    // would nest without bound or wait on the very turn that runs us.
    let nesting = Nesting::detect(config.max_depth);
    if !nesting.may_start_child() {
        return Err(failure(
            code::NESTING_LIMIT,
            format!(
                "claude-coded ask runs inside a claude-coded agent at depth {} (limit {}, --max-depth); it asks no agent",
                nesting.depth, nesting.limit
            ),
        ));
    }
    let usable = |s: &crate::api::StatusResult| {
        s.daemon.nesting.may_start_child() && s.daemon.state == crate::api::DaemonState::Running
    };
    match client::find(&config.state_dir, usable).await {
        // It would be ignored: the running daemon was configured when it started.
        Some(found) if !server_flags.is_empty() => Err(failure(
            code::INVALID_PARAMS,
            format!(
                "{} configures a claude-coded that starts, and one already runs for this project (pid {}): leave it out, or stop that one first (claude-coded stop)",
                server_flags.join(", "),
                found.status.daemon.pid
            ),
        )),
        Some(found) => via_daemon(found, params, progress).await,
        None => in_process(config, params, progress).await,
    }
}

/// Over the daemon's socket: `ask`, its `ask/event` notifications shown as steps.
async fn via_daemon(
    found: Found,
    params: AskParams,
    progress: &Progress,
) -> Result<AskResult, Failure> {
    let Found { mut client, status } = found;
    let turn_ms = params.timeout_ms.unwrap_or(status.config.turn_timeout_ms);
    let grace_ms = status.config.interrupt_grace_ms;
    let wait = Duration::from_millis(turn_ms.saturating_add(grace_ms));
    let deadline = Instant::now() + wait + ANSWER_MARGIN;
    progress.step(format!(
        "asking claude-coded (pid {}, {})",
        status.daemon.pid,
        waiting_note(&status)
    ));
    let mut params =
        serde_json::to_value(&params).map_err(|e| failure(code::INTERNAL_ERROR, e.to_string()))?;
    let on_note = |note: &Value| {
        if note["method"] == crate::plain::methods::ASK_EVENT
            && let Some(message) = note.pointer("/params/message")
        {
            progress.message(message);
        }
    };
    let mut answer = client
        .call_with("ask", params.clone(), deadline, on_note)
        .await;
    // A daemon started by an older claude-coded does not know the field (it refuses it
    // before the ask is queued): the ask goes again without it, its text shown at the end.
    if refused_field(&answer, PARTIAL_MESSAGES)
        && let Some(fields) = params.as_object_mut()
    {
        fields.remove(PARTIAL_MESSAGES);
        answer = client.call_with("ask", params, deadline, on_note).await;
    }
    let value = answer.map_err(|err| match err {
        ClientError::Rpc(error) => error,
        other => failure(code::UNAVAILABLE, other.to_string()),
    })?;
    serde_json::from_value(value).map_err(|e| failure(code::INTERNAL_ERROR, e.to_string()))
}

/// The wire name of [`AskParams::partial_messages`].
const PARTIAL_MESSAGES: &str = "partialMessages";

/// Whether `answer` is the daemon's refusal of the param `field` (-32602 naming it).
fn refused_field(answer: &Result<Value, ClientError>, field: &str) -> bool {
    match answer {
        Err(ClientError::Rpc(error)) => {
            error.code() == code::INVALID_PARAMS
                && error
                    .data()
                    .and_then(|data| serde_json::from_str::<Value>(data.get()).ok())
                    .is_some_and(|data| data["field"] == field)
        }
        _ => false,
    }
}

/// What the ask waits for at the daemon, as a person would want to know it.
fn waiting_note(status: &crate::api::StatusResult) -> String {
    use crate::api::ChildStatus;
    let child = &status.child;
    match child.status {
        ChildStatus::Failed | ChildStatus::Backoff => {
            let why = child.last_error.as_deref().unwrap_or("it exited");
            return format!("its Claude Code is down ({}): {why}", child.status.as_str());
        }
        ChildStatus::Starting | ChildStatus::Idle => {
            return "its Claude Code is starting".to_string();
        }
        ChildStatus::Ready | ChildStatus::Busy | ChildStatus::Stopped => {}
    }
    match (status.turn.is_some(), status.queue.length) {
        (false, 0) => "its Claude Code is ready".to_string(),
        (true, 0) => "waiting for the turn in flight".to_string(),
        (_, n) => format!("waiting behind {n} queued asks and the turn in flight"),
    }
}

/// No daemon runs: start one in this process, ask, stop it.
async fn in_process(
    config: Config,
    params: AskParams,
    progress: &Progress,
) -> Result<AskResult, Failure> {
    progress.step("starting Claude Code (no claude-coded runs for this project)".into());
    let daemon = Daemon::start_as(config, Serving::Ask);
    // One ask, alone: nothing else to keep in order.
    let place = crate::arrivals::Place::alone();
    let answer = match daemon
        .ask(&place, params, Wants::answer().with_messages(), None)
        .await
    {
        Ok(Turn {
            pending, messages, ..
        }) => {
            let shown = async {
                let Some(mut messages) = messages else { return };
                while let Some(item) = messages.recv().await {
                    progress.message(&item.message.value());
                }
            };
            let (answer, ()) = tokio::join!(pending.wait(), shown);
            answer.map_err(crate::error::DaemonError::from)
        }
        Err(err) => Err(err),
    };
    daemon.shutdown("the ask was answered").await;
    answer.map_err(|err| RpcError::from(err).to_error_object())
}

/// Prints the answer (or the error) and returns the exit status. An answer the terminal
/// already shows, streamed, is not written again.
fn report(
    outcome: Result<AskResult, Failure>,
    as_json: bool,
    quiet: bool,
    progress: &Progress,
) -> i32 {
    match outcome {
        Ok(result) => {
            let status = if result.ok {
                exit::ANSWERED
            } else {
                exit::FAILED
            };
            if as_json {
                print_stdout(&serde_json::to_string(&result).unwrap_or_default());
            } else if result.ok {
                let answer = result.result.as_deref().unwrap_or("");
                if !progress.showed(answer) {
                    print_stdout(answer);
                }
                note_denials(&result, quiet);
            } else {
                eprintln!(
                    "claude-coded ask: the turn failed: {}",
                    result.failure_reason()
                );
            }
            status
        }
        Err(error) => {
            if as_json {
                print_stdout(&json!({ "error": error }).to_string());
            }
            eprintln!("claude-coded ask: {}", error.message());
            exit_status(error.code())
        }
    }
}

/// The exit status for an error code of the wire (`crate::error::code`).
pub(crate) fn exit_status(error_code: i32) -> i32 {
    match error_code {
        code::TIMEOUT | code::STALLED => exit::TIMEOUT,
        code::UNAVAILABLE | code::BUSY | code::STOPPING | code::NESTING_LIMIT => exit::UNAVAILABLE,
        code::INVALID_PARAMS | code::INVALID_REQUEST | code::REQUEST_TOO_LARGE => exit::USAGE,
        code::CANCELLED => exit::INTERRUPTED,
        _ => exit::FAILED,
    }
}

/// Tools the agent was refused are part of a successful answer; say so on stderr.
fn note_denials(result: &AskResult, quiet: bool) {
    let refused = result.permission_denials.len();
    if refused > 0 && !quiet {
        eprintln!(
            "claude-coded ask: the agent was refused {refused} tool use(s) by its permission mode (see --json: permissionDenials)"
        );
    }
}

fn failure(error_code: i32, message: String) -> Failure {
    ErrorObjectOwned::owned::<()>(error_code, message, None)
}

/// The answer on stdout, ending with a newline.
fn print_stdout(text: &str) {
    let line = text.strip_suffix('\n').unwrap_or(text);
    super::print_out(line);
}

/// The words joined by spaces, with what came on stdin (for `-`) on lines of its own:
/// `ask review this - ` with a diff piped keeps the diff's first line off the instruction.
fn join_prompt(words: &[String], piped: Option<&str>) -> String {
    let mut prompt = String::new();
    let mut after_block = false;
    for word in words {
        let (piece, block) = match (word.as_str(), piped) {
            ("-", Some(text)) => (text.trim_end_matches('\n'), true),
            _ => (word.as_str(), false),
        };
        if !prompt.is_empty() {
            prompt.push(if block || after_block { '\n' } else { ' ' });
        }
        prompt.push_str(piece);
        after_block = block;
    }
    prompt
}

/// The prompt from the words given, `-` standing for stdin; stdin alone when none are
/// given and it is not a terminal.
fn read_prompt(words: &[String], limit: usize) -> Result<String, String> {
    let stdin_wanted =
        words.iter().any(|w| w == "-") || (words.is_empty() && !std::io::stdin().is_terminal());
    let piped = match stdin_wanted {
        true => Some(read_stdin(limit)?),
        false => None,
    };
    let prompt = match (words.is_empty(), piped) {
        (true, Some(text)) => text,
        (_, piped) => join_prompt(words, piped.as_deref()),
    };
    if prompt.trim().is_empty() {
        return Err(
            "no prompt: give it as arguments (claude-coded ask 'What is 2+2?') or on stdin (echo ... | claude-coded ask)"
                .into(),
        );
    }
    Ok(prompt)
}

fn read_stdin(limit: usize) -> Result<String, String> {
    let mut bytes = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes);
    read.map_err(|e| format!("cannot read the prompt from stdin: {e}"))?;
    if bytes.len() > limit {
        return Err(format!(
            "the prompt on stdin is longer than {limit} bytes (--max-request-bytes)"
        ));
    }
    String::from_utf8(bytes).map_err(|_| "the prompt on stdin is not UTF-8".to_string())
}

/// `90`, `90s`, `1500ms`, `5m`, `1h` as milliseconds (1 ms to a day).
fn parse_timeout(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (90, 90s, 1500ms, 5m)"))?;
    let scale = match unit {
        "" | "s" => 1000.0,
        "ms" => 1.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        other => return Err(format!("unknown unit {other:?} (ms, s, m or h)")),
    };
    let ms = (number * scale).round();
    if ms < 1.0 || ms > MAX_TIMEOUT_MS as f64 {
        return Err(format!("{text} is outside 1 ms to 24 h"));
    }
    Ok(ms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piped_text_stands_on_lines_of_its_own_among_the_words() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let diff = "--- a/x\n+++ b/x\n";
        assert_eq!(
            join_prompt(&words(&["review", "this", "-"]), Some(diff)),
            "review this\n--- a/x\n+++ b/x"
        );
        assert_eq!(
            join_prompt(&words(&["-", "is", "it", "right?"]), Some(diff)),
            "--- a/x\n+++ b/x\nis it right?"
        );
        assert_eq!(join_prompt(&words(&["a", "-"]), None), "a -");
    }

    #[test]
    fn timeouts_read_as_people_write_them() {
        assert_eq!(parse_timeout("90"), Ok(90_000));
        assert_eq!(parse_timeout("1.5s"), Ok(1500));
        assert_eq!(parse_timeout("1500ms"), Ok(1500));
        assert_eq!(parse_timeout("5m"), Ok(300_000));
        assert_eq!(parse_timeout("1h"), Ok(3_600_000));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("25h").is_err());
        assert!(parse_timeout("soon").is_err());
        assert!(parse_timeout("5d").is_err());
    }

    #[test]
    fn only_a_refusal_naming_the_field_counts_as_the_field_refused() {
        let refusal = |code: i32, field: &str| -> Result<Value, ClientError> {
            Err(ClientError::Rpc(ErrorObjectOwned::owned(
                code,
                "invalid params",
                Some(json!({ "field": field })),
            )))
        };
        assert!(refused_field(
            &refusal(code::INVALID_PARAMS, PARTIAL_MESSAGES),
            PARTIAL_MESSAGES
        ));
        assert!(!refused_field(
            &refusal(code::INVALID_PARAMS, "prompt"),
            PARTIAL_MESSAGES
        ));
        assert!(!refused_field(
            &refusal(code::TIMEOUT, PARTIAL_MESSAGES),
            PARTIAL_MESSAGES
        ));
        assert!(!refused_field(&Ok(json!({})), PARTIAL_MESSAGES));
    }

    #[test]
    fn every_kind_of_failure_has_its_exit_status() {
        assert_eq!(exit_status(code::TIMEOUT), exit::TIMEOUT);
        assert_eq!(exit_status(code::STALLED), exit::TIMEOUT);
        assert_eq!(exit_status(code::UNAVAILABLE), exit::UNAVAILABLE);
        assert_eq!(exit_status(code::NESTING_LIMIT), exit::UNAVAILABLE);
        assert_eq!(exit_status(code::BUSY), exit::UNAVAILABLE);
        assert_eq!(exit_status(code::INVALID_PARAMS), exit::USAGE);
        assert_eq!(exit_status(code::CHILD_EXITED), exit::FAILED);
        assert_eq!(exit_status(code::CANCELLED), exit::INTERRUPTED);
    }
}
