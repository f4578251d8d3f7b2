//! Tool results: the core's answers as MCP `CallToolResult`s.
//!
//! Each result has `structuredContent` (the compact types of [`super::output`], which
//! validate against the tool's `outputSchema`) and text blocks with the same facts, for
//! hosts that read only text. Failures are `isError: true` results, never JSON-RPC errors,
//! so the calling model reads the reason and can react.

use rmcp::model::{CallToolResult, ContentBlock, MetaObject};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::output::{AskReply, EventsPage, StatusReport, WaitReply};
use crate::api::{
    AskResult, CancelResult, EventsResult, SessionsResult, StatusResult, TurnHandle, WaitResult,
};
use crate::error::DaemonError;
use crate::nesting::Nesting;

/// Key of the `_meta` entry that carries the error-table code of a failed call.
pub const ERROR_META_KEY: &str = "claude-coded/error";

/// The answer of a turn: the reply text first, then one line of facts.
/// A turn the child reports as failed is `isError` but keeps its structured content.
pub(super) fn ask(result: &AskResult) -> CallToolResult {
    let reply = AskReply::from_result(result);
    let first = match (&reply.result, &reply.error) {
        (Some(text), _) => text.clone(),
        // `error` is already the one-line reason (the API's own words when it refused); the
        // structured content repeats it without these words, so a host that shows both
        // (Gemini CLI) says "turn failed" once.
        (None, Some(error)) => format!("Claude Code's turn failed: {error}"),
        (None, None) => "Claude Code ended its turn without a reply.".to_string(),
    };
    let content = vec![
        ContentBlock::text(first),
        ContentBlock::text(facts_line(&reply)),
    ];
    let mut rendered = CallToolResult::success(content);
    rendered.structured_content = structured(&reply);
    if !reply.ok {
        rendered.is_error = Some(true);
    }
    rendered
}

/// The answer of an `ask` with `background: true`: its handle, and what to do with it.
pub(super) fn handle(handle: &TurnHandle) -> CallToolResult {
    let reply = AskReply {
        result: None,
        ok: true,
        error: None,
        session_id: None,
        cost_usd: None,
        duration_ms: None,
        num_turns: None,
        permission_denials: Vec::new(),
        turn_id: Some(handle.turn_id.clone()),
        running: Some(true),
        next: Some(format!(
            "Call `wait` with turnId {id} to collect the answer (it returns within its \
             timeoutMs, with the latest step while the agent still works); `cancel` stops \
             the turn.",
            id = handle.turn_id
        )),
    };
    let text = format!(
        "Started in the background in session `{session}`: turnId {id}. {next} Meanwhile \
         you can do other work, or ask other sessions.",
        session = handle.session,
        id = handle.turn_id,
        next = reply.next.as_deref().unwrap_or_default(),
    );
    let mut rendered = CallToolResult::success(vec![ContentBlock::text(text)]);
    rendered.structured_content = structured(&reply);
    rendered
}

/// The answer of `wait`: the turn's reply once it ended, else where it stands.
pub(super) fn waited(waited: &WaitResult) -> CallToolResult {
    let mut reply = WaitReply {
        answer: None,
        running: waited.running,
        turn_id: waited.turn_id.clone(),
        session: waited.session.clone(),
        elapsed_ms: waited.elapsed_ms,
        step: waited.step.clone(),
        messages: waited.messages,
        next: waited.running.then(|| {
            format!(
                "Call `wait` again with turnId {} to keep waiting, or `cancel` to stop it.",
                waited.turn_id
            )
        }),
    };
    let mut rendered = match &waited.result {
        Some(result) => {
            let answered = ask(result);
            reply.answer = Some(AskReply::from_result(result));
            answered
        }
        None => CallToolResult::success(vec![ContentBlock::text(format!(
            "Still running after {elapsed:.1} s ({messages} messages so far){step}. {next}",
            elapsed = waited.elapsed_ms as f64 / 1000.0,
            messages = waited.messages,
            step = waited
                .step
                .as_ref()
                .map_or(String::new(), |step| format!("; latest step: {step}")),
            next = reply.next.as_deref().unwrap_or_default(),
        ))]),
    };
    rendered.structured_content = structured(&reply);
    rendered
}

/// The answer of `cancel`.
pub(super) fn cancelled(cancel: &CancelResult) -> CallToolResult {
    let text = if cancel.cancelled {
        format!(
            "Turn {} is being interrupted; session `{}` stays and takes the next ask.",
            cancel.turn_id, cancel.session
        )
    } else {
        format!(
            "Turn {} had already ended; `wait` collects its answer.",
            cancel.turn_id
        )
    };
    let mut rendered = CallToolResult::success(vec![ContentBlock::text(text)]);
    rendered.structured_content = structured(cancel);
    rendered
}

pub(super) fn status(status: &StatusResult, nesting: Nesting, full: bool) -> CallToolResult {
    let report = StatusReport::from_status(status, nesting, full);
    let mut text = status_text(&report);
    if let Some(full) = report
        .full
        .as_ref()
        .and_then(|f| serde_json::to_string(f).ok())
    {
        text.push('\n');
        text.push_str(&full);
    }
    let mut rendered = CallToolResult::success(vec![ContentBlock::text(text)]);
    rendered.structured_content = structured(&report);
    rendered
}

pub(super) fn sessions(list: &SessionsResult) -> CallToolResult {
    let mut lines = vec![format!(
        "{} sessions, {} running (at most {} at once)",
        list.sessions.len(),
        list.live,
        list.max_sessions
    )];
    for s in &list.sessions {
        let busy = if s.busy { ", running a turn" } else { "" };
        let queue = match s.queue {
            0 => String::new(),
            n => format!(", {n} waiting"),
        };
        lines.push(format!(
            "- {}: {}{busy}{queue}; {} turns, ${:.4}; cwd {}; sessionId {}",
            s.name,
            s.state.as_str(),
            s.turns,
            s.cost_usd,
            s.cwd,
            s.session_id.as_deref().unwrap_or("not yet known"),
        ));
    }
    let mut rendered = CallToolResult::success(vec![ContentBlock::text(lines.join("\n"))]);
    rendered.structured_content = structured(list);
    rendered
}

pub(super) fn events(page: &EventsResult, full: bool) -> CallToolResult {
    let page = EventsPage::from_result(page, full);
    let mut lines = page.events.clone();
    if lines.is_empty() {
        lines.push("no matching events".to_string());
    }
    let more = if page.truncated {
        " (more matching events: call again)"
    } else {
        ""
    };
    lines.push(format!("nextSeq {}{more}", page.next_seq));
    if let Some(full) = page
        .full
        .as_ref()
        .and_then(|f| serde_json::to_string(f).ok())
    {
        lines.push(full);
    }
    let mut rendered = CallToolResult::success(vec![ContentBlock::text(lines.join("\n"))]);
    rendered.structured_content = structured(&page);
    rendered
}

/// A call the core refused or could not complete, with its code from the error table.
///
/// No structured content: it would not match the tool's `outputSchema`, and clients
/// validate structured content even on errors.
pub(super) fn failure(error: &DaemonError) -> CallToolResult {
    let (code, message, data) = error.parts();
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

/// `ok · session s-1 · $0.0123 · 1.2 s · 2 model calls`, then refused tool uses.
fn facts_line(reply: &AskReply) -> String {
    let mut facts = vec![if reply.ok { "ok" } else { "failed" }.to_string()];
    facts.extend(reply.session_id.as_ref().map(|s| format!("session {s}")));
    facts.extend(reply.cost_usd.map(|c| format!("${c}")));
    facts.extend(
        reply
            .duration_ms
            .map(|ms| format!("{:.1} s", ms as f64 / 1000.0)),
    );
    facts.extend(reply.num_turns.map(|n| format!("{n} model calls")));
    let mut line = facts.join(" · ");
    for denial in &reply.permission_denials {
        line.push_str(&format!(
            "\nrefused by the permission mode: {} ({})",
            denial.tool, denial.input
        ));
    }
    line
}

/// The report as a few lines.
fn status_text(report: &StatusReport) -> String {
    let state = serde_json::to_value(report.state).unwrap_or_default();
    let mut lines = vec![format!(
        "agent {} since {}, {} queued, {} restarts",
        state.as_str().unwrap_or("unknown"),
        report.since,
        report.queued,
        report.restarts
    )];
    lines.extend(report.turn.as_ref().map(|t| {
        format!(
            "turn running {} ms of {} ms: {}",
            t.elapsed_ms, t.timeout_ms, t.prompt
        )
    }));
    lines.extend(report.session_id.as_ref().map(|s| format!("session {s}")));
    lines.extend(
        report
            .last_error
            .as_ref()
            .map(|e| format!("last error: {e}")),
    );
    lines.extend(report.stderr_tail.iter().map(|l| format!("stderr: {l}")));
    let t = &report.totals;
    lines.push(format!(
        "asks {}: {} ok, {} failed, {} errors; cost ${}",
        t.asks, t.ok, t.failed, t.errors, t.cost_usd
    ));
    lines.push(report.sessions.line());
    let a = &report.agent;
    lines.push(format!(
        "cwd {}, permission mode {}{}",
        a.cwd,
        a.permission_mode,
        a.model
            .as_ref()
            .map_or(String::new(), |m| format!(", model {m}"))
    ));
    lines.extend(
        report
            .nesting
            .map(|n| format!("nested at depth {} of {} (--max-depth)", n.depth, n.limit)),
    );
    lines.join("\n")
}

/// The value for `structuredContent`: `null` fields left out, as the portable
/// `outputSchema` declares them optional rather than nullable (see `schema.rs`).
fn structured<T: Serialize>(value: &T) -> Option<Value> {
    let mut value = serde_json::to_value(value)
        .inspect_err(|err| tracing::error!(%err, "cannot serialise a tool result"))
        .ok()?;
    drop_nulls(&mut value);
    Some(value)
}

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(object) => {
            object.retain(|_, v| !v.is_null());
            object.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::output::tests::result as answer;
    use crate::supervisor::AskError;

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
        assert_eq!(
            texts[1],
            "ok · session s-1 · $0.0123 · 1.2 s · 2 model calls\n\
             refused by the permission mode: Bash (touch created.txt)"
        );
        assert_ne!(rendered.is_error, Some(true));
        let structured = rendered.structured_content.unwrap();
        assert_eq!(structured["result"], "done");
        assert!(structured.get("raw").is_none());
    }

    #[test]
    fn failed_turn_is_an_error_that_says_why() {
        let rendered = ask(&answer(false, None));
        assert_eq!(rendered.is_error, Some(true));
        assert_eq!(
            texts(&rendered)[0],
            "Claude Code's turn failed: API error 500: boom"
        );
        let structured = rendered.structured_content.unwrap();
        assert_eq!(structured["ok"], false);
        assert_eq!(structured["error"], "API error 500: boom");
    }

    #[test]
    fn a_failed_turn_says_its_reason_once_in_each_form() {
        let mut failed = answer(false, Some(&format!("API Error: 400 {}", "x".repeat(1000))));
        failed.errors.clear();
        failed.api_error_status = Some(400);
        let rendered = ask(&failed);
        let text = &texts(&rendered)[0];
        assert!(
            text.starts_with("Claude Code's turn failed: API error 400: xxx"),
            "{text}"
        );
        assert!(text.len() < 400, "{}", text.len());
        let structured = rendered.structured_content.unwrap();
        assert!(structured.get("result").is_none(), "{structured}");
        let error = structured["error"].as_str().unwrap();
        assert!(!error.contains("turn failed"), "{error}");
        assert!(error.starts_with("API error 400: xxx"), "{error}");
    }

    #[test]
    fn what_to_do_with_a_handle_is_in_the_structured_form_too() {
        let handle = TurnHandle {
            turn_id: "t-7".into(),
            session: "default".into(),
        };
        let rendered = super::handle(&handle);
        let next = rendered.structured_content.clone().unwrap()["next"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(next.contains("`wait` with turnId t-7"), "{next}");
        assert!(texts(&rendered)[0].contains(&next));
        let running = WaitResult {
            running: true,
            ..waiting()
        };
        let rendered = waited(&running);
        let next = rendered.structured_content.unwrap()["next"].clone();
        assert!(next.as_str().unwrap().contains("turnId t-7"), "{next}");
        let done = waited(&WaitResult {
            running: false,
            result: Some(Box::new(answer(true, Some("done")))),
            ..waiting()
        });
        assert!(done.structured_content.unwrap().get("next").is_none());
    }

    fn waiting() -> WaitResult {
        serde_json::from_value(json!({
            "running": true, "turnId": "t-7", "session": "default",
            "elapsedMs": 1500, "messages": 3
        }))
        .unwrap()
    }

    #[test]
    fn structured_content_leaves_out_nulls_everywhere() {
        let mut value = json!({"a": null, "b": {"c": null, "d": 1}, "e": [{"f": null}]});
        drop_nulls(&mut value);
        assert_eq!(value, json!({"b": {"d": 1}, "e": [{}]}));
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
