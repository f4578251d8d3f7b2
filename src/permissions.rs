//! Permissions: the user's policy, and the questions the child asks under it.
//!
//! Besides `can_use_tool`, the CLI relays its MCP servers' questions to the user
//! (`elicitation` control requests): they are questions of the same kind here, put to the
//! client the same way (a form the server asked for), and never answered by the policy
//! alone: with nobody to ask, they are declined.
//!
//! The CLI runs with `--permission-prompt-tool stdio`: what its own rules (the mode,
//! `--allowedTools`, `--disallowedTools`, the user's settings) leave open, it asks us as
//! a `can_use_tool` control request. The policy says who decides: the client (`relay`),
//! or nobody (`deny`, `allow`). A relayed question goes to whoever the turn's surface can
//! ask (an MCP client through elicitation, a plain client that opted in through a
//! `permission/request`), with a deadline; with nobody to ask, it is denied at once and
//! the denial says what the user could configure.
//!
//! The outer model cannot widen the policy: an `ask` may choose a permission mode only
//! up to the ceiling (by default the configured mode), and decisions come from the
//! client, never from the ask's parameters.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

/// The CLI's permission modes, from the least to the most it lets the agent do alone.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "camelCase")]
#[value(rename_all = "camelCase")]
pub enum PermissionMode {
    /// Read-only planning: no edits, no commands.
    Plan,
    /// Denies what is not pre-approved, asks nothing.
    DontAsk,
    /// Asks for what the rules leave open (the CLI's default).
    Default,
    /// Accepts file edits without asking.
    AcceptEdits,
    /// A classifier approves what it judges safe.
    Auto,
    /// Everything is allowed (the CLI refuses this as root unless `IS_SANDBOX=1`).
    BypassPermissions,
}

impl PermissionMode {
    /// As the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::Plan => "plan",
            PermissionMode::DontAsk => "dontAsk",
            PermissionMode::Default => "default",
            PermissionMode::AcceptEdits => "acceptEdits",
            PermissionMode::Auto => "auto",
            PermissionMode::BypassPermissions => "bypassPermissions",
        }
    }

    /// Whether this mode lets the agent do no more than `ceiling` does.
    pub fn within(self, ceiling: PermissionMode) -> bool {
        self.rank() <= ceiling.rank()
    }

    fn rank(self) -> u8 {
        self as u8
    }
}

/// Who decides what the CLI's rules leave open.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "camelCase")]
#[value(rename_all = "camelCase")]
pub enum Decider {
    /// The client of the ask (elicitation on MCP, `permission/request` on the plain
    /// surface when the ask opted in); denied when there is nobody to ask.
    Relay,
    /// Nobody: denied at once.
    Deny,
    /// Nobody: allowed at once (the CLI's deny rules still hold).
    Allow,
}

impl std::fmt::Display for Decider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decider::Relay => "relay",
            Decider::Deny => "deny",
            Decider::Allow => "allow",
        })
    }
}

impl std::fmt::Display for PermissionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `can_use_tool` request of the child, as a question for whoever decides.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Question {
    /// The child's request id (answers go back under it).
    pub(crate) request_id: String,
    pub(crate) tool_name: String,
    /// The tool's input, as the child gave it (secrets masked only in what is recorded).
    pub(crate) input: Value,
    /// A short readable account of what the tool would do.
    pub(crate) summary: String,
    /// Why the CLI asks (`decision_reason`, `description`), and the path it guards.
    pub(crate) reason: Option<String>,
    pub(crate) blocked_path: Option<String>,
    /// The rule that "allow for this session" adds, when the CLI suggested one.
    pub(crate) session_rule: Option<Value>,
    /// For `AskUserQuestion`: the questions and their options.
    pub(crate) user_questions: Vec<UserQuestion>,
    /// The tool use it is about (`tool_use_id`), when the CLI says: an ACP client shows
    /// the question on that tool call.
    pub(crate) tool_use_id: Option<String>,
    /// For an MCP server's question (an `elicitation` request): what it asks.
    pub(crate) elicitation: Option<Elicitation>,
}

/// An MCP server's question to the user, as the CLI relays it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Elicitation {
    /// The server's name in the CLI's MCP configuration.
    pub(crate) server: String,
    pub(crate) message: String,
    /// The form's JSON Schema (an object of primitive fields), for a form.
    pub(crate) schema: Option<Value>,
    /// The page to open, for a URL elicitation (no form).
    pub(crate) url: Option<String>,
}

/// One question of an `AskUserQuestion` tool use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserQuestion {
    pub(crate) question: String,
    pub(crate) options: Vec<String>,
    pub(crate) multi_select: bool,
}

/// What was decided about a question.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Allowed; `remember` adds the suggested rule for the rest of the session;
    /// `answers` answers an `AskUserQuestion` (question text to the chosen label(s)).
    Allow {
        remember: bool,
        answers: Map<String, Value>,
    },
    /// Denied, with a message for the agent (an MCP server's question: declined).
    Deny { message: String },
    /// An MCP server's question answered: `accept` with the form's `content`, `decline`
    /// or `cancel` (for a tool's question, a denial).
    Answered {
        action: ElicitAction,
        content: Option<Value>,
    },
}

/// How a person answered an MCP server's question (MCP's `ElicitResult.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum ElicitAction {
    Accept,
    Decline,
    Cancel,
}

/// A question handed to the surface, and where its answer goes.
pub(crate) struct Asked {
    pub(crate) question: Question,
    pub(crate) reply: oneshot::Sender<Decision>,
}

/// How an ask's surface is asked questions (given by the surface with the ask).
pub(crate) type Asker = mpsc::Sender<Asked>;

/// Runs `ask` for each question of a turn, several at once if the agent asks them so;
/// returns when the turn can ask no more (its asker is dropped) and every `ask` is done.
/// Each surface supplies how it asks its client.
pub(crate) async fn relay_each<F, Fut>(questions: Option<mpsc::Receiver<Asked>>, ask: F)
where
    F: Fn(Asked) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(mut questions) = questions else {
        return;
    };
    let mut open = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            asked = questions.recv() => match asked {
                Some(asked) => {
                    open.spawn(ask(asked));
                }
                None => break,
            },
            Some(_) = open.join_next(), if !open.is_empty() => {}
        }
    }
    while open.join_next().await.is_some() {}
}

impl Question {
    /// The question in a `can_use_tool` request (`request` is its `request` object).
    pub(crate) fn from_request(request_id: &str, request: &Value) -> Question {
        let text = |key: &str| request.get(key).and_then(Value::as_str).map(str::to_owned);
        let tool_name = text("tool_name").unwrap_or_else(|| "an unnamed tool".to_string());
        let input = request.get("input").cloned().unwrap_or(Value::Null);
        let user_questions = match tool_name.as_str() {
            "AskUserQuestion" => user_questions(&input),
            _ => Vec::new(),
        };
        Question {
            request_id: request_id.to_string(),
            summary: summarise(&tool_name, &input),
            reason: text("decision_reason").or_else(|| text("description")),
            blocked_path: text("blocked_path"),
            session_rule: session_rule(request),
            tool_use_id: text("tool_use_id"),
            elicitation: None,
            tool_name,
            input,
            user_questions,
        }
    }

    /// An MCP server's question (`request` is the `elicitation` control request's
    /// `request` object).
    pub(crate) fn from_elicitation(request_id: &str, request: &Value) -> Question {
        let text = |key: &str| request.get(key).and_then(Value::as_str).map(str::to_owned);
        let server = text("mcp_server_name").unwrap_or_else(|| "an MCP server".to_string());
        let message = text("message").unwrap_or_default();
        let url = text("url").filter(|_| text("mode").as_deref() == Some("url"));
        let summary = format!(
            "answer {server}'s question: {}",
            crate::text::truncate_chars(message.clone(), SUMMARY_CHARS)
        );
        Question {
            request_id: request_id.to_string(),
            tool_name: format!("mcp__{server}"),
            input: request
                .get("requested_schema")
                .cloned()
                .unwrap_or(Value::Null),
            summary,
            reason: None,
            blocked_path: None,
            session_rule: None,
            user_questions: Vec::new(),
            tool_use_id: None,
            elicitation: Some(Elicitation {
                schema: request
                    .get("requested_schema")
                    .cloned()
                    .filter(|_| url.is_none()),
                server,
                message,
                url,
            }),
        }
    }

    /// Whether this asks the user something rather than for a tool's permission.
    pub(crate) fn is_user_question(&self) -> bool {
        self.tool_name == "AskUserQuestion" && self.elicitation.is_none()
    }

    /// Whether only a person may answer it (a question to the user, or an MCP server's):
    /// the `allow` policy answers tools' questions, never these.
    pub(crate) fn needs_a_person(&self) -> bool {
        self.is_user_question() || self.elicitation.is_some()
    }

    /// The child's answer for `decision`: the `response` of a `control_response`.
    pub(crate) fn response(&self, decision: &Decision) -> Value {
        if self.elicitation.is_some() {
            return match decision {
                Decision::Answered {
                    action: ElicitAction::Accept,
                    content,
                } => json!({ "action": "accept", "content": content.clone().unwrap_or(json!({})) }),
                Decision::Answered { action, .. } => json!({ "action": action }),
                Decision::Allow { .. } | Decision::Deny { .. } => json!({ "action": "decline" }),
            };
        }
        match decision {
            Decision::Allow { remember, answers } => {
                let mut input = self.input.clone();
                if self.is_user_question()
                    && let Value::Object(fields) = &mut input
                {
                    fields.insert("answers".into(), Value::Object(answers.clone()));
                }
                let mut response = json!({ "behavior": "allow", "updatedInput": input });
                if let (true, Some(rule)) = (*remember, &self.session_rule) {
                    response["updatedPermissions"] = json!([rule]);
                }
                response
            }
            Decision::Deny { message } => json!({ "behavior": "deny", "message": message }),
            Decision::Answered { .. } => {
                json!({ "behavior": "deny", "message": "The question was not answered." })
            }
        }
    }
}

/// "Allow for this session" as an `updatedPermissions` entry: the CLI's own suggested
/// rule, kept to the session (never written to the user's settings files).
fn session_rule(request: &Value) -> Option<Value> {
    let suggestions = request.get("permission_suggestions")?.as_array()?;
    let rules = suggestions
        .iter()
        .find(|s| s.get("type").and_then(Value::as_str) == Some("addRules"))?
        .get("rules")?
        .clone();
    Some(
        json!({ "type": "addRules", "rules": rules, "behavior": "allow",
                 "destination": "session" }),
    )
}

fn user_questions(input: &Value) -> Vec<UserQuestion> {
    let Some(questions) = input.get("questions").and_then(Value::as_array) else {
        return Vec::new();
    };
    questions
        .iter()
        .filter_map(|q| {
            let question = q.get("question")?.as_str()?.to_string();
            let options = q
                .get("options")
                .and_then(Value::as_array)
                .map(|options| {
                    options
                        .iter()
                        .filter_map(|o| o.get("label").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let multi_select = q.get("multiSelect").and_then(Value::as_bool) == Some(true);
            Some(UserQuestion {
                question,
                options,
                multi_select,
            })
        })
        .collect()
}

/// Characters of a command or text shown in a summary.
const SUMMARY_CHARS: usize = 200;

/// What a tool would do, in a line a person can judge: the command, the file and the
/// size of the edit, or the tool's name and input keys.
pub(crate) fn summarise(tool_name: &str, input: &Value) -> String {
    let text = |key: &str| input.get(key).and_then(Value::as_str);
    let cut = |s: &str| crate::text::truncate_chars(s.to_string(), SUMMARY_CHARS);
    let size = |key: &str| text(key).map_or(0, str::len);
    match tool_name {
        "Bash" => format!("run `{}`", cut(text("command").unwrap_or("?"))),
        "Write" => format!(
            "write {} ({} bytes)",
            text("file_path").unwrap_or("a file"),
            size("content")
        ),
        "Edit" | "MultiEdit" => format!(
            "edit {} (replace {} bytes with {})",
            text("file_path").unwrap_or("a file"),
            size("old_string"),
            size("new_string")
        ),
        "NotebookEdit" => format!("edit notebook {}", text("notebook_path").unwrap_or("?")),
        "WebFetch" => format!("fetch {}", text("url").unwrap_or("a URL")),
        "AskUserQuestion" => "ask you a question".to_string(),
        other => {
            let keys: Vec<&str> = input
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            format!("use {other} ({})", keys.join(", "))
        }
    }
}

/// The denial when nobody could be asked, saying what the user could configure.
pub(crate) fn nobody_to_ask(question: &Question, decider: Decider) -> String {
    if question.is_user_question() {
        return "No user is available to answer questions in this session; continue with \
                your best judgement and state the assumptions you made."
            .to_string();
    }
    let why = match decider {
        Decider::Deny => "claude-coded's permission policy denies what the rules leave open",
        _ => "nobody could be asked (the client cannot answer permission questions)",
    };
    format!(
        "Permission to use {} was denied: {why}. The user can allow it with \
         --allow-tool '{}' (or a broader rule) or --permission-mode.",
        question.tool_name,
        suggested_rule(question)
    )
}

/// A rule in the CLI's syntax that would allow this use: `Bash(git diff:*)`-like.
fn suggested_rule(question: &Question) -> String {
    let rule = question
        .session_rule
        .as_ref()
        .and_then(|r| r.pointer("/rules/0"))
        .and_then(|rule| {
            let tool = rule.get("toolName")?.as_str()?;
            Some(match rule.get("ruleContent").and_then(Value::as_str) {
                Some(content) => format!("{tool}({content})"),
                None => tool.to_string(),
            })
        });
    rule.unwrap_or_else(|| question.tool_name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bash_request() -> Value {
        json!({"subtype": "can_use_tool", "tool_name": "Bash",
               "input": {"command": "touch x.txt", "description": "Make a file"},
               "description": "Make a file",
               "permission_suggestions": [
                   {"type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": "touch x.txt"}],
                    "behavior": "allow", "destination": "localSettings"},
                   {"type": "setMode", "mode": "acceptEdits", "destination": "session"}],
               "blocked_path": "/p/x.txt", "tool_use_id": "toolu_1"})
    }

    #[test]
    fn modes_are_ordered_from_the_least_to_the_most_permissive() {
        use PermissionMode::*;
        assert!(Plan.within(Default));
        assert!(AcceptEdits.within(AcceptEdits));
        assert!(!BypassPermissions.within(AcceptEdits));
        assert!(!AcceptEdits.within(Default));
        assert!(DontAsk.within(Default));
    }

    #[test]
    fn a_question_reads_the_request_and_answers_in_the_clis_terms() {
        let question = Question::from_request("r1", &bash_request());
        assert_eq!(question.summary, "run `touch x.txt`");
        assert_eq!(question.reason.as_deref(), Some("Make a file"));
        let allow_once = question.response(&Decision::Allow {
            remember: false,
            answers: Map::new(),
        });
        assert_eq!(
            allow_once,
            json!({"behavior": "allow",
                   "updatedInput": {"command": "touch x.txt", "description": "Make a file"}})
        );
        // Remembered for the session only, never in the user's settings files.
        let remember = question.response(&Decision::Allow {
            remember: true,
            answers: Map::new(),
        });
        assert_eq!(remember["updatedPermissions"][0]["destination"], "session");
        assert_eq!(
            remember["updatedPermissions"][0]["rules"][0]["ruleContent"],
            "touch x.txt"
        );
        let deny = question.response(&Decision::Deny {
            message: "no".into(),
        });
        assert_eq!(deny, json!({"behavior": "deny", "message": "no"}));
        let text = nobody_to_ask(&question, Decider::Relay);
        assert!(text.contains("--allow-tool 'Bash(touch x.txt)'"), "{text}");
    }

    #[test]
    fn a_user_question_is_answered_through_its_input() {
        let request = json!({"tool_name": "AskUserQuestion", "input": {"questions": [
            {"question": "Which colour?", "header": "Colour", "multiSelect": false,
             "options": [{"label": "Red", "description": "warm"}, {"label": "Blue"}]}]}});
        let question = Question::from_request("r2", &request);
        assert_eq!(question.user_questions[0].options, ["Red", "Blue"]);
        let mut answers = Map::new();
        answers.insert("Which colour?".into(), "Blue".into());
        let response = question.response(&Decision::Allow {
            remember: false,
            answers,
        });
        assert_eq!(response["updatedInput"]["answers"]["Which colour?"], "Blue");
        assert!(nobody_to_ask(&question, Decider::Relay).contains("No user is available"));
    }

    #[test]
    fn summaries_say_what_the_tool_would_do() {
        let write = json!({"file_path": "/p/a.rs", "content": "fn main() {}"});
        assert_eq!(summarise("Write", &write), "write /p/a.rs (12 bytes)");
        let edit = json!({"file_path": "/p/a.rs", "old_string": "a", "new_string": "bcd"});
        assert_eq!(
            summarise("Edit", &edit),
            "edit /p/a.rs (replace 1 bytes with 3)"
        );
        let long = json!({"command": "x".repeat(500)});
        assert!(summarise("Bash", &long).chars().count() < 220);
        assert_eq!(
            summarise(
                "mcp__github__create_issue",
                &json!({"title": "t", "body": "b"})
            ),
            "use mcp__github__create_issue (title, body)"
        );
    }
}
