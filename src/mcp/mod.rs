//! The MCP surface (tools `ask`, `wait`, `cancel`, `status`, `sessions`, `events`), built on rmcp.
//!
//! rmcp speaks the protocol on stdio: the `initialize` handshake for 2024-11-05,
//! 2025-03-26, 2025-06-18 and 2025-11-25 (an unknown offered version is answered with
//! 2025-11-25, never refused), and `server/discover` with per-request `_meta` for
//! 2026-07-28. `server` declares the tools over the same core and `api` types as the
//! plain surface; `progress` turns a running turn into `notifications/progress` (and,
//! opted in, raw events); `logging` streams the event log as `notifications/message`;
//! `render` builds the tool results.
//!
//! rmcp does not read stdio itself: `wire` does, in front of it, so that whatever the
//! client sends, every request gets exactly one answer under its own id (malformed lines
//! answered, duplicate ids refused, stray messages before the session ignored, asks
//! given their place in line as they are read, [`crate::arrivals`]), and stdin EOF ends the session only once those
//! answers are out. Output goes through the shared [`crate::outbox`].
//!
//! Raw child events are opt-in because strict clients reject unknown notification
//! methods: a client that declares [`EVENTS_CAPABILITY`] under `experimental` (or
//! `extensions`) gets every child message of its asks as [`EVENT_METHOD`] with the
//! params of the plain surface's `ask/event`.

mod drain;
mod logging;
pub mod output;
mod permissions;
mod progress;
mod render;
mod roots;
mod rounds;
mod schema;
mod server;
mod tasks;
mod text;
mod wire;

pub(crate) use wire::typed_request;

use std::future::Future;
use std::time::Duration;

use rmcp::service::ServerInitializeError;
use rmcp::{ServerHandler, ServiceExt};
use thiserror::Error;
use tokio::io::{AsyncBufRead, AsyncWrite};

use crate::daemon::Daemon;
use crate::inbox::{Input, spawn_reader};
use crate::outbox::Outbox;

pub use drain::OutputDrain;
pub use progress::EVENT_METHOD;
pub use render::ERROR_META_KEY;
pub use server::McpServer;

/// Why the session ended when the client stopped reading and closed stdin.
const CLIENT_GONE: &str = "the client is gone";

/// On a stop signal, how long tool calls in flight get to answer once the child is gone.
const STOP_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// Client capability (under `experimental` or `extensions`) that opts in to raw events.
pub const EVENTS_CAPABILITY: &str = "claude-coded/events";

/// Errors of this layer: the session could not start or its task failed.
#[derive(Debug, Error)]
pub enum McpError {
    #[error("the MCP session did not start: {0}")]
    Start(Box<ServerInitializeError>),
    #[error("the MCP service task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The tools' schemas as served, for `schemas/mcp/`: file name and schema.
pub fn tool_schemas() -> Vec<(String, serde_json::Value)> {
    let mut tools = McpServer::tool_router().list_all();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    let mut schemas = Vec::new();
    for tool in tools {
        let input = serde_json::Value::Object((*tool.input_schema).clone());
        schemas.push((format!("{}.input.json", tool.name), input));
        if let Some(output) = tool.output_schema {
            let output = serde_json::Value::Object((*output).clone());
            schemas.push((format!("{}.output.json", tool.name), output));
        }
    }
    schemas
}

/// Serves MCP on `input`/`writer` until EOF or `shutdown`, then stops the daemon.
/// `drain` says how to tell that the client has read what `writer` carried.
pub async fn run<R, W>(
    input: Input<R>,
    writer: W,
    drain: OutputDrain,
    daemon: Daemon,
    shutdown: impl Future<Output = &'static str>,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let max_line = daemon.config().max_request_bytes;
    let (out, writer_task) = Outbox::spawn(writer);
    let frames = spawn_reader(input, max_line, out.clone());
    let server = McpServer::new(daemon.clone(), drain);
    let supported = server.supported_protocol_versions().into_owned();
    let transport = wire::WireTransport::new(frames, out.clone(), max_line, supported);
    let outcome = serve(server, transport, &daemon, &out, shutdown).await;
    let reason = match &outcome {
        Ok(reason) => reason,
        Err(_) => "MCP session failed",
    };
    daemon.shutdown(reason).await;
    out.finish(writer_task).await;
    outcome.map(|_| ()).map_err(std::io::Error::other)
}

/// Runs the session; returns why it ended.
async fn serve(
    server: McpServer,
    transport: wire::WireTransport,
    daemon: &Daemon,
    out: &Outbox,
    shutdown: impl Future<Output = &'static str>,
) -> Result<&'static str, McpError> {
    tokio::pin!(shutdown);
    let mut calls = server.calls_in_flight();
    let running = tokio::select! {
        running = server.serve(transport) => match running {
            Ok(running) => running,
            // A client that only probed (`server/discover`) and left is not an error.
            Err(ServerInitializeError::ConnectionClosed(_)) => return Ok("stdin closed"),
            Err(err) => return Err(McpError::Start(Box::new(err))),
        },
        reason = &mut shutdown => return Ok(reason),
        _ = out.gone() => return Ok(CLIENT_GONE),
    };
    let stop = running.cancellation_token();
    let waiting = running.waiting();
    tokio::pin!(waiting);
    let reason = tokio::select! {
        quit = &mut waiting => {
            quit?;
            return Ok("stdin closed");
        }
        reason = &mut shutdown => reason,
        _ = out.gone() => CLIENT_GONE,
    };
    // Stop the child first so asks in flight end with a "stopping" result, let the calls
    // answer, then end the session (rmcp still writes answers already made while it
    // drains; to a client that is gone they fail at once).
    daemon.shutdown(reason).await;
    let answered = calls.wait_for(|n| *n == 0);
    if tokio::time::timeout(STOP_ANSWER_WAIT, answered)
        .await
        .is_err()
    {
        tracing::warn!("tool calls still running at stop; ending the session anyway");
    }
    stop.cancel();
    waiting.await?;
    Ok(reason)
}
