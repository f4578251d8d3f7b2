//! Our own stdin and stdout for a surface, without a thread in between when they are
//! pipes (as every host that runs us as a server makes them).
//!
//! `tokio::io::stdin()`/`stdout()` hand each read and write to the blocking pool: every
//! request read and every batch of answers written is a hop to another thread and back
//! (two wake-ups), paid by each `ask`, `status` and event line. A pipe can be polled like
//! a socket instead: it is set non-blocking and read and written from the runtime's own
//! threads. A terminal or a file keeps tokio's blocking handles: making a terminal
//! non-blocking would change it for the shell that shares it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

/// What a surface reads requests from.
pub(super) type Input = Box<dyn AsyncRead + Unpin + Send>;
/// What a surface writes its lines to.
pub(super) type Output = Box<dyn AsyncWrite + Unpin + Send>;

/// Our stdin: a pipe polled by the runtime, else tokio's handle.
pub(super) fn input() -> Input {
    match own(std::io::stdin().as_fd()).and_then(pipe::Receiver::from_owned_fd) {
        Ok(receiver) => Box::new(receiver),
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

/// Our stdout: a pipe polled by the runtime, else tokio's handle. Not when stderr is the
/// same pipe (`2>&1`): the log's writer blocks on it and must not find it non-blocking.
pub(super) fn output() -> Output {
    let stdout = std::io::stdout();
    if same_file(stdout.as_fd(), std::io::stderr().as_fd()) {
        return Box::new(tokio::io::stdout());
    }
    match own(stdout.as_fd()).and_then(pipe::Sender::from_owned_fd) {
        Ok(sender) => Box::new(sender),
        Err(_) => Box::new(tokio::io::stdout()),
    }
}

/// A descriptor of our own for `fd`'s file: closing it leaves the standard one open.
fn own(fd: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

/// Whether two descriptors are the same file (device and inode).
fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    let id = |fd: BorrowedFd<'_>| {
        let file = std::fs::File::from(own(fd).ok()?);
        let meta = file.metadata().ok()?;
        Some((meta.dev(), meta.ino()))
    };
    matches!((id(a), id(b)), (Some(x), Some(y)) if x == y)
}
