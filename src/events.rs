//! The event record: a ring buffer of recent events for `events`, counters for `status`,
//! and an append-only `events.jsonl` on disk.
//!
//! Every layer records through a cloneable [`EventLog`]; recording never blocks on
//! anything but a short mutex and one small append, and a failing disk is counted, not fatal.
//! A session's actor holds the log while it handles a batch of the child's lines
//! ([`EventLog::hold`]): the events of the batch reach `events.jsonl` in one write when
//! it ends, not one write each (a flood of messages records a `turn.step` per message).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::api::{
    EventCounters, EventDetail, EventKind, EventsPage, EventsParams, EventsResult, Level,
    StateCorrupt,
};
use crate::clock::now_rfc3339;
use crate::redact::{redact, redact_json};
use crate::state_dir::private_file;

/// Bytes of `events.jsonl` lines gathered while the log is held before they are written
/// anyway: what a hold may keep in memory.
const PENDING_BYTES: usize = 64 * 1024;

/// Default and maximum page size of `events`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Cloneable handle to the daemon's event record.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Mutex<Inner>>,
    /// The newest `seq`, so a surface can stream events as they happen instead of polling.
    newest: watch::Sender<u64>,
    /// The session this handle records for (see [`EventLog::scoped`]).
    session: Option<Arc<str>>,
}

struct Inner {
    ring: VecDeque<Stored>,
    /// `turn.step` events, in a ring of their own (as large): a busy turn's steps never
    /// push the lifecycle out of memory.
    steps: VecDeque<Stored>,
    capacity: usize,
    next_seq: u64,
    counters: EventCounters,
    /// `events.jsonl`, opened for append; `None` when persistence is off.
    file: Option<EventFile>,
    /// Holds in force ([`EventLog::hold`]): while there are any, lines for the file gather.
    held: usize,
    /// The newest `seq` recorded under a hold and not yet announced to subscribers: a
    /// hold announces once, when it ends, not once per event.
    unannounced: Option<u64>,
}

/// An [`Event`](crate::api::Event) as it is written (the same fields in the same order,
/// which a test holds it to), borrowing its parts; its detail is JSON text already.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    seq: u64,
    created_at: &'a str,
    level: Level,
    #[serde(rename = "type")]
    kind: EventKind,
    message: &'a str,
    detail: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
}

/// An event as the rings keep it: its JSON text, the same bytes as its line in
/// `events.jsonl`, with the fields a query filters on beside it. A page is then copied
/// out, not cloned field by field and serialised again.
struct Stored {
    seq: u64,
    level: Level,
    session: Option<Arc<str>>,
    json: Box<RawValue>,
}

/// The on-disk log and its rotation.
struct EventFile {
    file: File,
    path: PathBuf,
    /// Bytes in the current file; past `max_bytes` it becomes `events.jsonl.1`.
    written: u64,
    max_bytes: u64,
    /// Rotated files kept: `events.jsonl.1` (newest) to `.keep`.
    keep: usize,
    /// Whole lines not yet written (see [`EventLog::hold`]).
    pending: Vec<u8>,
}

impl EventFile {
    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.written > 0 && self.written + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        // One write call per line with O_APPEND keeps lines whole.
        self.file.write_all(line)?;
        self.written += line.len() as u64;
        Ok(())
    }

    /// Appends whole `lines`, rotating between them just where [`EventFile::append`]
    /// would line by line; on an error, says how many lines were not written.
    fn append_lines(&mut self, mut lines: &[u8]) -> Result<(), (u64, std::io::Error)> {
        while !lines.is_empty() {
            let room = self.max_bytes.saturating_sub(self.written);
            let cut = whole_lines_within(lines, room);
            if let Err(err) = self.append(&lines[..cut]) {
                return Err((memchr::memchr_iter(b'\n', lines).count() as u64, err));
            }
            lines = &lines[cut..];
        }
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = std::fs::remove_file(numbered(self.keep));
        for n in (1..self.keep).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.file = private_file(&self.path, true)?;
        self.written = 0;
        Ok(())
    }
}

impl EventLog {
    /// A record keeping the last `capacity` events in memory.
    pub fn new(capacity: usize) -> Self {
        let inner = Inner {
            ring: VecDeque::with_capacity(capacity.min(4096)),
            steps: VecDeque::new(),
            capacity: capacity.max(1),
            next_seq: 1,
            counters: EventCounters {
                next_seq: 1,
                ..EventCounters::default()
            },
            file: None,
            held: 0,
            unannounced: None,
        };
        EventLog {
            inner: Arc::new(Mutex::new(inner)),
            newest: watch::Sender::new(0),
            session: None,
        }
    }

    /// The same record, with every event recorded through the returned handle naming
    /// `session` (a session's actor records through one).
    pub(crate) fn scoped(&self, session: &str) -> EventLog {
        EventLog {
            session: Some(Arc::from(session)),
            ..self.clone()
        }
    }

    /// From now on, also append every event to `file` (at `path`), rotating it past
    /// `max_bytes` and keeping `keep` old files.
    pub fn attach_file(&self, path: PathBuf, file: File, max_bytes: u64, keep: usize) {
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.lock().file = Some(EventFile {
            file,
            path,
            written,
            max_bytes: max_bytes.max(1),
            keep,
            pending: Vec::new(),
        });
    }

    /// Gathers the lines of `events.jsonl` until the returned guard is dropped, then
    /// writes them at once: for a caller about to record many events in a row without
    /// waiting on anything (the actor handling a batch of the child's lines). Events
    /// are in the ring, and `events` answers with them, at once as always.
    pub(crate) fn hold(&self) -> Held {
        self.lock().held += 1;
        Held {
            inner: self.inner.clone(),
            newest: self.newest.clone(),
        }
    }

    /// Records an event whose facts are typed (its kind comes with them) and returns its
    /// sequence number. Every event is recorded so: there is no untyped way.
    pub(crate) fn record_detail<D: EventDetail>(
        &self,
        level: Level,
        message: impl Into<String>,
        detail: &D,
    ) -> u64 {
        // These types are plain data; serialising them cannot fail.
        let json =
            serde_json::value::to_raw_value(detail).unwrap_or_else(|_| RawValue::NULL.to_owned());
        self.record_json(level, detail.kind(), message, json)
    }

    /// Keeps an untrusted state file (`file`, at `path`) aside, never overwritten nor
    /// read again, and says so in the log and as a `state.corrupt` event; `rest` says
    /// what is used instead.
    pub(crate) fn file_set_aside(
        &self,
        path: &std::path::Path,
        file: &str,
        rest: &str,
        problems: &[String],
    ) {
        let moved_to = crate::state_dir::move_aside(path);
        let kept = moved_to
            .as_ref()
            .map_or("it could not be moved aside".to_string(), |p| {
                format!("kept as {}", p.display())
            });
        let message = format!(
            "{file} {}; {kept}, and {rest}",
            crate::state_dir::some_problems(problems)
        );
        tracing::warn!("{message}");
        self.record_detail(
            Level::Warn,
            message,
            &StateCorrupt {
                file: file.to_string(),
                moved_to,
                problems: Some(problems.len()),
            },
        );
    }

    /// Records one event with its facts as JSON text; only through
    /// [`EventLog::record_detail`], so the detail of every kind has its type. The detail
    /// is never built as a `Value`: it is serialised once, masked as text, and written
    /// into the event's line as it is.
    fn record_json(
        &self,
        level: Level,
        kind: EventKind,
        message: impl Into<String>,
        detail: Box<RawValue>,
    ) -> u64 {
        let message = message.into();
        // Most messages hold no secret: keep the string rather than copy it.
        let message = match redact(&message) {
            Cow::Borrowed(_) => message,
            Cow::Owned(masked) => masked,
        };
        let detail = redact_json(detail);
        trace_event(level, kind, &message, &detail);
        let mut inner = self.lock();
        let seq = inner.next_seq;
        let event = Line {
            seq,
            created_at: &now_rfc3339(),
            level,
            kind,
            message: &message,
            detail: &detail,
            session: self.session.as_deref(),
        };
        // Plain data with string keys: serialising it cannot fail.
        let Ok(json) = serde_json::value::to_raw_value(&event) else {
            return seq;
        };
        inner.next_seq += 1;
        inner.count(level);
        inner.append_to_file(&json);
        let event = Stored {
            seq,
            level,
            session: self.session.clone(),
            json,
        };
        let capacity = inner.capacity;
        let ring = match kind {
            EventKind::TurnStep => &mut inner.steps,
            _ => &mut inner.ring,
        };
        if ring.len() == capacity {
            ring.pop_front();
        }
        ring.push_back(event);
        if inner.held > 0 {
            inner.unannounced = Some(seq);
            return seq;
        }
        drop(inner);
        self.newest.send_replace(seq);
        seq
    }

    /// Wakes on every recorded event; the value is the newest `seq`.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.newest.subscribe()
    }

    /// Answers `events`: matching events after `since`, oldest first, decoded.
    pub fn query(&self, params: &EventsParams) -> EventsResult {
        self.page(params).decode()
    }

    /// [`EventLog::query`] with each event as the JSON text it was recorded as.
    pub fn page(&self, params: &EventsParams) -> EventsPage {
        let inner = self.lock();
        let since = params.since.unwrap_or(0);
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let min_level = params.level.unwrap_or(Level::Debug);
        let mut matching = in_order_after(since, &inner.ring, &inner.steps)
            .filter(|e| e.level >= min_level)
            .filter(|e| {
                params
                    .session
                    .as_deref()
                    .is_none_or(|wanted| e.session.as_deref() == Some(wanted))
            });
        let mut last = None;
        let events: Vec<Box<RawValue>> = matching
            .by_ref()
            .take(limit)
            .map(|e| {
                last = Some(e.seq);
                e.json.clone()
            })
            .collect();
        let truncated = matching.next().is_some();
        // With a truncated page the cursor must resume after the last event returned.
        let next_seq = match (truncated, last) {
            (true, Some(last)) => last + 1,
            _ => inner.next_seq,
        };
        EventsPage {
            events,
            next_seq,
            oldest_seq: [inner.ring.front(), inner.steps.front()]
                .into_iter()
                .flatten()
                .map(|e| e.seq)
                .min(),
            truncated,
        }
    }

    /// Counters for `status`.
    pub fn counters(&self) -> EventCounters {
        let inner = self.lock();
        EventCounters {
            next_seq: inner.next_seq,
            ..inner.counters.clone()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::sync::lock(&self.inner)
    }
}

impl Inner {
    fn count(&mut self, level: Level) {
        let c = &mut self.counters;
        c.total += 1;
        match level {
            Level::Debug => c.debug += 1,
            Level::Info => c.info += 1,
            Level::Warn => c.warn += 1,
            Level::Error => c.error += 1,
        }
    }

    fn append_to_file(&mut self, event: &RawValue) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        file.pending.extend_from_slice(event.get().as_bytes());
        file.pending.push(b'\n');
        if self.held == 0 || file.pending.len() >= PENDING_BYTES {
            self.write_pending();
        }
    }

    /// Writes the lines gathered so far.
    fn write_pending(&mut self) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let pending = std::mem::take(&mut file.pending);
        let written = file.append_lines(&pending);
        // The buffer is kept for the next lines: no allocation per event.
        file.pending = pending;
        file.pending.clear();
        if let Err((lost, err)) = written {
            self.counters.log_write_failures += lost;
            tracing::warn!(%err, "cannot append to events.jsonl");
        }
    }
}

/// A hold on the event log's file ([`EventLog::hold`]); dropping it writes what gathered
/// and wakes the subscribers once for the events recorded meanwhile.
pub(crate) struct Held {
    inner: Arc<Mutex<Inner>>,
    newest: watch::Sender<u64>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut inner = crate::sync::lock(&self.inner);
        inner.held = inner.held.saturating_sub(1);
        if inner.held == 0 {
            inner.write_pending();
            if let Some(seq) = inner.unannounced.take() {
                drop(inner);
                self.newest.send_replace(seq);
            }
        }
    }
}

/// The length of the longest run of whole lines at the start of `lines` that fits in
/// `room` bytes; the first line's when not even that fits (it goes to a fresh file).
fn whole_lines_within(lines: &[u8], room: u64) -> usize {
    let mut cut = 0;
    for end in memchr::memchr_iter(b'\n', lines).map(|at| at + 1) {
        if end as u64 > room {
            return if cut == 0 { end } else { cut };
        }
        cut = end;
    }
    // Every line is whole (ends with a newline): all of them fit.
    if cut == 0 { lines.len() } else { cut }
}

/// The events of both rings after `since` by `seq`, oldest first. Each ring is in
/// order already, so the first one after `since` is found by halving, not by walking
/// past the older ones (a poll that finds nothing new costs no more with a full ring).
fn in_order_after<'a>(
    since: u64,
    ring: &'a VecDeque<Stored>,
    steps: &'a VecDeque<Stored>,
) -> impl Iterator<Item = &'a Stored> {
    let after = |events: &'a VecDeque<Stored>| {
        events
            .range(events.partition_point(|e| e.seq <= since)..)
            .peekable()
    };
    let (mut ring, mut steps) = (after(ring), after(steps));
    std::iter::from_fn(move || match (ring.peek(), steps.peek()) {
        (Some(a), Some(b)) if b.seq < a.seq => steps.next(),
        (Some(_), _) => ring.next(),
        (None, _) => steps.next(),
    })
}

fn trace_event(level: Level, kind: EventKind, message: &str, detail: &RawValue) {
    let kind = kind.as_str();
    match level {
        Level::Debug => tracing::debug!(event = kind, %detail, "{message}"),
        Level::Info => tracing::info!(event = kind, %detail, "{message}"),
        Level::Warn => tracing::warn!(event = kind, %detail, "{message}"),
        Level::Error => tracing::error!(event = kind, %detail, "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Event;
    use serde_json::{Value, json};

    impl EventLog {
        /// Records an event whose detail is any JSON value (the tests' kinds need no type).
        fn record(
            &self,
            level: Level,
            kind: EventKind,
            message: impl Into<String>,
            detail: Value,
        ) -> u64 {
            let json = serde_json::value::to_raw_value(&detail).unwrap();
            self.record_json(level, kind, message, json)
        }
    }

    fn log_with(n: usize, capacity: usize) -> EventLog {
        let log = EventLog::new(capacity);
        for i in 0..n {
            let level = if i % 2 == 0 {
                Level::Info
            } else {
                Level::Debug
            };
            log.record(
                level,
                EventKind::TurnQueued,
                format!("event {i}"),
                json!({ "i": i }),
            );
        }
        log
    }

    #[test]
    fn an_events_line_is_the_text_serde_makes_of_the_event() {
        let detail = json!({"b": [1, 2.5, "é\n"], "a": null});
        for session in [None, Some("work")] {
            let event = Event {
                seq: 7,
                created_at: "2026-12-06T04:00:00.000Z".into(),
                level: Level::Warn,
                kind: EventKind::TurnStep,
                message: "turn 1: \"quoted\"".into(),
                detail: detail.clone(),
                session: session.map(str::to_owned),
            };
            let raw = serde_json::value::to_raw_value(&detail).unwrap();
            let line = Line {
                seq: event.seq,
                created_at: &event.created_at,
                level: event.level,
                kind: event.kind,
                message: &event.message,
                detail: &raw,
                session,
            };
            assert_eq!(
                serde_json::to_string(&line).unwrap(),
                serde_json::to_string(&event).unwrap()
            );
        }
    }

    #[test]
    fn a_page_of_recorded_text_is_on_the_wire_what_the_decoded_page_is() {
        let log = EventLog::new(10).scoped("work");
        log.record(
            Level::Warn,
            EventKind::TurnQueued,
            "queued \"a\"",
            json!({"n": 1.5}),
        );
        log.record(
            Level::Info,
            EventKind::TurnStep,
            "step",
            json!({"s": "é\n"}),
        );
        let params = EventsParams::default();
        let page = serde_json::to_value(log.page(&params)).unwrap();
        let decoded = log.query(&params);
        assert_eq!(decoded.events.len(), 2);
        assert_eq!(decoded.events[1].session.as_deref(), Some("work"));
        assert_eq!(page, serde_json::to_value(&decoded).unwrap());
    }

    #[test]
    fn a_page_after_any_cursor_is_every_kept_event_after_it_in_order() {
        let log = EventLog::new(4);
        // Steps and other events interleaved, more of each than the rings keep.
        for i in 0..23u64 {
            let kind = if i % 3 == 0 {
                EventKind::TurnStarted
            } else {
                EventKind::TurnStep
            };
            log.record(Level::Info, kind, "e", json!({}));
        }
        let kept: Vec<u64> = log
            .query(&EventsParams::default())
            .events
            .iter()
            .map(|e| e.seq)
            .collect();
        // The last four of each ring, merged by seq.
        assert_eq!(kept, [13, 16, 18, 19, 20, 21, 22, 23]);
        for since in 0..25 {
            let page = log.query(&EventsParams {
                since: Some(since),
                ..EventsParams::default()
            });
            let seqs: Vec<u64> = page.events.iter().map(|e| e.seq).collect();
            let expected: Vec<u64> = kept.iter().copied().filter(|&s| s > since).collect();
            assert_eq!(seqs, expected, "since {since}");
        }
    }

    #[test]
    fn a_turns_steps_never_push_the_lifecycle_out_of_memory() {
        let log = EventLog::new(3);
        let record = |kind: EventKind| log.record(Level::Info, kind, "e", json!({}));
        record(EventKind::TurnStarted);
        for _ in 0..10 {
            record(EventKind::TurnStep);
        }
        record(EventKind::TurnFinished);
        let page = log.query(&EventsParams {
            since: Some(0),
            ..EventsParams::default()
        });
        let seqs: Vec<(u64, &str)> = page
            .events
            .iter()
            .map(|e| (e.seq, e.kind.as_str()))
            .collect();
        assert_eq!(
            seqs,
            [
                (1, "turn.started"),
                (9, "turn.step"),
                (10, "turn.step"),
                (11, "turn.step"),
                (12, "turn.finished")
            ]
        );
        assert_eq!(page.oldest_seq, Some(1));
        let after = log.query(&EventsParams {
            since: Some(10),
            ..EventsParams::default()
        });
        assert_eq!(after.events.len(), 2);
    }

    #[test]
    fn ring_keeps_the_newest_and_reports_oldest() {
        let log = log_with(10, 4);
        let page = log.query(&EventsParams::default());
        let seqs: Vec<u64> = page.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![7, 8, 9, 10]);
        assert_eq!(page.next_seq, 11);
        assert_eq!(page.oldest_seq, Some(7));
        assert!(!page.truncated);
    }

    #[test]
    fn cursor_pages_through_without_gaps() {
        let log = log_with(10, 50);
        let mut since = 0;
        let mut seen = Vec::new();
        loop {
            let page = log.query(&EventsParams {
                since: Some(since),
                limit: Some(3),
                level: None,
                session: None,
                wait_ms: None,
            });
            seen.extend(page.events.iter().map(|e| e.seq));
            since = page.next_seq - 1;
            if !page.truncated {
                break;
            }
        }
        assert_eq!(seen, (1..=10).collect::<Vec<u64>>());
    }

    #[test]
    fn the_log_file_rotates_by_size_and_keeps_a_few() {
        let dir = std::env::temp_dir().join(format!("cc-rotate-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let log = EventLog::new(10);
        log.attach_file(path.clone(), private_file(&path, true).unwrap(), 1000, 2);
        for i in 0..100 {
            log.record(
                Level::Info,
                EventKind::TurnQueued,
                format!("event {i}"),
                json!({ "i": i }),
            );
        }
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        for name in ["events.jsonl", "events.jsonl.1", "events.jsonl.2"] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            assert!(text.len() <= 1000, "{name} has {} bytes", text.len());
            assert!(
                text.lines()
                    .all(|l| serde_json::from_str::<Value>(l).is_ok())
            );
        }
        let newest = std::fs::read_to_string(&path).unwrap();
        assert!(newest.contains("event 99"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hold_announces_its_events_once_when_it_ends_and_a_free_log_at_once() {
        let log = EventLog::new(10);
        let mut newest = log.subscribe();
        let record = |i: u64| {
            log.record(
                Level::Info,
                EventKind::TurnQueued,
                format!("event {i}"),
                json!({}),
            )
        };
        record(0);
        assert!(newest.has_changed().unwrap());
        assert_eq!(*newest.borrow_and_update(), 1);
        let held = log.hold();
        for i in 1..=5 {
            record(i);
        }
        assert!(!newest.has_changed().unwrap(), "announced under the hold");
        assert_eq!(log.query(&EventsParams::default()).events.len(), 6);
        drop(held);
        assert!(newest.has_changed().unwrap());
        assert_eq!(*newest.borrow_and_update(), 6);
    }

    #[test]
    fn a_held_log_writes_when_the_hold_ends_and_rotates_as_line_by_line() {
        let dir = std::env::temp_dir().join(format!("cc-held-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let log = EventLog::new(10);
        log.attach_file(path.clone(), private_file(&path, true).unwrap(), 1000, 2);
        let held = log.hold();
        for i in 0..100 {
            log.record(
                Level::Info,
                EventKind::TurnQueued,
                format!("event {i}"),
                json!({ "i": i }),
            );
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        assert_eq!(log.query(&EventsParams::default()).events.len(), 10);
        drop(held);
        for name in ["events.jsonl", "events.jsonl.1", "events.jsonl.2"] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            assert!(
                !text.is_empty() && text.len() <= 1000,
                "{name}: {} bytes",
                text.len()
            );
            assert!(
                text.lines()
                    .all(|l| serde_json::from_str::<Value>(l).is_ok())
            );
        }
        assert!(std::fs::read_to_string(&path).unwrap().contains("event 99"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failing_disk_is_counted_not_fatal() {
        let full = std::fs::OpenOptions::new()
            .append(true)
            .open("/dev/full")
            .unwrap();
        let log = EventLog::new(10);
        log.attach_file(PathBuf::from("/dev/full"), full, u64::MAX, 0);
        log.record(Level::Info, EventKind::TurnQueued, "one", json!({}));
        log.record(Level::Info, EventKind::TurnQueued, "two", json!({}));
        assert_eq!(log.counters().log_write_failures, 2);
        assert_eq!(log.query(&EventsParams::default()).events.len(), 2);
    }

    #[test]
    fn level_filter_and_counters() {
        let log = log_with(6, 50);
        let page = log.query(&EventsParams {
            level: Some(Level::Info),
            ..EventsParams::default()
        });
        assert_eq!(page.events.len(), 3);
        let c = log.counters();
        assert_eq!((c.total, c.info, c.debug, c.next_seq), (6, 3, 3, 7));
    }
}
