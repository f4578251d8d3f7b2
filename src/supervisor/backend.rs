//! How the actor gets a child: the one seam between the actor and real processes.
//!
//! The actor asks a [`Backend`] to start a child and to signal it; everything else already
//! goes through channels (lines for stdin on the child's [`Running::stdin`], its stdout,
//! stderr and exit as [`Tagged`] events). So a backend that plays the child in-process
//! (the tests' fake) drives the very same actor code, without a binary, under tokio's
//! paused clock.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::process::{Running, Tagged};
use crate::child::ChildError;
use crate::child::spawn::{CliSettings, Launch, SpawnSpec, signal_group};
use crate::config::Config;
use crate::nesting::Nesting;
use crate::platform::Stop;

/// Starts children for one actor and signals them.
pub(crate) trait Backend: Send + 'static {
    /// Starts child `generation` as `how` says; the child's pipe tasks report to
    /// `events`, tagged with `generation`.
    fn start(
        &mut self,
        generation: u64,
        how: &Launch<'_>,
        events: mpsc::Sender<Tagged>,
    ) -> Result<Started, ChildError>;

    /// Stops the process group led by `pid` as `signal` says.
    fn signal(&mut self, pid: u32, signal: Stop);
}

/// A child that was started, and what was run (for the `child.started` event).
pub(crate) struct Started {
    pub(crate) running: Running,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
}

/// How long after a spare was taken its replacement starts (see [`Processes::refill`]).
const REFILL_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts `--spare-sessions` spares of what a fresh session of the default settings
/// runs, unless some are kept already (a nested claude-coded keeps none). Spares are
/// otherwise filled when such a session starts; a surface that starts none (ACP, whose
/// sessions are its own) calls this instead.
pub(crate) fn keep_spares(config: &Config, daemon_id: &str, nesting: &Nesting) {
    if config.spare_sessions == 0 || nesting.is_nested() {
        return;
    }
    let settings = config.cli_settings();
    match SpawnSpec::from_settings(&settings, daemon_id, nesting, &Launch::default()) {
        Ok(spec) => {
            if let Err(err) = super::spares::pool().fill(&spec, config.spare_sessions) {
                tracing::warn!(%err, "a warm spare CLI could not be started");
            }
        }
        Err(err) => tracing::warn!(%err, "no warm spare: the CLI's command line is refused"),
    }
}

/// The real thing: the CLI under this executable's guard, in its own process group.
pub(crate) struct Processes {
    pub(crate) config: Arc<Config>,
    pub(crate) daemon_id: String,
    pub(crate) nesting: Nesting,
}

impl Processes {
    /// After a fresh start of the default kind (what a new session gets), keeps
    /// `--spare-sessions` spares of it waiting. A nested claude-coded keeps none: its
    /// children are started only when asked for. After a spare was taken, its
    /// replacement starts [`REFILL_AFTER`] later, so its cold start does not compete for
    /// the cores with the first turn of the session that took the spare.
    fn refill(&self, started: &SpawnSpec, settings: &CliSettings<'_>, took_spare: bool) {
        let want = self.config.spare_sessions;
        if want == 0 || self.nesting.is_nested() {
            return;
        }
        let fresh =
            SpawnSpec::from_settings(settings, &self.daemon_id, &self.nesting, &Launch::default());
        if !fresh.as_ref().is_ok_and(|fresh| fresh == started) {
            return;
        }
        let spec = started.clone();
        let fill = move || {
            if let Err(err) = super::spares::pool().fill(&spec, want) {
                tracing::warn!(%err, "a warm spare CLI could not be started");
            }
        };
        match took_spare {
            true => {
                tokio::spawn(async move {
                    tokio::time::sleep(REFILL_AFTER).await;
                    fill();
                });
            }
            false => fill(),
        }
    }
}

impl Backend for Processes {
    fn start(
        &mut self,
        generation: u64,
        how: &Launch<'_>,
        events: mpsc::Sender<Tagged>,
    ) -> Result<Started, ChildError> {
        let settings = self.config.cli_settings();
        let spec = SpawnSpec::from_settings(&settings, &self.daemon_id, &self.nesting, how)?;
        let max_line = self.config.max_child_line_bytes;
        let spare = super::spares::pool().take(&spec);
        let took_spare = spare.is_some();
        let running = match spare {
            Some(spare) => Running::from_spare(spare, generation, max_line, events),
            None => Running::start(&spec, generation, max_line, events)?,
        };
        self.refill(&spec, &settings, took_spare);
        Ok(Started {
            running,
            program: spec.program,
            args: spec.args,
        })
    }

    fn signal(&mut self, pid: u32, signal: Stop) {
        signal_group(pid, signal);
    }
}
