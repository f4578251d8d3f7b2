//! Signals that stop the bridge gracefully.

use tokio::signal::unix::{SignalKind, signal as listen};

/// Resolves with the signal's name on SIGTERM, SIGINT or SIGHUP.
pub async fn signal() -> &'static str {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        listen(SignalKind::terminate()),
        listen(SignalKind::interrupt()),
        listen(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot listen for signals; only stdin EOF will stop the bridge");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        _ = hup.recv() => "SIGHUP",
    }
}
