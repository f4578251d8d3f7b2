//! Named sessions: each name is its own supervised Claude Code child and conversation.
//!
//! [`Sessions`] routes an ask to its session's [`Supervisor`]: it makes the session on
//! first use (in a working directory the user allowed), starts it afresh, resumes or forks
//! a saved conversation when the ask says so, and revives it with `--resume` after its
//! child was stopped. At most `--max-sessions` children run: a reaper stops those idle
//! past `--session-idle-ms`, and a session that needs a child when all places are taken
//! takes the place of the least recently used idle one, or the ask is refused as busy.
//! Each child starts under what its session may still spend (`--session-budget-usd`,
//! `--budget-usd`, asked of [`BudgetSource`] as it starts), each turn reserves what it
//! may spend as it starts ([`SessionBook`]: under the slots' lock, so turns running in
//! parallel sessions never hold more than is left), and an ask to a session that has
//! spent its budget is refused before the CLI sees it.
//! Each name's Claude Code session id is kept in `sessions.json` in the state directory,
//! so a name continues its conversation after claude-coded restarts (the `default`
//! session, warmed up at start, begins a new conversation each run). Its entries are
//! checked like an ask's fields when read back (an invalid file is kept aside), and it
//! keeps at most `MAX_STORED_SESSIONS` names, forgetting the least recently used stopped
//! ones first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::{
    self, ChildStatus, CloseSessionResult, Level, SessionInfo, SessionsResult, Totals,
};
use crate::clock::now_rfc3339;
use crate::config::Config;
use crate::error::DaemonError;
use crate::events::EventLog;
use crate::nesting::{Caller, Nesting};
use crate::state_dir::{MAX_SMALL_FILE, StateDir, read_bounded};
use crate::supervisor::{
    AskError, BudgetSource, DEFAULT_SESSION, NewTurn, Origin, Pending, SessionStart, Snapshot,
    Supervisor,
};
use crate::sync::lock;

/// The file mapping session names to Claude Code session ids.
pub(crate) const SESSIONS_FILE: &str = "sessions.json";
/// Most names kept in `sessions.json` (and in memory) at once.
pub(crate) const MAX_STORED_SESSIONS: usize = 256;
/// How often the reaper looks for idle sessions (at most; less when the idle time is short).
const REAP_EVERY: Duration = Duration::from_secs(1);

/// Makes the supervisor of a session: real processes, or a test's fake child.
pub(crate) type Spawner =
    Box<dyn Fn(Arc<Config>, EventLog, SessionStart) -> Supervisor + Send + Sync>;

/// Cloneable handle to the daemon's sessions.
#[derive(Clone)]
pub(crate) struct Sessions {
    inner: Arc<Shared>,
}

struct Shared {
    config: Arc<Config>,
    events: EventLog,
    spawner: Spawner,
    /// Where `sessions.json` goes, when the state directory is usable.
    store: Option<StateDir>,
    slots: Mutex<BTreeMap<String, Slot>>,
    /// Bumped whenever any session's state changes (for the state file).
    changed: watch::Sender<u64>,
    /// Held from reading the sessions to writing `sessions.json`, so two saves cannot
    /// land out of order and leave the older picture on disk.
    saving: Mutex<()>,
    /// What running turns may still spend, by reservation; locked after `slots` (a
    /// reservation is made under both, so parallel turns cannot over-reserve).
    held: Mutex<Held>,
    /// Where a session made without a `cwd` works: `--cwd`, or the host's project once its
    /// MCP roots said so ([`Sessions::retarget`]).
    default_cwd: Mutex<PathBuf>,
}

/// One named session.
struct Slot {
    cwd: PathBuf,
    created_at: String,
    last_used: Instant,
    last_used_at: String,
    /// The running supervisor; `None` once its child was stopped.
    live: Option<Supervisor>,
    /// The Claude Code session id, as last known: what a revival resumes.
    session_id: Option<String>,
    /// The CLI's running total for that session as last reported (a revival's base for
    /// the cost of its first turn).
    session_cost_usd: Option<f64>,
    /// What earlier supervisors of this session counted, before they were stopped.
    past: Totals,
}

/// The persisted facts of one name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    session_id: Option<String>,
    #[serde(default)]
    session_cost_usd: Option<f64>,
    cwd: PathBuf,
    created_at: String,
    /// When the name was last asked (which names the bound drops first).
    #[serde(default)]
    last_used_at: Option<String>,
}

impl Sessions {
    /// The sessions of a daemon whose children are real processes, and the reaper;
    /// `warm_default` starts the `default` session at once (so the first ask finds it
    /// warm).
    pub(crate) fn start(
        config: Arc<Config>,
        daemon_id: String,
        nesting: Nesting,
        events: EventLog,
        store: Option<StateDir>,
        warm_default: bool,
    ) -> Sessions {
        let spawner: Spawner = Box::new(move |config, events, start| {
            Supervisor::start(config, daemon_id.clone(), nesting, events, start)
        });
        Sessions::build(config, events, store, spawner, warm_default)
    }

    /// [`Sessions::start`] with the supervisors made by `spawner` (the unit tests' fake
    /// children), the default session warm.
    #[cfg(test)]
    pub(crate) fn with_spawner(
        config: Arc<Config>,
        events: EventLog,
        store: Option<StateDir>,
        spawner: Spawner,
    ) -> Sessions {
        Sessions::build(config, events, store, spawner, true)
    }

    fn build(
        config: Arc<Config>,
        events: EventLog,
        store: Option<StateDir>,
        spawner: Spawner,
        warm_default: bool,
    ) -> Sessions {
        let sessions = Sessions {
            inner: Arc::new(Shared {
                store,
                slots: Mutex::new(BTreeMap::new()),
                changed: watch::Sender::new(0),
                saving: Mutex::new(()),
                held: Mutex::new(Held::default()),
                default_cwd: Mutex::new(config.cwd.clone()),
                config,
                events,
                spawner,
            }),
        };
        sessions.load_stored();
        let default = Route {
            name: DEFAULT_SESSION.into(),
            origin: Some(Pick::Given(Origin::Fresh)),
            cwd: None,
            ask_budget: None,
            extra_args: Vec::new(),
        };
        if warm_default && let Err(err) = sessions.slot_for(&default) {
            tracing::error!("cannot start the default session: {err}");
        }
        tokio::spawn(reap_loop(Arc::downgrade(&sessions.inner)));
        sessions
    }

    /// Queues `turn` in the session `route` names, making or reviving it as needed.
    /// `caller`, when known, is the process that sent the ask (see [`Caller`]).
    pub(crate) fn submit(
        &self,
        route: &Route,
        turn: NewTurn,
        caller: Option<Caller>,
    ) -> Result<Pending, DaemonError> {
        let cwd = self.confined_cwd(route)?;
        let mut slots = lock(&self.inner.slots);
        if let Some(caller) = caller {
            self.check_not_own_turn(&slots, &route.name, caller)?;
        }
        self.check_budget(&slots, &route.name)?;
        let supervisor = self.slot_in(&mut slots, route, cwd)?;
        // Under the lock: until the ask is in, another ask could take this session's
        // place in a full pool (or start it afresh) and stop it under this one.
        Ok(supervisor.submit(turn)?)
    }

    /// Finds, makes or revives the session `route` names without asking it anything, so
    /// its child warms up before the first ask (an ACP `session/new`).
    pub(crate) fn open(&self, route: &Route) -> Result<(), DaemonError> {
        self.slot_for(route).map(drop)
    }

    /// Where a session, or a directory it may add, may be: `dir` resolved and confined
    /// to the allowed directories (see `confine`).
    pub(crate) fn confine(&self, dir: &str) -> Result<PathBuf, DaemonError> {
        confine(&self.inner.config, dir)
    }

    /// Makes `dir` (confined like any session's) where sessions made without a `cwd` work:
    /// the project the host has open (its MCP roots). The `default` session moves there,
    /// started afresh, when it has no conversation yet and runs no turn; one with a
    /// conversation stays where it is. Whether it moved.
    pub(crate) fn retarget(&self, dir: &str) -> Result<bool, DaemonError> {
        let real = self.confine(dir)?;
        *lock(&self.inner.default_cwd) = real.clone();
        let mut slots = lock(&self.inner.slots);
        let movable = slots.get(DEFAULT_SESSION).is_some_and(|slot| {
            slot.cwd != real
                && current_session_id(slot).is_none()
                && !slot.live.as_ref().is_some_and(is_busy)
        });
        if !movable {
            return Ok(false);
        }
        let route = Route {
            name: DEFAULT_SESSION.into(),
            origin: Some(Pick::Given(Origin::Fresh)),
            cwd: None,
            ask_budget: None,
            extra_args: Vec::new(),
        };
        self.start_slot(&mut slots, &route, Some(real))?;
        Ok(true)
    }

    /// The state of session `name`'s running child, as it changes; `None` when it runs
    /// none.
    pub(crate) fn watch_session(&self, name: &str) -> Option<watch::Receiver<Snapshot>> {
        lock(&self.inner.slots)
            .get(name)
            .and_then(|slot| slot.live.as_ref())
            .map(Supervisor::watch)
    }

    /// The supervisor of the `default` session, if it runs.
    pub(crate) fn default_supervisor(&self) -> Option<Supervisor> {
        lock(&self.inner.slots)
            .get(DEFAULT_SESSION)
            .and_then(|slot| slot.live.clone())
    }

    /// Wakes whenever any session's state changes.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Finds, makes or revives the session, and returns its running supervisor.
    fn slot_for(&self, route: &Route) -> Result<Supervisor, DaemonError> {
        let cwd = self.confined_cwd(route)?;
        let mut slots = lock(&self.inner.slots);
        self.slot_in(&mut slots, route, cwd)
    }

    /// The directory `route` asks for, if it may.
    fn confined_cwd(&self, route: &Route) -> Result<Option<PathBuf>, DaemonError> {
        match &route.cwd {
            Some(cwd) => Ok(Some(confine(&self.inner.config, cwd)?)),
            None => Ok(None),
        }
    }

    /// [`Sessions::slot_for`] with the slots locked.
    fn slot_in(
        &self,
        slots: &mut BTreeMap<String, Slot>,
        route: &Route,
        cwd: Option<PathBuf>,
    ) -> Result<Supervisor, DaemonError> {
        if let Some(slot) = slots.get_mut(&route.name) {
            slot.last_used = Instant::now();
            slot.last_used_at = now_rfc3339();
            if route.origin.is_none() {
                if let Some(cwd) = &cwd
                    && *cwd != slot.cwd
                {
                    return Err(invalid(
                        "cwd",
                        &format!(
                            "session `{}` runs in {}; a session's cwd is set when it is \
                             created (add newSession: true to start it afresh there)",
                            route.name,
                            slot.cwd.display()
                        ),
                    ));
                }
                if let Some(live) = &slot.live {
                    return Ok(live.clone());
                }
            } else if slot.live.as_ref().is_some_and(is_busy) {
                return Err(invalid(
                    "session",
                    &format!(
                        "session `{}` is running a turn; newSession, resume and fork apply \
                         when it is idle",
                        route.name
                    ),
                ));
            }
        }
        self.start_slot(slots, route, cwd)
    }

    /// Starts a supervisor for `route` (a new session, a new conversation of an existing
    /// one, or a revival), making room for it first.
    fn start_slot(
        &self,
        slots: &mut BTreeMap<String, Slot>,
        route: &Route,
        cwd: Option<PathBuf>,
    ) -> Result<Supervisor, DaemonError> {
        let shared = &self.inner;
        let existing = slots.get(&route.name);
        let origin = match (&route.origin, existing) {
            (Some(Pick::ForkOwn), Some(slot)) => match current_session_id(slot) {
                Some(id) => Origin::Fork(id),
                None => return Err(invalid("fork", "this session has no conversation yet")),
            },
            (Some(Pick::ForkOwn), None) => {
                return Err(invalid(
                    "fork",
                    "needs resume, or a session with a conversation",
                ));
            }
            (Some(Pick::Given(origin)), _) => origin.clone(),
            (None, Some(slot)) => match current_session_id(slot) {
                Some(id) if shared.config.resume_on_restart => Origin::Resume(id),
                _ => Origin::Fresh,
            },
            (None, None) => Origin::Fresh,
        };
        let cwd = cwd
            .or_else(|| existing.map(|slot| slot.cwd.clone()))
            .unwrap_or_else(|| lock(&shared.default_cwd).clone());
        let live_elsewhere = slots
            .iter()
            .filter(|(name, slot)| *name != &route.name && slot.live.is_some())
            .count();
        let mut after = Vec::new();
        if live_elsewhere >= shared.config.max_sessions {
            after.push(self.make_room(slots, live_elsewhere)?);
        }
        let created = !slots.contains_key(&route.name) || route.origin.is_some();
        let slot = slots.entry(route.name.clone()).or_insert_with(|| Slot {
            cwd: cwd.clone(),
            created_at: now_rfc3339(),
            last_used: Instant::now(),
            last_used_at: now_rfc3339(),
            live: None,
            session_id: None,
            session_cost_usd: None,
            past: Totals::default(),
        });
        if let Some(old) = slot.live.take() {
            after.push(retire(
                slot,
                old,
                &shared.events,
                &route.name,
                "started afresh",
            ));
        }
        slot.cwd = cwd;
        let cost_base = match &origin {
            Origin::Resume(id) if slot.session_id.as_ref() == Some(id) => slot.session_cost_usd,
            _ => None,
        };
        if route.origin.is_some() {
            slot.created_at = now_rfc3339();
            slot.session_id = None;
            slot.session_cost_usd = None;
        }
        let mut claude_args = shared.config.claude_args.clone();
        claude_args.extend(route.extra_args.iter().cloned());
        let config = Arc::new(Config {
            cwd: slot.cwd.clone(),
            claude_args,
            ..(*shared.config).clone()
        });
        let start = SessionStart {
            name: route.name.clone(),
            origin: origin.clone(),
            cost_base,
            budget: self.budget_source(&route.name),
            first_ask_budget: route.ask_budget,
            after,
        };
        let supervisor = (shared.spawner)(config, shared.events.scoped(&route.name), start);
        slot.live = Some(supervisor.clone());
        if let Origin::Resume(id) = &origin {
            slot.session_id = Some(id.clone());
        }
        self.record_start(&route.name, slot, &origin, created);
        tokio::spawn(follow(
            Arc::downgrade(&self.inner),
            route.name.clone(),
            supervisor.clone(),
        ));
        Ok(supervisor)
    }

    /// The budgets of session `name`: what a child may spend as it starts, and the
    /// reservation each turn starts under (see [`SessionBook`]).
    fn budget_source(&self, name: &str) -> BudgetSource {
        BudgetSource::from_book(Arc::new(SessionBook {
            shared: Arc::downgrade(&self.inner),
            name: name.to_string(),
        }))
    }

    fn record_start(&self, name: &str, slot: &Slot, origin: &Origin, created: bool) {
        let (how, from) = match origin {
            Origin::Fresh if created => ("a new conversation", None),
            Origin::Fresh => ("a new conversation (it had none to continue)", None),
            Origin::Resume(id) => ("continuing", Some(id)),
            Origin::Fork(id) => ("branching", Some(id)),
        };
        let from_text = from.map_or(String::new(), |id| format!(" {id}"));
        self.inner.events.scoped(name).record_detail(
            Level::Info,
            format!(
                "session `{name}` starts in {}: {how}{from_text}",
                slot.cwd.display()
            ),
            &api::SessionCreated {
                name: name.to_string(),
                cwd: slot.cwd.clone(),
                origin: how.to_string(),
                from: from.cloned(),
            },
        );
        self.inner.changed.send_modify(|n| *n += 1);
    }

    /// Refuses an ask sent from inside session `name`'s own child (its Bash tool, an MCP
    /// server it started) while that session is busy: it would queue behind the very turn
    /// that waits for it, a deadlock until the turn's timeout. An ask to another session,
    /// or to this one once idle, goes on.
    fn check_not_own_turn(
        &self,
        slots: &BTreeMap<String, Slot>,
        name: &str,
        caller: Caller,
    ) -> Result<(), DaemonError> {
        let Some(live) = slots.get(name).and_then(|slot| slot.live.as_ref()) else {
            return Ok(());
        };
        let snapshot = live.snapshot();
        // The guard is every tool process's ancestor (it adopts those that left the
        // group); the CLI's pid is checked too, for a child started without one.
        let inside = [snapshot.child.pid, snapshot.child.cli_pid]
            .into_iter()
            .flatten()
            .any(|pid| caller.runs_under(pid));
        if !inside || !is_busy(live) {
            return Ok(());
        }
        let reason = format!(
            "this ask comes from inside session `{name}`'s running turn (a process of its \
             Claude Code) and would wait on that turn, which waits for it; ask another \
             session (--session NAME, or `session` in the params)"
        );
        self.inner.events.scoped(name).record_detail(
            Level::Warn,
            format!("an ask was refused: {reason}"),
            &api::TurnRejected::FromOwnTurn(api::AskFromOwnTurn {
                session: name.to_string(),
                caller_pid: caller.0,
            }),
        );
        Err(invalid("session", &reason))
    }

    /// Refuses an ask to a session that has spent its budget, or when all sessions have
    /// spent theirs.
    fn check_budget(&self, slots: &BTreeMap<String, Slot>, name: &str) -> Result<(), DaemonError> {
        // Spent, not held: what running turns hold is weighed as each turn starts, when
        // they may have given it back.
        let limits = limits(&self.inner.config, slots, &Held::default(), name);
        let Some(spent) = limits.into_iter().find(|l| l.spent >= l.limit) else {
            return Ok(());
        };
        let error = DaemonError::BudgetExhausted {
            scope: spent.whose,
            flag: spent.flag,
            spent: spent.spent,
            limit: spent.limit,
        };
        self.inner.events.scoped(name).record_detail(
            Level::Warn,
            format!("an ask to session `{name}` was refused: {error}"),
            &api::BudgetExhausted::Refused(api::BudgetRefused {
                session: name.to_string(),
                scope: spent.scope,
                flag: spent.flag.to_string(),
                spent_usd: spent.spent,
                limit_usd: spent.limit,
            }),
        );
        Err(error)
    }

    /// Stops the least recently used idle session to free a place; busy when all are busy.
    /// Returns what says when its child is gone.
    fn make_room(
        &self,
        slots: &mut BTreeMap<String, Slot>,
        live: usize,
    ) -> Result<watch::Receiver<bool>, DaemonError> {
        let victim = slots
            .iter()
            .filter(|(_, slot)| slot.live.as_ref().is_some_and(|s| !is_busy(s)))
            .min_by_key(|(_, slot)| slot.last_used)
            .map(|(name, _)| name.clone());
        let Some(name) = victim else {
            let busy = slots
                .values()
                .filter(|slot| slot.live.as_ref().is_some_and(is_busy))
                .count();
            return Err(DaemonError::SessionsFull {
                live,
                max: self.inner.config.max_sessions,
                busy,
            });
        };
        match slots.get_mut(&name) {
            Some(slot) => match slot.live.take() {
                Some(old) => {
                    let why = "its place was needed by another session";
                    Ok(retire(slot, old, &self.inner.events, &name, why))
                }
                None => Ok(watch::channel(true).1),
            },
            None => Ok(watch::channel(true).1),
        }
    }

    /// `closeSession`: stops the session's child; its conversation stays resumable.
    pub(crate) fn close(&self, name: &str) -> Result<CloseSessionResult, DaemonError> {
        check_name(name)?;
        let mut slots = lock(&self.inner.slots);
        let Some(slot) = slots.get_mut(name) else {
            return Err(invalid("session", &format!("there is no session `{name}`")));
        };
        let was_live = match slot.live.take() {
            Some(old) => {
                retire(slot, old, &self.inner.events, name, "closed by a client");
                true
            }
            None => false,
        };
        self.inner.changed.send_modify(|n| *n += 1);
        Ok(CloseSessionResult {
            session: name.to_string(),
            session_id: slot.session_id.clone(),
            was_live,
        })
    }

    /// Every session, for `sessions`.
    pub(crate) fn list(&self) -> SessionsResult {
        self.overview().0
    }

    /// Every session, and what all of them counted (live and past), for `status`: from
    /// one look at each session.
    pub(crate) fn overview(&self) -> (SessionsResult, Totals) {
        let slots = lock(&self.inner.slots);
        let mut sum = Totals::default();
        let sessions: Vec<SessionInfo> = slots
            .iter()
            .map(|(name, slot)| {
                let (info, totals) = info(name, slot);
                add_totals(&mut sum, &totals);
                info
            })
            .collect();
        let list = SessionsResult {
            live: slots.values().filter(|s| s.live.is_some()).count(),
            max_sessions: self.inner.config.max_sessions,
            sessions,
        };
        (list, sum)
    }

    /// Stops every session's child and waits until all are gone.
    pub(crate) async fn stop(&self, prompt: bool) {
        let live: Vec<Supervisor> = lock(&self.inner.slots)
            .values()
            .filter_map(|slot| slot.live.clone())
            .collect();
        // Side by side: each may take the stop grace period.
        let mut stops = tokio::task::JoinSet::new();
        for supervisor in live {
            stops.spawn(async move { supervisor.stop(prompt).await });
        }
        while stops.join_next().await.is_some() {}
        self.persist();
    }

    /// Loads the names saved by an earlier run, as stopped sessions that resume on use.
    /// Each entry is checked like an ask from the wire (its id and cwd reach the CLI's
    /// argv and working directory); a file with anything wrong is kept aside as
    /// `sessions.json.corrupt-<time>` and only its valid entries are used.
    fn load_stored(&self) {
        let Some(dir) = &self.inner.store else {
            return;
        };
        let path = dir.path(SESSIONS_FILE);
        let parsed = match read_bounded(&path, MAX_SMALL_FILE) {
            Ok(bytes) => serde_json::from_slice::<BTreeMap<String, Stored>>(&bytes)
                .map_err(|err| format!("is not valid ({err})")),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(err) => Err(format!("cannot be read ({err})")),
        };
        let (valid, problems) = match parsed {
            Ok(stored) => self.checked(stored),
            Err(problem) => (BTreeMap::new(), vec![problem]),
        };
        if !problems.is_empty() {
            let rest = "its other sessions are used";
            self.inner
                .events
                .file_set_aside(&path, SESSIONS_FILE, rest, &problems);
        }
        let mut slots = lock(&self.inner.slots);
        for (name, entry) in valid {
            slots.insert(
                name,
                Slot {
                    cwd: entry.cwd,
                    created_at: entry.created_at,
                    last_used: Instant::now(),
                    last_used_at: entry.last_used_at.unwrap_or_else(now_rfc3339),
                    live: None,
                    session_id: entry.session_id,
                    session_cost_usd: entry.session_cost_usd,
                    past: Totals::default(),
                },
            );
        }
        drop(slots);
        self.bound_stored();
    }

    /// The entries of `sessions.json` that pass the wire's checks (their cwd resolved),
    /// and what is wrong with the others.
    fn checked(&self, stored: BTreeMap<String, Stored>) -> (BTreeMap<String, Stored>, Vec<String>) {
        let mut problems = Vec::new();
        let mut valid = BTreeMap::new();
        for (name, mut entry) in stored {
            // The default session starts afresh each run: its entry is not used.
            if name == DEFAULT_SESSION {
                continue;
            }
            match check_stored(&self.inner.config, &name, &entry) {
                Ok(cwd) => {
                    entry.cwd = cwd;
                    valid.insert(name, entry);
                }
                Err(problem) => problems.push(problem),
            }
        }
        (valid, problems)
    }

    /// Drops the least recently used stopped sessions while more than
    /// `MAX_STORED_SESSIONS` names are kept, so `sessions.json` does not grow without end.
    /// Running sessions are kept (`--max-sessions` bounds them), and so are those that
    /// counted anything in this run: their spending still counts against `--budget-usd`
    /// and in `status` (`persist` leaves the oldest of them out of the file instead).
    fn bound_stored(&self) {
        let forgotten: Vec<String> = {
            let mut slots = lock(&self.inner.slots);
            let over = slots.len().saturating_sub(MAX_STORED_SESSIONS);
            if over == 0 {
                return;
            }
            let mut idle: Vec<(Instant, String, String)> = slots
                .iter()
                .filter(|(_, slot)| slot.live.is_none() && slot.past == Totals::default())
                .map(|(name, slot)| (slot.last_used, slot.last_used_at.clone(), name.clone()))
                .collect();
            idle.sort();
            let forgotten: Vec<String> = idle.into_iter().take(over).map(|(_, _, n)| n).collect();
            for name in &forgotten {
                slots.remove(name);
            }
            forgotten
        };
        for name in forgotten {
            self.inner.events.record_detail(
                Level::Info,
                format!(
                    "session `{name}` was forgotten: {SESSIONS_FILE} keeps at most {MAX_STORED_SESSIONS} names, the least recently used stopped ones go first"
                ),
                &api::SessionForgotten {
                    session: name,
                    max: MAX_STORED_SESSIONS,
                },
            );
        }
    }

    /// Writes `sessions.json`: each name with its session id and cwd.
    fn persist(&self) {
        let Some(dir) = &self.inner.store else {
            return;
        };
        self.bound_stored();
        let _saving = lock(&self.inner.saving);
        let slots = lock(&self.inner.slots);
        // The most recently used first, running ones before all: what the bound keeps.
        let mut kept: Vec<(&String, &Slot)> = slots.iter().collect();
        kept.sort_by(|(_, a), (_, b)| {
            (b.live.is_some(), b.last_used, &b.last_used_at).cmp(&(
                a.live.is_some(),
                a.last_used,
                &a.last_used_at,
            ))
        });
        let stored: BTreeMap<String, Stored> = kept
            .into_iter()
            .take(MAX_STORED_SESSIONS)
            .map(|(name, slot)| {
                let entry = Stored {
                    session_id: current_session_id(slot),
                    session_cost_usd: current_session_cost(slot),
                    cwd: slot.cwd.clone(),
                    created_at: slot.created_at.clone(),
                    last_used_at: Some(slot.last_used_at.clone()),
                };
                (name.clone(), entry)
            })
            .collect();
        drop(slots);
        if let Err(err) = dir.write_json_atomic(SESSIONS_FILE, &stored) {
            tracing::warn!("cannot write {SESSIONS_FILE}: {err}");
        }
    }
}

/// A turn runs or waits, or an ask is on its way to the actor (not in its snapshot yet).
fn is_busy(supervisor: &Supervisor) -> bool {
    let snapshot = supervisor.snapshot();
    snapshot.turn.is_some() || snapshot.queue.length > 0 || supervisor.has_unseen_asks(&snapshot)
}

/// The session id a revival continues: the live child's, else the last one known.
fn current_session_id(slot: &Slot) -> Option<String> {
    slot.live
        .as_ref()
        .and_then(|live| live.snapshot().child.session_id)
        .or_else(|| slot.session_id.clone())
}

/// The CLI's running total for the session, as last reported.
fn current_session_cost(slot: &Slot) -> Option<f64> {
    slot.live
        .as_ref()
        .and_then(|live| live.snapshot().child.session_cost_usd)
        .or(slot.session_cost_usd)
}

/// Stops `old` in the background, keeping what it knew in the slot.
/// Stops a session's child in the background; the receiver says `true` once it is gone.
fn retire(
    slot: &mut Slot,
    old: Supervisor,
    events: &EventLog,
    name: &str,
    why: &str,
) -> watch::Receiver<bool> {
    let snapshot = old.snapshot();
    if let Some(id) = snapshot.child.session_id.clone() {
        slot.session_id = Some(id);
        slot.session_cost_usd = snapshot.child.session_cost_usd;
    }
    add_totals(&mut slot.past, &snapshot.totals);
    events.scoped(name).record_detail(
        Level::Info,
        format!("session `{name}` stopped: {why}"),
        &api::SessionStopped {
            name: name.to_string(),
            reason: why.to_string(),
            session_id: slot.session_id.clone(),
        },
    );
    let error = AskError::SessionStopped {
        session: name.to_string(),
        reason: why.to_string(),
    };
    let (gone, after) = watch::channel(false);
    tokio::spawn(async move {
        old.stop_with(false, error).await;
        gone.send_replace(true);
    });
    after
}

fn slot_totals(slot: &Slot) -> Totals {
    let mut totals = slot.past.clone();
    if let Some(live) = &slot.live {
        add_totals(&mut totals, &live.snapshot().totals);
    }
    totals
}

fn add_totals(sum: &mut Totals, more: &Totals) {
    sum.asks += more.asks;
    sum.turns_ok += more.turns_ok;
    sum.turns_failed += more.turns_failed;
    sum.asks_errored += more.asks_errored;
    sum.cost_usd = crate::api::add_usd(sum.cost_usd, more.cost_usd);
    sum.input_tokens += more.input_tokens;
    sum.output_tokens += more.output_tokens;
    sum.cache_creation_input_tokens += more.cache_creation_input_tokens;
    sum.cache_read_input_tokens += more.cache_read_input_tokens;
    sum.notifications_dropped += more.notifications_dropped;
    sum.permissions_requested += more.permissions_requested;
    sum.permissions_allowed += more.permissions_allowed;
    sum.permissions_denied += more.permissions_denied;
}

/// What `sessions` shows of a session, and what it counted (live and past), from one
/// snapshot of its supervisor.
fn info(name: &str, slot: &Slot) -> (SessionInfo, Totals) {
    let snapshot: Option<Snapshot> = slot.live.as_ref().map(Supervisor::snapshot);
    let mut totals = slot.past.clone();
    if let Some(snapshot) = &snapshot {
        add_totals(&mut totals, &snapshot.totals);
    }
    let pid = snapshot
        .as_ref()
        .and_then(|s| s.child.cli_pid.or(s.child.pid));
    let info = SessionInfo {
        name: name.to_string(),
        state: snapshot
            .as_ref()
            .map_or(ChildStatus::Stopped, |s| s.child.status),
        session_id: snapshot
            .as_ref()
            .and_then(|s| s.child.session_id.clone())
            .or_else(|| slot.session_id.clone()),
        cwd: slot.cwd.display().to_string(),
        pid,
        rss_bytes: pid.and_then(crate::platform::resident_bytes),
        turns: totals.turns_ok + totals.turns_failed,
        cost_usd: totals.cost_usd,
        queue: snapshot.as_ref().map_or(0, |s| s.queue.length),
        busy: snapshot.as_ref().is_some_and(|s| s.turn.is_some()),
        turn: snapshot.as_ref().and_then(Snapshot::turn_now),
        created_at: slot.created_at.clone(),
        last_used_at: slot.last_used_at.clone(),
    };
    (info, totals)
}

/// Follows one supervisor: passes its state changes on, and saves its session id when it
/// learns one. Ends when the supervisor's actor is gone.
async fn follow(shared: std::sync::Weak<Shared>, name: String, supervisor: Supervisor) {
    let mut changes = supervisor.watch();
    let mut saved: Option<String> = None;
    while changes.changed().await.is_ok() {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let id = changes.borrow_and_update().child.session_id.clone();
        shared.changed.send_modify(|n| *n += 1);
        if id.is_some() && id != saved {
            saved = id.clone();
            let sessions = Sessions { inner: shared };
            if let Some(slot) = lock(&sessions.inner.slots).get_mut(&name)
                && slot
                    .live
                    .as_ref()
                    .is_some_and(|live| live.same(&supervisor))
            {
                slot.session_id = id;
            }
            sessions.persist();
        }
    }
}

/// Stops the children of sessions idle past `--session-idle-ms`; ends with the sessions.
/// Idle is idle: it sleeps until the first idle session's deadline, waking once a second
/// only while a turn runs (to count idle time from its end) and when the sessions change.
async fn reap_loop(shared: std::sync::Weak<Shared>) {
    let Some(mut changes) = shared.upgrade().map(|s| s.changed.subscribe()) else {
        return;
    };
    loop {
        let Some(wake) = shared.upgrade().map(|s| next_reap(&s)) else {
            return;
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        reap(&shared);
    }
}

/// When the reaper should look next: the earliest idle deadline of a live session, or a
/// second from now while one runs a turn; `None` when nothing can become idle.
fn next_reap(shared: &Shared) -> Option<Instant> {
    let idle = Duration::from_millis(shared.config.session_idle_ms);
    let slots = lock(&shared.slots);
    let live = slots
        .values()
        .filter_map(|slot| Some((slot, slot.live.as_ref()?)));
    live.map(|(slot, supervisor)| match is_busy(supervisor) {
        true => Instant::now() + REAP_EVERY.min(idle),
        false => slot.last_used + idle,
    })
    .min()
}

fn reap(shared: &Shared) {
    let idle = Duration::from_millis(shared.config.session_idle_ms);
    let mut slots = lock(&shared.slots);
    let mut reaped = false;
    for (name, slot) in slots.iter_mut() {
        let Some(live) = &slot.live else { continue };
        if is_busy(live) {
            // Idle time counts from the end of its last turn, seen here.
            slot.last_used = Instant::now();
            continue;
        }
        if slot.last_used.elapsed() >= idle
            && let Some(old) = slot.live.take()
        {
            let why = format!("idle for {} s", idle.as_secs_f64());
            retire(slot, old, &shared.events, name, &why);
            reaped = true;
        }
    }
    if reaped {
        shared.changed.send_modify(|n| *n += 1);
    }
}

mod budget;
mod confine;
mod route;

use budget::{Held, SessionBook, limits};
use confine::{check_stored, confine};
use route::invalid;
pub(crate) use route::{Pick, Route, check_name};

#[cfg(test)]
mod tests;
