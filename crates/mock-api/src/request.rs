//! What the mock reads from a request: the recorded request, the prompt its behaviour is
//! chosen by, and the conversation's tool uses and tool results as the host sent them.

use std::time::Duration;

use serde_json::Value;

/// Tool result text is cut to this many characters in the echo reply, so a big
/// tool output does not make the reply huge.
pub const TOOL_RESULT_ECHO_CHARS: usize = 200;

/// One HTTP request as the mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query string, e.g. `/v1/messages`.
    pub path: String,
    /// Query string without `?`, e.g. `Some("beta=true")`.
    pub query: Option<String>,
    /// Header names are lower-cased; order and duplicates are kept.
    pub headers: Vec<(String, String)>,
    /// Body parsed as JSON; `Value::Null` when empty or not JSON.
    pub body: Value,
    /// Raw body length in bytes.
    pub body_len: usize,
    /// Time since the mock started.
    pub at: Duration,
    /// Index of the TCP connection it came on (0-based), to check keep-alive.
    pub connection: usize,
}

impl RecordedRequest {
    /// First header with that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True for `POST /v1/messages` (any query).
    pub fn is_messages(&self) -> bool {
        self.method == "POST" && self.path == "/v1/messages"
    }

    /// Text the behaviour was chosen from (see [`last_user_prompt`]).
    pub fn prompt(&self) -> String {
        last_user_prompt(&self.body)
    }

    /// The prompt the conversation started with (see [`first_user_prompt`]).
    pub fn first_prompt(&self) -> String {
        first_user_prompt(&self.body)
    }

    /// The `tool_result` blocks of the last user message (see [`tool_results`]).
    pub fn tool_results(&self) -> Vec<ToolResult> {
        tool_results(&self.body)
    }
}

/// Text of the last `role: user` message: its string content, or its last
/// text block (the CLI puts `<system-reminder>` blocks before the prompt), or
/// for a `tool_result` block `tool result was (is_error=True|False): <text>`
/// with the text cut to [`TOOL_RESULT_ECHO_CHARS`] characters. Other roles,
/// including a `system` entry in `messages`, are skipped.
pub fn last_user_prompt(body: &Value) -> String {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return String::new();
    };
    let Some(last_user) = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return String::new();
    };
    match last_user.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => {
            let tool_result = blocks
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"));
            if let Some(tr) = tool_result {
                let is_error = tr.get("is_error").and_then(Value::as_bool) == Some(true);
                let text: String = content_text(tr.get("content"))
                    .chars()
                    .take(TOOL_RESULT_ECHO_CHARS)
                    .collect();
                let flag = if is_error { "True" } else { "False" };
                return format!("tool result was (is_error={flag}): {text}");
            }
            blocks
                .iter()
                .rev()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .find_map(|b| b.get("text").and_then(Value::as_str))
                .unwrap_or("")
                .to_string()
        }
        _ => String::new(),
    }
}

/// Text of a tool_result `content`: a string, or its text blocks joined.
pub(crate) fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The text of a user message: its string content, or its last text block (the CLI puts
/// `<system-reminder>` blocks before the prompt).
fn user_text(message: &Value) -> Option<String> {
    match message.get("content") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .rev()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .find_map(|b| b.get("text").and_then(Value::as_str))
            .map(str::to_string),
        _ => None,
    }
}

fn messages_of(body: &Value) -> &[Value] {
    body.get("messages")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The prompt a conversation started with: the text of the first `role: user` message
/// (its last text block). Every request of one CLI session carries it, so it tells two
/// CLIs that share a mock apart (an MCP host and the CLI its server runs).
pub fn first_user_prompt(body: &Value) -> String {
    messages_of(body)
        .iter()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(user_text)
        .unwrap_or_default()
}

/// Names in the request's `tools` list: the tools whose schemas the model was given. A
/// deferred MCP tool is listed only once `ToolSearch` has loaded it (with
/// `defer_loading: true`); before that its name appears only in the text of the messages.
pub fn tool_names(body: &Value) -> Vec<String> {
    body.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// A `tool_use` block the model made, as the conversation history carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    pub id: String,
    pub name: String,
    pub input: Value,
}

/// Every `tool_use` block of the `assistant` messages, in order.
pub fn tool_uses(body: &Value) -> Vec<ToolUse> {
    messages_of(body)
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        .map(|b| ToolUse {
            id: b["id"].as_str().unwrap_or_default().to_string(),
            name: b["name"].as_str().unwrap_or_default().to_string(),
            input: b.get("input").cloned().unwrap_or(Value::Null),
        })
        .collect()
}

/// A `tool_result` block as the host sent it to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub tool_use_id: String,
    /// The tool of the matching `tool_use` in the same request, if it is there.
    pub tool_name: Option<String>,
    pub is_error: bool,
    /// `content` exactly as received: a string, or an array of content blocks.
    pub content: Value,
}

impl ToolResult {
    /// What the model reads: the string content byte for byte, or the text blocks
    /// joined with newlines.
    pub fn text(&self) -> String {
        content_text(Some(&self.content))
    }

    /// Size of [`ToolResult::text`] in bytes (UTF-8).
    pub fn bytes(&self) -> usize {
        self.text().len()
    }
}

/// The `tool_result` blocks of the last `role: user` message, with the tool name taken
/// from the matching `tool_use` earlier in the same request.
pub fn tool_results(body: &Value) -> Vec<ToolResult> {
    let uses = tool_uses(body);
    let Some(last_user) = messages_of(body)
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return Vec::new();
    };
    last_user
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        .map(|b| {
            let id = b["tool_use_id"].as_str().unwrap_or_default().to_string();
            ToolResult {
                tool_name: uses.iter().find(|u| u.id == id).map(|u| u.name.clone()),
                tool_use_id: id,
                is_error: b.get("is_error").and_then(Value::as_bool) == Some(true),
                content: b.get("content").cloned().unwrap_or(Value::Null),
            }
        })
        .collect()
}
