//! Stopping: fail what waits, end the turn, close stdin, then TERM and KILL the group.

use super::*;

impl Actor {
    /// Stops the child; `prompt` (a stop signal) skips the wait for it to exit on its own.
    pub(super) async fn stop(
        &mut self,
        child_rx: &mut mpsc::Receiver<Tagged>,
        snapshot: &watch::Sender<Snapshot>,
        prompt: bool,
    ) {
        self.stopping = true;
        self.restart_at = None;
        self.fail_all_waiting(AskError::Stopping);
        if let Some(reply) = self.turn.as_mut().and_then(|t| t.reply.take()) {
            self.state.totals.asks_errored += 1;
            let _ = reply.send(Err(AskError::Stopping));
        }
        self.publish(snapshot);
        if let Some(child) = self.child.as_mut() {
            // The CLI finishes a running turn before it exits on EOF: end the turn first.
            if let Some(turn) = self.turn.as_ref() {
                child.send(control_request(
                    &format!("interrupt-{}", turn.id),
                    "interrupt",
                ));
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
                self.backend.signal(pid, libc::SIGTERM);
                let term_grace = if prompt {
                    PROMPT_TERM_GRACE
                } else {
                    TERM_GRACE
                };
                if !self.wait_exit(child_rx, term_grace).await {
                    self.backend.signal(pid, libc::SIGKILL);
                    self.wait_exit(child_rx, term_grace).await;
                }
            }
            // Anything the CLI started in its group (tool processes) goes with it.
            self.backend.signal(pid, libc::SIGKILL);
        }
        self.turn = None;
        self.set_status(ChildStatus::Stopped);
        self.publish(snapshot);
    }

    /// Processes child events until the current child exits or `limit` passes.
    pub(super) async fn wait_exit(
        &mut self,
        child_rx: &mut mpsc::Receiver<Tagged>,
        limit: Duration,
    ) -> bool {
        let deadline = Instant::now() + limit;
        while self.child.is_some() {
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
