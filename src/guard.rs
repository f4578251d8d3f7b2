//! The guard: a tiny process between the bridge and the CLI that takes the CLI's whole
//! process group down when the bridge dies, even by SIGKILL.
//!
//! `PR_SET_PDEATHSIG` only reaches the bridge's direct child, and the CLI's tool processes
//! (a Bash command, an MCP server) are its children, not ours. So the bridge starts
//! `claude-coded __guard <cli> <args...>` as the leader of a new process group; the guard
//! asks for SIGTERM when the bridge dies, starts the CLI in the same group with
//! inherited stdio, and on that signal kills the group. Otherwise it only waits and
//! exits the way the CLI did, so the bridge sees the CLI's own exit code or signal.
//!
//! A tool process can leave the group (`setsid nohup sleep 307 &` in a Bash tool), and
//! once its parent exits it would be adopted by init, out of reach. The guard is a child
//! subreaper (`PR_SET_CHILD_SUBREAPER`), so such orphans are adopted by the guard
//! instead: every process the CLI ever started stays a descendant of the guard, and is
//! ended with the group ([`kill_descendants`], by the guard or by the bridge before it
//! SIGKILLs the group). The guard reaps the orphans it adopts as they exit.

use std::ffi::OsString;

/// First argument that selects guard mode.
pub const GUARD_ARG: &str = "__guard";
/// The bridge's pid, so the guard can tell "the bridge died" from a group-wide SIGTERM.
pub const PARENT_ENV: &str = "CLAUDE_CODED_GUARD_PARENT";

/// Runs the guard when the command line asks for it; returns its exit code.
pub fn main_if_guard() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != GUARD_ARG {
        return None;
    }
    let program = args.next()?;
    Some(run(program, args.collect()))
}

#[cfg(target_os = "linux")]
fn run(program: OsString, args: Vec<OsString>) -> i32 {
    use std::os::unix::process::CommandExt;

    let parent: libc::pid_t = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let signals = death_signals();
    // SAFETY: plain libc calls on a properly initialised sigset and our own process.
    unsafe {
        // Blocked here, so the waiting thread below takes them with sigwait.
        libc::pthread_sigmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        // Orphaned descendants become ours, not init's (see the module doc).
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    if parent_gone(parent) {
        kill_group();
    }
    let mut command = std::process::Command::new(&program);
    command.args(&args).env_remove(PARENT_ENV);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            // The mask survives exec: without this the CLI could not be stopped by SIGTERM.
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            eprintln!(
                "claude-coded guard: cannot start {}: {err}",
                program.to_string_lossy()
            );
            return 127;
        }
    };
    release_stdio();
    std::thread::spawn(move || watch_parent(signals, parent));
    let status = wait_reaping(child.id() as libc::pid_t);
    // The CLI may exit on its own as the bridge dies (its stdin closes first), before we
    // notice; its tool processes must not outlive it either way.
    kill_rest_of_group();
    // SAFETY: getpid has no preconditions.
    kill_descendants(unsafe { libc::getpid() });
    match status {
        Some(status) => mirror(status),
        None => 1,
    }
}

/// Waits for the CLI, reaping the orphans adopted meanwhile (a subreaper must, or they
/// stay zombies); returns the CLI's status.
#[cfg(target_os = "linux")]
fn wait_reaping(cli: libc::pid_t) -> Option<std::process::ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    loop {
        let mut raw = 0;
        // SAFETY: waits for any child of ours, writing its status into `raw`.
        let pid = unsafe { libc::waitpid(-1, &mut raw, 0) };
        if pid == cli {
            return Some(std::process::ExitStatus::from_raw(raw));
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return None;
        }
    }
}

/// SIGKILLs every live descendant of `root` (not `root` itself), whatever its process
/// group or session: the children of the CLI and theirs, and the orphans a subreaper
/// `root` adopted. Repeats while a scan finds any, since one may fork while we kill.
#[cfg(target_os = "linux")]
pub fn kill_descendants(root: libc::pid_t) {
    for _ in 0..20 {
        let found = descendants(root);
        if found.is_empty() {
            return;
        }
        for pid in found {
            // SAFETY: signals a process that descends from `root`.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn kill_descendants(_root: libc::pid_t) {}

/// Live (not zombie) descendants of `root`, from one pass over /proc.
#[cfg(target_os = "linux")]
fn descendants(root: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: std::collections::HashMap<libc::pid_t, Vec<(libc::pid_t, bool)>> =
        std::collections::HashMap::new();
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok()) {
        if let Some(stat) = stat_fields(pid) {
            children
                .entry(stat.parent)
                .or_default()
                .push((pid, stat.zombie));
        }
    }
    let mut found = Vec::new();
    let mut pending = vec![root];
    while let Some(parent) = pending.pop() {
        for (pid, zombie) in children.get(&parent).into_iter().flatten() {
            pending.push(*pid);
            if !zombie {
                found.push(*pid);
            }
        }
    }
    found
}

/// What /proc/<pid>/stat says about a process.
#[cfg(target_os = "linux")]
struct Stat {
    zombie: bool,
    parent: libc::pid_t,
    group: libc::pid_t,
}

#[cfg(target_os = "linux")]
fn stat_fields(pid: libc::pid_t) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (which may hold spaces and parentheses): state, ppid, pgrp.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let zombie = fields.next()? == "Z";
    let parent = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    Some(Stat {
        zombie,
        parent,
        group,
    })
}

/// SIGKILLs every other member of our process group (we lead it), found through /proc.
#[cfg(target_os = "linux")]
fn kill_rest_of_group() {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    // Repeat: a member may fork while we scan.
    for _ in 0..5 {
        let members = group_members(me);
        if members.is_empty() {
            return;
        }
        for pid in members {
            // SAFETY: signals a process of our own group.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Live processes (not zombies) whose process group is `group`, except `group` itself.
#[cfg(target_os = "linux")]
fn group_members(group: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| *pid != group)
        .filter(|pid| stat_fields(*pid).is_some_and(|s| s.group == group && !s.zombie))
        .collect()
}

#[cfg(not(target_os = "linux"))]
fn run(program: OsString, args: Vec<OsString>) -> i32 {
    // No parent-death signal here: run the CLI plainly and mirror its exit.
    match std::process::Command::new(program).args(args).status() {
        Ok(status) => mirror(status),
        Err(_) => 127,
    }
}

/// Lets go of the pipes the CLI now holds: the bridge must see EOF when the CLI closes
/// its stdout, not when the guard exits.
#[cfg(target_os = "linux")]
fn release_stdio() {
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

#[cfg(target_os = "linux")]
fn death_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset touches it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Waits for the blocked signals; when one comes and the bridge is gone, ends the group.
/// While the bridge lives, a signal was aimed at the whole group and the CLI has it too.
///
/// It also looks every `PARENT_POLL`: the death signal fires when the *thread* that
/// started us exits, and two signals close together merge into one, so a signal alone
/// can arrive while the bridge is still half alive and the final one never come.
#[cfg(target_os = "linux")]
fn watch_parent(signals: libc::sigset_t, parent: libc::pid_t) {
    let poll = libc::timespec {
        tv_sec: 0,
        tv_nsec: PARENT_POLL_NANOS,
    };
    loop {
        // SAFETY: waits on a valid sigset whose signals are blocked in every thread.
        unsafe { libc::sigtimedwait(&signals, std::ptr::null_mut(), &poll) };
        if parent_gone(parent) {
            kill_group();
        }
    }
}

/// How often the guard checks that the bridge is still its parent.
#[cfg(target_os = "linux")]
const PARENT_POLL_NANOS: libc::c_long = 200_000_000;

#[cfg(target_os = "linux")]
fn parent_gone(parent: libc::pid_t) -> bool {
    // SAFETY: getppid has no preconditions.
    parent != 0 && unsafe { libc::getppid() } != parent
}

#[cfg(target_os = "linux")]
fn kill_group() {
    // Those outside the group first: once we are gone they would be init's.
    // SAFETY: getpid has no preconditions.
    kill_descendants(unsafe { libc::getpid() });
    // SAFETY: signals our own process group, this process included.
    unsafe {
        libc::killpg(0, libc::SIGKILL);
    }
}

/// Exits the way the CLI did: same code, or the same signal.
fn mirror(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
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
