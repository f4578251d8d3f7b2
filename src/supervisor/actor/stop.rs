//! Stopping: fail what waits, end the turn, close stdin, then TERM and KILL the group.

use super::*;
use crate::platform::Stop;
use crate::supervisor::turn::Stream;

impl Actor {
    /// Stops the child; `prompt` (a stop signal) skips the wait for it to exit on its own.
    /// The asks still waiting or running get `error`.
    pub(super) async fn stop(
        &mut self,
        child_rx: &mut mpsc::Receiver<Tagged>,
        snapshot: &watch::Sender<Snapshot>,
        prompt: bool,
        error: AskError,
    ) {
        // `status` goes on showing what the stop found until the child is gone; no
        // restart is due any more.
        let shown = self.state.status();
        let (child, turn) = self.state.take(State::Idle);
        self.state = State::Stopping { child, turn, shown };
        self.fail_all_waiting(error.clone());
        self.deny_open_questions();
        if let Some(turn) = self.state.turn_mut() {
            // The caller has its answer: the stream ends with it, and the lines the
            // child prints while it stops need no room.
            turn.out = Stream::Off;
            if let Some(reply) = turn.reply.take() {
                self.record.totals.asks_errored += 1;
                let _ = reply.send(Err(error));
            }
        }
        self.publish(snapshot);
        let interrupt = self
            .state
            .turn()
            .map(|turn| control_request(&format!("interrupt-{}", turn.id), "interrupt"));
        if let Some(child) = self.state.child_mut() {
            // The CLI finishes a running turn before it exits on EOF: end the turn first.
            if let Some(interrupt) = interrupt {
                child.send(interrupt);
            }
            // Closing stdin asks the CLI to finish and exit on its own.
            child.stdin = None;
            let pid = child.pid;
            // A signal means the host wants us gone now (Claude Code sends SIGTERM 100 ms
            // after SIGINT): no time for the CLI to wind down on its own. Its session is
            // on disk as it goes, so a later start can still resume it.
            let grace = match prompt {
                true => Duration::ZERO,
                false => Duration::from_millis(self.config.stop_grace_ms),
            };
            if !self.wait_exit(child_rx, grace).await {
                self.backend.signal(pid, Stop::Term);
                let term_grace = if prompt {
                    PROMPT_TERM_GRACE
                } else {
                    TERM_GRACE
                };
                if !self.wait_exit(child_rx, term_grace).await {
                    self.backend.signal(pid, Stop::Kill);
                    self.wait_exit(child_rx, term_grace).await;
                }
            }
            // Anything the CLI started in its group (tool processes) goes with it.
            self.backend.signal(pid, Stop::Kill);
        }
        self.state = State::Stopped;
        self.publish(snapshot);
    }

    /// Processes child events until the current child exits or `limit` passes.
    pub(super) async fn wait_exit(
        &mut self,
        child_rx: &mut mpsc::Receiver<Tagged>,
        limit: Duration,
    ) -> bool {
        let deadline = Instant::now() + limit;
        while self.state.child().is_some() {
            let next = tokio::time::timeout_at(deadline, child_rx.recv()).await;
            match next {
                Ok(Some((generation, event))) if self.is_current(generation) => {
                    self.on_child_event(event)
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return false,
            }
        }
        true
    }
}
