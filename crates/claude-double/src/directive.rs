//! The prompt's first whitespace-separated word picks the turn's behaviour (case-sensitive).
//!
//! Arguments are `key=value` or bare numbers as shown; anything unparsable (e.g.
//! `SLOW please`) gives the default. What each line looks like is in [`crate::lines`] and
//! [`crate::result`]; [`crate::behaviour`] runs them.
//!
//! | prompt | lines after `system/init` | result |
//! | --- | --- | --- |
//! | anything else | assistant text `mock reply #N to: <prompt>` (N = turn number in this process, from 1) | success, `result` = that text |
//! | `SLOW [ms=200] [chunks=5] [bytes=0]` | `chunks` assistant lines `slow chunk 1`.. each after `ms` ms (one API call); with `bytes`, each text is padded with `.` to that many bytes, so a few messages fill a buffer | success, `result` = the texts concatenated (`slow chunk 1slow chunk 2..`); interruptible |
//! | `HANG` | nothing, ever; interrupts are answered but ignored; stdin EOF ignored | none |
//! | `CRASH [code=1]` (or `CRASH 7`) | assistant `about to crash`; stderr `double: crashing on request`; exit with that code | none |
//! | `KILL` | SIGKILL to itself | none |
//! | `GARBAGE` | raw lines `this is not json`, `{broken`, `[1,2,3]`, `42`, `"a string"`, an empty line, `{"no_type":true}`, bytes `ff fe` + ` invalid utf-8`, `{"type":"future_message_kind","data":1}`; then the default reply | success (default reply) |
//! | `HUGE [bytes=2097152]` (e.g. `HUGE 10000000`) | assistant text of exactly `bytes` `x` | success, `result` = the same text |
//! | `ERR400` | synthetic assistant (model `<synthetic>`, `is_api_error_message:true`, `api_error_status:400`) text `API Error: 400 mock 400` | `subtype:"success"`, `is_error:true`, `terminal_reason:"api_error"`, `api_error_status:400`, `stop_reason:"stop_sequence"`, `result` = that text |
//! | `MAXTURNS` | assistant text `mock reply #N to: MAXTURNS` | `error_max_turns`, `is_error:true`, `terminal_reason:"max_turns"`, `errors:["Reached maximum number of turns (K)"]` (K = `--max-turns`, default 1), no `result` |
//! | `RUN_TOOL <command..>` | assistant text `I'll run a command.`; assistant `tool_use` `{id:"toolu_double_NNNN",name:"Bash",input:{command,description:"Run a test command"}}` (same message id); then see below | success, `num_turns:2`, `result` = the final text |
//! | `STDERR [n=1]` | n stderr lines `double: stderr line i/n in turn N`; then the default reply | success |
//! | `CLOSE_STDOUT` | fd 1 closed; keeps running (later writes dropped), ignores stdin EOF | none |
//! | `UNKNOWN` | `{"type":"system","subtype":"brand_new_subtype",..}`, `{"type":"rate_limit_event",..}`; then the default reply | success |
//! | `KEEPALIVE [ms=100] [n=5]` | n `{"type":"keep_alive"}` lines, ms apart; then the default reply | success |
//! | `SPAWN_GRANDCHILD` | spawns `sleep 1000` (in the double's process group, like a tool); assistant text `grandchild <pid>` | success, same text |
//! | `SPAWN_DETACHED` | runs `sh -c 'setsid nohup sleep 1000 >/dev/null 2>&1 & echo $!'`, as a Bash tool may: the `sleep` leaves the process group and session, and is orphaned when `sh` exits; assistant text `detached <pid>` | success, same text |
//! | `LEAK <VAR>` | stderr `double: leaking VAR=<value>`, a non-JSON stdout line containing the value; then the default reply | success |
//! | `MULTI` | one API call: assistant `thinking`, assistant text `multi text 1`, assistant text `multi text 2`; then `system/status` (`status:null`) | success, `result` = `multi text 1multi text 2` |
//!
//! | `ELICIT` | a `control_request` `elicitation` from an MCP server (see [`crate::elicit`]), then assistant text `elicitation answered: <action> <content>` | success, same text |
//!
//! `RUN_TOOL` and its permission are described in [`crate::tool`].
//!
//! With `--max-budget-usd X`, as with the real CLI: the turn whose calls bring this
//! process's spending to X ends as `error_max_budget_usd` (`terminal_reason:
//! "budget_exhausted"`, `errors: ["Reached maximum budget ($X)"]`, no `result`), and every
//! later turn ends so at once, without an API call.

/// `HUGE` without a size: 2 MiB.
pub(crate) const DEFAULT_HUGE_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Directive {
    Reply,
    Slow { ms: u64, chunks: u32, bytes: usize },
    Hang,
    Crash { code: i32 },
    Kill,
    Garbage,
    Huge { bytes: usize },
    Err400,
    MaxTurns,
    RunTool { command: String },
    Stderr { lines: u64 },
    CloseStdout,
    Unknown,
    Multi,
    KeepAlive { ms: u64, count: u32 },
    SpawnGrandchild,
    SpawnDetached,
    Leak { var: String },
    Elicit,
}

/// `key=value` among the words, parsed; unparsable values count as absent.
fn keyed<T: std::str::FromStr>(words: &[&str], key: &str) -> Option<T> {
    words.iter().find_map(|w| {
        let (k, v) = w.split_once('=')?;
        if k == key { v.parse().ok() } else { None }
    })
}

/// The `index`-th word that is not `key=value`, parsed (positional arguments).
fn bare<T: std::str::FromStr>(words: &[&str], index: usize) -> Option<T> {
    words
        .iter()
        .filter(|w| !w.contains('='))
        .nth(index)
        .and_then(|w| w.parse().ok())
}

/// `key=value`, else the first bare word that parses.
fn keyed_or_bare<T: std::str::FromStr>(words: &[&str], key: &str) -> Option<T> {
    keyed(words, key).or_else(|| words.iter().find_map(|w| w.parse().ok()))
}

pub(crate) fn parse_directive(prompt: &str) -> Directive {
    let trimmed = prompt.trim();
    let mut words = trimmed.split_whitespace();
    let Some(first) = words.next() else {
        return Directive::Reply;
    };
    let rest: Vec<&str> = words.collect();
    match first {
        "SLOW" => Directive::Slow {
            ms: keyed(&rest, "ms").or_else(|| bare(&rest, 0)).unwrap_or(200),
            chunks: keyed(&rest, "chunks")
                .or_else(|| bare(&rest, 1))
                .unwrap_or(5),
            bytes: keyed(&rest, "bytes").unwrap_or(0),
        },
        "KEEPALIVE" => Directive::KeepAlive {
            ms: keyed(&rest, "ms").or_else(|| bare(&rest, 0)).unwrap_or(100),
            count: keyed(&rest, "n").or_else(|| bare(&rest, 1)).unwrap_or(5),
        },
        "SPAWN_GRANDCHILD" => Directive::SpawnGrandchild,
        "SPAWN_DETACHED" => Directive::SpawnDetached,
        "LEAK" => Directive::Leak {
            var: rest.first().map(|v| v.to_string()).unwrap_or_default(),
        },
        "HANG" => Directive::Hang,
        "CRASH" => Directive::Crash {
            code: keyed_or_bare(&rest, "code").unwrap_or(1),
        },
        "KILL" => Directive::Kill,
        "GARBAGE" => Directive::Garbage,
        "HUGE" => Directive::Huge {
            bytes: keyed_or_bare(&rest, "bytes").unwrap_or(DEFAULT_HUGE_BYTES),
        },
        "ERR400" => Directive::Err400,
        "MAXTURNS" => Directive::MaxTurns,
        "RUN_TOOL" => {
            let command = trimmed[first.len()..].trim();
            Directive::RunTool {
                command: if command.is_empty() { "true" } else { command }.to_string(),
            }
        }
        "STDERR" => Directive::Stderr {
            lines: keyed_or_bare(&rest, "n").unwrap_or(1),
        },
        "CLOSE_STDOUT" => Directive::CloseStdout,
        "UNKNOWN" => Directive::Unknown,
        "MULTI" => Directive::Multi,
        "ELICIT" => Directive::Elicit,
        _ => Directive::Reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives() {
        use Directive as D;
        assert_eq!(parse_directive("hello"), D::Reply);
        assert_eq!(parse_directive("slow please"), D::Reply);
        assert_eq!(parse_directive(""), D::Reply);
        assert_eq!(
            parse_directive("SLOW please"),
            D::Slow {
                ms: 200,
                chunks: 5,
                bytes: 0
            }
        );
        assert_eq!(
            parse_directive("  SLOW chunks=2 ms=10"),
            D::Slow {
                ms: 10,
                chunks: 2,
                bytes: 0
            }
        );
        assert_eq!(
            parse_directive("SLOW ms=x chunks=-1 bytes=y"),
            D::Slow {
                ms: 200,
                chunks: 5,
                bytes: 0
            }
        );
        assert_eq!(
            parse_directive("SLOW 0 3 bytes=4096"),
            D::Slow {
                ms: 0,
                chunks: 3,
                bytes: 4096
            }
        );
        assert_eq!(parse_directive("HANG"), D::Hang);
        assert_eq!(parse_directive("CRASH"), D::Crash { code: 1 });
        assert_eq!(parse_directive("CRASH code=7"), D::Crash { code: 7 });
        assert_eq!(parse_directive("CRASH 9"), D::Crash { code: 9 });
        assert_eq!(parse_directive("KILL"), D::Kill);
        assert_eq!(parse_directive("GARBAGE"), D::Garbage);
        assert_eq!(
            parse_directive("HUGE 10000000"),
            D::Huge { bytes: 10_000_000 }
        );
        assert_eq!(
            parse_directive("HUGE"),
            D::Huge {
                bytes: DEFAULT_HUGE_BYTES
            }
        );
        assert_eq!(parse_directive("ERR400"), D::Err400);
        assert_eq!(parse_directive("MAXTURNS"), D::MaxTurns);
        assert_eq!(
            parse_directive("RUN_TOOL touch created_by_tool.txt"),
            D::RunTool {
                command: "touch created_by_tool.txt".into()
            }
        );
        assert_eq!(
            parse_directive("RUN_TOOL   echo  a  b "),
            D::RunTool {
                command: "echo  a  b".into()
            }
        );
        assert_eq!(
            parse_directive("RUN_TOOL"),
            D::RunTool {
                command: "true".into()
            }
        );
        assert_eq!(parse_directive("STDERR 5"), D::Stderr { lines: 5 });
        assert_eq!(parse_directive("CLOSE_STDOUT"), D::CloseStdout);
        assert_eq!(parse_directive("UNKNOWN"), D::Unknown);
        assert_eq!(parse_directive("MULTI"), D::Multi);
        assert_eq!(parse_directive("MULTIPLE"), D::Reply);
    }
}
