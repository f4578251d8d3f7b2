//! What a client sees while an `ask` runs.
//!
//! The child's stream-json messages arrive on the turn's sink. Meaningful ones (turn
//! started, assistant text, tool use, tool result, result) become
//! `notifications/progress` with a short message, when the request carried a
//! `progressToken`; clients that opted in also get every message raw as
//! `notifications/claude-coded/event`. Each notification is awaited until written, and
//! the tool's response waits for [`TurnReporter::forward`] to return, so nothing about
//! a turn is ever sent after its response.

use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::drain::OutputDrain;
use super::wire::RawEventRoute;
use crate::event_lines::EventLines;
use crate::supervisor::TurnMessage;

/// Method of the opt-in raw event notification.
pub const EVENT_METHOD: &str = "notifications/claude-coded/event";

/// Progress notifications allowed at once; a short turn fits in it whole.
const BURST: u32 = 8;
/// After the burst, one progress notification per this interval; steps in between are
/// folded into the next one (its `progress` still counts them).
const REFILL: Duration = Duration::from_millis(250);

/// Where one `ask`'s messages go.
pub(super) struct TurnReporter {
    pub peer: Peer<RoleServer>,
    /// The request's `progressToken`, if it sent one.
    pub progress_token: Option<ProgressToken>,
    /// Where raw events go, when the client opted in to them.
    pub raw_events: Option<RawEventRoute>,
    /// How the response waits until the client has read the last notification.
    pub drain: OutputDrain,
    /// The session the ask went to, named in raw events.
    pub session: String,
}

/// A progress step waiting for its turn to be sent.
struct Step {
    progress: u64,
    message: String,
}

impl TurnReporter {
    /// True when the client asked for neither progress nor raw events.
    pub(super) fn is_silent(&self) -> bool {
        self.progress_token.is_none() && self.raw_events.is_none()
    }

    /// Sends notifications for the turn's messages until the turn drops its sink, then
    /// waits until the client has read the last one (see [`OutputDrain`]).
    ///
    /// Raw events are lossless: written in batches straight to the outbox (not through
    /// rmcp), and this waits while the client is behind, which holds the child back.
    /// Progress is for people and rate-limited. Each batch of raw events is queued
    /// before the progress step that follows it, so the order on the wire is the turn's.
    pub(super) async fn forward(&self, mut messages: mpsc::Receiver<TurnMessage>) {
        let mut raw = self
            .raw_events
            .as_ref()
            .map(|route| route.lines(&self.session));
        let mut throttle = Throttle::new(Instant::now());
        let mut pending: Option<Step> = None;
        let mut sent_any = false;
        loop {
            let wake = throttle.next_token_at();
            tokio::select! {
                received = messages.recv() => {
                    let Some(item) = received else { break };
                    self.take(item, raw.as_mut(), &mut pending);
                    while raw.as_ref().is_some_and(|(lines, _)| lines.wants_more()) {
                        match messages.try_recv() {
                            Ok(item) => self.take(item, raw.as_mut(), &mut pending),
                            Err(_) => break,
                        }
                    }
                    sent_any |= send_raw(&mut raw).await;
                }
                () = tokio::time::sleep_until(wake), if pending.is_some() => {}
            }
            if pending.is_some() && throttle.try_take(Instant::now()) {
                sent_any |= self.send_progress(pending.take()).await;
            }
        }
        if let Some((lines, withdrawn)) = &mut raw
            && !withdrawn.load(Ordering::Acquire)
            && let Err(err) = lines.finish().await
        {
            tracing::debug!(%err, "cannot send raw event notifications");
        }
        // The last step, usually the result, is never held back.
        sent_any |= self.send_progress(pending.take()).await;
        if sent_any {
            self.drain.wait().await;
        }
    }

    /// One message: the progress step it makes (if any), and its raw event line.
    fn take(
        &self,
        item: TurnMessage,
        raw: Option<&mut (EventLines, Arc<AtomicBool>)>,
        pending: &mut Option<Step>,
    ) {
        if self.progress_token.is_some()
            && let Some(message) = item.message.step().map(str::to_owned)
        {
            *pending = Some(Step {
                progress: item.seq,
                message,
            });
        }
        if let Some((lines, _)) = raw {
            lines.add(item);
        }
    }

    /// Returns whether a notification was sent.
    async fn send_progress(&self, step: Option<Step>) -> bool {
        let (Some(token), Some(step)) = (&self.progress_token, step) else {
            return false;
        };
        let param = ProgressNotificationParam::new(token.clone(), step.progress as f64)
            .with_message(step.message);
        match self.peer.notify_progress(param).await {
            Ok(()) => true,
            Err(err) => {
                tracing::debug!(%err, "cannot send a progress notification");
                false
            }
        }
    }
}

/// Hands the gathered raw events to the outbox; returns whether any were sent. Stops
/// for good once the client withdrew the request or is gone.
async fn send_raw(raw: &mut Option<(EventLines, Arc<AtomicBool>)>) -> bool {
    let Some((lines, withdrawn)) = raw else {
        return false;
    };
    if withdrawn.load(Ordering::Acquire) {
        *raw = None;
        return false;
    }
    match lines.send().await {
        Ok(()) => true,
        Err(err) => {
            tracing::debug!(%err, "cannot send raw event notifications");
            *raw = None;
            false
        }
    }
}

/// A token bucket: [`BURST`] notifications at once, then one per [`REFILL`].
struct Throttle {
    tokens: u32,
    refilled_at: Instant,
}

impl Throttle {
    fn new(now: Instant) -> Throttle {
        Throttle {
            tokens: BURST,
            refilled_at: now,
        }
    }

    fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    fn next_token_at(&self) -> Instant {
        self.refilled_at + REFILL
    }

    fn refill(&mut self, now: Instant) {
        let periods =
            now.saturating_duration_since(self.refilled_at).as_millis() / REFILL.as_millis();
        match u32::try_from(periods) {
            Ok(0) => {}
            Ok(periods) if periods < BURST => {
                self.tokens = (self.tokens + periods).min(BURST);
                self.refilled_at += REFILL * periods;
            }
            // A quiet spell refills the burst, and no more.
            _ => {
                self.tokens = BURST;
                self.refilled_at = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_allows_a_burst_then_one_per_interval() {
        let start = Instant::now();
        let mut throttle = Throttle::new(start);
        for _ in 0..BURST {
            assert!(throttle.try_take(start));
        }
        assert!(!throttle.try_take(start));
        assert!(!throttle.try_take(start + REFILL / 2));
        assert!(throttle.try_take(start + REFILL));
        assert!(!throttle.try_take(start + REFILL));
        // A long pause refills the burst, no more.
        let later = start + REFILL * 100;
        for _ in 0..BURST {
            assert!(throttle.try_take(later));
        }
        assert!(!throttle.try_take(later));
    }
}
