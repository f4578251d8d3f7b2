//! The one writer of stdout, shared by both surfaces: whole lines, in the order they
//! were queued, each acknowledged once it reached the kernel.
//!
//! A client may stop reading its stdout. The outbox then fills, and the readers of stdin
//! stop taking requests while it is over [`HIGH_WATER`] (see [`crate::inbox`]), so what
//! is buffered stays bounded instead of growing with every request answered into memory.
//! The outbox also keeps a stall clock: how long it has had something to write without
//! the client taking a byte. A client that closed its stdin and has not read for
//! [`GONE_AFTER`] (or whose stdout is broken) is gone: the outbox is abandoned, every
//! write waiting on it fails at once, and the surface stops as on a signal instead of
//! waiting forever on a pipe nobody reads.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::sync::lock;

/// Lines waiting for stdout above which the surfaces stop reading requests.
pub(crate) const HIGH_WATER: usize = 128;
/// Reading resumes once the backlog is down to this.
pub(crate) const LOW_WATER: usize = HIGH_WATER / 2;
/// With stdin closed, a client that has not read for this long is taken as gone.
pub(crate) const GONE_AFTER: Duration = Duration::from_secs(5);
/// How often, after stdin closed, the reader looks whether anybody still reads stdout
/// (the kernel raises no event we could wait for when a pipe's reader goes).
pub(crate) const POLL: Duration = Duration::from_millis(20);
/// Bytes gathered into one write when lines are queued faster than they drain.
const BATCH_BYTES: usize = 256 * 1024;

/// Why a line could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    /// The client is gone (stdout broken, or closed stdin and stopped reading).
    #[error("the client is gone: {0}")]
    Gone(String),
}

/// One queued line and who waits for it to be written.
struct Item {
    line: String,
    done: oneshot::Sender<Result<(), OutboxError>>,
}

/// What the writer and every handle share.
struct Shared {
    /// Lines queued and not yet written.
    backlog: AtomicUsize,
    /// When the client last took bytes (or the backlog last became non-empty).
    since: Mutex<Instant>,
    /// Set once, with the reason, when the client is gone.
    gone: watch::Sender<Option<String>>,
    /// Woken when the backlog falls to [`LOW_WATER`]: a paused reader goes on at once,
    /// without polling.
    drained: Notify,
}

/// Cloneable handle to the stdout writer.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Item>,
    shared: Arc<Shared>,
}

impl Outbox {
    /// Starts the writer task over `writer`.
    pub fn spawn<W>(writer: W) -> (Outbox, JoinHandle<std::io::Result<()>>)
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            backlog: AtomicUsize::new(0),
            since: Mutex::new(Instant::now()),
            gone: watch::Sender::new(None),
            drained: Notify::new(),
        });
        let task = tokio::spawn(write_lines(writer, rx, shared.clone()));
        (Outbox { tx, shared }, task)
    }

    /// Queues `line` now (lines go out in the order of these calls); the future resolves
    /// once it was written and flushed. Dropping the future does not unqueue the line.
    pub fn push(&self, line: String) -> impl Future<Output = Result<(), OutboxError>> + use<> {
        let (done, written) = oneshot::channel();
        let queued = match self.gone_reason() {
            Some(reason) => Err(OutboxError::Gone(reason)),
            None => {
                if self.shared.backlog.fetch_add(1, Ordering::SeqCst) == 0 {
                    *lock(&self.shared.since) = Instant::now();
                }
                self.tx
                    .send(Item { line, done })
                    .map_err(|_| OutboxError::Gone("the writer has stopped".into()))
            }
        };
        let mut gone = self.shared.gone.subscribe();
        async move {
            queued?;
            tokio::select! {
                written = written => written
                    .unwrap_or_else(|_| Err(OutboxError::Gone("the writer has stopped".into()))),
                reason = gone.wait_for(Option::is_some) => {
                    let reason = reason.ok().and_then(|r| r.clone()).unwrap_or_default();
                    Err(OutboxError::Gone(reason))
                }
            }
        }
    }

    /// Lines queued and not yet written.
    pub fn backlog(&self) -> usize {
        self.shared.backlog.load(Ordering::SeqCst)
    }

    /// Resolves once the backlog is down to [`LOW_WATER`] (at once if it is).
    pub async fn drained(&self) {
        loop {
            let notified = self.shared.drained.notified();
            tokio::pin!(notified);
            // Registered before the check: a drain between the two still wakes us.
            notified.as_mut().enable();
            if self.backlog() <= LOW_WATER {
                return;
            }
            notified.await;
        }
    }

    /// How long the outbox has had something to write without the client taking a byte.
    pub fn stalled_for(&self) -> Duration {
        if self.backlog() == 0 {
            return Duration::ZERO;
        }
        lock(&self.shared.since).elapsed()
    }

    /// Declares the client gone: waiting and future writes fail at once.
    pub fn abandon(&self, reason: &str) {
        self.shared.gone.send_if_modified(|gone| {
            if gone.is_some() {
                return false;
            }
            tracing::warn!(reason, "giving up on the client's stdout");
            *gone = Some(reason.to_string());
            true
        });
    }

    /// Why the client is gone, once it is.
    pub fn gone_reason(&self) -> Option<String> {
        self.shared.gone.borrow().clone()
    }

    /// Resolves once the client is gone, with the reason.
    pub async fn gone(&self) -> String {
        let mut gone = self.shared.gone.subscribe();
        // The guard the wait returns is let go of here, before anything else is awaited
        // (it is not `Send`, and the surfaces' futures must be).
        let reason = gone
            .wait_for(Option::is_some)
            .await
            .ok()
            .map(|reason| reason.clone().unwrap_or_default());
        match reason {
            Some(reason) => reason,
            // The sender lives in `shared`, which `self` holds: never closed.
            None => std::future::pending().await,
        }
    }

    /// After stdin closed: abandons the client once the output has not moved for
    /// [`GONE_AFTER`]. Returns when the client is gone; run it beside the final answers.
    pub async fn abandon_when_stalled(&self) -> String {
        loop {
            if let Some(reason) = self.gone_reason() {
                return reason;
            }
            let stalled = self.stalled_for();
            if stalled >= GONE_AFTER {
                self.abandon("stdin is closed and stdout has not been read for 5 s");
                continue;
            }
            // Nothing can be due before the stall clock could reach its limit.
            tokio::select! {
                _ = self.gone() => {}
                () = tokio::time::sleep(GONE_AFTER - stalled) => {}
            }
        }
    }

    /// Waits until everything queued so far is written, then stops the writer; returns
    /// at once if the client is (or becomes) gone: a pipe nobody reads must not hold up
    /// the exit.
    pub async fn finish(&self, writer: JoinHandle<std::io::Result<()>>) {
        // An empty line is a marker, not output: once it is acknowledged, all before it is out.
        let marker = self.push(String::new());
        tokio::select! {
            written = marker => {
                if let Err(err) = written {
                    tracing::debug!(%err, "output not flushed");
                }
            }
            _ = self.gone() => {}
        }
        writer.abort();
    }
}

/// The writer task: gathers queued lines, writes them, flushes, then acknowledges.
async fn write_lines<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut items: mpsc::UnboundedReceiver<Item>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut waiting = Vec::new();
    while let Some(first) = items.recv().await {
        add(&mut buf, &mut waiting, first);
        while buf.len() < BATCH_BYTES {
            match items.try_recv() {
                Ok(item) => add(&mut buf, &mut waiting, item),
                Err(_) => break,
            }
        }
        let written = write_tracking(&mut writer, &buf, &shared).await;
        buf.clear();
        let before = shared.backlog.fetch_sub(waiting.len(), Ordering::SeqCst);
        // Only a write can bring the backlog down, so this is where it crosses.
        if before > LOW_WATER && before - waiting.len() <= LOW_WATER {
            shared.drained.notify_waiters();
        }
        let outcome = written.as_ref().map(|_| ()).map_err(|err| {
            let reason = format!("writing stdout failed: {err}");
            OutboxError::Gone(reason)
        });
        if let Err(OutboxError::Gone(reason)) = &outcome {
            let _ = shared.gone.send_replace(Some(reason.clone()));
        }
        for done in waiting.drain(..) {
            let _ = done.send(outcome.clone());
        }
        written?;
    }
    Ok(())
}

fn add(buf: &mut Vec<u8>, waiting: &mut Vec<oneshot::Sender<Result<(), OutboxError>>>, item: Item) {
    // An empty line is a flush marker (see `Outbox::flush`), not output.
    if !item.line.is_empty() {
        buf.extend_from_slice(item.line.as_bytes());
        buf.push(b'\n');
    }
    waiting.push(item.done);
}

/// Writes all of `buf`, moving the stall clock on every write that took bytes.
async fn write_tracking<W: AsyncWrite + Unpin>(
    writer: &mut W,
    mut buf: &[u8],
    shared: &Shared,
) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = writer.write(buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        progressed(shared);
        buf = &buf[n..];
    }
    writer.flush().await?;
    progressed(shared);
    Ok(())
}

/// The client took bytes: restart the stall clock.
fn progressed(shared: &Shared) {
    *lock(&shared.since) = Instant::now();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn lines_go_out_in_push_order_and_are_acknowledged_once_written() {
        let (writer, mut reader) = tokio::io::duplex(1024);
        let (out, _task) = Outbox::spawn(writer);
        let pushes: Vec<_> = ["a", "b", "c"].map(|l| out.push(l.into())).into();
        for push in pushes {
            assert_eq!(push.await, Ok(()));
        }
        assert_eq!(out.backlog(), 0);
        let mut buf = [0u8; 6];
        reader.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"a\nb\nc\n");
    }

    #[tokio::test]
    async fn a_reader_that_stops_leaves_a_backlog_and_a_stall_clock_then_abandon_frees_writers() {
        let (writer, mut reader) = tokio::io::duplex(64);
        let (out, _task) = Outbox::spawn(writer);
        let waiting: Vec<_> = (0..10).map(|i| out.push(format!("{i:>100}"))).collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(out.backlog(), 10);
        assert!(out.stalled_for() >= Duration::from_millis(40));
        // Reading moves the clock back.
        let mut buf = [0u8; 32];
        reader.read_exact(&mut buf).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(out.stalled_for() < Duration::from_millis(40));

        out.abandon("test");
        for push in waiting {
            let done = tokio::time::timeout(Duration::from_secs(1), push).await;
            assert_eq!(done, Ok(Err(OutboxError::Gone("test".into()))));
        }
        assert!(out.push("later".into()).await.is_err());
        assert_eq!(out.gone().await, "test");
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_reader_is_woken_when_the_backlog_drains_not_by_a_clock() {
        let (writer, mut reader) = tokio::io::duplex(64);
        let (out, _task) = Outbox::spawn(writer);
        let _queued: Vec<_> = (0..HIGH_WATER)
            .map(|i| out.push(format!("{i:>100}")))
            .collect();
        let drained = out.drained();
        tokio::pin!(drained);
        // However long the clock runs, a backlog nobody reads wakes nobody.
        let waited = tokio::time::timeout(Duration::from_secs(3600), drained.as_mut()).await;
        assert!(waited.is_err(), "woken with {} lines queued", out.backlog());
        let drain = async {
            let mut buf = vec![0u8; 101 * HIGH_WATER];
            reader.read_exact(&mut buf).await.unwrap();
            reader
        };
        let both = async { tokio::join!(drain, drained) };
        let woken = tokio::time::timeout(Duration::from_secs(3600), both).await;
        assert!(woken.is_ok(), "not woken by the drain");
        assert!(out.backlog() <= LOW_WATER);
    }

    #[tokio::test]
    async fn a_broken_stdout_means_the_client_is_gone() {
        let (writer, reader) = tokio::io::duplex(64);
        drop(reader);
        let (out, task) = Outbox::spawn(writer);
        assert!(out.push("x".into()).await.is_err());
        assert!(
            out.gone_reason()
                .is_some_and(|r| r.contains("writing stdout failed"))
        );
        assert!(task.await.unwrap().is_err());
    }
}
