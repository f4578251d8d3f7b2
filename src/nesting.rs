//! Nesting: how deep this claude-coded runs in a chain claude-coded → CLI → claude-coded,
//! and whether it may start a CLI child of its own.
//!
//! The CLI child runs in the user's project with the user's HOME, so it loads the same MCP
//! configuration that started us and starts claude-coded again, whose child would do the
//! same, without end. Two facts bound that, whatever the MCP configuration says:
//!
//! - we tell our child how deep it runs ([`DEPTH_ENV`]) and the limit in force
//!   ([`LIMIT_ENV`]); a nested claude-coded can lower the limit (its own `--max-depth`)
//!   but never raise it;
//! - we count our guard processes (`claude-coded __guard`) among our ancestors, so a
//!   configuration that overwrites those variables (an MCP server's `env`) cannot reset
//!   the depth either; and each guard carries the limit in its own command line
//!   (`argv[0]`, `claude-coded:limit=N`), which a process below cannot rewrite, so an
//!   agent that overwrites the limit variable and passes `--max-depth` cannot raise it.
//!
//! A claude-coded whose depth has reached the limit serves the protocol but starts no
//! child: its `ask` fails at once and says which flag raises the limit.
//!
//! The child can also reach the claude-coded that runs it, through its socket
//! (`claude-coded ask` from a Bash tool). An ask from inside a session's running turn to
//! that same session would wait behind the turn that waits for it; the socket knows the
//! asking process from the kernel ([`Caller`], `SO_PEERCRED`), so such an ask is told by
//! whether that process descends from the session's child ([`Caller::runs_under`]),
//! which an agent cannot fake for another's ask (nor escape: a tool process that left the
//! group is adopted by the guard, which stays its ancestor).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::guard::GUARD_ARG;

/// Set for the child: how many claude-coded run above it (the top one's child gets 1).
pub const DEPTH_ENV: &str = "CLAUDE_CODED_DEPTH";
/// Set for the child: the limit in force, which nested servers may lower, never raise.
pub const LIMIT_ENV: &str = "CLAUDE_CODED_DEPTH_LIMIT";
/// The highest `--max-depth` accepted: nesting stays bounded even when a user raises it.
pub const MAX_DEPTH_CAP: u32 = 8;
/// How far up the process tree the guard count looks (a chain is never this deep).
const ANCESTRY_LIMIT: usize = 64;

/// Where this claude-coded stands in a chain of nested ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Nesting {
    /// claude-coded servers above this one: 0 when a person or an editor started it.
    pub depth: u32,
    /// The depth at which servers stop starting children (`--max-depth`, lowered by any
    /// server above).
    pub limit: u32,
}

impl Nesting {
    /// Reads the environment and the process tree of this process.
    pub fn detect(max_depth: u32) -> Nesting {
        let depth = std::env::var(DEPTH_ENV).ok();
        let limit = std::env::var(LIMIT_ENV).ok();
        let guards = guard_ancestors();
        let nesting =
            Nesting::from_facts(max_depth, depth.as_deref(), limit.as_deref(), guards.count);
        match guards.lowest_limit {
            Some(fixed) => Nesting {
                limit: nesting.limit.min(fixed),
                ..nesting
            },
            None => nesting,
        }
    }

    /// The nesting from what was found: the variables as set (or not), the guards counted.
    /// Unreadable variables count as absent; the guard count still bounds the depth.
    pub fn from_facts(
        max_depth: u32,
        depth_var: Option<&str>,
        limit_var: Option<&str>,
        guards: u32,
    ) -> Nesting {
        let said_depth = depth_var.and_then(|d| d.trim().parse::<u32>().ok());
        let said_limit = limit_var.and_then(|l| l.trim().parse::<u32>().ok());
        let depth = said_depth.unwrap_or(0).max(guards);
        let limit = said_limit
            .map_or(max_depth, |inherited| inherited.min(max_depth))
            .min(MAX_DEPTH_CAP);
        Nesting { depth, limit }
    }

    /// Whether this server may run a CLI child.
    pub fn may_start_child(&self) -> bool {
        self.depth < self.limit
    }

    /// Whether another claude-coded runs above this one.
    pub fn is_nested(&self) -> bool {
        self.depth > 0
    }

    /// The variables that tell our child where it runs.
    pub fn child_env(&self) -> [(String, String); 2] {
        [
            (DEPTH_ENV.to_string(), (self.depth + 1).to_string()),
            (LIMIT_ENV.to_string(), self.limit.to_string()),
        ]
    }

    /// Why an ask cannot run here; names the flag that changes it.
    pub fn refusal(&self) -> String {
        format!(
            "nesting limit: this claude-coded runs inside another one's Claude Code (depth {} of \
             at most {}), so it starts no Claude Code of its own; the sub-agent should do the work \
             itself. The user can allow deeper delegation with --max-depth (at most {MAX_DEPTH_CAP}) \
             on the outermost claude-coded.",
            self.depth, self.limit
        )
    }
}

/// The process that sent a request, as the kernel reports it for a socket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caller(pub(crate) u32);

impl Caller {
    /// Whether this process is `ancestor` or runs below it (a child's tool, a nested
    /// claude-coded): the guard of a session's child is the ancestor of all it runs, or,
    /// for a tool process that left the group where no subreaper adopts it (macOS), it
    /// still carries the guard's mark in its environment.
    pub(crate) fn runs_under(self, ancestor: u32) -> bool {
        descends_from(self.0, ancestor) || crate::platform::carries_tree_mark(self.0, ancestor)
    }
}

/// Whether `pid` is `ancestor` or has it among its ancestors (the process table); false
/// when the chain cannot be read, so an unknown process is never refused for it.
fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut pid = pid;
    for _ in 0..ANCESTRY_LIMIT {
        if pid == ancestor {
            return true;
        }
        if pid <= 1 {
            return false;
        }
        match crate::platform::parent_of(pid) {
            Some(parent) => pid = parent,
            None => return false,
        }
    }
    false
}

/// The guard's `argv[0]`: its name and the limit in force when it was started.
pub(crate) fn guard_arg0(limit: u32) -> String {
    format!("{GUARD_ARG0}{limit}")
}

/// What the guards above say: how many, and the lowest limit one carries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Guards {
    count: u32,
    lowest_limit: Option<u32>,
}

/// `argv[0]` of a guard, before its limit.
const GUARD_ARG0: &str = "claude-coded:limit=";

/// The limit a guard's command line carries (`None` for one without: an older guard).
fn guard_limit(argv0: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(argv0).ok()?;
    text.strip_prefix(GUARD_ARG0)?.parse().ok()
}

/// The `claude-coded __guard` processes above this one.
fn guard_ancestors() -> Guards {
    let mut guards = Guards::default();
    let mut pid = std::os::unix::process::parent_id();
    for _ in 0..ANCESTRY_LIMIT {
        if pid <= 1 {
            break;
        }
        if let Some(limit) = guard_of(pid) {
            guards.count += 1;
            guards.lowest_limit = match (guards.lowest_limit, limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        match crate::platform::parent_of(pid) {
            Some(parent) => pid = parent,
            None => break,
        }
    }
    guards
}

/// `Some(the limit it carries)` when `pid` runs claude-coded's guard mode (second
/// argument `__guard`), `None` when it does not.
fn guard_of(pid: u32) -> Option<Option<u32>> {
    let args = crate::platform::arguments(pid)?;
    let argv0 = args.first()?;
    (args.get(1).map(Vec::as_slice) == Some(GUARD_ARG.as_bytes())).then(|| guard_limit(argv0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_started_by_a_person_may_start_its_child() {
        let top = Nesting::from_facts(1, None, None, 0);
        assert_eq!(top, Nesting { depth: 0, limit: 1 });
        assert!(top.may_start_child());
        assert!(!top.is_nested());
        assert_eq!(
            top.child_env(),
            [
                (DEPTH_ENV.to_string(), "1".to_string()),
                (LIMIT_ENV.to_string(), "1".to_string())
            ]
        );
    }

    #[test]
    fn a_nested_server_at_the_default_limit_starts_no_child() {
        let nested = Nesting::from_facts(1, Some("1"), Some("1"), 1);
        assert!(nested.is_nested());
        assert!(!nested.may_start_child());
        assert!(
            nested.refusal().contains("--max-depth"),
            "{}",
            nested.refusal()
        );
    }

    #[test]
    fn a_nested_server_cannot_raise_the_limit_it_inherited() {
        let nested = Nesting::from_facts(5, Some("1"), Some("1"), 1);
        assert_eq!(nested.limit, 1);
        assert!(!nested.may_start_child());
        let allowed = Nesting::from_facts(1, Some("1"), Some("3"), 1);
        assert_eq!(allowed.limit, 1, "its own lower limit wins");
    }

    #[test]
    fn guards_above_count_even_when_the_variables_were_reset() {
        let reset = Nesting::from_facts(1, Some("0"), None, 2);
        assert_eq!(reset.depth, 2);
        assert!(!reset.may_start_child());
        let garbage = Nesting::from_facts(1, Some("-3"), Some("x"), 1);
        assert_eq!(garbage, Nesting { depth: 1, limit: 1 });
    }

    #[test]
    fn a_guard_carries_its_limit_in_its_command_line() {
        assert_eq!(guard_limit(guard_arg0(3).as_bytes()), Some(3));
        assert_eq!(guard_limit(b"claude-coded"), None);
        assert_eq!(guard_limit(b"claude-coded:limit=x"), None);
    }

    #[test]
    fn the_limit_never_exceeds_the_cap() {
        let raised = Nesting::from_facts(1000, None, Some("999"), 0);
        assert_eq!(raised.limit, MAX_DEPTH_CAP);
    }

    #[test]
    fn a_process_runs_under_its_ancestors_and_not_under_others() {
        let me = Caller(std::process::id());
        let parent = std::os::unix::process::parent_id();
        assert!(me.runs_under(std::process::id()));
        assert!(me.runs_under(parent));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(
            !me.runs_under(child.id()),
            "a parent does not run under its child"
        );
        assert!(Caller(child.id()).runs_under(std::process::id()));
        let _ = child.kill();
        let _ = child.wait();
        assert!(!Caller(u32::MAX).runs_under(parent), "an unknown process");
    }

    #[test]
    fn a_process_that_carries_a_guards_mark_runs_under_it_though_init_adopted_it() {
        // A guard pid that is nobody's ancestor here: only the mark can tell.
        let guard = u32::MAX - 1;
        let mark = format!("{}-{guard}", std::process::id());
        let mut marked = std::process::Command::new("sleep")
            .arg("5")
            .env(crate::platform::TREE_ENV, &mark)
            .spawn()
            .unwrap();
        let mut other = std::process::Command::new("sleep")
            .arg("5")
            .env(
                crate::platform::TREE_ENV,
                format!("{}-7", std::process::id()),
            )
            .spawn()
            .unwrap();
        assert!(Caller(marked.id()).runs_under(guard));
        assert!(
            !Caller(other.id()).runs_under(guard),
            "another guard's mark"
        );
        for child in [&mut marked, &mut other] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_test_process_has_no_guard_above_it() {
        assert_eq!(guard_ancestors(), Guards::default());
        assert_eq!(guard_of(std::process::id()), None);
    }
}
