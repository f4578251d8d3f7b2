//! Our own stdin and stdout for a surface, without a thread in between when they are
//! pipes (as every host that runs us as a server makes them).
//!
//! `tokio::io::stdin()`/`stdout()` hand each read and write to the blocking pool: every
//! request read and every batch of answers written is a hop to another thread and back
//! (two wake-ups), paid by each `ask`, `status` and event line. A pipe can be polled like
//! a socket instead: it is set non-blocking and read and written from the runtime's own
//! threads. A terminal or a file keeps tokio's blocking handles: making a terminal
//! non-blocking would change it for the shell that shares it.
//!
//! Non-blocking is a flag of the pipe's open file, which other processes may share (a
//! script's next command writing to the same pipe, a wrapper that handed us its stdio):
//! it is cleared again when our handle is dropped, so nobody after us finds it set.
//! Our stdout's pipe is also grown (Linux) and left so: a bigger buffer changes nothing
//! for anyone else but how much may wait in it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;

/// The size our stdout's pipe is grown to. With the default 64 KiB, a turn that streams
/// fast (a long answer's partial messages) fills it between two reads of the client, and
/// each side then waits on the other a few lines at a time; at 1 MiB the writer runs
/// ahead and the reader takes larger reads (a partial-message flood: about a quarter
/// more lines a second to a client reading 1 MiB at a time, a tenth more in
/// `event_flood`). Kernel memory, one pipe per claude-coded, from a quota of 64 MiB per
/// user.
const OUTPUT_PIPE_BYTES: usize = 1 << 20;

/// What a surface reads requests from.
pub(crate) type Input = Box<dyn AsyncRead + Unpin + Send>;
/// What a surface writes its lines to.
pub(crate) type Output = Box<dyn AsyncWrite + Unpin + Send>;

/// Our stdin: a pipe polled by the runtime, else tokio's handle.
pub(crate) fn input() -> Input {
    let stdin = std::io::stdin();
    match own(stdin.as_fd()).and_then(pipe::Receiver::from_owned_fd) {
        Ok(receiver) => Box::new(Restoring::new(receiver, stdin.as_raw_fd())),
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

/// Our stdout: a pipe polled by the runtime, else tokio's handle. Not when stderr is the
/// same pipe (`2>&1`): the log's writer blocks on it and must not find it non-blocking.
pub(crate) fn output() -> Output {
    let stdout = std::io::stdout();
    if same_file(stdout.as_fd(), std::io::stderr().as_fd()) {
        return Box::new(tokio::io::stdout());
    }
    match own(stdout.as_fd()).and_then(pipe::Sender::from_owned_fd) {
        Ok(sender) => {
            super::grow_pipe(stdout.as_raw_fd(), OUTPUT_PIPE_BYTES);
            Box::new(Restoring::new(sender, stdout.as_raw_fd()))
        }
        Err(_) => Box::new(tokio::io::stdout()),
    }
}

/// A pipe handle that clears the open file's non-blocking flag when dropped (through
/// `fd`, the standard descriptor of the same open file, which stays open).
struct Restoring<T> {
    inner: T,
    fd: RawFd,
}

impl<T> Restoring<T> {
    fn new(inner: T, fd: RawFd) -> Restoring<T> {
        Restoring { inner, fd }
    }
}

impl<T> Drop for Restoring<T> {
    fn drop(&mut self) {
        set_blocking(self.fd);
    }
}

/// Clears `O_NONBLOCK` on `fd`'s open file.
pub(crate) fn set_blocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we keep open (0 or 1) reads and sets its status flags
    // only; no memory is passed.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

/// Whether `fd`'s open file is non-blocking.
#[cfg(test)]
fn is_nonblocking(fd: RawFd) -> bool {
    // SAFETY: as in `set_blocking`: the flags only.
    unsafe { libc::fcntl(fd, libc::F_GETFL) & libc::O_NONBLOCK != 0 }
}

impl<T: AsyncRead + Unpin> AsyncRead for Restoring<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Restoring<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pipe_made_non_blocking_is_blocking_again_once_the_handle_is_dropped() {
        let (read, write) = std::io::pipe().unwrap();
        let fd = write.as_raw_fd();
        let sender = pipe::Sender::from_owned_fd(own(write.as_fd()).unwrap()).unwrap();
        assert!(is_nonblocking(fd), "tokio made the open file non-blocking");
        let handle = Restoring::new(sender, fd);
        drop(handle);
        assert!(
            !is_nonblocking(fd),
            "still non-blocking after the handle went"
        );
        drop(read);
    }
}
