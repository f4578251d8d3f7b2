//! Linux: the process table is `/proc`; `poll` reports a peer's shutdown as `POLLRDHUP`;
//! `FIONREAD` and `SIOCOUTQ` tell what a pipe's or a socket's reader has not taken.

use std::ffi::OsStr;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use super::unix::{self, GuardLink};
use super::{OutputQueue, Process};

/// Whether the guard uses its portable mechanisms rather than Linux's: only in a debug
/// build (the tests') that asks for them ([`super::PORTABLE_ENV`]).
fn portable_guard() -> bool {
    cfg!(debug_assertions) && std::env::var_os(super::PORTABLE_ENV).is_some_and(|v| v == "1")
}

/// In the guard: whether the bridge made it a portable one. The bridge gives the pipe only
/// to a portable guard, and the guard's environment has none of claude-coded's settings
/// (the test switch included), so the pipe is what tells.
fn guard_is_portable() -> bool {
    std::env::var_os(unix::PIPE_ENV).is_some()
}

/// `sun_path` holds 108 bytes with the terminating NUL.
pub(super) const SOCKET_PATH_MAX: usize = 107;

pub(super) fn processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(process)
        .collect()
}

pub(super) fn process(pid: u32) -> Option<Process> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &stat)
}

/// `/proc/<pid>/stat`: after the command name (which may hold spaces and parentheses),
/// state, ppid, pgrp.
fn parse_stat(pid: u32, stat: &str) -> Option<Process> {
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let zombie = fields.next()? == "Z";
    let parent = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    Some(Process {
        pid,
        parent,
        group,
        zombie,
    })
}

pub(super) fn arguments(pid: u32) -> Option<Vec<Vec<u8>>> {
    nul_separated(&std::fs::read(format!("/proc/{pid}/cmdline")).ok()?)
}

pub(super) fn environment(pid: u32) -> Option<Vec<Vec<u8>>> {
    nul_separated(&std::fs::read(format!("/proc/{pid}/environ")).ok()?)
}

fn nul_separated(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    Some(
        bytes
            .split(|b| *b == 0)
            .filter(|part| !part.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// From `/proc/<pid>/statm` (pages).
pub(super) fn resident_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    Some(pages * page)
}

/// `/proc/self/exe` still runs the binary we were started from after an upgrade
/// replaced (or deleted) it on disk, so restarts keep working in a long-lived daemon.
pub(super) fn own_executable() -> std::io::Result<PathBuf> {
    let proc_exe = Path::new("/proc/self/exe");
    if proc_exe.exists() {
        return Ok(proc_exe.to_path_buf());
    }
    std::env::current_exe()
}

pub(super) fn peer_closed(fd: RawFd) -> bool {
    super::unix::poll_hangup(fd, libc::POLLRDHUP)
}

pub(super) fn measures(_queue: OutputQueue) -> bool {
    true
}

pub(super) fn grow_pipe(fd: RawFd, bytes: usize) -> Option<usize> {
    // SAFETY: F_GETPIPE_SZ and F_SETPIPE_SZ take and return ints and touch no memory of
    // ours; on a descriptor that is not a pipe they fail (EBADF, EINVAL).
    let now = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    let now = usize::try_from(now).ok()?;
    if now >= bytes {
        return Some(now);
    }
    let wanted = libc::c_int::try_from(bytes).ok()?;
    // SAFETY: as above. Refused past /proc/sys/fs/pipe-max-size or the user's pipe
    // quota (EPERM); the pipe then keeps the size it had.
    let grown = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, wanted) };
    Some(usize::try_from(grown).unwrap_or(now))
}

pub(super) fn unsent_bytes(fd: RawFd, queue: OutputQueue) -> Option<usize> {
    let request = match queue {
        OutputQueue::Pipe => libc::FIONREAD,
        // SIOCOUTQ, which Linux numbers as TIOCOUTQ.
        OutputQueue::Socket => libc::TIOCOUTQ,
    };
    let mut unread: libc::c_int = 0;
    // SAFETY: both requests write one int through the pointer we pass.
    let rc = unsafe { libc::ioctl(fd, request, &mut unread) };
    (rc == 0).then(|| usize::try_from(unread).unwrap_or(0))
}

/// `/proc/self/fd/N/<name>`.
pub(super) fn path_through_dir(dir: RawFd, name: &OsStr) -> Option<PathBuf> {
    Some(Path::new("/proc/self/fd").join(dir.to_string()).join(name))
}

/// The bridge's side: the guard is SIGKILLed by the kernel when the bridge dies, even
/// by SIGKILL (or, with the portable mechanisms, it gets the pipe).
///
/// The signal fires when the *thread* that forked exits; tokio's worker threads live as
/// long as the runtime, so children spawned from async tasks are covered.
pub(super) fn link_guard(command: &mut tokio::process::Command) {
    if portable_guard() {
        unix::link_by_pipe(command);
        return;
    }
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            set_parent_death_signal(libc::SIGKILL)?;
            // The bridge may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// The guard's side: SIGTERM when the bridge dies (taken by [`wait_signal`]), and the
/// orphans of the CLI's tree adopted by the guard rather than by init.
pub(super) fn guard_link(parent_env: &str) -> GuardLink {
    let native = !guard_is_portable();
    // Blocks the stop signals first, so the death signal is waited for, not delivered.
    let link = GuardLink::from_env(parent_env, native);
    if native {
        let _ = set_parent_death_signal(libc::SIGTERM);
        // SAFETY: sets a flag of this process.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    }
    link
}

/// The CLI starts with no signal blocked, and (natively) dies with the guard.
pub(super) fn prepare_cli(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    unix::unblock_signals_in_child(command);
    if guard_is_portable() {
        return;
    }
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            set_parent_death_signal(libc::SIGKILL)?;
            Ok(())
        });
    }
}

/// Parent-death signal: the kernel sends `signal` when the thread that forked us exits.
fn set_parent_death_signal(signal: libc::c_int) -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a field of this process.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Waits for one of `signals` (blocked in every thread) for at most `timeout`.
pub(super) fn wait_signal(signals: &libc::sigset_t, timeout: std::time::Duration) {
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs().try_into().unwrap_or(0),
        tv_nsec: timeout.subsec_nanos().into(),
    };
    // SAFETY: waits on a valid sigset whose signals are blocked in every thread.
    unsafe { libc::sigtimedwait(signals, std::ptr::null_mut(), &timeout) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_parentheses_and_spaces_is_skipped() {
        let process = parse_stat(42, "42 (a) b (c) S 7 42 42 0").unwrap();
        assert_eq!(
            process,
            Process {
                pid: 42,
                parent: 7,
                group: 42,
                zombie: false
            }
        );
        assert!(parse_stat(43, "43 (z) Z 1 43").unwrap().zombie);
    }

    #[test]
    fn a_pipes_unread_bytes_are_counted_from_its_write_end() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let (mut reader, mut writer) = std::io::pipe().unwrap();
        let fd = writer.as_raw_fd();
        assert_eq!(super::super::output_queue(fd), Some(OutputQueue::Pipe));
        assert_eq!(unsent_bytes(fd, OutputQueue::Pipe), Some(0));
        writer.write_all(b"{\"jsonrpc\":\"2.0\"}\n").unwrap();
        assert_eq!(unsent_bytes(fd, OutputQueue::Pipe), Some(18));
        let mut buf = [0u8; 18];
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(unsent_bytes(fd, OutputQueue::Pipe), Some(0));
    }

    #[test]
    fn a_pipe_grows_to_the_size_asked_and_never_shrinks() {
        use std::os::fd::AsRawFd;
        let (_reader, writer) = std::io::pipe().unwrap();
        let fd = writer.as_raw_fd();
        assert_eq!(grow_pipe(fd, 1 << 20), Some(1 << 20));
        assert_eq!(grow_pipe(fd, 64 << 10), Some(1 << 20));
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert_eq!(grow_pipe(file.as_raw_fd(), 1 << 20), None);
    }

    #[test]
    fn a_socket_counts_what_its_peer_has_not_read() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let (mut ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = ours.as_raw_fd();
        assert_eq!(super::super::output_queue(fd), Some(OutputQueue::Socket));
        assert_eq!(unsent_bytes(fd, OutputQueue::Socket), Some(0));
        ours.write_all(b"notification\n").unwrap();
        assert!(unsent_bytes(fd, OutputQueue::Socket).unwrap() > 0);
        let mut buf = [0u8; 13];
        peer.read_exact(&mut buf).unwrap();
        assert_eq!(unsent_bytes(fd, OutputQueue::Socket), Some(0));
    }
}
