//! Choosing the surface: MCP or plain JSON-RPC, from the first message (or a flag).

use clap::ValueEnum;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, BufReader};

use crate::lines::{Frame, LineReader};

/// Which protocol to speak on stdio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    /// Decide from the first message: `initialize`, `server/discover` or an MCP `_meta`
    /// protocol version means MCP, anything else plain.
    Auto,
    /// The plain methods `ask`, `status`, `events`, `ping`, no handshake.
    Plain,
    /// Model Context Protocol server with tools `ask`, `status`, `events`.
    Mcp,
}

/// Does this first line open an MCP session?
pub fn is_mcp_opening(line: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<Value>(line) else {
        return false;
    };
    let method = value.get("method").and_then(Value::as_str);
    let meta_version = value
        .pointer("/params/_meta")
        .and_then(|m| m.get("io.modelcontextprotocol/protocolVersion"))
        .is_some();
    matches!(method, Some("initialize" | "server/discover")) || meta_version
}

/// What detection read: the first frame, and the reader positioned after it.
pub struct Opening<R> {
    pub first: Frame,
    pub rest: R,
}

impl<R: AsyncBufRead + Unpin + Send + 'static> Opening<R> {
    /// A reader that yields the first line again, then the rest (for rmcp's transport).
    pub fn into_reader(self) -> BufReader<impl AsyncRead + Unpin + Send + 'static> {
        let replay = match self.first {
            Frame::Line(mut line) => {
                line.push(b'\n');
                line
            }
            Frame::TooLong { .. } | Frame::Eof => Vec::new(),
        };
        BufReader::new(std::io::Cursor::new(replay).chain(self.rest))
    }
}

/// Reads up to the first non-blank line and decides the surface from it.
pub async fn detect<R>(mut reader: R, max_line: usize) -> std::io::Result<(Surface, Opening<R>)>
where
    R: AsyncBufRead + Unpin + Send + 'static,
{
    loop {
        let frame = LineReader::new(&mut reader, max_line).next_frame().await?;
        let surface = match &frame {
            Frame::Line(line) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Frame::Line(line) if is_mcp_opening(line) => Surface::Mcp,
            // Anything else, an oversized line or no input: the plain surface answers it.
            Frame::Line(_) | Frame::TooLong { .. } | Frame::Eof => Surface::Plain,
        };
        return Ok((
            surface,
            Opening {
                first: frame,
                rest: reader,
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_mcp_openings() {
        assert!(is_mcp_opening(
            br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#
        ));
        assert!(is_mcp_opening(
            br#"{"jsonrpc":"2.0","id":"p","method":"server/discover"}"#
        ));
        assert!(is_mcp_opening(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#
        ));
        assert!(!is_mcp_opening(
            br#"{"jsonrpc":"2.0","id":1,"method":"ask","params":{"prompt":"x"}}"#
        ));
        assert!(!is_mcp_opening(b"not json"));
    }

    #[tokio::test]
    async fn replays_everything_it_read() {
        let input: &[u8] = b"\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\nsecond\n";
        let (surface, opening) = detect(BufReader::new(input), 1024).await.unwrap();
        assert_eq!(surface, Surface::Plain);
        let mut rest = opening.into_reader();
        let mut all = String::new();
        rest.read_to_string(&mut all).await.unwrap();
        assert_eq!(
            all,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\nsecond\n"
        );
    }
}
