//! What the mock answers to each `POST /v1/messages`: a [`Behavior`], from the test's
//! [`Script`] if it has one and it yields one, else from the prompt's keywords.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::request::RecordedRequest;
use crate::server::lock;

/// Default usage numbers of a reply (the same as in the reference transcripts).
pub const DEFAULT_INPUT_TOKENS: u64 = 10;
pub const DEFAULT_OUTPUT_TOKENS: u64 = 5;

/// What the mock answers to one `POST /v1/messages`.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// Decide from the prompt as if no script were given.
    FromPrompt,
    /// A text reply.
    Text(String),
    /// A text reply with these usage numbers.
    TextWithUsage {
        text: String,
        input_tokens: u64,
        output_tokens: u64,
    },
    /// `chunks` deltas of `slow `. The CLI prints an `assistant` line only
    /// when a content block ends, so the first delta is sent as its own
    /// finished text block (the CLI shows it at once, and an interrupt sent
    /// on seeing it lands mid-stream); the second block starts with one
    /// delta at once too (so an interrupt finds partial text) and sends the
    /// rest `ms` apart: about `(chunks - 2) * ms` in all.
    Slow { ms: u64, chunks: usize },
    /// Text `I'll run a command.` then a tool_use block; stop_reason tool_use.
    ToolUse { name: String, input: Value },
    /// HTTP error with Anthropic's error JSON.
    Error {
        status: u16,
        error_type: String,
        message: String,
    },
    /// Never answer; the connection stays open until the mock is dropped.
    Hang,
    /// Close the connection without any answer.
    Disconnect,
}

impl Behavior {
    /// The `RUN_TOOL` behaviour: a `Bash` tool_use running `command`.
    pub fn run_tool(command: &str) -> Self {
        Behavior::ToolUse {
            name: "Bash".to_string(),
            input: json!({"command": command, "description": "Run a test command"}),
        }
    }

    /// The `WRITE_FILE` behaviour: a `Write` tool_use of `content` to `path` (absolute).
    pub fn write_file(path: &str, content: &str) -> Self {
        Behavior::ToolUse {
            name: "Write".to_string(),
            input: json!({"file_path": path, "content": content}),
        }
    }

    /// The `ASK_USER` behaviour: an `AskUserQuestion` tool_use asking `question` with these
    /// option labels, in the input schema the CLI validates (a short header, a description
    /// per option).
    pub fn ask_user(question: &str, options: &[&str]) -> Self {
        let options: Vec<Value> = options
            .iter()
            .map(|label| json!({"label": label, "description": format!("Choose {label}")}))
            .collect();
        Behavior::ToolUse {
            name: "AskUserQuestion".to_string(),
            input: json!({"questions": [{
                "question": question,
                "header": "Question",
                "options": options,
                "multiSelect": false,
            }]}),
        }
    }

    /// `ERR<status>` as the prompt keyword would give it.
    pub fn error(status: u16) -> Self {
        let error_type = match status {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        Behavior::Error {
            status,
            error_type: error_type.to_string(),
            message: format!("mock {status}"),
        }
    }
}

/// What a script sees for each `POST /v1/messages`.
#[derive(Debug)]
pub struct MessagesCall<'a> {
    /// 1-based count of `/v1/messages` requests served by this mock.
    pub n: usize,
    /// Text of the last user message (see [`last_user_prompt`](crate::last_user_prompt)).
    pub prompt: &'a str,
    pub request: &'a RecordedRequest,
}

type ScriptFn = dyn Fn(&MessagesCall<'_>) -> Option<Behavior> + Send + Sync;

/// Per-test behaviour that takes precedence over prompt parsing.
pub enum Script {
    /// Behaviours used in order, one per `/v1/messages` request; prompt
    /// parsing once the queue is empty.
    Queue(Mutex<VecDeque<Behavior>>),
    /// Called for each `/v1/messages` request; `None` means prompt parsing.
    Func(Box<ScriptFn>),
}

impl Script {
    pub fn queue(items: impl IntoIterator<Item = Behavior>) -> Self {
        Script::Queue(Mutex::new(items.into_iter().collect()))
    }

    pub fn func(f: impl Fn(&MessagesCall<'_>) -> Option<Behavior> + Send + Sync + 'static) -> Self {
        Script::Func(Box::new(f))
    }

    pub(crate) fn next(&self, call: &MessagesCall<'_>) -> Option<Behavior> {
        match self {
            Script::Queue(q) => lock(q).pop_front(),
            Script::Func(f) => f(call),
        }
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Script::Queue(q) => f.debug_tuple("Queue").field(&*lock(q)).finish(),
            Script::Func(_) => f.write_str("Func(..)"),
        }
    }
}

impl From<Vec<Behavior>> for Script {
    fn from(v: Vec<Behavior>) -> Self {
        Script::queue(v)
    }
}

/// Behaviour chosen by the prompt keywords (first word of the prompt).
pub(crate) fn behavior_from_prompt(body: &Value, prompt: &str, n: usize) -> Behavior {
    let trimmed = prompt.trim();
    let mut words = trimmed.split_whitespace();
    let first = words.next().unwrap_or("");
    let tool_result_echo = last_user_has_tool_result(body);
    if tool_result_echo {
        return Behavior::Text(prompt.to_string());
    }
    match first {
        "SLOW" => {
            let mut ms = 500;
            let mut chunks = 20;
            for w in words {
                if let Some(v) = w.strip_prefix("ms=").and_then(|v| v.parse().ok()) {
                    ms = v;
                } else if let Some(v) = w.strip_prefix("chunks=").and_then(|v| v.parse().ok()) {
                    chunks = v;
                }
            }
            Behavior::Slow { ms, chunks }
        }
        "RUN_TOOL" => {
            let command = trimmed["RUN_TOOL".len()..].trim();
            Behavior::run_tool(command)
        }
        "WRITE_FILE" => {
            let rest = trimmed["WRITE_FILE".len()..].trim();
            let (path, content) = rest.split_once(' ').unwrap_or((rest, ""));
            Behavior::write_file(path, content)
        }
        "ASK_USER" => {
            let rest = trimmed["ASK_USER".len()..].trim();
            let (question, options) = rest.split_once('?').unwrap_or((rest, ""));
            let options: Vec<&str> = options.split('|').map(str::trim).collect();
            Behavior::ask_user(&format!("{}?", question.trim()), &options)
        }
        "ERR400" => Behavior::error(400),
        "ERR429" => Behavior::error(429),
        "ERR500" => Behavior::error(500),
        "USAGE" => {
            let nums: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
            Behavior::TextWithUsage {
                text: format!("mock reply #{n} to: {prompt}"),
                input_tokens: nums.first().copied().unwrap_or(DEFAULT_INPUT_TOKENS),
                output_tokens: nums.get(1).copied().unwrap_or(DEFAULT_OUTPUT_TOKENS),
            }
        }
        _ => Behavior::Text(format!("mock reply #{n} to: {prompt}")),
    }
}

fn last_user_has_tool_result(body: &Value) -> bool {
    body.get("messages")
        .and_then(Value::as_array)
        .and_then(|ms| {
            ms.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        })
}
