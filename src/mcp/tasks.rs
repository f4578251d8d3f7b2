//! `ask` as an MCP task (the tasks extension, SEP-2663, `io.modelcontextprotocol/tasks`).
//!
//! A client that declares the extension gets its `ask` back at once as a task (rmcp's
//! [`TaskManager`] keeps it): `tasks/get` reports `working` with the turn's latest step
//! as the status message (the words of progress), then `completed` with the result an
//! `ask` call would have answered (a failed turn, a timeout or a crash included, as
//! `isError` results, as for a call); `tasks/cancel` interrupts the turn (the session stays)
//! and the task ends `cancelled`. A task is kept for `--result-ttl-ms`: one still running
//! then is failed and its turn interrupted, and a finished one is dropped that long after
//! it ended. A permission question of a task's turn, for a client that declared form
//! elicitation, is the task's `input_required` (the same form as a call's, keys
//! `permission1`, `permission2`, ...), answered with `tasks/update`; other clients' get
//! `--permission-decider`'s answer. The task store is the process's, so a task made through
//! one MCP session (or HTTP request) can be polled through another.
//!
//! rmcp's task machinery runs a task live; its end is kept in the daemon's store of
//! detached turns too, under the task id (the same store as plain handles, in
//! `results.json`), so `tasks/get` answers for a task that ended before claude-coded
//! restarted, or that was running then (it ended with the stop's error), until
//! `--result-ttl-ms` after its end ([`kept`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use std::time::{Duration, UNIX_EPOCH};

use rmcp::model::{
    CallToolResponse, CreateTaskResult, DetailedTask, ElicitRequest, ElicitResult, InputRequest,
    Task, TaskPayload, TaskStatus,
};
use rmcp::task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions};
use tokio::sync::mpsc;

use super::permissions::{decision_of, form_params};
use super::render;
use crate::api::AskParams;
use crate::arrivals::Place;
use crate::background::Adopted;
use crate::daemon::{Daemon, Wants};
use crate::error::DaemonError;
use crate::permissions::{Asked, Decision, relay_each};
use crate::supervisor::{AskError, Pending, TurnMessage};

/// How often a client should poll `tasks/get`, in ms.
const POLL_INTERVAL_MS: u64 = 1_000;

/// The process's task store.
pub(super) fn store() -> &'static TaskManager {
    static TASKS: OnceLock<TaskManager> = OnceLock::new();
    TASKS.get_or_init(TaskManager::new)
}

/// Queues the ask (in arrival order) and answers with its task; a refused ask answers
/// at once, as a call would.
pub(super) async fn ask_as_task(
    daemon: &Daemon,
    params: AskParams,
    place: &Place,
    elicits: bool,
) -> CallToolResponse {
    let session = params
        .session
        .clone()
        .unwrap_or_else(|| crate::supervisor::DEFAULT_SESSION.to_string());
    let wants = Wants::answer().with_messages().with_questions(elicits);
    let (pending, messages, questions) = match daemon.ask(place, params, wants, None).await {
        Ok(turn) => {
            let (pending, messages, questions) = turn.into_parts();
            (pending, messages, elicits.then_some(questions))
        }
        Err(err) => return CallToolResponse::Complete(render::failure(&err)),
    };
    let options = TaskOptions::new()
        .with_ttl_ms(daemon.config().result_ttl_ms)
        .with_poll_interval_ms(POLL_INTERVAL_MS)
        .with_status_message("queued");
    let cwd = daemon.config().cwd.display().to_string();
    let daemon = daemon.clone();
    let task = store().spawn(options, move |context| {
        let adopted = daemon.adopt_task(context.task_id(), &session);
        tokio::spawn(relay(context.clone(), questions, cwd));
        Box::pin(run(context, pending, messages, adopted))
    });
    CallToolResponse::Task(CreateTaskResult::new(task))
}

/// The task's work: follows the turn's steps until its answer, or a cancel.
async fn run(
    context: TaskContext,
    pending: Pending,
    messages: mpsc::Receiver<TurnMessage>,
    adopted: Adopted,
) -> Result<rmcp::model::CallToolResult, TaskExit> {
    // Ends when the turn drops its sink (it ended, or was interrupted).
    tokio::spawn(follow_steps(context.clone(), messages));
    let answer = tokio::select! {
        answer = pending.wait() => answer,
        // Dropping the ask interrupts the turn; its session stays.
        () = context.cancelled() => {
            adopted.end(Err(AskError::Cancelled));
            return Err(TaskExit::Cancelled);
        }
    };
    adopted.end(answer.clone());
    Ok(match answer {
        Ok(result) => render::ask(&result),
        Err(err) => render::failure(&DaemonError::from(err)),
    })
}

/// A task rmcp no longer knows whose end the store of detached turns kept (it ended
/// before a restart, or was running then): completed with what a call would have
/// answered, as a live task is.
pub(super) fn kept(daemon: &Daemon, task_id: &str) -> Option<DetailedTask> {
    let (outcome, times) = daemon.detached_end(task_id)?;
    let result = match outcome {
        Ok(result) => render::ask(&result),
        Err(err) => render::failure(&err),
    };
    let result = match serde_json::to_value(result) {
        Ok(serde_json::Value::Object(result)) => result,
        _ => return None,
    };
    let at = |ms: u64| crate::clock::rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
    let task = Task::new(
        task_id,
        TaskStatus::Completed,
        at(times.created_ms),
        at(times.finished_ms),
    )
    .with_ttl_ms(daemon.config().result_ttl_ms)
    .with_poll_interval_ms(POLL_INTERVAL_MS);
    Some(DetailedTask::new(task, TaskPayload::Completed { result }))
}

/// Keeps the task's status message at the turn's latest step.
async fn follow_steps(context: TaskContext, mut messages: mpsc::Receiver<TurnMessage>) {
    while let Some(message) = messages.recv().await {
        if let Some(step) = message.message.step() {
            context.set_status_message(step.to_owned());
        }
    }
}

/// Puts each question of the task's turn to the client as an input request; returns when
/// the turn can ask no more.
async fn relay(context: TaskContext, questions: Option<mpsc::Receiver<Asked>>, cwd: String) {
    let asked_so_far = Arc::new(AtomicU64::new(0));
    relay_each(questions, |asked| {
        let n = asked_so_far.fetch_add(1, Ordering::Relaxed) + 1;
        input(
            context.clone(),
            asked,
            cwd.clone(),
            format!("permission{n}"),
        )
    })
    .await;
}

/// One question as the task's input request under `key`, and its answer; gives up when
/// the question is decided without it (its deadline, a cancel).
async fn input(context: TaskContext, asked: Asked, cwd: String, key: String) {
    let Asked {
        question,
        mut reply,
    } = asked;
    let params = form_params(&question, &cwd);
    let request = InputRequest::Elicitation(ElicitRequest::new(params));
    let answer = tokio::select! {
        answer = context.request_input(key, request) => answer,
        () = reply.closed() => return,
    };
    let decision = match answer.map(serde_json::from_value::<ElicitResult>) {
        Ok(Ok(result)) => decision_of(&question, result),
        _ => Decision::Deny {
            message: "The client's answer to this question was missing or unreadable.".to_string(),
        },
    };
    let _ = reply.send(decision);
}
