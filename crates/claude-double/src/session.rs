//! Turns, one at a time, and what they share over the life of the process.
//!
//! The stdin reader ([`crate::stdin`]) queues user messages; [`run`] takes them in order
//! (after `DOUBLE_TURN_START_DELAY_MS`, if set) and runs each as a turn: its `system/init`
//! line (registered as the running turn first, so whoever saw `system/init` can interrupt
//! it), then what its [`Directive`] calls for ([`crate::behaviour`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::args::Args;
use crate::directive::{Directive, parse_directive};
use crate::state::{Shared, TurnCtl};
use crate::stdin::read_stdin;

/// Reads stdin and runs the turns it queues until stdin is closed and the queue is done.
pub(crate) async fn run(args: Args) {
    let shared = Arc::new(Shared::new(args));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(read_stdin(shared.clone(), tx));
    let mut session = Session {
        sh: shared,
        queue: rx,
        turns: 0,
        api_calls: 0,
        tool_uses: 0,
        results: 0,
        cost_usd: 0.0,
        turns_by_model: BTreeMap::new(),
    };
    let start_delay = std::env::var("DOUBLE_TURN_START_DELAY_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis);
    while let Some(prompt) = session.queue.recv().await {
        if let Some(delay) = start_delay {
            tokio::time::sleep(delay).await;
        }
        session.turn(prompt).await;
    }
}

/// The turn runner and its process-wide counters.
pub(crate) struct Session {
    pub(crate) sh: Arc<Shared>,
    pub(crate) queue: mpsc::UnboundedReceiver<String>,
    /// User turns started (the N of `mock reply #N`).
    pub(crate) turns: u64,
    /// Simulated API calls (the NNNN of `msg_double_NNNN`).
    pub(crate) api_calls: u64,
    pub(crate) tool_uses: u64,
    /// Results written (the next `result_index`).
    pub(crate) results: u64,
    pub(crate) cost_usd: f64,
    pub(crate) turns_by_model: BTreeMap<String, u64>,
}

/// One turn in progress.
pub(crate) struct Turn {
    pub(crate) prompt: String,
    pub(crate) model: String,
    pub(crate) started: Instant,
    pub(crate) interrupt: watch::Receiver<bool>,
    pub(crate) begun_message_ids: Vec<String>,
    /// Simulated API calls in this turn: the real CLI charges per call.
    pub(crate) calls: u64,
}

/// Waits until the turn is interrupted; never returns if it is not.
pub(crate) async fn interrupted(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Session {
    async fn turn(&mut self, prompt: String) {
        self.turns += 1;
        let directive = parse_directive(&prompt);
        let interruptible = !matches!(directive, Directive::Hang | Directive::CloseStdout);
        let (tx, rx) = watch::channel(false);
        // Registered before system/init goes out, so whoever saw init can interrupt.
        let model = {
            let mut st = self.sh.state();
            st.turn = Some(TurnCtl {
                interruptible,
                interrupt: tx,
            });
            st.model.clone()
        };
        let mut t = Turn {
            prompt,
            model,
            started: Instant::now(),
            interrupt: rx,
            begun_message_ids: Vec::new(),
            calls: 0,
        };
        self.system_init(&t).await;
        // A process that has spent its budget ends every later turn at once, without an
        // API call, as the real CLI does.
        match self.budget_reached() {
            Some(error) => self.result(&t, error).await,
            None => self.run_directive(&mut t, directive).await,
        }
        self.sh.state().turn = None;
    }

    async fn run_directive(&mut self, t: &mut Turn, directive: Directive) {
        match directive {
            Directive::Reply => self.reply(t).await,
            Directive::Slow { ms, chunks, bytes } => self.slow(t, ms, chunks, bytes).await,
            Directive::Hang => std::future::pending::<()>().await,
            Directive::Crash { code } => self.crash(t, code).await,
            Directive::Kill => kill_self().await,
            Directive::Garbage => self.garbage(t).await,
            Directive::Huge { bytes } => self.single_text(t, "x".repeat(bytes)).await,
            Directive::Err400 => self.err400(t).await,
            Directive::MaxTurns => self.max_turns(t).await,
            Directive::RunTool { command } => self.run_tool(t, command).await,
            Directive::Stderr { lines } => self.stderr_lines(t, lines).await,
            Directive::CloseStdout => {
                self.sh.out.close().await;
                std::future::pending::<()>().await;
            }
            Directive::Unknown => self.unknown(t).await,
            Directive::KeepAlive { ms, count } => self.keep_alive(t, ms, count).await,
            Directive::Leak { var } => self.leak(t, &var).await,
            Directive::SpawnGrandchild => self.spawn_grandchild(t).await,
            Directive::SpawnDetached => self.spawn_detached(t).await,
            Directive::Multi => self.multi(t).await,
            Directive::Elicit => self.elicit(t).await,
        }
    }
}

/// `KILL`: SIGKILL to ourselves.
async fn kill_self() {
    // SAFETY: sending a signal to our own pid has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::future::pending::<()>().await;
}
