//! A child's stream-json message as a step a person or a model can follow: `turn
//! started (model)`, `assistant: ...`, `tool use: Bash`, `API error 500: Claude Code
//! retries ...`, `result: success`. MCP progress, `claude-coded ask`'s stderr and the
//! `step` of background turns all say a turn's steps with these words.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// Characters of assistant text quoted in a step.
const TEXT_PREVIEW: usize = 80;

/// An `assistant` message's `message` field, borrowed from its line in the one pass that
/// reads every line ([`crate::child::protocol`]): the bulk of a turn's messages are
/// these, so their step is worked out there and not by decoding the line again.
///
/// The shape never makes the pass fail: a `message` or block that is not an object, a
/// `content` that is not a list, a field that is not a string, all read as absent, as
/// [`describe`] reads them in a `Value`. Only JSON's grammar or a repeated key fails it.
#[derive(Deserialize)]
pub(crate) struct Body<'a> {
    #[serde(borrow, default)]
    content: List<Object<Block<'a>>>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
}

impl Body<'_> {
    /// The same words [`describe`] finds in the decoded message, built in one string.
    pub(crate) fn describe(&self) -> Option<String> {
        let mut step = String::new();
        for block in self.content.0.iter().filter_map(|block| block.0.as_ref()) {
            let start = step.len();
            if start > 0 {
                step.push_str("; ");
            }
            if !block.describe_into(&mut step) {
                step.truncate(start);
            }
        }
        (!step.is_empty()).then_some(step)
    }
}

impl Block<'_> {
    /// Appends [`describe_assistant_block`] of this block to `step`; false when the
    /// block says nothing (what it appended is then to be cut off).
    fn describe_into(&self, step: &mut String) -> bool {
        let Some(kind) = raw_str(self.kind) else {
            return false;
        };
        match &*kind {
            "text" => match raw_str(self.text) {
                Some(text) => {
                    step.push_str("assistant: ");
                    push_preview(step, &text);
                }
                None => return false,
            },
            "tool_use" => {
                step.push_str("tool use: ");
                step.push_str(raw_str(self.name).as_deref().unwrap_or("unknown"));
            }
            "thinking" => step.push_str("thinking"),
            _ => return false,
        }
        true
    }
}

/// The string a raw JSON value holds, borrowed when it has no escapes; `None` when it is
/// not a string (or not one a `Value` takes, such as a lone surrogate escape).
fn raw_str(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let json = raw?.get();
    let inner = json.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(json).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// `T` when the value is an object, `None` for any other value.
pub(crate) struct Object<T>(Option<T>);

impl<T> Object<T> {
    pub(crate) fn into_inner(self) -> Option<T> {
        self.0
    }
}

/// The items of a list, none for any other value (or when absent).
struct List<T>(Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Shape(PhantomData::<Object<T>>))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Shape(PhantomData::<List<T>>))
    }
}

/// Reads any JSON value as an [`Object`] or a [`List`]: the one shape it wants is
/// decoded, every other value is skipped whole.
struct Shape<S>(PhantomData<S>);

/// What [`Shape`] makes of an object, of a list, and of anything else.
trait Lenient<'de>: Sized {
    fn empty() -> Self;
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        skip_map(map).map(|()| Self::empty())
    }
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::empty())
    }
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de, T: Deserialize<'de>> Lenient<'de> for Object<T> {
    fn empty() -> Self {
        Object(None)
    }
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(|t| Object(Some(t)))
    }
}

impl<'de, T: Deserialize<'de>> Lenient<'de> for List<T> {
    fn empty() -> Self {
        List(Vec::new())
    }
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(List(items))
    }
}

impl<'de, S: Lenient<'de>> Visitor<'de> for Shape<S> {
    type Value = S;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<S, A::Error> {
        S::from_map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<S, A::Error> {
        S::from_seq(seq)
    }
    fn visit_bool<E>(self, _: bool) -> Result<S, E> {
        Ok(S::empty())
    }
    fn visit_i64<E>(self, _: i64) -> Result<S, E> {
        Ok(S::empty())
    }
    fn visit_u64<E>(self, _: u64) -> Result<S, E> {
        Ok(S::empty())
    }
    fn visit_f64<E>(self, _: f64) -> Result<S, E> {
        Ok(S::empty())
    }
    fn visit_str<E>(self, _: &str) -> Result<S, E> {
        Ok(S::empty())
    }
    fn visit_unit<E>(self) -> Result<S, E> {
        Ok(S::empty())
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

/// The text on one line (runs of whitespace as one space), cut to [`TEXT_PREVIEW`]
/// characters with an ellipsis when there is more.
fn one_line_preview(text: &str) -> String {
    let mut line = String::with_capacity(TEXT_PREVIEW + 4);
    push_preview(&mut line, text);
    line
}

/// Appends [`one_line_preview`] of `text` to `line`, a word at a time, reading no further
/// than the cut: a text of megabytes costs no more than its start.
fn push_preview(line: &mut String, text: &str) {
    let mut chars = 0;
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if chars > 0 {
            if chars == TEXT_PREVIEW {
                line.push('…');
                return;
            }
            line.push(' ');
            chars += 1;
        }
        // The word that starts `rest`, as far as there is room for it.
        let room = TEXT_PREVIEW - chars;
        let mut end = rest.len();
        let mut taken = 0;
        for (at, c) in rest.char_indices() {
            if c.is_whitespace() {
                end = at;
                break;
            }
            if taken == room {
                line.push_str(&rest[..at]);
                line.push('…');
                return;
            }
            taken += 1;
        }
        line.push_str(&rest[..end]);
        chars += taken;
        rest = rest[end..].trim_start();
    }
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

    /// What the preview means, written the plain way: the words joined by one space,
    /// cut at [`TEXT_PREVIEW`] characters with an ellipsis.
    fn preview_by_words(text: &str) -> String {
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        match line.char_indices().nth(TEXT_PREVIEW) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line,
        }
    }

    #[test]
    fn the_preview_is_the_words_on_one_line_cut_at_the_limit_whatever_the_spacing() {
        let word = |n: usize| "é".repeat(n);
        // Cuts that fall on a word, on the space before a word, and just past the end.
        for first in [78, 79, 80, 81] {
            for gap in [" ", " \n\t  ", "\u{3000}"] {
                let text = format!("  {}{gap}{}  ", word(first), word(3));
                assert_eq!(one_line_preview(&text), preview_by_words(&text), "{text:?}");
            }
        }
        assert_eq!(one_line_preview(""), "");
        assert_eq!(one_line_preview(" a \n b "), "a b");
    }

    proptest::proptest! {
        #[test]
        fn the_preview_matches_the_words_joined_and_cut(text in "[ a\n\té\u{3000}]{0,200}") {
            proptest::prop_assert_eq!(one_line_preview(&text), preview_by_words(&text));
        }
    }
}
