//! The agent's permission questions, asked of an MCP client as form elicitations.
//!
//! Only a client that declared the `elicitation` capability (form mode) is asked, and
//! only on revisions that allow a server to send requests (up to 2025-11-25); any other
//! gets the policy's fallback at once, explained in the tool result. A tool question is
//! a form with one choice (allow once, allow for this session when the CLI suggested a
//! rule, deny) and an optional message to the agent; an `AskUserQuestion` is a form with
//! one field per question. Declining or dismissing the form denies.

use std::collections::HashSet;
use std::path::Path;

use rmcp::model::{
    ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema, ProtocolVersion,
};
use rmcp::service::{ElicitationMode, RequestContext};
use rmcp::{Peer, RoleServer};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::permissions::{Asked, Decision, ElicitAction, Elicitation, Question, relay_each};

const ALLOW_ONCE: &str = "Allow once";
const ALLOW_SESSION: &str = "Allow for the rest of this session";
const DENY: &str = "Deny";

/// Whether this call's client takes questions as `input_required` rounds: on 2026-07-28,
/// when its request declares form elicitation.
pub(super) fn answers_in_rounds(context: &RequestContext<RoleServer>) -> bool {
    let modern = context
        .protocol_version()
        .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28);
    modern && declares_form(context)
}

/// Whether this call's client declared form elicitation (for the request or its session).
pub(super) fn declares_form(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .and_then(|capabilities| capabilities.elicitation)
        // Neither mode named means form (as rmcp reads it).
        .is_some_and(|e| e.form.is_some() || e.url.is_none())
}

/// Whether this client can be put a turn's questions (a form, mid-call).
pub(super) fn can_ask(peer: &Peer<RoleServer>) -> bool {
    let form = peer
        .supported_elicitation_modes()
        .contains(&ElicitationMode::Form);
    // A 2026-07-28 client may not be sent requests mid-call.
    let allowed = peer
        .peer_info()
        .is_some_and(|info| info.protocol_version < ProtocolVersion::V_2026_07_28);
    form && allowed
}

/// Puts each question of the turn to the client; returns when the turn can ask no more.
pub(super) async fn relay(
    peer: Peer<RoleServer>,
    questions: Option<mpsc::Receiver<Asked>>,
    cwd: &Path,
) {
    let cwd = cwd.display().to_string();
    relay_each(questions, |asked| elicit(peer.clone(), asked, cwd.clone())).await;
}

/// One form and its answer; gives up when the question is decided without it.
async fn elicit(peer: Peer<RoleServer>, asked: Asked, cwd: String) {
    let Asked {
        question,
        mut reply,
    } = asked;
    let params = form_params(&question, &cwd);
    let result = tokio::select! {
        result = peer.create_elicitation(params) => result,
        () = reply.closed() => return,
    };
    let decision = match result {
        Ok(result) => decision_of(&question, result),
        Err(err) => Decision::Deny {
            message: format!("Denied: the client could not be asked ({err})."),
        },
    };
    let _ = reply.send(decision);
}

/// The elicitation request of `question`: the same form whichever way it is carried (a
/// call's elicitation, a task's `input_required`, an MRTR round).
pub(super) fn form_params(question: &Question, cwd: &str) -> ElicitRequestParams {
    let (message, schema) = form(question, cwd);
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema: schema,
    }
}

/// The form's message and schema for `question`.
pub(super) fn form(question: &Question, cwd: &str) -> (String, ElicitationSchema) {
    if question.is_user_question() {
        return user_question_form(question);
    }
    if let Some(asked) = &question.elicitation {
        return elicitation_form(asked);
    }
    let mut message = format!(
        "Claude Code (working in {cwd}) wants to {}.",
        question.summary
    );
    if let Some(reason) = &question.reason {
        message.push_str(&format!("\nWhy: {reason}"));
    }
    if let Some(path) = &question.blocked_path {
        message.push_str(&format!("\nPath: {path}"));
    }
    let mut choices = vec![ALLOW_ONCE];
    if question.session_rule.is_some() {
        choices.push(ALLOW_SESSION);
    }
    choices.push(DENY);
    let schema = json!({
        "type": "object",
        "properties": {
            "decision": { "type": "string", "title": "Decision", "enum": choices },
            "message": { "type": "string", "title": "Message to the agent",
                         "description": "Optional: why, or what to do instead" }
        },
        "required": ["decision"]
    });
    (message, schema_of(schema))
}

/// One field per question of an `AskUserQuestion`: a choice, or text for several.
fn user_question_form(question: &Question) -> (String, ElicitationSchema) {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (n, q) in question.user_questions.iter().enumerate() {
        let key = format!("answer{}", n + 1);
        let field = match (q.multi_select, q.options.is_empty()) {
            (false, false) => json!({ "type": "string", "title": q.question, "enum": q.options }),
            _ => json!({ "type": "string", "title": q.question,
                         "description": format!("One or more of: {}", q.options.join(", ")) }),
        };
        properties.insert(key.clone(), field);
        required.push(key);
    }
    let schema = json!({ "type": "object", "properties": properties, "required": required });
    ("Claude Code asks you:".to_string(), schema_of(schema))
}

/// An MCP server's own form, passed on as it asked for it; a URL question (which has no
/// form) is shown as its message and link, with nothing to fill in.
fn elicitation_form(asked: &Elicitation) -> (String, ElicitationSchema) {
    let mut message = format!(
        "{} (an MCP server of Claude Code) asks: {}",
        asked.server, asked.message
    );
    if let Some(url) = &asked.url {
        message.push_str(&format!("\nOpen: {url}"));
    }
    let schema = asked
        .schema
        .clone()
        .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
    (message, schema_of(schema))
}

fn schema_of(schema: Value) -> ElicitationSchema {
    // The forms above are objects of primitive fields, which always convert; an empty
    // form stands in should rmcp's rules ever tighten.
    serde_json::from_value(schema).unwrap_or_else(|err| {
        tracing::error!(%err, "an elicitation form was refused by rmcp");
        ElicitationSchema::new(Default::default())
    })
}

/// The client's answer as a decision; anything but an accepted allow denies.
pub(super) fn decision_of(question: &Question, result: ElicitResult) -> Decision {
    let content = result.content.unwrap_or_default();
    if question.elicitation.is_some() {
        return answered(result.action, content);
    }
    let text = |key: &str| content.get(key).and_then(Value::as_str).map(str::to_owned);
    match result.action {
        ElicitationAction::Accept if question.is_user_question() => Decision::Allow {
            remember: false,
            answers: user_answers(question, &content),
        },
        ElicitationAction::Accept => match text("decision").as_deref() {
            Some(ALLOW_ONCE) => allow(false),
            Some(ALLOW_SESSION) => allow(true),
            _ => Decision::Deny {
                message: text("message")
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or_else(|| "The user denied this.".to_string()),
            },
        },
        ElicitationAction::Decline => Decision::Deny {
            message: "The user declined.".to_string(),
        },
        // Cancel, and any action a later revision adds.
        _ => Decision::Deny {
            message: "The user dismissed the question without answering.".to_string(),
        },
    }
}

/// An MCP server's question, answered as the client answered it.
fn answered(action: ElicitationAction, content: Value) -> Decision {
    let action = match action {
        ElicitationAction::Accept => ElicitAction::Accept,
        ElicitationAction::Decline => ElicitAction::Decline,
        _ => ElicitAction::Cancel,
    };
    Decision::Answered {
        action,
        content: (action == ElicitAction::Accept).then_some(content),
    }
}

fn allow(remember: bool) -> Decision {
    Decision::Allow {
        remember,
        answers: Map::new(),
    }
}

/// `AskUserQuestion`'s answers: question text to what was chosen.
fn user_answers(question: &Question, content: &Value) -> Map<String, Value> {
    let mut seen = HashSet::new();
    question
        .user_questions
        .iter()
        .enumerate()
        .filter(|(_, q)| seen.insert(q.question.clone()))
        .filter_map(|(n, q)| {
            let answer = content.get(format!("answer{}", n + 1))?.as_str()?;
            Some((q.question.clone(), Value::from(answer)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::Question;

    fn bash() -> Question {
        Question::from_request(
            "r1",
            &json!({"tool_name": "Bash", "input": {"command": "touch x"},
                    "description": "Make x", "blocked_path": "/p/x",
                    "permission_suggestions": [{"type": "addRules", "behavior": "allow",
                        "rules": [{"toolName": "Bash", "ruleContent": "touch x"}]}]}),
        )
    }

    #[test]
    fn a_tool_question_is_a_form_that_names_the_command_the_reason_and_the_place() {
        let (message, schema) = form(&bash(), "/p");
        assert!(message.contains("working in /p"), "{message}");
        assert!(message.contains("run `touch x`") && message.contains("Why: Make x"));
        let schema = serde_json::to_value(schema).unwrap();
        assert_eq!(
            schema["properties"]["decision"]["enum"],
            json!([ALLOW_ONCE, ALLOW_SESSION, DENY])
        );
        assert_eq!(schema["required"], json!(["decision"]));
    }

    #[test]
    fn the_forms_answers_become_decisions() {
        let result = |action, content: Value| ElicitResult::new(action).with_content(content);
        let q = bash();
        let once = decision_of(
            &q,
            result(ElicitationAction::Accept, json!({"decision": ALLOW_ONCE})),
        );
        assert_eq!(once, allow(false));
        let session = decision_of(
            &q,
            result(
                ElicitationAction::Accept,
                json!({"decision": ALLOW_SESSION}),
            ),
        );
        assert_eq!(session, allow(true));
        let deny = decision_of(
            &q,
            result(
                ElicitationAction::Accept,
                json!({"decision": DENY, "message": "use ls"}),
            ),
        );
        assert_eq!(
            deny,
            Decision::Deny {
                message: "use ls".into()
            }
        );
        let declined = decision_of(&q, result(ElicitationAction::Decline, json!({})));
        assert!(matches!(declined, Decision::Deny { .. }));
    }

    #[test]
    fn a_user_question_is_a_form_with_a_field_per_question() {
        let q = Question::from_request(
            "r2",
            &json!({"tool_name": "AskUserQuestion", "input": {"questions": [
                {"question": "Colour?", "options": [{"label": "Red"}, {"label": "Blue"}]},
                {"question": "Toppings?", "multiSelect": true,
                 "options": [{"label": "Ham"}, {"label": "Egg"}]}]}}),
        );
        let (_, schema) = form(&q, "/p");
        let schema = serde_json::to_value(schema).unwrap();
        assert_eq!(
            schema["properties"]["answer1"]["enum"],
            json!(["Red", "Blue"])
        );
        assert_eq!(schema["properties"]["answer2"]["type"], "string");
        let answers = json!({"answer1": "Blue", "answer2": "Ham, Egg"});
        let result = ElicitResult::new(ElicitationAction::Accept).with_content(answers);
        let Decision::Allow { answers, .. } = decision_of(&q, result) else {
            panic!("not allowed");
        };
        assert_eq!(answers["Colour?"], "Blue");
        assert_eq!(answers["Toppings?"], "Ham, Egg");
    }
}
