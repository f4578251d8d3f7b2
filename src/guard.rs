//! The guard: a tiny process between the bridge and the CLI that takes the CLI's whole
//! process group down when the bridge dies, even by SIGKILL.
//!
//! `PR_SET_PDEATHSIG` only reaches the bridge's direct child, and the CLI's tool processes
//! (a Bash command, an MCP server) are its children, not ours. So the bridge starts
//! `claude-coded __guard <cli> <args...>` as the leader of a new process group; the guard
//! asks for SIGTERM when the bridge dies, starts the CLI in the same group with
//! inherited stdio, and on that signal kills the group. Otherwise it only waits and
//! exits the way the CLI did, so the bridge sees the CLI's own exit code or signal.

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
    let mut child = match command.spawn() {
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
    let status = child.wait();
    // The CLI may exit on its own as the bridge dies (its stdin closes first), before we
    // notice; its tool processes must not outlive it either way.
    kill_rest_of_group();
    match status {
        Ok(status) => mirror(status),
        Err(_) => 1,
    }
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
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command name: state, ppid, pgrp.
            let mut fields = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest)
                .unwrap_or("")
                .split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|g| g.parse::<libc::pid_t>().ok());
            pgrp == Some(group) && state != Some("Z")
        })
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
