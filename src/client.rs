//! A small client of the plain protocol over the daemon's Unix socket, for the command
//! line (`ask`, `stop`, `status`, `events`): find the running daemon of a project, call a
//! method, and see the notifications that come before its answer.
//!
//! Every call has a deadline; a daemon that does not answer within it is reported, never
//! waited for without end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonrpsee::types::ErrorObjectOwned;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

use crate::api::StatusResult;
use crate::socket::SOCKET_FILE;

/// How long connecting and a quick call (`status`, `ping`, `stop`) may take.
pub(crate) const QUICK: Duration = Duration::from_secs(5);
/// Instance directories looked at for a running daemon (as many as the state dir allows).
const MAX_INSTANCES: u32 = 64;

/// Errors of this layer: why a call to the daemon has no answer.
#[derive(Debug, Error)]
pub(crate) enum ClientError {
    #[error("cannot reach the daemon at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the connection to the daemon failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon closed the connection before answering")]
    Closed,
    #[error("the daemon sent a line that is not JSON-RPC: {0}")]
    BadLine(String),
    #[error("the daemon did not answer within {0:?}")]
    Deadline(Duration),
    /// The socket's listener runs as another user: nothing is sent to it.
    #[error(
        "refusing {path}: the process listening there runs as uid {peer}, not as you (uid {uid}); another user may have put it there, so nothing was sent: stop that process or remove the socket"
    )]
    ForeignPeer { path: PathBuf, peer: u32, uid: u32 },
    /// The method's own error, as the daemon sent it.
    #[error("{}", .0.message())]
    Rpc(ErrorObjectOwned),
}

/// A connection to a running daemon.
pub(crate) struct Client {
    path: PathBuf,
    lines: Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

impl Client {
    /// Connects to the socket at `path`.
    pub(crate) async fn connect(path: &Path) -> Result<Client, ClientError> {
        let connect = || ClientError::Connect {
            path: path.to_path_buf(),
            source: std::io::ErrorKind::TimedOut.into(),
        };
        let (address, _dir) =
            crate::socket::address(path).map_err(|source| ClientError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        let stream = tokio::time::timeout(QUICK, UnixStream::connect(&address))
            .await
            .map_err(|_| connect())?
            .map_err(|source| ClientError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        check_peer(path, &stream)?;
        let (read, writer) = stream.into_split();
        Ok(Client {
            path: path.to_path_buf(),
            lines: BufReader::new(read).lines(),
            writer,
            next_id: 1,
        })
    }

    /// The socket this client is connected to.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `method` and returns its result as `T`, within `limit`.
    pub(crate) async fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        params: Value,
        limit: Duration,
    ) -> Result<T, ClientError> {
        let deadline = Instant::now() + limit;
        let value = self.call_with(method, params, deadline, |_| {}).await?;
        serde_json::from_value(value).map_err(|e| ClientError::BadLine(e.to_string()))
    }

    /// Calls `method`, handing each notification that arrives before the answer to
    /// `on_note` (its `method` and `params`); gives up at `deadline`.
    pub(crate) async fn call_with(
        &mut self,
        method: &str,
        params: Value,
        deadline: Instant,
        mut on_note: impl FnMut(&Value),
    ) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let limit = deadline.saturating_duration_since(Instant::now());
        let exchange = async {
            self.writer
                .write_all(format!("{line}\n").as_bytes())
                .await?;
            self.writer.flush().await?;
            loop {
                let line = self.lines.next_line().await?.ok_or(ClientError::Closed)?;
                let message: Value = serde_json::from_str(&line)
                    .map_err(|e| ClientError::BadLine(format!("{e}: {line}")))?;
                if message.get("method").is_some() {
                    on_note(&message);
                    continue;
                }
                if message.get("id") != Some(&json!(id)) {
                    return Err(ClientError::BadLine(line));
                }
                return answer(message);
            }
        };
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| ClientError::Deadline(limit))?
    }

    /// Waits until the daemon closes the connection (after `stop`), within `limit`.
    pub(crate) async fn closed(mut self, limit: Duration) -> Result<(), ClientError> {
        let drain = async {
            while self.lines.next_line().await?.is_some() {}
            Ok(())
        };
        tokio::time::timeout(limit, drain)
            .await
            .map_err(|_| ClientError::Deadline(limit))?
    }
}

/// Refuses a socket whose listener is not ours, before a byte is sent: a prompt must not
/// reach another user's process (the kernel says who listens: SO_PEERCRED, getpeereid).
fn check_peer(path: &Path, stream: &UnixStream) -> Result<(), ClientError> {
    let peer = stream.peer_cred()?.uid();
    let uid = crate::state_dir::own_uid();
    match peer == uid {
        true => Ok(()),
        false => Err(ClientError::ForeignPeer {
            path: path.to_path_buf(),
            peer,
            uid,
        }),
    }
}

/// The `result` of a response, or its `error` as the daemon sent it.
fn answer(mut message: Value) -> Result<Value, ClientError> {
    if let Some(error) = message.get_mut("error") {
        let error: ErrorObjectOwned = serde_json::from_value(error.take())
            .map_err(|e| ClientError::BadLine(e.to_string()))?;
        return Err(ClientError::Rpc(error));
    }
    message
        .get_mut("result")
        .map(Value::take)
        .ok_or_else(|| ClientError::BadLine(message.to_string()))
}

/// A running daemon of the project, with its status.
pub(crate) struct Found {
    pub(crate) client: Client,
    pub(crate) status: StatusResult,
}

/// The sockets a project's daemons listen on: the first instance's, then the others'
/// (`instances/2`, `3`, ...) that exist.
pub(crate) fn socket_paths(state_dir: &Path) -> Vec<PathBuf> {
    let mut paths = vec![state_dir.join(SOCKET_FILE)];
    let instances = state_dir.join("instances");
    for n in 2..=MAX_INSTANCES {
        let dir = instances.join(n.to_string());
        if !dir.is_dir() {
            break;
        }
        paths.push(dir.join(SOCKET_FILE));
    }
    paths
}

/// The first daemon of the project that answers on its socket and may start a child
/// (`accept` says which are wanted). A socket nobody answers on was left by a daemon
/// that died: skipped (the next daemon in that directory replaces it).
pub(crate) async fn find(
    state_dir: &Path,
    accept: impl Fn(&StatusResult) -> bool,
) -> Option<Found> {
    for path in socket_paths(state_dir) {
        let mut client = match Client::connect(&path).await {
            Ok(client) => client,
            // Said (once: `start` looks again and again), not skipped silently:
            // someone put it there.
            Err(err @ ClientError::ForeignPeer { .. }) => {
                static SAID: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    eprintln!("claude-coded: {err}");
                }
                continue;
            }
            Err(_) => continue,
        };
        match client
            .call::<StatusResult>("status", json!({}), QUICK)
            .await
        {
            Ok(status) if accept(&status) => return Some(Found { client, status }),
            Ok(_) => {}
            Err(err) => {
                tracing::debug!(%err, path = %path.display(), "a daemon did not answer status")
            }
        }
    }
    None
}
