//! The one task that owns stdout: whole lines, in the order they were queued.

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

/// Writes each line plus `\n`, flushing whenever the queue runs dry.
pub async fn write_lines<W: AsyncWrite + Unpin>(
    writer: W,
    mut lines: mpsc::Receiver<String>,
) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, writer);
    while let Some(line) = lines.recv().await {
        out.write_all(line.as_bytes()).await?;
        out.write_all(b"\n").await?;
        if lines.is_empty() {
            out.flush().await?;
        }
    }
    out.flush().await
}
