//! Two CLIs on one mock (the real CLI as an MCP host whose MCP server runs another CLI):
//! the host's conversation gets a scripted [`OuterModel`], every other request the inner
//! script.

use serde_json::{Value, json};

use crate::request::{content_text, first_user_prompt, tool_names, tool_results, tool_uses};
use crate::script::{Behavior, MessagesCall, Script};

impl Script {
    /// One mock for an MCP host CLI and the CLI its MCP server runs: requests of the
    /// conversation `outer` owns (see [`OuterModel::owns`]) get its next step, all others
    /// go to `inner` (`None` means prompt parsing, as without a script).
    pub fn host(
        outer: OuterModel,
        inner: impl Fn(&MessagesCall<'_>) -> Option<Behavior> + Send + Sync + 'static,
    ) -> Self {
        Script::func(move |call| {
            if outer.owns(&call.request.body) {
                Some(outer.step(&call.request.body))
            } else {
                inner(call)
            }
        })
    }
}

/// The host's tool that loads the schemas of deferred tools (Claude Code 2.1.x defers
/// MCP tools: the model sees their names and must load them before the first call).
pub const TOOL_SEARCH: &str = "ToolSearch";

/// The `ToolSearch` input that loads exactly the tool `name` (the form the host's
/// system prompt asks for: `select:<name>[,<name>...]`).
pub fn tool_search_input(name: &str) -> Value {
    json!({"query": format!("select:{name}"), "max_results": 1})
}

/// One tool call of an [`OuterModel`].
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub input: Value,
}

impl ToolCall {
    pub fn new(name: &str, input: Value) -> ToolCall {
        ToolCall {
            name: name.to_string(),
            input,
        }
    }
}

/// A scripted model for the host side: makes its planned tool calls one per request, in
/// order, then ends the turn with a text that quotes the last tool result.
///
/// It decides from the request alone (no state), so it survives retries: the calls
/// already made are the non-`ToolSearch` `tool_use` blocks of the history. A planned tool
/// the request's `tools` list does not carry yet is first loaded with `ToolSearch`; if it
/// is still missing after that, the model gives up with a text saying so instead of
/// asking again.
#[derive(Debug, Clone)]
pub struct OuterModel {
    marker: String,
    calls: Vec<ToolCall>,
}

impl OuterModel {
    /// `marker` must start the outer CLI's prompt and no other conversation's.
    pub fn new(marker: &str, calls: Vec<ToolCall>) -> OuterModel {
        OuterModel {
            marker: marker.to_string(),
            calls,
        }
    }

    /// True when the conversation started with the marker.
    pub fn owns(&self, body: &Value) -> bool {
        first_user_prompt(body).starts_with(&self.marker)
    }

    /// The next answer in this conversation.
    pub fn step(&self, body: &Value) -> Behavior {
        let uses = tool_uses(body);
        let made = uses.iter().filter(|u| u.name != TOOL_SEARCH).count();
        let Some(next) = self.calls.get(made) else {
            return Behavior::Text(quote_last_tool_result(body));
        };
        if tool_names(body).contains(&next.name) {
            return Behavior::ToolUse {
                name: next.name.clone(),
                input: with_turn_id(&next.input, body),
            };
        }
        let search = tool_search_input(&next.name);
        if uses
            .iter()
            .any(|u| u.name == TOOL_SEARCH && u.input == search)
        {
            return Behavior::Text(format!(
                "outer model: {TOOL_SEARCH} did not load {}",
                next.name
            ));
        }
        Behavior::ToolUse {
            name: TOOL_SEARCH.to_string(),
            input: search,
        }
    }
}

/// A planned input's [`TURN_ID`] placeholders, replaced with the `turnId` that the
/// latest tool result carrying one gave (as a model would copy it from there).
fn with_turn_id(input: &Value, body: &Value) -> Value {
    let text = input.to_string();
    if !text.contains(TURN_ID) {
        return input.clone();
    }
    // Every tool result of the conversation, not only the last message's.
    let results = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| content_text(b.get("content")));
    let Some(id) = results.filter_map(|text| turn_id_in(&text)).next_back() else {
        return input.clone();
    };
    serde_json::from_str(&text.replace(TURN_ID, &id)).unwrap_or_else(|_| input.clone())
}

/// Stands for the `turnId` of the latest tool result that has one, in a planned input.
pub const TURN_ID: &str = "{{turnId}}";

/// The value of the first `"turnId":"..."` in `text`.
fn turn_id_in(text: &str) -> Option<String> {
    let start = text.find("\"turnId\":\"")? + "\"turnId\":\"".len();
    let len = text[start..].find('"')?;
    Some(text[start..start + len].to_string())
}

/// `outer model got <tool> (is_error=..): <whole text>` for the last tool result, or
/// `outer model: done` when the last user message has none.
fn quote_last_tool_result(body: &Value) -> String {
    match tool_results(body).pop() {
        Some(r) => format!(
            "outer model got {} (is_error={}): {}",
            r.tool_name.as_deref().unwrap_or("?"),
            r.is_error,
            r.text()
        ),
        None => "outer model: done".to_string(),
    }
}
