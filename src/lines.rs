//! Newline framing with a size limit, for our stdin and the child's stdout alike.
//!
//! A line over the limit is not kept in memory: its bytes are skipped up to the next
//! newline and the caller learns its length, so one huge line costs no more memory
//! than the limit and the stream stays usable after it.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One framed item.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its `\n` (and without a trailing `\r`).
    Line(Vec<u8>),
    /// A line longer than the limit; `len` is its full length in bytes.
    TooLong { len: usize },
    /// End of stream. A last line without a newline is returned as `Line` first.
    Eof,
}

/// Reads lines of at most `max` bytes (a trailing `\r` counts toward the limit).
pub(crate) struct LineReader<R> {
    reader: R,
    max: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub(crate) fn new(reader: R, max: usize) -> Self {
        LineReader { reader, max }
    }

    /// The reader, with what it buffered beyond the last frame.
    pub(crate) fn into_inner(self) -> R {
        self.reader
    }

    /// The next frame. Cancel-safe only between frames: do not drop a pending call.
    pub(crate) async fn next_frame(&mut self) -> std::io::Result<Frame> {
        let mut line = Vec::new();
        let mut len = 0usize;
        loop {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                return Ok(match (len, line.is_empty()) {
                    (0, _) => Frame::Eof,
                    (_, false) => Frame::Line(trim_cr(line)),
                    (_, true) => Frame::TooLong { len },
                });
            }
            let (chunk, found) = match memchr_newline(buf) {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            len += chunk.len();
            if len <= self.max {
                line.extend_from_slice(chunk);
            } else if !line.is_empty() {
                // Crossed the limit: stop keeping bytes.
                line = Vec::new();
            }
            let consumed = found.unwrap_or(buf.len());
            self.reader.consume(consumed);
            if found.is_some() {
                return Ok(if len > self.max {
                    Frame::TooLong { len }
                } else {
                    Frame::Line(trim_cr(line))
                });
            }
        }
    }
}

fn memchr_newline(buf: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', buf)
}

fn trim_cr(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    async fn frames(input: &[u8], max: usize, buf: usize) -> Vec<Frame> {
        let mut reader = LineReader::new(BufReader::with_capacity(buf, input), max);
        let mut out = Vec::new();
        loop {
            let frame = reader.next_frame().await.unwrap();
            let eof = frame == Frame::Eof;
            out.push(frame);
            if eof {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn splits_lines_and_keeps_last_unterminated() {
        let got = frames(b"a\r\nbb\n\nccc", 10, 2).await;
        assert_eq!(
            got,
            vec![
                Frame::Line(b"a".to_vec()),
                Frame::Line(b"bb".to_vec()),
                Frame::Line(Vec::new()),
                Frame::Line(b"ccc".to_vec()),
                Frame::Eof
            ]
        );
    }

    #[tokio::test]
    async fn too_long_lines_are_skipped_and_reading_goes_on() {
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\nok\n");
        input.extend_from_slice(&[b'y'; 50]);
        let got = frames(&input, 10, 7).await;
        assert_eq!(
            got,
            vec![
                Frame::TooLong { len: 100 },
                Frame::Line(b"ok".to_vec()),
                Frame::TooLong { len: 50 },
                Frame::Eof
            ]
        );
    }

    #[tokio::test]
    async fn exactly_the_limit_is_accepted() {
        let got = frames(b"12345\n123456\n", 5, 3).await;
        assert_eq!(
            got,
            vec![
                Frame::Line(b"12345".to_vec()),
                Frame::TooLong { len: 6 },
                Frame::Eof
            ]
        );
    }
}

/// Properties over arbitrary bytes, chunk boundaries and limits, against a plain model:
/// split on `\n`, a last piece without newline still counts, pieces over the limit are
/// reported by length only. Matching the model frame for frame means the frames
/// reassemble the input exactly (lines joined with `\n`, skipped lengths included) and
/// that no returned line is ever longer than the limit.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, ReadBuf};

    /// Hands the input out in the given pieces, so a line can be cut anywhere.
    struct Chunked {
        chunks: Vec<Vec<u8>>,
        index: usize,
        offset: usize,
    }

    impl AsyncRead for Chunked {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            unreachable!("LineReader only uses the AsyncBufRead side")
        }
    }

    impl AsyncBufRead for Chunked {
        fn poll_fill_buf(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<std::io::Result<&[u8]>> {
            let this = self.get_mut();
            while this.index < this.chunks.len() && this.offset == this.chunks[this.index].len() {
                this.index += 1;
                this.offset = 0;
            }
            Poll::Ready(Ok(match this.chunks.get(this.index) {
                Some(chunk) => &chunk[this.offset..],
                None => &[],
            }))
        }

        fn consume(self: Pin<&mut Self>, amt: usize) {
            self.get_mut().offset += amt;
        }
    }

    fn cut(input: &[u8], sizes: &[usize]) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        let mut rest = input;
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (head, tail) = rest.split_at((*size).min(rest.len()));
            chunks.push(head.to_vec());
            rest = tail;
        }
        chunks
    }

    fn model(input: &[u8], max: usize) -> Vec<Frame> {
        let mut pieces: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
        // `split` always yields a last piece: empty when the input ends with `\n`.
        let last = pieces.pop().unwrap_or_default();
        if !last.is_empty() {
            pieces.push(last);
        }
        let mut frames: Vec<Frame> = pieces
            .into_iter()
            .map(|piece| {
                if piece.len() > max {
                    Frame::TooLong { len: piece.len() }
                } else {
                    Frame::Line(trim_cr(piece.to_vec()))
                }
            })
            .collect();
        frames.push(Frame::Eof);
        frames
    }

    /// Runs a future whose reader is always ready: no runtime needed, nothing to wait for.
    fn ready<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("an always-ready reader left the line reader pending"),
        }
    }

    fn read_all<R: AsyncBufRead + Unpin>(source: R, max: usize) -> Vec<Frame> {
        ready(async {
            let mut reader = LineReader::new(source, max);
            let mut frames = Vec::new();
            loop {
                let frame = reader.next_frame().await.unwrap();
                let eof = frame == Frame::Eof;
                frames.push(frame);
                if eof {
                    return frames;
                }
            }
        })
    }

    /// Bytes with many newlines and carriage returns, so lines are short and varied.
    /// (Mapped from plain bytes: a per-byte `prop_oneof` is slow to generate.)
    fn input() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..400).prop_map(|bytes| {
            bytes
                .into_iter()
                .map(|b| match b {
                    0..=39 => b'\n',
                    40..=59 => b'\r',
                    60..=159 => b'a' + b % 3,
                    _ => b,
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn frames_match_the_model_for_any_cuts_and_limit(
            input in input(),
            sizes in prop::collection::vec(1usize..48, 1..8),
            max in 0usize..64,
        ) {
            let source = Chunked { chunks: cut(&input, &sizes), index: 0, offset: 0 };
            let frames = read_all(source, max);
            prop_assert_eq!(&frames, &model(&input, max));
            for frame in &frames {
                if let Frame::Line(line) = frame {
                    prop_assert!(line.len() <= max);
                }
            }
        }

        #[test]
        fn after_eof_the_reader_keeps_saying_eof(input in input(), max in 0usize..64) {
            let mut reader = LineReader::new(&input[..], max);
            while ready(reader.next_frame()).unwrap() != Frame::Eof {}
            prop_assert_eq!(ready(reader.next_frame()).unwrap(), Frame::Eof);
        }
    }
}
