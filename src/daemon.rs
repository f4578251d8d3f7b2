//! The core both surfaces call: `ask`, `status`, `events`, `sessions` over the supervised
//! children of the named sessions, plus identity, the event record and the state file.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::api::{
    AskParams, CancelResult, ChildStatus, ClientSession, CloseSessionResult, DaemonInfo,
    DaemonState, EventsPage, EventsParams, EventsResult, IdentityInfo, Level, MAX_TIMEOUT_MS,
    RestartResult, Serving, SessionsResult, StatusResult, StopResult, TurnHandle, WaitParams,
    WaitResult,
};
use crate::arrivals::Place;
use crate::background::{Background, DEFAULT_WAIT_MS, MAX_WAIT_MS};
use crate::clock::now_rfc3339;
use crate::config::Config;
use crate::error::DaemonError;
use crate::events::EventLog;
use crate::nesting::{Caller, Nesting};
use crate::permissions::Asked;
use crate::sessions::{Route, Sessions};
use crate::state_dir::{Identity, IdentityLoad, STATE_FILE, StateDir};
use crate::supervisor::{
    AskError, DEFAULT_SESSION, MIN_BUDGET_USD, NewTurn, Pending, Snapshot, TurnMessage,
};
use crate::sync::lock;

/// How long state changes are gathered before `daemon-state.json` is rewritten.
const PERSIST_DEBOUNCE: Duration = Duration::from_millis(50);
/// Messages a background turn may buffer before the child is held back.
const BACKGROUND_BUFFER: usize = 1024;

/// Messages of a turn a surface may have buffered before the child is held back (the
/// sink is lossless: when it is full the actor stops reading the child's stdout).
const TURN_BUFFER: usize = 1024;
/// Permission questions of one turn waiting to be put to its client.
const QUESTIONS: usize = 16;

/// What a surface takes of a turn besides its answer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wants {
    /// The turn's messages, buffered up to this many.
    messages: Option<usize>,
    /// Its permission questions, for a surface that can put them to its client.
    questions: bool,
}

impl Wants {
    /// The answer alone.
    pub(crate) fn answer() -> Wants {
        Wants::default()
    }

    /// And the turn's messages as they come.
    pub(crate) fn with_messages(self) -> Wants {
        self.with_messages_up_to(TURN_BUFFER)
    }

    fn with_messages_up_to(self, buffer: usize) -> Wants {
        Wants {
            messages: Some(buffer),
            ..self
        }
    }

    /// And its permission questions (`yes`: the surface can ask its client).
    pub(crate) fn with_questions(self, yes: bool) -> Wants {
        Wants {
            questions: yes,
            ..self
        }
    }
}

/// A queued turn and the streams the surface asked for.
pub(crate) struct Turn {
    pub(crate) pending: Pending,
    pub(crate) messages: Option<mpsc::Receiver<TurnMessage>>,
    pub(crate) questions: Option<mpsc::Receiver<Asked>>,
}

impl Turn {
    /// The turn with both streams as receivers: one not asked for is empty and closed.
    pub(crate) fn into_parts(
        self,
    ) -> (Pending, mpsc::Receiver<TurnMessage>, mpsc::Receiver<Asked>) {
        (
            self.pending,
            self.messages.unwrap_or_else(|| mpsc::channel(1).1),
            self.questions.unwrap_or_else(|| mpsc::channel(1).1),
        )
    }
}

/// Where a daemon is in its life; moves forward only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    Stopping,
    Stopped,
}

/// Cloneable handle to the running daemon.
#[derive(Clone)]
pub struct Daemon {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    identity: Identity,
    started_at: String,
    started: Instant,
    events: EventLog,
    sessions: Sessions,
    /// Asks answered with a handle, and their results until collected.
    background: Background,
    nesting: Nesting,
    /// The client being served, once known.
    client: Mutex<Option<ClientSession>>,
    state_dir: Option<StateDir>,
    /// Last problem with the state directory, shown in `status`.
    state_error: Mutex<Option<String>>,
    serving: Serving,
    /// The Unix socket, once listening, or why there is none.
    socket: Mutex<Result<Option<String>, String>>,
    /// The HTTP base URL, once listening (`--listen`), and its token's file.
    listen: Mutex<Option<(String, Option<String>)>>,
    phase: watch::Sender<Phase>,
    /// Held while `daemon-state.json` is written: the check that the daemon still runs
    /// and the write of the running state are one step, so a debounced write that lost
    /// the race with the stop cannot land over the stop's own state.
    persisting: Mutex<()>,
}

impl Daemon {
    /// Opens the state directory, starts the child and the state-file writer, for a
    /// client on stdio. Must be called inside a tokio runtime.
    pub fn start(config: Config) -> Daemon {
        Daemon::start_as(config, Serving::Stdio)
    }

    /// [`Daemon::start`], saying how it serves (in `status`, and whether `stop` may end it).
    pub fn start_as(config: Config, serving: Serving) -> Daemon {
        Daemon::start_with(config, serving, true)
    }

    /// [`Daemon::start`] for a client whose sessions are all its own (ACP): no `default`
    /// session is warmed for it (one asked over the socket starts then); the spares
    /// (`--spare-sessions`) are.
    pub(crate) fn start_without_default(config: Config) -> Daemon {
        let daemon = Daemon::start_with(config, Serving::Stdio, false);
        daemon.keep_spares();
        daemon
    }

    fn start_with(config: Config, serving: Serving, warm_default: bool) -> Daemon {
        let config = Arc::new(config);
        let events = EventLog::new(config.events_ring_size);
        let (state_dir, identity, state_error) = match serving {
            // A one-off ask where no daemon ever ran leaves nothing behind.
            Serving::Ask if !config.state_dir.exists() => (None, ephemeral_identity(), None),
            _ => open_state(&config, &events),
        };
        let nesting = Nesting::detect(config.max_depth);
        let sessions = Sessions::start(
            config.clone(),
            identity.daemon_id.clone(),
            nesting,
            events.clone(),
            state_dir.clone(),
            warm_default,
        );
        let background = Background::new(
            state_dir.clone(),
            Duration::from_millis(config.result_ttl_ms),
            events.clone(),
        );
        let daemon = Daemon {
            inner: Arc::new(Inner {
                background,
                config,
                identity,
                started_at: now_rfc3339(),
                started: Instant::now(),
                events,
                sessions,
                nesting,
                client: Mutex::new(None),
                state_dir,
                state_error: Mutex::new(state_error),
                serving,
                socket: Mutex::new(Ok(None)),
                listen: Mutex::new(None),
                phase: watch::Sender::new(Phase::Running),
                persisting: Mutex::new(()),
            }),
        };
        daemon.inner.events.record_detail(
            Level::Info,
            format!(
                "claude-coded {} started (pid {})",
                crate::VERSION,
                std::process::id()
            ),
            &crate::api::DaemonStarted {
                pid: std::process::id(),
                daemon_id: daemon.inner.identity.daemon_id.clone(),
                cwd: daemon.inner.config.cwd.clone(),
            },
        );
        tokio::spawn(persist_loop(daemon.clone(), daemon.inner.sessions.watch()));
        daemon
    }

    /// The one way a surface asks: validates the ask and queues its turn in `place`'s
    /// turn (see [`crate::arrivals`]: asks read in order run in that order), with the
    /// streams `wants` names. `caller`, when the kernel named the sending process (a
    /// socket client): an ask from inside a session's running turn to that same session
    /// would wait on itself, and is refused.
    pub(crate) async fn ask(
        &self,
        place: &Place,
        params: AskParams,
        wants: Wants,
        caller: Option<Caller>,
    ) -> Result<Turn, DaemonError> {
        place.in_turn(|| self.queue(params, wants, caller)).await
    }

    /// [`Daemon::ask`] once its place's turn came: validates and queues, synchronously.
    fn queue(
        &self,
        params: AskParams,
        wants: Wants,
        caller: Option<Caller>,
    ) -> Result<Turn, DaemonError> {
        validate_ask(&params)?;
        let route = Route::of(&params)?;
        if self.is_stopping() {
            return Err(AskError::Stopping.into());
        }
        let config = &self.inner.config;
        if let Some(mode) = params.permission_mode
            && !mode.within(config.permission_ceiling)
        {
            return Err(DaemonError::InvalidParams {
                field: "permissionMode",
                reason: format!(
                    "`{mode}` lets the agent do more than this server's ceiling `{}` allows \
                     (only the user can raise it, with --permission-ceiling)",
                    config.permission_ceiling
                ),
            });
        }
        let (sink, messages) = wants.messages.map(mpsc::channel).unzip();
        let (asker, questions) = wants.questions.then(|| mpsc::channel(QUESTIONS)).unzip();
        let timeout = Duration::from_millis(params.timeout_ms.unwrap_or(config.turn_timeout_ms));
        let turn = NewTurn {
            prompt: params.prompt,
            timeout,
            mode: params.permission_mode,
            model: params.model,
            sink,
            asker,
            max_budget_usd: params.max_budget_usd,
            partial: params.partial_messages,
        };
        let pending = self.inner.sessions.submit(&route, turn, caller)?;
        Ok(Turn {
            pending,
            messages,
            questions,
        })
    }

    /// Makes (or finds, or revives) a named session without asking it anything, so its
    /// child warms up at once: an ACP `session/new` (`origin` `Fresh`: a new
    /// conversation), `session/load` and `session/resume` (`None`: its own conversation,
    /// continued; `Resume`: a conversation the CLI saved). `extra_args` go to the CLI
    /// after the configured ones (checked by the caller).
    pub(crate) fn open_session(
        &self,
        name: &str,
        cwd: Option<String>,
        origin: Option<crate::supervisor::Origin>,
        extra_args: Vec<String>,
    ) -> Result<(), DaemonError> {
        crate::sessions::check_name(name)?;
        if self.is_stopping() {
            return Err(AskError::Stopping.into());
        }
        let route = Route {
            name: name.to_string(),
            origin: origin.map(crate::sessions::Pick::Given),
            cwd,
            ask_budget: None,
            extra_args,
        };
        self.inner.sessions.open(&route)
    }

    /// Keeps `--spare-sessions` warm CLIs for new sessions now, for a surface that stopped
    /// the default session (whose start fills them otherwise).
    pub(crate) fn keep_spares(&self) {
        crate::supervisor::keep_spares(
            &self.inner.config,
            &self.inner.identity.daemon_id,
            &self.inner.nesting,
        );
    }

    /// The host's project (its first MCP root): sessions made without a `cwd` work there,
    /// and the `default` session moves there while it has no conversation. A directory
    /// outside `--allow-dir` is refused, and nothing changes.
    pub(crate) fn set_project(&self, dir: &str) -> Result<bool, DaemonError> {
        let moved = self.inner.sessions.retarget(dir)?;
        tracing::info!(project = %dir, moved, "the host's project (its roots)");
        Ok(moved)
    }

    /// The CLI's slash commands in session `name`, once its child answered its warm-up
    /// (waiting up to `within`); `None` when it runs no child or did not answer in time.
    pub(crate) async fn cli_commands(
        &self,
        name: &str,
        within: Duration,
    ) -> Option<Arc<Vec<crate::api::CliCommand>>> {
        let mut watch = self.inner.sessions.watch_session(name)?;
        let ready = watch.wait_for(|snapshot| snapshot.child.commands.is_some());
        let snapshot = tokio::time::timeout(within, ready).await.ok()?.ok()?;
        snapshot.child.commands.clone()
    }

    /// `dir` resolved through its symlinks, if a session may use it (inside the allowed
    /// directories).
    pub(crate) fn confine(&self, dir: &str) -> Result<std::path::PathBuf, DaemonError> {
        self.inner.sessions.confine(dir)
    }

    /// Queues a turn that runs in the background, and answers with its handle at once.
    /// `tap` may take the turn's messages too (it is given the handle first).
    pub(crate) async fn ask_in_background(
        &self,
        place: &Place,
        params: AskParams,
        tap: impl FnOnce(&TurnHandle) -> Option<mpsc::Sender<TurnMessage>>,
    ) -> Result<TurnHandle, DaemonError> {
        let session = params.session.clone().unwrap_or(DEFAULT_SESSION.into());
        let wants = Wants::answer().with_messages_up_to(BACKGROUND_BUFFER);
        let (pending, messages, _) = self.ask(place, params, wants, None).await?.into_parts();
        Ok(self.inner.background.run(pending, messages, session, tap))
    }

    /// `wait`: the background turn's answer once it ends within `timeout_ms` (default
    /// 30 s), else where it stands.
    pub(crate) async fn wait(&self, params: &WaitParams) -> Result<WaitResult, DaemonError> {
        let ms = params.timeout_ms.unwrap_or(DEFAULT_WAIT_MS);
        if ms > MAX_WAIT_MS {
            return Err(DaemonError::InvalidParams {
                field: "timeoutMs",
                reason: format!("must be between 0 and {MAX_WAIT_MS}"),
            });
        }
        let stop = self.stop_begun();
        let wait = self
            .inner
            .background
            .wait(&params.turn_id, Duration::from_millis(ms));
        tokio::select! {
            waited = wait => waited,
            // A stop ends the turn soon; the caller learns that from its next call.
            _ = stop => self.inner.background.wait(&params.turn_id, Duration::ZERO).await,
        }
    }

    /// Keeps the end of an MCP task's turn (run live by rmcp's task machinery) in the
    /// store of detached turns, under its task id, so it outlives a restart.
    pub(crate) fn adopt_task(&self, task_id: &str, session: &str) -> crate::background::Adopted {
        self.inner.background.adopt(task_id, session)
    }

    /// How a detached turn (a handle's or a task's) ended, without collecting it.
    pub(crate) fn detached_end(
        &self,
        turn_id: &str,
    ) -> Option<(
        Result<crate::api::AskResult, DaemonError>,
        crate::background::Times,
    )> {
        self.inner.background.peek(turn_id)
    }

    /// `cancel`: interrupts a background turn (its result is then the cancel's error).
    pub(crate) fn cancel_turn(&self, turn_id: &str) -> Result<CancelResult, DaemonError> {
        self.inner.background.cancel(turn_id)
    }

    /// Restarts the `default` session's child now; also the way out of the `failed` state.
    pub async fn restart(&self) -> Result<RestartResult, DaemonError> {
        let Some(supervisor) = self.inner.sessions.default_supervisor() else {
            return Err(AskError::Unavailable {
                reason: "the default session is stopped; its next ask starts it".into(),
                stderr_tail: Vec::new(),
            }
            .into());
        };
        let outcome = supervisor.restart().await?;
        Ok(RestartResult {
            restarting: true,
            killed_pid: outcome.killed_pid,
        })
    }

    pub fn status(&self) -> StatusResult {
        let snapshot = self.default_snapshot();
        self.status_from(&snapshot, self.daemon_state())
    }

    /// `sessions`: every session, live or stopped.
    pub fn sessions(&self) -> SessionsResult {
        self.inner.sessions.list()
    }

    /// `closeSession`: stops a session's child; its conversation stays resumable.
    pub fn close_session(&self, name: &str) -> Result<CloseSessionResult, DaemonError> {
        self.inner.sessions.close(name)
    }

    /// The `default` session's state; a stopped one shows as `stopped`.
    fn default_snapshot(&self) -> Snapshot {
        match self.inner.sessions.default_supervisor() {
            Some(supervisor) => supervisor.snapshot(),
            None => {
                let mut snapshot = Snapshot::initial(&self.inner.config);
                snapshot.child.status = ChildStatus::Stopped;
                snapshot
            }
        }
    }

    pub fn events(&self, params: &EventsParams) -> Result<EventsResult, DaemonError> {
        self.events_page(params).map(EventsPage::decode)
    }

    /// [`Daemon::events`] with each event as the JSON text it was recorded as.
    fn events_page(&self, params: &EventsParams) -> Result<EventsPage, DaemonError> {
        if params.limit == Some(0) || params.limit.is_some_and(|l| l > 1000) {
            return Err(DaemonError::InvalidParams {
                field: "limit",
                reason: "must be between 1 and 1000".into(),
            });
        }
        Ok(self.inner.events.page(params))
    }

    /// `events` with `waitMs`: when nothing matches yet, waits until a matching event is
    /// recorded (or the time is up, or a stop begins). Answers with the events' recorded
    /// text, for a surface that writes the page out as it is.
    pub(crate) async fn events_waiting(
        &self,
        params: &EventsParams,
    ) -> Result<EventsPage, DaemonError> {
        let wait_ms = params.wait_ms.unwrap_or(0);
        if wait_ms > MAX_WAIT_MS {
            return Err(DaemonError::InvalidParams {
                field: "waitMs",
                reason: format!("must be between 0 and {MAX_WAIT_MS}"),
            });
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
        let mut newest = self.inner.events.subscribe();
        let stop = self.stop_begun();
        tokio::pin!(stop);
        loop {
            // Marked seen before the query, so an event recorded after it wakes the loop.
            newest.borrow_and_update();
            let page = self.events_page(params)?;
            if !page.events.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(page);
            }
            tokio::select! {
                changed = tokio::time::timeout_at(deadline, newest.changed()) => {
                    if !matches!(changed, Ok(Ok(()))) {
                        return self.events_page(params);
                    }
                }
                _ = &mut stop => return self.events_page(params),
            }
        }
    }

    /// The event record, for surfaces that add their own events.
    pub fn event_log(&self) -> &EventLog {
        &self.inner.events
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Where this server runs among nested claude-coded servers.
    pub fn nesting(&self) -> Nesting {
        self.inner.nesting
    }

    /// Records who is being served: in `status` and, when it changed, as an event.
    pub fn record_client(&self, session: ClientSession) {
        let mut current = lock(&self.inner.client);
        let same = current.as_ref().is_some_and(|c| {
            (
                &c.surface,
                &c.protocol_version,
                &c.name,
                &c.version,
                &c.capabilities,
            ) == (
                &session.surface,
                &session.protocol_version,
                &session.name,
                &session.version,
                &session.capabilities,
            )
        });
        if same {
            return;
        }
        let who = match (&session.name, &session.version) {
            (Some(name), Some(version)) => format!("{name} {version}"),
            (Some(name), None) => name.clone(),
            _ => "an unnamed client".to_string(),
        };
        let revision = session
            .protocol_version
            .as_ref()
            .map_or(String::new(), |v| format!(" (MCP {v})"));
        self.inner.events.record_detail(
            Level::Info,
            format!("serving {who} on the {} surface{revision}", session.surface),
            &session,
        );
        *current = Some(session);
    }

    /// The state directory of this instance, when persistence is on.
    pub(crate) fn state_root(&self) -> Option<&Path> {
        self.inner.state_dir.as_ref().map(StateDir::root)
    }

    /// Records where the socket listens (`Ok`) or why it does not (`Err`), for `status`.
    pub(crate) fn set_socket(&self, socket: Result<Option<String>, String>) {
        *lock(&self.inner.socket) = socket;
    }

    /// Writes `value` as `name` in the state directory (atomically, 0600); its path.
    pub(crate) fn write_state_json<T: serde::Serialize>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<std::path::PathBuf, String> {
        let Some(dir) = self.inner.state_dir.as_ref() else {
            return Err("no state directory".into());
        };
        dir.write_json_atomic(name, value)
            .map(|()| dir.path(name))
            .map_err(|err| err.to_string())
    }

    /// Records the base URL HTTP listens on and its token's file, for `status`.
    pub(crate) fn set_listen(&self, url: String, token_file: Option<String>) {
        *lock(&self.inner.listen) = Some((url, token_file));
    }

    /// `stop`: begins a graceful stop of a background daemon (the turn in flight may
    /// finish within the stop grace period); the stop goes on after the answer. A daemon
    /// serving a client on stdio belongs to that client and refuses.
    pub(crate) fn request_stop(&self) -> Result<StopResult, DaemonError> {
        let pid = std::process::id();
        if self.inner.serving == Serving::Stdio {
            return Err(DaemonError::NotStoppable { pid });
        }
        self.inner.events.record_detail(
            Level::Info,
            "a client asked the daemon to stop",
            &crate::api::DaemonStopRequested { pid },
        );
        let daemon = self.clone();
        tokio::spawn(async move { daemon.shutdown("stop requested").await });
        Ok(StopResult {
            stopping: true,
            pid,
        })
    }

    /// Resolves once a stop has begun (at once if it has).
    pub(crate) fn stop_begun(&self) -> impl Future<Output = &'static str> + Send + use<> {
        self.phase_reached(Phase::Stopping, "claude-coded is stopping")
    }

    /// Resolves once the stop has ended: the child is gone and the final state written.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + Send + use<> {
        let reached = self.phase_reached(Phase::Stopped, "");
        async move {
            reached.await;
        }
    }

    fn phase_reached(
        &self,
        phase: Phase,
        what: &'static str,
    ) -> impl Future<Output = &'static str> + Send + use<> {
        let mut phases = self.inner.phase.subscribe();
        async move {
            // The sender lives as long as the daemon's `Inner`, which outlives its tasks;
            // should it go, the daemon is gone, which is past any phase.
            let _ = phases.wait_for(|p| *p >= phase).await;
            what
        }
    }

    fn is_stopping(&self) -> bool {
        *self.inner.phase.borrow() >= Phase::Stopping
    }

    /// Stops the child, records the stop and writes the final state. Idempotent: a second
    /// call waits until the first one has finished.
    pub async fn shutdown(&self, reason: &str) {
        let began = self.inner.phase.send_if_modified(|phase| {
            let first = *phase == Phase::Running;
            if first {
                *phase = Phase::Stopping;
            }
            first
        });
        if !began {
            return self.stopped().await;
        }
        self.inner.events.record_detail(
            Level::Info,
            format!("stopping: {reason}"),
            &crate::api::DaemonStopping {
                reason: reason.to_string(),
            },
        );
        // Saved before anything is stopped: a host that escalates to SIGKILL within
        // milliseconds (Codex: 24 ms) leaves "stopping", never a stale "running".
        self.persist(DaemonState::Stopping);
        crate::supervisor::clear_spares();
        self.inner
            .sessions
            .stop(crate::shutdown::is_signal(reason))
            .await;
        // The background turns end with the stop; keep how, for after a restart.
        self.inner.background.settle().await;
        self.inner.events.record_detail(
            Level::Info,
            "stopped",
            &crate::api::DaemonStopped {
                uptime_ms: self.inner.started.elapsed().as_millis() as u64,
            },
        );
        self.persist(DaemonState::Stopped);
        self.inner.phase.send_replace(Phase::Stopped);
    }

    fn daemon_state(&self) -> DaemonState {
        if self.is_stopping() {
            DaemonState::Stopping
        } else {
            DaemonState::Running
        }
    }

    fn status_from(&self, snapshot: &Snapshot, state: DaemonState) -> StatusResult {
        let inner = &self.inner;
        let socket = lock(&inner.socket).clone();
        // Taken once: a second lock in the struct below would wait on the first's guard.
        let (listen, listen_token_file) = lock(&inner.listen).clone().unzip();
        let (sessions, totals) = inner.sessions.overview();
        StatusResult {
            identity: IdentityInfo {
                daemon_id: inner.identity.daemon_id.clone(),
                created_at: inner.identity.created_at.clone(),
                version: crate::VERSION.to_string(),
            },
            daemon: DaemonInfo {
                state,
                pid: std::process::id(),
                started_at: inner.started_at.clone(),
                uptime_ms: inner.started.elapsed().as_millis() as u64,
                state_dir: inner
                    .state_dir
                    .as_ref()
                    .map(|d| d.root().display().to_string()),
                instance: inner.state_dir.as_ref().map(StateDir::instance),
                state_error: lock(&inner.state_error).clone(),
                nesting: inner.nesting,
                serving: inner.serving,
                socket: socket.clone().ok().flatten(),
                socket_error: socket.err(),
                listen,
                listen_token_file: listen_token_file.flatten(),
                log_lines_dropped: crate::stderr_log::dropped(),
            },
            child: snapshot.child.clone(),
            turn: snapshot.turn_now(),
            queue: snapshot.queue.clone(),
            totals,
            events: inner.events.counters(),
            client: lock(&inner.client).clone(),
            config: inner.config.status_config(),
            sessions: sessions.sessions,
            spares: crate::supervisor::spares(),
        }
    }

    /// Writes `daemon-state.json` as `state`; the running state only while the daemon
    /// runs (checked under the write's lock, see [`Inner::persisting`]).
    fn persist(&self, state: DaemonState) {
        let Some(dir) = self.inner.state_dir.as_ref() else {
            return;
        };
        let _one_writer = lock(&self.inner.persisting);
        if state == DaemonState::Running && self.is_stopping() {
            return;
        }
        let status = self.status_from(&self.default_snapshot(), state);
        let outcome = dir.write_json_atomic(STATE_FILE, &status);
        let mut error = lock(&self.inner.state_error);
        match outcome {
            Ok(()) => *error = None,
            Err(err) => {
                let message = err.to_string();
                // Record a failure once, not on every state change.
                if error.as_deref() != Some(message.as_str()) {
                    self.inner.events.record_detail(
                        Level::Error,
                        message.clone(),
                        &crate::api::StateWriteFailed {
                            file: STATE_FILE.to_string(),
                        },
                    );
                }
                *error = Some(message);
            }
        }
    }
}

fn validate_ask(params: &AskParams) -> Result<(), DaemonError> {
    if params.prompt.trim().is_empty() {
        return Err(DaemonError::InvalidParams {
            field: "prompt",
            reason: "must not be empty".into(),
        });
    }
    if params.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
        return Err(DaemonError::InvalidParams {
            field: "model",
            reason: "must not be empty".into(),
        });
    }
    if params
        .max_budget_usd
        .is_some_and(|usd| !(usd.is_finite() && usd >= MIN_BUDGET_USD))
    {
        // Less would reach the CLI's --max-budget-usd (to the millionth) as 0, which it
        // refuses at start, and the session would refuse asks until its backoff ended.
        return Err(DaemonError::InvalidParams {
            field: "maxBudgetUsd",
            reason: "must be a number of US dollars of at least 0.000001 (the CLI takes a \
                     budget to the millionth of a dollar)"
                .into(),
        });
    }
    match params.timeout_ms {
        Some(ms) if ms == 0 || ms > MAX_TIMEOUT_MS => Err(DaemonError::InvalidParams {
            field: "timeoutMs",
            reason: format!("must be between 1 and {MAX_TIMEOUT_MS}"),
        }),
        _ => Ok(()),
    }
}

/// Writes `daemon-state.json` once at the start, then after state changes, a few at a
/// time.
async fn persist_loop(daemon: Daemon, mut changes: watch::Receiver<u64>) {
    // The sessions start before this receiver exists: on a busy machine a warm child may
    // spawn and become ready before it subscribes, and an idle daemon would then change
    // no more and never write its state (what `status` reads once the daemon is gone).
    changes.mark_changed();
    while changes.changed().await.is_ok() {
        tokio::time::sleep(PERSIST_DEBOUNCE).await;
        if daemon.is_stopping() {
            return;
        }
        changes.borrow_and_update();
        daemon.persist(DaemonState::Running);
    }
}

/// Opens the state directory and identity; on failure the daemon runs without them.
/// The identity of a daemon that persists nothing.
fn ephemeral_identity() -> Identity {
    Identity {
        daemon_id: uuid::Uuid::new_v4().to_string(),
        created_at: now_rfc3339(),
    }
}

fn open_state(config: &Config, events: &EventLog) -> (Option<StateDir>, Identity, Option<String>) {
    let ephemeral = ephemeral_identity;
    let failed = |message: String| {
        events.record_detail(
            Level::Error,
            format!("{message}; running without persisted state"),
            &crate::api::StateUnavailable {
                state_dir: config.state_dir.clone(),
            },
        );
        (None, ephemeral(), Some(message))
    };
    let dir = match StateDir::open(&config.state_dir) {
        Ok(dir) => dir,
        Err(err) => return failed(err.to_string()),
    };
    match dir.open_event_log() {
        Ok(file) => events.attach_file(
            dir.path(crate::state_dir::EVENTS_FILE),
            file,
            config.event_log_max_bytes,
            config.event_log_keep,
        ),
        Err(err) => return failed(err.to_string()),
    }
    let identity = match dir.load_identity() {
        Ok(load) => {
            record_identity(&load, events);
            load.identity().clone()
        }
        Err(err) => return failed(err.to_string()),
    };
    (Some(dir), identity, None)
}

fn record_identity(load: &IdentityLoad, events: &EventLog) {
    match load {
        IdentityLoad::Existing(_) => {}
        IdentityLoad::Created(id) => {
            events.record_detail(
                Level::Info,
                format!("new daemon identity {}", id.daemon_id),
                &crate::api::IdentityCreated {
                    daemon_id: id.daemon_id.clone(),
                },
            );
        }
        IdentityLoad::Replaced {
            identity,
            reason,
            moved_to,
        } => {
            events.record_detail(
                Level::Warn,
                format!(
                    "identity.json was {reason}; replaced with {}",
                    identity.daemon_id
                ),
                &crate::api::StateCorrupt {
                    file: crate::state_dir::IDENTITY_FILE.to_string(),
                    moved_to: moved_to.clone(),
                    problems: None,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_error_shows_amounts_too_small_for_cents_as_they_are() {
        let error = DaemonError::BudgetExhausted {
            scope: "session `a`".into(),
            flag: "session-budget-usd",
            spent: 0.00028000000000000003,
            limit: 0.0002,
        };
        assert!(
            error
                .to_string()
                .contains("spent $0.00028 of its $0.0002 (--session-budget-usd)"),
            "{error}"
        );
        assert_eq!(crate::api::usd_text(2.0), "2");
        assert_eq!(crate::api::usd_text(12.5), "12.5");
    }

    /// A fresh directory (cwd and state dir inside) and a config for it whose child
    /// cannot start: for what the daemon itself writes.
    fn config_in(name: &str) -> (std::path::PathBuf, Config) {
        let dir = std::env::temp_dir().join(format!("cc-daemon-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let args = crate::config::ConfigArgs {
            cwd: Some(dir.clone()),
            state_dir: Some(dir.join("state")),
            claude_bin: Some(dir.join("no-such-claude").display().to_string()),
            ..Default::default()
        };
        let config = Config::resolve(&args, None).unwrap();
        (dir, config)
    }

    /// The debounced writer checks that the daemon runs, then writes; the stop may come
    /// between the two. The check is made again under the write's lock, so a late
    /// running state never lands over the stop's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_running_state_written_after_the_stop_leaves_the_stop_on_disk() {
        let (dir, config) = config_in("persist");
        let daemon = Daemon::start(config);
        daemon.shutdown("test").await;
        daemon.persist(DaemonState::Running);
        let file = std::fs::read_to_string(dir.join("state").join(STATE_FILE)).unwrap();
        let state: serde_json::Value = serde_json::from_str(&file).unwrap();
        assert_eq!(state["daemon"]["state"], "stopped", "{file}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Nothing changes in a daemon that warms no session: its state is written all the
    /// same, as it would not be if the first write waited for a change.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_daemon_whose_sessions_never_change_still_writes_its_state() {
        let (dir, config) = config_in("first");
        let daemon = Daemon::start_without_default(config);
        let file = dir.join("state").join(STATE_FILE);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !file.exists() {
            assert!(
                Instant::now() < deadline,
                "no {STATE_FILE} 10 s after the start"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(state["daemon"]["state"], "running", "{state}");
        daemon.shutdown("test").await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ask_params_are_checked_by_field() {
        let bad = |prompt: &str, timeout_ms| {
            validate_ask(&AskParams {
                prompt: prompt.into(),
                timeout_ms,
                ..AskParams::default()
            })
            .unwrap_err()
            .to_string()
        };
        assert!(bad("  ", None).contains("prompt"));
        assert!(bad("hi", Some(0)).contains("timeoutMs"));
        assert!(bad("hi", Some(MAX_TIMEOUT_MS + 1)).contains("timeoutMs"));
        for usd in [0.0, -1.0, f64::NAN, f64::INFINITY, 4e-7, 9.99e-7] {
            let refused = validate_ask(&AskParams {
                prompt: "hi".into(),
                max_budget_usd: Some(usd),
                ..AskParams::default()
            });
            assert!(
                matches!(
                    refused,
                    Err(DaemonError::InvalidParams {
                        field: "maxBudgetUsd",
                        ..
                    })
                ),
                "{usd}: {refused:?}"
            );
        }
        assert!(
            validate_ask(&AskParams {
                prompt: "hi".into(),
                timeout_ms: Some(5),
                ..AskParams::default()
            })
            .is_ok()
        );
    }
}
