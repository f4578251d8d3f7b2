//! The words a model reads: server instructions and tool descriptions.
//!
//! They are written for the model that calls the tools, not for the person who installs
//! the server, so they say when to use each tool, what comes back, and, truthfully, what
//! the agent may do under the permission mode the user configured.

use crate::config::Config;
use crate::permissions::{Decider, PermissionMode};

/// What `serverInfo.title` shows in a host's server list.
pub(super) const SERVER_TITLE: &str = "Claude Code (claude-coded)";

/// One line for `serverInfo.description`.
pub(super) const SERVER_DESCRIPTION: &str = "A supervised, always-warm Claude Code CLI served as a sub-agent: \
     ask it to do coding work in its working directory, check its health, read its event log.";

/// The `wait` tool's description.
pub(super) const WAIT_DESCRIPTION: &str = "Collect the answer of an `ask` made with \
`background: true`: pass its turnId. Returns the agent's reply as soon as the turn ends, or, \
after timeoutMs (default 30000, below the usual 60 s limit of a tool call), that it is still \
running, with the elapsed time and the agent's latest step: then call `wait` again, or do \
other work first. An answer is returned once; it is kept for an hour if nobody collects it.";

/// The `cancel` tool's description.
pub(super) const CANCEL_DESCRIPTION: &str = "Stop an `ask` made with `background: true`: \
pass its turnId. The agent is interrupted (or the ask leaves the queue); its session stays \
and takes the next ask.";

/// `instructions` of the `initialize` answer, naming what the agent may do here.
pub(super) fn instructions(config: &Config) -> String {
    format!(
        "\
This server runs Claude Code agents (the Claude Code CLI) in {cwd} and keeps them warm \
between calls. Use it to hand a self-contained coding task to a sub-agent. {permissions}

- `ask` sends one prompt and waits for the agent's final answer. The agent keeps its \
conversation across calls, so a follow-up can say \"now also ...\" without repeating \
context. Write each prompt as a complete instruction: what to do, where, and what to report \
back.
- `session` names an agent of its own with its own conversation (default `default`): asks \
to different sessions run in parallel, up to {sessions} at once; asks to one session run one \
after another. Give parallel workers different sessions (and, for separate checkouts, a \
`cwd` when a session starts); `newSession: true` starts a session's conversation afresh. \
`sessions` lists them.
- Long tasks: a turn may take minutes, longer than this host may let one call run. For work \
that may take more than a minute, pass `background: true`: `ask` answers at once with a \
`turnId`, and `wait` (with that turnId) collects the answer, returning within about 30 s with \
the latest step while the agent still works, so you can keep working or ask other sessions \
meanwhile; `cancel` stops it. Pass `timeoutMs` when you expect more than the default \
({timeout} s), and prefer splitting very large jobs into several asks. Progress notifications \
report each step (tool use, tool results, API retries) while a turn runs. Cancelling the call \
interrupts the agent; it stays alive and keeps its session.
- A result with `isError: true` means the turn failed (the text says why: for example a \
timeout, an API error, or the agent exited); the next `ask` works again.
- `status` and `events` are read-only and can be called while an `ask` runs: `status` shows \
whether the agent is ready or busy, the turn in flight and totals; `events` lists what \
happened (starts, restarts, turns, errors), newest after `since`.",
        cwd = config.cwd.display(),
        permissions = permissions(config),
        timeout = config.turn_timeout_ms / 1000,
        sessions = config.max_sessions,
    )
}

/// The `ask` tool's description, naming what the agent may do here.
pub(super) fn ask_description(config: &Config) -> String {
    format!(
        "Send one prompt to the Claude Code agent working in {cwd} and wait for its final answer. \
It remembers earlier asks in the same session; `session` (a name) picks another agent with \
its own conversation, running in parallel with the others. {permissions} The result is the agent's reply, \
with the session id, cost, duration and any tool uses the permission mode refused \
(`permissionDenials`). `timeoutMs` (optional) bounds the turn; on timeout the agent is \
interrupted and the call fails. A failed turn returns isError with the reason. For work that \
may take more than a minute, pass `background: true`: the call answers at once with a turnId \
for the `wait` tool (which returns the answer, or the latest step while it runs) and `cancel`.",
        cwd = config.cwd.display(),
        permissions = permissions(config),
    )
}

/// What the configured permission mode lets the agent do, and who can change it.
fn permissions(config: &Config) -> String {
    let mode = config
        .permission_mode
        .unwrap_or(PermissionMode::Default)
        .as_str();
    let can = match mode {
        "bypassPermissions" => {
            "may read and edit files and run any command there without asking anyone"
        }
        "acceptEdits" => {
            "may read, search and edit files there; shell commands that need approval are refused"
        }
        "plan" => "only plans: it reads and searches files but changes nothing",
        "dontAsk" => "may use only the tools the user's settings allow; everything else is refused",
        "auto" => {
            "may read and edit files and run commands that Claude Code judges safe; others are refused"
        }
        "default" => {
            "may read and search files there; editing files and shell commands need approval"
        }
        _ => {
            "works under a permission mode this server does not know; refused actions are reported"
        }
    };
    let who = match config.permission_decider {
        Decider::Relay => {
            "What needs approval is asked of the user through this client when it supports \
             elicitation (a form shows the command or edit); otherwise it is refused and the \
             result says which setting would allow it"
        }
        Decider::Deny => {
            "What needs approval is refused; the result says which setting would allow it"
        }
        Decider::Allow => {
            "What needs approval is allowed without asking, unless a deny rule forbids it"
        }
    };
    format!(
        "In permission mode `{mode}` the agent {can}. {who}. `permissionMode` may pick a mode \
         for one ask, up to `{ceiling}`. Only the user can widen this, in the server's \
         configuration (--permission-mode, --permission-ceiling, --allow-tool).",
        ceiling = config.permission_ceiling
    )
}

pub(super) const STATUS_DESCRIPTION: &str = "\
Report the health of the Claude Code agent: whether it is ready, busy, starting, restarting \
or failed (with the last error), the turn in flight, how many asks wait, totals (asks, cost) \
and where and in which permission mode it works. `full: true` adds everything (process ids, \
counters, configuration, the connected client). Read-only and instant; safe to call while an \
ask runs.";

pub(super) const SESSIONS_DESCRIPTION: &str = "\
List the sessions: each is a Claude Code agent with its own conversation, named by `ask`'s \
`session`. Shows each one's state (ready, busy, stopped after being idle), working \
directory, Claude Code session id (what `resume` continues), turns, cost and queue. `close` \
stops one session's agent first; its conversation stays and its next ask continues it.";

pub(super) const EVENTS_DESCRIPTION: &str = "\
List recent events of the bridge, oldest first, one short line each: agent starts, \
readiness, exits and restarts, turns started, finished, failed, timed out or cancelled, and \
problems such as unexpected output. Pass `since` (the previous answer's `nextSeq - 1`) to get \
only newer events, `level` to keep only `info`, `warn` or `error` and above, `limit` for the \
page size, `full: true` for each event's details. Read-only.";
