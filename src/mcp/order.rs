//! Asks queue in the order the client sent them.
//!
//! rmcp runs every request in a task of its own, so twelve asks written at once reach
//! the daemon's queue in whatever order the scheduler starts those tasks. The wire layer
//! ([`super::wire`]) gives each `tools/call` of `ask` an [`AskTicket`] in arrival order
//! (in the request's extensions, which rmcp hands to the tool); the tool waits for its
//! ticket's turn before queueing and lets the next one go right after, so asks queue in
//! arrival order and still run their turns concurrently with everything else.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::api::AskParams;
use crate::daemon::{Daemon, Turn, Wants};
use crate::error::DaemonError;

/// Hands out tickets and says whose turn it is to queue.
#[derive(Default)]
pub(super) struct AskOrder {
    issued: Mutex<u64>,
    state: watch::Sender<Turns>,
}

#[derive(Default)]
struct Turns {
    /// The ticket that may queue now.
    next: u64,
    /// Later tickets already done (they gave up before their turn).
    done: BTreeSet<u64>,
}

impl AskOrder {
    pub(super) fn new() -> Arc<AskOrder> {
        Arc::new(AskOrder::default())
    }

    /// The next ticket, in the order of calls.
    pub(super) fn issue(self: &Arc<AskOrder>) -> AskTicket {
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let seq = *issued;
        *issued += 1;
        AskTicket(Arc::new(Ticket {
            order: self.clone(),
            seq,
        }))
    }

    fn release(&self, seq: u64) {
        self.state.send_modify(|turns| {
            // A ticket released in its turn is released again when dropped: ignore that.
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

/// One ask's place in line; cloneable (request extensions are), released once by
/// [`AskTicket::in_turn`] or when the last clone is dropped.
#[derive(Clone)]
pub struct AskTicket(Arc<Ticket>);

struct Ticket {
    order: Arc<AskOrder>,
    seq: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.order.release(self.seq);
    }
}

impl AskTicket {
    /// Waits until every earlier ticket has queued (or given up), runs `queue`, then lets
    /// the next ticket go. Without a ticket `queue` runs at once.
    pub async fn in_turn<T>(ticket: Option<&AskTicket>, queue: impl FnOnce() -> T) -> T {
        let Some(AskTicket(ticket)) = ticket else {
            return queue();
        };
        let mut state = ticket.order.state.subscribe();
        // The sender lives in `order`, which the ticket holds: the wait cannot fail.
        let _ = state.wait_for(|turns| turns.next >= ticket.seq).await;
        let queued = queue();
        ticket.order.release(ticket.seq);
        queued
    }
}

/// [`Daemon::ask`], queued in `ticket`'s turn.
pub(super) async fn ask_in_turn(
    daemon: &Daemon,
    ticket: Option<&AskTicket>,
    params: AskParams,
    wants: Wants,
) -> Result<Turn, DaemonError> {
    AskTicket::in_turn(ticket, || daemon.ask(params, wants, None)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn tickets_queue_in_the_order_they_were_issued() {
        let order = AskOrder::new();
        let tickets: Vec<AskTicket> = (0..6).map(|_| order.issue()).collect();
        let queued = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Started last to first: each must still queue after all earlier ones.
        for (i, ticket) in tickets.into_iter().enumerate().rev() {
            let queued = queued.clone();
            tasks.push(tokio::spawn(async move {
                AskTicket::in_turn(Some(&ticket), || queued.lock().unwrap().push(i)).await;
            }));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*queued.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_ticket_dropped_before_its_turn_does_not_block_later_ones() {
        let order = AskOrder::new();
        let first = order.issue();
        let second = order.issue();
        let third = order.issue();
        drop(second);
        drop(first);
        let ran = tokio::time::timeout(
            Duration::from_secs(1),
            AskTicket::in_turn(Some(&third), || true),
        )
        .await;
        assert_eq!(ran, Ok(true));
    }

    #[tokio::test]
    async fn a_ticket_waits_for_an_earlier_one_still_held() {
        let order = AskOrder::new();
        let first = order.issue();
        let second = order.issue();
        let waited = tokio::time::timeout(
            Duration::from_millis(50),
            AskTicket::in_turn(Some(&second), || ()),
        )
        .await;
        assert!(waited.is_err(), "the second queued before the first");
        AskTicket::in_turn(Some(&first), || ()).await;
        AskTicket::in_turn(Some(&second), || ()).await;
    }
}
