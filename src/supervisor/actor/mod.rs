//! The task that owns the child: spawn and warm-up, turns, timeouts, restarts, stop.
//!
//! The state and the loop live here; the steps are split by subject: [`commands`],
//! [`lifecycle`], [`output`], [`turns`] and [`stop`], each an `impl Actor` block.

mod commands;
mod lifecycle;
mod output;
mod stop;
#[cfg(test)]
mod tests;
mod turns;

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use super::backend::{Backend, Started};
use super::process::{ChildEvent, Running, Tagged};
use super::snapshot::Snapshot;
use super::turn::{Turn, account, ask_result, preview};
use super::{AskError, AskRequest, Control, RestartOutcome};
use crate::api::{AskResult, ChildStatus, Level, QueuedInfo};
use crate::child::ChildError;
use crate::child::protocol::{ChildLine, control_error, control_request, kind_of, user_message};
use crate::child::stderr::truncate_chars;
use crate::clock::{now_rfc3339, rfc3339};
use crate::config::Config;
use crate::events::EventLog;
use crate::nesting::Nesting;

/// After stdout closes, how long the process may linger before it is killed.
const STDOUT_CLOSED_GRACE: Duration = Duration::from_secs(1);
/// After SIGTERM on stop, how long before SIGKILL.
/// Short, so a stop stays within about 6 s even for a child that ignores its closed stdin.
const TERM_GRACE: Duration = Duration::from_millis(300);
/// The same on a prompt stop (a signal), whose whole budget is 100 ms: the guard ends
/// whatever is left of the group when the bridge exits.
const PROMPT_TERM_GRACE: Duration = Duration::from_millis(40);

/// What the actor is started with.
pub(crate) struct Setup {
    pub(crate) config: Arc<Config>,
    pub(crate) nesting: Nesting,
    pub(crate) events: EventLog,
    /// What starts and signals the children (real processes, or a test's fake).
    pub(crate) backend: Box<dyn Backend>,
}

pub(crate) async fn run(
    setup: Setup,
    control: mpsc::Receiver<Control>,
    snapshot: watch::Sender<Snapshot>,
) {
    // Bounded: the child's readers wait when the actor is behind, instead of buffering.
    let (child_tx, child_rx) = mpsc::channel(256);
    let Setup {
        config,
        nesting,
        events,
        backend,
    } = setup;
    let mut actor = Actor {
        state: Snapshot::initial(&config),
        config,
        nesting,
        events,
        backend,
        child_tx,
        child: None,
        generation: 0,
        queue: VecDeque::new(),
        turn: None,
        restart_at: None,
        linger_until: None,
        last_total_cost: None,
        stopping: false,
        start_failed: false,
        failed_starts: VecDeque::new(),
        resume: None,
    };
    // Warm up at once only at the top: a nested server may never be asked.
    if !nesting.is_nested() {
        actor.spawn_child();
    }
    actor.publish(&snapshot);
    actor.serve(control, child_rx, &snapshot).await;
}

struct Actor {
    config: Arc<Config>,
    nesting: Nesting,
    events: EventLog,
    backend: Box<dyn Backend>,
    /// Given to each child's pipe tasks; their events come back on the loop's receiver.
    child_tx: mpsc::Sender<Tagged>,
    child: Option<Running>,
    generation: u64,
    queue: VecDeque<AskRequest>,
    turn: Option<Turn>,
    /// When the next start is due (backoff).
    restart_at: Option<Instant>,
    /// When a child whose stdout closed is killed if it has not exited.
    linger_until: Option<Instant>,
    /// The child's running cost before the current turn, to report per-turn cost.
    last_total_cost: Option<f64>,
    stopping: bool,
    /// The last child could not start (see `last_start_failed`).
    start_failed: bool,
    /// When recent unhealthy exits happened, to detect a crash loop.
    failed_starts: VecDeque<Instant>,
    /// Session to continue in the next child (`--resume`), after an unexpected exit.
    resume: Option<String>,
    /// What `status` shows; kept up to date as things happen.
    state: Snapshot,
}

impl Actor {
    async fn serve(
        &mut self,
        mut control: mpsc::Receiver<Control>,
        mut child_rx: mpsc::Receiver<Tagged>,
        snapshot: &watch::Sender<Snapshot>,
    ) {
        loop {
            let timer = self.next_deadline();
            tokio::select! {
                command = control.recv() => match command {
                    Some(Control::Stop { done, prompt }) => {
                        self.stop(&mut child_rx, snapshot, prompt).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.on_control(command),
                    None => {
                        self.stop(&mut child_rx, snapshot, false).await;
                        return;
                    }
                },
                Some((generation, event)) = child_rx.recv() => {
                    if self.is_current(generation) {
                        self.on_child_event(event);
                    }
                }
                _ = sleep_until(timer.unwrap_or_else(far_future)), if timer.is_some() => {
                    self.on_timer();
                }
            }
            self.dispatch();
            self.publish(snapshot);
        }
    }

    fn is_current(&self, generation: u64) -> bool {
        self.child
            .as_ref()
            .is_some_and(|c| c.generation == generation)
    }

    fn set_status(&mut self, status: ChildStatus) {
        let child = &mut self.state.child;
        if child.status != status {
            child.status = status;
            child.status_since = now_rfc3339();
        }
        child.ready = matches!(status, ChildStatus::Ready | ChildStatus::Busy);
        if status != ChildStatus::Backoff {
            child.next_restart_at = None;
        }
    }

    fn publish(&mut self, snapshot: &watch::Sender<Snapshot>) {
        if let Some(child) = self.child.as_ref() {
            self.state.child.stderr_tail = child.stderr_tail.snapshot();
        }
        self.state.turn = self.turn.as_ref().map(|t| (t.info(), t.started));
        self.state.queue.length = self.queue.len();
        self.state.queue.waiting = self
            .queue
            .iter()
            .map(|r| QueuedInfo {
                turn_id: r.turn_id,
                enqueued_at: r.enqueued_at.clone(),
                prompt_preview: preview(&r.prompt),
            })
            .collect();
        snapshot.send_replace(self.state.clone());
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
