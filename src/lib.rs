//! claude-coded keeps Claude Code CLI children alive and supervised, one per named
//! session, and serves them as `ask`, `status`, `sessions` and `events` over JSON-RPC 2.0
//! on its own stdin/stdout (and a Unix socket, and HTTP when asked), as MCP tools, or as
//! an ACP agent.
//!
//! # Layout
//!
//! Modules are layered, lowest last in this list roughly: a module names only modules
//! below it, never its own layer or above (`tests/suite/layers.rs` holds the table and
//! fails on a name that goes up). From the top: the command line; the HTTP listener and
//! the socket's client; the MCP and ACP surfaces and the socket; the plain surface; the core
//! (`daemon`); detached turns; sessions and the protocol's errors; the core's errors and
//! event lines; the supervisor; settings and records; the wire types and the child; the
//! foundations (clock, framing, platform, stderr, text).
//!
//! - [`cli`]: the command line (`serve`, `ask`, `start`, `stop`, `status`, `events`,
//!   `config`); `main.rs` only calls it. `ask` shows a turn's steps on stderr
//!   (`cli::progress`), and on a terminal the answer's text as it streams, and exits with
//!   a status a script can branch on; `status -w` (`cli::watch`) redraws one line per live
//!   session in place.
//! - `socket`: `daemon.sock` in the state directory, where other processes reach a
//!   running claude-coded: each connection is served by the plain surface's adapter
//!   (`plain::serve_client`) over the same method table as stdio.
//! - `http`: opt-in (`--listen`) HTTP on one port: MCP at `/mcp` (rmcp's Streamable
//!   HTTP service, one [`mcp::McpServer`] per session), the plain method table at `/rpc`
//!   over jsonrpsee's HTTP and WebSocket server (where `ask/subscribe` streams an ask),
//!   `/healthz`; a guard refuses foreign origins and checks the bearer token, and
//!   connections, WebSockets and MCP sessions are bounded and timed out (`http::conn`).
//! - `client`: the plain protocol's client side over that socket, for the commands that
//!   find and use a project's running daemon.
//! - [`config`]: flags over `CLAUDE_CODED_*` variables over the JSON config file over defaults;
//!   each setting is declared once (`settings!`: flag, variable, file key, resolution,
//!   checks, example), and tests hold the table in docs/reference.md and `start`'s
//!   hand-over (`Config::to_env`) to it.
//! - [`api`]: the wire types of the methods (camelCase, `JsonSchema`; `schemas/` is generated).
//! - [`daemon`]: the core both surfaces call: validation, identity, state file, event record.
//! - `sessions`: the named sessions, one supervisor each: routing an ask to its session,
//!   cwd confinement, the pool's limits, idle reaping, budgets, `sessions.json`.
//! - [`supervisor`]: one actor task per child owning the process, its queue and its turn;
//!   its state is one enum (idle, starting, ready, busy with its turn, replacing a child
//!   whose budget does not suit the next ask, backoff until, failed with the reason,
//!   stopping) plus a crash window, and it gets its children
//!   through a small `Backend` seam (real processes, or the unit tests' fake child); new
//!   sessions take warm spare CLIs when `--spare-sessions` keeps some (`supervisor::spares`).
//! - [`child`]: spawning (process group, parent-death signal) from the few settings it
//!   needs (`CliSettings`, not the whole config), stream-json lines, stderr, and a
//!   message told as a step (`child::steps`: the words of MCP progress, `ask`'s stderr and
//!   background turns).
//! - [`nesting`]: how deep this server runs inside other claude-coded, and whether it may
//!   start a child.
//! - [`guard`]: `claude-coded __guard`, the process that takes the CLI's group down with the bridge.
//! - `platform`: every OS-specific mechanism (process groups and the guard's links, the
//!   process table, `poll`/`ioctl` flags) behind one API: `linux.rs`, `macos.rs`, and
//!   `unix.rs` for what POSIX shares. Nothing else names an OS.
//! - [`events`]: ring buffer, counters and `events.jsonl`.
//! - [`state_dir`]: `identity.json`, `daemon-state.json` (atomic), file modes.
//! - [`plain`]: the plain JSON-RPC surface: envelope checks (`plain::envelope`), the method
//!   table (`plain::methods`, a jsonrpsee `RpcModule`: adding a method is registering it
//!   there), a thin stdio adapter that serves each call in a task and answers it under
//!   its own id, and `ask/event` notifications.
//! - `background`: asks answered at once with a handle (`wait: false`, `background: true`)
//!   and their results until collected or expired, in `results.json` across restarts.
//! - [`mcp`]: the MCP surface on rmcp: tools `ask`, `wait`, `cancel`, `status`, `sessions`,
//!   `events` over the same core (an `ask` is a task for clients of the tasks extension),
//!   with compact, answer-first results written for the model that reads them
//!   (`mcp::output`) and portable schemas; a turn's messages become
//!   `notifications/progress` (raw ones opt-in), cancelling a call interrupts its turn,
//!   and the event log streams as `notifications/message`. An `ask`'s response waits until
//!   the client has read the turn's last notification. A client's MCP roots say which
//!   project the sessions work in (`mcp::roots`).
//! - `acp`: the ACP (Agent Client Protocol v1) agent surface for editors that run agents:
//!   each ACP session a named session of ours (`session/new` takes a warm spare when one
//!   fits), a prompt's messages as `session/update`s, permission questions as
//!   `session/request_permission`, `session/load` replayed from the CLI's transcript.
//!   Types from the protocol's schema crate; the framing and dispatch are ours.
//! - [`surface`]: picks MCP, ACP or plain from the first message (or `--surface`).
//! - [`error`]: the core's errors (`DaemonError`) and the one table of their JSON-RPC
//!   codes and data; below the daemon, so the core and every surface share it.
//! - [`rpc_error`]: the protocol layer's errors and the one conversion to JSON-RPC
//!   error objects.
//! - `text`: text helpers every layer shares (cutting to a length).
//! - `arrivals`: arrival order, one mechanism for every surface: a connection's reading
//!   loop gives each ask a place in line as it reads it, and the core queues the ask in
//!   its place's turn (`Daemon::ask` takes the place).
//! - [`redact`]: masks the environment's secrets in everything claude-coded records.
//! - `stderr_log`: the one stderr writer (a thread behind a bounded queue): a host that
//!   never reads our stderr loses log lines, counted in `status`, and never blocks us.
//! - [`lines`]: size-limited newline framing used for stdin and the child's stdout.
//! - [`inbox`]: reading stdin for both surfaces, paused while the client does not read.
//! - [`outbox`]: the one stdout writer of both surfaces, with its backlog and stall clock.
//! - `event_lines`: a turn's messages as notification lines (plain `ask/event`, MCP raw
//!   events), batched into the outbox with the child's text spliced in unchanged.
//!
//! # Theory of operation
//!
//! At start the daemon opens its state directory and starts the supervisor, which spawns
//! `claude --input-format stream-json --output-format stream-json --verbose` at once and
//! sends it an `initialize` control request; the answer marks the child `ready`, so the
//! first `ask` does not pay the CLI's cold start. The child loads the user's MCP
//! configuration and may start claude-coded again: [`nesting`] tells each child its depth
//! and counts the guards above, so a nested server starts its child only on its first
//! ask, and one at `--max-depth` never does (its asks fail at once).
//!
//! An `ask` becomes an [`supervisor::AskRequest`] in the actor's bounded FIFO. Its
//! place in line is taken as its line is read (`arrivals`, on every surface), and the
//! core queues it in that place's turn, so pipelined asks keep their order. When the child is ready
//! and idle, the actor writes the prompt as a stream-json user message; every line the
//! child prints in that turn (but its partial messages, the `stream_event` lines it always
//! prints, unless the ask set `partialMessages`) goes to the ask's sink (and on to the
//! client as `ask/event` notifications, the child's text spliced in unchanged) until the
//! `result` line, which becomes the answer. The sink is bounded and lossless: while it is full the actor reads
//! no more of the child's stdout, so a slow client slows the child down (its pipe fills),
//! while commands and timers go on being served.
//! The CLI is sequential, so one turn runs at a time. The CLI counts what its own process
//! spends against `--max-budget-usd`, so each turn, as it leaves the FIFO, reserves what it
//! may spend (the least of its ask's `maxBudgetUsd` and what the budgets leave beyond the
//! reservations of turns running in any session, taken under one lock) and runs in a
//! child whose CLI may spend just that: when the warm child does not suit, the actor
//! replaces it (stdin closed, then `--resume` with that budget). The unspent part goes
//! back when the turn ends; an ask the budgets leave nothing for is refused at once.
//!
//! The actor decides from its own state, never from the wire: the `status` fields
//! (`status`, `ready`, `nextRestartAt`, `consecutiveFailures`, `sessionId`) are derived
//! from it each time a snapshot is published. Each actor is an independent unit (its own
//! task, queue and child), so one process can run several.
//!
//! Things go wrong in a few ways, each handled in the actor: a turn that outlives its
//! timeout gets an `interrupt`, then a kill after a grace period; a child that exits fails
//! the turn in flight at once (with its stderr tail) and is restarted with exponential
//! backoff; lines that are not stream-json are skipped and recorded. Every such fact is an
//! event in the ring buffer and in `events.jsonl`, and the actor publishes a snapshot
//! after each step, which `status` reads and a small task persists to `daemon-state.json`.
//!
//! Every serving claude-coded also listens on a Unix socket in its state directory (the
//! instance lock makes a socket file found there a dead daemon's, so it is replaced), and
//! serves the plain protocol to each connection as to a stdio client, so other processes
//! share its child, session and queue; a connection's end never stops the daemon. That is
//! how `claude-coded ask` reaches a warm child, and how `start` (`serve --background`, a
//! detached daemon with no stdio) is controlled: `stop` is a method of the table.
//!
//! With `--listen`, HTTP clients reach the same core too: each MCP session and each
//! WebSocket connection is another client of the one daemon, like a socket connection.
//!
//! Stopping on stdin EOF (after the pending requests finish) closes the child's stdin,
//! waits, then signals its process group with TERM and KILL; a SIGTERM/SIGINT/SIGHUP
//! sends TERM at once, since hosts escalate within 100 ms. The CLI
//! runs under a small guard process (this binary, `__guard`) that leads its process group
//! and learns at once when the bridge dies, even by SIGKILL (Linux's `PR_SET_PDEATHSIG`,
//! or a pipe whose write end only the bridge holds); it then kills the whole group, the
//! CLI's own tool processes included, and the tool processes that left the group (Linux
//! makes the guard their subreaper; everywhere they carry the guard's mark in their
//! environment).
//!
//! # Embedding
//!
//! [`daemon::Daemon`] can run inside another program, but the child is started through the
//! current executable's guard mode (`<exe> __guard <cli> ...`, see [`guard`]), so such a
//! program must call [`guard::main_if_guard`] first thing in `main` and exit with its code
//! when it returns `Some`.

mod acp;
pub mod api;
mod arrivals;
mod background;
mod child;
pub mod cli;
mod client;
mod clock;
pub mod config;
pub mod daemon;
pub mod error;
mod event_lines;
mod events;
pub mod guard;
mod http;
pub mod inbox;
mod lines;
pub mod mcp;
pub mod nesting;
mod outbox;
pub mod permissions;
pub mod plain;
mod platform;
mod redact;
mod rpc_error;
mod sessions;
mod shutdown;
mod socket;
mod state_dir;
mod status_text;
mod stderr_log;
mod supervisor;
mod surface;
mod sync;
mod text;

/// claude-coded's version, as reported in `status` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
