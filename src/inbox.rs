//! Reading requests from stdin, for both surfaces: framed lines from a task of its own,
//! paused while the client is not reading what we write.
//!
//! Each request read is eventually answered into the [`Outbox`], so a client that keeps
//! writing requests but stops reading stdout would otherwise grow memory without bound.
//! The reader therefore stops taking lines while the outbox is over its high-water mark
//! and goes on once it is down to half. While paused it still notices a client that
//! closed its end of stdin (the pipe reports a hang-up even with unread requests in it):
//! if that client has not read for [`GONE_AFTER`] either, it is gone.

use std::os::fd::RawFd;

use tokio::io::AsyncBufRead;
use tokio::sync::mpsc;

use crate::lines::{Frame, LineReader};
use crate::outbox::{GONE_AFTER, HIGH_WATER, LOW_WATER, Outbox, POLL};

/// Frames read ahead of the surface's loop.
const READ_AHEAD: usize = 64;

/// Where requests come from.
pub struct Input<R> {
    /// A frame already read (by surface detection), served first.
    pub first: Option<Frame>,
    /// The rest of the stream.
    pub reader: R,
    /// The descriptor behind `reader`, to notice a hang-up while reading is paused;
    /// `None` for in-process streams.
    pub hangup_fd: Option<RawFd>,
    /// The descriptor our answers go to, watched once input ends: a client killed
    /// mid-ask closes both, and a turn nobody can receive is not left running until it
    /// writes its answer. `None` for in-process streams and socket clients (whose
    /// connection says when it closes).
    pub output_fd: Option<RawFd>,
}

impl<R> Input<R> {
    /// An in-process stream with nothing read yet.
    pub fn new(reader: R) -> Input<R> {
        Input {
            first: None,
            reader,
            hangup_fd: None,
            output_fd: None,
        }
    }

    /// The same input, with the descriptor its answers go to (see `output_fd`).
    pub fn answering_to(self, output_fd: RawFd) -> Input<R> {
        Input {
            output_fd: Some(output_fd),
            ..self
        }
    }
}

/// Reads frames in a task of its own (framing is not cancel-safe, the channel is).
/// The channel ends with [`Frame::Eof`], or closes early when the client is gone.
pub fn spawn_reader<R>(input: Input<R>, max: usize, outbox: Outbox) -> mpsc::Receiver<Frame>
where
    R: AsyncBufRead + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        let output_fd = input.output_fd;
        if read_frames(input, max, &outbox, &tx).await
            && let Some(fd) = output_fd
        {
            watch_output(fd, &outbox).await;
        }
    });
    rx
}

/// Sends every frame of `input` to `tx`; returns whether input ended (EOF), rather than
/// the client being gone or the receiver dropped.
async fn read_frames<R>(
    input: Input<R>,
    max: usize,
    outbox: &Outbox,
    tx: &mpsc::Sender<Frame>,
) -> bool
where
    R: AsyncBufRead + Unpin + Send + 'static,
{
    if let Some(frame) = input.first {
        let eof = frame == Frame::Eof;
        if tx.send(frame).await.is_err() {
            return false;
        }
        if eof {
            return true;
        }
    }
    let mut lines = LineReader::new(input.reader, max);
    loop {
        if !wait_for_room(outbox, input.hangup_fd).await {
            return false;
        }
        let frame = lines.next_frame().await.unwrap_or_else(|err| {
            tracing::warn!(%err, "reading stdin failed; treating it as closed");
            Frame::Eof
        });
        let eof = frame == Frame::Eof;
        if tx.send(frame).await.is_err() {
            return false;
        }
        if eof {
            return true;
        }
    }
}

/// After input ended: gives up on the client as soon as nobody can read `fd` any more
/// (a killed host), so the surfaces stop its turns at once instead of when the answer
/// fails to write. Runs only between EOF and the end of the session.
async fn watch_output(fd: RawFd, outbox: &Outbox) {
    while outbox.gone_reason().is_none() {
        if crate::platform::peer_gone(fd) {
            outbox.abandon("stdin is closed and nobody reads stdout: the client is gone");
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Returns `true` when the next request may be read, `false` when the client is gone.
pub async fn wait_for_room(outbox: &Outbox, hangup_fd: Option<RawFd>) -> bool {
    if outbox.backlog() < HIGH_WATER {
        return outbox.gone_reason().is_none();
    }
    tracing::debug!(
        backlog = outbox.backlog(),
        "the client is not reading stdout; pausing stdin"
    );
    loop {
        if outbox.gone_reason().is_some() {
            return false;
        }
        if outbox.backlog() <= LOW_WATER {
            tracing::debug!("stdout drained; reading stdin again");
            return true;
        }
        let stalled = outbox.stalled_for();
        if stalled >= GONE_AFTER && hangup_fd.is_some_and(hung_up) {
            outbox.abandon("stdin is closed and stdout has not been read for 5 s");
            return false;
        }
        // Woken by the drain or the client's going; a client that may have hung up is
        // looked at again once its stall could have reached the limit (then every
        // `POLL`, while it is stalled but its stdin still open).
        let recheck = GONE_AFTER.saturating_sub(stalled).max(POLL);
        tokio::select! {
            () = outbox.drained() => {}
            _ = outbox.gone() => {}
            () = tokio::time::sleep(recheck), if hangup_fd.is_some() => {}
        }
    }
}

/// Has the writer of `fd` closed its end? True for a pipe whose writer is gone and for a
/// socket whose peer shut down writing, even with unread data still in it.
pub fn hung_up(fd: RawFd) -> bool {
    crate::platform::peer_closed(fd)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::net::UnixStream;

    /// A pipe as (read end, write end).
    pub(crate) fn pipe() -> (File, File) {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) fills the two-element array it is given.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both descriptors were just opened and are owned by nothing else.
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }

    #[test]
    fn a_pipe_hangs_up_when_its_writer_closes_even_with_data_unread() {
        let (reader, mut writer) = pipe();
        assert!(!hung_up(reader.as_raw_fd()));
        writer.write_all(b"{\"unread\":true}\n").unwrap();
        assert!(!hung_up(reader.as_raw_fd()));
        drop(writer);
        assert!(hung_up(reader.as_raw_fd()));
    }

    #[test]
    fn a_socket_hangs_up_when_its_peer_stops_writing() {
        let (ours, peer) = UnixStream::pair().unwrap();
        assert!(!hung_up(ours.as_raw_fd()));
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(hung_up(ours.as_raw_fd()));
    }
}
