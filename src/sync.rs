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
