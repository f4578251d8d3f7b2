//! The control protocol: stdin `{"type":"control_request","request_id":ID,"request":{"subtype":..}}`.
//!
//! Answered with `{"type":"control_response","response":{"subtype":"success","request_id":ID,"response":{..}}}`:
//!
//! | subtype | response |
//! | --- | --- |
//! | `initialize` | the real key set (`commands`, `agents`, `output_style`, `available_output_styles`, `user_output_styles_dir`, `models`, `account`, `pid` (the double's pid), `claude_code_version` `"2.1.332"`, `current_permission_mode`, ..., `session_state` (`idle`/`running`), `capabilities`), small contents; the envelope (beside `response`) also has `pending_permission_requests:[]` and `pending_user_dialog_requests:[]`, as the real one |
//! | `interrupt` | `{"still_queued":[]}`, written first; then the running turn, if interruptible, ends (see below) |
//! | `set_model` | `{}`; `request.model` (missing or `default` = `claude-opus-5-5`) is used from the next turn |
//! | `set_permission_mode` | `{}`; `request.mode` is used from the next turn |
//! | `mcp_status` | `{"mcpServers":[]}` |
//! | `get_context_usage` | small object (`categories`, `totalTokens`, `maxTokens`, `percentage`, `model`, ...) |
//! | anything else | `{"subtype":"error","request_id":ID,"error":"Unsupported control request subtype: X"}` |
//!
//! An interrupt takes effect once the turn's `system/init` line has been written. An
//! interrupted SLOW turn writes the block it was streaming as an `assistant` line with
//! `"aborted":true` (text `slow chunk i`, as the real CLI writes the partial block), then a
//! `user` line with content `[{"type":"text","text":"[Request interrupted by user]"}]`, then a
//! `result` with `subtype:"error_during_execution"`, `is_error:true`, no `result` field,
//! `errors:[..]`, `stop_reason:null`, `terminal_reason:"aborted_streaming"`. A RUN_TOOL turn
//! interrupted while waiting for `can_use_tool` writes `{"type":"control_cancel_request",
//! "request_id":..}`, a rejected `tool_result`, the interrupted `user` line, and a result with
//! `terminal_reason:"aborted_tools"`. Other turns finish normally (they do not wait on
//! anything); HANG and CLOSE_STDOUT are not interruptible.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::state::Shared;
use crate::{DEFAULT_MODEL, VERSION};

fn control_success(request_id: &Value, response: Value) -> Value {
    json!({
        "type": "control_response",
        "response": {
            "subtype": "success",
            "request_id": request_id.clone(),
            "response": response,
        },
    })
}

/// Answers one control request. Returns the task answering a delayed `initialize`.
pub(crate) async fn handle_control(
    sh: &Arc<Shared>,
    msg: &Value,
) -> Option<tokio::task::JoinHandle<()>> {
    let request_id = msg.get("request_id").cloned().unwrap_or(Value::Null);
    let request = msg.get("request").cloned().unwrap_or(Value::Null);
    let subtype = request
        .get("subtype")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match subtype {
        "initialize" => return initialize(sh, request_id).await,
        "interrupt" => interrupt(sh, &request_id).await,
        "set_model" => {
            let model = match request.get("model").and_then(Value::as_str) {
                None | Some("default") => DEFAULT_MODEL.to_string(),
                Some(m) => m.to_string(),
            };
            sh.state().model = model;
            sh.out.send(&control_success(&request_id, json!({}))).await;
        }
        "set_permission_mode" => {
            if let Some(mode) = request.get("mode").and_then(Value::as_str) {
                sh.state().permission_mode = mode.to_string();
            }
            sh.out.send(&control_success(&request_id, json!({}))).await;
        }
        "mcp_status" => {
            let resp = json!({ "mcpServers": [] });
            sh.out.send(&control_success(&request_id, resp)).await;
        }
        "get_context_usage" => {
            let resp = context_usage(&sh.state().model);
            sh.out.send(&control_success(&request_id, resp)).await;
        }
        other => {
            let resp = json!({
                "type": "control_response",
                "response": {
                    "subtype": "error",
                    "request_id": request_id,
                    "error": format!("Unsupported control request subtype: {other}"),
                },
            });
            sh.out.send(&resp).await;
        }
    }
    None
}

/// Answers `initialize`, at once or after `DOUBLE_INIT_DELAY_MS` (then returns the task
/// that will, so stdin keeps being read meanwhile).
async fn initialize(sh: &Arc<Shared>, request_id: Value) -> Option<tokio::task::JoinHandle<()>> {
    let delay_ms = std::env::var("DOUBLE_INIT_DELAY_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if delay_ms == 0 {
        sh.out.send(&initialize_answer(&request_id, sh)).await;
        return None;
    }
    let sh = sh.clone();
    Some(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        sh.out.send(&initialize_answer(&request_id, &sh)).await;
    }))
}

async fn interrupt(sh: &Shared, request_id: &Value) {
    // The answer goes out before the interrupted turn's last lines, as seen from
    // the real CLI.
    sh.out
        .send(&control_success(request_id, json!({ "still_queued": [] })))
        .await;
    let mut state = sh.state();
    if state.turn.is_some() && state.ignore_interrupts > 0 {
        state.ignore_interrupts -= 1;
    } else if let Some(turn) = &state.turn
        && turn.interruptible
    {
        turn.interrupt.send_replace(true);
    }
}

fn context_usage(model: &str) -> Value {
    json!({
        "categories": [{"name": "Messages", "tokens": 0, "color": "purple"}],
        "totalTokens": 0u64,
        "maxTokens": 1_000_000u64,
        "rawMaxTokens": 1_000_000u64,
        "percentage": 0u64,
        "model": model,
        "memoryFiles": [],
        "mcpTools": [],
    })
}

/// The `initialize` answer: unlike the others, its envelope also lists pending requests.
fn initialize_answer(request_id: &Value, sh: &Shared) -> Value {
    let mut line = control_success(request_id, initialize_response(sh));
    line["response"]["pending_permission_requests"] = json!([]);
    line["response"]["pending_user_dialog_requests"] = json!([]);
    line
}

fn initialize_response(sh: &Shared) -> Value {
    let (mode, running) = {
        let st = sh.state();
        (st.permission_mode.clone(), st.turn.is_some())
    };
    let home = std::env::var("HOME").unwrap_or_default();
    let model_entry = |value: &str, resolved: &str, display: &str, description: &str| {
        json!({
            "value": value, "resolvedModel": resolved, "displayName": display,
            "description": description, "supportsEffort": true,
            "supportedEffortLevels": ["low", "medium", "high", "xhigh", "max"],
            "supportsAdaptiveThinking": true, "supportsFastMode": true,
            "supportsAutoMode": true, "supportsThinkingOff": false
        })
    };
    json!({
        "commands": [
            {"name": "compact", "description": "Clear conversation history but keep a summary in context", "argumentHint": "<optional custom summarization instructions>", "builtin": true},
            {"name": "review", "description": "Review a pull request", "argumentHint": "", "builtin": true},
        ],
        "agents": [
            {"name": "general-purpose", "description": "General-purpose agent for multi-step tasks."},
            {"name": "Explore", "description": "Fast read-only search agent for locating code."},
        ],
        "output_style": "default",
        "available_output_styles": ["default", "Explanatory", "Learning"],
        "user_output_styles_dir": format!("{home}/.claude/output-styles"),
        "models": [
            model_entry("default", DEFAULT_MODEL, "Default (recommended)", "Use the default model"),
            model_entry("sonnet", "claude-sonnet-5", "Sonnet", "Sonnet for everyday tasks"),
        ],
        "account": {
            "tokenSource": "none",
            "apiKeySource": api_key_source(),
            "apiProvider": "firstParty",
        },
        "pid": std::process::id(),
        "claude_code_version": VERSION,
        "current_permission_mode": mode,
        "hook_on_failure_supported": true,
        "hooks_when_unanswered_kept": 0u64,
        "other_hook_ask_outranks_host": true,
        "feedback_mode": { "kind": "disabled" },
        "analytics_disabled": true,
        "sandbox_enabled": false,
        "remote_control_auto_enable": false,
        "remote_control_auto_connect_default": false,
        "remote_control_available": false,
        "remote_control_auto_on_by_default": false,
        "ide_rc_auto_enable_gate": false,
        "fast_mode_state": "off",
        "fast_mode_disabled_reason": "sdk_opt_in_required",
        "session_state": if running { "running" } else { "idle" },
        "capabilities": ["ui_surface_v1", "get_usage_detached_v1"],
    })
}

pub(crate) fn api_key_source() -> &'static str {
    if std::env::var_os("ANTHROPIC_API_KEY").is_some() {
        "ANTHROPIC_API_KEY"
    } else {
        "none"
    }
}
