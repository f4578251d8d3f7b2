//! The child's stream-json messages as ACP `session/update`s: what an editor shows.
//!
//! One [`Updates`] follows one ACP session's messages, live (a turn's messages) and
//! replayed (the CLI's transcript, `session/load`): text and thinking as chunks (from the
//! partial messages as they stream, so a finished message whose text already streamed is
//! not sent twice), each `tool_use` as a `tool_call` (kind, title, locations, the diff an
//! edit makes) and its `tool_result` as that call's `tool_call_update`, the todo list
//! (`TodoWrite`) as a `plan`, the CLI's slash commands as `available_commands_update`
//! (once), and a turn's result as a `usage_update`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use agent_client_protocol_schema::v1::{
    AvailableCommand, AvailableCommandInput, AvailableCommandsUpdate, ContentBlock, ContentChunk,
    Cost, Diff, Plan, PlanEntry, PlanEntryPriority, PlanEntryStatus, SessionUpdate, TextContent,
    ToolCall, ToolCallContent, ToolCallLocation, ToolCallStatus, ToolCallUpdate,
    ToolCallUpdateFields, ToolKind, UnstructuredCommandInput, UsageUpdate,
};
use serde_json::Value;

/// What the CLI's context holds when a model's window is not given in the result.
const DEFAULT_CONTEXT_WINDOW: u64 = 200_000;

/// Translates one ACP session's child messages, remembering what it needs across them.
#[derive(Default)]
pub(super) struct Updates {
    /// API messages whose text (or thinking) already streamed as deltas.
    streamed_text: HashSet<String>,
    streamed_thinking: HashSet<String>,
    /// Tool uses seen, by id: a result finds its call's name here.
    tools: HashMap<String, String>,
    /// Whether the slash commands were sent (once per session).
    commands_sent: bool,
}

impl Updates {
    /// The updates one child message (a line, decoded) makes; most make none.
    pub(super) fn of(&mut self, message: &Value) -> Vec<SessionUpdate> {
        if message
            .get("parent_tool_use_id")
            .is_some_and(|p| !p.is_null())
        {
            // A sub-agent's own steps: its call shows as the Task tool's.
            return Vec::new();
        }
        match message.get("type").and_then(Value::as_str) {
            Some("stream_event") => self.of_partial(message),
            Some("assistant") => self.of_assistant(message),
            Some("user") => self.of_user(message),
            Some("system") => self.of_system(message),
            Some("result") => vec![usage(message)],
            _ => Vec::new(),
        }
    }

    /// A partial message: text and thinking as they are written.
    fn of_partial(&mut self, message: &Value) -> Vec<SessionUpdate> {
        let Some(event) = message.get("event") else {
            return Vec::new();
        };
        if event.get("type").and_then(Value::as_str) != Some("content_block_delta") {
            return Vec::new();
        }
        let api_id = message
            .get("api_message_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let delta = event.get("delta").unwrap_or(&Value::Null);
        let text = |key| delta.get(key).and_then(Value::as_str).unwrap_or_default();
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => {
                self.streamed_text.insert(api_id);
                vec![SessionUpdate::AgentMessageChunk(chunk(text("text")))]
            }
            Some("thinking_delta") => {
                self.streamed_thinking.insert(api_id);
                vec![SessionUpdate::AgentThoughtChunk(chunk(text("thinking")))]
            }
            _ => Vec::new(),
        }
    }

    /// A finished assistant message: its text and thinking unless they streamed, and
    /// its tool uses.
    fn of_assistant(&mut self, message: &Value) -> Vec<SessionUpdate> {
        let api_id = message
            .pointer("/message/id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut updates = Vec::new();
        for block in blocks(message) {
            match block.get("type").and_then(Value::as_str) {
                Some("text") if !self.streamed_text.contains(api_id) => {
                    let text = block
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    updates.push(SessionUpdate::AgentMessageChunk(chunk(text)));
                }
                Some("thinking") if !self.streamed_thinking.contains(api_id) => {
                    let text = block
                        .get("thinking")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    updates.push(SessionUpdate::AgentThoughtChunk(chunk(text)));
                }
                Some("tool_use") => updates.extend(self.tool_use(block)),
                _ => {}
            }
        }
        updates
    }

    fn tool_use(&mut self, block: &Value) -> Option<SessionUpdate> {
        let id = block.get("id").and_then(Value::as_str)?;
        let name = block.get("name").and_then(Value::as_str).unwrap_or("tool");
        let input = block.get("input").cloned().unwrap_or(Value::Null);
        self.tools.insert(id.to_string(), name.to_string());
        if name == "TodoWrite"
            && let Some(plan) = plan(&input)
        {
            return Some(SessionUpdate::Plan(plan));
        }
        Some(SessionUpdate::ToolCall(tool_call(id, name, &input)))
    }

    /// A user message: the prompt's text (in a replay), and tool results.
    fn of_user(&mut self, message: &Value) -> Vec<SessionUpdate> {
        if message.get("isMeta").and_then(Value::as_bool) == Some(true) {
            return Vec::new();
        }
        if let Some(text) = message.pointer("/message/content").and_then(Value::as_str) {
            return vec![SessionUpdate::UserMessageChunk(chunk(text))];
        }
        let mut updates = Vec::new();
        for block in blocks(message) {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => {
                    let text = block
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    updates.push(SessionUpdate::UserMessageChunk(chunk(text)));
                }
                Some("tool_result") => updates.extend(self.tool_result(block)),
                _ => {}
            }
        }
        updates
    }

    fn tool_result(&mut self, block: &Value) -> Option<SessionUpdate> {
        let id = block.get("tool_use_id").and_then(Value::as_str)?;
        let name = self.tools.get(id)?;
        if name == "TodoWrite" {
            return None;
        }
        let failed = block.get("is_error").and_then(Value::as_bool) == Some(true);
        let status = match failed {
            true => ToolCallStatus::Failed,
            false => ToolCallStatus::Completed,
        };
        let text = result_text(block.get("content").unwrap_or(&Value::Null));
        let mut fields = ToolCallUpdateFields::new().status(status);
        if !text.is_empty() {
            fields = fields.content(vec![text_content(&text)]);
        }
        Some(SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
            id.to_string(),
            fields,
        )))
    }

    /// The slash commands were sent with their descriptions (from the CLI's warm-up
    /// answer): a turn's `system`/`init`, which names them only, adds nothing.
    pub(super) fn commands_announced(&mut self) {
        self.commands_sent = true;
    }

    /// `system`/`init`: the slash commands, the first time (names only: the warm-up
    /// answer's descriptions usually came first).
    fn of_system(&mut self, message: &Value) -> Vec<SessionUpdate> {
        if self.commands_sent || message.get("subtype").and_then(Value::as_str) != Some("init") {
            return Vec::new();
        }
        let Some(commands) = message.get("slash_commands").and_then(Value::as_array) else {
            return Vec::new();
        };
        self.commands_sent = true;
        let commands = commands
            .iter()
            .filter_map(Value::as_str)
            .map(|name| AvailableCommand::new(name, format!("/{name}")))
            .collect();
        vec![SessionUpdate::AvailableCommandsUpdate(
            AvailableCommandsUpdate::new(commands),
        )]
    }
}

/// The CLI's slash commands, with their descriptions and what they take.
pub(super) fn commands(commands: &[crate::api::CliCommand]) -> SessionUpdate {
    let commands = commands
        .iter()
        .map(|command| {
            let description = match command.description.is_empty() {
                true => format!("/{}", command.name),
                false => command.description.clone(),
            };
            let hint = (!command.argument_hint.is_empty()).then(|| {
                AvailableCommandInput::Unstructured(UnstructuredCommandInput::new(
                    command.argument_hint.clone(),
                ))
            });
            AvailableCommand::new(command.name.clone(), description).input(hint)
        })
        .collect();
    SessionUpdate::AvailableCommandsUpdate(AvailableCommandsUpdate::new(commands))
}

/// The content blocks of a message (`message.content` as an array).
fn blocks(message: &Value) -> impl Iterator<Item = &Value> {
    message
        .pointer("/message/content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

pub(super) fn chunk(text: &str) -> ContentChunk {
    ContentChunk::new(ContentBlock::Text(TextContent::new(text)))
}

fn text_content(text: &str) -> ToolCallContent {
    ToolCallContent::Content(agent_client_protocol_schema::v1::Content::new(
        ContentBlock::Text(TextContent::new(text)),
    ))
}

/// A tool use as the call an editor shows: kind, title, where, and the edit's diff.
pub(super) fn tool_call(id: &str, name: &str, input: &Value) -> ToolCall {
    ToolCall::new(id.to_string(), title(name, input))
        .kind(kind(name))
        .status(ToolCallStatus::Pending)
        .locations(locations(input))
        .content(diffs(name, input))
        .raw_input(input.clone())
}

/// The same facts as fields of an update (what `session/request_permission` carries).
pub(super) fn tool_call_fields(name: &str, input: &Value) -> ToolCallUpdateFields {
    ToolCallUpdateFields::new()
        .title(title(name, input))
        .kind(kind(name))
        .status(ToolCallStatus::Pending)
        .locations(locations(input))
        .content(diffs(name, input))
        .raw_input(input.clone())
}

fn title(name: &str, input: &Value) -> String {
    let text = |key: &str| input.get(key).and_then(Value::as_str);
    match name {
        "Read" => format!("read {}", text("file_path").unwrap_or("a file")),
        "Grep" => format!("search for `{}`", text("pattern").unwrap_or("?")),
        "Glob" => format!("find {}", text("pattern").unwrap_or("files")),
        "WebSearch" => format!("search the web for {}", text("query").unwrap_or("?")),
        "Task" | "Agent" => text("description").unwrap_or("a sub-agent").to_string(),
        _ => crate::permissions::summarise(name, input),
    }
}

fn kind(name: &str) -> ToolKind {
    match name {
        "Read" | "NotebookRead" => ToolKind::Read,
        "Edit" | "MultiEdit" | "Write" | "NotebookEdit" => ToolKind::Edit,
        "Bash" | "BashOutput" | "KillShell" | "KillBash" => ToolKind::Execute,
        "Grep" | "Glob" | "LS" | "ToolSearch" => ToolKind::Search,
        "WebFetch" | "WebSearch" => ToolKind::Fetch,
        "Task" | "Agent" => ToolKind::Think,
        "ExitPlanMode" | "EnterPlanMode" => ToolKind::SwitchMode,
        _ => ToolKind::Other,
    }
}

fn locations(input: &Value) -> Vec<ToolCallLocation> {
    let path = ["file_path", "notebook_path", "path"]
        .iter()
        .find_map(|key| input.get(*key).and_then(Value::as_str));
    let Some(path) = path else {
        return Vec::new();
    };
    let line = input
        .get("offset")
        .and_then(Value::as_u64)
        .and_then(|l| u32::try_from(l).ok());
    vec![ToolCallLocation::new(PathBuf::from(path)).line(line)]
}

/// The diffs an edit makes, as far as its input tells (the edited part, not the file).
fn diffs(name: &str, input: &Value) -> Vec<ToolCallContent> {
    let text = |value: &Value, key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let Some(path) = input.get("file_path").and_then(Value::as_str) else {
        return Vec::new();
    };
    let diff = |new: String, old: Option<String>| {
        ToolCallContent::Diff(Diff::new(PathBuf::from(path), new).old_text(old))
    };
    match name {
        "Write" => vec![diff(text(input, "content"), None)],
        "Edit" => vec![diff(
            text(input, "new_string"),
            Some(text(input, "old_string")),
        )],
        "MultiEdit" => input
            .get("edits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|edit| diff(text(edit, "new_string"), Some(text(edit, "old_string"))))
            .collect(),
        _ => Vec::new(),
    }
}

/// `TodoWrite`'s list as a plan.
fn plan(input: &Value) -> Option<Plan> {
    let todos = input.get("todos")?.as_array()?;
    let entries = todos
        .iter()
        .map(|todo| {
            let status = match todo.get("status").and_then(Value::as_str) {
                Some("completed") => PlanEntryStatus::Completed,
                Some("in_progress") => PlanEntryStatus::InProgress,
                _ => PlanEntryStatus::Pending,
            };
            let content = todo
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or_default();
            PlanEntry::new(content, PlanEntryPriority::Medium, status)
        })
        .collect();
    Some(Plan::new(entries))
}

/// A tool result's text: a string, or the text blocks of an array.
fn result_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A turn's result as context used (tokens of the last call's input and output) out of
/// the model's window, with the turn's cost.
fn usage(result: &Value) -> SessionUpdate {
    let tokens = |key: &str| {
        result
            .pointer(&format!("/usage/{key}"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let used = tokens("input_tokens")
        + tokens("cache_creation_input_tokens")
        + tokens("cache_read_input_tokens")
        + tokens("output_tokens");
    let size = result
        .get("modelUsage")
        .and_then(Value::as_object)
        .and_then(|models| {
            models
                .values()
                .filter_map(|m| m.get("contextWindow").and_then(Value::as_u64))
                .max()
        })
        .unwrap_or(DEFAULT_CONTEXT_WINDOW);
    let cost = result
        .get("total_cost_usd")
        .and_then(Value::as_f64)
        .map(|usd| Cost::new(usd, "USD"));
    SessionUpdate::UsageUpdate(UsageUpdate::new(used, size).cost(cost))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(updates: &[SessionUpdate]) -> Vec<String> {
        updates
            .iter()
            .map(|u| {
                serde_json::to_value(u).unwrap()["sessionUpdate"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn streamed_text_is_sent_once_as_it_comes() {
        let mut updates = Updates::default();
        let delta = json!({"type": "stream_event", "api_message_id": "m1", "parent_tool_use_id": null,
            "event": {"type": "content_block_delta", "index": 0,
                      "delta": {"type": "text_delta", "text": "hel"}}});
        let sent = updates.of(&delta);
        assert_eq!(kinds(&sent), ["agent_message_chunk"]);
        assert_eq!(
            serde_json::to_value(&sent[0]).unwrap()["content"]["text"],
            "hel"
        );
        let whole = json!({"type": "assistant", "parent_tool_use_id": null,
            "message": {"id": "m1", "content": [{"type": "text", "text": "hello"}]}});
        assert!(updates.of(&whole).is_empty(), "the text already streamed");
        let unstreamed = json!({"type": "assistant",
            "message": {"id": "m2", "content": [{"type": "text", "text": "bye"}]}});
        assert_eq!(kinds(&updates.of(&unstreamed)), ["agent_message_chunk"]);
    }

    #[test]
    fn a_tool_use_and_its_result_are_a_call_and_its_update() {
        let mut updates = Updates::default();
        let edit = json!({"type": "assistant", "message": {"id": "m1", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "Edit",
             "input": {"file_path": "/p/a.rs", "old_string": "a", "new_string": "b"}}]}});
        let call = serde_json::to_value(&updates.of(&edit)[0]).unwrap();
        assert_eq!(call["sessionUpdate"], "tool_call");
        assert_eq!(call["toolCallId"], "toolu_1");
        assert_eq!(call["kind"], "edit");
        assert_eq!(call["locations"][0]["path"], "/p/a.rs");
        assert_eq!(call["content"][0]["type"], "diff");
        assert_eq!(call["content"][0]["oldText"], "a");
        let result = json!({"type": "user", "message": {"content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": true,
             "content": [{"type": "text", "text": "no such file"}]}]}});
        let update = serde_json::to_value(&updates.of(&result)[0]).unwrap();
        assert_eq!(update["sessionUpdate"], "tool_call_update");
        assert_eq!(update["status"], "failed");
        assert_eq!(update["content"][0]["content"]["text"], "no such file");
    }

    #[test]
    fn the_todo_list_is_a_plan_and_commands_are_sent_once() {
        let mut updates = Updates::default();
        let todos = json!({"type": "assistant", "message": {"id": "m1", "content": [
            {"type": "tool_use", "id": "t", "name": "TodoWrite", "input": {"todos": [
                {"content": "read", "status": "completed", "activeForm": "Reading"},
                {"content": "fix", "status": "in_progress", "activeForm": "Fixing"}]}}]}});
        let plan = serde_json::to_value(&updates.of(&todos)[0]).unwrap();
        assert_eq!(plan["sessionUpdate"], "plan");
        assert_eq!(plan["entries"][1]["status"], "in_progress");
        let init =
            json!({"type": "system", "subtype": "init", "slash_commands": ["compact", "review"]});
        assert_eq!(kinds(&updates.of(&init)), ["available_commands_update"]);
        assert!(updates.of(&init).is_empty());
    }

    #[test]
    fn a_result_is_the_context_used_and_the_cost() {
        let mut updates = Updates::default();
        let result = json!({"type": "result", "total_cost_usd": 0.25,
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100},
            "modelUsage": {"claude": {"contextWindow": 1000}}});
        let usage = serde_json::to_value(&updates.of(&result)[0]).unwrap();
        assert_eq!(usage["sessionUpdate"], "usage_update");
        assert_eq!(usage["used"], 115);
        assert_eq!(usage["size"], 1000);
        assert_eq!(usage["cost"]["amount"], 0.25);
    }
}
