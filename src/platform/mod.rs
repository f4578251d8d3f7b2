//! Every OS-specific mechanism claude-coded uses, behind one small API; nothing outside
//! this module names an operating system.
//!
//! - `linux.rs` and `macos.rs` (one of them is `os`) read the process table: listing,
//!   ancestry, a process's arguments and environment, resident memory, our own
//!   executable; and the few calls whose flags differ (`poll`'s peer hang-up, the
//!   queue-length `ioctl`s, a pipe's size, the short path to a long socket path).
//! - `unix.rs` holds what any POSIX system does the same way: process groups, the guard's
//!   portable mechanisms (a pipe that tells the guard its bridge died, a sweep of the
//!   processes of the CLI's tree found by a listing), reaping and exit statuses.
//! - `stdio.rs`: our own stdin and stdout as pipes the runtime polls (made non-blocking
//!   while we hold them, blocking again after).
//! - Linux has better tools for two guard mechanisms (`PR_SET_PDEATHSIG`, the child
//!   subreaper), used there; the tests can ask for the portable ones on Linux too
//!   ([`PORTABLE_ENV`]), so the code macOS runs is tested here.
//!
//! A Windows port would be one more file: a `windows.rs` offering the same functions
//! (a Job Object for the group and its end, a named pipe for the parent's death, the
//! Toolhelp snapshot for the listing) selected below.

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod os;
#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod os;
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
compile_error!(
    "claude-coded runs on Linux and macOS; a port needs a src/platform/<os>.rs (see src/platform/mod.rs)"
);

pub(crate) mod stdio;
mod unix;

use std::os::fd::RawFd;
use std::path::PathBuf;

pub(crate) use unix::{
    GuardLink, Stop, TREE_ENV, end_everything, end_group, mirror_exit, release_stdio, wait_reaping,
};

/// A process as a listing shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Process {
    pub(crate) pid: u32,
    pub(crate) parent: u32,
    pub(crate) group: u32,
    /// Exited, not yet reaped by its parent.
    pub(crate) zombie: bool,
}

/// Every process this user can see (one pass over the process table).
pub(crate) fn processes() -> Vec<Process> {
    os::processes()
}

/// The parent of `pid`.
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    os::process(pid).map(|p| p.parent)
}

/// Whether `pid` names a live process (a zombie counts as gone).
pub(crate) fn is_alive(pid: u32) -> bool {
    os::process(pid).is_some_and(|p| !p.zombie)
}

/// Whether `pid` carries, in its environment, the mark of the CLI tree that `guard` (a
/// guard this process started) set: a tool process that left the group and was adopted
/// by init (where no subreaper keeps it below the guard) still does.
pub(crate) fn carries_tree_mark(pid: u32, guard: u32) -> bool {
    let entry = format!("{TREE_ENV}={}", unix::tree_mark(std::process::id(), guard));
    environment(pid).is_some_and(|env| env.iter().any(|e| e.as_slice() == entry.as_bytes()))
}

/// The command line of `pid`, one entry per argument; `None` when it cannot be read
/// (gone, or another user's).
pub(crate) fn arguments(pid: u32) -> Option<Vec<Vec<u8>>> {
    os::arguments(pid)
}

/// The environment of `pid` as `NAME=value` entries; `None` when it cannot be read.
pub(crate) fn environment(pid: u32) -> Option<Vec<Vec<u8>>> {
    os::environment(pid)
}

/// Resident memory of `pid` in bytes.
pub(crate) fn resident_bytes(pid: u32) -> Option<u64> {
    os::resident_bytes(pid)
}

/// Our executable, as something we can run again (for the guard), even after an upgrade
/// replaced it on disk where the OS allows that.
pub(crate) fn own_executable() -> std::io::Result<PathBuf> {
    os::own_executable()
}

/// Has the writer of `fd` closed its end? True for a pipe whose writer is gone and for a
/// socket whose peer shut down writing, even with unread data still in it.
pub(crate) fn peer_closed(fd: RawFd) -> bool {
    os::peer_closed(fd)
}

/// Has every reader of `fd` gone? True for a pipe whose read end is closed and a socket
/// whose peer closed it in both directions (one that only shut down writing is still
/// listening); false for a terminal or a file. `POLLOUT` is asked for: macOS reports the hang-up
/// on the write side's filter only.
pub(crate) fn peer_gone(fd: RawFd) -> bool {
    unix::hung_up_both_ways(fd)
}

/// What kind of output queue a descriptor has, where its length can be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputQueue {
    /// A pipe: the bytes the reader has not taken.
    Pipe,
    /// A Unix stream socket: the bytes the peer has not read.
    Socket,
}

/// The queue of `fd` when this OS can tell how much of it the reader has not taken
/// yet; `None` for files and terminals, and where the kernel will not say.
pub(crate) fn output_queue(fd: RawFd) -> Option<OutputQueue> {
    let queue = unix::queue_kind(fd)?;
    os::measures(queue).then_some(queue)
}

/// Bytes written to `fd` (an [`OutputQueue`]) and not yet read; `None` when the kernel
/// won't say.
pub(crate) fn unsent_bytes(fd: RawFd, queue: OutputQueue) -> Option<usize> {
    os::unsent_bytes(fd, queue)
}

/// Grows the pipe behind `fd` to hold at least `bytes` (never shrinks it), and returns
/// its size now, or `None` when `fd` is not a pipe this OS can size (macOS pipes size
/// themselves). A bigger pipe lets a fast writer and a fast reader each do more per
/// wake-up: lines reach the reader in fewer, larger reads.
pub(crate) fn grow_pipe(fd: RawFd, bytes: usize) -> Option<usize> {
    os::grow_pipe(fd, bytes)
}

/// Raises the soft limit on open descriptors as far as the OS lets us, and returns the
/// soft limit now in force (`None` when unknown or unlimited): the HTTP listener sizes
/// its connection bound from it.
pub(crate) fn raise_descriptor_limit() -> Option<u64> {
    unix::raise_descriptor_limit()
}

/// The longest path a Unix socket address takes.
pub(crate) const SOCKET_PATH_MAX: usize = os::SOCKET_PATH_MAX;

/// A short path that reaches `name` in the directory open as `dir` (which must stay
/// open while the path is used), for socket paths longer than [`SOCKET_PATH_MAX`];
/// `None` where the OS has no such path.
pub(crate) fn path_through_dir(dir: RawFd, name: &std::ffi::OsStr) -> Option<PathBuf> {
    os::path_through_dir(dir, name)
}

/// The bridge's side of the guard: started as the leader of a new process group, linked
/// to us so that it notices our death at once however we die.
pub(crate) fn link_guard(command: &mut tokio::process::Command) {
    command.process_group(0);
    os::link_guard(command);
}

/// The guard's side of that link, from its environment (`parent_env` holds the bridge's
/// pid). Blocks the stop signals in the guard: a group-wide SIGTERM reaches the CLI,
/// and the guard stays to clean up after it.
pub(crate) fn guard_link(parent_env: &str) -> GuardLink {
    os::guard_link(parent_env)
}

/// Prepares the guard's command for the CLI: no signal blocked, and where the OS can,
/// death with the guard.
pub(crate) fn prepare_cli(command: &mut std::process::Command) {
    os::prepare_cli(command);
    for name in GuardLink::private_env() {
        command.env_remove(name);
    }
}

/// Set to `1` for a debug build on Linux: the guard uses its portable mechanisms (a pipe
/// for the bridge's death, the marked tree instead of the subreaper), which other systems
/// always use, so the suite runs the code macOS runs. Release builds ignore it. Tests only.
pub const PORTABLE_ENV: &str = "CLAUDE_CODED_TEST_PORTABLE_GUARD";

#[cfg(test)]
mod tests {
    use super::*;

    // Every platform's process table, through the one API (on macOS, run by the release
    // workflow's `cargo test --lib`; type-checked here).
    #[test]
    fn this_process_is_listed_with_its_parent_arguments_environment_and_memory() {
        let me = std::process::id();
        let listed = processes().into_iter().find(|p| p.pid == me).unwrap();
        assert_eq!(listed.parent, std::os::unix::process::parent_id());
        assert!(!listed.zombie);
        assert!(is_alive(me));
        assert!(resident_bytes(me).unwrap() > 1 << 20);
        assert!(!arguments(me).unwrap().is_empty());
        assert!(
            environment(me)
                .unwrap()
                .iter()
                .any(|e| e.starts_with(b"PATH="))
        );
    }
}
