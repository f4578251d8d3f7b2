//! One `session/prompt`: the turn queued in its session in arrival order, its
//! messages told as `session/update`s, its permission questions asked of the client,
//! and its end as the ACP stop reason, or as an error that says why the turn failed.

use agent_client_protocol_schema::v1::{
    ContentBlock, EmbeddedResourceResource, Error, PromptResponse, StopReason,
};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::elicit;
use super::permission::{self, Choice};
use super::session::{self, Sessions};
use super::{update_line, wire};
use crate::api::{AskParams, AskResult};
use crate::arrivals::Place;
use crate::daemon::{Daemon, Wants};
use crate::outbox::Outbox;
use crate::permissions::{Asked, Decision, ElicitAction, Elicitation, Question};
use crate::plain::client_requests::ClientRequests;
use crate::supervisor::{AskError, Pending, TurnMessage};
use crate::sync::lock;

/// A prompt checked as it was read, with its place in the connection's line and the
/// session's cancel signal from then on, to be queued in its task.
pub(super) struct Starting {
    params: AskParams,
    place: Place,
    cancel: watch::Receiver<u64>,
}

/// A queued turn and the streams of its messages and questions.
pub(super) struct Run {
    pending: Pending,
    messages: mpsc::Receiver<TurnMessage>,
    questions: mpsc::Receiver<Asked>,
    cancel: watch::Receiver<u64>,
}

/// Where a running turn reports (one clone per question it asks).
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) out: Outbox,
    pub(super) client: ClientRequests,
    pub(super) sessions: Sessions,
    pub(super) session: String,
    /// Whether the client shows forms (`elicitation` with `form` in its capabilities).
    pub(super) forms: bool,
}

/// Checks the prompt as it is read (a `session/cancel` read after it cancels it), or
/// says why it cannot run.
pub(super) fn start(
    sessions: &Sessions,
    id: &str,
    prompt: &[ContentBlock],
    place: Place,
) -> Result<Starting, Error> {
    let text = prompt_text(prompt)?;
    let Some((name, mode, model, mut cancel)) = session::with(sessions, id, |s| {
        (
            s.name.clone(),
            s.mode,
            s.model.clone(),
            s.cancel.subscribe(),
        )
    }) else {
        return Err(Error::resource_not_found(None).data(json!({"sessionId": id,
            "reason": "no such session on this connection: session/new, session/load or session/resume it first"})));
    };
    cancel.borrow_and_update();
    let params = AskParams {
        prompt: text,
        session: Some(name),
        permission_mode: mode,
        model,
        partial_messages: true,
        ..AskParams::default()
    };
    Ok(Starting {
        params,
        place,
        cancel,
    })
}

impl Starting {
    /// Queues the turn in its place's turn.
    pub(super) async fn queue(self, daemon: &Daemon) -> Result<Run, Error> {
        let Starting {
            params,
            place,
            cancel,
        } = self;
        let wants = Wants::answer().with_messages().with_questions(true);
        let turn = daemon
            .ask(&place, params, wants, None)
            .await
            .map_err(super::core_error)?;
        let (pending, messages, questions) = turn.into_parts();
        Ok(Run {
            pending,
            messages,
            questions,
            cancel,
        })
    }
}

impl Run {
    /// Runs the turn to its end: updates and questions in the order the child gave
    /// them, then the answer.
    pub(super) async fn finish(self, ctx: &Ctx) -> Result<PromptResponse, Error> {
        let Run {
            mut pending,
            messages,
            questions,
            mut cancel,
        } = self;
        let (ended_tx, ended) = watch::channel(false);
        let answer = async {
            let answer = tokio::select! {
                answer = pending.answer() => answer,
                _ = cancel.changed() => {
                    pending.cancel();
                    pending.answer().await
                }
            };
            // A question still open is moot now (the core denied it): stop asking.
            ended_tx.send_replace(true);
            answer
        };
        let (answer, ()) = tokio::join!(answer, stream(messages, questions, ctx, ended));
        stop_reason(answer)
    }
}

/// The turn's messages as updates and its questions asked of the client, in the order
/// the child gave them (the actor passes a tool use on before the question about it, and
/// messages are taken first), until the turn ends and every question is settled.
async fn stream(
    mut messages: mpsc::Receiver<TurnMessage>,
    mut questions: mpsc::Receiver<Asked>,
    ctx: &Ctx,
    ended: watch::Receiver<bool>,
) {
    let updates =
        session::with(&ctx.sessions, &ctx.session, |s| s.updates.clone()).unwrap_or_default();
    let mut asking = JoinSet::new();
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            message = messages.recv() => match message {
                Some(message) => {
                    let made = lock(&updates).of(&message.message.value());
                    for update in made {
                        // Awaited: a client that does not read holds the turn back,
                        // losing nothing.
                        let _ = ctx.out.push(update_line(&ctx.session, update)).await;
                    }
                }
                None => break,
            },
            asked = questions.recv(), if open => match asked {
                Some(asked) => {
                    asking.spawn(ask(ctx.clone(), asked, ended.clone()));
                }
                None => open = false,
            },
            Some(_) = asking.join_next(), if !asking.is_empty() => {}
        }
    }
    while let Some(asked) = questions.recv().await {
        asking.spawn(ask(ctx.clone(), asked, ended.clone()));
    }
    while asking.join_next().await.is_some() {}
}

/// Asks the client one question (a tool's permission, or each question of an
/// `AskUserQuestion`) and answers the CLI; gives up when the core decided it without
/// the client (the deadline, a cancel).
async fn ask(ctx: Ctx, asked: Asked, mut ended: watch::Receiver<bool>) {
    let Asked {
        question,
        mut reply,
    } = asked;
    let key = permission::rejection_key(&question);
    let rejected =
        session::with(&ctx.sessions, &ctx.session, |s| s.rejected.contains(&key)) == Some(true);
    if rejected && !question.needs_a_person() {
        let message = "The user rejected this for the rest of the session.".to_string();
        let _ = reply.send(Decision::Deny { message });
        return;
    }
    let decision = {
        let decided_elsewhere = async {
            tokio::select! {
                () = reply.closed() => {}
                _ = ended.wait_for(|ended| *ended) => {}
            }
        };
        tokio::pin!(decided_elsewhere);
        let d = &mut decided_elsewhere;
        match (
            &question.elicitation,
            question.is_user_question(),
            ctx.forms,
        ) {
            (Some(asked), ..) => ask_for_server(&ctx, asked, d).await,
            (None, true, true) => ask_user_form(&ctx, &question, d).await,
            (None, true, false) => answer_questions(&ctx, &question, d).await,
            (None, false, _) => decide_tool(&ctx, &question, key, d).await,
        }
    };
    if let Some(decision) = decision {
        let _ = reply.send(decision);
    }
}

/// An MCP server's question: its form, for a client that shows forms; else declined.
async fn ask_for_server(
    ctx: &Ctx,
    asked: &Elicitation,
    decided_elsewhere: &mut (impl Future<Output = ()> + Unpin),
) -> Option<Decision> {
    let declined = Decision::Answered {
        action: ElicitAction::Decline,
        content: None,
    };
    let params = match ctx.forms {
        true => elicit::server_request(&ctx.session, asked),
        false => None,
    };
    let Some(params) = params else {
        return Some(declined);
    };
    let response = form(ctx, params, decided_elsewhere).await?;
    Some(elicit::server_decision(response))
}

/// The agent's questions to the user as one form.
async fn ask_user_form(
    ctx: &Ctx,
    question: &Question,
    decided_elsewhere: &mut (impl Future<Output = ()> + Unpin),
) -> Option<Decision> {
    let Some(params) = elicit::user_request(&ctx.session, question) else {
        return answer_questions(ctx, question, decided_elsewhere).await;
    };
    let response = form(ctx, params, decided_elsewhere).await?;
    Some(elicit::user_decision(question, response))
}

/// One `elicitation/create`; `None` when the question was decided without it.
async fn form(
    ctx: &Ctx,
    params: Value,
    decided_elsewhere: &mut (impl Future<Output = ()> + Unpin),
) -> Option<Result<Value, Value>> {
    let call = ctx.client.call_withdrawable(
        &ctx.out,
        elicit::ELICITATION_CREATE,
        params,
        decided_elsewhere,
        "$/cancel_request",
    );
    call.await
}

async fn decide_tool(
    ctx: &Ctx,
    question: &Question,
    key: String,
    decided_elsewhere: &mut (impl Future<Output = ()> + Unpin),
) -> Option<Decision> {
    let request = permission::tool_request(&ctx.session, question);
    let choice = call(ctx, request, decided_elsewhere).await?;
    let (decision, remember_rejection) = permission::tool_decision(choice);
    if remember_rejection {
        session::with(&ctx.sessions, &ctx.session, |s| s.rejected.insert(key));
    }
    Some(decision)
}

async fn answer_questions(
    ctx: &Ctx,
    question: &Question,
    decided_elsewhere: &mut (impl Future<Output = ()> + Unpin),
) -> Option<Decision> {
    let mut answers = Map::new();
    for (index, asked) in question.user_questions.iter().enumerate() {
        let request = permission::user_question_request(&ctx.session, question, index)?;
        let choice = call(ctx, request, decided_elsewhere).await?;
        if let Some(label) = permission::answer_label(question, index, &choice) {
            answers.insert(asked.question.clone(), Value::String(label));
        }
    }
    Some(match answers.is_empty() {
        true => Decision::Deny {
            message: "The user chose not to answer; continue with your best judgement.".into(),
        },
        false => Decision::Allow {
            remember: false,
            answers,
        },
    })
}

/// One `session/request_permission`; `None` when the question was decided without it
/// (the client is then told with `$/cancel_request`).
async fn call(
    ctx: &Ctx,
    request: agent_client_protocol_schema::v1::RequestPermissionRequest,
    decided_elsewhere: &mut (impl Future<Output = ()> + Unpin),
) -> Option<Choice> {
    let params = serde_json::to_value(request).unwrap_or(Value::Null);
    let call = ctx.client.call_withdrawable(
        &ctx.out,
        "session/request_permission",
        params,
        decided_elsewhere,
        "$/cancel_request",
    );
    call.await.map(permission::choice)
}

/// The turn's end as ACP says it: a stop reason, or an error with the turn's cause.
fn stop_reason(answer: Result<AskResult, AskError>) -> Result<PromptResponse, Error> {
    let result = match answer {
        Ok(result) => result,
        Err(AskError::Cancelled) => return Ok(PromptResponse::new(StopReason::Cancelled)),
        Err(error) => return Err(super::core_error(error.into())),
    };
    let reason = match (result.subtype.as_deref(), result.stop_reason.as_deref()) {
        (Some("error_max_turns"), _) => StopReason::MaxTurnRequests,
        (_, Some("max_tokens")) => StopReason::MaxTokens,
        (_, Some("refusal")) => StopReason::Refusal,
        _ if result.ok => StopReason::EndTurn,
        _ => {
            let data = json!({"subtype": result.subtype, "apiErrorStatus": result.api_error_status,
                              "sessionId": result.session_id});
            return Err(Error::new(-32603, result.failure_reason()).data(data));
        }
    };
    Ok(PromptResponse::new(reason))
}

/// The prompt's blocks as the CLI's user message: text as it is, a linked file as an
/// `@` mention, an embedded text resource inside a tag naming it. Images and audio are
/// not offered (`promptCapabilities`), so they are refused.
fn prompt_text(blocks: &[ContentBlock]) -> Result<String, Error> {
    let mut parts = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text(text) => parts.push(text.text.clone()),
            ContentBlock::ResourceLink(link) => {
                let path = link.uri.strip_prefix("file://").unwrap_or(&link.uri);
                parts.push(format!("@{path}"));
            }
            ContentBlock::Resource(resource) => match &resource.resource {
                EmbeddedResourceResource::TextResourceContents(text) => {
                    parts.push(format!(
                        "<context ref=\"{}\">\n{}\n</context>",
                        text.uri, text.text
                    ));
                }
                _ => return Err(wire::invalid("binary resources are not supported")),
            },
            _ => {
                return Err(wire::invalid(
                    "only text and resources are supported in a prompt",
                ));
            }
        }
    }
    let text = parts.join("\n");
    match text.trim().is_empty() {
        true => Err(wire::invalid("the prompt is empty")),
        false => Ok(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompts_blocks_become_one_message() {
        let blocks: Vec<ContentBlock> = serde_json::from_value(json!([
            {"type": "text", "text": "fix"},
            {"type": "resource_link", "uri": "file:///p/a.rs", "name": "a.rs"},
            {"type": "resource", "resource": {"uri": "file:///p/b.rs", "text": "fn b() {}"}}]))
        .unwrap();
        assert_eq!(
            prompt_text(&blocks).unwrap(),
            "fix\n@/p/a.rs\n<context ref=\"file:///p/b.rs\">\nfn b() {}\n</context>"
        );
        let image: Vec<ContentBlock> =
            serde_json::from_value(json!([{"type": "image", "data": "", "mimeType": "image/png"}]))
                .unwrap();
        assert!(prompt_text(&image).is_err());
        assert!(prompt_text(&[]).is_err());
    }

    #[test]
    fn a_cancelled_turn_stops_cancelled_and_a_failed_one_is_an_error() {
        let cancelled = stop_reason(Err(AskError::Cancelled)).unwrap();
        assert_eq!(cancelled.stop_reason, StopReason::Cancelled);
        let failed = AskResult {
            ok: false,
            api_error_status: Some(500),
            ..serde_json::from_value(
                json!({"ok": false, "isError": true, "usage": {}, "permissionDenials": [],
                "messages": 1, "raw": {}}),
            )
            .unwrap()
        };
        let error = stop_reason(Ok(failed)).unwrap_err();
        assert!(error.message.contains("API error 500"), "{}", error.message);
    }
}
