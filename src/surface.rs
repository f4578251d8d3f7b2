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

/// Reads up to the first non-blank line, decides the surface, and returns a reader that
/// still yields every byte that was read (the first line included).
pub async fn detect<R>(
    reader: R,
    max_line: usize,
) -> std::io::Result<(Surface, BufReader<impl AsyncRead + Unpin + Send + 'static>)>
where
    R: AsyncBufRead + Unpin + Send + 'static,
{
    let mut reader = reader;
    let mut seen = Vec::new();
    let surface = loop {
        let frame = LineReader::new(&mut reader, max_line).next_frame().await?;
        match frame {
            Frame::Line(line) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Frame::Line(line) => {
                let surface = if is_mcp_opening(&line) {
                    Surface::Mcp
                } else {
                    Surface::Plain
                };
                seen = line;
                seen.push(b'\n');
                break surface;
            }
            // Too long or empty input: the plain surface reports it as usual.
            Frame::TooLong { len } => {
                // The line is gone; tell the plain surface by replaying a placeholder of the same size class.
                seen = too_long_marker(len, max_line);
                break Surface::Plain;
            }
            Frame::Eof => break Surface::Plain,
        }
    };
    let replay = std::io::Cursor::new(seen).chain(reader);
    Ok((surface, BufReader::new(replay)))
}

/// A line just over the limit, so the plain surface answers "request too large".
fn too_long_marker(_len: usize, max_line: usize) -> Vec<u8> {
    let mut marker = vec![b' '; max_line + 1];
    marker.push(b'\n');
    marker
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
        let (surface, mut rest) = detect(BufReader::new(input), 1024).await.unwrap();
        assert_eq!(surface, Surface::Plain);
        let mut all = String::new();
        rest.read_to_string(&mut all).await.unwrap();
        assert_eq!(
            all,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\nsecond\n"
        );
    }
}
