//! The task that owns the child: spawn and warm-up, turns, timeouts, restarts, stop.
//!
//! The loop lives here and the state in [`state`]; the steps are split by subject:
//! [`commands`], [`lifecycle`], [`output`], [`turns`] and [`stop`], each an `impl Actor`
//! block. Its tests run it in-process with a fake child on a paused clock.

mod commands;
mod lifecycle;
mod output;
mod permissions;
mod state;
mod stop;
#[cfg(test)]
mod tests;
mod turns;

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::mpsc::OwnedPermit;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use super::backend::{Backend, Started};
use super::process::{ChildEvent, Running, Tagged};
use super::snapshot::Snapshot;
use super::turn::{Room, Turn, account, ask_result, is_partial, preview};
use super::{
    AskError, AskRequest, Budget, BudgetScope, BudgetSource, Control, MIN_BUDGET_USD, Origin,
    Reservation, RestartOutcome, SessionStart, TurnMessage, TurnSink,
};
use crate::api::{self, AskResult, ChildStatus, Level, QueuedInfo, TurnEnd, TurnEnded};
use crate::child::ChildError;
use crate::child::protocol::{
    ChildLine, ChildMessage, control_error, control_request, user_message,
};
use crate::child::spawn::Launch;
use crate::clock::{now_rfc3339, rfc3339};
use crate::config::Config;
use crate::events::EventLog;
use crate::nesting::Nesting;
use crate::text::truncate_chars;
use state::{Crashes, State};

/// After stdout closes, how long the process may linger before it is killed.
const STDOUT_CLOSED_GRACE: Duration = Duration::from_secs(1);
/// After SIGTERM on stop, how long before SIGKILL.
/// Short, so a stop stays within about 6 s even for a child that ignores its closed stdin.
const TERM_GRACE: Duration = Duration::from_millis(300);
/// The same on a prompt stop (a signal), whose whole budget is 100 ms: the guard ends
/// whatever is left of the group when the bridge exits.
const PROMPT_TERM_GRACE: Duration = Duration::from_millis(40);

/// Child events handled in a row before the actor publishes a snapshot.
const BATCH: usize = 64;

/// What the actor is started with.
pub(crate) struct Setup {
    pub(crate) config: Arc<Config>,
    pub(crate) nesting: Nesting,
    pub(crate) events: EventLog,
    /// What starts and signals the children (real processes, or a test's fake).
    pub(crate) backend: Box<dyn Backend>,
    /// The session's name and where its conversation starts.
    pub(crate) start: SessionStart,
}

pub(crate) async fn run(
    setup: Setup,
    control: mpsc::Receiver<Control>,
    snapshot: watch::Sender<Snapshot>,
) {
    // Bounded: the child's readers wait when the actor is behind, instead of buffering.
    let (child_tx, child_rx) = mpsc::channel(256);
    // Relayed permission questions come back here (each waiter is bounded by a deadline).
    let (decided_tx, decided_rx) = mpsc::unbounded_channel();
    let Setup {
        config,
        nesting,
        events,
        backend,
        start,
    } = setup;
    let (resume, fork) = match start.origin {
        Origin::Fresh => (None, false),
        Origin::Resume(id) => (Some(id), false),
        Origin::Fork(id) => (Some(id), true),
    };
    let mut actor = Actor {
        record: Snapshot::initial(&config),
        shown: ChildStatus::Idle,
        crashes: Crashes::new(Duration::from_millis(config.crash_loop_window_ms)),
        config,
        nesting,
        events,
        backend,
        child_tx,
        decided_tx,
        state: State::Idle,
        generation: 0,
        queue: VecDeque::new(),
        last_total_cost: None,
        session: None,
        resume,
        fork,
        name: start.name,
        cost_base: start.cost_base,
        budget: start.budget,
        settled: Vec::new(),
    };
    // The child of the session this one replaces is gone first (asks wait in the channel).
    for mut gone in start.after {
        let _ = gone.wait_for(|gone| *gone).await;
    }
    // Warm up at once only at the top: a nested server may never be asked.
    if !nesting.is_nested() {
        actor.spawn_child_for(start.first_ask_budget);
    }
    actor.publish(&snapshot);
    actor.serve(control, child_rx, decided_rx, &snapshot).await;
}

struct Actor {
    config: Arc<Config>,
    nesting: Nesting,
    events: EventLog,
    backend: Box<dyn Backend>,
    /// Given to each child's pipe tasks; their events come back on the loop's receiver.
    child_tx: mpsc::Sender<Tagged>,
    /// Given to each relayed question's waiter; outcomes come back on the loop's receiver.
    decided_tx: mpsc::UnboundedSender<permissions::Decided>,
    /// The child, its turn, and where the lifecycle stands: what every decision reads.
    state: State,
    /// Failed starts in a row and within the crash window.
    crashes: Crashes,
    generation: u64,
    queue: VecDeque<AskRequest>,
    /// The child's running cost before the current turn, to report per-turn cost.
    last_total_cost: Option<f64>,
    /// The current child's session, as far as it is known (`sessionId` in `status`).
    session: Option<String>,
    /// Session to continue in the next child (`--resume`): the one asked for at the
    /// start, then the current one after an unexpected exit.
    resume: Option<String>,
    /// The next child branches `resume` (`--fork-session`) instead of continuing it: set
    /// for a forked session's first child only.
    fork: bool,
    /// The session's name, for its answers.
    name: String,
    /// The running total the first child's session already holds, when the start knew it.
    cost_base: Option<f64>,
    /// What the session may still spend, asked as each child starts and each turn starts.
    budget: BudgetSource,
    /// Reservations of turns that ended in this step: returned once the snapshot that
    /// counts their cost is published, so the budgets never miss both.
    settled: Vec<Reservation>,
    /// The history `status` shows (pids, times, exit, last error, totals), written as
    /// things happen; the status fields are filled in from `state` when published.
    record: Snapshot,
    /// The status last published, to know when `statusSince` moves.
    shown: ChildStatus,
}

impl Actor {
    async fn serve(
        &mut self,
        mut control: mpsc::Receiver<Control>,
        mut child_rx: mpsc::Receiver<Tagged>,
        mut decided_rx: mpsc::UnboundedReceiver<permissions::Decided>,
        snapshot: &watch::Sender<Snapshot>,
    ) {
        loop {
            // The caller of the turn may be behind: then the child's lines stay in its
            // pipe until there is room (backpressure), while commands and timers go on.
            let room = self.room();
            let timer = self.next_deadline();
            tokio::select! {
                command = control.recv() => match command {
                    Some(Control::Stop { done, prompt, error }) => {
                        self.stop(&mut child_rx, snapshot, prompt, error).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.on_control(command),
                    None => {
                        self.stop(&mut child_rx, snapshot, false, AskError::Stopping)
                            .await;
                        return;
                    }
                },
                reserved = wait_for_room(room.clone()), if room.is_some() => {
                    if let Some(turn) = self.state.turn_mut() {
                        turn.on_room(reserved);
                    }
                }
                Some((generation, event)) = child_rx.recv(), if room.is_none() => {
                    // A batch of lines may record an event each (a flood of assistant
                    // messages, a step each): their lines reach events.jsonl in one write.
                    let _held = self.events.hold();
                    if self.is_current(generation) {
                        self.on_child_event(event);
                        self.take_more(&mut child_rx);
                    }
                }
                Some(decided) = decided_rx.recv() => self.on_decided(decided),
                _ = sleep_until(timer.unwrap_or_else(far_future)), if timer.is_some() => {
                    self.on_timer();
                }
            }
            if !self.settled.is_empty() {
                // A turn ended: its cost is published before its reservation goes back,
                // and both before the next turn reserves.
                self.publish(snapshot);
                self.settled.clear();
            }
            self.dispatch();
            self.publish(snapshot);
        }
    }

    /// The sender to wait on before the next line may be read, if any.
    fn room(&mut self) -> Option<TurnSink> {
        match self.state.turn_mut()?.room() {
            Room::Ready => None,
            Room::WaitFor(tx) => Some(tx),
        }
    }

    /// Handles the lines already waiting (up to a batch) while they have room, so a
    /// flood of messages costs one snapshot per batch instead of one per line.
    fn take_more(&mut self, child_rx: &mut mpsc::Receiver<Tagged>) {
        for _ in 0..BATCH {
            if self.room().is_some() {
                return;
            }
            match child_rx.try_recv() {
                Ok((generation, event)) if self.is_current(generation) => {
                    self.on_child_event(event);
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    fn is_current(&self, generation: u64) -> bool {
        self.state
            .child()
            .is_some_and(|c| c.generation == generation)
    }

    /// Publishes the record, with the status fields derived from the state.
    fn publish(&mut self, snapshot: &watch::Sender<Snapshot>) {
        let status = self.state.status();
        let child = &mut self.record.child;
        if status != self.shown {
            self.shown = status;
            child.status_since = now_rfc3339();
        }
        child.status = status;
        child.ready = matches!(status, ChildStatus::Ready | ChildStatus::Busy);
        match &self.state {
            State::Backoff { due, .. } => child.next_restart_at = Some(due.clone()),
            // A stop shows the state it found (a due restart included) until it is done.
            State::Stopping { .. } => {}
            _ => child.next_restart_at = None,
        }
        child.consecutive_failures = self.crashes.in_a_row;
        child.session_id = self.session.clone();
        if let Some(running) = self.state.child() {
            child.stderr_tail = running.stderr_tail.snapshot();
        }
        self.record.turn = self.state.turn().map(|t| (t.info(), t.started));
        self.record.queue.length = self.queue.len();
        self.record.queue.waiting = self
            .queue
            .iter()
            .map(|r| QueuedInfo {
                turn_id: r.turn_id,
                enqueued_at: r.enqueued_at.clone(),
                prompt_preview: preview(&r.turn.prompt),
            })
            .collect();
        snapshot.send_replace(self.record.clone());
    }
}

/// Waits until `tx` has room and reserves it; `None` when its receiver is gone.
async fn wait_for_room(tx: Option<TurnSink>) -> Option<OwnedPermit<TurnMessage>> {
    tx?.reserve_owned().await.ok()
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
