//! The listener's connections, bounded so that nobody who can reach the port (every
//! local user, on loopback) can take the daemon's resources:
//!
//! - **Descriptors.** At start the soft `RLIMIT_NOFILE` is raised to the hard limit, and
//!   HTTP may hold at most that many sockets less a reserve ([`Limits::for_process`]) for
//!   `daemon.sock` and its clients, the children's pipes and the state files; a connection
//!   beyond that is answered 503 and closed at once.
//! - **Timeouts.** A request's headers must arrive within [`HEADER_READ_TIMEOUT`] of the
//!   connection being ready for them, which also closes a keep-alive connection idle that
//!   long; a POST body must arrive within [`BODY_READ_TIMEOUT`] (see `super::read_body`).
//! - **Kinds.** WebSockets and MCP sessions have bounds of their own under the total,
//!   so idle WebSockets cannot starve `POST /rpc` (jsonrpsee's one default bound of 100
//!   counted both) nor MCP sessions everything else.
//!
//! HTTP/1.1 only: it is what the MCP and JSON-RPC clients speak over `http://`, and it
//! has the header timeout (an HTTP/2 connection would carry many streams past these bounds).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// How long a connection may take to send a request's headers once it may send one:
/// after it opened, and after each response on a kept-alive connection (so this is its
/// idle timeout too).
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's body may take to arrive once its headers did.
pub(crate) const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The most HTTP connections at once, whatever the descriptor limit allows.
pub(crate) const MAX_CONNECTIONS: usize = 512;
/// The most WebSocket connections at once (`/rpc` upgrades).
pub(crate) const MAX_WEBSOCKETS: u32 = 32;
/// The most MCP sessions (`/mcp`, the handshake-era revisions) kept at once.
pub(crate) const MAX_MCP_SESSIONS: usize = 32;
/// Descriptors kept for everything but HTTP: stdio, `daemon.sock` and its clients,
/// the state files, the instance locks.
const RESERVE_BASE: u64 = 128;
/// Descriptors kept per session that may run (the guard's and the CLI's pipes).
const RESERVE_PER_SESSION: u64 = 8;
/// The fewest HTTP connections allowed, however low the descriptor limit.
const MIN_CONNECTIONS: usize = 8;
/// After an accept failed (out of descriptors), how long before the next try.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// How many connections HTTP may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) connections: usize,
}

impl Limits {
    /// The bound under this process's descriptor limit (raised first), keeping the
    /// reserve for `max_sessions` children and everything else.
    pub(crate) fn for_process(max_sessions: usize) -> Limits {
        let soft = crate::platform::raise_descriptor_limit();
        Limits::under(soft, max_sessions)
    }

    fn under(soft: Option<u64>, max_sessions: usize) -> Limits {
        let sessions = u64::try_from(max_sessions).unwrap_or(u64::MAX);
        let reserve = RESERVE_BASE.saturating_add(RESERVE_PER_SESSION.saturating_mul(sessions));
        let allowed = soft.map_or(MAX_CONNECTIONS, |soft| {
            usize::try_from(soft.saturating_sub(reserve)).unwrap_or(usize::MAX)
        });
        Limits {
            connections: allowed.clamp(MIN_CONNECTIONS, MAX_CONNECTIONS),
        }
    }
}

/// Accepts and serves connections until `stopping` resolves; then stops accepting,
/// lets each connection finish its request in flight, and returns once all are closed
/// (the caller aborts this when they take too long).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stopping: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.connections));
    let (shut, shutting) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            () = &mut stopping => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let io = Counted { stream, _permit: permit };
                        connections.spawn(connection(io, router.clone(), shutting.clone()));
                    }
                    Err(_) => refuse(&stream, limits.connections),
                },
                Err(err) => {
                    tracing::warn!(%err, "cannot accept an HTTP connection; retrying");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = shut.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// One connection: HTTP/1.1 with the header timeout and upgrades (WebSocket), ended
/// gracefully (after the request in flight) when the listener stops.
async fn connection(io: Counted, router: Router, mut shutting: watch::Receiver<bool>) {
    let service = TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut asked = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%err, "an HTTP connection ended with an error");
                }
                return;
            }
            changed = shutting.changed(), if !asked => {
                asked = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Answers a connection over the bound with 503 (without waiting for it to read) and
/// closes it.
fn refuse(stream: &TcpStream, limit: usize) {
    tracing::warn!(
        limit,
        "HTTP connection refused: the listener holds as many connections as it may"
    );
    let body = format!(
        "{{\"error\":\"too many HTTP connections (the limit is {limit}); try again later\"}}"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

/// A connection's socket with its place under the bound, which it keeps as long as the
/// socket is open, after an upgrade to WebSocket too.
struct Counted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_bound_keeps_a_reserve_under_the_descriptor_limit() {
        // 1024 descriptors, 4 sessions: 1024 - 128 - 32 = 864, over the 512 at most.
        assert_eq!(Limits::under(Some(1024), 4).connections, 512);
        assert_eq!(Limits::under(Some(512), 4).connections, 352);
        assert_eq!(
            Limits::under(Some(100_000), 64).connections,
            MAX_CONNECTIONS
        );
        assert_eq!(Limits::under(Some(64), 4).connections, MIN_CONNECTIONS);
        assert_eq!(Limits::under(None, 4).connections, MAX_CONNECTIONS);
    }
}
