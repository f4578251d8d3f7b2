//! Questions put to an ACP client as forms (`elicitation/create`), for a client that
//! declared it can show them: an MCP server's own question (the CLI relays its
//! `elicitation`), passed on with the server's form; and the agent's questions to the
//! user (`AskUserQuestion`), one choice field per question. A client without forms gets
//! the agent's questions as `session/request_permission` choices instead, and an MCP
//! server's question is declined.

use agent_client_protocol_schema::v1::CreateElicitationRequest;
use serde_json::{Map, Value, json};

use crate::permissions::{Decision, ElicitAction, Elicitation, Question};

/// The method that asks a form.
pub(super) const ELICITATION_CREATE: &str = "elicitation/create";

/// The `elicitation/create` params for an MCP server's question, if ACP can carry it (a
/// form whose schema ACP accepts; a URL question is not passed on).
pub(super) fn server_request(session: &str, asked: &Elicitation) -> Option<Value> {
    let schema = asked.schema.clone().filter(|_| asked.url.is_none())?;
    let message = format!(
        "{} (an MCP server of Claude Code) asks: {}",
        asked.server, asked.message
    );
    checked(
        json!({ "mode": "form", "sessionId": session, "requestedSchema": schema,
                    "message": message }),
    )
}

/// The `elicitation/create` params for the agent's questions to the user: a choice per
/// question (free text where several may be chosen).
pub(super) fn user_request(session: &str, question: &Question) -> Option<Value> {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (n, q) in question.user_questions.iter().enumerate() {
        let key = field(n);
        let property = match (q.multi_select, q.options.is_empty()) {
            (false, false) => json!({ "type": "string", "title": q.question, "enum": q.options }),
            _ => json!({ "type": "string", "title": q.question,
                         "description": format!("One or more of: {}", q.options.join(", ")) }),
        };
        properties.insert(key.clone(), property);
        required.push(key);
    }
    let schema = json!({ "type": "object", "properties": properties, "required": required });
    let mut params = json!({ "mode": "form", "sessionId": session, "requestedSchema": schema,
                             "message": "Claude Code asks you:" });
    if let Some(id) = &question.tool_use_id {
        params["toolCallId"] = json!(id);
    }
    checked(params)
}

fn field(n: usize) -> String {
    format!("answer{}", n + 1)
}

/// `params` if they are a valid `elicitation/create` request.
fn checked(params: Value) -> Option<Value> {
    match serde_json::from_value::<CreateElicitationRequest>(params.clone()) {
        Ok(_) => Some(params),
        Err(err) => {
            tracing::warn!(%err, "a form ACP cannot carry; not asked");
            None
        }
    }
}

/// The client's answer to an MCP server's question.
pub(super) fn server_decision(response: Result<Value, Value>) -> Decision {
    let (action, content) = action_of(response);
    Decision::Answered {
        content: (action == ElicitAction::Accept).then(|| content.unwrap_or_else(|| json!({}))),
        action,
    }
}

/// The client's answers to the agent's questions.
pub(super) fn user_decision(question: &Question, response: Result<Value, Value>) -> Decision {
    let (action, content) = action_of(response);
    let content = content.unwrap_or_default();
    let answers: Map<String, Value> = question
        .user_questions
        .iter()
        .enumerate()
        .filter_map(|(n, q)| {
            let answer = content.get(field(n))?.as_str()?;
            Some((q.question.clone(), Value::String(answer.to_string())))
        })
        .collect();
    match (action, answers.is_empty()) {
        (ElicitAction::Accept, false) => Decision::Allow {
            remember: false,
            answers,
        },
        _ => Decision::Deny {
            message: "The user chose not to answer; continue with your best judgement.".into(),
        },
    }
}

/// The action and content of an `elicitation/create` answer; an error or an answer that
/// is not understood counts as declined.
fn action_of(response: Result<Value, Value>) -> (ElicitAction, Option<Value>) {
    let Ok(result) = response else {
        return (ElicitAction::Decline, None);
    };
    let action = match result.get("action").and_then(Value::as_str) {
        Some("accept") => ElicitAction::Accept,
        Some("cancel") => ElicitAction::Cancel,
        _ => ElicitAction::Decline,
    };
    (action, result.get("content").cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mcp_servers_form_is_passed_on_and_its_answer_comes_back() {
        let question = Question::from_elicitation(
            "r1",
            &json!({"subtype": "elicitation", "mcp_server_name": "deploy", "message": "Where?",
                    "mode": "form", "requested_schema": {"type": "object", "properties": {
                        "env": {"type": "string", "enum": ["staging", "production"]}},
                        "required": ["env"]}}),
        );
        let asked = question.elicitation.as_ref().unwrap();
        let params = server_request("s1", asked).unwrap();
        assert_eq!(params["sessionId"], "s1");
        assert_eq!(
            params["requestedSchema"]["properties"]["env"]["enum"][1],
            "production"
        );
        assert!(params["message"].as_str().unwrap().starts_with("deploy"));
        let accepted = server_decision(Ok(
            json!({"action": "accept", "content": {"env": "staging"}}),
        ));
        assert_eq!(
            question.response(&accepted),
            json!({"action": "accept", "content": {"env": "staging"}})
        );
        let declined = server_decision(Err(json!({"code": -32603})));
        assert_eq!(question.response(&declined), json!({"action": "decline"}));
    }

    #[test]
    fn the_agents_questions_are_one_choice_each() {
        let question = Question::from_request(
            "r2",
            &json!({"tool_name": "AskUserQuestion", "tool_use_id": "t1", "input": {"questions": [
                {"question": "Colour?", "multiSelect": false,
                 "options": [{"label": "Red"}, {"label": "Blue"}]}]}}),
        );
        let params = user_request("s", &question).unwrap();
        assert_eq!(
            params["requestedSchema"]["properties"]["answer1"]["enum"][1],
            "Blue"
        );
        assert_eq!(params["toolCallId"], "t1");
        let decision = user_decision(
            &question,
            Ok(json!({"action": "accept", "content": {"answer1": "Blue"}})),
        );
        let Decision::Allow { answers, .. } = decision else {
            panic!("{decision:?}")
        };
        assert_eq!(answers["Colour?"], "Blue");
        assert!(matches!(
            user_decision(&question, Ok(json!({"action": "cancel"}))),
            Decision::Deny { .. }
        ));
    }
}
