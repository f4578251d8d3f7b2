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

/// Reads lines of at most `max` bytes.
pub struct LineReader<R> {
    reader: R,
    max: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(reader: R, max: usize) -> Self {
        LineReader { reader, max }
    }

    /// The next frame. Cancel-safe only between frames: do not drop a pending call.
    pub async fn next_frame(&mut self) -> std::io::Result<Frame> {
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
    buf.iter().position(|b| *b == b'\n')
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
