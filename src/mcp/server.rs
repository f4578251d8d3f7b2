//! The MCP server: three tools over the core, and what rmcp needs to know about them.
//!
//! rmcp does the protocol: handshake and revision negotiation, `server/discover`,
//! `ping`, request routing, argument parsing (a bad argument is an `isError` result),
//! progress tokens, cancellation tokens, and writing every message. This file only says
//! what the tools are and does the work of each call.
// `logging/setLevel` and its types are deprecated by SEP-2577 (see `logging.rs`).
#![allow(deprecated)]

use std::borrow::Cow;

use rmcp::handler::server::tool::{ToolCallContext, ToolRouter};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ProtocolVersion,
    ServerCapabilities, ServerConfig, SetLevelRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use tokio::sync::{mpsc, watch};

use super::drain::OutputDrain;
use super::logging::LogStream;
use super::progress::TurnReporter;
use super::{EVENTS_CAPABILITY, render, schema, text};
use crate::api::{AskParams, AskResult, EventsParams, EventsResult, StatusParams, StatusResult};
use crate::daemon::{Daemon, DaemonError};
use crate::supervisor::AskError;

/// Child messages a turn may buffer for a slow client before the excess is dropped
/// (and counted in `status`), as on the plain surface.
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
}

impl McpServer {
    pub fn new(daemon: Daemon, drain: OutputDrain) -> McpServer {
        let logs = LogStream::new(daemon.event_log().clone());
        McpServer {
            daemon,
            tool_router: McpServer::tool_router(),
            logs,
            calls: watch::Sender::new(0),
            drain,
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

#[tool_router]
impl McpServer {
    #[tool(
        name = "ask",
        title = "Ask Claude Code",
        description = text::ASK_DESCRIPTION,
        input_schema = schema::input::<AskParams>(),
        output_schema = schema::output::<AskResult>(),
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
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let reporter = TurnReporter {
            peer: context.peer.clone(),
            progress_token: context.meta.get_progress_token(),
            raw_events_for: wants_raw_events(&context)
                .then(|| context.id.clone().into_json_value()),
            drain: self.drain,
        };
        let turn = self.run_turn(params, reporter);
        // rmcp cancels this token on `notifications/cancelled` (and when the session ends)
        // and drops the response; dropping `turn` here is what interrupts the child or
        // takes the ask out of the queue.
        tokio::select! {
            rendered = turn => rendered,
            () = context.ct.cancelled() => {
                tracing::info!(id = %context.id, "ask cancelled");
                // Dropped by rmcp after `notifications/cancelled`; written when the session
                // ends under a running ask.
                render::failure(&DaemonError::from(AskError::Cancelled))
            }
        }
    }

    #[tool(
        name = "status",
        title = "Claude Code status",
        description = text::STATUS_DESCRIPTION,
        input_schema = schema::input::<StatusParams>(),
        output_schema = schema::output::<StatusResult>(),
        annotations(title = "Claude Code status", read_only_hint = true, open_world_hint = false)
    )]
    async fn status(&self, Parameters(_): Parameters<StatusParams>) -> CallToolResult {
        render::status(&self.daemon.status())
    }

    #[tool(
        name = "events",
        title = "Claude Code events",
        description = text::EVENTS_DESCRIPTION,
        input_schema = schema::input::<EventsParams>(),
        output_schema = schema::output::<EventsResult>(),
        annotations(title = "Claude Code events", read_only_hint = true, open_world_hint = false)
    )]
    async fn events(&self, Parameters(params): Parameters<EventsParams>) -> CallToolResult {
        match self.daemon.events(&params) {
            Ok(page) => render::events(&page),
            Err(err) => render::failure(&err),
        }
    }
}

impl McpServer {
    /// Runs the turn and streams its messages; returns only after the last notification
    /// about it was written.
    async fn run_turn(&self, params: AskParams, reporter: TurnReporter) -> CallToolResult {
        let answer = if reporter.is_silent() {
            self.daemon.ask(params, None).await
        } else {
            let (sink, messages) = mpsc::channel(TURN_BUFFER);
            let (answer, ()) = tokio::join!(
                self.daemon.ask(params, Some(sink)),
                reporter.forward(messages)
            );
            answer
        };
        match answer {
            Ok(result) => render::ask(&result),
            Err(err) => render::failure(&err),
        }
    }
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
            .build();
        let mut config = ServerConfig::new(capabilities).with_instructions(text::INSTRUCTIONS);
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

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let _in_flight = InFlight::start(&self.calls);
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
