//! What the stdin reader and the turn runner share: the writer, the command line, the
//! session id and cwd, and the state control requests change (model, permission mode,
//! the running turn, our own pending `can_use_tool` requests).
//!
//! Like the real CLI, a resumed session's `total_cost_usd` counts what its earlier
//! processes spent (while `--max-budget-usd` counts this process's spending alone): each
//! result's total is kept in `$HOME/.claude-double/costs/<session id>`, read back by a
//! process that resumes that session (measured with the real CLI 2.1.332: a first turn at
//! $0.00014, then `--resume` with `--max-budget-usd 0.0002` succeeds with a total of
//! $0.00028).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::{oneshot, watch};

use crate::DEFAULT_MODEL;
use crate::args::Args;
use crate::ids::uuid4;
use crate::out::Out;

/// The running turn, as an interrupt sees it.
pub(crate) struct TurnCtl {
    pub(crate) interruptible: bool,
    pub(crate) interrupt: watch::Sender<bool>,
}

pub(crate) struct State {
    pub(crate) model: String,
    pub(crate) permission_mode: String,
    pub(crate) turn: Option<TurnCtl>,
    /// Our `can_use_tool` requests waiting for the host's answer, by request_id.
    pub(crate) pending: HashMap<String, oneshot::Sender<Value>>,
    pub(crate) stdin_closed: bool,
    /// Interrupts still to be ignored (`DOUBLE_IGNORE_INTERRUPTS`).
    pub(crate) ignore_interrupts: u32,
}

pub(crate) struct Shared {
    pub(crate) out: Out,
    pub(crate) args: Args,
    pub(crate) session_id: String,
    pub(crate) cwd: String,
    /// What the resumed session's earlier processes spent (0 for a new session).
    pub(crate) earlier_cost_usd: f64,
    state: Mutex<State>,
}

/// Where the running total of `session_id` is kept between processes.
fn cost_file(session_id: &str) -> Option<std::path::PathBuf> {
    let home = std::env::var_os("HOME")?;
    // Only ids the CLI itself would write: nothing else becomes a path.
    let safe = !session_id.is_empty()
        && session_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    safe.then(|| {
        std::path::Path::new(&home)
            .join(".claude-double/costs")
            .join(session_id)
    })
}

/// The running total last kept for `session_id` (0 when none was).
fn kept_cost(session_id: &str) -> f64 {
    cost_file(session_id)
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Keeps `total` as the running total of `session_id`, for a later `--resume`.
pub(crate) fn keep_cost(session_id: &str, total: f64) {
    if let Some(path) = cost_file(session_id) {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(path, total.to_string());
    }
}

impl Shared {
    pub(crate) fn new(args: Args) -> Shared {
        let session_id = args
            .session_id
            .clone()
            .or_else(|| args.resume.clone().filter(|_| !args.fork_session))
            .unwrap_or_else(uuid4);
        let cwd = std::env::current_dir()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let state = State {
            model: args
                .model
                .clone()
                .unwrap_or_else(|| DEFAULT_MODEL.to_string()),
            permission_mode: args
                .permission_mode
                .clone()
                .unwrap_or_else(|| "default".to_string()),
            turn: None,
            pending: HashMap::new(),
            stdin_closed: false,
            ignore_interrupts: std::env::var("DOUBLE_IGNORE_INTERRUPTS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        };
        let earlier_cost_usd = args.resume.as_deref().map_or(0.0, kept_cost);
        Shared {
            out: Out::new(),
            args,
            session_id,
            cwd,
            earlier_cost_usd,
            state: Mutex::new(state),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another task panicked; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn partial(&self) -> bool {
        self.args.include_partial_messages
    }
}
