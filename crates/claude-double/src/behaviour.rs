//! What each directive of [`crate::directive`] does in a turn (`RUN_TOOL` is in
//! [`crate::tool`]).

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::ids::{now_rfc3339, request_id, uuid4};
use crate::lines::{Block, block_json};
use crate::result::{Outcome, aborted};
use crate::session::{Session, Turn, interrupted};

impl Session {
    /// The default reply: `mock reply #N to: <prompt>`.
    pub(crate) async fn reply(&mut self, t: &mut Turn) {
        let text = format!("mock reply #{} to: {}", self.turns, t.prompt);
        self.single_text(t, text).await;
    }

    /// One API call with one text block, and a successful result of that text.
    pub(crate) async fn single_text(&mut self, t: &mut Turn, text: String) {
        let api = self.api_start(t).await;
        self.block(t, &api, Block::Text(text.clone())).await;
        self.api_stop(&api, "end_turn").await;
        let outcome = Outcome::Success {
            text,
            num_turns: 1,
            denials: Vec::new(),
        };
        self.result(t, outcome).await;
    }

    pub(crate) async fn slow(&mut self, t: &mut Turn, ms: u64, chunks: u32, bytes: usize) {
        let api = self.api_start(t).await;
        let mut text = String::new();
        for i in 1..=chunks {
            let mut chunk = format!("slow chunk {i}");
            let pad = bytes.saturating_sub(chunk.len());
            chunk.extend(std::iter::repeat_n('.', pad));
            tokio::select! {
                () = pause(ms) => {}
                () = interrupted(&mut t.interrupt) => {
                    // Like the real CLI: the block being streamed comes out marked aborted.
                    let mut line = self.assistant_line(t, &api, block_json(&Block::Text(chunk)));
                    line["aborted"] = json!(true);
                    self.sh.out.send(&line).await;
                    self.interrupted_user_line().await;
                    self.result(t, aborted("aborted_streaming")).await;
                    return;
                }
            }
            text.push_str(&chunk);
            self.block(t, &api, Block::Text(chunk)).await;
        }
        self.api_stop(&api, "end_turn").await;
        let outcome = Outcome::Success {
            text,
            num_turns: 1,
            denials: Vec::new(),
        };
        self.result(t, outcome).await;
    }

    pub(crate) async fn crash(&mut self, t: &mut Turn, code: i32) {
        let api = self.api_start(t).await;
        self.block(t, &api, Block::Text("about to crash".into()))
            .await;
        let _ = writeln!(std::io::stderr(), "double: crashing on request");
        std::process::exit(code);
    }

    pub(crate) async fn garbage(&mut self, t: &mut Turn) {
        let lines: [&[u8]; 9] = [
            b"this is not json",
            b"{broken",
            b"[1,2,3]",
            b"42",
            b"\"a string\"",
            b"",
            b"{\"no_type\":true}",
            b"\xff\xfe invalid utf-8",
            b"{\"type\":\"future_message_kind\",\"data\":1}",
        ];
        for line in lines {
            self.sh.out.raw(line).await;
        }
        self.reply(t).await;
    }

    pub(crate) async fn err400(&mut self, t: &mut Turn) {
        let text = "API Error: 400 mock 400";
        let line = json!({
            "type": "assistant",
            "message": {
                "diagnostics": null,
                "id": uuid4(),
                "container": null,
                "model": "<synthetic>",
                "role": "assistant",
                "stop_details": null,
                "stop_reason": "stop_sequence",
                "stop_sequence": "",
                "type": "message",
                "usage": {
                    "output_tokens_details": null,
                    "input_tokens": 0u64,
                    "output_tokens": 0u64,
                    "cache_creation_input_tokens": 0u64,
                    "cache_read_input_tokens": 0u64,
                    "server_tool_use": { "web_search_requests": 0u64, "web_fetch_requests": 0u64 },
                    "service_tier": null,
                    "cache_creation": { "ephemeral_1h_input_tokens": 0u64, "ephemeral_5m_input_tokens": 0u64 },
                    "inference_geo": null,
                    "iterations": null,
                    "speed": null,
                    "fallback_credit": null,
                },
                "content": [{ "type": "text", "text": text }],
                "context_management": null,
            },
            "parent_tool_use_id": null,
            "session_id": &self.sh.session_id,
            "uuid": uuid4(),
            "timestamp": now_rfc3339(),
            "error": "unknown",
            "request_id": request_id(),
            "is_api_error_message": true,
            "api_error_status": 400u64,
            "api_error_type": "invalid_request_error",
        });
        self.sh.out.send(&line).await;
        self.result(t, Outcome::ApiError400 { text: text.into() })
            .await;
    }

    pub(crate) async fn max_turns(&mut self, t: &mut Turn) {
        let text = format!("mock reply #{} to: {}", self.turns, t.prompt);
        let api = self.api_start(t).await;
        self.block(t, &api, Block::Text(text)).await;
        self.api_stop(&api, "tool_use").await;
        let max = self.sh.args.max_turns.unwrap_or(1);
        let outcome = Outcome::Error {
            subtype: "error_max_turns",
            terminal_reason: "max_turns",
            errors: vec![format!("Reached maximum number of turns ({max})")],
        };
        self.result(t, outcome).await;
    }

    pub(crate) async fn stderr_lines(&mut self, t: &mut Turn, lines: u64) {
        let mut err = tokio::io::stderr();
        for i in 1..=lines {
            let line = format!("double: stderr line {i}/{lines} in turn {}\n", self.turns);
            if err.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = err.flush().await;
        self.reply(t).await;
    }

    pub(crate) async fn unknown(&mut self, t: &mut Turn) {
        let out = &self.sh.out;
        out.send(&json!({
            "type": "system",
            "subtype": "brand_new_subtype",
            "session_id": &self.sh.session_id,
            "uuid": uuid4(),
        }))
        .await;
        let resets_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            + 3600;
        out.send(&json!({
            "type": "rate_limit_event",
            "rate_limit_info": {
                "status": "allowed",
                "resetsAt": resets_at,
                "rateLimitType": "five_hour",
                "overageStatus": "rejected",
                "overageDisabledReason": "org_level_disabled",
                "isUsingOverage": false,
            },
            "uuid": uuid4(),
            "session_id": &self.sh.session_id,
        }))
        .await;
        self.reply(t).await;
    }

    pub(crate) async fn keep_alive(&mut self, t: &mut Turn, ms: u64, count: u32) {
        for _ in 0..count {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            self.sh.out.send(&json!({ "type": "keep_alive" })).await;
        }
        self.reply(t).await;
    }

    pub(crate) async fn leak(&mut self, t: &mut Turn, var: &str) {
        // A child that echoes a secret where the bridge records things.
        let value = std::env::var(var).unwrap_or_default();
        let _ = writeln!(std::io::stderr(), "double: leaking {var}={value}");
        self.sh
            .out
            .raw(format!("not json, leaking {value}").as_bytes())
            .await;
        self.reply(t).await;
    }

    pub(crate) async fn spawn_grandchild(&mut self, t: &mut Turn) {
        // A tool process in the CLI's process group, as Bash tools are.
        let text = match std::process::Command::new("sleep").arg("1000").spawn() {
            Ok(child) => format!("grandchild {}", child.id()),
            Err(e) => format!("grandchild spawn failed: {e}"),
        };
        self.single_text(t, text).await;
    }

    pub(crate) async fn spawn_detached(&mut self, t: &mut Turn) {
        // A tool process that leaves the group and is orphaned (`setsid nohup ... &`).
        let script = "setsid nohup sleep 1000 >/dev/null 2>&1 & echo $!";
        let spawned = std::process::Command::new("sh")
            .args(["-c", script])
            .stdin(std::process::Stdio::null())
            .output();
        let text = match spawned {
            Ok(out) => format!("detached {}", String::from_utf8_lossy(&out.stdout).trim()),
            Err(e) => format!("detached spawn failed: {e}"),
        };
        self.single_text(t, text).await;
    }

    pub(crate) async fn multi(&mut self, t: &mut Turn) {
        let api = self.api_start(t).await;
        self.block(t, &api, Block::Thinking("Let me think about this.".into()))
            .await;
        self.block(t, &api, Block::Text("multi text 1".into()))
            .await;
        self.block(t, &api, Block::Text("multi text 2".into()))
            .await;
        self.api_stop(&api, "end_turn").await;
        self.sh
            .out
            .send(&json!({
                "type": "system",
                "subtype": "status",
                "status": null,
                "session_id": &self.sh.session_id,
                "uuid": uuid4(),
            }))
            .await;
        let outcome = Outcome::Success {
            text: "multi text 1multi text 2".into(),
            num_turns: 1,
            denials: Vec::new(),
        };
        self.result(t, outcome).await;
    }
}

/// Waits `ms` between chunks; `0` only yields (a timer would round it up to 1 ms, which
/// makes a flood of 20,000 chunks take 20 s).
async fn pause(ms: u64) {
    match ms {
        0 => tokio::task::yield_now().await,
        ms => tokio::time::sleep(Duration::from_millis(ms)).await,
    }
}
