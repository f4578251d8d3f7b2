//! What every POSIX system does the same way: process groups and signals, the guard's
//! portable mechanisms, reaping, exit statuses, `poll` and `fstat`.
//!
//! The guard's portable mechanisms, used wherever Linux's are missing:
//!
//! - **The bridge's death** is a pipe: the bridge makes one at first use and keeps both
//!   ends for its whole life, close-on-exec, so only it holds the write end; each guard
//!   gets the read end. The kernel closes the write end when the bridge dies however it
//!   dies, so the guard's read end reports a hang-up (EOF) at once.
//! - **Tool processes that left the group** (`setsid nohup sleep &` in a Bash tool) are
//!   found by a listing: the descendants of the guard, and every process whose
//!   environment carries the guard's mark ([`TREE_ENV`], set for the CLI and inherited by
//!   what it starts), which an orphan keeps after init adopted it.

use std::os::fd::RawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::time::Duration;

use super::{OutputQueue, Process};

/// The guard's mark in the CLI's environment: `<bridge pid>-<guard pid>`.
pub(crate) const TREE_ENV: &str = "CLAUDE_CODED_TREE";
/// The guard's end of the pipe that tells it the bridge died (portable mechanism).
pub(crate) const PIPE_ENV: &str = "CLAUDE_CODED_GUARD_PIPE";
/// How often the guard looks whether the bridge is still there, besides the pipe or the
/// signal that wake it at once.
pub(crate) const WATCH_PERIOD: Duration = Duration::from_millis(200);

/// How a process group is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Asked to end (SIGTERM): the CLI may finish what it writes.
    Term,
    /// Ended at once (SIGKILL), with every process of its tree.
    Kill,
}

impl Stop {
    fn signal(self) -> libc::c_int {
        match self {
            Stop::Term => libc::SIGTERM,
            Stop::Kill => libc::SIGKILL,
        }
    }
}

/// Stops the process group led by `leader` (a guard). A kill first ends every process
/// of the guard's tree, the ones that left its group included: once the guard is dead
/// nothing else would end them.
pub(crate) fn end_group(leader: u32, stop: Stop) {
    if stop == Stop::Kill {
        end_tree(leader, &tree_mark(std::process::id(), leader));
    }
    // SAFETY: killpg has no memory-safety preconditions; an exited group gives ESRCH.
    let rc = unsafe { libc::killpg(leader as libc::pid_t, stop.signal()) };
    if rc != 0 {
        tracing::debug!(leader, ?stop, err = %std::io::Error::last_os_error(), "killpg");
    }
}

/// The mark the guard `guard` started by bridge `bridge` sets in its CLI's environment.
pub(crate) fn tree_mark(bridge: u32, guard: u32) -> String {
    format!("{bridge}-{guard}")
}

/// SIGKILLs every live process of `root`'s tree (not `root` itself): its descendants
/// whatever their group or session, and the processes carrying `mark` in their
/// environment ([`TREE_ENV`]). Repeats while a scan finds any, since one may fork while
/// we kill.
pub(crate) fn end_tree(root: u32, mark: &str) {
    for _ in 0..20 {
        let found = tree(root, mark, &super::processes());
        if found.is_empty() {
            return;
        }
        for pid in found {
            // SAFETY: signals a process of `root`'s tree.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

/// The live processes of `root`'s tree in `listing` (see [`end_tree`]): its descendants,
/// the processes carrying `mark`, and theirs (which may have cleared their environment).
fn tree(root: u32, mark: &str, listing: &[Process]) -> Vec<u32> {
    let entry = format!("{TREE_ENV}={mark}");
    let me = std::process::id();
    let marked = listing
        .iter()
        .filter(|p| !p.zombie && p.pid != root && p.pid != me)
        .filter(|p| {
            super::environment(p.pid)
                .is_some_and(|env| env.iter().any(|e| e.as_slice() == entry.as_bytes()))
        })
        .map(|p| p.pid);
    let mut found = descendants(root, listing);
    for pid in marked.collect::<Vec<_>>() {
        for member in std::iter::once(pid).chain(descendants(pid, listing)) {
            if member != me && member != root && !found.contains(&member) {
                found.push(member);
            }
        }
    }
    found
}

/// Live (not zombie) descendants of `root` in `listing`.
pub(super) fn descendants(root: u32, listing: &[Process]) -> Vec<u32> {
    let mut found = Vec::new();
    let mut pending = vec![root];
    while let Some(parent) = pending.pop() {
        for child in listing
            .iter()
            .filter(|p| p.parent == parent && p.pid != parent)
        {
            pending.push(child.pid);
            if !child.zombie {
                found.push(child.pid);
            }
        }
    }
    found
}

/// SIGKILLs every other live member of our process group (we lead it).
fn kill_rest_of_group() {
    let me = std::process::id();
    // Repeat: a member may fork while we scan.
    for _ in 0..5 {
        let members: Vec<u32> = super::processes()
            .into_iter()
            .filter(|p| p.group == me && p.pid != me && !p.zombie)
            .map(|p| p.pid)
            .collect();
        if members.is_empty() {
            return;
        }
        for pid in members {
            // SAFETY: signals a process of our own group.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

/// The guard's end, however it comes: every process of the CLI's tree, then the group
/// (this process included when `including_me`).
pub(crate) fn end_everything(bridge: u32, including_me: bool) {
    let me = std::process::id();
    kill_rest_of_group();
    end_tree(me, &tree_mark(bridge, me));
    if including_me {
        // SAFETY: signals our own process group, this process included.
        unsafe { libc::killpg(0, libc::SIGKILL) };
    }
}

/// The read end of this process's parent-death pipe, made at first use; both ends stay
/// open (close-on-exec) until the process exits.
pub(super) fn death_pipe() -> Option<RawFd> {
    use std::os::fd::AsRawFd;
    static PIPE: OnceLock<Option<(std::io::PipeReader, std::io::PipeWriter)>> = OnceLock::new();
    PIPE.get_or_init(|| match std::io::pipe() {
        Ok(ends) => Some(ends),
        Err(err) => {
            tracing::warn!(%err, "cannot make the guard's pipe; a guard notices our death within 200 ms instead");
            None
        }
    })
    .as_ref()
    .map(|(reader, _)| reader.as_raw_fd())
}

/// The bridge's side of the portable link: the guard inherits the pipe's read end.
pub(super) fn link_by_pipe(command: &mut tokio::process::Command) {
    let Some(read) = death_pipe() else {
        return;
    };
    command.env(PIPE_ENV, read.to_string());
    // SAFETY: fcntl is async-signal-safe; it clears close-on-exec on the child's copy only.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(read, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// How the guard learns that the bridge died.
#[derive(Debug)]
pub(crate) struct GuardLink {
    /// The bridge's pid (0: unknown).
    pub(crate) parent: u32,
    /// The pipe's read end, when the bridge gave one.
    pipe: Option<RawFd>,
    /// The signals the guard holds blocked (see [`block_stop_signals`]).
    signals: libc::sigset_t,
    /// Linux's parent-death signal is in force: wait for it rather than for the pipe.
    by_signal: bool,
}

impl GuardLink {
    /// The guard's side, from its environment: the bridge's pid, the pipe. Blocks the
    /// stop signals first (see [`block_stop_signals`]).
    pub(super) fn from_env(parent_env: &str, by_signal: bool) -> GuardLink {
        let parent = std::env::var(parent_env)
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let pipe = std::env::var(PIPE_ENV)
            .ok()
            .and_then(|fd| fd.parse::<RawFd>().ok())
            .filter(|fd| *fd > 2);
        if let Some(fd) = pipe {
            // The CLI must not hold it (it would outlive us); only the bridge's end matters,
            // but a read end in the CLI's tree is a leak all the same.
            // SAFETY: sets a flag of a descriptor we were given.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        GuardLink {
            parent,
            pipe,
            signals: block_stop_signals(),
            by_signal,
        }
    }

    /// Whether the bridge is gone: its pipe hung up, or (with no pipe) we were given to
    /// another parent. The pipe alone decides when there is one, so a test of the pipe
    /// is not passed by the slower look at the parent.
    pub(crate) fn parent_gone(&self) -> bool {
        if let Some(fd) = self.pipe {
            return pipe_closed(fd);
        }
        // SAFETY: getppid has no preconditions.
        self.parent != 0 && unsafe { libc::getppid() } as u32 != self.parent
    }

    /// Returns when the bridge is gone.
    pub(crate) fn wait_until_parent_gone(&self) {
        while !self.parent_gone() {
            match self.pipe {
                Some(fd) if !self.by_signal => wait_readable(fd, WATCH_PERIOD),
                _ => super::os::wait_signal(&self.signals, WATCH_PERIOD),
            }
        }
    }

    /// The mark for the CLI's tree ([`TREE_ENV`]).
    pub(crate) fn tree_mark(&self) -> String {
        tree_mark(self.parent, std::process::id())
    }

    /// The variables the CLI must not see.
    pub(crate) fn private_env() -> [&'static str; 1] {
        [PIPE_ENV]
    }
}

/// Whether the pipe's read end `fd` sees EOF: nobody holds the write end any more.
fn pipe_closed(fd: RawFd) -> bool {
    if !poll_hangup(fd, 0) && !readable(fd) {
        return false;
    }
    let mut byte = 0u8;
    // SAFETY: reads at most one byte into `byte`; nobody writes to this pipe, so a
    // readable pipe is one at EOF and the read does not block.
    let n = unsafe { libc::read(fd, (&raw mut byte).cast(), 1) };
    n == 0
}

fn readable(fd: RawFd) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, a zero timeout; poll only writes `revents`.
    unsafe { libc::poll(&mut poll, 1, 0) > 0 && poll.revents & libc::POLLIN != 0 }
}

/// Blocks until `fd` is readable or hung up, or `timeout` passed.
fn wait_readable(fd: RawFd, timeout: Duration) {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one pollfd; poll only writes `revents`.
    unsafe { libc::poll(&mut poll, 1, millis) };
}

/// The signals a group-wide stop sends (TERM, INT, HUP), blocked in the guard, so such
/// a signal reaches the CLI while the guard stays to clean up after it.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset touches it; blocking only
    // affects this thread and the threads started after.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// The CLI starts with no signal blocked: the mask survives exec, and without this the
/// CLI could not be stopped by SIGTERM.
pub(super) fn unblock_signals_in_child(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
}

/// Waits for `cli`, reaping any other child meanwhile (the orphans a subreaper adopts
/// must be reaped, or they stay zombies); returns the CLI's status.
pub(crate) fn wait_reaping(cli: u32) -> Option<ExitStatus> {
    loop {
        let mut raw = 0;
        // SAFETY: waits for any child of ours, writing its status into `raw`.
        let pid = unsafe { libc::waitpid(-1, &mut raw, 0) };
        if pid > 0 && pid as u32 == cli {
            return Some(ExitStatus::from_raw(raw));
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return None;
        }
    }
}

/// Lets go of the pipes the CLI now holds: the bridge must see EOF when the CLI closes
/// its stdout, not when the guard exits.
pub(crate) fn release_stdio() {
    // SAFETY: opens /dev/null and dup2s it over our own fds 0-2; no memory is shared.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null < 0 {
            return;
        }
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        if null > 2 {
            libc::close(null);
        }
    }
}

/// Exits the way `status` says: the same code, or the same signal raised on ourselves.
pub(crate) fn mirror_exit(status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    let Some(signal) = status.signal() else {
        return 1;
    };
    // SAFETY: restoring the default action and re-raising affects only this process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::signal(signal, libc::SIG_DFL);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
    128 + signal
}

/// `poll` says `fd`'s peer is gone: a hang-up, an error, or one of `extra`.
pub(super) fn poll_hangup(fd: RawFd, extra: libc::c_short) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN | extra,
        revents: 0,
    };
    // SAFETY: one pollfd, a zero timeout; poll only writes `revents`.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & (libc::POLLHUP | libc::POLLERR | extra) != 0
}

/// `poll` with `POLLOUT` reports a hang-up, an error, or a closed descriptor.
pub(super) fn hung_up_both_ways(fd: RawFd) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one pollfd, a zero timeout; poll only writes `revents`.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

/// A pipe or a socket, from `fstat`.
pub(super) fn queue_kind(fd: RawFd) -> Option<OutputQueue> {
    // SAFETY: fstat only writes into the zeroed struct we pass.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return None;
    }
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFIFO => Some(OutputQueue::Pipe),
        libc::S_IFSOCK => Some(OutputQueue::Socket),
        _ => None,
    }
}

/// NUL-terminated strings, each without its NUL.
pub(super) type Strings = Vec<Vec<u8>>;

/// macOS's `KERN_PROCARGS2` argument area (here, where the Linux tests reach it): its layout: `argc` (a native int), the executable's path, NUL padding,
/// `argc` arguments, then the environment, each NUL-terminated, ending at an empty one.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub(super) fn split_procargs(area: &[u8]) -> Option<(Strings, Strings)> {
    let argc = usize::try_from(i32::from_ne_bytes(area.get(..4)?.try_into().ok()?)).ok()?;
    let rest = area.get(4..)?;
    let path_end = rest.iter().position(|b| *b == 0)?;
    let rest = &rest[path_end..];
    let start = rest.iter().position(|b| *b != 0)?;
    let mut strings = rest[start..].split(|b| *b == 0);
    let arguments: Vec<Vec<u8>> = strings.by_ref().take(argc).map(<[u8]>::to_vec).collect();
    let environment = strings
        .take_while(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    Some((arguments, environment))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit now in
/// force (`None` when it cannot be read, or is unlimited).
pub(super) fn raise_descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given, which lives through the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        // macOS refuses more than OPEN_MAX (10240) for an unlimited hard limit.
        let wanted = [limit.rlim_max, 10240.max(limit.rlim_cur)];
        for cur in wanted {
            let raised = libc::rlimit {
                rlim_cur: cur,
                rlim_max: limit.rlim_max,
            };
            // SAFETY: setrlimit reads the struct it is given, which lives through the call.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                limit.rlim_cur = cur;
                break;
            }
        }
    }
    match limit.rlim_cur {
        libc::RLIM_INFINITY => None,
        #[allow(clippy::unnecessary_cast)]
        cur => Some(cur as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, parent: u32) -> Process {
        Process {
            pid,
            parent,
            group: parent,
            zombie: false,
        }
    }

    #[test]
    fn a_socket_is_gone_when_its_peer_closes_not_when_it_only_stops_writing() {
        use std::os::fd::AsRawFd;
        let (ours, peer) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(!hung_up_both_ways(ours.as_raw_fd()));
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(!hung_up_both_ways(ours.as_raw_fd()));
        drop(peer);
        assert!(hung_up_both_ways(ours.as_raw_fd()));
    }

    #[test]
    fn a_pipes_write_end_is_gone_once_its_reader_is() {
        use std::os::fd::AsRawFd;
        let (reader, writer) = std::io::pipe().unwrap();
        assert!(!hung_up_both_ways(writer.as_raw_fd()));
        drop(reader);
        assert!(hung_up_both_ways(writer.as_raw_fd()));
    }

    #[test]
    fn the_portable_hang_up_check_sees_a_pipe_whose_writer_closed_with_data_unread() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let (reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(b"unread").unwrap();
        assert!(!poll_hangup(reader.as_raw_fd(), 0));
        drop(writer);
        assert!(poll_hangup(reader.as_raw_fd(), 0));
    }

    #[test]
    fn descendants_are_found_at_any_depth_and_zombies_left_out() {
        let mut listing = vec![
            process(10, 1),
            process(11, 10),
            process(12, 11),
            process(13, 12),
            process(20, 1),
        ];
        listing[3].zombie = true;
        let mut found = descendants(10, &listing);
        found.sort();
        assert_eq!(found, [11, 12]);
        assert!(descendants(20, &listing).is_empty());
    }

    #[test]
    fn the_pipe_tells_the_guard_when_its_last_writer_is_gone() {
        use std::os::fd::AsRawFd;
        let (reader, writer) = std::io::pipe().unwrap();
        let link = GuardLink {
            parent: 0,
            pipe: Some(reader.as_raw_fd()),
            signals: block_stop_signals_for_test(),
            by_signal: false,
        };
        assert!(!link.parent_gone());
        let waiter = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            link.wait_until_parent_gone();
            (started.elapsed(), reader)
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(writer);
        let (waited, _reader) = waiter.join().unwrap();
        // Woken by the hang-up, not by the next look at the parent.
        assert!(
            waited < Duration::from_millis(50) + WATCH_PERIOD,
            "{waited:?}"
        );
    }

    /// An empty set: the test thread keeps its signals.
    fn block_stop_signals_for_test() -> libc::sigset_t {
        // SAFETY: sigemptyset initialises the set.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            set
        }
    }

    #[test]
    fn a_process_that_left_the_tree_is_found_by_its_mark() {
        let mark = format!("test-{}", std::process::id());
        let mut orphan = std::process::Command::new("sleep")
            .arg("60")
            .env(TREE_ENV, &mark)
            .spawn()
            .unwrap();
        let orphan_pid = orphan.id();
        // Not below the root we name: found only by its mark.
        let listing = crate::platform::processes();
        assert!(!descendants(1_000_000, &listing).contains(&orphan_pid));
        let found = tree(1_000_000, &mark, &listing);
        assert_eq!(found, [orphan_pid]);
        end_tree(1_000_000, &mark);
        let status = orphan.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(tree(1_000_000, &mark, &crate::platform::processes()).is_empty());
    }

    #[test]
    fn the_children_of_a_marked_process_are_found_without_the_mark() {
        let mark = format!("test-children-{}", std::process::id());
        let mut marked = std::process::Command::new("sh")
            .args(["-c", "env -u CLAUDE_CODED_TREE sleep 60 & wait"])
            .env(TREE_ENV, &mark)
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let unmarked = loop {
            let listing = crate::platform::processes();
            if let Some(child) = descendants(marked.id(), &listing).first() {
                break *child;
            }
            assert!(std::time::Instant::now() < deadline, "sh started no child");
            std::thread::sleep(Duration::from_millis(10));
        };
        let found = tree(1_000_000, &mark, &crate::platform::processes());
        assert!(
            found.contains(&marked.id()) && found.contains(&unmarked),
            "{found:?}"
        );
        end_tree(1_000_000, &mark);
        assert_eq!(marked.wait().unwrap().signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn the_macos_argument_area_splits_into_arguments_and_environment() {
        let mut area = 2i32.to_ne_bytes().to_vec();
        area.extend_from_slice(
            b"/usr/bin/claude-coded\0\0\0\0claude-coded\0__guard\0HOME=/h\0A=b\0\0junk",
        );
        let (arguments, environment) = split_procargs(&area).unwrap();
        assert_eq!(arguments, [b"claude-coded".to_vec(), b"__guard".to_vec()]);
        assert_eq!(environment, [b"HOME=/h".to_vec(), b"A=b".to_vec()]);
        assert!(split_procargs(b"\x02").is_none());
    }
}
