//! `RUN_TOOL <command..>`: a `Bash` tool use, its permission, and the turn's second API
//! call that reads the tool result.
//!
//! RUN_TOOL never runs the command. `toolu_double_NNNN` counts tool uses in the process from 1.
//! Permission, by the mode in force and `--permission-prompt-tool`:
//! - `bypassPermissions` mode: allowed at once.
//! - `--permission-prompt-tool stdio`: writes `{"type":"control_request","request_id":<uuid>,
//!   "request":{"subtype":"can_use_tool","tool_name":"Bash","display_name":"Bash","input":..,
//!   "description":..,"permission_suggestions":[..],"blocked_path":..,"tool_use_id":..}}` and
//!   waits for the matching `control_response`: `behavior:"allow"` gives a `user`
//!   `tool_result` `(Bash completed with no output)` with `is_error:false`; `behavior:"deny"`
//!   (or an error response, or stdin EOF) gives a `tool_result` with the deny message,
//!   `is_error:true`, listed in `permission_denials`.
//! - otherwise (default): `system/permission_denied` line, `user` `tool_result` with the
//!   denial message and `is_error:true`, listed in `permission_denials`
//!   (`[{tool_name,tool_use_id,tool_input}]`).
//!
//! then assistant text `tool result was (is_error=True|False): <tool result text>`.

use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::ids::{now_rfc3339, uuid4};
use crate::lines::Block;
use crate::result::{Outcome, aborted};
use crate::session::{Session, Turn, interrupted};

const TOOL_DESCRIPTION: &str = "Run a test command";

enum Permission {
    Allow,
    Deny { message: String, by_host: bool },
    Interrupted,
}

/// What the tool use came to: the `user` line with its `tool_result`, and what the model
/// reads from it.
struct ToolOutcome {
    text: String,
    is_error: bool,
    line: Value,
    denials: Vec<Value>,
}

impl Session {
    pub(crate) async fn run_tool(&mut self, t: &mut Turn, command: String) {
        self.tool_uses += 1;
        let tool_use_id = format!("toolu_double_{:04}", self.tool_uses);
        let input = json!({"command": command, "description": TOOL_DESCRIPTION});
        let api = self.api_start(t).await;
        self.block(t, &api, Block::Text("I'll run a command.".into()))
            .await;
        let tool_use = Block::ToolUse {
            id: tool_use_id.clone(),
            input: input.clone(),
        };
        self.block(t, &api, tool_use).await;
        self.api_stop(&api, "tool_use").await;

        let tool = match self.permission(t, &tool_use_id, &command, &input).await {
            Permission::Allow => self.allowed(&tool_use_id),
            Permission::Deny { message, by_host } => {
                self.denied(&tool_use_id, &input, message, by_host).await
            }
            Permission::Interrupted => {
                self.tool_interrupted(t, &tool_use_id).await;
                return;
            }
        };
        self.sh.out.send(&tool.line).await;

        let text = format!(
            "tool result was (is_error={}): {}",
            if tool.is_error { "True" } else { "False" },
            tool.text
        );
        let api = self.api_start(t).await;
        self.block(t, &api, Block::Text(text.clone())).await;
        self.api_stop(&api, "end_turn").await;
        let outcome = Outcome::Success {
            text,
            num_turns: 2,
            denials: tool.denials,
        };
        self.result(t, outcome).await;
    }

    /// Decides by the mode in force and `--permission-prompt-tool`.
    async fn permission(
        &mut self,
        t: &mut Turn,
        tool_use_id: &str,
        command: &str,
        input: &Value,
    ) -> Permission {
        let (mode, prompt_tool) = {
            let st = self.sh.state();
            let tool = self.sh.args.permission_prompt_tool.clone();
            (st.permission_mode.clone(), tool)
        };
        if mode == "bypassPermissions" {
            Permission::Allow
        } else if prompt_tool.as_deref() == Some("stdio") {
            self.ask_permission(t, tool_use_id, command, input).await
        } else {
            Permission::Deny {
                message: format!(
                    "{command} needs approval. Claude Code asks before a shell command creates, \
                     changes or removes files in the working directories for this session ('{}').",
                    self.sh.cwd
                ),
                by_host: false,
            }
        }
    }

    fn allowed(&self, tool_use_id: &str) -> ToolOutcome {
        let text = "(Bash completed with no output)".to_string();
        let line = json!({
            "type": "user",
            "message": {
                "role": "user",
                "content": [{
                    "tool_use_id": tool_use_id,
                    "type": "tool_result",
                    "content": &text,
                    "is_error": false,
                }],
            },
            "parent_tool_use_id": null,
            "session_id": &self.sh.session_id,
            "uuid": uuid4(),
            "timestamp": now_rfc3339(),
            "tool_use_result": {
                "stdout": "", "stderr": "", "interrupted": false,
                "isImage": false, "noOutputExpected": true
            },
            "tool_result_meta": [{
                "id": tool_use_id,
                "permission_decision": {"decision": "accept", "source": "user_temporary"}
            }],
        });
        ToolOutcome {
            text,
            is_error: false,
            line,
            denials: Vec::new(),
        }
    }

    /// Denied by the CLI's own rules (with a `system/permission_denied` line) or by the host.
    async fn denied(
        &self,
        tool_use_id: &str,
        input: &Value,
        message: String,
        by_host: bool,
    ) -> ToolOutcome {
        let sid = &self.sh.session_id;
        if !by_host {
            self.sh
                .out
                .send(&json!({
                    "type": "system",
                    "subtype": "permission_denied",
                    "tool_name": "Bash",
                    "tool_use_id": tool_use_id,
                    "message": &message,
                    "uuid": uuid4(),
                    "session_id": sid,
                }))
                .await;
        }
        let denial = json!({
            "tool_name": "Bash",
            "tool_use_id": tool_use_id,
            "tool_input": input.clone(),
        });
        let (kind, source) = if by_host {
            ("permission-rule", "user_reject")
        } else {
            ("user-rejected", "config")
        };
        let line = rejected_tool_result(sid, tool_use_id, &message, kind, source);
        ToolOutcome {
            text: message,
            is_error: true,
            line,
            denials: vec![denial],
        }
    }

    /// Interrupted while waiting for the host: the turn ends, aborted.
    async fn tool_interrupted(&mut self, t: &mut Turn, tool_use_id: &str) {
        let message = "The user doesn't want to proceed with this tool use. The tool use \
                       was rejected (eg. if it was a file edit, the new_string was NOT \
                       written to the file). STOP what you are doing and wait for the \
                       user to tell you how to proceed.";
        let sid = &self.sh.session_id;
        let line = rejected_tool_result(sid, tool_use_id, message, "interrupted", "user_abort");
        self.sh.out.send(&line).await;
        self.interrupted_user_line().await;
        self.result(t, aborted("aborted_tools")).await;
    }

    /// Sends `can_use_tool` and waits for the host's answer or an interrupt.
    async fn ask_permission(
        &mut self,
        t: &mut Turn,
        tool_use_id: &str,
        command: &str,
        input: &Value,
    ) -> Permission {
        let request_id = uuid4();
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.sh.state();
            if st.stdin_closed {
                return Permission::Deny {
                    message: "Permission prompt unanswered: stdin is closed".into(),
                    by_host: true,
                };
            }
            st.pending.insert(request_id.clone(), tx);
        }
        let request = self.can_use_tool(&request_id, tool_use_id, command, input);
        self.sh.out.send(&request).await;
        let answer = tokio::select! {
            answer = rx => answer,
            () = interrupted(&mut t.interrupt) => {
                self.sh.state().pending.remove(&request_id);
                self.sh.out.send(&json!({
                    "type": "control_cancel_request",
                    "request_id": &request_id,
                })).await;
                return Permission::Interrupted;
            }
        };
        match answer {
            Ok(answer) => host_decision(&answer),
            Err(_) => Permission::Deny {
                message: "Permission prompt unanswered: stdin is closed".into(),
                by_host: true,
            },
        }
    }

    /// The `can_use_tool` control request, as the real CLI writes it.
    fn can_use_tool(
        &self,
        request_id: &str,
        tool_use_id: &str,
        command: &str,
        input: &Value,
    ) -> Value {
        // The path a `touch x`-like command would write, as the real CLI reports it.
        let blocked_path = command
            .split_whitespace()
            .last()
            .filter(|w| !w.starts_with('-') && command.split_whitespace().count() > 1)
            .map(|w| {
                if w.starts_with('/') {
                    w.to_string()
                } else {
                    format!("{}/{w}", self.sh.cwd)
                }
            });
        json!({
            "type": "control_request",
            "request_id": request_id,
            "request": {
                "subtype": "can_use_tool",
                "tool_name": "Bash",
                "display_name": "Bash",
                "input": input.clone(),
                "description": TOOL_DESCRIPTION,
                "permission_suggestions": [
                    {"type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": command}],
                     "behavior": "allow", "destination": "localSettings"},
                    {"type": "addDirectories", "directories": [self.sh.cwd], "destination": "session"},
                    {"type": "setMode", "mode": "acceptEdits", "destination": "session"}
                ],
                "blocked_path": blocked_path.map_or(Value::Null, Value::from),
                "tool_use_id": tool_use_id,
            },
        })
    }
}

/// The host's `control_response` to `can_use_tool`.
fn host_decision(answer: &Value) -> Permission {
    let response = answer.get("response").cloned().unwrap_or(Value::Null);
    if response.get("subtype").and_then(Value::as_str) == Some("error") {
        let err = response.get("error").and_then(Value::as_str);
        return Permission::Deny {
            message: err.unwrap_or("Permission prompt failed").to_string(),
            by_host: true,
        };
    }
    let body = response.get("response").cloned().unwrap_or(Value::Null);
    match body.get("behavior").and_then(Value::as_str) {
        Some("allow") => Permission::Allow,
        _ => Permission::Deny {
            message: body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("Permission denied")
                .to_string(),
            by_host: true,
        },
    }
}

fn rejected_tool_result(
    sid: &str,
    tool_use_id: &str,
    message: &str,
    kind: &str,
    source: &str,
) -> Value {
    json!({
        "type": "user",
        "message": {
            "role": "user",
            "content": [{
                "type": "tool_result",
                "content": message,
                "is_error": true,
                "tool_use_id": tool_use_id,
            }],
        },
        "parent_tool_use_id": null,
        "session_id": sid,
        "uuid": uuid4(),
        "timestamp": now_rfc3339(),
        "tool_use_result": format!("Error: {message}"),
        "tool_result_meta": [{
            "id": tool_use_id,
            "non_execution_kind": kind,
            "permission_decision": {"decision": "reject", "source": source}
        }],
    })
}
