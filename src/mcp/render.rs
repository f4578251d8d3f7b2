//! Tool results: the core's answers as MCP `CallToolResult`s.
//!
//! Each result has `structuredContent` (the same `api` type as the plain surface returns,
//! so it validates against the tool's `outputSchema`) and text blocks for models and for
//! clients that ignore structured content. Failures are `isError: true` results, never
//! JSON-RPC errors, so the calling model reads the reason and can react.

use rmcp::model::{CallToolResult, ContentBlock, MetaObject};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::api::{AskResult, EventsResult, StatusResult};
use crate::daemon::DaemonError;
use crate::rpc_error::daemon_error_parts;

/// Key of the `_meta` entry that carries the error-table code of a failed call.
pub const ERROR_META_KEY: &str = "claude-coded/error";

/// The answer of a turn: the reply text first, then the other facts as compact JSON.
/// A turn the child reports as failed is `isError` but keeps its structured content.
pub fn ask(result: &AskResult) -> CallToolResult {
    let mut content = vec![ContentBlock::text(reply_text(result))];
    if let Some(facts) = facts_json(result) {
        content.push(ContentBlock::text(facts));
    }
    let mut rendered = CallToolResult::success(content);
    rendered.structured_content = to_value(result);
    if !result.ok {
        rendered.is_error = Some(true);
    }
    rendered
}

pub fn status(status: &StatusResult) -> CallToolResult {
    let value = to_value(status);
    let text = value
        .as_ref()
        .map(crate::status_text::render)
        .unwrap_or_default();
    let mut rendered = CallToolResult::success(vec![ContentBlock::text(text)]);
    rendered.structured_content = value;
    rendered
}

pub fn events(page: &EventsResult) -> CallToolResult {
    let mut lines: Vec<String> = page
        .events
        .iter()
        .map(|e| {
            format!(
                "#{} {} {} {}: {}",
                e.seq,
                e.created_at,
                e.level.as_str(),
                e.kind,
                e.message
            )
        })
        .collect();
    if lines.is_empty() {
        lines.push("no matching events".to_string());
    }
    let more = if page.truncated {
        " (more matching events: call again)"
    } else {
        ""
    };
    lines.push(format!("nextSeq {}{more}", page.next_seq));
    let mut rendered = CallToolResult::success(vec![ContentBlock::text(lines.join("\n"))]);
    rendered.structured_content = to_value(page);
    rendered
}

/// A call the core refused or could not complete, with its code from the error table.
///
/// No structured content: it would not match the tool's `outputSchema`, and clients
/// validate structured content even on errors.
pub fn failure(error: &DaemonError) -> CallToolResult {
    let (code, message, data) = daemon_error_parts(error);
    let mut rendered = CallToolResult::error(vec![ContentBlock::text(format!(
        "claude-coded error {code}: {message}"
    ))]);
    let mut meta = Map::new();
    meta.insert(
        ERROR_META_KEY.to_string(),
        json!({ "code": code, "message": message, "data": data }),
    );
    rendered.meta = Some(MetaObject(meta));
    rendered
}

/// What a model should read first: the reply, or why there is none.
fn reply_text(result: &AskResult) -> String {
    if let Some(text) = result.result.as_deref().filter(|t| !t.is_empty()) {
        return text.to_string();
    }
    let why = [result.subtype.as_deref(), result.terminal_reason.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!("Claude Code's turn ended without a reply ({why}).");
    for error in &result.errors {
        text.push(' ');
        text.push_str(error);
    }
    text
}

/// The result without the reply and the raw line, which would only repeat the reply.
fn facts_json(result: &AskResult) -> Option<String> {
    let Some(Value::Object(mut facts)) = to_value(result) else {
        return None;
    };
    facts.shift_remove("result");
    facts.shift_remove("raw");
    serde_json::to_string(&facts).ok()
}

fn to_value<T: Serialize>(value: &T) -> Option<Value> {
    serde_json::to_value(value)
        .inspect_err(|err| tracing::error!(%err, "cannot serialise a tool result"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::AskError;

    fn answer(ok: bool, result: Option<&str>) -> AskResult {
        AskResult {
            ok,
            result: result.map(str::to_owned),
            session_id: Some("s".into()),
            cost_usd: Some(0.1),
            session_cost_usd: Some(0.1),
            duration_ms: Some(5),
            duration_api_ms: Some(4),
            num_turns: Some(1),
            is_error: !ok,
            subtype: Some(
                if ok {
                    "success"
                } else {
                    "error_during_execution"
                }
                .into(),
            ),
            terminal_reason: Some(if ok { "completed" } else { "aborted_streaming" }.into()),
            stop_reason: None,
            api_error_status: None,
            errors: if ok {
                vec![]
            } else {
                vec!["interrupted".into()]
            },
            usage: json!({}),
            permission_denials: vec![],
            messages: 3,
            raw: json!({ "result": result }),
        }
    }

    fn texts(result: &CallToolResult) -> Vec<String> {
        result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect()
    }

    #[test]
    fn ask_puts_the_reply_first_and_keeps_structure() {
        let rendered = ask(&answer(true, Some("done")));
        let texts = texts(&rendered);
        assert_eq!(texts[0], "done");
        assert!(!texts[1].contains("\"raw\""));
        assert!(texts[1].contains("\"sessionId\":\"s\""));
        assert_ne!(rendered.is_error, Some(true));
        let structured = rendered.structured_content.unwrap();
        assert_eq!(structured["result"], "done");
    }

    #[test]
    fn failed_turn_is_an_error_that_says_why() {
        let rendered = ask(&answer(false, None));
        assert_eq!(rendered.is_error, Some(true));
        assert!(texts(&rendered)[0].contains("error_during_execution, aborted_streaming"));
        assert!(texts(&rendered)[0].contains("interrupted"));
        assert!(rendered.structured_content.is_some());
    }

    #[test]
    fn core_errors_carry_their_code() {
        let rendered = failure(&DaemonError::from(AskError::Timeout { after_ms: 7 }));
        assert_eq!(rendered.is_error, Some(true));
        assert!(rendered.structured_content.is_none());
        assert!(texts(&rendered)[0].starts_with("claude-coded error -32001:"));
        let meta = rendered.meta.unwrap();
        assert_eq!(meta.0[ERROR_META_KEY]["code"], -32001);
        assert_eq!(meta.0[ERROR_META_KEY]["data"]["kind"], "timeout");
    }
}
