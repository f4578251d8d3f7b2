//! Choosing the surface: MCP, ACP or plain JSON-RPC, from the first message (or a flag).

use clap::ValueEnum;
use serde::Serialize;
use serde_json::Value;
use std::os::fd::RawFd;

use tokio::io::AsyncBufRead;

use crate::inbox::Input;
use crate::lines::{Frame, LineReader};

/// Which protocol to speak on stdio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    /// Decide from the first message: an `initialize` with an integer `protocolVersion`
    /// means ACP; another `initialize`, `server/discover` or an MCP `_meta` protocol
    /// version means MCP; anything else plain.
    Auto,
    /// The plain methods `ask`, `status`, `events`, `ping`, no handshake.
    Plain,
    /// Model Context Protocol server with tools `ask`, `wait`, `cancel`, `status`, `sessions`, `events`.
    Mcp,
    /// Agent Client Protocol (v1) agent: sessions, prompts and their updates, for editors
    /// and orchestrators that register agents.
    Acp,
}

/// Does this first line open an ACP connection (`initialize` with an integer
/// `protocolVersion`, where MCP's is a date string)?
pub(crate) fn is_acp_opening(line: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<Value>(line) else {
        return false;
    };
    value.get("method").and_then(Value::as_str) == Some("initialize")
        && value
            .pointer("/params/protocolVersion")
            .is_some_and(Value::is_u64)
}

/// Does this first line open an MCP session?
pub(crate) fn is_mcp_opening(line: &[u8]) -> bool {
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
pub(crate) struct Opening<R> {
    pub first: Frame,
    pub rest: R,
}

impl<R> Opening<R> {
    /// The input for a surface: the first frame, then the rest of the stream read from
    /// `fd` (`None` for an in-process stream).
    pub(crate) fn into_input(self, fd: Option<RawFd>) -> Input<R> {
        Input {
            first: Some(self.first),
            reader: self.rest,
            hangup_fd: fd,
            output_fd: None,
        }
    }
}

/// Reads up to the first non-blank line and decides the surface from it.
pub(crate) async fn detect<R>(
    mut reader: R,
    max_line: usize,
) -> std::io::Result<(Surface, Opening<R>)>
where
    R: AsyncBufRead + Unpin + Send + 'static,
{
    loop {
        let frame = LineReader::new(&mut reader, max_line).next_frame().await?;
        let surface = match &frame {
            Frame::Line(line) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Frame::Line(line) if is_acp_opening(line) => Surface::Acp,
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

    #[test]
    fn an_initialize_with_an_integer_version_is_acp() {
        let acp = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":1,"clientCapabilities":{}}}"#;
        let mcp = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#;
        assert!(is_acp_opening(acp));
        assert!(!is_acp_opening(mcp));
        assert!(is_mcp_opening(mcp));
    }

    #[tokio::test]
    async fn hands_over_the_first_line_and_the_rest_unread() {
        use tokio::io::{AsyncReadExt, BufReader};
        let input: &[u8] = b"\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\nsecond\n";
        let (surface, opening) = detect(BufReader::new(input), 1024).await.unwrap();
        assert_eq!(surface, Surface::Plain);
        let mut input = opening.into_input(None);
        assert_eq!(
            input.first,
            Some(Frame::Line(
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}".to_vec()
            ))
        );
        let mut rest = String::new();
        input.reader.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "second\n");
    }
}
