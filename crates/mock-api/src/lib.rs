//! Mock of the Anthropic Messages API for tests (HTTP/1.1 on 127.0.0.1), and beside it of
//! the model APIs of two other MCP hosts (see [`HostModel`]).
//!
//! The server runs on its own thread with its own tokio runtime, so
//! `MockApi::start()` works the same from `#[tokio::test]` (any flavour) and
//! from plain `#[test]` functions, and a test that blocks its own runtime
//! cannot starve the mock. Dropping the `MockApi` stops the server and
//! closes every connection.
//!
//! Behaviour of `POST /v1/messages` is chosen by the script given to
//! `MockApi::start_with` (if any and if it yields a `Behavior`), else by the
//! text of the last user message:
//! - default: text `mock reply #N to: <prompt>`;
//! - `SLOW [ms=500] [chunks=20]`: `chunks` deltas of `slow `; the first ends a
//!   text block at once (so the CLI prints an `assistant` line), the next opens
//!   a second block at once, the rest follow `ms` apart (see `Behavior::Slow`);
//! - `RUN_TOOL <command...>`: text `I'll run a command.` then a `Bash` tool_use;
//! - `WRITE_FILE <absolute path> <content...>`: a `Write` tool_use;
//! - `ASK_USER <question>? <label>|<label>...`: an `AskUserQuestion` tool_use;
//! - `ERR400` / `ERR429` / `ERR500`: that status with Anthropic's error JSON;
//! - `USAGE <in> <out>`: default reply with those usage numbers;
//! - a `tool_result` in the last user message: `tool result was (is_error=..): ..`.
//!
//! Any other path (e.g. `/v1/messages/count_tokens`) gets a 200 JSON answer.
//! Every request is recorded (`MockApi::requests`). Self-test: `tests/selftest.rs` of
//! this crate (`cargo test -p mock-api`).
//!
//! Two CLIs on one mock (the real CLI as an MCP host whose MCP server runs another CLI):
//! [`Script::host`] sends the requests of the conversation whose first user prompt starts
//! with a marker to an [`OuterModel`] (planned tool calls, loading deferred MCP tools
//! through the host's `ToolSearch` first, then a text that quotes the last tool result),
//! and every other request to the inner script. [`tool_results`] and
//! [`MockApi::tool_result_of`] give back the `tool_result` blocks exactly as the host sent
//! them to its model.
//!
//! Hosts that are not Claude Code (Codex CLI on the OpenAI Responses API, Gemini CLI on the
//! Gemini API) get a [`HostModel`] ([`MockApi::start_for_host`]): planned calls of one MCP
//! server's tools, found in the host's own tool list, then a text; [`MockApi::host_outputs`]
//! gives back each tool output as the host gave it to its model.
//!
//! # Layout
//!
//! - `server`: the server thread, its connections and the answer to each request
//!   ([`MockApi`]); `http`: reading requests and writing JSON responses.
//! - `script`: the [`Behavior`]s, the test's [`Script`], the prompt keywords.
//! - `outer`: the host side of two CLIs on one mock ([`OuterModel`]).
//! - `hosts`: the model of a host that is not Claude Code ([`HostModel`]), both its wires.
//! - `request`: what the mock reads from a request ([`RecordedRequest`], [`tool_results`]).
//! - `reply`: a planned reply and its JSON; `sse`: the same streamed as server-sent events.

mod hosts;
mod http;
mod outer;
mod reply;
mod request;
mod script;
mod server;
mod sse;

pub use hosts::{
    HostModel, HostToolCall, HostToolOutput, HostWire, Offered, offered_names, offered_schemas,
    turn_id_in,
};
pub use outer::{OuterModel, TOOL_SEARCH, TURN_ID, ToolCall, tool_search_input};
pub use request::{
    RecordedRequest, TOOL_RESULT_ECHO_CHARS, ToolResult, ToolUse, first_user_prompt,
    last_user_prompt, tool_names, tool_results, tool_uses,
};
pub use script::{Behavior, DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS, MessagesCall, Script};
pub use server::MockApi;
