//! The state the actor publishes after every step.

use tokio::time::Instant;

use crate::api::{ChildInfo, ChildStatus, QueueInfo, Totals, TurnInfo};
use crate::clock::now_rfc3339;
use crate::config::Config;

/// A consistent picture of one supervised child.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub child: ChildInfo,
    /// The turn in flight; `elapsed_ms` is filled in by [`Snapshot::turn_now`].
    pub turn: Option<(TurnInfo, Instant)>,
    pub queue: QueueInfo,
    pub totals: Totals,
}

impl Snapshot {
    pub(crate) fn initial(config: &Config) -> Snapshot {
        Snapshot {
            child: ChildInfo {
                status: ChildStatus::Idle,
                status_since: now_rfc3339(),
                ready: false,
                pid: None,
                cli_pid: None,
                started_at: None,
                ready_at: None,
                exited_at: None,
                exit_code: None,
                signal: None,
                last_error: None,
                restart_count: 0,
                consecutive_failures: 0,
                next_restart_at: None,
                session_id: None,
                session_cost_usd: None,
                resumed_from: None,
                cli_version: None,
                stderr_tail: Vec::new(),
                commands: None,
            },
            turn: None,
            queue: QueueInfo {
                length: 0,
                capacity: config.queue_size,
                waiting: Vec::new(),
            },
            totals: Totals::default(),
        }
    }

    /// The turn in flight with its elapsed time as of now.
    pub(crate) fn turn_now(&self) -> Option<TurnInfo> {
        self.turn.as_ref().map(|(info, started)| TurnInfo {
            elapsed_ms: started.elapsed().as_millis() as u64,
            ..info.clone()
        })
    }
}
