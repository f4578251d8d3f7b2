//! The command line: the real CLI's flags, parsed leniently.
//!
//! Accepts the real CLI flags: `-p`/`--print`, `--verbose`, `--include-partial-messages`,
//! `--input-format F`, `--output-format F`, `--model M`, `--resume ID` (`-r`),
//! `--session-id ID`, `--permission-mode M`, `--permission-prompt-tool T`, `--max-turns N`,
//! `--append-system-prompt S`, and the multi-valued `--allowedTools X..`,
//! `--disallowedTools X..`, `--mcp-config X..`, `--add-dir D..` (each takes every following
//! argument up to the next one starting with `-`). `--flag=value` works too. A value-taking
//! flag consumes the next argument unless it starts with `--` or is `-p`. A few more real
//! flags (`--continue`, `--fork-session`, `--settings`, `--system-prompt`, ...) are accepted
//! and ignored. Unknown flags and stray arguments are noted on stderr and ignored.
//! `--output-format stream-json` without `--verbose` prints
//! `Error: When using --print, --output-format=stream-json requires --verbose` to stderr and
//! exits 1, as the real CLI does.

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Args {
    pub(crate) print: bool,
    pub(crate) verbose: bool,
    pub(crate) include_partial_messages: bool,
    pub(crate) input_format: Option<String>,
    pub(crate) output_format: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) resume: Option<String>,
    /// `--fork-session`: with `--resume`, a new session id (the resumed one is the parent).
    pub(crate) fork_session: bool,
    pub(crate) session_id: Option<String>,
    pub(crate) permission_mode: Option<String>,
    pub(crate) permission_prompt_tool: Option<String>,
    pub(crate) max_turns: Option<u32>,
    /// `--max-budget-usd`: what this process may spend (the real CLI counts its own
    /// process's spending, not the resumed session's total).
    pub(crate) max_budget_usd: Option<f64>,
    pub(crate) append_system_prompt: Option<String>,
    pub(crate) allowed_tools: Vec<String>,
    pub(crate) disallowed_tools: Vec<String>,
    pub(crate) mcp_config: Vec<String>,
    pub(crate) add_dirs: Vec<String>,
    /// Things to say on stderr (unknown flags, missing values).
    pub(crate) notes: Vec<String>,
}

enum Arity {
    Flag,
    One,
    Many,
}

fn arity(flag: &str) -> Option<Arity> {
    Some(match flag {
        "-p"
        | "--print"
        | "--verbose"
        | "--include-partial-messages"
        | "-c"
        | "--continue"
        | "--fork-session"
        | "--replay-user-messages"
        | "--strict-mcp-config"
        | "--dangerously-skip-permissions"
        | "-d"
        | "--debug" => Arity::Flag,
        "--input-format"
        | "--output-format"
        | "--model"
        | "-r"
        | "--resume"
        | "--session-id"
        | "--permission-mode"
        | "--permission-prompt-tool"
        | "--max-turns"
        | "--append-system-prompt"
        | "--system-prompt"
        | "--fallback-model"
        | "--settings"
        | "--setting-sources"
        | "--max-thinking-tokens"
        | "--max-budget-usd"
        | "--agents" => Arity::One,
        "--allowedTools" | "--allowed-tools" | "--disallowedTools" | "--disallowed-tools"
        | "--mcp-config" | "--add-dir" | "--plugin-dir" | "--betas" => Arity::Many,
        _ => return None,
    })
}

pub(crate) fn parse_args(argv: &[String]) -> Args {
    let mut a = Args::default();
    let mut i = 0;
    while i < argv.len() {
        let raw = argv[i].as_str();
        i += 1;
        let (flag, inline) = match raw.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (raw, None),
        };
        match arity(flag) {
            Some(Arity::Flag) => match flag {
                "-p" | "--print" => a.print = true,
                "--verbose" => a.verbose = true,
                "--include-partial-messages" => a.include_partial_messages = true,
                "--fork-session" => a.fork_session = true,
                _ => {}
            },
            Some(Arity::One) => {
                let value = inline.or_else(|| {
                    let next = argv.get(i)?;
                    if next.starts_with("--") || next == "-p" {
                        return None;
                    }
                    i += 1;
                    Some(next.clone())
                });
                match value {
                    Some(v) => a.set_one(flag, v),
                    None => a.notes.push(format!("{flag} needs a value, ignored")),
                }
            }
            Some(Arity::Many) => {
                let mut values: Vec<String> = inline.into_iter().collect();
                while let Some(next) = argv.get(i).filter(|n| !n.starts_with('-')) {
                    values.push(next.clone());
                    i += 1;
                }
                if values.is_empty() {
                    a.notes.push(format!("{flag} needs a value, ignored"));
                }
                match flag {
                    "--allowedTools" | "--allowed-tools" => a.allowed_tools.extend(values),
                    "--disallowedTools" | "--disallowed-tools" => a.disallowed_tools.extend(values),
                    "--mcp-config" => a.mcp_config.extend(values),
                    "--add-dir" => a.add_dirs.extend(values),
                    _ => {}
                }
            }
            None if raw.starts_with('-') => a.notes.push(format!("unknown flag {raw}, ignored")),
            None => a.notes.push(format!("stray argument {raw:?}, ignored")),
        }
    }
    a
}

impl Args {
    fn set_one(&mut self, flag: &str, v: String) {
        match flag {
            "--input-format" => self.input_format = Some(v),
            "--output-format" => self.output_format = Some(v),
            "--model" => self.model = Some(v),
            "-r" | "--resume" => self.resume = Some(v),
            "--session-id" => self.session_id = Some(v),
            "--permission-mode" => self.permission_mode = Some(v),
            "--permission-prompt-tool" => self.permission_prompt_tool = Some(v),
            "--append-system-prompt" => self.append_system_prompt = Some(v),
            "--max-turns" => match v.parse() {
                Ok(n) => self.max_turns = Some(n),
                Err(_) => self
                    .notes
                    .push(format!("--max-turns {v:?} is not a number")),
            },
            "--max-budget-usd" => match v.parse() {
                Ok(usd) => self.max_budget_usd = Some(usd),
                Err(_) => self
                    .notes
                    .push(format!("--max-budget-usd {v:?} is not a number")),
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        let v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        parse_args(&v)
    }

    #[test]
    fn parses_the_usual_supervisor_command_line() {
        let a = args(&[
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "sonnet",
            "--resume",
            "abc",
            "--permission-mode",
            "acceptEdits",
            "--permission-prompt-tool",
            "stdio",
            "--include-partial-messages",
            "--max-turns",
            "3",
            "--append-system-prompt",
            "be brief",
        ]);
        assert!(a.print && a.verbose && a.include_partial_messages);
        assert_eq!(a.input_format.as_deref(), Some("stream-json"));
        assert_eq!(a.output_format.as_deref(), Some("stream-json"));
        assert_eq!(a.model.as_deref(), Some("sonnet"));
        assert_eq!(a.resume.as_deref(), Some("abc"));
        assert_eq!(a.permission_mode.as_deref(), Some("acceptEdits"));
        assert_eq!(a.permission_prompt_tool.as_deref(), Some("stdio"));
        assert_eq!(a.max_turns, Some(3));
        assert_eq!(a.append_system_prompt.as_deref(), Some("be brief"));
        assert!(a.notes.is_empty(), "{:?}", a.notes);
    }

    #[test]
    fn multi_valued_flags_and_inline_values() {
        let a = args(&[
            "--allowedTools",
            "Bash",
            "Read",
            "--add-dir=/a",
            "--add-dir",
            "/b",
            "--disallowedTools",
            "Write",
            "--mcp-config",
            "{}",
            "--session-id=s1",
        ]);
        assert_eq!(a.allowed_tools, ["Bash", "Read"]);
        assert_eq!(a.add_dirs, ["/a", "/b"]);
        assert_eq!(a.disallowed_tools, ["Write"]);
        assert_eq!(a.mcp_config, ["{}"]);
        assert_eq!(a.session_id.as_deref(), Some("s1"));
    }

    #[test]
    fn unknown_flags_are_noted_not_fatal() {
        let a = args(&["--frobnicate", "--verbose", "stray", "--model"]);
        assert!(a.verbose);
        assert_eq!(a.notes.len(), 3, "{:?}", a.notes);
        assert!(a.notes[0].contains("--frobnicate"));
        assert!(a.notes[1].contains("stray"));
        assert!(a.notes[2].contains("--model"));
        assert_eq!(a.model, None);
    }

    #[test]
    fn value_flag_does_not_swallow_the_next_flag() {
        let a = args(&["--model", "--verbose"]);
        assert!(a.verbose);
        assert_eq!(a.model, None);
    }
}
