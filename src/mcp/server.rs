//! The MCP server: six tools (`ask`, `wait`, `cancel`, `status`, `sessions`, `events`) over the core, and what rmcp needs to know about them.
//!
//! rmcp does the protocol: handshake and revision negotiation, `server/discover`,
//! `ping`, request routing, argument parsing (a bad argument is an `isError` result),
//! progress tokens, cancellation tokens, and writing every message. This file only says
//! what the tools are and does the work of each call.
// `logging/setLevel` and its types are deprecated by SEP-2577 (see `logging.rs`).
#![allow(deprecated)]

use std::borrow::Cow;

use rmcp::handler::server::tool::{InputResponses, RequestState, ToolCallContext, ToolRouter};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ClientCapabilities,
    GetTaskParams, GetTaskResult, Implementation, ProtocolVersion, ServerCapabilities,
    ServerConfig, SetLevelRequestParams, UpdateTaskParams,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use tokio::sync::{mpsc, watch};

use super::drain::OutputDrain;
use super::logging::LogStream;
use super::output::{
    AskReply, EventsPage, EventsToolParams, SessionsToolParams, StatusReport, StatusToolParams,
    WaitReply,
};
use super::permissions;
use super::progress::TurnReporter;
use super::rounds::{RoundEnd, Rounds, Run};
use super::wire::RawEventRoute;
use super::{EVENTS_CAPABILITY, render, schema, text};
use crate::api::{
    AskParams, CancelResult, ClientSession, HandleParams, SessionsResult, WaitParams,
};
use crate::arrivals::Place;
use crate::daemon::{Daemon, Wants};
use crate::error::DaemonError;
use crate::supervisor::{AskError, DEFAULT_SESSION};

/// Child messages one round of a turn may buffer for a slow client.
const TURN_BUFFER: usize = 1024;

/// Every revision this server was tested with; rmcp negotiates among them (answering an
/// unknown `initialize` version with the newest handshake revision) and lists them in
/// `server/discover`. Pinned here so an rmcp update cannot widen it silently.
const REVISIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2024_11_05,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// One MCP session over the daemon.
pub struct McpServer {
    daemon: Daemon,
    tool_router: ToolRouter<McpServer>,
    logs: LogStream,
    /// Tool calls being served, so a stop can let them answer before the session ends.
    calls: watch::Sender<usize>,
    /// How an `ask` response waits for the client to read its notifications.
    drain: OutputDrain,
    /// Asks waiting for their client's next round (2026-07-28 permission questions).
    rounds: Rounds,
    /// Whether this client was asked for its roots in a round (2026-07-28).
    roots_asked: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl McpServer {
    pub fn new(daemon: Daemon, drain: OutputDrain) -> McpServer {
        let logs = LogStream::new(daemon.event_log().clone());
        let mut tool_router = McpServer::tool_router();
        if let Some(ask) = tool_router.map.get_mut("ask") {
            ask.attr.description = Some(text::ask_description(daemon.config()).into());
        }
        McpServer {
            daemon,
            tool_router,
            logs,
            calls: watch::Sender::new(0),
            drain,
            rounds: Rounds::default(),
            roots_asked: Default::default(),
        }
    }

    /// The number of tool calls in flight, as it changes.
    pub fn calls_in_flight(&self) -> watch::Receiver<usize> {
        self.calls.subscribe()
    }
}

/// Counts one tool call in flight for as long as it lives.
struct InFlight<'a>(&'a watch::Sender<usize>);

impl<'a> InFlight<'a> {
    fn start(calls: &'a watch::Sender<usize>) -> InFlight<'a> {
        calls.send_modify(|n| *n += 1);
        InFlight(calls)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[tool_router(vis = "pub(super)")]
impl McpServer {
    #[tool(
        name = "ask",
        title = "Ask Claude Code",
        // Replaced in `new` by one that names the configured permission mode.
        description = "Send one prompt to the Claude Code agent and wait for its answer.",
        input_schema = schema::ask_input(),
        output_schema = schema::output::<AskReply>(),
        annotations(
            title = "Ask Claude Code",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn ask(
        &self,
        Parameters(params): Parameters<AskParams>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
        context: RequestContext<RoleServer>,
    ) -> CallToolResponse {
        // 2026-07-28: a client that declares roots gives them as the first ask's round.
        if let Some(round) = self.roots_round(&context, state.as_deref(), responses.as_ref()) {
            return round;
        }
        let state = state.filter(|s| s != super::roots::ROUND);
        // Its place in the connection's line, taken as the wire layer read it (see
        // `crate::arrivals`); over HTTP, where rmcp reads the requests, its own.
        let place = context
            .extensions
            .get::<Place>()
            .cloned()
            .unwrap_or_else(Place::alone);
        if wants_a_task(&context) {
            let elicits = permissions::declares_form(&context);
            return super::tasks::ask_as_task(&self.daemon, params, &place, elicits).await;
        }
        if params.in_background() {
            let handed_off = self.daemon.ask_in_background(&place, params, |_| None);
            return CallToolResponse::Complete(match handed_off.await {
                Ok(handle) => render::handle(&handle),
                Err(err) => render::failure(&err),
            });
        }
        let reporter = TurnReporter {
            peer: context.peer.clone(),
            progress_token: context.meta.get_progress_token(),
            raw_events: wants_raw_events(&context)
                .then(|| context.extensions.get::<RawEventRoute>().cloned())
                .flatten(),
            drain: self.drain,
            session: params.session.clone().unwrap_or(DEFAULT_SESSION.into()),
        };
        let turn = async {
            match state {
                Some(state) => {
                    // A later round queues nothing: let the next ask queue now.
                    place.pass().await;
                    let responses = responses.unwrap_or_default();
                    self.resume(&state, &responses, reporter).await
                }
                None if permissions::answers_in_rounds(&context) => {
                    self.first_round(params, reporter, &place).await
                }
                None => CallToolResponse::Complete(
                    self.run_turn(params, reporter, &place, &context.peer).await,
                ),
            }
        };
        // rmcp cancels this token on `notifications/cancelled` (and when the session ends)
        // and drops the response; dropping `turn` here is what interrupts the child or
        // takes the ask out of the queue.
        tokio::select! {
            rendered = turn => rendered,
            () = context.ct.cancelled() => {
                tracing::info!(id = %context.id, "ask cancelled");
                // Dropped by rmcp after `notifications/cancelled`; written when the session
                // ends under a running ask.
                CallToolResponse::Complete(render::failure(&DaemonError::from(AskError::Cancelled)))
            }
        }
    }

    #[tool(
        name = "wait",
        title = "Wait for a background ask",
        description = text::WAIT_DESCRIPTION,
        input_schema = schema::input::<WaitParams>(),
        output_schema = schema::output::<WaitReply>(),
        annotations(title = "Wait for a background ask", read_only_hint = true, open_world_hint = false)
    )]
    async fn wait(
        &self,
        Parameters(params): Parameters<WaitParams>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let wait = self.daemon.wait(&params);
        tokio::select! {
            waited = wait => match waited {
                Ok(waited) => render::waited(&waited),
                Err(err) => render::failure(&err),
            },
            // Giving up the wait leaves the turn and its result alone.
            () = context.ct.cancelled() => {
                render::failure(&DaemonError::from(AskError::Cancelled))
            }
        }
    }

    #[tool(
        name = "cancel",
        title = "Cancel a background ask",
        description = text::CANCEL_DESCRIPTION,
        input_schema = schema::input::<HandleParams>(),
        output_schema = schema::output::<CancelResult>(),
        annotations(
            title = "Cancel a background ask",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn cancel(&self, Parameters(params): Parameters<HandleParams>) -> CallToolResult {
        match self.daemon.cancel_turn(&params.turn_id) {
            Ok(cancel) => render::cancelled(&cancel),
            Err(err) => render::failure(&err),
        }
    }

    #[tool(
        name = "status",
        title = "Claude Code status",
        description = text::STATUS_DESCRIPTION,
        input_schema = schema::input::<StatusToolParams>(),
        output_schema = schema::output::<StatusReport>(),
        annotations(title = "Claude Code status", read_only_hint = true, open_world_hint = false)
    )]
    async fn status(&self, Parameters(params): Parameters<StatusToolParams>) -> CallToolResult {
        render::status(&self.daemon.status(), self.daemon.nesting(), params.full)
    }

    #[tool(
        name = "sessions",
        title = "Claude Code sessions",
        description = text::SESSIONS_DESCRIPTION,
        input_schema = schema::input::<SessionsToolParams>(),
        output_schema = schema::output::<SessionsResult>(),
        annotations(
            title = "Claude Code sessions",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn sessions(&self, Parameters(params): Parameters<SessionsToolParams>) -> CallToolResult {
        if let Some(name) = &params.close
            && let Err(err) = self.daemon.close_session(name)
        {
            return render::failure(&err);
        }
        render::sessions(&self.daemon.sessions())
    }

    #[tool(
        name = "events",
        title = "Claude Code events",
        description = text::EVENTS_DESCRIPTION,
        input_schema = schema::input::<EventsToolParams>(),
        output_schema = schema::output::<EventsPage>(),
        annotations(title = "Claude Code events", read_only_hint = true, open_world_hint = false)
    )]
    async fn events(&self, Parameters(params): Parameters<EventsToolParams>) -> CallToolResult {
        match self.daemon.events(&params.query()) {
            Ok(page) => render::events(&page, params.full),
            Err(err) => render::failure(&err),
        }
    }
}

impl McpServer {
    /// For a 2026-07-28 client that declares roots, its first ask's first round asks for
    /// them (there is no other way to); the retry's roots are applied and the ask goes on.
    fn roots_round(
        &self,
        context: &RequestContext<RoleServer>,
        state: Option<&str>,
        responses: Option<&rmcp::model::InputResponses>,
    ) -> Option<CallToolResponse> {
        use std::sync::atomic::Ordering;
        if state == Some(super::roots::ROUND) {
            if let Some(responses) = responses {
                super::roots::apply_round(&self.daemon, responses);
            }
            return None;
        }
        let declares = context.meta.protocol_version().is_some()
            && context
                .client_capabilities()
                .is_some_and(|capabilities| capabilities.roots.is_some());
        if !declares || state.is_some() || self.roots_asked.swap(true, Ordering::SeqCst) {
            return None;
        }
        Some(CallToolResponse::InputRequired(
            rmcp::model::InputRequiredResult::new(
                Some(super::roots::round()),
                Some(super::roots::ROUND.to_string()),
            ),
        ))
    }

    /// The first round of an ask whose client answers questions in rounds (2026-07-28).
    async fn first_round(
        &self,
        params: AskParams,
        reporter: TurnReporter,
        place: &Place,
    ) -> CallToolResponse {
        let wants = Wants::answer().with_messages().with_questions(true);
        let (pending, messages, questions) = match self.daemon.ask(place, params, wants, None).await
        {
            Ok(turn) => turn.into_parts(),
            Err(err) => return CallToolResponse::Complete(render::failure(&err)),
        };
        let run = Run {
            pending,
            messages: Some(messages),
            questions,
        };
        self.round(run, reporter).await
    }

    /// The next round of the ask waiting under `state`.
    async fn resume(
        &self,
        state: &str,
        responses: &rmcp::model::InputResponses,
        reporter: TurnReporter,
    ) -> CallToolResponse {
        match self.rounds.resume(state, responses) {
            Some(run) => self.round(run, reporter).await,
            None => CallToolResponse::Complete(render::failure(&DaemonError::InvalidParams {
                field: "requestState",
                reason: "names no ask waiting for its next round (it ended, or its client \
                         did not come back in time)"
                    .into(),
            })),
        }
    }

    /// Streams the turn under this call until its answer, or until it asks something:
    /// then the call ends with the forms, and the turn waits for the next round.
    async fn round(&self, mut run: Run, reporter: TurnReporter) -> CallToolResponse {
        let (round, messages) = mpsc::channel(TURN_BUFFER);
        let (end, ()) = tokio::join!(run.round(round), reporter.forward(messages));
        match end {
            RoundEnd::Done(answer) => CallToolResponse::Complete(match *answer {
                Ok(result) => render::ask(&result),
                Err(err) => render::failure(&err),
            }),
            RoundEnd::Questions(questions) => {
                let config = self.daemon.config();
                let cwd = config.cwd.display().to_string();
                let deadline = std::time::Duration::from_millis(config.permission_timeout_ms);
                let forms = self.rounds.suspend(run, questions, &cwd, deadline);
                CallToolResponse::InputRequired(forms)
            }
        }
    }

    /// Runs the turn and streams its messages; returns only after the last notification
    /// about it was written.
    async fn run_turn(
        &self,
        params: AskParams,
        reporter: TurnReporter,
        place: &Place,
        peer: &Peer<RoleServer>,
    ) -> CallToolResult {
        let wants = match reporter.is_silent() {
            true => Wants::answer(),
            false => Wants::answer().with_messages(),
        };
        let wants = wants.with_questions(permissions::can_ask(peer));
        let answer = match self.daemon.ask(place, params, wants, None).await {
            Ok(turn) => {
                let questions = turn.questions.is_some();
                let (pending, messages, asked) = turn.into_parts();
                let cwd = self.daemon.config().cwd.clone();
                let relay = permissions::relay(peer.clone(), questions.then_some(asked), &cwd);
                let (answer, (), ()) =
                    tokio::join!(pending.wait(), reporter.forward(messages), relay);
                answer.map_err(DaemonError::from)
            }
            Err(err) => Err(err),
        };
        match answer {
            Ok(result) => render::ask(&result),
            Err(err) => render::failure(&err),
        }
    }
}

impl McpServer {
    /// Leaves out the arguments the tool's `inputSchema` does not name. Hosts add their
    /// own (Gemini CLI sends `wait_for_previous` with every call), and a tool refusing
    /// them is a tool the host cannot use; the plain surface stays strict. Done here, in
    /// the one handler every transport calls, so stdio and HTTP agree.
    fn drop_unknown_arguments(&self, request: &mut CallToolRequestParams) {
        let Some(route) = self.tool_router.map.get(request.name.as_ref()) else {
            return;
        };
        let Some(serde_json::Value::Object(known)) = route.attr.input_schema.get("properties")
        else {
            return;
        };
        let Some(arguments) = request.arguments.as_mut() else {
            return;
        };
        let before = arguments.len();
        arguments.retain(|name, _| known.contains_key(name));
        if arguments.len() < before {
            tracing::debug!(tool = %request.name, "ignored arguments the tool does not take");
        }
    }
}

/// What a client declared about itself, for `status` and the event log.
fn client_session(
    protocol_version: Option<String>,
    info: Option<&Implementation>,
    capabilities: Option<&ClientCapabilities>,
) -> ClientSession {
    ClientSession {
        surface: "mcp".to_string(),
        protocol_version,
        name: info.map(|i| i.name.clone()),
        version: info.map(|i| i.version.clone()),
        capabilities: capabilities.map(capability_names).unwrap_or_default(),
        since: crate::clock::now_rfc3339(),
    }
}

/// `elicitation`, `roots`, ... and `experimental/<name>`, `extensions/<name>`.
fn capability_names(capabilities: &ClientCapabilities) -> Vec<String> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(capabilities) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for (key, value) in map {
        match (key.as_str(), value) {
            ("experimental" | "extensions", serde_json::Value::Object(inner)) => {
                names.extend(inner.keys().map(|k| format!("{key}/{k}")));
            }
            (_, serde_json::Value::Null) => {}
            _ => names.push(key),
        }
    }
    names
}

/// Did the client declare the tasks extension (for this request, or for its session)?
fn wants_a_task(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .is_some_and(|capabilities| capabilities.supports_tasks())
}

/// Did the client opt in to raw child events (under `experimental` or `extensions`)?
fn wants_raw_events(context: &RequestContext<RoleServer>) -> bool {
    let Some(capabilities) = context.client_capabilities() else {
        return false;
    };
    let declared = |map: Option<&std::collections::BTreeMap<String, rmcp::model::JsonObject>>| {
        map.is_some_and(|m| m.contains_key(EVENTS_CAPABILITY))
    };
    declared(capabilities.experimental.as_ref()) || declared(capabilities.extensions.as_ref())
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_logging()
            .enable_tasks()
            .build();
        let mut config = ServerConfig::new(capabilities)
            .with_instructions(text::instructions(self.daemon.config()));
        config.server_info = Implementation::new("claude-coded", crate::VERSION)
            .with_title(text::SERVER_TITLE)
            .with_description(text::SERVER_DESCRIPTION);
        config
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(REVISIONS)
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.logs.set_level(request.level, &context.peer);
        Ok(())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        // rmcp knows the tasks of this run; the store of detached turns keeps their ends
        // across a restart.
        let task = match super::tasks::store().get_task(&request.task_id) {
            Ok(task) => task,
            Err(unknown) => super::tasks::kept(&self.daemon, &request.task_id).ok_or(unknown)?,
        };
        Ok(GetTaskResult::new(task))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        super::tasks::store().update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        super::tasks::store().cancel_task(&request.task_id)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Some(info) = context.peer.peer_info() {
            self.daemon.record_client(client_session(
                Some(info.protocol_version.to_string()),
                Some(&info.client_info),
                Some(&info.capabilities),
            ));
            if info.capabilities.roots.is_some() {
                tokio::spawn(super::roots::follow(
                    context.peer.clone(),
                    self.daemon.clone(),
                ));
            }
        }
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        tokio::spawn(super::roots::follow(
            context.peer.clone(),
            self.daemon.clone(),
        ));
    }

    async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let _in_flight = InFlight::start(&self.calls);
        self.drop_unknown_arguments(&mut request);
        // 2026-07-28 has no handshake: each request says who sends it.
        if context.meta.protocol_version().is_some() {
            self.daemon.record_client(client_session(
                context.protocol_version().map(|v| v.to_string()),
                context.client_info().as_ref(),
                context.client_capabilities().as_ref(),
            ));
        }
        // 2026-07-28 has no session: a request opts in to the log lines it causes with a
        // level in its `_meta` (unless `logging/setLevel` already streams everything).
        let level = context
            .meta
            .log_level()
            .filter(|_| !self.logs.has_session_level());
        let peer = context.peer.clone();
        let call = self
            .tool_router
            .call(ToolCallContext::new(self, request, context));
        match level {
            Some(level) => self.logs.during(level, &peer, call).await,
            None => call.await,
        }
    }
}
