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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn work_that_blocks_the_one_worker_lets_the_other_tasks_run_meanwhile() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let got = runtime.block_on(async move {
            // The blocking work waits for a task queued behind it on the same worker.
            let blocked =
                tokio::spawn(
                    async move { super::blocking(|| rx.recv_timeout(Duration::from_secs(5))) },
                );
            tokio::spawn(async move { tx.send(()) });
            blocked.await.unwrap()
        });
        assert!(
            got.is_ok(),
            "the other task never ran while the work blocked"
        );
    }

    #[test]
    fn outside_a_runtime_the_work_simply_runs() {
        assert_eq!(super::blocking(|| 7), 7);
    }
}
