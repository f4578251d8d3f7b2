//! The guard: a tiny process between the bridge and the CLI that takes the CLI's whole
//! process group down when the bridge dies, even by SIGKILL.
//!
//! A parent-death notice only reaches the bridge's direct child, and the CLI's tool processes
//! (a Bash command, an MCP server) are its children, not ours. So the bridge starts
//! `claude-coded __guard <cli> <args...>` as the leader of a new process group; the guard
//! learns when the bridge dies, starts the CLI in the same group with
//! inherited stdio, and on that signal kills the group. Otherwise it only waits and
//! exits the way the CLI did, so the bridge sees the CLI's own exit code or signal.
//!
//! A tool process can leave the group (`setsid nohup sleep 307 &` in a Bash tool), and
//! once its parent exits it would be adopted by init, out of reach. On Linux the guard is
//! a child subreaper (`PR_SET_CHILD_SUBREAPER`), so such orphans are adopted by the guard
//! instead: every process the CLI ever started stays a descendant of the guard. Everywhere
//! the CLI's environment carries the guard's mark (`CLAUDE_CODED_TREE`), which such a
//! process keeps; the tree (descendants and marked processes) is ended with the group, by
//! the guard or by the bridge before it SIGKILLs the group. The guard reaps the orphans
//! it adopts as they exit.
//!
//! How the guard notices the bridge's death, how it finds the tree and how it waits are
//! the platform layer's (`src/platform`): Linux's parent-death signal, or a pipe whose
//! write end only the bridge holds.

use std::ffi::OsString;

use crate::platform;

/// First argument that selects guard mode.
pub const GUARD_ARG: &str = "__guard";
/// The bridge's pid, so the guard can tell "the bridge died" from a group-wide SIGTERM.
pub const PARENT_ENV: &str = "CLAUDE_CODED_GUARD_PARENT";
/// Set to `1` for a debug build on Linux to run the guard's portable mechanisms (the
/// ones macOS runs) instead of Linux's; for the tests.
pub use crate::platform::PORTABLE_ENV;

/// Runs the guard when the command line asks for it; returns its exit code.
pub fn main_if_guard() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != GUARD_ARG {
        return None;
    }
    let program = args.next()?;
    Some(run(program, args.collect()))
}

fn run(program: OsString, args: Vec<OsString>) -> i32 {
    let link = platform::guard_link(PARENT_ENV);
    if link.parent_gone() {
        platform::end_everything(link.parent, true);
    }
    let mut command = std::process::Command::new(&program);
    command
        .args(&args)
        .env_remove(PARENT_ENV)
        .env(platform::TREE_ENV, link.tree_mark());
    platform::prepare_cli(&mut command);
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
    platform::release_stdio();
    let parent = link.parent;
    std::thread::spawn(move || {
        link.wait_until_parent_gone();
        // Those outside the group first: once we are gone they would be init's.
        platform::end_everything(parent, true);
    });
    let status = platform::wait_reaping(child.id());
    // The CLI may exit on its own as the bridge dies (its stdin closes first), before we
    // notice; its tool processes must not outlive it either way.
    platform::end_everything(parent, false);
    match status {
        Some(status) => platform::mirror_exit(status),
        None => 1,
    }
}
