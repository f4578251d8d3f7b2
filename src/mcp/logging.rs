//! `notifications/message`: the daemon's events as MCP log lines.
//!
//! Nothing is sent until the client sets a level, with `logging/setLevel` or (2026-07-28)
//! a request's `_meta` log level. From then on, every event recorded in the daemon's
//! event log at or above that level is sent as it happens, with the event itself as
//! `data` and `claude-coded` as the logger.
// MCP logging is deprecated by SEP-2577 for 2026-07-28, but every handshake-era client
// uses it and the issue asks for it; rmcp marks its types deprecated accordingly.
#![allow(deprecated)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::{Peer, RoleServer};
use tokio::sync::watch;

use crate::api::{Event, EventsParams, Level};
use crate::events::EventLog;

/// The `logger` of every log notification.
const LOGGER: &str = "claude-coded";
/// Events read from the log per query.
const PAGE: usize = 1000;

/// The level the client asked for, and the one task that streams events at it.
pub(super) struct LogStream {
    events: EventLog,
    level: watch::Sender<Option<LoggingLevel>>,
    started: AtomicBool,
}

impl LogStream {
    pub(super) fn new(events: EventLog) -> LogStream {
        LogStream {
            events,
            level: watch::Sender::new(None),
            started: AtomicBool::new(false),
        }
    }

    /// Did the client set a session level (`logging/setLevel`)?
    pub(super) fn has_session_level(&self) -> bool {
        self.level.borrow().is_some()
    }

    /// Sets the session level; the first call starts streaming to `peer` for the rest
    /// of the session.
    pub(super) fn set_level(&self, level: LoggingLevel, peer: &Peer<RoleServer>) {
        self.level.send_replace(Some(level));
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let (peer, events, mut level) = (peer.clone(), self.events.clone(), self.level.subscribe());
        // Only events recorded from now on: a log stream, not a replay (`events` replays).
        let mut since = newest(&events);
        tokio::spawn(async move { forward(&peer, &events, &mut level, &mut since).await });
    }

    /// Runs `work` (one request) while streaming the events it causes at `level`: the
    /// 2026-07-28 way, where a request opts in with a log level in its `_meta`. The events
    /// recorded by the end of `work` are all sent before it returns.
    pub(super) async fn during<T>(
        &self,
        level: LoggingLevel,
        peer: &Peer<RoleServer>,
        work: impl Future<Output = T>,
    ) -> T {
        let (_keep_open, mut level_rx) = watch::channel(Some(level));
        let mut since = newest(&self.events);
        tokio::pin!(work);
        let finished = {
            let streaming = forward(peer, &self.events, &mut level_rx, &mut since);
            tokio::select! {
                output = &mut work => Some(output),
                () = streaming => None,
            }
        };
        match finished {
            Some(output) => {
                send_since(peer, &self.events, &mut since, level).await;
                output
            }
            // The client cannot be written to; the work still finishes.
            None => work.await,
        }
    }
}

/// Streams events after `since` until the level's sender is dropped (the session or
/// request ended) or the client cannot be written to. Keeps `since` current.
async fn forward(
    peer: &Peer<RoleServer>,
    events: &EventLog,
    level: &mut watch::Receiver<Option<LoggingLevel>>,
    since: &mut u64,
) {
    let mut newest = events.subscribe();
    loop {
        let Some(min) = *level.borrow_and_update() else {
            return;
        };
        if !send_since(peer, events, since, min).await {
            return;
        }
        tokio::select! {
            changed = newest.changed() => if changed.is_err() { return },
            changed = level.changed() => if changed.is_err() { return },
        }
    }
}

fn newest(events: &EventLog) -> u64 {
    events.counters().next_seq.saturating_sub(1)
}

/// Sends the events after `since` that pass `min`, moving `since` past each event before
/// sending it (a send cut short by the end of a request is not repeated); returns false
/// when the client is gone.
async fn send_since(
    peer: &Peer<RoleServer>,
    events: &EventLog,
    since: &mut u64,
    min: LoggingLevel,
) -> bool {
    loop {
        let page = events.query(&EventsParams {
            since: Some(*since),
            limit: Some(PAGE),
            level: None,
            session: None,
            wait_ms: None,
        });
        for event in &page.events {
            *since = event.seq;
            if passes(event.level, min)
                && peer.notify_logging_message(log_line(event)).await.is_err()
            {
                return false;
            }
        }
        if !page.truncated {
            return true;
        }
    }
}

fn log_line(event: &Event) -> LoggingMessageNotificationParam {
    let data = serde_json::to_value(event).unwrap_or_default();
    LoggingMessageNotificationParam::new(mcp_level(event.level), data).with_logger(LOGGER)
}

/// The MCP (syslog) level of an event level.
pub(super) fn mcp_level(level: Level) -> LoggingLevel {
    match level {
        Level::Debug => LoggingLevel::Debug,
        Level::Info => LoggingLevel::Info,
        Level::Warn => LoggingLevel::Warning,
        Level::Error => LoggingLevel::Error,
    }
}

/// Is an event at `level` wanted by a client that asked for `min` and above?
pub(super) fn passes(level: Level, min: LoggingLevel) -> bool {
    severity(mcp_level(level)) >= severity(min)
}

fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_filter_by_severity() {
        assert!(passes(Level::Info, LoggingLevel::Debug));
        assert!(passes(Level::Info, LoggingLevel::Info));
        assert!(!passes(Level::Info, LoggingLevel::Notice));
        assert!(passes(Level::Warn, LoggingLevel::Notice));
        assert!(passes(Level::Error, LoggingLevel::Error));
        assert!(!passes(Level::Error, LoggingLevel::Critical));
        assert!(!passes(Level::Debug, LoggingLevel::Info));
    }
}
