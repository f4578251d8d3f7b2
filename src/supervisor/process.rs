//! One running child as seen by the actor: its tasks for stdin, stdout, stderr and exit,
//! all reporting to the actor through one channel tagged with the child's generation.

use std::process::ExitStatus;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::ChildStdin;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::child::ChildError;
use crate::child::protocol::{ChildLine, parse_line};
use crate::child::spawn::{SpawnSpec, Spawned, spawn};
use crate::child::stderr::{StderrTail, drain};
use crate::lines::{Frame, LineReader};
use crate::permissions::PermissionMode;
use crate::supervisor::Budget;
use crate::supervisor::spares::Taken;

/// How long an exit waits for the child's last stderr lines.
const STDERR_SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

/// What the child's tasks report.
#[derive(Debug)]
pub(crate) enum ChildEvent {
    Line(ChildLine),
    /// A stdout line over the size limit (skipped, not kept).
    TooLong {
        len: usize,
    },
    /// stdout reached EOF (or failed); the process may still be running.
    StdoutClosed,
    /// The process ended.
    Exited(std::io::Result<ExitStatus>),
}

/// An event with the generation of the child that produced it; events of an older
/// child arriving after a restart are ignored.
pub(crate) type Tagged = (u64, ChildEvent);

/// The actor's view of one child process.
pub(crate) struct Running {
    pub(crate) generation: u64,
    pub(crate) pid: u32,
    pub(crate) started: Instant,
    /// Lines for the child's stdin; dropping it closes stdin.
    pub(crate) stdin: Option<mpsc::UnboundedSender<String>>,
    pub(crate) stderr_tail: StderrTail,
    /// Request id of the warm-up `initialize`.
    pub(crate) init_request: String,
    /// Whether the actor still has to send that `initialize` (a taken spare was sent
    /// its own, and its answer is the first line its new owner reads).
    pub(crate) needs_initialize: bool,
    pub(crate) ready_at: Option<Instant>,
    /// Why we are killing it, when we are.
    pub(crate) kill_reason: Option<String>,
    /// Set when stdout closed: the process is killed if it is still running then.
    pub(crate) linger_until: Option<Instant>,
    /// The session this child was started to continue (`--resume`), if any.
    pub(crate) resumed: Option<String>,
    /// Turns that ended with a result in this process.
    pub(crate) turns_done: u64,
    /// The permission mode and model it runs with now (`None`: the CLI's default), so a
    /// turn that needs others switches them first, and the next one switches back.
    pub(crate) mode: Option<PermissionMode>,
    pub(crate) model: Option<String>,
    /// The `--max-budget-usd` it was started with, and whose budget that is.
    pub(crate) budget: Option<Budget>,
    /// What this process has spent (the CLI counts it against `budget`); `None` once a
    /// turn's cost was unknown.
    pub(crate) spent_usd: Option<f64>,
}

impl Running {
    /// Spawns the child and its pipe tasks.
    pub(crate) fn start(
        spec: &SpawnSpec,
        generation: u64,
        max_line: usize,
        events: mpsc::Sender<Tagged>,
    ) -> Result<Running, ChildError> {
        Ok(Running::from_spawned(
            spawn(spec)?,
            None,
            generation,
            max_line,
            events,
        ))
    }

    /// Takes over a warm spare: its answer to its own `initialize` is read first, as the
    /// answer to this child's warm-up, so a new session does not wait for a second one.
    pub(crate) fn from_spare(
        spare: Taken,
        generation: u64,
        max_line: usize,
        events: mpsc::Sender<Tagged>,
    ) -> Running {
        let Taken {
            spawned,
            answer,
            request_id,
        } = spare;
        let mut running =
            Running::from_spawned(spawned, Some(answer), generation, max_line, events);
        running.init_request = request_id.to_string();
        running.needs_initialize = false;
        running
    }

    /// Takes over a child just spawned: its pipe tasks start now, reading `first` (a
    /// line it already printed) before its stdout.
    fn from_spawned(
        spawned: Spawned,
        first: Option<Vec<u8>>,
        generation: u64,
        max_line: usize,
        events: mpsc::Sender<Tagged>,
    ) -> Running {
        let Spawned {
            child,
            pid,
            stdin,
            stdout,
            stderr,
        } = spawned;
        let stderr_tail = StderrTail::default();
        let drained = tokio::spawn(drain(stderr, pid, stderr_tail.clone()));
        tokio::spawn(read_stdout(
            stdout,
            first,
            max_line,
            generation,
            events.clone(),
        ));
        tokio::spawn(wait_exit(child, drained, generation, events));
        let (stdin_tx, stdin_rx) = mpsc::unbounded_channel();
        tokio::spawn(write_stdin(stdin, stdin_rx, pid));
        Running::new(generation, pid, stdin_tx, stderr_tail)
    }

    /// The actor's view of a child whose stdin lines go to `stdin`; what plays the child
    /// (pipe tasks, or a test's fake) reports its events tagged with `generation`.
    pub(crate) fn new(
        generation: u64,
        pid: u32,
        stdin: mpsc::UnboundedSender<String>,
        stderr_tail: StderrTail,
    ) -> Running {
        Running {
            generation,
            pid,
            started: Instant::now(),
            stdin: Some(stdin),
            stderr_tail,
            init_request: format!("init-{generation}"),
            needs_initialize: true,
            ready_at: None,
            kill_reason: None,
            linger_until: None,
            resumed: None,
            turns_done: 0,
            mode: None,
            model: None,
            budget: None,
            spent_usd: Some(0.0),
        }
    }

    /// Queues a line for the child's stdin; false when stdin is already closed.
    pub(crate) fn send(&self, line: String) -> bool {
        self.stdin.as_ref().is_some_and(|tx| tx.send(line).is_ok())
    }
}

async fn read_stdout(
    stdout: BufReader<tokio::process::ChildStdout>,
    first: Option<Vec<u8>>,
    max_line: usize,
    generation: u64,
    events: mpsc::Sender<Tagged>,
) {
    if let Some(line) = first {
        let event = ChildEvent::Line(parse_line(line));
        if events.send((generation, event)).await.is_err() {
            return;
        }
    }
    let mut reader = LineReader::new(stdout, max_line);
    loop {
        let event = match reader.next_frame().await {
            Ok(Frame::Line(bytes)) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(Frame::Line(bytes)) => ChildEvent::Line(parse_line(bytes)),
            Ok(Frame::TooLong { len }) => ChildEvent::TooLong { len },
            Ok(Frame::Eof) => ChildEvent::StdoutClosed,
            Err(err) => {
                tracing::warn!(%err, "reading the child's stdout failed");
                ChildEvent::StdoutClosed
            }
        };
        let closed = matches!(event, ChildEvent::StdoutClosed);
        // Backpressure on purpose: a child that outruns the actor waits on its pipe.
        if events.send((generation, event)).await.is_err() || closed {
            return;
        }
    }
}

async fn wait_exit(
    mut child: tokio::process::Child,
    stderr_drained: tokio::task::JoinHandle<()>,
    generation: u64,
    events: mpsc::Sender<Tagged>,
) {
    let status = child.wait().await;
    // The last stderr lines explain the exit: let the drain reach EOF before reporting it.
    let _ = tokio::time::timeout(STDERR_SETTLE, stderr_drained).await;
    let _ = events.send((generation, ChildEvent::Exited(status))).await;
}

async fn write_stdin(mut stdin: ChildStdin, mut lines: mpsc::UnboundedReceiver<String>, pid: u32) {
    while let Some(line) = lines.recv().await {
        let written = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        };
        if let Err(err) = written.await {
            // The exit or stdout EOF tells the actor; nothing more to do here.
            tracing::debug!(pid, %err, "writing to the child's stdin failed");
            return;
        }
    }
    // All senders gone: dropping `stdin` closes the pipe, which asks the CLI to exit.
}
