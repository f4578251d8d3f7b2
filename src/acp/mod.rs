//! The ACP surface: claude-coded as an Agent Client Protocol (v1) agent on stdio, for
//! the editors and orchestrators that register agents (Zed, JetBrains, Neovim, Emacs,
//! acpx, ...), over the same core as MCP and the plain methods.
//!
//! Each ACP session is a named session of ours with its own warm, supervised CLI; a
//! `session/new` in the default directory takes a warm spare when one is kept. The
//! wire types are the protocol's own stable schema crate (`agent_client_protocol_schema`
//! 1.x); the transport is ours (`wire`), so a line is parsed once, dispatched by one
//! typed `match` on the request, and answered under the id the client wrote.
//!
//! Layout: `wire` (framing), `session` (ACP sessions: modes, models, MCP servers),
//! `prompt` (one turn: updates, permission questions, the stop reason), `updates` (the
//! child's messages as `session/update`s), `permission` (questions as
//! `session/request_permission`), `replay` (`session/load` from the CLI's transcript).
//!
//! Requests start here in arrival order (a prompt takes its place in its session's queue
//! before the next line is read) and each goes on in a task of its own, so a
//! `session/cancel` is served while a prompt runs. Every line goes out through one
//! writer (the outbox), in order: a turn's updates before its answer.

mod elicit;
mod permission;
mod prompt;
mod replay;
mod session;
mod updates;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use agent_client_protocol_schema::v1::{
    AgentCapabilities, CancelNotification, ClientRequest, CloseSessionRequest,
    CloseSessionResponse, ConfigOptionUpdate, CurrentModeUpdate, Error, Implementation,
    InitializeRequest, InitializeResponse, ListSessionsRequest, ListSessionsResponse,
    LoadSessionRequest, LoadSessionResponse, McpCapabilities, NewSessionRequest,
    NewSessionResponse, PromptCapabilities, ResumeSessionRequest, ResumeSessionResponse,
    SessionCapabilities, SessionCloseCapabilities, SessionConfigOptionValue, SessionInfo,
    SessionListCapabilities, SessionNotification, SessionResumeCapabilities, SessionUpdate,
    SetSessionConfigOptionRequest, SetSessionConfigOptionResponse, SetSessionModeRequest,
    SetSessionModeResponse,
};
use agent_client_protocol_schema::{ProtocolVersion, v1::McpServer};
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncWrite};
use tokio::task::JoinSet;

use crate::api::ClientSession;
use crate::arrivals::Arrivals;
use crate::daemon::Daemon;
use crate::inbox::{Input, spawn_reader};
use crate::lines::Frame;
use crate::outbox::Outbox;
use crate::plain::client_requests::ClientRequests;
use crate::supervisor::Origin;
use crate::sync::lock;
use session::Sessions;
use wire::Incoming;

/// What an ACP session id continues.
struct Known {
    /// Our session's name.
    name: String,
    /// Its directory, and the CLI's id of its conversation (the transcript's name).
    cwd: String,
    transcript: Option<String>,
    /// How to open it: `None` for its own conversation, or the CLI's to resume.
    origin: Option<Origin>,
}

/// How long the slash commands of a new session are waited for (its CLI's warm-up).
const COMMANDS_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

/// `session/update`, the one notification we send.
const SESSION_UPDATE: &str = "session/update";

/// Serves ACP on `input` until EOF (the prompts received finish first) or `shutdown`,
/// then stops the daemon: every session's child ends with it.
pub(crate) async fn serve<R, W>(
    input: Input<R>,
    writer: W,
    daemon: Daemon,
    shutdown: impl Future<Output = &'static str>,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // ACP sessions are sessions of their own: the default session's CLI, warmed at start
    // for the other surfaces, would idle beside them (160-200 MB). It is stopped (a
    // socket client that asks it starts it again); `--spare-sessions` keeps warm CLIs
    // for new ACP sessions instead.
    if let Err(err) = daemon.close_session(crate::supervisor::DEFAULT_SESSION) {
        tracing::debug!(%err, "no default session to stop");
    }
    daemon.keep_spares();
    let (out, writer_task) = Outbox::spawn(writer);
    let max = daemon.config().max_request_bytes;
    let mut agent = Agent {
        daemon: daemon.clone(),
        out: out.clone(),
        client: ClientRequests::default(),
        sessions: Arc::new(Mutex::new(HashMap::new())),
        prompts: Arc::new(Mutex::new(HashMap::new())),
        tasks: JoinSet::new(),
        forms: false,
        arrivals: Arrivals::new(),
    };
    let mut frames = spawn_reader(input, max, out.clone());
    tokio::pin!(shutdown);
    let reason = loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Some(Frame::Line(line)) => agent.on_line(&line),
                Some(Frame::TooLong { len }) => agent.send(wire::error(
                    &Value::Null,
                    &Error::invalid_request().data(json!(format!(
                        "the message is {len} bytes; the most is {max} (--max-request-bytes)"))),
                )),
                Some(Frame::Eof) | None => break tokio::select! {
                    () = agent.finish() => "stdin closed",
                    reason = &mut shutdown => reason,
                    _ = out.abandon_when_stalled() => "the client is gone",
                },
            },
            reason = &mut shutdown => break reason,
            reason = out.gone() => {
                tracing::warn!(%reason, "the client is gone; stopping");
                break "the client is gone";
            }
            Some(_) = agent.tasks.join_next(), if !agent.tasks.is_empty() => {}
        }
    };
    daemon.shutdown(reason).await;
    agent.finish().await;
    drop(agent);
    out.finish(writer_task).await;
    Ok(())
}

/// One client's agent: its sessions, its calls in flight, our requests to it.
struct Agent {
    daemon: Daemon,
    out: Outbox,
    client: ClientRequests,
    sessions: Sessions,
    /// The prompts in flight by request id (as JSON text), with their session: what
    /// `$/cancel_request` cancels.
    prompts: Arc<Mutex<HashMap<String, String>>>,
    tasks: JoinSet<()>,
    /// Whether the client shows forms (`elicitation.form` at `initialize`).
    forms: bool,
    /// This connection's line, where each prompt takes its place as it is read.
    arrivals: Arrivals,
}

impl Agent {
    fn send(&self, line: String) {
        // Queued now, in order; reading pauses by the outbox's backlog, not per line.
        drop(self.out.push(line));
    }

    async fn finish(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    fn on_line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match wire::parse(line) {
            Ok(Incoming::Request { id, method, params }) => self.on_request(id, &method, &params),
            Ok(Incoming::Notification { method, params }) => self.on_notification(&method, &params),
            Ok(Incoming::Response) => {
                if !self.client.on_response(line) {
                    tracing::debug!("ignoring a response that answers no open request of ours");
                }
            }
            Err(refused) => self.send(wire::error(&refused.id, &refused.error)),
        }
    }

    fn on_notification(&mut self, method: &str, params: &Value) {
        match method {
            "session/cancel" => {
                match serde_json::from_value::<CancelNotification>(params.clone()) {
                    Ok(cancel) => self.cancel(&cancel.session_id.0),
                    Err(err) => {
                        tracing::warn!(%err, "ignoring a session/cancel without a sessionId")
                    }
                }
            }
            "$/cancel_request" => {
                let id = params
                    .get("requestId")
                    .map(Value::to_string)
                    .unwrap_or_default();
                let session = lock(&self.prompts).get(&id).cloned();
                if let Some(session) = session {
                    self.cancel(&session);
                }
            }
            other => tracing::debug!(method = %other, "ignoring a notification"),
        }
    }

    /// Cancels every prompt of `session` (running or queued); they answer `cancelled`.
    fn cancel(&self, session: &str) {
        session::with(&self.sessions, session, |s| {
            s.cancel.send_modify(|n| *n += 1)
        });
    }

    /// Dispatches one request: parsed once into its typed form, then one arm each.
    fn on_request(&mut self, id: Value, method: &str, params: &Value) {
        let request = match ClientRequest::from_method_and_params(method, params) {
            Ok(request) => request,
            Err(err) => {
                let error = match err {
                    agent_client_protocol_schema::MethodDispatchError::UnknownMethod { .. } => {
                        Error::method_not_found().data(json!(format!("no method `{method}`")))
                    }
                    other => wire::invalid(other.to_string()),
                };
                return self.send(wire::error(&id, &error));
            }
        };
        let opened = match &request {
            ClientRequest::ResumeSessionRequest(r) => Some(r.session_id.0.to_string()),
            _ => None,
        };
        let answer = match request {
            ClientRequest::InitializeRequest(request) => self.initialize(&request),
            ClientRequest::NewSessionRequest(request) => self.new_session(request),
            ClientRequest::LoadSessionRequest(request) => return self.load_session(id, request),
            ClientRequest::ResumeSessionRequest(request) => self.resume_session(request),
            ClientRequest::ListSessionsRequest(request) => self.list_sessions(&request),
            ClientRequest::CloseSessionRequest(request) => self.close_session(&request),
            ClientRequest::SetSessionModeRequest(request) => self.set_mode(&request),
            ClientRequest::SetSessionConfigOptionRequest(request) => {
                self.set_config_option(&request)
            }
            ClientRequest::PromptRequest(request) => return self.prompt(id, request),
            ClientRequest::AuthenticateRequest(_) => Ok(json!({})),
            _ => Err(Error::method_not_found().data(json!(format!("`{method}` is not supported")))),
        };
        let made = answer
            .as_ref()
            .ok()
            .and_then(|result| result.get("sessionId"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let ok = answer.is_ok();
        self.send(match answer {
            Ok(result) => wire::result(&id, result),
            Err(error) => wire::error(&id, &error),
        });
        if let (true, Some(session)) = (ok, made.or(opened)) {
            self.announce_commands(&session);
        }
    }

    /// Once session `id`'s CLI has answered its warm-up: its slash commands, with their
    /// descriptions, as `available_commands_update` (after the answer that opened it).
    fn announce_commands(&mut self, id: &str) {
        let Some((name, updates)) =
            session::with(&self.sessions, id, |s| (s.name.clone(), s.updates.clone()))
        else {
            return;
        };
        let daemon = self.daemon.clone();
        let announce = announce(daemon, self.out.clone(), id.to_string(), name, updates);
        self.tasks.spawn(announce);
    }

    fn initialize(&mut self, request: &InitializeRequest) -> Result<Value, Error> {
        self.forms = request
            .client_capabilities
            .elicitation
            .as_ref()
            .is_some_and(|e| e.form.is_some());
        let client = request.client_info.as_ref();
        self.daemon.record_client(ClientSession::acp(
            client.map(|c| c.name.clone()),
            client.map(|c| c.version.clone()),
        ));
        let version = std::cmp::min(request.protocol_version, ProtocolVersion::V1);
        let capabilities = AgentCapabilities::new()
            .load_session(true)
            .prompt_capabilities(PromptCapabilities::new().embedded_context(true))
            .mcp_capabilities(McpCapabilities::new().http(true).sse(true))
            .session_capabilities(
                SessionCapabilities::new()
                    .list(SessionListCapabilities::new())
                    .resume(SessionResumeCapabilities::new())
                    .close(SessionCloseCapabilities::new()),
            );
        let response = InitializeResponse::new(version)
            .agent_capabilities(capabilities)
            .agent_info(
                Implementation::new("claude-coded", crate::VERSION)
                    .title("Claude Code (claude-coded)"),
            );
        to_value(response)
    }

    /// Opens our session `name` for an ACP one: confined cwd, MCP servers, added
    /// directories; `origin` as [`Daemon::open_session`] takes it.
    fn open(
        &self,
        name: &str,
        cwd: &std::path::Path,
        origin: Option<Origin>,
        servers: &[McpServer],
        directories: &[std::path::PathBuf],
    ) -> Result<(), Error> {
        let args =
            session::cli_args(&self.daemon, name, servers, directories).map_err(wire::invalid)?;
        let cwd = Some(cwd.to_string_lossy().into_owned());
        self.daemon
            .open_session(name, cwd, origin, args)
            .map_err(core_error)
    }

    fn new_session(&mut self, request: NewSessionRequest) -> Result<Value, Error> {
        if !request.cwd.is_absolute() {
            return Err(wire::invalid("cwd must be an absolute path"));
        }
        let id = session::new_id();
        self.open(
            &id,
            &request.cwd,
            Some(Origin::Fresh),
            &request.mcp_servers,
            &request.additional_directories,
        )?;
        lock(&self.sessions).insert(id.clone(), session::Session::new(id.clone()));
        let config = self.daemon.config();
        to_value(
            NewSessionResponse::new(id)
                .modes(session::mode_state(config, None))
                .config_options(session::config_options(config, None, None)),
        )
    }

    /// What ACP session `id` continues, in `cwd`: a session of ours (made here, or saved
    /// by an earlier run), or a conversation the CLI saved under that id (a thread of
    /// another Claude Code agent, such as claude-agent-acp, whose ids are the CLI's).
    fn known(&self, id: &str, cwd: &std::path::Path) -> Result<Known, Error> {
        let not_found = || Error::resource_not_found(None).data(json!({"sessionId": id}));
        let name = session::name_for(id).ok_or_else(not_found)?;
        let saved = self
            .daemon
            .sessions()
            .sessions
            .into_iter()
            .find(|s| s.name == name);
        match saved {
            Some(info) => Ok(Known {
                transcript: info.session_id.clone(),
                cwd: info.cwd,
                name,
                origin: None,
            }),
            None if !session::is_ours(id) && replay::transcript(cwd, id).is_some() => Ok(Known {
                transcript: Some(id.to_string()),
                cwd: cwd.to_string_lossy().into_owned(),
                name,
                origin: Some(Origin::Resume(id.to_string())),
            }),
            None => Err(not_found()),
        }
    }

    /// Finds and opens the session an ACP `session/load` or `session/resume` names.
    fn reopen(
        &self,
        id: &str,
        cwd: &std::path::Path,
        servers: &[McpServer],
        directories: &[std::path::PathBuf],
    ) -> Result<Known, Error> {
        let known = self.known(id, cwd)?;
        self.open(&known.name, cwd, known.origin.clone(), servers, directories)?;
        Ok(known)
    }

    fn resume_session(&mut self, request: ResumeSessionRequest) -> Result<Value, Error> {
        let id = request.session_id.0.to_string();
        let known = self.reopen(
            &id,
            &request.cwd,
            &request.mcp_servers,
            &request.additional_directories,
        )?;
        let config = self.daemon.config();
        let (mode, model) = self.adopt(&id, &known.name);
        to_value(
            ResumeSessionResponse::new()
                .modes(session::mode_state(config, mode))
                .config_options(session::config_options(config, mode, model.as_deref())),
        )
    }

    /// The connection's state of session `id` (our session `name`), made when it comes
    /// from an earlier run.
    fn adopt(
        &self,
        id: &str,
        name: &str,
    ) -> (Option<crate::permissions::PermissionMode>, Option<String>) {
        let mut sessions = lock(&self.sessions);
        let state = sessions
            .entry(id.to_string())
            .or_insert_with(|| session::Session::new(name.to_string()));
        (state.mode, state.model.clone())
    }

    /// `session/load`: the conversation replayed as updates, then the session continued.
    fn load_session(&mut self, id: Value, request: LoadSessionRequest) {
        let session = request.session_id.0.to_string();
        let known = self.reopen(
            &session,
            &request.cwd,
            &request.mcp_servers,
            &request.additional_directories,
        );
        let known = match known {
            Ok(known) => known,
            Err(error) => return self.send(wire::error(&id, &error)),
        };
        let (mode, model) = self.adopt(&session, &known.name);
        let updates = session::with(&self.sessions, &session, |s| s.updates.clone());
        let commands_to = updates.clone();
        let daemon = self.daemon.clone();
        let out = self.out.clone();
        let config = self.daemon.config().clone();
        self.tasks.spawn(async move {
            let path = known
                .transcript
                .as_deref()
                .and_then(|cli_id| replay::transcript(std::path::Path::new(&known.cwd), cli_id));
            if let (Some(path), Some(updates)) = (path, updates) {
                // Its own translator, put back after: a prompt the client sends before
                // the load answers starts from what a new session knows.
                let mut translator = std::mem::take(&mut *lock(&updates));
                let sent = replay::replay(&path, &mut translator, |update| {
                    let line = update_line(&session, update);
                    let pushed = out.push(line);
                    async move {
                        let _ = pushed.await;
                    }
                })
                .await;
                *lock(&updates) = translator;
                if let Err(err) = sent {
                    tracing::warn!(%err, path = %path.display(), "cannot replay the transcript");
                }
            }
            let response = LoadSessionResponse::new()
                .modes(session::mode_state(&config, mode))
                .config_options(session::config_options(&config, mode, model.as_deref()));
            let _ = out.push(wire::result(&id, response)).await;
            if let Some(updates) = commands_to {
                announce(daemon, out, session, known.name, updates).await;
            }
        });
    }

    fn list_sessions(&self, request: &ListSessionsRequest) -> Result<Value, Error> {
        let sessions = self
            .daemon
            .sessions()
            .sessions
            .into_iter()
            .filter(|s| session::is_ours(&s.name))
            .filter(|s| {
                request
                    .cwd
                    .as_ref()
                    .is_none_or(|cwd| std::path::Path::new(&s.cwd) == cwd)
            })
            .map(|s| SessionInfo::new(s.name, s.cwd).updated_at(s.last_used_at))
            .collect();
        to_value(ListSessionsResponse::new(sessions))
    }

    fn close_session(&mut self, request: &CloseSessionRequest) -> Result<Value, Error> {
        let id = request.session_id.0.to_string();
        let not_found = || Error::resource_not_found(None).data(json!({"sessionId": id}));
        let name = session::name_for(&id).ok_or_else(not_found)?;
        self.cancel(&id);
        lock(&self.sessions).remove(&id);
        self.daemon.close_session(&name).map_err(core_error)?;
        session::forget_files(&self.daemon, &name);
        to_value(CloseSessionResponse::new())
    }

    fn set_mode(&mut self, request: &SetSessionModeRequest) -> Result<Value, Error> {
        let id = request.session_id.0.to_string();
        let mode =
            session::mode_named(self.daemon.config(), &request.mode_id.0).map_err(wire::invalid)?;
        session::with(&self.sessions, &id, |s| s.mode = Some(mode))
            .ok_or_else(|| Error::resource_not_found(None).data(json!({"sessionId": id})))?;
        self.send(update_line(
            &id,
            SessionUpdate::CurrentModeUpdate(CurrentModeUpdate::new(mode.as_str())),
        ));
        to_value(SetSessionModeResponse::new())
    }

    fn set_config_option(
        &mut self,
        request: &SetSessionConfigOptionRequest,
    ) -> Result<Value, Error> {
        let id = request.session_id.0.to_string();
        let SessionConfigOptionValue::ValueId { value } = &request.value else {
            return Err(wire::invalid(
                "the options here are selects: give a value id",
            ));
        };
        let config = self.daemon.config();
        let change: Box<dyn FnOnce(&mut session::Session)> = match &*request.config_id.0 {
            session::MODE => {
                let mode = session::mode_named(config, &value.0).map_err(wire::invalid)?;
                Box::new(move |s| s.mode = Some(mode))
            }
            session::MODEL => {
                let model = session::model_named(&value.0).map_err(wire::invalid)?;
                Box::new(move |s| s.model = model)
            }
            other => return Err(wire::invalid(format!("no config option `{other}`"))),
        };
        let (mode, model) = session::with(&self.sessions, &id, |s| {
            change(s);
            (s.mode, s.model.clone())
        })
        .ok_or_else(|| Error::resource_not_found(None).data(json!({"sessionId": id})))?;
        let options = session::config_options(config, mode, model.as_deref());
        self.send(update_line(
            &id,
            SessionUpdate::ConfigOptionUpdate(ConfigOptionUpdate::new(options.clone())),
        ));
        to_value(SetSessionConfigOptionResponse::new(options))
    }

    fn prompt(&mut self, id: Value, request: agent_client_protocol_schema::v1::PromptRequest) {
        let session = request.session_id.0.to_string();
        let place = self.arrivals.place();
        let started = prompt::start(&self.sessions, &session, &request.prompt, place);
        let starting = match started {
            Ok(starting) => starting,
            Err(error) => return self.send(wire::error(&id, &error)),
        };
        let key = id.to_string();
        lock(&self.prompts).insert(key.clone(), session.clone());
        let prompts = self.prompts.clone();
        let ctx = prompt::Ctx {
            out: self.out.clone(),
            client: self.client.clone(),
            sessions: self.sessions.clone(),
            session,
            forms: self.forms,
        };
        let daemon = self.daemon.clone();
        self.tasks.spawn(async move {
            let answer = match starting.queue(&daemon).await {
                Ok(run) => run.finish(&ctx).await,
                Err(error) => Err(error),
            };
            lock(&prompts).remove(&key);
            let line = match answer {
                Ok(response) => wire::result(&id, response),
                Err(error) => wire::error(&id, &error),
            };
            let _ = ctx.out.push(line).await;
        });
    }
}

/// Once session `id`'s CLI (our session `name`) has answered its warm-up: its slash
/// commands, with their descriptions, as `available_commands_update` (sent after the
/// answer that opened the session).
async fn announce(
    daemon: Daemon,
    out: Outbox,
    id: String,
    name: String,
    updates: Arc<Mutex<updates::Updates>>,
) {
    let Some(commands) = daemon.cli_commands(&name, COMMANDS_WITHIN).await else {
        return;
    };
    lock(&updates).commands_announced();
    let _ = out
        .push(update_line(&id, updates::commands(&commands)))
        .await;
}

/// A `session/update` line.
fn update_line(session: &str, update: SessionUpdate) -> String {
    wire::notification(
        SESSION_UPDATE,
        SessionNotification::new(session.to_string(), update),
    )
}

fn to_value(value: impl serde::Serialize) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|err| Error::internal_error().data(json!(err.to_string())))
}

/// A core error as an ACP error: the core's code, its one-line message, its data.
fn core_error(error: crate::error::DaemonError) -> Error {
    let (code, message, data) = error.parts();
    Error::new(code, message).data(data)
}
