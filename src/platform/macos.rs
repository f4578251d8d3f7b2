//! macOS: the process table through `libproc` (`proc_listallpids`, `proc_pidinfo`) and
//! `sysctl(KERN_PROCARGS2)`, as `ps` reads it, all bound by the `libc` crate we already
//! use; the guard's portable mechanisms (no parent-death signal, no subreaper here).
//!
//! What differs from Linux: `poll` reports a peer's shutdown as `POLLHUP` (there is no
//! `POLLRDHUP`); the kernel does not say how much of a pipe or a Unix socket its reader
//! has not taken (no `SIOCOUTQ`, and `FIONREAD` on a pipe's write end counts the wrong
//! buffer), so an MCP response waits a fixed pause after its notifications; and a socket
//! path longer than 103 bytes cannot be reached through a short one.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::fd::RawFd;
use std::path::PathBuf;

use super::unix::{self, GuardLink};
use super::{OutputQueue, Process};

/// `sun_path` holds 104 bytes with the terminating NUL.
pub(super) const SOCKET_PATH_MAX: usize = 103;

pub(super) fn processes() -> Vec<Process> {
    all_pids().into_iter().filter_map(process).collect()
}

/// Every pid, from `proc_listallpids` (it returns a count of pids).
fn all_pids() -> Vec<u32> {
    // SAFETY: a null buffer asks for the number of processes.
    let count = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
    let Ok(count) = usize::try_from(count) else {
        return Vec::new();
    };
    // Room for processes started since.
    let mut pids: Vec<libc::c_int> = vec![0; count + 64];
    let bytes = libc::c_int::try_from(pids.len() * std::mem::size_of::<libc::c_int>())
        .unwrap_or(libc::c_int::MAX);
    // SAFETY: the buffer holds `bytes` bytes of c_ints.
    let found = unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast(), bytes) };
    let found = usize::try_from(found).unwrap_or(0).min(pids.len());
    pids.truncate(found);
    pids.into_iter()
        .filter_map(|pid| u32::try_from(pid).ok())
        .filter(|pid| *pid != 0)
        .collect()
}

pub(super) fn process(pid: u32) -> Option<Process> {
    let info: libc::proc_bsdinfo = pid_info(pid, libc::PROC_PIDTBSDINFO)?;
    Some(Process {
        pid,
        parent: info.pbi_ppid,
        group: info.pbi_pgid,
        zombie: info.pbi_status == libc::SZOMB,
    })
}

/// `proc_pidinfo(pid, flavor)` into a `T`, when the kernel fills it whole.
fn pid_info<T>(pid: u32, flavor: libc::c_int) -> Option<T> {
    let pid = libc::c_int::try_from(pid).ok()?;
    let size = libc::c_int::try_from(std::mem::size_of::<T>()).ok()?;
    let mut info = std::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: the buffer is `size` bytes of a T, which the kernel writes.
    let written = unsafe { libc::proc_pidinfo(pid, flavor, 0, info.as_mut_ptr().cast(), size) };
    // SAFETY: a plain C struct, zeroed, and written whole when `written == size`.
    (written == size).then(|| unsafe { info.assume_init() })
}

pub(super) fn arguments(pid: u32) -> Option<Vec<Vec<u8>>> {
    Some(unix::split_procargs(&procargs(pid)?)?.0)
}

pub(super) fn environment(pid: u32) -> Option<Vec<Vec<u8>>> {
    Some(unix::split_procargs(&procargs(pid)?)?.1)
}

/// `sysctl(KERN_PROCARGS2)`: the raw argument area of `pid` (ours or another process of
/// this user). The buffer (`kern.argmax`, 1 MiB) is made once per thread: a sweep of the
/// CLI's tree reads every process's environment.
fn procargs(pid: u32) -> Option<Vec<u8>> {
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    let mut mib = [
        libc::CTL_KERN,
        libc::KERN_PROCARGS2,
        libc::c_int::try_from(pid).ok()?,
    ];
    BUFFER.with_borrow_mut(|buffer| {
        if buffer.is_empty() {
            buffer.resize(arg_max()?, 0);
        }
        let mut size = buffer.len();
        // SAFETY: the buffer holds `size` bytes; sysctl writes at most that and updates size.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                3,
                buffer.as_mut_ptr().cast(),
                &mut size,
                std::ptr::null_mut(),
                0,
            )
        };
        (rc == 0)
            .then(|| buffer.get(..size).map(<[u8]>::to_vec))
            .flatten()
    })
}

/// The size of the largest argument area (`kern.argmax`).
fn arg_max() -> Option<usize> {
    let mut mib = [libc::CTL_KERN, libc::KERN_ARGMAX];
    let mut value: libc::c_int = 0;
    let mut size = std::mem::size_of::<libc::c_int>();
    // SAFETY: writes one c_int into `value`.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            2,
            (&raw mut value).cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    (rc == 0).then(|| usize::try_from(value).ok()).flatten()
}

/// `proc_pidinfo(PROC_PIDTASKINFO)`'s resident size.
pub(super) fn resident_bytes(pid: u32) -> Option<u64> {
    let info: libc::proc_taskinfo = pid_info(pid, libc::PROC_PIDTASKINFO)?;
    Some(info.pti_resident_size)
}

pub(super) fn own_executable() -> std::io::Result<PathBuf> {
    std::env::current_exe()
}

pub(super) fn peer_closed(fd: RawFd) -> bool {
    unix::poll_hangup(fd, 0)
}

pub(super) fn measures(_queue: OutputQueue) -> bool {
    false
}

/// macOS has no call to size a pipe: it grows its buffer itself (to 64 KiB) as a writer
/// runs ahead.
pub(super) fn grow_pipe(_fd: RawFd, _bytes: usize) -> Option<usize> {
    None
}

pub(super) fn unsent_bytes(_fd: RawFd, _queue: OutputQueue) -> Option<usize> {
    None
}

pub(super) fn path_through_dir(_dir: RawFd, _name: &OsStr) -> Option<PathBuf> {
    None
}

/// The bridge's side: the guard gets the pipe.
pub(super) fn link_guard(command: &mut tokio::process::Command) {
    unix::link_by_pipe(command);
}

/// The guard's side: the pipe and its parent's pid.
pub(super) fn guard_link(parent_env: &str) -> GuardLink {
    GuardLink::from_env(parent_env, false)
}

pub(super) fn prepare_cli(command: &mut std::process::Command) {
    unix::unblock_signals_in_child(command);
}

/// No `sigtimedwait` here; the guard only waits on a signal when it has no pipe, and
/// then the period is what it has.
pub(super) fn wait_signal(_signals: &libc::sigset_t, timeout: std::time::Duration) {
    std::thread::sleep(timeout);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_queues_are_not_measured_here() {
        use std::os::fd::AsRawFd;
        let (_reader, writer) = std::io::pipe().unwrap();
        assert_eq!(super::super::output_queue(writer.as_raw_fd()), None);
    }
}
