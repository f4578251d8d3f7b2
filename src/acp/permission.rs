//! The CLI's permission questions as ACP `session/request_permission`, and the client's
//! choice as the decision the CLI gets.
//!
//! A tool question offers allow once / allow always / reject once / reject always.
//! "Allow always" adds the CLI's own suggested rule for the rest of that session (as on
//! the other surfaces, never to the user's settings files); "reject always" is kept by
//! us for the ACP session, and the same use is then denied without asking. An
//! `AskUserQuestion` asks each of its questions as a choice of its labels. A question the
//! client does not answer by the deadline, or that a cancel ends, is denied by the core;
//! the client's late answer is then ignored.

use agent_client_protocol_schema::v1::{
    PermissionOption, PermissionOptionKind, RequestPermissionOutcome, RequestPermissionRequest,
    RequestPermissionResponse, ToolCallUpdate,
};
use serde_json::{Map, Value};

use crate::permissions::{Decision, Question};

pub(super) const ALLOW_ONCE: &str = "allow_once";
pub(super) const ALLOW_ALWAYS: &str = "allow_always";
pub(super) const REJECT_ONCE: &str = "reject_once";
pub(super) const REJECT_ALWAYS: &str = "reject_always";

/// What the client chose for one request.
#[derive(Debug, PartialEq)]
pub(super) enum Choice {
    /// One of our option ids.
    Option(String),
    /// The client cancelled the request (its prompt was cancelled).
    Cancelled,
    /// An error response, or an answer we cannot read: why.
    Unreadable(String),
}

/// The client's response as a choice.
pub(super) fn choice(response: Result<Value, Value>) -> Choice {
    let result = match response {
        Ok(result) => result,
        Err(error) => {
            return Choice::Unreadable(format!("the client answered with an error ({error})"));
        }
    };
    match serde_json::from_value::<RequestPermissionResponse>(result) {
        Ok(response) => match response.outcome {
            RequestPermissionOutcome::Selected(selected) => {
                Choice::Option(selected.option_id.0.to_string())
            }
            RequestPermissionOutcome::Cancelled => Choice::Cancelled,
            _ => Choice::Unreadable("an outcome this agent does not know".into()),
        },
        Err(err) => Choice::Unreadable(format!("the answer was not understood ({err})")),
    }
}

/// The request for a tool question.
pub(super) fn tool_request(session_id: &str, question: &Question) -> RequestPermissionRequest {
    let mut input = question.input.clone();
    crate::redact::redact_value(&mut input);
    let fields = super::updates::tool_call_fields(&question.tool_name, &input)
        .title(crate::redact::redact(&question.summary).into_owned());
    let id = question
        .tool_use_id
        .clone()
        .unwrap_or_else(|| question.request_id.clone());
    let mut options = vec![PermissionOption::new(
        ALLOW_ONCE,
        "Allow",
        PermissionOptionKind::AllowOnce,
    )];
    if question.session_rule.is_some() {
        options.push(PermissionOption::new(
            ALLOW_ALWAYS,
            "Always allow in this session",
            PermissionOptionKind::AllowAlways,
        ));
    }
    options.push(PermissionOption::new(
        REJECT_ONCE,
        "Reject",
        PermissionOptionKind::RejectOnce,
    ));
    options.push(PermissionOption::new(
        REJECT_ALWAYS,
        "Always reject in this session",
        PermissionOptionKind::RejectAlways,
    ));
    RequestPermissionRequest::new(
        session_id.to_string(),
        ToolCallUpdate::new(id, fields),
        options,
    )
}

/// The request for question `index` of an `AskUserQuestion`: one option per label.
pub(super) fn user_question_request(
    session_id: &str,
    question: &Question,
    index: usize,
) -> Option<RequestPermissionRequest> {
    let asked = question.user_questions.get(index)?;
    let id = format!(
        "{}-q{index}",
        question
            .tool_use_id
            .as_deref()
            .unwrap_or(&question.request_id)
    );
    let fields = agent_client_protocol_schema::v1::ToolCallUpdateFields::new()
        .title(asked.question.clone())
        .kind(agent_client_protocol_schema::v1::ToolKind::Think);
    let mut options: Vec<PermissionOption> = asked
        .options
        .iter()
        .enumerate()
        .map(|(n, label)| {
            PermissionOption::new(
                format!("answer-{n}"),
                label.clone(),
                PermissionOptionKind::AllowOnce,
            )
        })
        .collect();
    options.push(PermissionOption::new(
        REJECT_ONCE,
        "Skip the question",
        PermissionOptionKind::RejectOnce,
    ));
    Some(RequestPermissionRequest::new(
        session_id.to_string(),
        ToolCallUpdate::new(id, fields),
        options,
    ))
}

/// The decision for a tool question's choice; `remember_rejection` is set for "reject
/// always".
pub(super) fn tool_decision(choice: Choice) -> (Decision, bool) {
    match choice {
        Choice::Option(id) if id == ALLOW_ONCE || id == ALLOW_ALWAYS => (
            Decision::Allow {
                remember: id == ALLOW_ALWAYS,
                answers: Map::new(),
            },
            false,
        ),
        Choice::Option(id) if id == REJECT_ONCE || id == REJECT_ALWAYS => (
            Decision::Deny {
                message: "The user rejected this.".into(),
            },
            id == REJECT_ALWAYS,
        ),
        Choice::Option(id) => (
            Decision::Deny {
                message: format!("Denied: the client chose `{id}`, which was not offered."),
            },
            false,
        ),
        Choice::Cancelled => (
            Decision::Deny {
                message: "The user cancelled the turn.".into(),
            },
            false,
        ),
        Choice::Unreadable(why) => (
            Decision::Deny {
                message: format!("Denied: {why}."),
            },
            false,
        ),
    }
}

/// The label a user-question choice picked, if it picked one.
pub(super) fn answer_label(question: &Question, index: usize, choice: &Choice) -> Option<String> {
    let Choice::Option(id) = choice else {
        return None;
    };
    let n: usize = id.strip_prefix("answer-")?.parse().ok()?;
    question.user_questions.get(index)?.options.get(n).cloned()
}

/// What "reject always" remembers of a question: the tool and the rule the CLI
/// suggested for it (or the tool alone).
pub(super) fn rejection_key(question: &Question) -> String {
    let rule = question
        .session_rule
        .as_ref()
        .and_then(|r| r.pointer("/rules/0/ruleContent"))
        .and_then(Value::as_str);
    match rule {
        Some(rule) => format!("{}({rule})", question.tool_name),
        None => question.tool_name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bash() -> Question {
        Question::from_request(
            "r1",
            &json!({"subtype": "can_use_tool", "tool_name": "Bash", "tool_use_id": "toolu_9",
                    "input": {"command": "touch x"},
                    "permission_suggestions": [{"type": "addRules",
                        "rules": [{"toolName": "Bash", "ruleContent": "touch x"}],
                        "behavior": "allow", "destination": "localSettings"}]}),
        )
    }

    #[test]
    fn a_tool_question_offers_the_four_choices_on_the_tools_call() {
        let request = serde_json::to_value(tool_request("s1", &bash())).unwrap();
        assert_eq!(request["sessionId"], "s1");
        assert_eq!(request["toolCall"]["toolCallId"], "toolu_9");
        assert_eq!(request["toolCall"]["kind"], "execute");
        let kinds: Vec<&str> = request["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["allow_once", "allow_always", "reject_once", "reject_always"]
        );
        assert_eq!(rejection_key(&bash()), "Bash(touch x)");
    }

    #[test]
    fn choices_become_decisions_and_anything_else_denies() {
        let pick = |id: &str| {
            choice(Ok(
                json!({"outcome": {"outcome": "selected", "optionId": id}}),
            ))
        };
        assert_eq!(
            tool_decision(pick(ALLOW_ALWAYS)).0,
            Decision::Allow {
                remember: true,
                answers: Map::new()
            }
        );
        assert!(tool_decision(pick(REJECT_ALWAYS)).1);
        assert!(matches!(
            tool_decision(pick("other")).0,
            Decision::Deny { .. }
        ));
        let cancelled = choice(Ok(json!({"outcome": {"outcome": "cancelled"}})));
        assert_eq!(cancelled, Choice::Cancelled);
        assert!(matches!(
            choice(Err(json!({"code": 1}))),
            Choice::Unreadable(_)
        ));
        assert!(matches!(
            choice(Ok(json!({"nope": 1}))),
            Choice::Unreadable(_)
        ));
    }

    #[test]
    fn a_user_question_is_a_choice_of_its_labels() {
        let question = Question::from_request(
            "r2",
            &json!({"tool_name": "AskUserQuestion", "tool_use_id": "toolu_q", "input": {"questions": [
                {"question": "Which colour?", "multiSelect": false,
                 "options": [{"label": "Red"}, {"label": "Blue"}]}]}}),
        );
        let request =
            serde_json::to_value(user_question_request("s", &question, 0).unwrap()).unwrap();
        assert_eq!(request["toolCall"]["title"], "Which colour?");
        assert_eq!(request["options"][1]["name"], "Blue");
        let picked = Choice::Option("answer-1".into());
        assert_eq!(answer_label(&question, 0, &picked).as_deref(), Some("Blue"));
        assert!(user_question_request("s", &question, 1).is_none());
    }
}
