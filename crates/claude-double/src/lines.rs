//! The lines of a turn before its result: `system/init`, one `assistant` line per content
//! block of each simulated API call, and with `--include-partial-messages` the
//! `system/status` and `stream_event` lines around them.
//!
//! Every turn starts with a `system/init` line (real key set; `cwd` is the actual cwd,
//! `additional_directories` from `--add-dir`). Assistant lines carry `message.id`
//! `msg_double_NNNN` (one per simulated API call, process-wide counter from 1, shared by the
//! blocks of one call), `request_id` `req_double_<12 hex>`, RFC 3339 UTC `timestamp`.
//!
//! With `--include-partial-messages`, each simulated API call also writes a
//! `system/status` (`requesting`) line and `stream_event` lines as the real CLI does:
//! `message_start`, per block `content_block_start`, two `content_block_delta` (text in two
//! halves; one `thinking_delta`/`input_json_delta` + `signature_delta` for other blocks), the
//! `assistant` line, `content_block_stop`; then `message_delta`, `message_stop`; the result
//! then has `begun_message_ids`.

use serde_json::{Value, json};

use crate::VERSION;
use crate::control::api_key_source;
use crate::ids::{now_rfc3339, request_id, uuid4};
use crate::session::{Session, Turn};

const INTERRUPTED_TEXT: &str = "[Request interrupted by user]";

/// One simulated Messages API call: its blocks share the message and request ids.
pub(crate) struct Api {
    id: String,
    request_id: String,
    index: usize,
}

pub(crate) enum Block {
    Text(String),
    Thinking(String),
    ToolUse { id: String, input: Value },
}

impl Session {
    pub(crate) async fn system_init(&self, t: &Turn) {
        let sh = &self.sh;
        let permission_mode = sh.state().permission_mode.clone();
        let home = std::env::var("HOME").unwrap_or_default();
        let slug: String = sh
            .cwd
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let line = json!({
            "type": "system",
            "subtype": "init",
            "cwd": &sh.cwd,
            "session_id": &sh.session_id,
            "tools": [
                "Task", "Bash", "CronCreate", "CronDelete", "CronList", "Edit", "EnterWorktree",
                "ExitWorktree", "ListAgents", "Monitor", "NotebookEdit", "Read", "ReportFindings",
                "ScheduleWakeup", "SendMessage", "Skill", "TaskStop", "ToolSearch", "WebFetch",
                "WebSearch", "Workflow", "Write"
            ],
            "mcp_servers": [],
            "model": &t.model,
            "permissionMode": permission_mode,
            "slash_commands": ["verify", "debug", "code-review", "compact", "context", "init", "mcp", "model", "review"],
            "terminal_slash_commands": ["doctor", "color"],
            "apiKeySource": api_key_source(),
            "claude_code_version": VERSION,
            "output_style": "default",
            "agents": ["claude", "Explore", "general-purpose", "Plan", "statusline-setup"],
            "skills": ["verify", "debug", "code-review"],
            "plugins": [
                {"name": "cc-plugin-agents-md", "path": "builtin", "source": "cc-plugin-agents-md@builtin"}
            ],
            "capabilities": ["interrupt_receipt_v1", "msg_lifecycle_v1", "ui_surface_v1"],
            "analytics_disabled": true,
            "product_feedback_disabled": true,
            "served_by_anthropic": false,
            "uuid": uuid4(),
            "sandbox_enabled": false,
            "memory_paths": { "auto": format!("{home}/.claude/projects/{slug}/memory/") },
            "original_cwd": &sh.cwd,
            "additional_directories": sh.args.add_dirs,
            "messaging_socket_path": format!("/tmp/cc-socks/{}.sock", std::process::id()),
            "fast_mode_state": "off",
            "fast_mode_disabled_reason": "sdk_opt_in_required",
            "per_turn_effort_active": true,
            "ultrathink_available": false,
            "ultrathink_typed_raises": false,
            "view_mode": "default",
        });
        sh.out.send(&line).await;
    }

    /// A `stream_event` line; `extra` keys go after the usual ones, then `api_message_id`.
    pub(crate) fn stream_event(&self, api: &Api, event: Value, extra: Vec<(&str, Value)>) -> Value {
        let mut line = json!({
            "type": "stream_event",
            "event": event,
            "session_id": &self.sh.session_id,
            "parent_tool_use_id": null,
            "uuid": uuid4(),
        });
        for (key, value) in extra {
            line[key] = value;
        }
        line["api_message_id"] = json!(api.id);
        line
    }

    /// Starts a simulated API call (with partial messages: status and message_start).
    pub(crate) async fn api_start(&mut self, t: &mut Turn) -> Api {
        self.api_calls += 1;
        t.calls += 1;
        let api = Api {
            id: format!("msg_double_{:04}", self.api_calls),
            request_id: request_id(),
            index: 0,
        };
        if self.sh.partial() {
            t.begun_message_ids.push(api.id.clone());
            let sh = &self.sh;
            sh.out
                .send(&json!({
                    "type": "system",
                    "subtype": "status",
                    "status": "requesting",
                    "session_id": &sh.session_id,
                    "uuid": uuid4(),
                }))
                .await;
            let event = json!({
                "type": "message_start",
                "message": {
                    "id": &api.id,
                    "type": "message",
                    "role": "assistant",
                    "model": &t.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": assistant_usage(),
                },
            });
            let ttft = t.started.elapsed().as_millis() as u64;
            let extra = vec![
                ("ttft_ms", json!(ttft)),
                ("thinking_display", json!("updates")),
            ];
            sh.out.send(&self.stream_event(&api, event, extra)).await;
        }
        api
    }

    /// One finished content block: its `assistant` line (with partial messages, wrapped
    /// in content_block_start/delta/stop events).
    pub(crate) async fn block(&self, t: &Turn, api: &Api, block: Block) {
        let out = &self.sh.out;
        let partial = self.sh.partial();
        let index = api.index;
        if partial {
            let start = match &block {
                Block::Text(_) => json!({ "type": "text", "text": "" }),
                Block::Thinking(_) => {
                    json!({ "type": "thinking", "thinking": "", "signature": "" })
                }
                Block::ToolUse { id, .. } => {
                    json!({ "type": "tool_use", "id": id, "name": "Bash", "input": {} })
                }
            };
            let event =
                json!({ "type": "content_block_start", "index": index, "content_block": start });
            out.send(&self.stream_event(api, event, Vec::new())).await;
            let deltas = match &block {
                Block::Text(text) => {
                    // Two halves, split on a char boundary: consumers must join deltas.
                    let mut mid = text.len() / 2;
                    while !text.is_char_boundary(mid) {
                        mid += 1;
                    }
                    let (a, b) = text.split_at(mid);
                    vec![
                        json!({ "type": "text_delta", "text": a }),
                        json!({ "type": "text_delta", "text": b }),
                    ]
                }
                Block::Thinking(thinking) => vec![
                    json!({ "type": "thinking_delta", "thinking": thinking }),
                    json!({ "type": "signature_delta", "signature": "double-signature" }),
                ],
                Block::ToolUse { input, .. } => vec![json!({
                    "type": "input_json_delta",
                    "partial_json": input.to_string(),
                })],
            };
            for delta in deltas {
                let event =
                    json!({ "type": "content_block_delta", "index": index, "delta": delta });
                out.send(&self.stream_event(api, event, Vec::new())).await;
            }
        }
        out.send(&self.assistant_line(t, api, block_json(&block)))
            .await;
        if partial {
            let event = json!({ "type": "content_block_stop", "index": index });
            out.send(&self.stream_event(api, event, Vec::new())).await;
        }
    }

    /// Ends a simulated API call (with partial messages: message_delta, message_stop).
    pub(crate) async fn api_stop(&self, api: &Api, stop_reason: &str) {
        if self.sh.partial() {
            let event = json!({
                "type": "message_delta",
                "delta": { "stop_reason": stop_reason, "stop_sequence": null },
                "usage": { "output_tokens": 5u64 },
            });
            self.sh
                .out
                .send(&self.stream_event(api, event, Vec::new()))
                .await;
            let event = json!({ "type": "message_stop" });
            self.sh
                .out
                .send(&self.stream_event(api, event, Vec::new()))
                .await;
        }
    }

    pub(crate) fn assistant_line(&self, t: &Turn, api: &Api, content: Value) -> Value {
        json!({
            "type": "assistant",
            "message": {
                "id": &api.id,
                "type": "message",
                "role": "assistant",
                "model": &t.model,
                "content": [content],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": assistant_usage(),
                "context_management": null,
            },
            "parent_tool_use_id": null,
            "session_id": &self.sh.session_id,
            "uuid": uuid4(),
            "timestamp": now_rfc3339(),
            "request_id": &api.request_id,
        })
    }

    pub(crate) async fn interrupted_user_line(&self) {
        let line = json!({
            "type": "user",
            "message": {
                "role": "user",
                "content": [{ "type": "text", "text": INTERRUPTED_TEXT }],
            },
            "parent_tool_use_id": null,
            "session_id": &self.sh.session_id,
            "uuid": uuid4(),
            "timestamp": now_rfc3339(),
        });
        self.sh.out.send(&line).await;
    }
}

pub(crate) fn block_json(block: &Block) -> Value {
    match block {
        Block::Text(text) => json!({ "type": "text", "text": text }),
        Block::Thinking(thinking) => json!({
            "type": "thinking",
            "thinking": thinking,
            "signature": "double-signature",
        }),
        Block::ToolUse { id, input } => json!({
            "type": "tool_use",
            "id": id,
            "name": "Bash",
            "input": input.clone(),
        }),
    }
}

fn assistant_usage() -> Value {
    json!({
        "input_tokens": 10u64,
        "output_tokens": 1u64,
        "cache_creation_input_tokens": 0u64,
        "cache_read_input_tokens": 0u64,
    })
}
