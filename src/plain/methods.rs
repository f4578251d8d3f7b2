//! The method table of the plain surface, on jsonrpsee's `RpcModule`: adding a method
//! is registering it in [`module`], and nothing else names it.
//!
//! A method parses its own params (once, with [`parse`]) and returns its result or an
//! error object from [`crate::rpc_error`]. The stdio adapter (`super`) serves each call
//! in a task of its own; a method that must run in the order requests came (an `ask`
//! taking its place in the queue) is named in [`takes_place`], and the adapter gives it
//! its [`Place`] as it reads the line (see [`crate::arrivals`]).
//!
//! The same table is served over HTTP and WebSocket by jsonrpsee's own server
//! ([`crate::http`]). There a call has no [`RequestCtx`]: jsonrpsee writes the response,
//! and a connection carries no notifications outside a subscription, so `ask` answers
//! without its events, and `ask/subscribe` (a WebSocket subscription) streams them.

use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{Extensions, RpcModule};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::client_requests::{self, ClientRequests};
use crate::api::{
    AskParams, AskResult, Behavior, CancelResult, CloseSessionParams, CloseSessionResult,
    ElicitationInfo, EventsParams, HandleParams, PermissionAnswer, PermissionRelay,
    PermissionRequestParams, RequestId, SessionsParams, SessionsResult, StatusParams, StatusResult,
    StopResult, TurnHandle, UserQuestionInfo, WaitParams,
};
use crate::arrivals::Place;
use crate::daemon::{Daemon, Turn, Wants};
use crate::error::DaemonError;
use crate::event_lines::EventLines;
use crate::nesting::Caller;
use crate::outbox::Outbox;
use crate::permissions::{Asked, Decision, ElicitAction, Question, relay_each};
use crate::rpc_error::RpcError;
use crate::supervisor::{DEFAULT_SESSION, Pending, TurnMessage};

/// Method name of the notifications streamed during an `ask`, and of an
/// `ask/subscribe` subscription's notifications.
pub(crate) const ASK_EVENT: &str = "ask/event";
/// The subscription (WebSocket only) that runs one ask and streams its events, then its
/// result; and the method that ends it early (withdrawing the ask).
const ASK_SUBSCRIBE: &str = "ask/subscribe";
const ASK_UNSUBSCRIBE: &str = "ask/unsubscribe";
/// Method name of the request that asks the client a permission question.
const PERMISSION_REQUEST: &str = "permission/request";
/// Messages of a background turn that may wait for a slow client (the turn's own
/// buffer is the core's).
const TURN_BUFFER: usize = 1024;

/// Per-request facts the adapter passes to a method through its `Extensions`.
#[derive(Clone)]
pub(crate) struct RequestCtx {
    /// The request's id as the client wrote it, for its notifications.
    pub(crate) id: RequestId,
    /// Lines for stdout (notifications); the response itself is written by the adapter.
    pub(crate) out: Outbox,
    /// Requests to the client (`permission/request`) and their responses.
    pub(crate) client: ClientRequests,
    /// The process that sent the request, when the kernel says (a socket client).
    pub(crate) caller: Option<Caller>,
    /// The request's place in the connection's line, for a method in [`takes_place`].
    pub(crate) place: Option<Place>,
}

/// Whether `method` queues an ask, and so takes its place in the connection's line as
/// its request is read: `ask` (`ask/subscribe` is served by jsonrpsee's own server,
/// which reads and orders its connection itself).
pub(crate) fn takes_place(method: &str) -> bool {
    method == "ask"
}

type MethodResult<T> = Result<T, ErrorObjectOwned>;

/// A daemon error as the error object of a response (one mapping: [`RpcError`]).
fn wire(error: DaemonError) -> ErrorObjectOwned {
    RpcError::from(error).to_error_object()
}

/// Builds the method table: `ask` (and `wait`, `result`, `cancel` for its handles),
/// `status`, `events`, `sessions`, `closeSession`,
/// `restart`, `stop`, `ping`, and the `ask/subscribe` subscription.
pub(crate) fn module(daemon: Daemon) -> Result<RpcModule<Daemon>, RpcError> {
    let mut module = RpcModule::new(daemon);
    let register = |e: jsonrpsee::core::RegisterMethodError| RpcError::Internal(e.to_string());
    module
        .register_async_method("ask", |params, daemon, ext| async move {
            ask_or_hand_off(&params, &daemon, &ext).await
        })
        .map_err(register)?;
    register_handles(&mut module)?;
    module
        .register_subscription(
            ASK_SUBSCRIBE,
            ASK_EVENT,
            ASK_UNSUBSCRIBE,
            |params, pending, daemon, _| super::subscription::ask(params, pending, daemon),
        )
        .map_err(register)?;
    module
        .register_method("status", |params, daemon, _| status(params, daemon))
        .map_err(register)?;
    module
        .register_async_method("events", |params, daemon, _| async move {
            let params: EventsParams = parse(&params)?;
            daemon.events_waiting(&params).await.map_err(wire)
        })
        .map_err(register)?;
    module
        .register_method(
            "sessions",
            |params, daemon, _| -> MethodResult<SessionsResult> {
                parse::<SessionsParams>(&params)?;
                Ok(daemon.sessions())
            },
        )
        .map_err(register)?;
    module
        .register_method(
            "closeSession",
            |params, daemon, _| -> MethodResult<CloseSessionResult> {
                let params: CloseSessionParams = parse(&params)?;
                daemon.close_session(&params.session).map_err(wire)
            },
        )
        .map_err(register)?;
    module
        .register_async_method("restart", |params, daemon, _| async move {
            parse::<StatusParams>(&params)?;
            daemon.restart().await.map_err(wire)
        })
        .map_err(register)?;
    module
        .register_method("stop", |params, daemon, _| -> MethodResult<StopResult> {
            parse::<StatusParams>(&params)?;
            daemon.request_stop().map_err(wire)
        })
        .map_err(register)?;
    module
        .register_method("ping", |params, _, _| -> MethodResult<Value> {
            parse::<StatusParams>(&params)?;
            Ok(json!({}))
        })
        .map_err(register)?;
    Ok(module)
}

/// `wait`, `result` and `cancel`: what takes the handle of an ask with `wait: false`.
fn register_handles(module: &mut RpcModule<Daemon>) -> Result<(), RpcError> {
    let register = |e: jsonrpsee::core::RegisterMethodError| RpcError::Internal(e.to_string());
    module
        .register_async_method("wait", |params, daemon, _| async move {
            let params: WaitParams = parse(&params)?;
            daemon.wait(&params).await.map_err(wire)
        })
        .map_err(register)?;
    module
        .register_async_method("result", |params, daemon, _| async move {
            let params: HandleParams = parse(&params)?;
            let params = WaitParams {
                turn_id: params.turn_id,
                timeout_ms: Some(0),
            };
            daemon.wait(&params).await.map_err(wire)
        })
        .map_err(register)?;
    module
        .register_method(
            "cancel",
            |params, daemon, _| -> MethodResult<CancelResult> {
                let params: HandleParams = parse(&params)?;
                daemon.cancel_turn(&params.turn_id).map_err(wire)
            },
        )
        .map_err(register)?;
    Ok(())
}

/// The table for HTTP POST, where jsonrpsee cannot serve a subscription (it would answer
/// a bare "Internal error"): its two methods say where it is served instead.
pub(crate) fn http_module(daemon: Daemon) -> Result<RpcModule<Daemon>, RpcError> {
    let mut module = module(daemon)?;
    for name in [ASK_SUBSCRIBE, ASK_UNSUBSCRIBE] {
        module.remove_method(name);
        module
            .register_method(name, |_, _, _| -> MethodResult<Value> {
                Err(RpcError::InvalidRequest(
                    "ask/subscribe is a subscription, served over WebSocket on this same path; \
                     over HTTP POST `ask` answers without the turn's events"
                        .into(),
                )
                .to_error_object())
            })
            .map_err(|e| RpcError::Internal(e.to_string()))?;
    }
    Ok(module)
}

/// What `ask` answers: the turn's answer, or, with `wait: false`, the handle.
#[derive(Clone, serde::Serialize)]
#[serde(untagged)]
enum AskAnswer {
    Done(Box<AskResult>),
    Handle(TurnHandle),
}

/// `ask`: the answer when the turn ends, or at once its handle (`wait: false`).
async fn ask_or_hand_off(
    params: &Params<'_>,
    daemon: &Daemon,
    ext: &Extensions,
) -> MethodResult<AskAnswer> {
    // Parsed once, then one of two.
    let params = parse::<AskParams>(params)?;
    if params.in_background() {
        in_background(params, daemon, ext)
            .await
            .map(AskAnswer::Handle)
    } else {
        ask(params, daemon, ext)
            .await
            .map(|r| AskAnswer::Done(Box::new(r)))
    }
}

/// The call's place in its connection's line; over jsonrpsee's HTTP and WebSocket,
/// where a call has no [`RequestCtx`], its own.
fn place_of(ctx: Option<&RequestCtx>) -> Place {
    ctx.and_then(|ctx| ctx.place.clone())
        .unwrap_or_else(Place::alone)
}

/// A background ask (`background: true`, or its alias `wait: false`): queued now,
/// answered with its handle; on a connection that carries notifications its
/// `ask/event`s follow, naming the handle.
async fn in_background(
    params: AskParams,
    daemon: &Daemon,
    ext: &Extensions,
) -> MethodResult<TurnHandle> {
    if params.permissions.is_some() {
        return Err(RpcError::InvalidParam {
            field: "permissions".into(),
            message: "\"client\" needs an ask that waits for its answer; a background turn's \
                      questions are decided by --permission-decider"
                .into(),
        }
        .to_error_object());
    }
    let ctx = ext.get::<RequestCtx>().cloned();
    let place = place_of(ctx.as_ref());
    let tap = |handle: &TurnHandle| {
        let ctx = ctx?;
        let (tap, messages) = mpsc::channel(TURN_BUFFER);
        let lines = EventLines::new(ctx.out.clone(), ASK_EVENT, ctx.id.clone(), &handle.session)
            .naming_turn(&ctx.id, &handle.turn_id, &handle.session);
        tokio::spawn(forward_lines(messages, lines));
        Some(tap)
    };
    daemon
        .ask_in_background(&place, params, tap)
        .await
        .map_err(wire)
}

/// Queues the ask in its place's turn, then streams its turn and waits for the answer.
async fn ask(params: AskParams, daemon: &Daemon, ext: &Extensions) -> MethodResult<AskResult> {
    let ctx = ext.get::<RequestCtx>().cloned();
    let carries = match ctx {
        Some(_) => Carries::EventsAndRequests,
        None => Carries::Nothing,
    };
    let caller = ctx.as_ref().and_then(|ctx| ctx.caller);
    let place = place_of(ctx.as_ref());
    let Queued {
        pending,
        messages,
        questions,
        deadline_ms,
        session,
    } = queue_ask(&place, params, daemon, carries, caller).await?;
    let answer = match (ctx, messages) {
        (Some(ctx), Some(messages)) => {
            let relay = relay(questions, &ctx, deadline_ms);
            let forward = forward(messages, &ctx, &session);
            let (answer, (), ()) = tokio::join!(pending.wait(), forward, relay);
            answer
        }
        // Over jsonrpsee's HTTP and WebSocket: the answer alone.
        _ => pending.wait().await,
    };
    answer.map_err(|e| wire(DaemonError::from(e)))
}

/// An ask in the queue, the stream of its turn's messages and questions, and where
/// they go.
pub(super) struct Queued {
    pub(super) pending: Pending,
    /// Its messages, when the connection can carry them.
    pub(super) messages: Option<mpsc::Receiver<TurnMessage>>,
    /// Its permission questions, when the ask said `permissions: "client"`.
    questions: Option<mpsc::Receiver<Asked>>,
    deadline_ms: u64,
    /// The session the ask went to, named in its events.
    pub(super) session: String,
}

/// What the connection of a call can carry besides the response.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Carries {
    /// The turn's messages and requests to the client: stdio and the socket, through
    /// their adapter.
    EventsAndRequests,
    /// The turn's messages: a WebSocket subscription.
    Events,
    /// Nothing: jsonrpsee's HTTP, and its WebSocket outside a subscription.
    Nothing,
}

/// Queues an ask in `place`'s turn, with a stream of its messages when the connection
/// carries them.
pub(super) async fn queue_ask(
    place: &Place,
    params: AskParams,
    daemon: &Daemon,
    carries: Carries,
    caller: Option<Caller>,
) -> MethodResult<Queued> {
    if params.in_background() {
        // Only `ask/subscribe` gets here with it: `ask` hands such an ask off first.
        return Err(RpcError::InvalidParam {
            field: "wait".into(),
            message: "a subscription streams the ask it waits for; hand an ask off with \
                      the `ask` method"
                .into(),
        }
        .to_error_object());
    }
    let session = params.session.clone().unwrap_or(DEFAULT_SESSION.into());
    let wants = match carries {
        Carries::EventsAndRequests | Carries::Events => Wants::answer().with_messages(),
        Carries::Nothing => Wants::answer(),
    };
    let wants = match params.permissions {
        Some(PermissionRelay::Client) if carries == Carries::EventsAndRequests => {
            wants.with_questions(true)
        }
        Some(PermissionRelay::Client) => {
            return Err(RpcError::InvalidParam {
                field: "permissions".into(),
                message: "\"client\" needs a connection this server can send requests on \
                          (stdio or the Unix socket); over HTTP and WebSocket questions \
                          are decided by --permission-decider"
                    .into(),
            }
            .to_error_object());
        }
        None => wants,
    };
    let Turn {
        pending,
        messages,
        questions,
    } = daemon
        .ask(place, params, wants, caller)
        .await
        .map_err(wire)?;
    Ok(Queued {
        pending,
        messages,
        questions,
        deadline_ms: daemon.config().permission_timeout_ms,
        session,
    })
}

/// Asks the client each question of the turn (`permission/request`); returns when the
/// turn can ask no more.
async fn relay(questions: Option<mpsc::Receiver<Asked>>, ctx: &RequestCtx, deadline_ms: u64) {
    relay_each(questions, |asked| {
        ask_client(ctx.clone(), asked, deadline_ms)
    })
    .await;
}

/// One `permission/request` and its answer; gives up when the question is decided
/// without it (the deadline, a cancel).
async fn ask_client(ctx: RequestCtx, asked: Asked, deadline_ms: u64) {
    let Asked {
        question,
        mut reply,
    } = asked;
    let params = permission_request(&question, &ctx.id, deadline_ms);
    let response = {
        let decided_elsewhere = reply.closed();
        let call = ctx
            .client
            .call(&ctx.out, PERMISSION_REQUEST, params, decided_elsewhere);
        call.await
    };
    let Some(response) = response else {
        return;
    };
    let _ = reply.send(decision_of(&question, response));
}

/// The params of a `permission/request` for `question`.
fn permission_request(question: &Question, ask_id: &RequestId, deadline_ms: u64) -> Value {
    let mut input = question.input.clone();
    crate::redact::redact_value(&mut input);
    let params = PermissionRequestParams {
        request_id: ask_id.clone(),
        tool: question.tool_name.clone(),
        summary: crate::redact::redact(&question.summary).into_owned(),
        input,
        reason: question.reason.clone(),
        blocked_path: question.blocked_path.clone(),
        can_remember: question.session_rule.is_some(),
        questions: question
            .user_questions
            .iter()
            .map(|q| UserQuestionInfo {
                question: q.question.clone(),
                options: q.options.clone(),
                multi_select: q.multi_select,
            })
            .collect(),
        deadline_ms,
        elicitation: question.elicitation.as_ref().map(|asked| ElicitationInfo {
            server: asked.server.clone(),
            message: asked.message.clone(),
            requested_schema: asked.schema.clone(),
            url: asked.url.clone(),
        }),
    };
    serde_json::to_value(params).unwrap_or_default()
}

/// The client's response as a decision; anything but a valid answer denies.
fn decision_of(question: &Question, response: client_requests::Response) -> Decision {
    let answer = match response {
        Ok(result) => serde_json::from_value::<PermissionAnswer>(result),
        Err(error) => {
            let message = format!(
                "Denied: the client answered the permission request with an error ({error})."
            );
            return Decision::Deny { message };
        }
    };
    match answer {
        // An MCP server's question: allow accepts with the filled-in form.
        Ok(PermissionAnswer {
            behavior: Behavior::Allow,
            content,
            ..
        }) if question.elicitation.is_some() => Decision::Answered {
            action: ElicitAction::Accept,
            content: Some(content.unwrap_or_else(|| json!({}))),
        },
        Ok(PermissionAnswer {
            behavior: Behavior::Allow,
            remember,
            answers,
            ..
        }) => Decision::Allow { remember, answers },
        Ok(PermissionAnswer {
            behavior: Behavior::Deny,
            message,
            ..
        }) => Decision::Deny {
            message: message.unwrap_or_else(|| "The user denied this.".to_string()),
        },
        Err(err) => Decision::Deny {
            message: format!("Denied: the client's answer was not understood ({err})."),
        },
    }
}

/// Writes each streamed message as an `ask/event` notification, in order; returns when
/// the turn drops its sink and all of them are queued in the outbox, ahead of the
/// response, which the outbox writes after them. Waiting here when the client reads
/// slowly is what slows the child down.
async fn forward(messages: mpsc::Receiver<TurnMessage>, ctx: &RequestCtx, session: &str) {
    let lines = EventLines::new(ctx.out.clone(), ASK_EVENT, ctx.id.clone(), session);
    forward_lines(messages, lines).await;
}

/// [`forward`] into `lines`; returns early when the client's output is gone.
async fn forward_lines(mut messages: mpsc::Receiver<TurnMessage>, mut lines: EventLines) {
    while let Some(item) = messages.recv().await {
        lines.add(item);
        while lines.wants_more() {
            match messages.try_recv() {
                Ok(item) => lines.add(item),
                Err(_) => break,
            }
        }
        if lines.send().await.is_err() {
            return;
        }
    }
    // Not waited for: the response follows these lines through the same outbox, so
    // waiting for them to be written would only add a round trip through the writer.
    lines.queue_rest();
}

fn status(params: Params<'_>, daemon: &Daemon) -> MethodResult<StatusResult> {
    parse::<StatusParams>(&params)?;
    Ok(daemon.status())
}

/// Named params into `T`; absent params count as `{}`. Errors name the field.
pub(super) fn parse<T: DeserializeOwned>(params: &Params<'_>) -> MethodResult<T> {
    let raw = params.as_str().unwrap_or("{}");
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let field = e.path().to_string();
        let message = e.inner().to_string();
        // serde appends " at line 1 column N", which means nothing to the caller.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        let error = match field.as_str() {
            // The problem is with the object itself (missing or unknown field, named already).
            "." => RpcError::InvalidParams(message),
            _ => RpcError::InvalidParam { field, message },
        };
        error.to_error_object()
    })
}
