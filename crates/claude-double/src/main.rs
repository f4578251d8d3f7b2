//! `claude-double`: a scripted stream-json test double of the Claude Code CLI 2.1.332.
//!
//! Tests spawn it in place of the real `claude`. Its output lines have the same shapes as
//! the real CLI's (same `type`/`subtype`, field names, nesting, order of messages within a
//! turn, top-level key order; see `tests/fixtures/cli/`), but what it does is chosen by the
//! prompt and by environment variables, so every failure mode can be produced on demand.
//!
//! # Where each part is described
//!
//! - [`args`]: the command line (the real CLI's flags).
//! - [`startup`]: the `DOUBLE_*` environment knobs read at startup.
//! - [`control`]: the control protocol (`initialize`, `interrupt`, ...) and how an
//!   interrupt ends a turn.
//! - [`stdin`]: what the other stdin lines do.
//! - [`directive`]: the prompt words that pick a turn's behaviour (the table of `SLOW`,
//!   `HANG`, `CRASH`, `RUN_TOOL`, ...); [`behaviour`] runs them.
//! - [`tool`]: `RUN_TOOL` and its permission (default, `bypassPermissions`, `stdio`).
//! - [`elicit`]: `ELICIT`, an MCP server's question relayed to the host.
//! - [`session`]: turns, one at a time, and the ids and counters they share.
//! - [`lines`]: the `system/init`, `assistant` and (with `--include-partial-messages`)
//!   `stream_event` lines of a turn; [`result`]: its `result` line and the accounting.
//! - [`out`]: the one stdout writer; [`ids`]: uuids, request ids and timestamps.
//!
//! # Lifecycle
//!
//! Prints nothing until the first stdin line. One process serves many turns, one at a time:
//! user messages that arrive during a turn are queued and run after it, in order. stdin is
//! read concurrently with the running turn (control requests are answered mid-turn). On stdin
//! EOF it finishes the turn in flight and the queued ones, then exits 0 at once (a few ms
//! when idle). A HANG or CLOSE_STDOUT turn never finishes, so such a process ignores EOF.
//! Every stdout line is written whole and flushed by a single writer. If writing stdout fails
//! (the reader went away) it notes that on stderr and exits 1.
//!
//! `session_id` is fixed for the life of the process: `--session-id`, else `--resume` (unless
//! `--fork-session`, which branches it into a new id), else a
//! random UUID v4. `model` comes from `--model` (default `claude-opus-5-5`), `permissionMode`
//! from `--permission-mode` (default `default`); both can be changed by `set_model` and
//! `set_permission_mode` and show in the next turn's `system/init`.

mod args;
mod behaviour;
mod control;
mod directive;
mod elicit;
mod ids;
mod lines;
mod out;
mod result;
mod session;
mod startup;
mod state;
mod stdin;
mod tool;

use std::io::Write as _;

/// The real CLI version the double answers as.
const VERSION: &str = "2.1.332";
const DEFAULT_MODEL: &str = "claude-opus-5-5";

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // As the real CLI answers it (`claude-coded doctor` asks).
    if argv.get(1).map(String::as_str) == Some("--version") {
        let _ = writeln!(std::io::stdout(), "{VERSION} (Claude Code)");
        return;
    }
    let args = args::parse_args(argv.get(1..).unwrap_or_default());

    // Before anything else, so a test may send SIGTERM as soon as it sees the record.
    if std::env::var("DOUBLE_IGNORE_SIGTERM").is_ok_and(|v| v == "1") {
        // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
        }
    }
    if let Ok(path) = std::env::var("DOUBLE_RECORD") {
        startup::record_start(&path, &argv);
    }
    for n in &args.notes {
        note(n);
    }
    if args.output_format.as_deref() == Some("stream-json") && !args.verbose {
        let _ = writeln!(
            std::io::stderr(),
            "Error: When using --print, --output-format=stream-json requires --verbose"
        );
        std::process::exit(1);
    }
    startup::knobs(&args);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            note(&format!("cannot start the tokio runtime: {e}"));
            std::process::exit(1);
        }
    };
    runtime.block_on(session::run(args));
    // Exit here rather than dropping the runtime: nothing is left to flush (every line was
    // flushed) and a blocked stdin read must not delay the exit.
    std::process::exit(0);
}

/// Notes something on stderr; never panics (stderr may be closed).
fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "double: {msg}");
}
