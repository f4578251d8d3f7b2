//! What the stdin reader and the turn runner share: the writer, the command line, the
//! session id and cwd, and the state control requests change (model, permission mode,
//! the running turn, our own pending `can_use_tool` requests).

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
    state: Mutex<State>,
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
        Shared {
            out: Out::new(),
            args,
            session_id,
            cwd,
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
