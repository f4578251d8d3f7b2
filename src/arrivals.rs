//! Arrival order: asks queue in the order a client sent them, on every surface.
//!
//! A surface reads its connection in one loop, but serves each request in a task of its
//! own (so `status` answers while an `ask` runs; rmcp spawns every request itself), and
//! tasks start in whatever order the scheduler picks. So the reading loop takes a
//! [`Place`] for each request that may ask, synchronously, as it reads the line; the core
//! ([`crate::daemon::Daemon::ask`]) queues the ask only in its place's turn, once every
//! earlier place has queued or given up, and lets the next one go right after. Twelve
//! asks written at once queue in the order written and still run concurrently with
//! everything else. This is the one mechanism for it: the plain, MCP and ACP loops and
//! the socket take places here, and nothing else orders asks.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::sync::lock;

/// One connection's line: hands out places in reading order and says whose turn it is.
#[derive(Clone, Default)]
pub(crate) struct Arrivals(Arc<Line>);

#[derive(Default)]
struct Line {
    issued: Mutex<u64>,
    state: watch::Sender<Turns>,
}

#[derive(Default)]
struct Turns {
    /// The place that may queue now.
    next: u64,
    /// Later places already done (they gave up before their turn).
    done: BTreeSet<u64>,
}

impl Arrivals {
    pub(crate) fn new() -> Arrivals {
        Arrivals::default()
    }

    /// The next place, in the order of calls: take it where the request is read.
    pub(crate) fn place(&self) -> Place {
        let mut issued = lock(&self.0.issued);
        let seq = *issued;
        *issued += 1;
        Place(Arc::new(Ticket {
            line: self.0.clone(),
            seq,
        }))
    }
}

impl Line {
    fn release(&self, seq: u64) {
        self.state.send_modify(|turns| {
            // A place released in its turn is released again when dropped: ignore that.
            if seq < turns.next {
                return;
            }
            turns.done.insert(seq);
            while turns.done.remove(&turns.next) {
                turns.next += 1;
            }
        });
    }
}

/// One request's place in its connection's line; cloneable (request extensions are),
/// released once by [`Place::in_turn`] or when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Place(Arc<Ticket>);

struct Ticket {
    line: Arc<Line>,
    seq: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.line.release(self.seq);
    }
}

impl Place {
    /// The place of a request that has no line to keep (a one-shot ask, an HTTP
    /// request): its turn is now.
    pub(crate) fn alone() -> Place {
        Arrivals::new().place()
    }

    /// Waits until every earlier place has queued (or given up), runs `queue`, then
    /// lets the next place go.
    pub(crate) async fn in_turn<T>(&self, queue: impl FnOnce() -> T) -> T {
        let ticket = &self.0;
        let mut state = ticket.line.state.subscribe();
        // The sender lives in `line`, which the ticket holds: the wait cannot fail.
        let _ = state.wait_for(|turns| turns.next >= ticket.seq).await;
        let queued = queue();
        ticket.line.release(ticket.seq);
        queued
    }

    /// Gives the place up without queueing anything (a later round of an ask that
    /// already queued): the next place may go now.
    pub(crate) async fn pass(&self) {
        self.in_turn(|| ()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn places_queue_in_the_order_they_were_taken() {
        let line = Arrivals::new();
        let places: Vec<Place> = (0..6).map(|_| line.place()).collect();
        let queued = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Started last to first: each must still queue after all earlier ones.
        for (i, place) in places.into_iter().enumerate().rev() {
            let queued = queued.clone();
            tasks.push(tokio::spawn(async move {
                place.in_turn(|| queued.lock().unwrap().push(i)).await;
            }));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*queued.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_place_dropped_before_its_turn_does_not_block_later_ones() {
        let line = Arrivals::new();
        let first = line.place();
        let second = line.place();
        let third = line.place();
        drop(second);
        drop(first);
        let ran = tokio::time::timeout(Duration::from_secs(1), third.in_turn(|| true)).await;
        assert_eq!(ran, Ok(true));
    }

    #[tokio::test]
    async fn a_place_waits_for_an_earlier_one_still_held() {
        let line = Arrivals::new();
        let first = line.place();
        let second = line.place();
        let waited = tokio::time::timeout(Duration::from_millis(50), second.in_turn(|| ())).await;
        assert!(waited.is_err(), "the second queued before the first");
        first.pass().await;
        second.pass().await;
    }

    #[tokio::test]
    async fn a_place_alone_is_in_its_turn_at_once() {
        let ran = tokio::time::timeout(Duration::from_secs(1), Place::alone().in_turn(|| 7)).await;
        assert_eq!(ran, Ok(7));
    }

    #[tokio::test]
    async fn a_clone_kept_after_its_turn_does_not_hold_back_the_next_place() {
        let line = Arrivals::new();
        let first = line.place();
        let kept = first.clone();
        let second = line.place();
        first.pass().await;
        drop(first);
        let ran = tokio::time::timeout(Duration::from_secs(1), second.in_turn(|| true)).await;
        assert_eq!(ran, Ok(true));
        drop(kept);
    }
}
