//! The actor's state: one enum whose variants carry their data, and the crash window.
//!
//! Every lifecycle decision reads [`State`] (is there a child, is it warm, is a turn
//! running, when is the next start due, did the last start fail) and [`Crashes`] (how
//! many failures in a row, how many in the window); the wire's `ChildInfo` status fields
//! are derived from them when the snapshot is published, never read back.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::api::ChildStatus;
use crate::supervisor::process::Running;
use crate::supervisor::turn::Turn;

/// Where the child stands.
pub(crate) enum State {
    /// No child yet: a nested server waits for its first ask.
    Idle,
    /// Spawned, waiting for the answer to `initialize`.
    Starting { child: Running },
    /// Warm and waiting for a turn.
    Ready { child: Running },
    /// Running `turn` (which may be abandoned: answered, its child being interrupted).
    Busy { child: Running, turn: Turn },
    /// Ending a ready child whose budget does not suit the next ask (its stdin is closed,
    /// so the CLI exits on its own; killed at `kill_at` if it has not); its exit starts
    /// the next child at once. Shown as `starting`.
    Replacing { child: Running, kill_at: Instant },
    /// No child; the next start is due `until` (wall clock: `due`). `start_failed`: the
    /// last child never got ready, so asks fail at once instead of waiting for the next try.
    Backoff {
        until: Instant,
        due: String,
        start_failed: bool,
    },
    /// No automatic start any more (crash loop, missing binary); the next ask or a
    /// restart request tries again.
    Failed { reason: String },
    /// Ending what is left of the child and its turn; `status` goes on showing `shown`,
    /// the status the stop found.
    Stopping {
        child: Option<Running>,
        turn: Option<Turn>,
        shown: ChildStatus,
    },
    /// Stopped for good.
    Stopped,
}

impl State {
    /// The status this state shows on the wire.
    pub(crate) fn status(&self) -> ChildStatus {
        match self {
            State::Idle => ChildStatus::Idle,
            State::Starting { .. } | State::Replacing { .. } => ChildStatus::Starting,
            State::Ready { .. } => ChildStatus::Ready,
            State::Busy { .. } => ChildStatus::Busy,
            State::Backoff { .. } => ChildStatus::Backoff,
            State::Failed { .. } => ChildStatus::Failed,
            State::Stopping { shown, .. } => *shown,
            State::Stopped => ChildStatus::Stopped,
        }
    }

    pub(crate) fn child(&self) -> Option<&Running> {
        match self {
            State::Starting { child }
            | State::Ready { child }
            | State::Busy { child, .. }
            | State::Replacing { child, .. } => Some(child),
            State::Stopping { child, .. } => child.as_ref(),
            _ => None,
        }
    }

    pub(crate) fn child_mut(&mut self) -> Option<&mut Running> {
        match self {
            State::Starting { child }
            | State::Ready { child }
            | State::Busy { child, .. }
            | State::Replacing { child, .. } => Some(child),
            State::Stopping { child, .. } => child.as_mut(),
            _ => None,
        }
    }

    pub(crate) fn turn(&self) -> Option<&Turn> {
        match self {
            State::Busy { turn, .. } => Some(turn),
            State::Stopping { turn, .. } => turn.as_ref(),
            _ => None,
        }
    }

    pub(crate) fn turn_mut(&mut self) -> Option<&mut Turn> {
        match self {
            State::Busy { turn, .. } => Some(turn),
            State::Stopping { turn, .. } => turn.as_mut(),
            _ => None,
        }
    }

    /// The child and the turn, leaving `then` in their place.
    pub(crate) fn take(&mut self, then: State) -> (Option<Running>, Option<Turn>) {
        match std::mem::replace(self, then) {
            State::Starting { child } | State::Ready { child } | State::Replacing { child, .. } => {
                (Some(child), None)
            }
            State::Busy { child, turn } => (Some(child), Some(turn)),
            State::Stopping { child, turn, .. } => (child, turn),
            _ => (None, None),
        }
    }

    /// Ends the running turn (its result came): a busy child is ready again.
    pub(crate) fn end_turn(&mut self) -> Option<Turn> {
        match self {
            State::Busy { .. } => match self.take(State::Idle) {
                (Some(child), turn) => {
                    *self = State::Ready { child };
                    turn
                }
                (None, turn) => turn,
            },
            State::Stopping { turn, .. } => turn.take(),
            _ => None,
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        matches!(self, State::Stopping { .. } | State::Stopped)
    }
}

/// Failed starts: in a row (the backoff's exponent), and recent ones (the crash loop).
pub(crate) struct Crashes {
    /// Failed starts since the last healthy run, deliberate kill or restart request.
    pub(crate) in_a_row: u32,
    /// When the failures within the window happened, oldest first.
    recent: VecDeque<Instant>,
    window: Duration,
}

impl Crashes {
    pub(crate) fn new(window: Duration) -> Crashes {
        Crashes {
            in_a_row: 0,
            recent: VecDeque::new(),
            window,
        }
    }

    /// Counts a failure at `now`; returns how many fell within the window.
    pub(crate) fn record(&mut self, now: Instant) -> usize {
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.recent.pop_front();
        }
        self.recent.len()
    }

    /// The delay before the next start after one more failure in a row: `initial`
    /// doubling to `max`.
    pub(crate) fn next_backoff(&mut self, initial_ms: u64, max_ms: u64) -> Duration {
        self.in_a_row = self.in_a_row.saturating_add(1);
        let exp = (self.in_a_row - 1).min(20);
        Duration::from_millis(initial_ms.saturating_mul(1 << exp).min(max_ms))
    }

    /// Forgets everything (a restart request).
    pub(crate) fn clear(&mut self) {
        self.in_a_row = 0;
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_shows_the_status_it_found_and_no_child_or_turn_once_they_are_gone() {
        let stopping = State::Stopping {
            child: None,
            turn: None,
            shown: ChildStatus::Busy,
        };
        assert_eq!(stopping.status(), ChildStatus::Busy);
        assert!(stopping.is_stopping() && State::Stopped.is_stopping());
        assert!(stopping.child().is_none() && stopping.turn().is_none());
        let backoff = State::Backoff {
            until: Instant::now(),
            due: String::new(),
            start_failed: true,
        };
        assert_eq!(backoff.status(), ChildStatus::Backoff);
        assert!(!backoff.is_stopping());
    }

    #[test]
    fn the_backoff_doubles_from_the_initial_delay_to_the_cap() {
        let mut crashes = Crashes::new(Duration::from_secs(60));
        let delays: Vec<u64> = (0..6)
            .map(|_| crashes.next_backoff(1_000, 10_000).as_millis() as u64)
            .collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(crashes.in_a_row, 6);
    }

    #[test]
    fn the_backoff_does_not_overflow_after_many_failures() {
        let mut crashes = Crashes::new(Duration::from_secs(60));
        crashes.in_a_row = u32::MAX - 1;
        let delay = crashes.next_backoff(u64::MAX / 2, u64::MAX);
        assert_eq!(delay, Duration::from_millis(u64::MAX));
        assert_eq!(crashes.next_backoff(1, 5), Duration::from_millis(5));
    }

    #[test]
    fn failures_older_than_the_window_fall_out_of_it() {
        let mut crashes = Crashes::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(crashes.record(t0), 1);
        assert_eq!(crashes.record(t0 + Duration::from_secs(4)), 2);
        assert_eq!(crashes.record(t0 + Duration::from_secs(5)), 3);
        assert_eq!(crashes.record(t0 + Duration::from_millis(9_001)), 2);
        crashes.clear();
        assert_eq!((crashes.in_a_row, crashes.record(t0)), (0, 1));
    }
}
