//! Signals that stop the bridge.
//!
//! A stop signal means the host wants the server gone now: Claude Code sends SIGINT and,
//! 100 ms later, SIGTERM, and logs the first as failed. So a signal stops promptly (see
//! [`is_signal`]); stdin EOF lets the child finish and exit on its own.

use tokio::signal::unix::{SignalKind, signal as listen};

/// Resolves with the signal's name on SIGTERM, SIGINT or SIGHUP.
pub(crate) async fn signal() -> &'static str {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        listen(SignalKind::terminate()),
        listen(SignalKind::interrupt()),
        listen(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot listen for signals; only stdin EOF will stop the bridge");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => SIGNALS[0],
        _ = int.recv() => SIGNALS[1],
        _ = hup.recv() => SIGNALS[2],
    }
}

/// The stop reasons [`signal`] resolves with.
const SIGNALS: [&str; 3] = ["SIGTERM", "SIGINT", "SIGHUP"];

/// Whether a stop reason is a signal, which asks for a prompt stop.
pub(crate) fn is_signal(reason: &str) -> bool {
    SIGNALS.contains(&reason)
}
