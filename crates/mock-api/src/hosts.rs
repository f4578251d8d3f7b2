//! The model of an MCP host that is not Claude Code, on the same mock: Codex CLI over the
//! OpenAI Responses API (`POST /v1/responses`, its `wire_api = "responses"`) and Gemini CLI
//! over the Gemini API (`POST /v1beta/models/<model>:streamGenerateContent?alt=sse`, and
//! `:generateContent`).
//!
//! A [`HostModel`] makes its planned calls of one MCP server's tools, one per request, then
//! ends the turn with a text quoting the last tool output. Both wires carry the whole
//! conversation in every request, so it decides from the request alone, as
//! [`OuterModel`](crate::OuterModel) does: the calls made so far are the function calls of
//! the history. Each host names an MCP tool its own way (Codex: function `ask` in the
//! namespace `mcp__claude_coded`; Gemini: `mcp_claude-coded_ask`); the model finds the tool
//! in the request's tool list and calls it by the host's name, as a real model would.
//!
//! [`HostToolOutput`] is a tool's result as the host gave it back to its model (the bytes
//! the model reads), taken from the next request: Codex's `function_call_output.output`,
//! Gemini's `functionResponse.response`.

use serde_json::{Value, json};

use crate::outer::{TURN_ID, ToolCall};
use crate::request::RecordedRequest;

/// The two wires of the hosts this module speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostWire {
    /// OpenAI Responses API (Codex CLI).
    Responses,
    /// Gemini API (Gemini CLI); `stream` for `:streamGenerateContent`.
    Gemini { stream: bool },
}

impl HostWire {
    /// The wire of a request, if it is a host model's request.
    pub fn of(request: &RecordedRequest) -> Option<HostWire> {
        if request.method != "POST" {
            return None;
        }
        if request.path.ends_with("/responses") {
            Some(HostWire::Responses)
        } else if request.path.ends_with(":streamGenerateContent") {
            Some(HostWire::Gemini { stream: true })
        } else if request.path.ends_with(":generateContent") {
            Some(HostWire::Gemini { stream: false })
        } else {
            None
        }
    }
}

/// A tool of our server as the host offered it to its model: the function `name`, inside
/// `namespace` when the host groups a server's tools (Codex).
#[derive(Debug, Clone, PartialEq)]
pub struct Offered {
    pub namespace: Option<String>,
    pub name: String,
}

/// A function call the host's model made, from the conversation history.
#[derive(Debug, Clone, PartialEq)]
pub struct HostToolCall {
    /// The call's id (Codex `call_id`, Gemini `functionCall.id`; may be empty).
    pub id: String,
    /// The server's own tool name (`ask`), or the host's name for other tools.
    pub tool: String,
    /// The arguments as the model sent them.
    pub args: Value,
}

/// A tool's result as the host gave it back to its model.
#[derive(Debug, Clone, PartialEq)]
pub struct HostToolOutput {
    pub id: String,
    /// The server's own tool name (`ask`), or the host's name for other tools.
    pub tool: String,
    /// What the model reads: Codex's output string (or its text items joined), Gemini's
    /// `response.output` or `response.error` string (else the response's JSON).
    pub text: String,
    /// The whole item (Codex `function_call_output`, Gemini `functionResponse`).
    pub raw: Value,
}

impl HostToolOutput {
    pub fn bytes(&self) -> usize {
        self.text.len()
    }
}

/// What the model answers to one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HostStep {
    Call { offered: Offered, args: Value },
    Text(String),
}

/// A scripted model for a host that is not Claude Code: the planned calls of the server
/// `server`'s tools (by the server's own names, e.g. `ask`), one per request, then a text
/// that quotes the last tool output. A planned input's [`TURN_ID`] placeholders take the
/// `turnId` of the latest output that has one.
#[derive(Debug, Clone)]
pub struct HostModel {
    server: String,
    calls: Vec<ToolCall>,
}

impl HostModel {
    pub fn new(server: &str, calls: Vec<ToolCall>) -> HostModel {
        HostModel {
            server: server.to_string(),
            calls,
        }
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// The next answer in this conversation.
    pub(crate) fn step(&self, wire: HostWire, body: &Value) -> HostStep {
        // A side request for JSON (Gemini's loop check after 30 turns, its model router):
        // an answer of that schema that lets the turn go on.
        if let Some(schema) = json_schema_asked(body) {
            return HostStep::Text(sample_of(schema).to_string());
        }
        let made = calls(wire, body, &self.server).len();
        let outputs = outputs(wire, body, &self.server);
        let Some(next) = self.calls.get(made) else {
            return HostStep::Text(quote_last(&outputs));
        };
        match offered(wire, body, &self.server, &next.name) {
            Some(offered) => HostStep::Call {
                offered,
                args: with_turn_id(&next.input, &outputs),
            },
            None => HostStep::Text(format!(
                "outer model: the host did not offer {} of {}; it offered {:?}",
                next.name,
                self.server,
                offered_names(wire, body)
            )),
        }
    }
}

/// The schema of the JSON a request asks for (Gemini's `generationConfig.responseMimeType`
/// `application/json`), if it asks for JSON.
fn json_schema_asked(body: &Value) -> Option<&Value> {
    let config = body.get("generationConfig")?;
    (config["responseMimeType"] == "application/json").then(|| {
        config
            .get("responseJsonSchema")
            .or_else(|| config.get("responseSchema"))
            .unwrap_or(&Value::Null)
    })
}

/// A value of `schema` that says "nothing to see": empty strings but for a word, zeros,
/// `false`, the first of an enum.
fn sample_of(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    let kind = schema["type"]
        .as_str()
        .unwrap_or("object")
        .to_ascii_lowercase();
    match kind.as_str() {
        "string" => json!("mock"),
        "number" | "integer" => json!(0),
        "boolean" => json!(false),
        "array" => json!([]),
        _ => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), sample_of(v)))
                .collect(),
        ),
    }
}

/// `outer model got <tool>: <text>` for the last output, or `outer model: done`.
fn quote_last(outputs: &[HostToolOutput]) -> String {
    match outputs.last() {
        Some(o) => format!("outer model got {}: {}", o.tool, o.text),
        None => "outer model: done".to_string(),
    }
}

/// `input` with [`TURN_ID`] replaced by the latest output's `turnId`, as a model would copy
/// it from there.
fn with_turn_id(input: &Value, outputs: &[HostToolOutput]) -> Value {
    let text = input.to_string();
    if !text.contains(TURN_ID) {
        return input.clone();
    }
    let Some(id) = outputs.iter().rev().find_map(|o| turn_id_in(&o.text)) else {
        return input.clone();
    };
    serde_json::from_str(&text.replace(TURN_ID, &id)).unwrap_or_else(|_| input.clone())
}

/// The first `turnId` value in `text`: `"turnId":"<id>"` (JSON) or `turnId <id>` /
/// `turnId: <id>` (prose), the id being letters, digits, `-` and `_`.
pub fn turn_id_in(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(at) = rest.find("turnId") {
        rest = &rest[at + "turnId".len()..];
        let value = rest.trim_start_matches(['"', ':', ' ', '=', '`']);
        let id: String = value
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if id.len() >= 8 {
            return Some(id);
        }
    }
    None
}

/// Codex's name for a server in tool names: what is not a letter, digit or `_` becomes `_`.
fn codex_server(server: &str) -> String {
    server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The server's own tool name in a host's function name (`mcp__claude_coded__ask` or
/// `mcp_claude-coded_ask` give `ask`), or the name unchanged for other tools.
fn own_tool(wire: HostWire, server: &str, namespace: Option<&str>, name: &str) -> String {
    let (ns, prefix) = match wire {
        HostWire::Responses => {
            let s = codex_server(server);
            (format!("mcp__{s}"), format!("mcp__{s}__"))
        }
        HostWire::Gemini { .. } => (String::new(), format!("mcp_{server}_")),
    };
    if namespace.is_some_and(|n| n.trim_end_matches('_') == ns) {
        return name.to_string();
    }
    name.strip_prefix(&prefix).unwrap_or(name).to_string()
}

/// Every function call of the conversation, in order.
pub(crate) fn calls(wire: HostWire, body: &Value, server: &str) -> Vec<HostToolCall> {
    match wire {
        HostWire::Responses => items_of(body, "function_call")
            .map(|item| HostToolCall {
                id: str_of(item, "call_id"),
                tool: own_tool(
                    wire,
                    server,
                    item["namespace"].as_str(),
                    &str_of(item, "name"),
                ),
                args: item["arguments"]
                    .as_str()
                    .and_then(|a| serde_json::from_str(a).ok())
                    .unwrap_or(Value::Null),
            })
            .collect(),
        HostWire::Gemini { .. } => parts_of(body, "model", "functionCall")
            .map(|call| HostToolCall {
                id: str_of(call, "id"),
                tool: own_tool(wire, server, None, &str_of(call, "name")),
                args: call.get("args").cloned().unwrap_or(Value::Null),
            })
            .collect(),
    }
}

/// Every tool output of the conversation, in order.
pub(crate) fn outputs(wire: HostWire, body: &Value, server: &str) -> Vec<HostToolOutput> {
    match wire {
        HostWire::Responses => {
            let calls = calls(wire, body, server);
            items_of(body, "function_call_output")
                .map(|item| {
                    let id = str_of(item, "call_id");
                    let tool = calls
                        .iter()
                        .find(|c| c.id == id)
                        .map_or_else(String::new, |c| c.tool.clone());
                    HostToolOutput {
                        text: output_text(&item["output"]),
                        id,
                        tool,
                        raw: item.clone(),
                    }
                })
                .collect()
        }
        HostWire::Gemini { .. } => parts_of(body, "user", "functionResponse")
            .map(|response| HostToolOutput {
                id: str_of(response, "id"),
                tool: own_tool(wire, server, None, &str_of(response, "name")),
                text: response_text(&response["response"]),
                raw: response.clone(),
            })
            .collect(),
    }
}

/// Codex's `output`: a string, or content items whose texts are joined with newlines.
fn output_text(output: &Value) -> String {
    match output {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

/// Gemini's `response`: its `output` or `error` string, else its JSON.
fn response_text(response: &Value) -> String {
    ["output", "error"]
        .iter()
        .find_map(|k| response[*k].as_str())
        .map_or_else(|| response.to_string(), str::to_string)
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// Codex's `input` items of one type.
fn items_of<'a>(body: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |i| i["type"] == kind)
}

/// Gemini's parts of one kind (`functionCall`, `functionResponse`) in `role`'s contents.
fn parts_of<'a>(
    body: &'a Value,
    role: &'a str,
    kind: &'a str,
) -> impl Iterator<Item = &'a Value> + 'a {
    body["contents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |c| c["role"] == role)
        .filter_map(|c| c["parts"].as_array())
        .flatten()
        .filter_map(move |p| p.get(kind))
}

/// How the request offers the server's tool `tool`, if it does.
fn offered(wire: HostWire, body: &Value, server: &str, tool: &str) -> Option<Offered> {
    match wire {
        HostWire::Responses => {
            let s = codex_server(server);
            let tools = body["tools"].as_array()?;
            let in_namespace = tools.iter().find_map(|t| {
                let ns = t["name"].as_str()?;
                let ours =
                    t["type"] == "namespace" && ns.trim_end_matches('_') == format!("mcp__{s}");
                let has = t["tools"].as_array()?.iter().any(|f| f["name"] == tool);
                (ours && has).then(|| Offered {
                    namespace: Some(ns.to_string()),
                    name: tool.to_string(),
                })
            });
            let flat = format!("mcp__{s}__{tool}");
            in_namespace.or_else(|| {
                tools
                    .iter()
                    .any(|t| t["name"] == flat.as_str())
                    .then_some(Offered {
                        namespace: None,
                        name: flat,
                    })
            })
        }
        HostWire::Gemini { .. } => {
            let name = format!("mcp_{server}_{tool}");
            gemini_declarations(body)
                .any(|d| d["name"] == name.as_str())
                .then_some(Offered {
                    namespace: None,
                    name,
                })
        }
    }
}

/// Gemini's function declarations.
fn gemini_declarations(body: &Value) -> impl Iterator<Item = &Value> {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["functionDeclarations"].as_array())
        .flatten()
}

/// The tool names a request offers (Codex: `namespace.function` for grouped tools).
pub fn offered_names(wire: HostWire, body: &Value) -> Vec<String> {
    offered_schemas(wire, body)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// The tool declarations of a request as the model reads them: `(name, schema)` of each
/// (Codex `parameters`; Gemini `parametersJsonSchema` or `parameters`).
pub fn offered_schemas(wire: HostWire, body: &Value) -> Vec<(String, Value)> {
    match wire {
        HostWire::Responses => body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| {
                let name = str_of(t, "name");
                match t["tools"].as_array() {
                    Some(inner) => inner
                        .iter()
                        .map(|f| {
                            (
                                format!("{name}.{}", str_of(f, "name")),
                                f["parameters"].clone(),
                            )
                        })
                        .collect(),
                    None => vec![(name, t["parameters"].clone())],
                }
            })
            .collect(),
        HostWire::Gemini { .. } => gemini_declarations(body)
            .map(|d| {
                let schema = d
                    .get("parametersJsonSchema")
                    .or_else(|| d.get("parameters"))
                    .cloned()
                    .unwrap_or(Value::Null);
                (str_of(d, "name"), schema)
            })
            .collect(),
    }
}

/// The events of one answer: SSE `data` payloads with their event names (Codex), or one
/// payload without a name (Gemini).
pub(crate) fn answer_events(
    wire: HostWire,
    step: &HostStep,
    n: usize,
) -> Vec<(Option<&'static str>, Value)> {
    match wire {
        HostWire::Responses => responses_events(step, n),
        HostWire::Gemini { .. } => vec![(None, gemini_chunk(step))],
    }
}

/// `response.created`, the item added and done, `response.completed` (what Codex reads).
fn responses_events(step: &HostStep, n: usize) -> Vec<(Option<&'static str>, Value)> {
    let id = format!("resp_mock_{n:04}");
    let item = match step {
        HostStep::Call { offered, args } => {
            let mut item = json!({
                "type": "function_call",
                "id": format!("fc_mock_{n:04}"),
                "call_id": format!("call_mock_{n:04}"),
                "name": offered.name,
                "arguments": args.to_string(),
                "status": "completed",
            });
            if let Some(ns) = &offered.namespace {
                item["namespace"] = json!(ns);
            }
            item
        }
        HostStep::Text(text) => json!({
            "type": "message",
            "id": format!("msg_mock_{n:04}"),
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }),
    };
    vec![
        (
            Some("response.created"),
            json!({"type": "response.created", "response": {"id": id, "status": "in_progress"}}),
        ),
        (
            Some("response.output_item.added"),
            json!({"type": "response.output_item.added", "output_index": 0, "item": item}),
        ),
        (
            Some("response.output_item.done"),
            json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
        ),
        (
            Some("response.completed"),
            json!({"type": "response.completed", "response": {
                "id": id, "status": "completed",
                "usage": {"input_tokens": 10, "input_tokens_details": null,
                          "output_tokens": 5, "output_tokens_details": null, "total_tokens": 15}
            }}),
        ),
    ]
}

/// One `GenerateContentResponse` with the whole answer.
pub(crate) fn gemini_chunk(step: &HostStep) -> Value {
    let part = match step {
        HostStep::Call { offered, args } => {
            json!({"functionCall": {"name": offered.name, "args": args}})
        }
        HostStep::Text(text) => json!({"text": text}),
    };
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": [part]},
            "finishReason": "STOP",
            "index": 0
        }],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
        "modelVersion": "gemini-mock"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_id_is_found_in_json_and_in_prose() {
        let json = r#"{"ok":true,"turnId":"t-1234abcd","session":"default"}"#;
        assert_eq!(turn_id_in(json).as_deref(), Some("t-1234abcd"));
        let prose = "running · call `wait` with turnId 0123456789ab";
        assert_eq!(turn_id_in(prose).as_deref(), Some("0123456789ab"));
        assert_eq!(turn_id_in("no turn here"), None);
    }

    #[test]
    fn a_request_for_json_gets_a_value_of_its_schema() {
        let body = json!({"generationConfig": {"responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object", "properties": {
                "analysis": {"type": "string"}, "confidence": {"type": "number"},
                "model_choice": {"type": "string", "enum": ["flash", "pro"]}}}}});
        let model = HostModel::new("claude-coded", Vec::new());
        let step = model.step(HostWire::Gemini { stream: false }, &body);
        let expected = json!({"analysis": "mock", "confidence": 0, "model_choice": "flash"});
        assert_eq!(step, HostStep::Text(expected.to_string()));
    }

    #[test]
    fn codex_names_a_servers_tool_in_its_namespace() {
        let wire = HostWire::Responses;
        assert_eq!(
            own_tool(wire, "claude-coded", Some("mcp__claude_coded"), "ask"),
            "ask"
        );
        assert_eq!(
            own_tool(wire, "claude-coded", None, "mcp__claude_coded__wait"),
            "wait"
        );
        let gemini = HostWire::Gemini { stream: true };
        assert_eq!(
            own_tool(gemini, "claude-coded", None, "mcp_claude-coded_ask"),
            "ask"
        );
    }
}
