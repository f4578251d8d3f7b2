//! A planned reply (its content blocks, stop reason and usage) and its JSON, with the real
//! API's key order.

use std::time::Duration;

use serde_json::Value;

use crate::script::{DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS};

/// A planned reply, rendered either as SSE or as one JSON message.
pub(crate) struct Reply {
    pub(crate) blocks: Vec<Block>,
    pub(crate) stop_reason: &'static str,
    input_tokens: u64,
    pub(crate) output_tokens: u64,
}

pub(crate) enum Block {
    /// Text sent as these deltas, `delay` between two of them.
    Text {
        deltas: Vec<String>,
        delay: Duration,
    },
    /// tool_use whose input JSON is sent as `input_json_delta` pieces.
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

impl Block {
    pub(crate) fn total_delay(&self) -> Duration {
        match self {
            Block::Text { deltas, delay } => {
                *delay * u32::try_from(deltas.len().saturating_sub(1)).unwrap_or(0)
            }
            Block::ToolUse { .. } => Duration::ZERO,
        }
    }

    fn content_json(&self) -> String {
        match self {
            Block::Text { deltas, .. } => {
                obj(&[("type", jstr("text")), ("text", jstr(&deltas.concat()))])
            }
            Block::ToolUse { id, name, input } => obj(&[
                ("type", jstr("tool_use")),
                ("id", jstr(id)),
                ("name", jstr(name)),
                ("input", input.to_string()),
            ]),
        }
    }
}

impl Reply {
    pub(crate) fn text(text: &str, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply {
            blocks: vec![Block::Text {
                deltas: split_text(text),
                delay: Duration::ZERO,
            }],
            stop_reason: "end_turn",
            input_tokens,
            output_tokens,
        }
    }

    pub(crate) fn slow(ms: u64, chunks: usize) -> Reply {
        let mut blocks = vec![Block::Text {
            deltas: vec!["slow ".to_string()],
            delay: Duration::ZERO,
        }];
        if chunks > 1 {
            blocks.push(Block::Text {
                deltas: vec!["slow ".to_string(); chunks - 1],
                delay: Duration::from_millis(ms),
            });
        }
        Reply {
            blocks,
            stop_reason: "end_turn",
            input_tokens: DEFAULT_INPUT_TOKENS,
            output_tokens: u64::try_from(chunks).unwrap_or(u64::MAX),
        }
    }

    pub(crate) fn tool_use(n: usize, name: String, input: Value) -> Reply {
        Reply {
            blocks: vec![
                Block::Text {
                    deltas: split_text("I'll run a command."),
                    delay: Duration::ZERO,
                },
                Block::ToolUse {
                    id: format!("toolu_mock_{n:04}"),
                    name,
                    input,
                },
            ],
            stop_reason: "tool_use",
            input_tokens: DEFAULT_INPUT_TOKENS,
            output_tokens: DEFAULT_OUTPUT_TOKENS,
        }
    }

    /// `usage` with `output_tokens` as given (message_start reports 1).
    fn usage_json(&self, output_tokens: u64) -> String {
        obj(&[
            ("input_tokens", self.input_tokens.to_string()),
            ("output_tokens", output_tokens.to_string()),
            ("cache_creation_input_tokens", "0".to_string()),
            ("cache_read_input_tokens", "0".to_string()),
        ])
    }

    /// The message object; `content` is given so message_start can send `[]`.
    pub(crate) fn message_json(
        &self,
        id: &str,
        model: &str,
        content: &str,
        final_usage: bool,
    ) -> String {
        let (stop_reason, output_tokens) = if final_usage {
            (jstr(self.stop_reason), self.output_tokens)
        } else {
            ("null".to_string(), 1)
        };
        obj(&[
            ("id", jstr(id)),
            ("type", jstr("message")),
            ("role", jstr("assistant")),
            ("model", jstr(model)),
            ("content", content.to_string()),
            ("stop_reason", stop_reason),
            ("stop_sequence", "null".to_string()),
            ("usage", self.usage_json(output_tokens)),
        ])
    }

    pub(crate) fn content_json(&self) -> String {
        let blocks: Vec<String> = self.blocks.iter().map(Block::content_json).collect();
        format!("[{}]", blocks.join(","))
    }
}

/// JSON object text with keys in the given order; values are JSON text.
/// (The CLI copies the API's key order into its `assistant` lines, so the mock keeps the
/// real API's order, written out here rather than left to serde_json's `preserve_order`,
/// which this crate does not ask for.)
pub(crate) fn obj(fields: &[(&str, String)]) -> String {
    let members: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", jstr(k)))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// A JSON string literal.
pub(crate) fn jstr(s: &str) -> String {
    Value::from(s).to_string()
}

/// Splits text into a few word-aligned deltas, as the real API streams it.
fn split_text(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, word) in text.split_inclusive(' ').enumerate() {
        cur.push_str(word);
        if i % 3 == 2 {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits a string into pieces of at most `size` chars.
pub(crate) fn split_chars(s: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}
