//! Small synchronisation helpers shared by the modules that keep state behind a mutex.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, taking the data even if a panicking thread poisoned it: every mutex here
/// guards plain state (counters, buffers, the last error) that a panic mid-update cannot
/// leave inconsistent enough to matter, and a bridge that stops serving over it would be
/// worse.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `work`, which blocks (a file written and synced to disk), without holding up the
/// runtime's other tasks: on a multi-threaded runtime its worker hands them to another
/// thread for the while ([`tokio::task::block_in_place`]). The server runs on one
/// worker, so a sync there would stall every session and every client until the disk
/// answered. Elsewhere (a test's single-threaded runtime, no runtime) it simply runs.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
