//! The MCP surface (tools `ask`, `status`, `events`), built on rmcp.

use std::future::Future;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::daemon::Daemon;

/// Serves MCP on `reader`/`writer` until EOF or `shutdown`, then stops the daemon.
pub async fn run<R, W>(
    _reader: R,
    _writer: W,
    daemon: Daemon,
    shutdown: impl Future<Output = &'static str>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Filled in by the MCP work (issue 3).
    let reason = shutdown.await;
    daemon.shutdown(reason).await;
    Err(std::io::Error::other("the MCP surface is not built yet"))
}
