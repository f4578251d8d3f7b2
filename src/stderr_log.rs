//! The stderr log's one writer: a thread that owns stderr, fed by a bounded queue, so a
//! host that never reads our stderr cannot stop the server.
//!
//! Some hosts pipe a server's stderr and read it only in a debug mode (Gemini CLI). Once
//! the pipe's buffer (~64 KB) is full, a plain `write(2)` blocks, and a server that logs
//! from its request path stops answering. Here a log line is handed to the queue with
//! `try_send`: when the writer is behind (stderr is full), the line is dropped and counted
//! instead. The count is in `status` (`logLinesDropped`), and the next line that gets
//! through is preceded by one saying how many were lost.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Lines that may wait for stderr before new ones are dropped: a burst at debug level
/// fits, a reader that never comes does not make us hold more than this.
const QUEUE_LINES: usize = 256;
/// How long [`flush`] waits for the queue to empty when the process ends.
const FLUSH_LIMIT: Duration = Duration::from_millis(500);

/// Log lines dropped since the process started, because stderr was not being read.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Lines queued and not yet written (for [`flush`]).
static PENDING: AtomicU64 = AtomicU64::new(0);

/// The queue's sending end; the writer thread starts with the first line.
fn queue() -> Option<&'static Mutex<SyncSender<Vec<u8>>>> {
    static QUEUE: OnceLock<Option<Mutex<SyncSender<Vec<u8>>>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUE_LINES);
            std::thread::Builder::new()
                .name("stderr-log".into())
                .spawn(move || write_lines(&receiver, &mut std::io::stderr()))
                .ok()
                .map(|_| Mutex::new(sender))
        })
        .as_ref()
}

/// Hands one whole log line to the writer; never blocks. Without a writer thread (none
/// could be started), the line is written here, as before.
pub(crate) fn emit(line: Vec<u8>) {
    let Some(queue) = queue() else {
        // Nowhere to report a failed write of the log itself.
        let _ = std::io::stderr().write_all(&line);
        return;
    };
    let sender = match queue.lock() {
        Ok(sender) => sender.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    PENDING.fetch_add(1, Ordering::SeqCst);
    match sender.try_send(line) {
        Ok(()) => {}
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            PENDING.fetch_sub(1, Ordering::SeqCst);
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Log lines dropped so far because stderr was full.
pub(crate) fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Waits a little for queued lines to reach stderr, so the last words of a process that
/// is ending (its error, say) are not lost; gives up when stderr is not being read.
pub(crate) fn flush() {
    let start = Instant::now();
    while PENDING.load(Ordering::SeqCst) > 0 && start.elapsed() < FLUSH_LIMIT {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The writer thread: one line at a time, each after a note of what was dropped before it.
fn write_lines(lines: &Receiver<Vec<u8>>, out: &mut impl Write) {
    let mut reported = 0;
    while let Ok(line) = lines.recv() {
        let dropped = DROPPED.load(Ordering::Relaxed);
        if dropped > reported {
            let note = format!(
                "claude-coded: {} log line(s) dropped: stderr was not being read\n",
                dropped - reported
            );
            reported = dropped;
            // Nowhere to report a failed write of the log itself.
            let _ = out.write_all(note.as_bytes());
        }
        let _ = out.write_all(&line);
        PENDING.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_after_drops_is_preceded_by_their_count() {
        let (sender, receiver) = std::sync::mpsc::sync_channel(4);
        let before = DROPPED.load(Ordering::Relaxed);
        DROPPED.fetch_add(3, Ordering::Relaxed);
        PENDING.fetch_add(1, Ordering::SeqCst);
        sender.send(b"next\n".to_vec()).unwrap();
        drop(sender);
        let mut out = Vec::new();
        write_lines(&receiver, &mut out);
        let text = String::from_utf8(out).unwrap();
        let dropped = DROPPED.load(Ordering::Relaxed) - before;
        assert!(dropped >= 3);
        assert!(
            text.contains("log line(s) dropped: stderr was not being read\nnext\n"),
            "{text}"
        );
    }
}
