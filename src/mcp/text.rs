//! The words a model reads: server instructions and tool descriptions.
//!
//! They are written for the model that calls the tools, not for the person who installs
//! the server, so they say when to use each tool and what comes back.

/// What `serverInfo.title` shows in a host's server list.
pub const SERVER_TITLE: &str = "Claude Code (claude-coded)";

/// One line for `serverInfo.description`.
pub const SERVER_DESCRIPTION: &str = "A supervised, always-warm Claude Code CLI served as a sub-agent: \
     ask it to do coding work in its working directory, check its health, read its event log.";

/// `instructions` of the `initialize` answer.
pub const INSTRUCTIONS: &str = "\
This server runs one Claude Code agent (the Claude Code CLI) in a fixed working directory and \
keeps it warm between calls. Use it to hand a self-contained coding task to a capable \
sub-agent that can read and edit files and run commands there.

- `ask` sends one prompt and waits for the agent's final answer. The agent keeps its \
conversation across calls (one session for the life of the server), so a follow-up can say \
\"now also ...\" without repeating context. Write each prompt as a complete instruction: \
what to do, where, and what to report back.
- One turn runs at a time. Calls made while a turn runs wait in a short queue; do not fire \
many asks in parallel, send them one after another.
- Long tasks: a turn may take minutes. Pass `timeoutMs` when you expect more than the default \
(5 minutes), and prefer splitting very large jobs into several asks. Progress notifications \
report each step (tool use, tool results) while a turn runs. Cancelling the call interrupts \
the agent; it stays alive and keeps its session.
- A result with `isError: true` means the turn failed (the text says why: for example a \
timeout, an API error, or the agent exited); the next `ask` works again.
- `status` and `events` are read-only and can be called while an `ask` runs: `status` shows \
whether the agent is ready or busy, the turn in flight, the queue and totals; `events` lists \
what happened (starts, restarts, turns, errors), newest after `since`.";

pub const ASK_DESCRIPTION: &str = "\
Send one prompt to the Claude Code agent and wait for its final answer. The agent works in \
this server's working directory with its own tools (read, edit, shell, search) and remembers \
earlier asks in the same session. The text result is the agent's reply; structured content \
adds the session id, cost, duration, number of model round trips and the raw result. \
`timeoutMs` (optional) bounds the turn; on timeout the agent is interrupted and the call \
fails. A failed turn returns isError with the reason.";

pub const STATUS_DESCRIPTION: &str = "\
Report the health of the Claude Code agent and this bridge: whether the agent process is \
ready, busy, restarting or failed, the turn in flight (elapsed time, prompt preview), the \
queue of waiting asks, total asks, cost and tokens, and the effective configuration. \
Read-only and instant; safe to call while an ask runs.";

pub const EVENTS_DESCRIPTION: &str = "\
List recent events of the bridge, oldest first: agent starts, readiness, exits and restarts, \
turns started, finished, failed, timed out or cancelled, and problems such as unexpected \
output. Pass `since` (the previous answer's `nextSeq - 1`) to get only newer events, `level` \
to keep only `info`, `warn` or `error` and above, `limit` for the page size. Read-only.";
