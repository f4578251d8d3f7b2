//! The daemon's Unix socket: other processes of the same user reach a running
//! claude-coded through `daemon.sock` in its state directory and speak the plain protocol
//! to it, each connection served by the plain surface's own adapter over the same method
//! table as stdio ([`crate::plain::serve_client`]). All of them share the daemon's child,
//! its session and its queue.
//!
//! Only the owner may connect: the state directory is 0700 and the socket 0600. The
//! instance lock ([`crate::state_dir`]) says whose directory it is, so a socket file found
//! there when a daemon starts was left by one that died (SIGKILL leaves it behind): it is
//! stale, and replaced. A client that finds a socket nobody answers on (connection
//! refused) knows the same.

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::api::{self, Level};
use crate::daemon::Daemon;
use crate::inbox::Input;
use crate::nesting::Caller;

/// The socket's name in the state directory.
pub(crate) const SOCKET_FILE: &str = "daemon.sock";
/// The longest path a Unix socket address holds (`sun_path` less its terminating NUL);
/// a longer one is reached through its directory (see [`address`]).
const MAX_PATH: usize = crate::platform::SOCKET_PATH_MAX;
/// After the daemon stopped, how long its connections may take to deliver their last
/// answers to clients that do not read.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// After a failed accept (out of descriptors), wait this long before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The listening socket's task; [`SocketServer::closed`] waits for it.
pub(crate) struct SocketServer {
    task: JoinHandle<()>,
}

impl SocketServer {
    /// Listens on `daemon.sock` in the daemon's state directory, and says so in `status`
    /// and the events; `None` (with the reason in `status.daemon.socketError`) when it
    /// cannot. Must be called inside a tokio runtime.
    pub(crate) fn start(daemon: &Daemon) -> Option<SocketServer> {
        let Some(root) = daemon.state_root() else {
            let reason = "no state directory, so no socket".to_string();
            daemon.set_socket(Err(reason));
            return None;
        };
        let path = root.join(SOCKET_FILE);
        let listener = match bind(&path) {
            Ok(listener) => listener,
            Err(reason) => {
                daemon.event_log().record_detail(
                    Level::Error,
                    format!("{reason}; other processes cannot reach this claude-coded"),
                    &api::SocketUnavailable { path },
                );
                daemon.set_socket(Err(reason));
                return None;
            }
        };
        daemon.set_socket(Ok(Some(path.display().to_string())));
        daemon.event_log().record_detail(
            Level::Info,
            format!("listening on {}", path.display()),
            &api::SocketListening { path: path.clone() },
        );
        let task = tokio::spawn(accept_loop(listener, path, daemon.clone()));
        Some(SocketServer { task })
    }

    /// Waits until the socket is gone: it closes when the daemon begins to stop, and its
    /// connections end once their last answers are out (or after a grace period).
    pub(crate) async fn closed(self) {
        if let Err(err) = self.task.await {
            tracing::warn!(%err, "the socket task failed");
        }
    }
}

/// An address for the socket at `path` that fits a Unix socket address: `path` itself, or
/// for a longer one the same file reached through its directory's descriptor
/// (`/proc/self/fd/N/daemon.sock` on Linux), which must stay open while the address is
/// used; an error where the OS has no such path.
pub(crate) fn address(path: &Path) -> std::io::Result<(PathBuf, Option<std::fs::File>)> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.as_os_str().len() <= MAX_PATH {
        return Ok((path.to_path_buf(), None));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(std::io::Error::other("not a socket path"));
    };
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)?;
    let Some(short) = crate::platform::path_through_dir(dir.as_raw_fd(), name) else {
        return Err(std::io::Error::other(format!(
            "the socket path is {} bytes, longer than this OS takes ({MAX_PATH}); choose a \
             shorter --state-dir",
            path.as_os_str().len()
        )));
    };
    Ok((short, Some(dir)))
}

/// Binds `path` (0600), replacing a stale socket file; the error says why not.
fn bind(path: &Path) -> Result<UnixListener, String> {
    remove_stale(path)?;
    let (address, _dir) =
        address(path).map_err(|err| format!("cannot reach {}: {err}", path.display()))?;
    let listener = UnixListener::bind(&address)
        .map_err(|err| format!("cannot listen on {}: {err}", path.display()))?;
    // The directory (0700) already keeps others out; the socket says so itself too.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|err| format!("cannot make {} private: {err}", path.display()))?;
    Ok(listener)
}

/// Removes what a dead daemon left at `path`. This daemon holds the instance lock, so
/// nobody else listens there; a link is removed, never followed.
fn remove_stale(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(format!("cannot inspect {}: {err}", path.display())),
        Ok(meta) if meta.is_dir() => Err(format!(
            "{} is a directory, not a socket; remove it",
            path.display()
        )),
        Ok(meta) => {
            let what = if meta.file_type().is_socket() {
                "a stale socket"
            } else {
                "a file that is not a socket"
            };
            tracing::info!(path = %path.display(), "replacing {what} left by a daemon that did not stop");
            std::fs::remove_file(path)
                .map_err(|err| format!("cannot replace {what} at {}: {err}", path.display()))
        }
    }
}

/// Accepts clients until the daemon begins to stop, then closes the socket and lets the
/// connections finish within [`CLOSE_GRACE`] of the daemon's stop.
async fn accept_loop(listener: UnixListener, path: PathBuf, daemon: Daemon) {
    let mut connections = JoinSet::new();
    let stopping = daemon.stop_begun();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, daemon.clone()));
                }
                Err(err) => {
                    tracing::warn!(%err, "accepting a socket client failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
            _ = &mut stopping => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    remove_if_ours(&path);
    let finished = async {
        daemon.stopped().await;
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
    };
    // The stop itself has its own deadlines (the child's stop grace, then KILL); this
    // one only bounds the wait should something hold it up.
    let limit = Duration::from_millis(daemon.config().stop_grace_ms) + 3 * CLOSE_GRACE;
    if tokio::time::timeout(limit, finished).await.is_err() {
        tracing::warn!("socket clients still connected at exit; closing them");
    }
    connections.abort_all();
}

/// Removes the socket file on the way out, unless it is already gone.
fn remove_if_ours(path: &Path) {
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_socket());
    if is_socket && let Err(err) = std::fs::remove_file(path) {
        tracing::warn!(%err, path = %path.display(), "cannot remove the socket");
    }
}

/// One client, over the plain surface's adapter.
async fn serve(stream: UnixStream, daemon: Daemon) {
    let fd = stream.as_raw_fd();
    // The kernel's word (SO_PEERCRED), not the client's: which process connected, so an
    // ask from inside a session's own turn can be told apart (see `Caller`).
    let caller = stream
        .peer_cred()
        .ok()
        .and_then(|cred| cred.pid())
        .and_then(|pid| u32::try_from(pid).ok())
        .map(Caller);
    let (read, write) = stream.into_split();
    let input = Input {
        first: None,
        reader: BufReader::new(read),
        // Valid while the read half lives, which the reader that polls it owns.
        hangup_fd: Some(fd),
        // The connection's full close is watched by `closed` below.
        output_fd: None,
    };
    crate::plain::serve_client(input, write, daemon, closed(fd), caller).await;
}

/// How often a connection whose client stopped writing is checked for a full close.
const CLOSED_POLL: Duration = Duration::from_millis(50);

/// Resolves once the peer has closed the connection in both directions (a peer that only
/// shut down writing is still listening). `fd` must stay open while this runs: the
/// connection's halves, which the serving of the connection holds until this future is
/// dropped, keep it open.
async fn closed(fd: std::os::fd::RawFd) {
    while !crate::platform::peer_gone(fd) {
        tokio::time::sleep(CLOSED_POLL).await;
    }
}
