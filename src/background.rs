//! Background turns: asks that answer at once with a handle while their turn runs on.
//!
//! [`Background`] keeps one entry per such turn, by its handle's `turnId`: where the turn
//! stands (its latest step, as MCP progress words it, and how many messages it printed)
//! and, once it ended, its answer or error until a `wait` or `result` collects it. A
//! finished result nobody collected is kept for `--result-ttl-ms` (bounded in number and
//! bytes: the oldest go first), in `results.json` in the state directory too (0600), so
//! it survives a restart of claude-coded. A turn still running when claude-coded stops
//! ends with the stop's error, which is kept the same way.
//!
//! It is the one store of detached turns: an MCP task's turn is kept here too, under its
//! task id ([`Background::adopt`]), while rmcp's task machinery runs it live (its status
//! and its in-task questions); `tasks/get` finds its end here once rmcp no longer knows
//! it, after a restart in particular ([`Background::peek`], which does not collect).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::api::{AskResult, CancelResult, ErrorInfo, TurnHandle, WaitResult};
use crate::error::DaemonError;
use crate::events::EventLog;
use crate::state_dir::{StateDir, read_bounded};
use crate::supervisor::{AskError, Pending, TurnMessage};
use crate::sync::lock;

/// The file of finished results not yet collected.
pub(crate) const RESULTS_FILE: &str = "results.json";
/// At most this many uncollected results are kept; the oldest go first.
const MAX_RESULTS: usize = 256;
/// At most this many bytes of uncollected results (as stored) are kept.
const MAX_RESULT_BYTES: usize = 32 << 20;
/// Largest `results.json` read back: the results' bound, plus room for the pretty
/// printing and the records around them.
const MAX_RESULTS_FILE: u64 = 2 * MAX_RESULT_BYTES as u64 + (1 << 20);
/// How long the last messages of a turn may take to be recorded after its answer came.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How long a stop waits for the running background turns to record how they ended.
const SETTLE_WITHIN: Duration = Duration::from_secs(3);
/// Default and longest wait of `wait`, in ms.
pub(crate) const DEFAULT_WAIT_MS: u64 = 30_000;
pub(crate) const MAX_WAIT_MS: u64 = 600_000;

/// Cloneable handle to the daemon's background turns.
#[derive(Clone)]
pub(crate) struct Background {
    inner: Arc<Shared>,
}

struct Shared {
    jobs: Mutex<HashMap<String, Job>>,
    store: Option<StateDir>,
    ttl: Duration,
    /// Where an untrusted `results.json` is reported.
    events: EventLog,
    /// Held from reading the results to writing `results.json`, so saves land in order.
    saving: Mutex<()>,
}

/// A turn adopted from elsewhere ([`Background::adopt`]), until its end is told.
pub(crate) struct Adopted {
    background: Background,
    /// Taken when the end is told.
    turn_id: Option<String>,
}

impl Adopted {
    /// Records how the turn ended.
    pub(crate) fn end(mut self, answer: Result<AskResult, AskError>) {
        if let Some(turn_id) = self.turn_id.take() {
            self.background.finish(&turn_id, answer);
        }
    }
}

impl Drop for Adopted {
    /// Its keeper dropped it without an end (aborted): it ended as cancelled.
    fn drop(&mut self) {
        if let Some(turn_id) = self.turn_id.take() {
            self.background.finish(&turn_id, Err(AskError::Cancelled));
        }
    }
}

/// When a finished turn was asked and ended, in ms since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Times {
    pub(crate) created_ms: u64,
    pub(crate) finished_ms: u64,
}

/// One background turn.
struct Job {
    record: Record,
    /// Size of the record as stored, once finished (for the byte bound).
    bytes: usize,
    /// `true` once the turn ended.
    done: watch::Sender<bool>,
    /// Interrupts the turn (taken when used, or when the turn ended).
    cancel: Option<oneshot::Sender<()>>,
}

impl Job {
    /// A turn of `session` that starts now; `cancel` interrupts it, when this store
    /// runs it.
    fn running(session: String, cancel: Option<oneshot::Sender<()>>) -> Job {
        Job {
            record: Record {
                session,
                created_ms: now_ms(),
                step: None,
                messages: 0,
                finished_ms: None,
                outcome: None,
            },
            bytes: 0,
            done: watch::Sender::new(false),
            cancel,
        }
    }
}

/// What is known of a background turn, and what `results.json` keeps of a finished one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    session: String,
    /// When the ask was made, in ms since the Unix epoch.
    created_ms: u64,
    #[serde(default)]
    step: Option<String>,
    #[serde(default)]
    messages: u64,
    #[serde(default)]
    finished_ms: Option<u64>,
    #[serde(default)]
    outcome: Option<Outcome>,
}

/// How a background turn ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Outcome {
    Result(Box<AskResult>),
    Error(ErrorInfo),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The finished results of `results.json` that pass the checks (their times clamped to
/// now), and what is wrong with the others.
fn checked(stored: HashMap<String, Record>) -> (HashMap<String, Record>, Vec<String>) {
    let now = now_ms();
    let mut problems = Vec::new();
    let mut valid = HashMap::new();
    for (id, mut record) in stored {
        if record.outcome.is_none() {
            continue;
        }
        if !crate::state_dir::is_canonical_uuid(&id) {
            problems.push("has a turn id that is not a UUID".to_string());
            continue;
        }
        if crate::sessions::check_name(&record.session).is_err() {
            problems.push(format!("gives turn {id} an invalid session name"));
            continue;
        }
        // A time in the future would keep the result past its TTL.
        record.created_ms = record.created_ms.min(now);
        record.finished_ms = record.finished_ms.map(|at| at.min(now));
        valid.insert(id, record);
    }
    (valid, problems)
}

fn unknown(turn_id: &str) -> DaemonError {
    DaemonError::InvalidParams {
        field: "turnId",
        reason: format!(
            "no background turn `{turn_id}`: it is unknown, its result was already \
             collected, or it expired (uncollected results are kept for a while, see \
             --result-ttl-ms)"
        ),
    }
}

impl Background {
    /// The background turns of a daemon, with the uncollected results an earlier run left
    /// in `store`.
    pub(crate) fn new(store: Option<StateDir>, ttl: Duration, events: EventLog) -> Background {
        let background = Background {
            inner: Arc::new(Shared {
                jobs: Mutex::new(HashMap::new()),
                store,
                ttl,
                events,
                saving: Mutex::new(()),
            }),
        };
        background.load();
        background
    }

    /// Follows a queued turn in the background and returns its handle. Its messages come
    /// on `messages`; `tap` may pass them on too (the plain surface's `ask/event`), and is
    /// dropped when it stops taking them.
    pub(crate) fn run(
        &self,
        pending: Pending,
        messages: mpsc::Receiver<TurnMessage>,
        session: String,
        tap: impl FnOnce(&TurnHandle) -> Option<mpsc::Sender<TurnMessage>>,
    ) -> TurnHandle {
        let handle = TurnHandle {
            turn_id: uuid::Uuid::new_v4().to_string(),
            session: session.clone(),
        };
        let (cancel, cancelled) = oneshot::channel();
        let job = Job::running(session, Some(cancel));
        lock(&self.inner.jobs).insert(handle.turn_id.clone(), job);
        let tap = tap(&handle);
        let drain = tokio::spawn(drain(self.clone(), handle.turn_id.clone(), messages, tap));
        tokio::spawn(follow(
            self.clone(),
            handle.turn_id.clone(),
            pending,
            cancelled,
            drain,
        ));
        handle
    }

    /// Keeps a turn that is run live elsewhere (an MCP task) under `turn_id`: its end,
    /// told with [`Adopted::end`], is recorded like a handle's turn's (in `results.json`,
    /// across restarts), and one never told ends as cancelled.
    pub(crate) fn adopt(&self, turn_id: &str, session: &str) -> Adopted {
        let job = Job::running(session.to_string(), None);
        lock(&self.inner.jobs).insert(turn_id.to_string(), job);
        Adopted {
            background: self.clone(),
            turn_id: Some(turn_id.to_string()),
        }
    }

    /// How a turn ended, without collecting it (an MCP task is read as often as the
    /// client polls, until its time is up): `None` while it runs or when unknown.
    pub(crate) fn peek(&self, turn_id: &str) -> Option<(Result<AskResult, DaemonError>, Times)> {
        let mut jobs = lock(&self.inner.jobs);
        self.sweep(&mut jobs);
        let record = &jobs.get(turn_id)?.record;
        let times = Times {
            created_ms: record.created_ms,
            finished_ms: record.finished_ms?,
        };
        let outcome = match record.outcome.clone()? {
            Outcome::Result(result) => Ok(*result),
            Outcome::Error(error) => Err(DaemonError::TurnFailed(error)),
        };
        Some((outcome, times))
    }

    /// Waits up to `timeout` for the turn to end; then its answer (collected: the entry is
    /// gone), its error (collected too), or where it stands.
    pub(crate) async fn wait(
        &self,
        turn_id: &str,
        timeout: Duration,
    ) -> Result<WaitResult, DaemonError> {
        let mut done = {
            let mut jobs = lock(&self.inner.jobs);
            self.sweep(&mut jobs);
            jobs.get(turn_id)
                .ok_or_else(|| unknown(turn_id))?
                .done
                .subscribe()
        };
        // A timeout is an answer here ("still running"), not an error. A poll (no time
        // to wait) answers now: a zero timeout would still wait for the timer's next tick
        // (about a millisecond).
        if !timeout.is_zero() {
            let _ = tokio::time::timeout(timeout, done.wait_for(|ended| *ended)).await;
        }
        self.collect(turn_id)
    }

    /// The answer when the turn ended (collecting it), else where it stands.
    fn collect(&self, turn_id: &str) -> Result<WaitResult, DaemonError> {
        let mut jobs = lock(&self.inner.jobs);
        let job = jobs.get(turn_id).ok_or_else(|| unknown(turn_id))?;
        let now = now_ms();
        let record = &job.record;
        let mut answer = WaitResult {
            turn_id: turn_id.to_string(),
            session: record.session.clone(),
            running: record.outcome.is_none(),
            elapsed_ms: record
                .finished_ms
                .unwrap_or(now)
                .saturating_sub(record.created_ms),
            step: record.step.clone(),
            messages: record.messages,
            result: None,
        };
        if answer.running {
            return Ok(answer);
        }
        let outcome = jobs.remove(turn_id).and_then(|job| job.record.outcome);
        drop(jobs);
        self.persist();
        match outcome {
            Some(Outcome::Result(result)) => {
                answer.result = Some(result);
                Ok(answer)
            }
            Some(Outcome::Error(error)) => Err(DaemonError::TurnFailed(error)),
            None => Err(unknown(turn_id)),
        }
    }

    /// Interrupts a running turn (or takes it out of its queue).
    pub(crate) fn cancel(&self, turn_id: &str) -> Result<CancelResult, DaemonError> {
        let mut jobs = lock(&self.inner.jobs);
        self.sweep(&mut jobs);
        let job = jobs.get_mut(turn_id).ok_or_else(|| unknown(turn_id))?;
        let cancelled = match job.cancel.take() {
            Some(cancel) => cancel.send(()).is_ok(),
            None => false,
        };
        Ok(CancelResult {
            turn_id: turn_id.to_string(),
            session: job.record.session.clone(),
            cancelled,
        })
    }

    /// Waits (a few seconds at most) until every running background turn recorded how it
    /// ended, and saves the results: for a stop, after the children were stopped.
    pub(crate) async fn settle(&self) {
        let running: Vec<watch::Receiver<bool>> = lock(&self.inner.jobs)
            .values()
            .filter(|job| job.record.outcome.is_none())
            .map(|job| job.done.subscribe())
            .collect();
        let all = async {
            for mut done in running {
                let _ = done.wait_for(|ended| *ended).await;
            }
        };
        let _ = tokio::time::timeout(SETTLE_WITHIN, all).await;
        self.persist();
    }

    /// Records a message of a running turn: its step, and the count.
    fn saw(&self, turn_id: &str, message: &TurnMessage) {
        let step = message.message.step().map(str::to_owned);
        if let Some(job) = lock(&self.inner.jobs).get_mut(turn_id) {
            job.record.messages = message.seq;
            if step.is_some() {
                job.record.step = step;
            }
        }
    }

    /// Records how the turn ended, keeps it within the bounds, and saves it.
    fn finish(&self, turn_id: &str, answer: Result<AskResult, AskError>) {
        let outcome = match answer {
            Ok(result) => Outcome::Result(Box::new(result)),
            Err(err) => Outcome::Error(DaemonError::from(err).info()),
        };
        {
            let mut jobs = lock(&self.inner.jobs);
            let Some(job) = jobs.get_mut(turn_id) else {
                return;
            };
            job.record.finished_ms = Some(now_ms());
            job.record.outcome = Some(outcome);
            job.bytes = serde_json::to_vec(&job.record).map_or(0, |bytes| bytes.len());
            job.cancel = None;
            job.done.send_replace(true);
            self.sweep(&mut jobs);
        }
        self.persist();
    }

    /// Drops the finished results past their time, then the oldest while there are too
    /// many or they are too big.
    fn sweep(&self, jobs: &mut HashMap<String, Job>) {
        let ttl = self.inner.ttl.as_millis() as u64;
        let now = now_ms();
        jobs.retain(|_, job| {
            job.record
                .finished_ms
                .is_none_or(|at| now.saturating_sub(at) < ttl)
        });
        loop {
            let finished = jobs.values().filter(|job| job.record.outcome.is_some());
            let (count, bytes) = finished.fold((0, 0), |(n, b), job| (n + 1, b + job.bytes));
            if count <= MAX_RESULTS && bytes <= MAX_RESULT_BYTES {
                return;
            }
            let oldest = jobs
                .iter()
                .filter_map(|(id, job)| job.record.finished_ms.map(|at| (at, id.clone())))
                .min();
            match oldest {
                Some((_, id)) => {
                    tracing::warn!(turn_id = %id, "an uncollected background result was dropped to stay within the bounds");
                    jobs.remove(&id);
                }
                None => return,
            }
        }
    }

    /// Loads the uncollected results an earlier run saved. The file is read with a bound
    /// and each entry checked (a turn id as this daemon makes them, a session name as the
    /// wire takes it, times not in the future, which would outlive the TTL); a file with
    /// anything wrong is kept aside as `results.json.corrupt-<time>`, never overwritten.
    fn load(&self) {
        let Some(dir) = &self.inner.store else {
            return;
        };
        let path = dir.path(RESULTS_FILE);
        let parsed = match read_bounded(&path, MAX_RESULTS_FILE) {
            Ok(bytes) => serde_json::from_slice::<HashMap<String, Record>>(&bytes)
                .map_err(|err| format!("is not valid ({err})")),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            // A link (refused by O_NOFOLLOW), a file too big or unreadable: say so, do
            // not pretend there was nothing to collect.
            Err(err) => Err(format!("cannot be read ({err})")),
        };
        let (stored, problems) = match parsed {
            Ok(stored) => checked(stored),
            Err(problem) => (HashMap::new(), vec![problem]),
        };
        if !problems.is_empty() {
            let rest = "its other results are used";
            self.inner
                .events
                .file_set_aside(&path, RESULTS_FILE, rest, &problems);
        }
        let mut jobs = lock(&self.inner.jobs);
        for (id, record) in stored {
            let bytes = serde_json::to_vec(&record).map_or(0, |bytes| bytes.len());
            let job = Job {
                record,
                bytes,
                done: watch::Sender::new(true),
                cancel: None,
            };
            jobs.insert(id, job);
        }
        self.sweep(&mut jobs);
    }

    /// Writes `results.json`: every finished result not yet collected.
    fn persist(&self) {
        let Some(dir) = &self.inner.store else {
            return;
        };
        let _saving = lock(&self.inner.saving);
        let stored: HashMap<String, Record> = lock(&self.inner.jobs)
            .iter()
            .filter(|(_, job)| job.record.outcome.is_some())
            .map(|(id, job)| (id.clone(), job.record.clone()))
            .collect();
        if let Err(err) = dir.write_json_atomic(RESULTS_FILE, &stored) {
            tracing::warn!("cannot write {RESULTS_FILE}: {err}");
        }
    }
}

/// Takes a background turn's messages: records each, and passes it on to `tap` while
/// that takes them.
async fn drain(
    background: Background,
    turn_id: String,
    mut messages: mpsc::Receiver<TurnMessage>,
    mut tap: Option<mpsc::Sender<TurnMessage>>,
) {
    while let Some(message) = messages.recv().await {
        background.saw(&turn_id, &message);
        if let Some(to) = &tap
            && to.send(message).await.is_err()
        {
            tap = None;
        }
    }
}

/// Waits for the turn's answer (or a cancel, which drops the ask and so interrupts the
/// turn), then records it.
async fn follow(
    background: Background,
    turn_id: String,
    pending: Pending,
    cancelled: oneshot::Receiver<()>,
    drain: tokio::task::JoinHandle<()>,
) {
    let answer = tokio::select! {
        answer = pending.wait() => answer,
        Ok(()) = cancelled => Err(AskError::Cancelled),
    };
    // The turn's messages come before its answer; let the last ones be recorded.
    let _ = tokio::time::timeout(DRAIN_GRACE, drain).await;
    background.finish(&turn_id, answer);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::EventKind;
    use serde_json::json;

    fn finished(session: &str, finished_ms: u64, text: &str) -> Job {
        let result = AskResult {
            ok: true,
            result: Some(text.to_string()),
            session_id: None,
            session: session.to_string(),
            cost_usd: None,
            session_cost_usd: None,
            duration_ms: None,
            duration_api_ms: None,
            num_turns: None,
            is_error: false,
            subtype: None,
            terminal_reason: None,
            stop_reason: None,
            api_error_status: None,
            errors: Vec::new(),
            usage: serde_json::Value::Null,
            permission_denials: Vec::new(),
            messages: 0,
            raw: serde_json::Value::Null,
        };
        let record = Record {
            session: session.to_string(),
            created_ms: finished_ms.saturating_sub(10),
            step: None,
            messages: 0,
            finished_ms: Some(finished_ms),
            outcome: Some(Outcome::Result(Box::new(result))),
        };
        let bytes = serde_json::to_vec(&record).map_or(0, |b| b.len());
        Job {
            record,
            bytes,
            done: watch::Sender::new(true),
            cancel: None,
        }
    }

    #[test]
    fn a_result_past_its_ttl_is_dropped_and_a_fresh_one_kept() {
        let background = Background::new(None, Duration::from_secs(60), EventLog::new(16));
        let mut jobs = HashMap::new();
        jobs.insert("old".to_string(), finished("s", now_ms() - 61_000, "old"));
        jobs.insert("new".to_string(), finished("s", now_ms(), "new"));
        background.sweep(&mut jobs);
        assert!(jobs.contains_key("new"));
        assert!(!jobs.contains_key("old"));
    }

    #[test]
    fn past_the_bound_in_number_the_oldest_results_go_first() {
        let background = Background::new(None, Duration::from_secs(3600), EventLog::new(16));
        let now = now_ms();
        let mut jobs: HashMap<String, Job> = (0..MAX_RESULTS as u64 + 3)
            .map(|n| (format!("t{n}"), finished("s", now - 10_000 + n, "x")))
            .collect();
        background.sweep(&mut jobs);
        assert_eq!(jobs.len(), MAX_RESULTS);
        for gone in ["t0", "t1", "t2"] {
            assert!(!jobs.contains_key(gone), "{gone}");
        }
        assert!(jobs.contains_key("t3"));
    }

    #[test]
    fn past_the_bound_in_bytes_the_oldest_results_go_first() {
        let background = Background::new(None, Duration::from_secs(3600), EventLog::new(16));
        let now = now_ms();
        let big = "x".repeat(MAX_RESULT_BYTES / 3);
        let mut jobs: HashMap<String, Job> = (0..4u64)
            .map(|n| (format!("t{n}"), finished("s", now - 10 + n, &big)))
            .collect();
        background.sweep(&mut jobs);
        let mut kept: Vec<&String> = jobs.keys().collect();
        kept.sort();
        assert_eq!(kept, ["t2", "t3"]);
    }

    #[tokio::test]
    async fn what_one_run_saved_the_next_one_collects_once() {
        let root =
            std::env::temp_dir().join(format!("cc-results-{}", uuid::Uuid::new_v4().simple()));
        let dir = StateDir::open(&root).unwrap();
        let first = Background::new(
            Some(dir.clone()),
            Duration::from_secs(3600),
            EventLog::new(16),
        );
        let kept = uuid::Uuid::new_v4().to_string();
        lock(&first.inner.jobs).insert(kept.clone(), finished("s", now_ms(), "saved"));
        first.persist();
        let second = Background::new(Some(dir), Duration::from_secs(3600), EventLog::new(16));
        let waited = second.wait(&kept, Duration::ZERO).await.unwrap();
        assert!(!waited.running);
        assert_eq!(waited.result.unwrap().result.as_deref(), Some("saved"));
        assert!(second.wait(&kept, Duration::ZERO).await.is_err());
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A state directory with `results.json` holding `text`, and its root.
    fn with_results(text: &[u8]) -> (StateDir, std::path::PathBuf) {
        let root =
            std::env::temp_dir().join(format!("cc-results-{}", uuid::Uuid::new_v4().simple()));
        let dir = StateDir::open(&root).unwrap();
        std::fs::write(dir.path(RESULTS_FILE), text).unwrap();
        (dir, root)
    }

    fn aside(root: &std::path::Path) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("results.json.corrupt-"))
            .collect()
    }

    #[test]
    fn a_finished_time_in_the_future_is_clamped_so_the_ttl_still_ends_it() {
        let id = uuid::Uuid::new_v4().to_string();
        let mut job = finished("s", now_ms() + 10 * 365 * 86_400_000, "from the future");
        job.record.created_ms = job.record.finished_ms.unwrap();
        let text = serde_json::to_vec(&json!({ &id: job.record })).unwrap();
        let (dir, root) = with_results(&text);
        let background = Background::new(Some(dir), Duration::from_secs(60), EventLog::new(16));
        let at = lock(&background.inner.jobs)[&id]
            .record
            .finished_ms
            .unwrap();
        assert!(at <= now_ms(), "finishedMs {at} is in the future");
        let mut jobs = std::mem::take(&mut *lock(&background.inner.jobs));
        for job in jobs.values_mut() {
            job.record.finished_ms = Some(at - 61_000);
        }
        background.sweep(&mut jobs);
        assert!(jobs.is_empty());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_results_file_past_its_bound_is_kept_aside_unread() {
        let big = vec![b' '; MAX_RESULTS_FILE as usize + 1];
        let (dir, root) = with_results(&big);
        let events = EventLog::new(16);
        let background = Background::new(Some(dir), Duration::from_secs(60), events.clone());
        assert!(lock(&background.inner.jobs).is_empty());
        let kept = aside(&root);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(std::fs::metadata(&kept[0]).unwrap().len(), big.len() as u64);
        let recorded = events.query(&crate::api::EventsParams::default());
        assert!(
            recorded
                .events
                .iter()
                .any(|e| e.kind == EventKind::StateCorrupt),
            "{:?}",
            recorded.events
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_result_with_a_forged_turn_id_is_dropped_and_the_file_kept_aside() {
        let good = uuid::Uuid::new_v4().to_string();
        let record = finished("s", now_ms(), "x").record;
        let text = serde_json::to_vec(&json!({ &good: record, "--evil": record })).unwrap();
        let (dir, root) = with_results(&text);
        let background = Background::new(Some(dir), Duration::from_secs(60), EventLog::new(16));
        let jobs = lock(&background.inner.jobs);
        assert_eq!(jobs.keys().collect::<Vec<_>>(), [&good]);
        assert_eq!(aside(&root).len(), 1);
        let _ = std::fs::remove_dir_all(&root);
    }
}
