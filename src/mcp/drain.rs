//! Waiting for the client to read a turn's last notification before its response.
//!
//! The TypeScript SDK handles a notification one microtask after the read that brought
//! it, but a response at once; when both arrive in one read it drops the progress
//! handler first and reports the last `notifications/progress` as unknown. A fixed
//! pause is not enough on a loaded machine (the client may read late and find both),
//! so when stdout is a pipe or a Unix socket (Node gives its children socketpairs) the
//! response waits until the client has read everything written: its microtasks then
//! run before its next read brings the response.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use tokio::time::Instant;

use crate::platform::{self, OutputQueue};

/// The pause when the output cannot be looked into. (A pipe or socket needs none: rmcp
/// returns from a notification only after flushing it, so its bytes are in the kernel.)
const SETTLE: Duration = Duration::from_millis(5);
/// Longest wait for a client that does not read: its response is late, never lost.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// How often the pipe is looked at while the client has not read it.
const POLL: Duration = Duration::from_millis(1);

/// How the response to an `ask` waits for the notifications before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputDrain {
    /// Output is not a pipe we can look into: pause for [`SETTLE`].
    Settle,
    /// Output is this pipe: wait until the reader has emptied it.
    Pipe(RawFd),
    /// Output is this Unix stream socket: wait until the peer has read all we sent.
    Socket(RawFd),
}

impl OutputDrain {
    /// The drain for this process's stdout.
    pub fn stdout() -> OutputDrain {
        OutputDrain::for_fd(std::io::stdout().as_raw_fd())
    }

    /// `Pipe(fd)` for a pipe, `Socket(fd)` for a socket, when the OS tells how much of
    /// it the reader has not taken; else `Settle`.
    pub fn for_fd(fd: RawFd) -> OutputDrain {
        match platform::output_queue(fd) {
            Some(OutputQueue::Pipe) => OutputDrain::Pipe(fd),
            Some(OutputQueue::Socket) => OutputDrain::Socket(fd),
            None => OutputDrain::Settle,
        }
    }

    /// Returns once the last notification can be taken as read (or [`MAX_WAIT`]).
    pub async fn wait(self) {
        self.wait_at_most(MAX_WAIT).await;
    }

    /// Returns whether the output was seen empty within `max`.
    async fn wait_at_most(self, max: Duration) -> bool {
        match self {
            OutputDrain::Settle => {
                tokio::time::sleep(SETTLE).await;
                true
            }
            OutputDrain::Pipe(fd) => {
                until_read(max, || platform::unsent_bytes(fd, OutputQueue::Pipe)).await
            }
            OutputDrain::Socket(fd) => {
                until_read(max, || platform::unsent_bytes(fd, OutputQueue::Socket)).await
            }
        }
    }
}

/// Polls `unread` until it says 0 (or cannot say: `None`), or `max` has passed; returns
/// whether it was seen empty.
async fn until_read(max: Duration, mut unread: impl FnMut() -> Option<usize>) -> bool {
    let deadline = Instant::now() + max;
    loop {
        match unread() {
            Some(0) | None => return true,
            Some(_) if Instant::now() >= deadline => return false,
            Some(_) => tokio::time::sleep(POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_file_is_not_looked_into() {
        let path = std::env::temp_dir().join(format!("drain-test-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(OutputDrain::for_fd(file.as_raw_fd()), OutputDrain::Settle);
    }

    #[tokio::test]
    async fn waits_for_the_reader_and_gives_up_on_one_that_never_reads() {
        let unread = Arc::new(AtomicUsize::new(13));
        let count = || Some(unread.load(Ordering::SeqCst));
        assert!(!until_read(Duration::from_millis(30), count).await);

        let reader = Arc::clone(&unread);
        let late_reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            reader.store(0, Ordering::SeqCst);
        });
        let started = std::time::Instant::now();
        assert!(until_read(Duration::from_secs(5), count).await);
        assert!(started.elapsed() >= Duration::from_millis(40));
        late_reader.join().unwrap();
        assert!(
            until_read(Duration::ZERO, || None).await,
            "unknown counts as read"
        );
    }
}
