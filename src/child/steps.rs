//! A child's stream-json message as a step a person or a model can follow: `turn
//! started (model)`, `assistant: ...`, `tool use: Bash`, `API error 500: Claude Code
//! retries ...`, `result: success`. MCP progress, `claude-coded ask`'s stderr and the
//! `step` of background turns all say a turn's steps with these words.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::protocol::ChildMessage;
use crate::text::truncate_chars;

/// Characters of assistant text quoted in a step.
const TEXT_PREVIEW: usize = 80;

/// [`describe`] for a streamed message; decodes only the kinds that can say something.
pub(crate) fn describe_message(message: &ChildMessage) -> Option<String> {
    match (message.kind.as_str(), message.subtype.as_deref()) {
        ("assistant", _) => match serde_json::from_str::<Assistant<'_>>(message.text()) {
            Ok(assistant) => assistant.describe(),
            // Anything the borrowed shape does not take (content that is not a list of
            // blocks, a repeated key) says what the whole decode says.
            Err(_) => describe(&message.value()),
        },
        ("system" | "user" | "result", _) => describe(&message.value()),
        _ => None,
    }
}

/// What an `assistant` message's step is made of, borrowed from its line: the bulk of a
/// turn's messages are these, so the rest of the line is skipped, not built as a `Value`.
#[derive(Deserialize)]
struct Assistant<'a> {
    #[serde(borrow, default)]
    message: Option<AssistantBody<'a>>,
}

#[derive(Deserialize)]
struct AssistantBody<'a> {
    #[serde(borrow, default)]
    content: Option<Vec<Block<'a>>>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

impl Assistant<'_> {
    /// The same words [`describe`] finds in the decoded message.
    fn describe(&self) -> Option<String> {
        let blocks = self.message.as_ref()?.content.as_ref()?;
        let parts: Vec<String> = blocks.iter().filter_map(Block::describe).collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

impl Block<'_> {
    /// [`describe_assistant_block`] of this block.
    fn describe(&self) -> Option<String> {
        match self.kind.as_deref()? {
            "text" => Some(format!(
                "assistant: {}",
                one_line_preview(self.text.as_deref()?)
            )),
            "tool_use" => Some(format!(
                "tool use: {}",
                self.name.as_deref().unwrap_or("unknown")
            )),
            "thinking" => Some("thinking".to_string()),
            _ => None,
        }
    }
}

/// A short human message for a meaningful child message, `None` for the rest
/// (status lines, partial stream events, rate-limit notices, ...). `claude-coded ask`
/// shows the same steps on stderr.
pub(crate) fn describe(message: &Value) -> Option<String> {
    let text = |key: &str| message.get(key).and_then(Value::as_str);
    match (text("type").unwrap_or("unknown"), text("subtype")) {
        ("system", Some("init")) => {
            let model = message
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("unknown model");
            Some(format!("turn started ({model})"))
        }
        ("system", Some(subtype)) => describe_system(subtype, message),
        ("assistant", _) => join_blocks(message, describe_assistant_block),
        ("user", _) => join_blocks(message, describe_user_block),
        ("result", _) => Some(describe_result(message)),
        _ => None,
    }
}

/// A piece of the answer's text as it streams: what a `stream_event` line (printed with
/// `--include-partial-messages`) says of a text block of the agent itself (a sub-agent's,
/// whose `parent_tool_use_id` is set, is not its answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TextPiece {
    /// A content block begins; `text` says whether it is text (others are tool uses,
    /// thinking, ...).
    Start { text: bool },
    /// More of the text block's text.
    Delta(String),
    /// The content block ends.
    Stop,
}

/// The piece of streamed text `message` carries, if it is a `stream_event` of the agent.
pub(crate) fn text_piece(message: &Value) -> Option<TextPiece> {
    if message.get("type").and_then(Value::as_str) != Some("stream_event")
        || !message.get("parent_tool_use_id").is_none_or(Value::is_null)
    {
        return None;
    }
    let event = message.get("event")?;
    match event.get("type").and_then(Value::as_str)? {
        "content_block_start" => Some(TextPiece::Start {
            text: event.pointer("/content_block/type").and_then(Value::as_str) == Some("text"),
        }),
        "content_block_delta" => {
            let delta = event.get("delta")?;
            (delta.get("type").and_then(Value::as_str) == Some("text_delta"))
                .then(|| delta.get("text").and_then(Value::as_str))
                .flatten()
                .map(|text| TextPiece::Delta(text.to_string()))
        }
        "content_block_stop" => Some(TextPiece::Stop),
        _ => None,
    }
}

/// `result: success`, or `result: failed (why)`: the CLI reports an API error as
/// subtype `success` with `is_error: true`, which must not read as a success.
fn describe_result(message: &Value) -> String {
    let text = |key: &str| message.get(key).and_then(Value::as_str);
    let subtype = text("subtype").unwrap_or("unknown");
    let is_error = message.get("is_error").and_then(Value::as_bool) == Some(true);
    if subtype == "success" && !is_error {
        return "result: success".to_string();
    }
    let why = match message.get("api_error_status").and_then(Value::as_u64) {
        Some(status) => format!("API error {status}"),
        None => text("terminal_reason")
            .filter(|reason| *reason != "completed")
            .unwrap_or(subtype)
            .to_string(),
    };
    format!("result: failed ({why})")
}

/// What the CLI says about itself while a turn runs: retries, compaction, denials.
/// `status` lines are noise except when they report compaction.
fn describe_system(subtype: &str, message: &Value) -> Option<String> {
    let text = |key: &str| message.get(key).and_then(Value::as_str);
    let number = |key: &str| message.get(key).and_then(Value::as_u64);
    match subtype {
        "api_retry" => {
            let status = number("error_status").map_or("an API error".to_string(), |code| {
                format!("API error {code}")
            });
            let attempt =
                number("attempt").map_or(String::new(), |a| match number("max_retries") {
                    Some(max) => format!(", attempt {a} of {max}"),
                    None => format!(", attempt {a}"),
                });
            let delay = number("retry_delay_ms").map_or(String::new(), |ms| {
                format!(" in {:.1} s", ms as f64 / 1000.0)
            });
            Some(format!("{status}: Claude Code retries{delay}{attempt}"))
        }
        "compact_boundary" => Some("conversation compacted to fit the context window".to_string()),
        "status" => match text("status")? {
            "compacting" => Some("compacting the conversation".to_string()),
            _ => None,
        },
        "permission_denied" => {
            let tool = text("tool_name").unwrap_or("a tool");
            let why = text("message").map(one_line_preview);
            Some(match why {
                Some(why) => format!("permission denied for {tool}: {why}"),
                None => format!("permission denied for {tool}"),
            })
        }
        // `init` opens every turn; the rest (hooks, tasks, ...) by name.
        "init" => None,
        other => Some(other.replace('_', " ")),
    }
}

fn join_blocks(message: &Value, describe_block: fn(&Value) -> Option<String>) -> Option<String> {
    let blocks = message
        .pointer("/message/content")
        .and_then(Value::as_array)?;
    let parts: Vec<String> = blocks.iter().filter_map(describe_block).collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn describe_assistant_block(block: &Value) -> Option<String> {
    match block.get("type").and_then(Value::as_str)? {
        "text" => {
            let text = block.get("text").and_then(Value::as_str)?;
            Some(format!("assistant: {}", one_line_preview(text)))
        }
        "tool_use" => {
            let name = block
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            Some(format!("tool use: {name}"))
        }
        "thinking" => Some("thinking".to_string()),
        _ => None,
    }
}

fn describe_user_block(block: &Value) -> Option<String> {
    match block.get("type").and_then(Value::as_str)? {
        "tool_result" => {
            let failed = block
                .get("is_error")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Some(
                if failed {
                    "tool result (error)"
                } else {
                    "tool result"
                }
                .to_string(),
            )
        }
        "text" => block
            .get("text")
            .and_then(Value::as_str)
            .map(one_line_preview),
        _ => None,
    }
}

/// The text on one line (runs of whitespace as one space), cut to [`TEXT_PREVIEW`].
fn one_line_preview(text: &str) -> String {
    // Words are joined only until the cut is certain: a text of megabytes costs no more
    // than its start.
    let mut line = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars > TEXT_PREVIEW {
            break;
        }
        if !line.is_empty() {
            line.push(' ');
            chars += 1;
        }
        line.push_str(word);
        chars += word.chars().count();
    }
    truncate_chars(line, TEXT_PREVIEW)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describes_the_meaningful_steps() {
        let init = json!({"type":"system","subtype":"init","model":"claude-opus-5-5"});
        assert_eq!(describe(&init).unwrap(), "turn started (claude-opus-5-5)");
        let text = json!({"type":"assistant","message":{"content":[{"type":"text","text":"hello\n  world"}]}});
        assert_eq!(describe(&text).unwrap(), "assistant: hello world");
        let tool = json!({"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{}}]}});
        assert_eq!(describe(&tool).unwrap(), "tool use: Bash");
        let result =
            json!({"type":"user","message":{"content":[{"type":"tool_result","is_error":true}]}});
        assert_eq!(describe(&result).unwrap(), "tool result (error)");
        let end = json!({"subtype":"success","type":"result"});
        assert_eq!(describe(&end).unwrap(), "result: success");
        let api_error = json!({"type":"result","subtype":"success","is_error":true,
            "api_error_status":400,"terminal_reason":"api_error"});
        assert_eq!(
            describe(&api_error).unwrap(),
            "result: failed (API error 400)"
        );
        let max_turns = json!({"type":"result","subtype":"error_max_turns","is_error":true});
        assert_eq!(
            describe(&max_turns).unwrap(),
            "result: failed (error_max_turns)"
        );
        assert!(describe(&json!({"type":"system","subtype":"status"})).is_none());
        let requesting = json!({"type":"system","subtype":"status","status":"requesting"});
        assert!(describe(&requesting).is_none());
        assert!(describe(&json!({"type":"stream_event"})).is_none());
    }

    #[test]
    fn what_the_cli_says_while_it_waits_is_progress_too() {
        let retry = json!({"type":"system","subtype":"api_retry","attempt":2,"max_retries":10,
            "retry_delay_ms":1234,"error_status":500});
        assert_eq!(
            describe(&retry).unwrap(),
            "API error 500: Claude Code retries in 1.2 s, attempt 2 of 10"
        );
        let bare = json!({"type":"system","subtype":"api_retry"});
        assert_eq!(
            describe(&bare).unwrap(),
            "an API error: Claude Code retries"
        );
        let compact = json!({"type":"system","subtype":"compact_boundary"});
        assert!(describe(&compact).unwrap().contains("compacted"));
        let compacting = json!({"type":"system","subtype":"status","status":"compacting"});
        assert_eq!(
            describe(&compacting).unwrap(),
            "compacting the conversation"
        );
        let denied = json!({"type":"system","subtype":"permission_denied","tool_name":"Bash",
            "message":"touch in '/p/x' needs approval."});
        assert_eq!(
            describe(&denied).unwrap(),
            "permission denied for Bash: touch in '/p/x' needs approval."
        );
        let hook = json!({"type":"system","subtype":"hook_started"});
        assert_eq!(describe(&hook).unwrap(), "hook started");
    }

    #[test]
    fn the_text_of_the_agents_own_blocks_streams_in_pieces() {
        let event =
            |event: Value| json!({"type":"stream_event","event":event,"parent_tool_use_id":null});
        let start = event(json!({"type":"content_block_start","index":0,
            "content_block":{"type":"text","text":""}}));
        assert_eq!(text_piece(&start), Some(TextPiece::Start { text: true }));
        let tool = event(json!({"type":"content_block_start","index":1,
            "content_block":{"type":"tool_use","name":"Bash"}}));
        assert_eq!(text_piece(&tool), Some(TextPiece::Start { text: false }));
        let delta = event(json!({"type":"content_block_delta","index":0,
            "delta":{"type":"text_delta","text":"mock reply"}}));
        assert_eq!(
            text_piece(&delta),
            Some(TextPiece::Delta("mock reply".into()))
        );
        let json_delta = event(json!({"type":"content_block_delta","index":1,
            "delta":{"type":"input_json_delta","partial_json":"{"}}));
        assert_eq!(text_piece(&json_delta), None);
        let stop = event(json!({"type":"content_block_stop","index":0}));
        assert_eq!(text_piece(&stop), Some(TextPiece::Stop));
        let mut nested = delta.clone();
        nested["parent_tool_use_id"] = json!("toolu_1");
        assert_eq!(text_piece(&nested), None);
        assert_eq!(text_piece(&json!({"type":"assistant"})), None);
    }

    #[test]
    fn long_text_is_cut() {
        let long = "x".repeat(500);
        let text = json!({"type":"assistant","message":{"content":[{"type":"text","text":long}]}});
        assert!(describe(&text).unwrap().chars().count() < 100);
    }
}
