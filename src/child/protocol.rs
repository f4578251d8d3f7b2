//! The CLI's stream-json lines: what we write and how we read what it prints.
//!
//! Lines are classified by their `type` field, never by key order, and the child's text
//! is kept as it came: new message types and fields appear often and must reach the
//! caller. A turn's messages are the bulk of what the child prints, so for them only the
//! few fields the supervisor reads are decoded (`type`, `subtype`, `session_id`, and an
//! `assistant` message's content blocks for its step), in one pass that also checks the
//! whole line is JSON; the text itself travels on and is
//! spliced into the notification as it is, never rebuilt as a `Value` and serialised
//! again. Lines the supervisor acts on (results, control messages) are decoded whole.
//!
//! The check is JSON's grammar: a message with a lone surrogate escape (`"\ud800"`) or
//! a number beyond `f64` is passed on as the child wrote it, where a full decode would
//! refuse it; [`ChildMessage::value`] is then `Null`.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};

use super::steps::{Body, Object, describe};

/// What one line of the child's stdout is.
#[derive(Debug, PartialEq)]
pub(crate) enum ChildLine {
    /// End of a turn: the line, and the same decoded.
    Result { message: ChildMessage, value: Value },
    /// Answer to one of our control requests.
    ControlResponse {
        request_id: String,
        /// `Err` carries the child's error text.
        outcome: Result<Value, String>,
    },
    /// A request from the child (`can_use_tool`, ...) that must be answered.
    ControlRequest {
        request_id: String,
        subtype: String,
        message: ChildMessage,
    },
    /// Sign of life between messages.
    KeepAlive,
    /// Any other message of a turn (`system`, `assistant`, `user`, `stream_event`, new kinds).
    Message(ChildMessage),
    /// A JSON value that is not an object with a string `type`.
    Untyped(Value),
    /// Not JSON at all (some builds print such lines); kept as lossy text for the record.
    NotJson(String),
}

/// One JSON object the child printed, as it printed it, with the fields we read.
///
/// Only this module makes one, and only from a line that passed a JSON check, so `text`
/// is always one JSON object and may be written out as it is.
#[derive(Debug, Clone)]
pub(crate) struct ChildMessage {
    /// Its `type`.
    pub(crate) kind: String,
    /// Its `subtype`, when that is a string.
    pub(crate) subtype: Option<String>,
    /// The `session_id` of a `system`/`init` message (the others are not read).
    pub(crate) init_session: Option<String>,
    /// The line, without its newline.
    text: String,
    /// Its step ([`ChildMessage::step`]), worked out once: while the line is read for an
    /// `assistant` message, on the first call for the others.
    step: OnceLock<Option<String>>,
}

/// Two messages are the same when the child printed the same; whether the step of
/// either was worked out yet does not count.
impl PartialEq for ChildMessage {
    fn eq(&self, other: &Self) -> bool {
        (&self.kind, &self.subtype, &self.init_session, &self.text)
            == (
                &other.kind,
                &other.subtype,
                &other.init_session,
                &other.text,
            )
    }
}

impl ChildMessage {
    /// The line as the child printed it: one JSON object.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The message decoded, for the few places that read more than its head; `Null`
    /// for the rare text that JSON's grammar allows and a full decode refuses.
    pub(crate) fn value(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The step a person or a model can follow ([`describe`]), worked out once and kept:
    /// the actor, MCP progress and background turns all read it. An `assistant`
    /// message's comes with it from [`parse_line`]'s one pass; the rare others decode
    /// the line when asked.
    pub(crate) fn step(&self) -> Option<&str> {
        self.step.get_or_init(|| describe(&self.value())).as_deref()
    }

    fn new(kind: String, subtype: Option<String>, session: Option<String>, text: String) -> Self {
        let is_init = kind == "system" && subtype.as_deref() == Some("init");
        ChildMessage {
            kind,
            subtype,
            init_session: session.filter(|_| is_init),
            text,
            step: OnceLock::new(),
        }
    }
}

/// The fields read from every line, borrowed from it where they have no escapes.
/// Decoding it checks the whole line (the other fields are skipped, not trusted).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    subtype: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    session_id: Option<Cow<'a, str>>,
    /// An `assistant` message's step is read in the same pass ([`Body`]).
    #[serde(borrow, default)]
    message: Option<Object<Body<'a>>>,
}

/// Classifies one line (without its newline), keeping its bytes.
///
/// The fast path decodes the head only; anything else (a result or control line, a
/// `type` or `subtype` that is not a string, a repeated key, not an object) takes the
/// slow path through a `Value`, which decides as before.
pub(crate) fn parse_line(bytes: impl Into<Vec<u8>>) -> ChildLine {
    let text = match String::from_utf8(bytes.into()) {
        Ok(text) => text,
        Err(err) => {
            return ChildLine::NotJson(String::from_utf8_lossy(err.as_bytes()).into_owned());
        }
    };
    // A struct also deserialises from an array; only an object can be a message.
    if !text.trim_start().starts_with('{') {
        return parse_value(text);
    }
    let (kind, subtype, session, step) = match serde_json::from_str::<Head<'_>>(&text) {
        Ok(Head {
            kind: Some(kind),
            subtype,
            session_id,
            message,
        }) => {
            if matches!(&*kind, "result" | "control_response" | "control_request") {
                return parse_value(text);
            }
            // Only an `init` message's session is read: no copy for the others.
            let session = session_id.filter(|_| kind == "system").map(Cow::into_owned);
            let step = (kind == "assistant")
                .then(|| message.and_then(|m| m.into_inner()?.describe()))
                .map_or_else(OnceLock::new, OnceLock::from);
            (
                kind.into_owned(),
                subtype.map(Cow::into_owned),
                session,
                step,
            )
        }
        _ => return parse_value(text),
    };
    match kind.as_str() {
        "keep_alive" => ChildLine::KeepAlive,
        _ => ChildLine::Message(ChildMessage {
            step,
            ..ChildMessage::new(kind, subtype, session, text)
        }),
    }
}

/// The slow path: the whole line as a `Value`.
fn parse_value(text: String) -> ChildLine {
    let value: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => return ChildLine::NotJson(text),
    };
    let Some(kind) = value.get("type").and_then(Value::as_str).map(str::to_owned) else {
        return ChildLine::Untyped(value);
    };
    let field = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let (subtype, session) = (field("subtype"), field("session_id"));
    match kind.as_str() {
        "control_response" => parse_control_response(value),
        "control_request" => {
            let message = ChildMessage::new(kind, subtype, session, text);
            parse_control_request(value, message)
        }
        "keep_alive" => ChildLine::KeepAlive,
        "result" => ChildLine::Result {
            message: ChildMessage::new(kind, subtype, session, text),
            value,
        },
        _ => ChildLine::Message(ChildMessage::new(kind, subtype, session, text)),
    }
}

fn parse_control_response(value: Value) -> ChildLine {
    let response = value.get("response").cloned().unwrap_or(Value::Null);
    let request_id = str_field(&response, "request_id");
    let outcome = match response.get("subtype").and_then(Value::as_str) {
        Some("success") => Ok(response.get("response").cloned().unwrap_or(Value::Null)),
        _ => Err(response
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("control request failed")
            .to_string()),
    };
    match request_id {
        Some(request_id) => ChildLine::ControlResponse {
            request_id,
            outcome,
        },
        None => ChildLine::Untyped(value),
    }
}

fn parse_control_request(value: Value, message: ChildMessage) -> ChildLine {
    let request_id = str_field(&value, "request_id");
    let subtype = value
        .get("request")
        .and_then(|r| str_field(r, "subtype"))
        .unwrap_or_default();
    match request_id {
        Some(request_id) => ChildLine::ControlRequest {
            request_id,
            subtype,
            message,
        },
        None => ChildLine::Untyped(value),
    }
}

fn str_field(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A user turn, as one stdin line (with its newline).
pub(crate) fn user_message(prompt: &str) -> String {
    line(&json!({
        "type": "user",
        "message": { "role": "user", "content": prompt },
        "parent_tool_use_id": null,
        "session_id": null,
    }))
}

/// A control request from us, as one stdin line.
pub(crate) fn control_request(request_id: &str, subtype: &str) -> String {
    line(&json!({
        "type": "control_request",
        "request_id": request_id,
        "request": { "subtype": subtype },
    }))
}

/// A control request from us with fields beside its subtype (`set_model`, ...).
pub(crate) fn control_request_with(request_id: &str, subtype: &str, fields: Value) -> String {
    let mut request = json!({ "subtype": subtype });
    if let (Value::Object(request), Value::Object(fields)) = (&mut request, fields) {
        request.extend(fields);
    }
    line(&json!({
        "type": "control_request",
        "request_id": request_id,
        "request": request,
    }))
}

/// A success answer to a control request from the child, as one stdin line.
pub(crate) fn control_success(request_id: &str, response: Value) -> String {
    line(&json!({
        "type": "control_response",
        "response": { "subtype": "success", "request_id": request_id, "response": response },
    }))
}

/// An error answer to a control request from the child, as one stdin line.
pub(crate) fn control_error(request_id: &str, error: &str) -> String {
    line(&json!({
        "type": "control_response",
        "response": { "subtype": "error", "request_id": request_id, "error": error },
    }))
}

fn line(value: &Value) -> String {
    let mut text = value.to_string();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_equals_the_same_line_whether_or_not_its_step_was_worked_out() {
        let line = br#"{"type":"system","subtype":"api_retry","attempt":1}"#;
        let (ChildLine::Message(asked), ChildLine::Message(fresh)) =
            (parse_line(&line[..]), parse_line(&line[..]))
        else {
            panic!("a system line is a message");
        };
        assert_eq!(
            asked.step(),
            Some("an API error: Claude Code retries, attempt 1")
        );
        assert_eq!(asked, fresh);
    }

    #[test]
    fn classifies_by_type_not_key_order() {
        let result = br#"{"subtype":"success","is_error":false,"type":"result"}"#;
        assert!(matches!(parse_line(result), ChildLine::Result { .. }));
        let init = br#"{"type":"system","subtype":"init","session_id":"s"}"#;
        assert!(matches!(parse_line(init), ChildLine::Message(_)));
        assert!(matches!(
            parse_line(br#"{"type":"keep_alive"}"#),
            ChildLine::KeepAlive
        ));
        assert!(matches!(parse_line(b"[1,2]"), ChildLine::Untyped(_)));
        assert!(matches!(
            parse_line(br#"{"type":5}"#),
            ChildLine::Untyped(_)
        ));
        assert!(matches!(
            parse_line(b"\xff\xfe not json"),
            ChildLine::NotJson(_)
        ));
    }

    #[test]
    fn control_responses_carry_outcome() {
        let ok = br#"{"type":"control_response","response":{"subtype":"success","request_id":"r1","response":{"still_queued":[]}}}"#;
        match parse_line(ok) {
            ChildLine::ControlResponse {
                request_id,
                outcome,
            } => {
                assert_eq!(request_id, "r1");
                assert_eq!(outcome, Ok(json!({"still_queued": []})));
            }
            other => panic!("{other:?}"),
        }
        let err = br#"{"type":"control_response","response":{"subtype":"error","request_id":"r2","error":"nope"}}"#;
        assert!(matches!(
            parse_line(err),
            ChildLine::ControlResponse { outcome: Err(e), .. } if e == "nope"
        ));
    }

    #[test]
    fn control_requests_from_the_child() {
        let req = br#"{"type":"control_request","request_id":"x","request":{"subtype":"can_use_tool","tool_name":"Bash"}}"#;
        assert!(matches!(
            parse_line(req),
            ChildLine::ControlRequest { subtype, .. } if subtype == "can_use_tool"
        ));
    }

    #[test]
    fn written_lines_are_single_json_lines() {
        let line = user_message("multi\nline \"quoted\"");
        assert_eq!(line.matches('\n').count(), 1);
        let value: Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(value["message"]["content"], "multi\nline \"quoted\"");
        assert_eq!(value["type"], "user");
    }
}

/// Properties over arbitrary child output: nothing the child prints can panic the parser,
/// and JSON objects are classified by their `type` alone, whatever else they hold.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Map;
    use test_support::arb_json::json;

    /// A `type` the parser treats specially, or any other string.
    fn kind() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("result".to_string()),
            Just("control_response".to_string()),
            Just("control_request".to_string()),
            Just("keep_alive".to_string()),
            Just("assistant".to_string()),
            ".{0,16}",
        ]
    }

    /// An assistant message's `message` field: mostly content blocks of the kinds that
    /// say something, with fields of the wrong type among them, and any value at all.
    fn assistant_body() -> impl Strategy<Value = Value> {
        let text = prop_oneof![
            ".{0,120}".prop_map(Value::from),
            "[ a\n\t\\\"é]{0,100}".prop_map(Value::from),
            json(),
        ];
        let kind = prop_oneof![
            Just(Value::from("text")),
            Just(Value::from("tool_use")),
            Just(Value::from("thinking")),
            json(),
        ];
        let block = prop_oneof![
            4 => (kind, text.clone(), text).prop_map(|(kind, text, name)| {
                serde_json::json!({"type": kind, "text": text, "name": name})
            }),
            1 => json(),
        ];
        prop_oneof![
            4 => prop::collection::vec(block, 0..4)
                .prop_map(|content| serde_json::json!({"role": "assistant", "content": content})),
            1 => json(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_bytes_are_classified_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let is_json = serde_json::from_slice::<Value>(&bytes).is_ok();
            match parse_line(bytes.clone()) {
                ChildLine::NotJson(text) => {
                    prop_assert!(!is_json);
                    prop_assert_eq!(text, String::from_utf8_lossy(&bytes).into_owned());
                }
                _ => prop_assert!(is_json),
            }
        }

        #[test]
        fn objects_are_classified_by_their_string_type_wherever_it_is(
            fields in prop::collection::vec(("[a-z_]{1,8}", json()), 0..6),
            at in any::<prop::sample::Index>(),
            kind in kind(),
        ) {
            // "type" at any position among the other keys: key order must not matter.
            let mut pairs: Vec<(String, Value)> =
                fields.into_iter().filter(|(k, _)| k != "type").collect();
            pairs.insert(at.index(pairs.len() + 1), ("type".into(), Value::from(kind.clone())));
            let object = Value::Object(pairs.into_iter().collect::<Map<_, _>>());
            // What the child's bytes parse to (floats may not round-trip bit for bit).
            let line = object.to_string();
            let parsed: Value = serde_json::from_str(&line).unwrap();
            let has_id = |v: &Value| v.get("request_id").is_some_and(Value::is_string);
            let got = parse_line(line.as_bytes());
            match kind.as_str() {
                "result" => {
                    let ChildLine::Result { message, value } = got else {
                        return Err(TestCaseError::fail(format!("not a result: {got:?}")));
                    };
                    prop_assert_eq!(value, parsed);
                    prop_assert_eq!(message.text(), line.as_str());
                }
                "keep_alive" => prop_assert_eq!(got, ChildLine::KeepAlive),
                "control_response" if has_id(&parsed["response"]) => {
                    let is_response = matches!(got, ChildLine::ControlResponse { .. });
                    prop_assert!(is_response);
                }
                "control_request" if has_id(&parsed) => {
                    let is_request = matches!(got, ChildLine::ControlRequest { .. });
                    prop_assert!(is_request);
                }
                // A control line without its request id cannot be answered: not a message.
                "control_response" | "control_request" => {
                    prop_assert_eq!(got, ChildLine::Untyped(parsed))
                }
                _ => {
                    let ChildLine::Message(message) = got else {
                        return Err(TestCaseError::fail(format!("not a message: {got:?}")));
                    };
                    prop_assert_eq!(&message.kind, &kind);
                    prop_assert_eq!(message.subtype.as_deref(), parsed["subtype"].as_str());
                    prop_assert_eq!(message.value(), parsed.clone());
                    prop_assert_eq!(message.step().map(str::to_owned), describe(&parsed));
                    // The text goes on as the child printed it.
                    prop_assert_eq!(message.text(), line.as_str());
                }
            }
        }

        #[test]
        fn an_assistant_messages_step_from_the_one_pass_is_what_the_whole_decode_says(
            message in assistant_body(),
            extra in json(),
        ) {
            let line = serde_json::json!({"type": "assistant", "message": message, "x": extra})
                .to_string();
            let parsed: Value = serde_json::from_str(&line).unwrap();
            let ChildLine::Message(got) = parse_line(line.as_bytes()) else {
                return Err(TestCaseError::fail("an assistant line is a message"));
            };
            prop_assert!(got.step.get().is_some(), "the step comes with the line");
            prop_assert_eq!(got.step().map(str::to_owned), describe(&parsed));
        }

        #[test]
        fn values_without_a_string_type_are_untyped(value in json()) {
            let line = value.to_string();
            let parsed: Value = serde_json::from_str(&line).unwrap();
            prop_assume!(!parsed.get("type").is_some_and(Value::is_string));
            prop_assert_eq!(parse_line(line.as_bytes()), ChildLine::Untyped(parsed));
        }

        #[test]
        fn any_prompt_is_one_line_that_carries_it_intact(prompt in any::<String>()) {
            let line = user_message(&prompt);
            prop_assert!(line.ends_with('\n'));
            prop_assert_eq!(line.matches('\n').count(), 1);
            let value: Value = serde_json::from_str(line.trim_end()).unwrap();
            prop_assert_eq!(&value["message"]["content"], &Value::from(prompt));
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(matches!(parse_line(deep.as_bytes()), ChildLine::NotJson(_)));
        let objects = r#"{"type":"x","a":"#.repeat(100_000);
        assert!(matches!(
            parse_line(objects.as_bytes()),
            ChildLine::NotJson(_)
        ));
    }
}
