//! The supervisor of one child, as an actor.
//!
//! [`Supervisor`] is a cloneable handle; one task (`actor`) owns the process, the FIFO of
//! waiting asks and the turn in flight, and is driven by [`Control`] messages, events
//! from the child's pipes, and timers. The actor publishes a [`Snapshot`] after every
//! step so `status` never waits behind a running turn. Children come from a `Backend`
//! (`backend`): real processes, or in the unit tests a fake child played in-process.

mod actor;
mod backend;
#[cfg(test)]
pub(crate) mod fake;
mod process;
mod snapshot;
mod spares;
mod turn;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};

use crate::api::AskResult;
use crate::child::protocol::ChildMessage;
use crate::config::Config;
use crate::events::EventLog;
use crate::nesting::Nesting;
use crate::permissions::{Asker, PermissionMode};

pub(crate) use backend::keep_spares;
pub(crate) use snapshot::Snapshot;

/// Errors of this layer: why an ask got no result from the child.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum AskError {
    #[error("busy: {waiting} asks are already waiting (queue size {capacity}); try again later")]
    QueueFull { waiting: usize, capacity: usize },
    #[error("the turn timed out after {after_ms} ms; the child was sent an interrupt")]
    Timeout { after_ms: u64 },
    #[error("the Claude Code child {how} during the turn{}", tail_suffix(.stderr_tail))]
    ChildExited {
        how: String,
        exit_code: Option<i32>,
        signal: Option<i32>,
        stderr_tail: Vec<String>,
    },
    #[error(
        "the Claude Code child stalled: it printed nothing for {silent_ms} ms; it was sent an interrupt"
    )]
    Stalled { silent_ms: u64 },
    #[error(
        "the Claude Code child printed a line of {len} bytes, over the limit of {limit}; it is being restarted"
    )]
    OutputTooLarge { len: usize, limit: usize },
    #[error("the Claude Code child is not available: {reason}{}", tail_suffix(.stderr_tail))]
    Unavailable {
        reason: String,
        stderr_tail: Vec<String>,
    },
    #[error("{reason}")]
    NestingLimit {
        depth: u32,
        limit: u32,
        reason: String,
    },
    #[error("claude-coded is shutting down")]
    Stopping,
    #[error(
        "session `{session}` was stopped ({reason}) before this ask was answered; its \
         conversation stays, and the next ask to it continues it"
    )]
    SessionStopped { session: String, reason: String },
    #[error("the ask was cancelled")]
    Cancelled,
    #[error(
        "budget exhausted: {scope} has spent ${} of its ${} (--{flag}) and running turns may \
         still spend ${}, so nothing is left to start this turn under; only the user can \
         raise it",
        crate::api::usd_text(*spent),
        crate::api::usd_text(*limit),
        crate::api::usd_text(*held)
    )]
    BudgetExhausted {
        scope: String,
        flag: &'static str,
        spent: f64,
        /// What running turns hold and may still spend.
        held: f64,
        limit: f64,
    },
}

fn tail_suffix(tail: &[String]) -> String {
    match tail.len() {
        0 => String::new(),
        _ => format!("; its stderr ended with: {}", tail.join(" | ")),
    }
}

/// One child message streamed while a turn runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TurnMessage {
    /// 1, 2, 3, ... within the turn.
    pub(crate) seq: u64,
    /// The line as the child printed it, with its `type` and `subtype`.
    pub(crate) message: ChildMessage,
}

/// Where a turn's messages go. Bounded, and lossless: when it is full the actor stops
/// reading the child's stdout until the caller has taken some (the child then waits
/// on its pipe), so what is buffered stays bounded whatever the turn's size.
pub(crate) type TurnSink = mpsc::Sender<TurnMessage>;

/// Messages to the actor.
pub(crate) enum Control {
    /// Queue a turn; the answer arrives on `reply`.
    Ask(AskRequest),
    /// The caller lost interest: drop it from the queue, or interrupt it if running.
    Cancel { turn_id: u64 },
    /// Restart the child now (killing it if running) and forget past failures.
    Restart {
        done: oneshot::Sender<RestartOutcome>,
    },
    /// Stop the child and end the actor; `done` fires when the child is gone. `prompt`
    /// (a stop signal) ends the child at once instead of letting it exit on its own.
    /// Asks still waiting or running get `error`.
    Stop {
        done: oneshot::Sender<()>,
        prompt: bool,
        error: AskError,
    },
}

/// What a restart request did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RestartOutcome {
    /// The pid of the child that was killed, if one was running.
    pub killed_pid: Option<u32>,
}

/// Which conversation a supervisor's first child starts in.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Origin {
    /// A new conversation.
    #[default]
    Fresh,
    /// Continue this Claude Code session (`--resume`).
    Resume(String),
    /// Branch this Claude Code session: a new id, the original left as it was
    /// (`--resume` with `--fork-session`).
    Fork(String),
}

/// What a supervisor is to its daemon: the session's name (in its events and answers),
/// where its conversation starts, and what it may spend.
#[derive(Debug, Clone)]
pub(crate) struct SessionStart {
    pub name: String,
    pub origin: Origin,
    /// For [`Origin::Resume`]: the CLI's running total for that session as last seen, so
    /// the first turn's own cost is known.
    pub cost_base: Option<f64>,
    /// What the session may still spend, asked as each child starts.
    pub budget: BudgetSource,
    /// The own budget of the ask the supervisor is started for, if any: its first child
    /// starts under it.
    pub first_ask_budget: Option<f64>,
    /// Start no child before each of these says `true` (or its sender is gone): the
    /// children this session replaces (one stopped for its place, or its own before a
    /// `newSession`) are gone first, so live children never exceed `--max-sessions`.
    pub after: Vec<watch::Receiver<bool>>,
}

impl Default for SessionStart {
    fn default() -> Self {
        SessionStart {
            name: DEFAULT_SESSION.to_string(),
            origin: Origin::Fresh,
            cost_base: None,
            budget: BudgetSource::unlimited(),
            first_ask_budget: None,
            after: Vec::new(),
        }
    }
}

/// A budget a child runs under (its `--max-budget-usd`): how much, and whose it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Budget {
    pub usd: f64,
    pub scope: BudgetScope,
}

/// Whose budget a child's `--max-budget-usd` is (in `budget.exhausted` events).
pub(crate) use crate::api::BudgetScope;

impl BudgetScope {
    /// The name on the wire.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Ask => "ask",
            BudgetScope::Session => "session",
            BudgetScope::AllSessions => "allSessions",
        }
    }

    /// Whose budget, in a sentence.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            BudgetScope::Ask => "its own budget",
            BudgetScope::Session => "what is left of its session's budget",
            BudgetScope::AllSessions => {
                "what is left of the budget of all sessions beyond what running turns hold"
            }
        }
    }
}

pub(crate) use crate::api::MIN_BUDGET_USD;

/// Ends the warm spare CLIs of this process (see `spares`), at shutdown.
pub(crate) fn clear_spares() {
    spares::pool().clear();
}

/// The warm spare CLIs of this process that wait.
pub(crate) fn spares() -> crate::api::SparesInfo {
    spares::pool().counts()
}

/// `usd` rounded down to the millionth of a dollar (as `--max-budget-usd` takes it), so
/// the CLI is never given more than was meant; amounts a hair under a millionth (float
/// noise, as 0.0003 * 1e6 = 299.99999999999994) count as that millionth.
pub(crate) fn floor_to_micro_usd(usd: f64) -> f64 {
    let micros = (usd * 1e10).round() / 1e4;
    micros.floor() / 1e6
}

/// Held for a running turn: the most it may spend (its CLI's `--max-budget-usd` allows
/// no more, bar the CLI's own overshoot within one model call). Dropping it returns what
/// the turn did not spend; the actor drops it only after publishing the snapshot that
/// counts the turn's cost, so the two never both miss it.
pub(crate) struct Reservation {
    pub budget: Budget,
    _hold: Option<Box<dyn Send + Sync>>,
}

impl Reservation {
    /// A reservation nothing else counts (an ask's own budget, with no budgets shared
    /// between turns).
    pub(crate) fn unheld(budget: Budget) -> Reservation {
        Reservation {
            budget,
            _hold: None,
        }
    }

    /// A reservation that `hold` returns when dropped.
    pub(crate) fn held(budget: Budget, hold: Box<dyn Send + Sync>) -> Reservation {
        Reservation {
            budget,
            _hold: Some(hold),
        }
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reservation({:?})", self.budget)
    }
}

/// Where a session's budgets are kept: what a child started now may spend, and the
/// reservation a turn starts under.
pub(crate) trait BudgetBook: Send + Sync {
    /// What a child started now may spend: the least of what is left of the configured
    /// budgets beyond what other sessions' running turns hold; `None` without budgets.
    fn left(&self) -> Option<Budget>;
    /// Reserves, at once and atomically with every other session's reservations, what a
    /// turn whose ask may spend `ask` (`maxBudgetUsd`) starts under: the least of that and
    /// [`BudgetBook::left`]; `Ok(None)` when nothing bounds it. Refused when the budgets
    /// leave less than the CLI can be given ([`MIN_BUDGET_USD`]).
    fn reserve(&self, ask: Option<f64>) -> Result<Option<Reservation>, AskError>;
}

/// A session's [`BudgetBook`], cheap to clone.
#[derive(Clone)]
pub(crate) struct BudgetSource(Arc<dyn BudgetBook>);

impl BudgetSource {
    /// A book whose budgets are `left`, reserved by nobody else (one actor alone, as the
    /// unit tests run it).
    pub(crate) fn new(left: impl Fn() -> Option<Budget> + Send + Sync + 'static) -> Self {
        BudgetSource(Arc::new(Alone(left)))
    }

    pub(crate) fn from_book(book: Arc<dyn BudgetBook>) -> Self {
        BudgetSource(book)
    }

    /// No budget at all.
    pub(crate) fn unlimited() -> Self {
        BudgetSource::new(|| None)
    }

    pub(crate) fn left(&self) -> Option<Budget> {
        self.0.left()
    }

    pub(crate) fn reserve(&self, ask: Option<f64>) -> Result<Option<Reservation>, AskError> {
        self.0.reserve(ask)
    }
}

/// The cap of a turn whose ask may spend `ask` when `left` is what the budgets leave.
pub(crate) fn turn_cap(left: Option<Budget>, ask: Option<f64>) -> Option<Budget> {
    let ask = ask.map(|usd| Budget {
        usd,
        scope: BudgetScope::Ask,
    });
    match (left, ask) {
        (Some(left), Some(ask)) if left.usd <= ask.usd => Some(left),
        (left, ask) => ask.or(left),
    }
}

/// Budgets that no other actor shares.
struct Alone<F>(F);

impl<F: Fn() -> Option<Budget> + Send + Sync> BudgetBook for Alone<F> {
    fn left(&self) -> Option<Budget> {
        (self.0)()
    }

    fn reserve(&self, ask: Option<f64>) -> Result<Option<Reservation>, AskError> {
        let left = self.left();
        if let Some(left) = left
            && left.usd < MIN_BUDGET_USD
        {
            let flag = match left.scope {
                BudgetScope::Session => "session-budget-usd",
                BudgetScope::AllSessions | BudgetScope::Ask => "budget-usd",
            };
            return Err(AskError::BudgetExhausted {
                scope: format!("this session's {}", left.scope.as_str()),
                flag,
                spent: 0.0,
                held: 0.0,
                limit: left.usd,
            });
        }
        Ok(turn_cap(left, ask).map(Reservation::unheld))
    }
}

impl std::fmt::Debug for BudgetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BudgetSource")
    }
}

/// The session an ask without `session` goes to.
pub(crate) const DEFAULT_SESSION: &str = "default";

/// A turn to queue: the prompt, how it runs, and who hears about it.
pub(crate) struct NewTurn {
    pub prompt: String,
    pub timeout: Duration,
    /// The permission mode and model for this turn; `None` means the configured one
    /// (checked against the ceiling before it gets here).
    pub mode: Option<PermissionMode>,
    pub model: Option<String>,
    /// Where the turn's messages go.
    pub sink: Option<TurnSink>,
    /// Who is asked the child's permission questions, when the surface can ask anyone.
    pub asker: Option<Asker>,
    /// The most this turn may spend (`maxBudgetUsd`): it runs in a child started with
    /// that budget (or less) that has spent nothing yet.
    pub max_budget_usd: Option<f64>,
    /// Whether the caller wants the CLI's partial messages (`partialMessages`); without
    /// it they are read and dropped, and the turn streams what it did before the flag.
    pub partial: bool,
}

/// One ask on its way to the child.
pub(crate) struct AskRequest {
    pub turn_id: u64,
    pub turn: NewTurn,
    pub enqueued_at: String,
    pub reply: oneshot::Sender<Result<AskResult, AskError>>,
    /// Fired when the actor takes the ask into its queue; dropped unfired when it refuses
    /// it (the refusal is then on `reply`), so a caller can tell the two apart at once.
    pub admitted: Option<oneshot::Sender<()>>,
}

/// Cloneable handle to one supervised child.
#[derive(Clone)]
pub(crate) struct Supervisor {
    /// Commands to the actor; bounded so a flood of asks waits instead of growing memory.
    control: mpsc::Sender<Control>,
    /// Latest state, published by the actor after every step.
    snapshot: watch::Receiver<Snapshot>,
    /// Turn ids are handed out here so a caller knows its id before the actor sees it.
    next_turn: Arc<AtomicU64>,
    /// Asks handed to the actor (its `totals.asks` counts those it has taken in).
    sent: Arc<AtomicU64>,
}

impl Supervisor {
    /// Starts the actor. A top-level server starts the child at once (warm-up begins
    /// before the first ask); a nested one waits for its first ask, so an unused nested
    /// server costs no CLI; one at the nesting limit never starts a child.
    pub(crate) fn start(
        config: Arc<Config>,
        daemon_id: String,
        nesting: Nesting,
        events: EventLog,
        start: SessionStart,
    ) -> Supervisor {
        let backend = backend::Processes {
            config: config.clone(),
            daemon_id,
            nesting,
        };
        Supervisor::with_backend(config, nesting, events, Box::new(backend), start)
    }

    /// Starts an actor whose children come from `backend`. Each call is an independent
    /// unit (its own task, queue and child), so one process can run many.
    pub(crate) fn with_backend(
        config: Arc<Config>,
        nesting: Nesting,
        events: EventLog,
        backend: Box<dyn backend::Backend>,
        start: SessionStart,
    ) -> Supervisor {
        let (control, control_rx) = mpsc::channel(1024);
        let (snapshot_tx, snapshot) = watch::channel(Snapshot::initial(&config));
        let actor = actor::Setup {
            config,
            nesting,
            events,
            backend,
            start,
        };
        tokio::spawn(actor::run(actor, control_rx, snapshot_tx));
        Supervisor {
            control,
            snapshot,
            next_turn: Arc::new(AtomicU64::new(1)),
            sent: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Puts a turn in the actor's FIFO now, without waiting: asks submitted one after the
    /// other run in that order. [`Pending::wait`] gives the answer.
    pub(crate) fn submit(&self, turn: NewTurn) -> Result<Pending, AskError> {
        let turn_id = self.next_turn.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let (admitted, admission) = oneshot::channel();
        let request = AskRequest {
            turn_id,
            turn,
            enqueued_at: crate::clock::now_rfc3339(),
            reply,
            admitted: Some(admitted),
        };
        // Counted before the send, so the actor never takes in more than this says.
        self.sent.fetch_add(1, Ordering::AcqRel);
        let sent = self.control.try_send(Control::Ask(request));
        if sent.is_err() {
            self.sent.fetch_sub(1, Ordering::AcqRel);
        }
        match sent {
            Ok(()) => Ok(Pending {
                answer,
                admission: Some(admission),
                _cancel: CancelOnDrop {
                    control: self.control.clone(),
                    turn_id,
                },
            }),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(AskError::Stopping),
            // The actor is more than a control channel behind: as good as a full queue.
            Err(mpsc::error::TrySendError::Full(_)) => Err(AskError::QueueFull {
                waiting: self.snapshot.borrow().queue.length,
                capacity: self.snapshot.borrow().queue.capacity,
            }),
        }
    }

    /// Restarts the child at once, clearing the crash-loop state.
    pub(crate) async fn restart(&self) -> Result<RestartOutcome, AskError> {
        let (done, finished) = oneshot::channel();
        self.control
            .send(Control::Restart { done })
            .await
            .map_err(|_| AskError::Stopping)?;
        finished.await.map_err(|_| AskError::Stopping)
    }

    /// Stops the child (stdin closed, then TERM, then KILL) and waits until it is gone;
    /// `prompt` sends TERM at once. Asks still waiting or running are told claude-coded
    /// is stopping.
    pub(crate) async fn stop(&self, prompt: bool) {
        self.stop_with(prompt, AskError::Stopping).await;
    }

    /// [`Supervisor::stop`], telling the asks still waiting or running `error`.
    pub(crate) async fn stop_with(&self, prompt: bool, error: AskError) {
        let (done, finished) = oneshot::channel();
        let stop = Control::Stop {
            done,
            prompt,
            error,
        };
        if self.control.send(stop).await.is_ok() {
            let _ = finished.await;
        }
    }

    /// Whether `other` is a handle to the same actor.
    pub(crate) fn same(&self, other: &Supervisor) -> bool {
        self.control.same_channel(&other.control)
    }

    /// True while an ask was sent that `snapshot` (of this supervisor) does not count yet:
    /// the actor has not taken it in, so the snapshot still looks idle.
    pub(crate) fn has_unseen_asks(&self, snapshot: &Snapshot) -> bool {
        self.sent.load(Ordering::Acquire) > snapshot.totals.asks
    }

    /// The latest published state.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// A receiver that wakes on every state change (for persisting the state file).
    pub(crate) fn watch(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.clone()
    }
}

/// A submitted ask. Dropping it before the answer arrives cancels the ask.
pub(crate) struct Pending {
    answer: oneshot::Receiver<Result<AskResult, AskError>>,
    /// Fires when the actor queued the ask; closed unfired when it refused it.
    admission: Option<oneshot::Receiver<()>>,
    _cancel: CancelOnDrop,
}

impl Pending {
    /// Waits until the actor has taken the ask in (a few microseconds: it answers asks in
    /// arrival order) and returns its refusal if it did not: a full queue, a child that
    /// cannot start, the nesting limit. A caller that must refuse its own call rather
    /// than accept it and fail later (`ask/subscribe`) awaits this before accepting.
    pub(crate) async fn admitted(&mut self) -> Result<(), AskError> {
        let Some(admission) = self.admission.take() else {
            return Ok(());
        };
        if admission.await.is_ok() {
            return Ok(());
        }
        // Refused: the reason is the answer, already sent.
        match self.answer().await {
            Err(error) => Err(error),
            // Cannot happen (a refused ask has no result), but a result is no refusal.
            Ok(_) => Ok(()),
        }
    }

    /// Asks the actor to cancel the ask (out of the queue, or the running turn
    /// interrupted) while the caller keeps waiting: its answer is then `Cancelled`, or
    /// the result, when the turn ended first.
    pub(crate) fn cancel(&self) {
        self._cancel.send();
    }

    pub(crate) async fn wait(mut self) -> Result<AskResult, AskError> {
        self.answer().await
    }

    /// The answer, awaited in place (an ask that spans several calls keeps its
    /// `Pending` between them). Await it to its end once only.
    pub(crate) async fn answer(&mut self) -> Result<AskResult, AskError> {
        let outcome = (&mut self.answer).await.unwrap_or(Err(AskError::Stopping));
        self._cancel.turn_id = 0;
        outcome
    }
}

/// Tells the actor when an ask is dropped before its answer arrived (`turn_id` 0: answered).
struct CancelOnDrop {
    control: mpsc::Sender<Control>,
    turn_id: u64,
}

impl CancelOnDrop {
    fn send(&self) {
        if self.turn_id != 0 {
            let cancel = Control::Cancel {
                turn_id: self.turn_id,
            };
            if let Err(mpsc::error::TrySendError::Full(cancel)) = self.control.try_send(cancel) {
                // Rare: the actor is far behind. Deliver it anyway, later.
                let control = self.control.clone();
                tokio::spawn(async move { control.send(cancel).await });
            }
        }
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.send();
    }
}
