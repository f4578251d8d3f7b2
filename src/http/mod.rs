//! HTTP, opt-in with `--listen ADDR:PORT`: the same daemon core as stdio and the Unix
//! socket, served to HTTP clients by the protocol crates' own servers.
//!
//! - `/mcp`: MCP over Streamable HTTP, rmcp's `StreamableHttpService`, serving the same
//!   [`McpServer`] as stdio, one per MCP session.
//! - `/rpc` (and `/`): the plain method table ([`crate::plain::methods`]) over
//!   jsonrpsee's server, HTTP POST and WebSocket on the same path; on WebSocket,
//!   `ask/subscribe` streams one ask's events.
//! - `/healthz`: a small JSON answer ([`HealthResult`]), 200 when an ask can be served.
//!
//! Every request first passes [`guard`] (Origin, Host and the bearer token of
//! [`token`]), before anything is made for it (an MCP session included). [`conn`]
//! bounds the connections, WebSockets and MCP sessions and times out slow and idle
//! connections. Where it listens goes to `listen.json` in the state directory
//! ([`ListenInfo`]), so a client finds a port chosen by the system (port 0).

mod conn;
mod guard;
mod mcp_check;
mod token;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use jsonrpsee::server::{PingConfig, ServerConfig, StopHandle, TowerServiceBuilder};
use jsonrpsee::{Methods, server::ServerHandle};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::Service;

use crate::api::{self, ChildStatus, HealthResult, Level, ListenInfo};
use crate::daemon::Daemon;
use crate::mcp::{McpServer, OutputDrain};
use guard::Policy;

/// `listen.json` in the state directory.
pub(crate) const LISTEN_FILE: &str = "listen.json";
/// After the daemon stopped, how long requests in flight may take to deliver their last
/// answers before the open streams (SSE, WebSocket) are closed.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Errors of this layer: why HTTP cannot be served, or why a request is refused (each
/// with its HTTP status, [`HttpError::status`]).
#[derive(Debug, Clone, Error, PartialEq)]
pub(crate) enum HttpError {
    #[error("cannot listen on {addr} (--listen): {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("{0}")]
    Setup(String),
    #[error("refused: Origin {0} is not a loopback origin (a web page may not reach claude-coded)")]
    ForeignOrigin(String),
    #[error("refused: Host {0} is not a loopback name; claude-coded listens on loopback only")]
    ForeignHost(String),
    #[error("unauthorized: send the listener's token as `Authorization: Bearer <token>`")]
    Unauthorized,
    #[error("bad request: {0}")]
    BadHeader(String),
    #[error("{0}; try again later")]
    TooMany(String),
    #[error("the request's body did not arrive within {0:?}")]
    SlowBody(Duration),
}

impl HttpError {
    /// The status a refused request gets.
    fn status(&self) -> StatusCode {
        match self {
            HttpError::ForeignOrigin(_) | HttpError::ForeignHost(_) => StatusCode::FORBIDDEN,
            HttpError::Unauthorized => StatusCode::UNAUTHORIZED,
            HttpError::BadHeader(_) => StatusCode::BAD_REQUEST,
            HttpError::TooMany(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::SlowBody(_) => StatusCode::REQUEST_TIMEOUT,
            HttpError::Bind { .. } | HttpError::Setup(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = axum::Json(json!({ "error": self.to_string() }));
        let mut response = (self.status(), body).into_response();
        if self == HttpError::Unauthorized {
            let challenge = axum::http::HeaderValue::from_static("Bearer");
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// Binds `addr`; done before the daemon starts, so a port in use fails at once.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|err| HttpError::Bind {
            addr,
            reason: err.to_string(),
        })
}

/// The listener's task; [`HttpServer::closed`] waits for it.
pub(crate) struct HttpServer {
    task: JoinHandle<()>,
    listen_file: Option<PathBuf>,
}

impl HttpServer {
    /// Serves `listener` until the daemon stops. Must be called inside a tokio runtime.
    pub(crate) fn start(daemon: &Daemon, listener: TcpListener) -> Result<HttpServer, HttpError> {
        let local = listener.local_addr().map_err(|err| HttpError::Bind {
            addr: daemon
                .config()
                .listen
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            reason: err.to_string(),
        })?;
        let loopback = local.ip().is_loopback();
        let given = daemon.config().listen_token.as_ref();
        let no_token = daemon.config().listen_no_token;
        let (token, token_file) = token::resolve(given, loopback, no_token, daemon.state_root())?;
        let info = listen_info(local, token.is_some(), token_file);
        announce(daemon, &info, loopback);
        let listen_file = write_listen_file(daemon, &info);
        let policy = Policy { loopback, token };
        let limits = conn::Limits::for_process(daemon.config().max_sessions);
        let (router, closers) = router(daemon, policy, loopback, limits)?;
        daemon.set_listen(info.url, info.token_file);
        let stopping = daemon.stop_begun();
        let serving = conn::serve(listener, router, limits, async move {
            stopping.await;
        });
        let task = tokio::spawn(run(serving, daemon.clone(), closers));
        Ok(HttpServer { task, listen_file })
    }

    /// Waits until the listener is gone: it stops accepting when the daemon begins to
    /// stop, and its open streams close shortly after the daemon stopped.
    pub(crate) async fn closed(self) {
        if let Err(err) = self.task.await {
            tracing::warn!(%err, "the HTTP task failed");
        }
        if let Some(path) = self.listen_file
            && let Err(err) = std::fs::remove_file(&path)
        {
            tracing::warn!(%err, path = %path.display(), "cannot remove listen.json");
        }
    }
}

/// What ends the long-lived streams: rmcp's sessions and jsonrpsee's WebSockets.
struct Closers {
    mcp: rmcp::transport::streamable_http_server::StreamableHttpServerConfig,
    rpc: ServerHandle,
}

/// Serves until the daemon has stopped and the requests in flight answered (within
/// [`CLOSE_GRACE`]), then closes the streams still open.
async fn run(
    serving: impl Future<Output = std::io::Result<()>> + Send + 'static,
    daemon: Daemon,
    closers: Closers,
) {
    let mut serving = tokio::spawn(serving);
    tokio::select! {
        finished = &mut serving => return report(finished),
        () = daemon.stopped() => {}
    }
    if let Ok(finished) = tokio::time::timeout(CLOSE_GRACE, &mut serving).await {
        return report(finished);
    }
    closers.mcp.cancellation_token.cancel();
    let _ = closers.rpc.stop();
    match tokio::time::timeout(CLOSE_GRACE, &mut serving).await {
        Ok(finished) => report(finished),
        Err(_) => {
            tracing::warn!("HTTP clients still connected at exit; closing them");
            serving.abort();
        }
    }
}

fn report(finished: Result<std::io::Result<()>, tokio::task::JoinError>) {
    match finished {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(%err, "serving HTTP failed"),
        Err(err) => tracing::warn!(%err, "the HTTP server task failed"),
    }
}

/// The routes, behind the guard (the last layer added runs first).
fn router(
    daemon: &Daemon,
    policy: Policy,
    loopback: bool,
    limits: conn::Limits,
) -> Result<(Router, Closers), HttpError> {
    let max_body = daemon.config().max_request_bytes;
    let mcp_config = mcp_config(loopback, max_body);
    let for_sessions = daemon.clone();
    let sessions = Arc::new(LocalSessionManager::default());
    // Each MCP session gets its own server over the one daemon, as each stdio client
    // does. Over HTTP the output cannot be looked into, so an ask's response pauses
    // briefly after its last notification (`OutputDrain::Settle`).
    let mcp = StreamableHttpService::new(
        move || Ok(McpServer::new(for_sessions.clone(), OutputDrain::Settle)),
        sessions.clone(),
        mcp_config.clone(),
    );
    let bound = Arc::new(SessionBound {
        sessions,
        in_flight: Arc::default(),
        opening: AtomicUsize::new(0),
        max: conn::MAX_MCP_SESSIONS,
        max_body,
    });
    let mcp = Router::new()
        .route_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(bound, bound_sessions));
    let (rpc, rpc_handle) = plain_service(daemon, limits)?;
    let router = Router::new()
        .merge(mcp)
        .route("/rpc", any(serve_plain))
        .route("/", any(serve_plain))
        .with_state(rpc)
        .route("/healthz", get(healthz).with_state(daemon.clone()))
        .layer(middleware::from_fn_with_state(Arc::new(policy), check));
    let closers = Closers {
        mcp: mcp_config,
        rpc: rpc_handle,
    };
    Ok((router, closers))
}

/// rmcp's own DNS-rebinding checks, set to the same rules as [`guard`] (which has
/// already run): loopback origins only; loopback `Host` names on a loopback address,
/// any `Host` elsewhere (where the token guards instead).
fn mcp_config(loopback: bool, max_body: usize) -> StreamableHttpServerConfig {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_origins([
            "http://127.0.0.1:*",
            "http://localhost:*",
            "http://[::1]:*",
            "https://127.0.0.1:*",
            "https://localhost:*",
            "https://[::1]:*",
        ])
        .with_max_request_body_bytes(max_body);
    if loopback {
        config
    } else {
        config.disable_allowed_hosts()
    }
}

/// The guard in front of every route.
async fn check(State(policy): State<Arc<Policy>>, request: Request, next: Next) -> Response {
    match policy.check(request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            tracing::warn!(path = %request.uri().path(), "{refused}");
            refused.into_response()
        }
    }
}

/// What bounds the MCP sessions: rmcp's session table (which has no bound of its own)
/// and the requests that may be opening one now.
struct SessionBound {
    sessions: Arc<LocalSessionManager>,
    /// The ids of the requests in flight, per session ([`mcp_check`]).
    in_flight: Arc<mcp_check::InFlight>,
    opening: AtomicUsize,
    max: usize,
    max_body: usize,
}

/// In front of `/mcp` (behind the guard): every POST's body must arrive in time and
/// pass [`mcp_check`]; one without `Mcp-Session-Id` may open a session, so it is
/// refused with 503 while the sessions kept and those being opened reach the bound.
async fn bound_sessions(
    State(bound): State<Arc<SessionBound>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let (parts, bytes) = match read_bytes(request, bound.max_body).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let session = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let flight = match mcp_check::check(&bytes, session.as_deref(), &bound.in_flight) {
        Ok(flight) => flight,
        Err(refused) => return refused.into_response(),
    };
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let response = match session {
        Some(_) => next.run(request).await,
        None => open_session(&bound, request, next).await,
    };
    // The id stays in flight until its answer has been sent (the body ends, or the
    // client goes away).
    response.map(|body| {
        axum::body::Body::new(http_body_util::BodyExt::map_frame(body, move |frame| {
            let _in_flight = &flight;
            frame
        }))
    })
}

/// Serves a request that may open an MCP session, or refuses it (503) at the bound.
async fn open_session(bound: &SessionBound, request: Request, next: Next) -> Response {
    let opening = bound.opening.fetch_add(1, Ordering::SeqCst);
    let kept = bound.sessions.sessions.read().await.len();
    let response = match kept + opening >= bound.max {
        true => {
            let refused = HttpError::TooMany(format!(
                "too many MCP sessions (the limit is {}): end one with DELETE, or wait for an idle one to expire",
                bound.max
            ));
            tracing::warn!("{refused}");
            refused.into_response()
        }
        false => next.run(request).await,
    };
    bound.opening.fetch_sub(1, Ordering::SeqCst);
    response
}

/// The request with its body read, within [`conn::BODY_READ_TIMEOUT`] (else 408) and
/// `limit` bytes; a longer body gets the answer stdio gives a line that long: -32005 with
/// its length and the limit (with 413). jsonrpsee's own limit answers -32007, which is
/// our code for a cancelled ask.
async fn read_body(request: Request, limit: usize) -> Result<Request, Response> {
    let (parts, bytes) = read_bytes(request, limit).await?;
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

/// [`read_body`], as the request's head and its body's bytes.
async fn read_bytes(
    request: Request,
    limit: usize,
) -> Result<(axum::http::request::Parts, axum::body::Bytes), Response> {
    let (parts, body) = request.into_parts();
    let reading = axum::body::to_bytes(body, limit.saturating_add(1));
    match tokio::time::timeout(conn::BODY_READ_TIMEOUT, reading).await {
        Err(_) => {
            let slow = HttpError::SlowBody(conn::BODY_READ_TIMEOUT);
            tracing::warn!(path = %parts.uri.path(), "{slow}");
            Err(slow.into_response())
        }
        Ok(Ok(bytes)) if bytes.len() <= limit => Ok((parts, bytes)),
        Ok(_) => {
            let len = parts
                .headers
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
                .unwrap_or(limit.saturating_add(1));
            let error = crate::rpc_error::RpcError::RequestTooLarge { len, limit };
            let body = json!({ "jsonrpc": "2.0", "id": null, "error": error.to_error_object() });
            Err((StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response())
        }
    }
}

/// jsonrpsee's service over the plain method table, built once per request (a
/// WebSocket upgrade is one request, and becomes one connection with its own id).
#[derive(Clone)]
struct PlainService {
    /// For WebSocket connections, bounded by [`conn::MAX_WEBSOCKETS`] and pinged.
    ws_builder: PlainBuilder,
    /// For HTTP POST, bounded by the connections only: jsonrpsee counts each request
    /// as a connection, and idle WebSockets must not use up what POST may have.
    post_builder: PlainBuilder,
    /// The table for WebSocket connections, with `ask/subscribe`.
    methods: Methods,
    /// The table for HTTP POST, whose subscription methods say where they are served.
    post_methods: Methods,
    stop: StopHandle,
    /// `--max-request-bytes`: a longer POST body is refused here, with our code.
    max_request: usize,
}

type PlainBuilder = TowerServiceBuilder<tower::layer::util::Identity, tower::layer::util::Identity>;

fn plain_service(
    daemon: &Daemon,
    limits: conn::Limits,
) -> Result<(PlainService, ServerHandle), HttpError> {
    let unbuilt = |err| HttpError::Setup(format!("cannot build the method table: {err}"));
    let methods = crate::plain::methods::module(daemon.clone()).map_err(unbuilt)?;
    let post_methods = crate::plain::methods::http_module(daemon.clone()).map_err(unbuilt)?;
    let max_request = u32::try_from(daemon.config().max_request_bytes).unwrap_or(u32::MAX);
    let config = || {
        ServerConfig::builder()
            .max_request_body_size(max_request)
            // An ask's answer or an events page is as long as it is; stdio sets no limit either.
            .max_response_body_size(u32::MAX)
    };
    let posts = u32::try_from(limits.connections).unwrap_or(u32::MAX);
    let builder = |config: ServerConfig| {
        jsonrpsee::server::Server::builder()
            .set_config(config)
            .to_service_builder()
    };
    // Pinged every 30 s, a WebSocket whose peer stops answering is closed within 40 s.
    let ws_config = config()
        .max_connections(conn::MAX_WEBSOCKETS)
        .enable_ws_ping(PingConfig::new())
        .build();
    let (stop, handle) = jsonrpsee::server::stop_channel();
    let service = PlainService {
        ws_builder: builder(ws_config),
        post_builder: builder(config().max_connections(posts).build()),
        methods: methods.into(),
        post_methods: post_methods.into(),
        stop,
        max_request: daemon.config().max_request_bytes,
    };
    Ok((service, handle))
}

async fn serve_plain(State(plain): State<PlainService>, request: Request) -> Response {
    let upgrade = jsonrpsee::server::ws::is_upgrade_request(&request);
    let request = match upgrade {
        true => request,
        false => match read_body(request, plain.max_request).await {
            Ok(request) => request,
            Err(refused) => return refused,
        },
    };
    let (builder, methods) = match upgrade {
        true => (plain.ws_builder, plain.methods),
        false => (plain.post_builder, plain.post_methods),
    };
    let mut service = builder.build(methods, plain.stop);
    match service.call(request).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(err) => {
            tracing::warn!(%err, "the plain methods failed to answer over HTTP");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn healthz(State(daemon): State<Daemon>) -> Response {
    let status = daemon.status();
    let health = HealthResult {
        ok: status.daemon.state == crate::api::DaemonState::Running
            && status.child.status != ChildStatus::Failed,
        version: crate::VERSION.to_string(),
        child: status.child.status,
        ready: status.child.ready,
    };
    let code = match health.ok {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, axum::Json(health)).into_response()
}

/// Where to reach `local` from this machine, and what a client must send.
fn listen_info(local: SocketAddr, token_required: bool, token_file: Option<PathBuf>) -> ListenInfo {
    let reachable = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, local.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, local.port()))
        }
        _ => local,
    };
    let url = format!("http://{reachable}");
    ListenInfo {
        address: local.to_string(),
        mcp: format!("{url}/mcp"),
        rpc: format!("{url}/rpc"),
        ws: format!("ws://{reachable}/rpc"),
        url,
        token_required,
        token_file: token_file.map(|p| p.display().to_string()),
        pid: std::process::id(),
    }
}

/// Says where HTTP listens: in the event log, and on stderr (the token file's path,
/// never the token).
fn announce(daemon: &Daemon, info: &ListenInfo, loopback: bool) {
    daemon.event_log().record_detail(
        Level::Info,
        format!("HTTP on {}", info.url),
        &api::HttpListening {
            url: info.url.clone(),
            address: info.address.clone(),
            token_required: info.token_required,
            token_file: info.token_file.clone(),
        },
    );
    match (&info.token_file, info.token_required) {
        (Some(file), _) if loopback => tracing::info!(
            address = %info.address,
            "HTTP listens on loopback; clients send `Authorization: Bearer <token>` with the token in {file}"
        ),
        (Some(file), _) => tracing::warn!(
            address = %info.address,
            "HTTP listens beyond loopback; clients must send `Authorization: Bearer <token>` with the token in {file}"
        ),
        (None, true) => {
            tracing::info!(address = %info.address, "HTTP listens; clients must send the configured token")
        }
        (None, false) => tracing::warn!(
            address = %info.address,
            "HTTP listens on loopback without a token (--listen-no-token): every local user can drive the agent as you"
        ),
    }
}

/// `listen.json`, for clients that look for the port; `None` when it cannot be written.
fn write_listen_file(daemon: &Daemon, info: &ListenInfo) -> Option<PathBuf> {
    match daemon.write_state_json(LISTEN_FILE, info) {
        Ok(path) => Some(path),
        Err(err) => {
            tracing::warn!(%err, "cannot write listen.json; clients must be told the port");
            None
        }
    }
}
