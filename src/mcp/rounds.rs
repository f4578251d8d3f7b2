//! Permission questions on 2026-07-28 connections: multi round-trip asks (MRTR).
//!
//! On 2026-07-28 a server may not send requests mid-call, so a question cannot be an
//! `elicitation/create` request. Instead the call ends with an `input_required` result
//! that carries the forms and an opaque `requestState`; the turn stays paused in the
//! child (it waits for its `can_use_tool` answer). The client fills the forms and calls
//! `ask` again with `inputResponses` and the same `requestState`: that call resumes the
//! same turn, answers the questions and goes on streaming it, until the answer or the
//! next question. Each round reports progress under its own call.
//!
//! The state lives here, not in `requestState` (an opaque handle, so nothing the client
//! echoes is trusted). A client that never comes back loses the turn: after the question
//! deadline plus a grace period the suspended ask is dropped, which interrupts the turn.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rmcp::model::{ElicitRequest, InputRequest, InputRequiredResult};
use serde_json::Value;
use tokio::sync::mpsc;

use super::permissions::{decision_of, form_params};
use crate::api::AskResult;
use crate::error::DaemonError;
use crate::permissions::{Asked, Decision};
use crate::supervisor::{Pending, TurnMessage};
use crate::sync::lock;

/// How long a suspended ask waits for its client beyond the question deadline.
const RESUME_GRACE: Duration = Duration::from_secs(10);

/// An ask in flight across rounds: its answer, its stream and its questions.
pub(super) struct Run {
    pub(super) pending: Pending,
    /// The turn's messages; `None` once the turn closed its stream.
    pub(super) messages: Option<mpsc::Receiver<TurnMessage>>,
    pub(super) questions: mpsc::Receiver<Asked>,
}

/// An ask between rounds, and the questions its client was given (by form key).
struct Suspended {
    run: Run,
    open: Vec<(String, Asked)>,
}

/// How a round ended.
pub(super) enum RoundEnd {
    /// The turn's answer (its stream was forwarded to the end).
    Done(Box<Result<AskResult, DaemonError>>),
    /// The agent asked; these questions go to the client.
    Questions(Vec<Asked>),
}

/// The asks of one session that wait for their client's next round.
#[derive(Clone, Default)]
pub(super) struct Rounds {
    waiting: Arc<Mutex<HashMap<String, Suspended>>>,
    last: Arc<AtomicU64>,
}

impl Rounds {
    /// Ends this round with the questions as forms: keeps the run under a new state
    /// handle, dropped (and the turn with it) if the client is not back in time.
    pub(super) fn suspend(
        &self,
        run: Run,
        questions: Vec<Asked>,
        cwd: &str,
        deadline: Duration,
    ) -> InputRequiredResult {
        let mut requests = BTreeMap::new();
        let mut open = Vec::new();
        for (n, asked) in questions.into_iter().enumerate() {
            let key = format!("permission{}", n + 1);
            let params = form_params(&asked.question, cwd);
            requests.insert(
                key.clone(),
                InputRequest::Elicitation(ElicitRequest::new(params)),
            );
            open.push((key, asked));
        }
        let state = format!("ask-{}", self.last.fetch_add(1, Ordering::Relaxed) + 1);
        lock(&self.waiting).insert(state.clone(), Suspended { run, open });
        let rounds = self.clone();
        let expiring = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(deadline + RESUME_GRACE).await;
            if lock(&rounds.waiting).remove(&expiring).is_some() {
                tracing::info!(state = %expiring, "the client did not come back; the ask is dropped");
            }
        });
        InputRequiredResult::new(Some(requests), Some(state))
    }

    /// The next round of the ask under `state`: its questions are answered from
    /// `responses` (a missing or unreadable one denies); `None` for an unknown handle.
    pub(super) fn resume(&self, state: &str, responses: &BTreeMap<String, Value>) -> Option<Run> {
        let Suspended { run, open } = lock(&self.waiting).remove(state)?;
        for (key, asked) in open {
            let decision = match responses.get(&key).cloned().map(serde_json::from_value) {
                Some(Ok(result)) => decision_of(&asked.question, result),
                _ => Decision::Deny {
                    message: "The client's answer to this question was missing.".to_string(),
                },
            };
            // A question already decided (its deadline passed) takes no late answer.
            let _ = asked.reply.send(decision);
        }
        Some(run)
    }
}

impl Run {
    /// Forwards the turn's messages to `round` until its answer (the stream then runs
    /// to its end) or a question (the messages already waiting go first).
    pub(super) async fn round(&mut self, round: mpsc::Sender<TurnMessage>) -> RoundEnd {
        loop {
            tokio::select! {
                biased;
                message = next(&mut self.messages) => match message {
                    Some(message) => {
                        if round.send(message).await.is_err() {
                            // The round's reporter stopped (its client is gone).
                            self.messages = None;
                        }
                    }
                    None => self.messages = None,
                },
                Some(asked) = self.questions.recv() => {
                    let mut asked = vec![asked];
                    while let Ok(more) = self.questions.try_recv() {
                        asked.push(more);
                    }
                    self.forward_waiting(&round).await;
                    return RoundEnd::Questions(asked);
                }
                answer = self.pending.answer() => {
                    // The turn is over: its stream closes after its last messages.
                    if let Some(messages) = &mut self.messages {
                        while let Some(message) = messages.recv().await {
                            if round.send(message).await.is_err() {
                                break;
                            }
                        }
                    }
                    return RoundEnd::Done(Box::new(answer.map_err(DaemonError::from)));
                }
            }
        }
    }

    /// The messages already in the turn's channel, before the round ends.
    async fn forward_waiting(&mut self, round: &mpsc::Sender<TurnMessage>) {
        let Some(messages) = &mut self.messages else {
            return;
        };
        while let Ok(message) = messages.try_recv() {
            if round.send(message).await.is_err() {
                return;
            }
        }
    }
}

/// The next message, or never once the stream is closed (so `select!` waits on the rest).
async fn next(messages: &mut Option<mpsc::Receiver<TurnMessage>>) -> Option<TurnMessage> {
    match messages {
        Some(messages) => messages.recv().await,
        None => std::future::pending().await,
    }
}
