//! Draining the child's stderr: continuously (a full pipe would block the child), into
//! tracing, keeping a short tail for error messages and `status`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::BufReader;
use tokio::process::ChildStderr;

use crate::lines::{Frame, LineReader};
use crate::redact::redact;
use crate::text::truncate_chars;

/// Lines kept, and the longest line kept (longer ones are cut).
const TAIL_LINES: usize = 20;
const TAIL_LINE_CHARS: usize = 500;
/// Lines are framed with this limit; longer ones are noted by length only.
const MAX_STDERR_LINE: usize = 64 * 1024;

/// The last lines the child wrote to stderr; cloneable, shared with the drain task.
#[derive(Clone, Default)]
pub(crate) struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl StderrTail {
    pub(crate) fn snapshot(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    fn push(&self, line: String) {
        let mut lines = self.lock();
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        crate::sync::lock(&self.lines)
    }
}

/// Reads `stderr` to its end, logging each line and keeping the tail.
pub(crate) async fn drain(stderr: ChildStderr, pid: u32, tail: StderrTail) {
    let mut reader = LineReader::new(BufReader::new(stderr), MAX_STDERR_LINE);
    loop {
        let line = match reader.next_frame().await {
            Ok(Frame::Line(bytes)) => redact(&String::from_utf8_lossy(&bytes)).into_owned(),
            Ok(Frame::TooLong { len }) => format!("[stderr line of {len} bytes omitted]"),
            Ok(Frame::Eof) => return,
            Err(err) => {
                tracing::debug!(pid, %err, "child stderr read failed");
                return;
            }
        };
        tracing::info!(target: "claude_coded::child::stderr", pid, "{line}");
        tail.push(truncate_chars(line, TAIL_LINE_CHARS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let tail = StderrTail::default();
        for i in 0..30 {
            tail.push(format!("line {i}"));
        }
        let lines = tail.snapshot();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line 10");
    }
}
