//! The `result` line that ends a turn, and the accounting it reports.
//!
//! Each `result` has the real key order (`type` is not first), `result_index` counting
//! from 0, `queued_turn_count` = user messages waiting, per-turn `usage` (10 input and 5
//! output tokens per API call, cache 0) and `total_cost_usd`/`modelUsage` CUMULATIVE over
//! the process (`total_cost_usd` also counts a resumed session's earlier processes, see
//! `crate::state`): every turn that writes a result costs 0.00014 (10 in / 5 out tokens) per
//! simulated API call (RUN_TOOL makes two), and an `ERR400` turn costs nothing, as with the
//! real CLI.

use serde_json::{Map, Value, json};

use crate::ids::uuid4;
use crate::session::{Session, Turn};

/// What one API call costs, as the real CLI charged 10 input and 5 output tokens.
const TURN_COST_USD: f64 = 0.00014;

/// How a turn ended.
pub(crate) enum Outcome {
    Success {
        text: String,
        num_turns: u64,
        denials: Vec<Value>,
    },
    ApiError400 {
        text: String,
    },
    Error {
        subtype: &'static str,
        terminal_reason: &'static str,
        errors: Vec<String>,
    },
}

/// The outcome of an interrupted turn.
pub(crate) fn aborted(terminal_reason: &'static str) -> Outcome {
    Outcome::Error {
        subtype: "error_during_execution",
        terminal_reason,
        errors: vec![
            "[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null".into(),
        ],
    }
}

impl Session {
    /// Writes the turn's `result`, with the real CLI's key order for each kind of outcome.
    pub(crate) async fn result(&mut self, t: &Turn, outcome: Outcome) {
        let (calls, result_index) = self.charge(t, &outcome);
        crate::state::keep_cost(
            &self.sh.session_id,
            self.sh.earlier_cost_usd + self.cost_usd,
        );
        // Like the real CLI: the turn whose calls reach the budget ends as
        // `error_max_budget_usd` (its text is dropped).
        let outcome = match (outcome, self.budget_reached()) {
            (Outcome::Success { .. }, Some(error)) => error,
            (outcome, _) => outcome,
        };
        let elapsed = t.started.elapsed().as_millis() as u64;
        let mut line = self.result_head(&outcome, calls, elapsed);
        let timings = match outcome {
            Outcome::Success { text, .. } => {
                line["subtype"] = json!("success");
                line["api_error_status"] = Value::Null;
                line["result"] = json!(text);
                true
            }
            Outcome::ApiError400 { text } => {
                line["subtype"] = json!("success");
                line["api_error_status"] = json!(400u64);
                line["api_error_type"] = json!("invalid_request_error");
                line["result"] = json!(text);
                false
            }
            Outcome::Error {
                subtype, errors, ..
            } => {
                line["subtype"] = json!(subtype);
                line["errors"] = json!(errors);
                false
            }
        };
        if timings {
            line["ttft_ms"] = json!(elapsed);
        }
        line["type"] = json!("result");
        line["duration_ms"] = json!(elapsed);
        line["uuid"] = json!(uuid4());
        if self.sh.partial() {
            line["begun_message_ids"] = json!(t.begun_message_ids);
        }
        if timings {
            line["ttft_stream_ms"] = json!(elapsed);
            line["time_to_request_ms"] = json!(0u64);
            line["first_content_frame_ms"] = json!(elapsed);
        }
        line["queued_turn_count"] = json!(self.queue.len());
        line["result_index"] = json!(result_index);
        let mut since_last = Map::new();
        since_last.insert(t.model.clone(), model_usage_entry(&t.model, calls));
        line["model_usage_since_last_result"] = Value::Object(since_last);
        self.sh.out.send(&line).await;
    }

    /// The budget error when this process has spent its `--max-budget-usd`.
    pub(crate) fn budget_reached(&self) -> Option<Outcome> {
        let budget = self.sh.args.max_budget_usd?;
        (self.cost_usd >= budget).then(|| Outcome::Error {
            subtype: "error_max_budget_usd",
            terminal_reason: "budget_exhausted",
            errors: vec![format!("Reached maximum budget (${budget})")],
        })
    }

    /// Accounting first: total_cost_usd and modelUsage include this turn. Like the real
    /// CLI, every API call is charged, and a call the API refused (400) is not. Returns the
    /// calls charged and the result's index.
    fn charge(&mut self, t: &Turn, outcome: &Outcome) -> (u64, u64) {
        let calls = match outcome {
            Outcome::ApiError400 { .. } => 0,
            _ => t.calls,
        };
        self.cost_usd += TURN_COST_USD * calls as f64;
        *self.turns_by_model.entry(t.model.clone()).or_insert(0) += calls;
        let result_index = self.results;
        self.results += 1;
        (calls, result_index)
    }

    /// The keys every result starts with.
    fn result_head(&self, outcome: &Outcome, calls: u64, elapsed: u64) -> Value {
        let model_usage: Map<String, Value> = self
            .turns_by_model
            .iter()
            .map(|(model, turns)| (model.clone(), model_usage_entry(model, *turns)))
            .collect();
        let (stop_reason, terminal_reason, is_error, num_turns) = match outcome {
            Outcome::Success { num_turns, .. } => {
                (json!("end_turn"), "completed", false, *num_turns)
            }
            Outcome::ApiError400 { .. } => (json!("stop_sequence"), "api_error", true, 1),
            Outcome::Error {
                terminal_reason, ..
            } => (Value::Null, *terminal_reason, true, 1),
        };
        let denials = match outcome {
            Outcome::Success { denials, .. } => denials.clone(),
            _ => Vec::new(),
        };
        json!({
            "duration_api_ms": elapsed,
            "stop_reason": stop_reason,
            "session_id": &self.sh.session_id,
            "total_cost_usd": self.sh.earlier_cost_usd + self.cost_usd,
            "usage": result_usage(calls),
            "modelUsage": model_usage,
            "permission_denials": denials,
            "terminal_reason": terminal_reason,
            "fast_mode_state": "off",
            "fast_mode_disabled_reason": "sdk_opt_in_required",
            "subagent_stats": {
                "spawned": 0, "requested": {"background": 0, "foreground": 0, "unset": 0},
                "started_in_background": 0, "max_depth": 0, "spawned_by_subagents": 0,
                "completed": 0, "failed": 0, "killed": {"parent": 0, "user": 0, "system": 0},
                "refused": {"depth_limit": 0, "concurrency_limit": 0, "budget": 0}, "by_type": {}
            },
            "safety_stops": 0u64,
            "is_error": is_error,
            "num_turns": num_turns,
        })
    }
}

fn result_usage(calls: u64) -> Value {
    json!({
        "input_tokens": 10 * calls,
        "cache_creation_input_tokens": 0u64,
        "cache_read_input_tokens": 0u64,
        "output_tokens": 5 * calls,
        "output_tokens_details": { "thinking_tokens": 0u64 },
        "server_tool_use": { "web_search_requests": 0u64, "web_fetch_requests": 0u64 },
        "service_tier": "standard",
        "cache_creation": { "ephemeral_1h_input_tokens": 0u64, "ephemeral_5m_input_tokens": 0u64 },
        "inference_geo": "",
        "iterations": [],
        "speed": "standard",
        "fallback_credit": null,
    })
}

fn model_usage_entry(model: &str, turns: u64) -> Value {
    json!({
        "inputTokens": 10 * turns,
        "outputTokens": 5 * turns,
        "cacheReadInputTokens": 0u64,
        "cacheCreationInputTokens": 0u64,
        "webSearchRequests": 0u64,
        "costUSD": TURN_COST_USD * turns as f64,
        "contextWindow": 1_000_000u64,
        "maxOutputTokens": 128_000u64,
        "thinkingTokens": 0u64,
        "cacheCreationEphemeral5mInputTokens": 0u64,
        "cacheCreationEphemeral1hInputTokens": 0u64,
        "canonicalModel": model,
        "provider": "firstParty",
        "costBasis": "list",
    })
}
