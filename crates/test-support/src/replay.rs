//! The runner rules for feeding a stdin fixture to a stream-json CLI process, written once
//! for both runners: the capture tool (tests/suite/capture_cli.rs, real CLI) and the replay
//! check of the CLI double (tests/suite/double_shapes.rs), so the double sees its input at the same
//! points of a turn as the real CLI did and the two cannot drift apart.
//!
//! Sans-io: [`Replay`] only says what to do next ([`Replay::next_step`]) and learns from
//! every stdout line the runner hands it ([`Replay::observe`]); the runners do the reading,
//! writing and timing. The rules (tests/fixtures/cli/README.md lists them for users):
//! - stdin lines are written in order;
//! - a `user` line waits for the previous turn's `result`;
//! - a `control_request` directly after a `user` line waits for the turn's first stdout
//!   line; if the user text starts with `SLOW`, for its first `assistant` line (or its
//!   `result`, should it have none), so an interrupt lands mid-stream;
//! - any other `control_request` is written at once, then waits for its `control_response`;
//! - a `control_response` line answers the process's oldest unanswered `control_request`
//!   (e.g. `can_use_tool`): it waits for one, and its `response.request_id` is replaced by
//!   that request's id (the process makes ids up at run time), the rest written as in the
//!   file;
//! - other lines are written at once; after the last line (and its wait, if any) stdin is
//!   closed and stdout read to EOF ([`Step::Done`]).

use std::collections::{HashSet, VecDeque};
use std::path::Path;

use serde_json::Value;

/// What the runner does next.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Write `line` (without its newline) to stdin; `starts_turn` for a `user` line.
    Write { line: String, starts_turn: bool },
    /// Read one stdout line, hand it to [`Replay::observe`] and ask again. `what` names what
    /// is awaited (for error messages); `fresh` is set when this wait begins, so a runner
    /// gives each wait one time limit however many lines it takes.
    Wait { what: String, fresh: bool },
    /// Every line is written: close stdin and read stdout to EOF.
    Done,
}

/// Stdout as far as the rules care.
#[derive(Default)]
struct Seen {
    /// Stdout lines since the current turn's `user` line was written.
    turn_lines: usize,
    turn_assistant: bool,
    /// A turn was started and has not printed its `result` yet.
    turn_open: bool,
    control_responses: HashSet<String>,
    /// Ids of the process's own control requests that no stdin line answered yet.
    unanswered_requests: VecDeque<String>,
}

/// Feeds one stdin fixture by the rules of the module doc.
pub struct Replay {
    input: Vec<(String, Value)>,
    /// Index of the next line to write.
    next: usize,
    /// `Some(is SLOW)` right after a `user` line was written.
    after_user: Option<bool>,
    /// Id of a written `control_request` whose `control_response` is awaited.
    awaiting_response: Option<String>,
    /// What the last step waited for, if it was a wait.
    last_wait: Option<String>,
    seen: Seen,
}

impl Replay {
    /// `input`: the raw stdin lines (written as they are) with their JSON.
    pub fn new(input: Vec<(String, Value)>) -> Replay {
        Replay {
            input,
            next: 0,
            after_user: None,
            awaiting_response: None,
            last_wait: None,
            seen: Seen::default(),
        }
    }

    /// Notes one stdout line (a runner may hand `Null` for a line that is not JSON).
    pub fn observe(&mut self, line: &Value) {
        let seen = &mut self.seen;
        seen.turn_lines += 1;
        match type_of(line) {
            "assistant" => seen.turn_assistant = true,
            "result" => seen.turn_open = false,
            "control_response" => {
                if let Some(id) = line.pointer("/response/request_id").and_then(Value::as_str) {
                    seen.control_responses.insert(id.to_string());
                }
            }
            "control_request" => {
                if let Some(id) = line.get("request_id").and_then(Value::as_str) {
                    seen.unanswered_requests.push_back(id.to_string());
                }
            }
            _ => {}
        }
    }

    /// The next thing to do; a [`Step::Write`] counts as done once returned.
    pub fn next_step(&mut self) -> Step {
        match self.decide() {
            Ok(Some((line, starts_turn))) => {
                self.last_wait = None;
                Step::Write { line, starts_turn }
            }
            Ok(None) => Step::Done,
            Err(what) => {
                let fresh = self.last_wait.as_ref() != Some(&what);
                self.last_wait = Some(what.clone());
                Step::Wait { what, fresh }
            }
        }
    }

    /// The next line to write (and whether it is a `user` line), `None` at the end, or what
    /// it still waits for.
    fn decide(&mut self) -> Result<Option<(String, bool)>, String> {
        if let Some(id) = &self.awaiting_response {
            if !self.seen.control_responses.contains(id) {
                return Err(format!("control_response {id}"));
            }
            self.awaiting_response = None;
        }
        let Some((raw, v)) = self.input.get(self.next) else {
            return Ok(None);
        };
        let line = match type_of(v) {
            "user" => {
                self.seen.start_turn()?;
                raw.clone()
            }
            "control_request" => {
                self.seen.request_ready(self.after_user)?;
                if self.after_user.is_none() {
                    let id = v.get("request_id").and_then(Value::as_str).unwrap_or("");
                    self.awaiting_response = Some(id.to_string());
                }
                raw.clone()
            }
            "control_response" => answer_with_id(raw, v, &self.seen.take_request()?),
            _ => raw.clone(),
        };
        let starts_turn = type_of(v) == "user";
        self.after_user = starts_turn.then(|| is_slow_user_line(v));
        self.next += 1;
        Ok(Some((line, starts_turn)))
    }
}

impl Seen {
    /// Starts a turn for a `user` line, unless the previous one is still open.
    fn start_turn(&mut self) -> Result<(), String> {
        if self.turn_open {
            return Err("the previous turn's result".into());
        }
        self.turn_lines = 0;
        self.turn_assistant = false;
        self.turn_open = true;
        Ok(())
    }

    /// Whether a `control_request` may go now; `after_user` as in [`Replay`]. One that is
    /// not right after a `user` line goes at once (and waits afterwards).
    fn request_ready(&self, after_user: Option<bool>) -> Result<(), String> {
        match after_user {
            Some(true) if !self.turn_assistant && self.turn_open => {
                Err("the turn's first assistant line".into())
            }
            Some(false) if self.turn_lines == 0 => Err("the turn's first stdout line".into()),
            _ => Ok(()),
        }
    }

    /// The id of the oldest control request from the process that is not answered yet.
    fn take_request(&mut self) -> Result<String, String> {
        self.unanswered_requests
            .pop_front()
            .ok_or_else(|| "a control_request from the process".into())
    }
}

/// The `control_response` line `raw` with `response.request_id` set to `id`: the quoted
/// old id is swapped in the text where it stands just once, to keep the line as written;
/// else the JSON is written anew.
fn answer_with_id(raw: &str, v: &Value, id: &str) -> String {
    let old = v.pointer("/response/request_id").and_then(Value::as_str);
    match old {
        Some(old)
            if !old.is_empty() && raw.matches(old).count() == 1 && raw.contains(&jstr(old)) =>
        {
            raw.replace(&jstr(old), &jstr(id))
        }
        _ => {
            let mut answer = v.clone();
            if let Some(r) = answer.get_mut("response").and_then(Value::as_object_mut) {
                r.insert("request_id".to_string(), Value::from(id));
            }
            answer.to_string()
        }
    }
}

/// A JSON string literal.
fn jstr(s: &str) -> String {
    Value::from(s).to_string()
}

/// True for a `user` line whose text starts with `SLOW`.
fn is_slow_user_line(v: &Value) -> bool {
    let text = match v.pointer("/message/content") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .find_map(|b| b.get("text").and_then(Value::as_str))
            .unwrap_or(""),
        _ => "",
    };
    text.trim_start().starts_with("SLOW")
}

/// The `type` of a line, `""` if it has none.
pub fn type_of(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

/// The CLI arguments of a scenario without `<name>.args.json`.
pub fn default_args() -> Vec<String> {
    [
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
    ]
    .map(String::from)
    .to_vec()
}

/// Lines of a stdin fixture (blank ones skipped): the raw text and its JSON.
pub fn read_stdin_file(path: &Path) -> Result<Vec<(String, Value)>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str(l) {
            Ok(v) => Ok((l.to_string(), v)),
            Err(e) => Err(format!("{}: bad JSON line {l:?}: {e}", path.display())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn replay(lines: &[Value]) -> Replay {
        Replay::new(lines.iter().map(|v| (v.to_string(), v.clone())).collect())
    }

    fn user(text: &str) -> Value {
        json!({"type": "user", "message": {"role": "user", "content": text}})
    }

    fn interrupt(id: &str) -> Value {
        json!({"type": "control_request", "request_id": id, "request": {"subtype": "interrupt"}})
    }

    fn write(v: &Value, starts_turn: bool) -> Step {
        Step::Write {
            line: v.to_string(),
            starts_turn,
        }
    }

    fn wait(what: &str, fresh: bool) -> Step {
        Step::Wait {
            what: what.to_string(),
            fresh,
        }
    }

    #[test]
    fn a_second_user_line_waits_for_the_result() {
        let (first, second) = (user("hello"), user("again"));
        let mut r = replay(&[first.clone(), second.clone()]);
        assert_eq!(r.next_step(), write(&first, true));
        assert_eq!(r.next_step(), wait("the previous turn's result", true));
        r.observe(&json!({"type": "assistant"}));
        assert_eq!(r.next_step(), wait("the previous turn's result", false));
        r.observe(&json!({"type": "result"}));
        assert_eq!(r.next_step(), write(&second, true));
        assert_eq!(r.next_step(), Step::Done);
    }

    #[test]
    fn an_interrupt_after_a_slow_line_waits_for_the_first_assistant_line() {
        let (slow, stop) = (user("SLOW please"), interrupt("r2"));
        let mut r = replay(&[slow.clone(), stop.clone()]);
        assert_eq!(r.next_step(), write(&slow, true));
        r.observe(&json!({"type": "system", "subtype": "init"}));
        assert_eq!(r.next_step(), wait("the turn's first assistant line", true));
        r.observe(&json!({"type": "assistant"}));
        // Its control_response is not awaited: the interrupt goes mid-turn.
        assert_eq!(r.next_step(), write(&stop, false));
        assert_eq!(r.next_step(), Step::Done);
    }

    #[test]
    fn a_slow_turn_without_assistant_lines_lets_the_interrupt_go_at_its_result() {
        let (slow, stop) = (user("SLOW please"), interrupt("r2"));
        let mut r = replay(&[slow.clone(), stop.clone()]);
        assert_eq!(r.next_step(), write(&slow, true));
        r.observe(&json!({"type": "result", "subtype": "error_during_execution"}));
        assert_eq!(r.next_step(), write(&stop, false));
    }

    #[test]
    fn an_interrupt_after_a_plain_line_waits_for_any_stdout_line() {
        let (hello, stop) = (user("hello"), interrupt("r1"));
        let mut r = replay(&[hello.clone(), stop.clone()]);
        assert_eq!(r.next_step(), write(&hello, true));
        assert_eq!(r.next_step(), wait("the turn's first stdout line", true));
        r.observe(&json!({"type": "system", "subtype": "init"}));
        assert_eq!(r.next_step(), write(&stop, false));
    }

    #[test]
    fn any_other_control_request_waits_for_its_response() {
        let init = json!({"type": "control_request", "request_id": "r0",
            "request": {"subtype": "initialize"}});
        let hello = user("hello");
        let mut r = replay(&[init.clone(), hello.clone()]);
        assert_eq!(r.next_step(), write(&init, false));
        assert_eq!(r.next_step(), wait("control_response r0", true));
        r.observe(&json!({"type": "control_response",
            "response": {"subtype": "success", "request_id": "other"}}));
        assert_eq!(r.next_step(), wait("control_response r0", false));
        r.observe(&json!({"type": "control_response",
            "response": {"subtype": "success", "request_id": "r0"}}));
        assert_eq!(r.next_step(), write(&hello, true));
    }

    #[test]
    fn a_control_response_gets_the_oldest_unanswered_request_id() {
        let answer = |behavior: &str| {
            json!({"type": "control_response", "response": {"subtype": "success",
                "request_id": "fixture-id", "response": {"behavior": behavior}}})
        };
        let (tool, allow, deny) = (user("RUN_TOOL touch x"), answer("allow"), answer("deny"));
        let mut r = replay(&[tool.clone(), allow.clone(), deny.clone()]);
        assert_eq!(r.next_step(), write(&tool, true));
        assert_eq!(
            r.next_step(),
            wait("a control_request from the process", true)
        );
        for id in ["cli-1", "cli-2"] {
            r.observe(&json!({"type": "control_request", "request_id": id,
                "request": {"subtype": "can_use_tool"}}));
        }
        let swapped = |v: &Value, id: &str| v.to_string().replace("fixture-id", id);
        assert_eq!(
            r.next_step(),
            Step::Write {
                line: swapped(&allow, "cli-1"),
                starts_turn: false
            }
        );
        assert_eq!(
            r.next_step(),
            Step::Write {
                line: swapped(&deny, "cli-2"),
                starts_turn: false
            }
        );
        assert_eq!(r.next_step(), Step::Done);
    }

    #[test]
    fn a_control_response_keeps_its_text_but_the_id() {
        let raw = r#"{"type": "control_response", "response": {"request_id": "old"}}"#;
        let mut r = Replay::new(vec![(raw.to_string(), serde_json::from_str(raw).unwrap())]);
        r.observe(&json!({"type": "control_request", "request_id": "new"}));
        let line = raw.replace("\"old\"", "\"new\"");
        assert_eq!(
            r.next_step(),
            Step::Write {
                line,
                starts_turn: false
            }
        );
    }

    #[test]
    fn a_new_wait_after_a_write_is_fresh_even_for_the_same_thing() {
        let answer = json!({"type": "control_response",
            "response": {"subtype": "success", "request_id": "x"}});
        let mut r = replay(&[answer.clone(), answer]);
        assert!(matches!(r.next_step(), Step::Wait { fresh: true, .. }));
        r.observe(&json!({"type": "control_request", "request_id": "a"}));
        assert!(matches!(r.next_step(), Step::Write { .. }));
        assert!(matches!(r.next_step(), Step::Wait { fresh: true, .. }));
    }
}
