//! Warm spares: CLIs spawned ahead of need, so a new session's first answer does not
//! wait for the CLI's cold start (`--spare-sessions N`).
//!
//! A spare is a CLI process started (under its guard, like any child) with the command
//! line, directory and environment that a fresh session of the default settings gets,
//! then left alone: it boots while nobody waits, and reads nothing until it is handed
//! over. When an actor starts a child whose [`SpawnSpec`] is exactly a spare's, it takes
//! the spare and its pipes instead of spawning, and a new spare is spawned behind it.
//! Anything else (`--resume`, a fork, a budget written into the command line, another
//! directory) spawns as before. Spares are the process's, not a session's: none is in
//! `status` or `sessions`, none runs a turn, and at most N exist beside the sessions'
//! children. They end with claude-coded like every child (their guards learn of its
//! death), or when [`Spares::clear`] is called at shutdown.

use std::sync::Mutex;

use crate::child::ChildError;
use crate::child::spawn::{SpawnSpec, Spawned, signal_group, spawn};
use crate::platform::Stop;
use crate::sync::lock;

/// The spares of this process.
pub(crate) struct Spares {
    ready: Mutex<Vec<(SpawnSpec, Spawned)>>,
}

/// The one pool of this process: spares are per command line, so one pool serves every
/// session (and every daemon embedded in the process).
pub(crate) fn pool() -> &'static Spares {
    static POOL: Spares = Spares {
        ready: Mutex::new(Vec::new()),
    };
    &POOL
}

impl Spares {
    /// A live spare started as `spec`, if there is one.
    pub(crate) fn take(&self, spec: &SpawnSpec) -> Option<Spawned> {
        let mut ready = lock(&self.ready);
        // A spare that died while it waited (its CLI failed to boot) is dropped.
        ready.retain_mut(|(_, spawned)| matches!(spawned.child.try_wait(), Ok(None)));
        let at = ready.iter().position(|(s, _)| s == spec)?;
        Some(ready.swap_remove(at).1)
    }

    /// Spawns spares of `spec` until `want` are ready.
    pub(crate) fn fill(&self, spec: &SpawnSpec, want: usize) -> Result<(), ChildError> {
        let have = lock(&self.ready).iter().filter(|(s, _)| s == spec).count();
        for _ in have..want {
            let spawned = spawn(spec)?;
            tracing::debug!(pid = spawned.pid, "a warm spare CLI is starting");
            lock(&self.ready).push((spec.clone(), spawned));
        }
        Ok(())
    }

    /// Ends every spare (at shutdown): their process groups are killed.
    pub(crate) fn clear(&self) {
        let spares = std::mem::take(&mut *lock(&self.ready));
        for (_, spawned) in spares {
            signal_group(spawned.pid, Stop::Kill);
        }
    }
}
