//! End to end with Codex CLI and Gemini CLI as claude-coded's MCP host, the real Claude
//! Code CLI as claude-coded's child, offline.
//!
//! Each host runs one non-interactive turn (`codex exec --json`, `gemini -p
//! --output-format stream-json`) in a sandbox project, configured from our example file
//! (`examples/codex/config.toml`, `examples/gemini/settings.json`: the tests read them, so
//! the examples stay working) plus the test's offline settings. Its model is mocked in
//! `crates/mock-api` beside the Messages API the inner CLI uses: the OpenAI Responses API
//! (`wire_api = "responses"`) for Codex, `streamGenerateContent` for Gemini. The mock's
//! [`HostModel`] calls our tools by the names the host gives them, then answers with a
//! text; every request is recorded, so a test reads the bytes the host's model got back.
//!
//! Each test runs its case for both hosts at once (two threads), holding the lock of the
//! real-CLI tests. The host binaries are `CODEX_BIN` and `GEMINI_BIN`, else what
//! `scripts/install-host-clis.sh` installs under `.cache/` (it pins Codex CLI 0.169.0 and
//! Gemini CLI 0.61.0).
//!
//! ```sh
//! CLAUDE_BIN=$(scripts/install-claude-cli.sh) cargo test --test all e2e_other_hosts:: -- --nocapture
//! ```
//!
//! `--nocapture` shows what each model read and the measurements; `E2E_HOSTS=codex` (or
//! `gemini`) runs one host; `CLAUDE_CODED_TEST_BRIDGE=<older build>` runs them against
//! another claude-coded. They need `strace` (the offline check) and Node >= 20 (Gemini).

mod hosts_support;

use std::time::{Duration, Instant};

use hosts_support::{CLEANUP_DEADLINE, Host, HostRun, HostSandbox, for_both, non_loopback};
use mock_api::{
    Behavior, HostModel, HostToolOutput, HostWire, MockApi, Script, TURN_ID, ToolCall,
    offered_schemas,
};
use serde_json::{Value, json};
use test_support::real_cli::one_real_cli_blocking;

#[test]
fn in_ci_the_other_host_tests_are_built_to_run() {
    test_support::assert_real_cli_tests_run_in_ci(cfg!(real_cli));
}

const PROMPT: &str = "OUTER: use claude-coded for this task";
/// Our six tools, by our names.
const TOOLS: [&str; 6] = ["ask", "wait", "cancel", "status", "sessions", "events"];

fn ask(prompt: &str) -> ToolCall {
    ToolCall::new("ask", json!({ "prompt": prompt }))
}

/// A mock whose host model makes `calls`; the inner CLI's requests go by the prompt
/// keywords, or by `inner` when given.
fn mock_for(calls: Vec<ToolCall>, inner: Option<Script>) -> MockApi {
    MockApi::try_start_hosting(inner, Some(HostModel::new(hosts_support::SERVER, calls)))
        .expect("start the mock")
}

/// The host finished its turn without error.
fn assert_host_ok(run: &HostRun) {
    assert!(run.exit.success(), "{}", run.dump());
}

/// The `index`-th output of `tool` the host gave back to its model.
fn nth_output(mock: &MockApi, tool: &str, index: usize) -> HostToolOutput {
    mock.host_outputs(tool)
        .into_iter()
        .nth(index)
        .unwrap_or_else(|| {
            let last = mock.host_requests().last().map(|r| r.body.to_string());
            let tail: String = last
                .unwrap_or_default()
                .chars()
                .rev()
                .take(3000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!(
                "the host's model never got output #{index} of {tool}; last request ends: {tail}"
            )
        })
}

/// The JSON after Codex's `Wall time: ... seconds\nOutput:\n` head.
fn codex_output_json(text: &str) -> Value {
    let (head, body) = text
        .split_once("\nOutput:\n")
        .unwrap_or_else(|| panic!("no `Output:` head in {text:?}"));
    assert!(head.starts_with("Wall time: "), "{text:?}");
    assert!(head.ends_with(" seconds"), "{text:?}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON after the head ({e}): {body:?}"))
}

/// The text blocks of Gemini's output, each unwrapped from `<untrusted_context>`.
fn gemini_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<untrusted_context>\n") {
        let after = &rest[start + "<untrusted_context>\n".len()..];
        let end = after
            .find("\n</untrusted_context>")
            .unwrap_or_else(|| panic!("an unclosed block in {text:?}"));
        blocks.push(after[..end].to_string());
        rest = &after[end + "\n</untrusted_context>".len()..];
    }
    assert!(
        !blocks.is_empty(),
        "no <untrusted_context> block in {text:?}"
    );
    blocks
}

/// What the model read of an answer: Codex's `result` field, Gemini's first block.
fn answer_read(host: Host, output: &HostToolOutput) -> String {
    match host {
        Host::Codex => codex_output_json(&output.text)["result"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        Host::Gemini => gemini_blocks(&output.text).remove(0),
    }
}

/// Every process of the sandbox is gone within [`CLEANUP_DEADLINE`].
fn assert_sandbox_empties(sandbox: &HostSandbox) -> Duration {
    sandbox
        .wait_empty(CLEANUP_DEADLINE)
        .unwrap_or_else(|left| panic!("left {CLEANUP_DEADLINE:?} after the host exited:\n{left}"))
}

/// `claude-coded status --json` in the sandbox after its server ended: what the saved
/// state says, with the pid checked.
fn saved_status(sandbox: &HostSandbox, mock: &MockApi) -> Value {
    let out = sandbox.claude_coded(mock, &["status", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "status --json printed no JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The saved state names no running daemon, child or turn.
fn assert_status_truthful(status: &Value) {
    let daemon = status["daemon"]["state"].as_str().unwrap_or_default();
    assert!(
        daemon == "stopped" || daemon == "gone",
        "status claims the daemon is {daemon:?}: {status}"
    );
    assert!(status["turn"].is_null(), "a turn still runs? {status}");
    for session in status["sessions"].as_array().into_iter().flatten() {
        assert_ne!(session["busy"], true, "{status}");
        assert_ne!(session["state"], "ready", "{status}");
    }
}

// ---------------------------------------------------------------------------------------

fn lists_our_tools(host: Host) {
    let sandbox = HostSandbox::new(host);
    // The read-only tools run without approval in Codex.
    let mock = mock_for(
        vec![
            ToolCall::new("status", json!({})),
            ToolCall::new("events", json!({"limit": 5})),
        ],
        None,
    );
    sandbox.configure(&mock, &[]);
    let run = sandbox.run(&mock, PROMPT);
    assert_host_ok(&run);
    let first = mock
        .host_requests()
        .into_iter()
        .next()
        .expect("a model request");
    let wire = HostWire::of(&first).expect("a host wire");
    let schemas = offered_schemas(wire, &first.body);
    let ours: Vec<&(String, Value)> = schemas
        .iter()
        .filter(|(name, _)| name.contains("claude_coded") || name.contains("claude-coded"))
        .collect();
    eprintln!(
        "{}: our tools as offered: {:?}",
        host.name(),
        ours.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for tool in TOOLS {
        let (name, schema) = ours
            .iter()
            .find(|(name, _)| {
                name.ends_with(&format!("_{tool}")) || name.ends_with(&format!(".{tool}"))
            })
            .unwrap_or_else(|| panic!("{tool} not offered; offered: {schemas:?}"));
        assert_eq!(schema["type"], "object", "{name}: {schema}");
        assert!(schema["properties"].is_object(), "{name}: {schema}");
    }
    let ask_schema = &ours
        .iter()
        .find(|(n, _)| n.ends_with("ask"))
        .expect("ask")
        .1;
    assert!(
        ask_schema["properties"]["prompt"].is_object(),
        "{ask_schema}"
    );
    // Gemini adds its own argument to every tool's schema.
    if host == Host::Gemini {
        assert!(
            ask_schema["properties"]["wait_for_previous"].is_object(),
            "{ask_schema}"
        );
    }
    // No warning about our tools or their schemas on the host's stderr or in its events.
    let said = format!("{}\n{}", run.stderr, run.stdout).to_lowercase();
    for word in [
        "schema",
        "invalid tool",
        "skipping tool",
        "failed to convert",
    ] {
        assert!(
            !said.contains(word),
            "the host warned ({word}):\n{}",
            run.dump()
        );
    }
    let status = nth_output(&mock, "status", 0);
    assert!(
        status.text.contains("ready") || status.text.contains("starting"),
        "{status:?}"
    );
    let events = nth_output(&mock, "events", 0);
    assert!(events.text.contains("child.started"), "{events:?}");
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn both_hosts_offer_our_six_tools_with_their_schemas_and_no_warning() {
    for_both(lists_our_tools);
}

fn ask_round_trip(host: Host) {
    let sandbox = HostSandbox::new(host);
    let inner_prompt = "say hello from inside";
    let mock = mock_for(vec![ask(inner_prompt)], None);
    sandbox.configure(&mock, &[]);
    let run = sandbox.run(&mock, PROMPT);
    assert_host_ok(&run);
    let output = nth_output(&mock, "ask", 0);
    eprintln!(
        "{}: the model read {} bytes after ask: {:?}",
        host.name(),
        output.bytes(),
        output.text
    );
    let answer = answer_read(host, &output);
    assert!(
        answer.starts_with("mock reply #") && answer.ends_with(&format!("to: {inner_prompt}")),
        "{output:?}"
    );
    match host {
        // Codex: the JSON of structuredContent after its wall-time head, never our texts.
        Host::Codex => {
            let json = codex_output_json(&output.text);
            assert_eq!(json["ok"], true, "{json}");
            assert!(json["sessionId"].is_string(), "{json}");
            assert!(
                !output.text.contains(" · "),
                "the text blocks reached it: {output:?}"
            );
        }
        // Gemini: each text block wrapped as untrusted; the answer first, then the line
        // about the turn.
        Host::Gemini => {
            let blocks = gemini_blocks(&output.text);
            assert_eq!(blocks.len(), 2, "{blocks:?}");
            assert!(blocks[1].starts_with("ok · session "), "{blocks:?}");
        }
    }
    // The whole chain: the host's model quoted the inner answer in its last message.
    assert!(run.final_text().contains(&answer), "{}", run.dump());
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn both_hosts_models_read_the_inner_answer_of_an_ask_in_their_own_form() {
    for_both(ask_round_trip);
}

/// An answer of `len` bytes: numbered words, so a cut shows where it was made.
fn long_answer(len: usize) -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < len {
        text.push_str(&format!("w{i:06} "));
        i += 1;
    }
    text.truncate(len - 1);
    text.push('.');
    text
}

fn long_answer_case(host: Host) {
    let sandbox = HostSandbox::new(host);
    let answer = long_answer(60_000);
    let reply = answer.clone();
    let inner = Script::func(move |call| {
        (call.prompt == "give the long answer").then(|| Behavior::Text(reply.clone()))
    });
    let mock = mock_for(vec![ask("give the long answer")], Some(inner));
    sandbox.configure(&mock, &[]);
    let run = sandbox.run(&mock, PROMPT);
    assert_host_ok(&run);
    let output = nth_output(&mock, "ask", 0);
    let head: String = answer.chars().take(40).collect();
    let tail: String = answer[answer.len() - 40..].to_string();
    eprintln!(
        "{}: a {}-byte answer reached the model as {} bytes; head kept: {}, tail kept: {}",
        host.name(),
        answer.len(),
        output.bytes(),
        output.text.contains(&head),
        output.text.contains(&tail)
    );
    match host {
        // Codex cuts a tool's output to about 12 KB, keeping its head and its tail.
        Host::Codex => {
            assert!(output.bytes() < 16_000, "{} bytes", output.bytes());
            assert!(output.text.contains(&head), "the head was cut");
            assert!(output.text.contains(&tail), "the tail was cut");
        }
        // Gemini cuts only single-block results: our answer (two blocks) arrives whole.
        Host::Gemini => {
            assert_eq!(gemini_blocks(&output.text)[0], answer);
        }
    }
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn a_long_answer_reaches_codex_cut_from_the_middle_and_gemini_whole() {
    for_both(long_answer_case);
}

fn background_wait_cancel(host: Host) {
    let sandbox = HostSandbox::new(host);
    let mock = mock_for(
        vec![
            ToolCall::new(
                "ask",
                json!({"prompt": "SLOW ms=200 chunks=6", "background": true}),
            ),
            ToolCall::new("wait", json!({"turnId": TURN_ID, "timeoutMs": 30_000})),
            ToolCall::new(
                "ask",
                json!({"prompt": "SLOW ms=500 chunks=60", "background": true}),
            ),
            // Still running after 1.5 s: the model sees the latest step, then cancels.
            ToolCall::new("wait", json!({"turnId": TURN_ID, "timeoutMs": 1_500})),
            ToolCall::new("cancel", json!({"turnId": TURN_ID})),
        ],
        None,
    );
    sandbox.configure(&mock, &[]);
    let run = sandbox.run(&mock, PROMPT);
    assert_host_ok(&run);
    let handle = nth_output(&mock, "ask", 0);
    let waited = nth_output(&mock, "wait", 0);
    let second = nth_output(&mock, "ask", 1);
    let still = nth_output(&mock, "wait", 1);
    let cancelled = nth_output(&mock, "cancel", 0);
    for (what, o) in [
        ("handle", &handle),
        ("wait", &waited),
        ("second handle", &second),
        ("wait while it runs", &still),
        ("cancel", &cancelled),
    ] {
        eprintln!(
            "{}: {what} ({} bytes): {:?}",
            host.name(),
            o.bytes(),
            o.text
        );
    }
    let first_id =
        mock_api::turn_id_in(&handle.text).expect("the handle's turnId reached the model");
    let second_id =
        mock_api::turn_id_in(&second.text).expect("the second turnId reached the model");
    // The model copied each turnId into its next call.
    let waits = mock.host_calls("wait");
    assert_eq!(waits[0].args["turnId"], first_id.as_str(), "{waits:?}");
    let cancels = mock.host_calls("cancel");
    assert_eq!(cancels[0].args["turnId"], second_id.as_str(), "{cancels:?}");
    // wait brought the answer (six chunks of `slow `), and then said the second runs.
    assert!(waited.text.contains("slow slow slow"), "{waited:?}");
    let running = match host {
        Host::Codex => codex_output_json(&still.text)["running"] == true,
        Host::Gemini => still.text.to_lowercase().contains("running"),
    };
    assert!(running, "{still:?}");
    // cancel stopped the long turn: its stream was cut, long before its ~30 s.
    let stopped = match host {
        Host::Codex => codex_output_json(&cancelled.text)["cancelled"] == true,
        Host::Gemini => cancelled.text.contains("is being interrupted"),
    };
    assert!(stopped, "{cancelled:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while mock.aborted_streams() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        mock.aborted_streams() >= 1,
        "the long inner turn was not interrupted"
    );
    // What the model must act on (call `wait` with this turnId) reaches it in its form.
    let next = handle.text.contains("wait");
    assert!(
        next,
        "the handle does not tell the model to call wait: {handle:?}"
    );
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn both_hosts_hand_an_ask_off_collect_it_with_wait_and_cancel_another() {
    for_both(background_wait_cancel);
}

/// Asks in the test of a host that never reads our stderr.
const ASKS: usize = 30;

fn unread_stderr(host: Host) {
    let mut sandbox = HostSandbox::new(host);
    // At trace level a result is logged whole, with many lines around it: the answers fill
    // the host's end of our stderr (a socket pair holding ~210 KB) within a few asks, and
    // the later asks' lines overflow our queue of 256 lines. Gemini passes RUST_LOG on to
    // its servers; Codex clears their environment (and reads our stderr).
    if host == Host::Gemini {
        sandbox.extra_env.push(("RUST_LOG".into(), "trace".into()));
    }
    let answer = long_answer(8_000);
    let inner = Script::func(move |call| {
        call.prompt
            .starts_with("BIG")
            .then(|| Behavior::Text(answer.clone()))
    });
    let mut calls: Vec<ToolCall> = (0..ASKS)
        .map(|i| ask(&format!("BIG answer number {i}")))
        .collect();
    calls.push(ToolCall::new("status", json!({"full": true})));
    let mock = mock_for(calls, Some(inner));
    sandbox.configure(&mock, &["--log-level", "trace"]);
    let started = Instant::now();
    let run = sandbox.run(&mock, PROMPT);
    assert_host_ok(&run);
    let outputs = mock.host_outputs("ask");
    assert_eq!(outputs.len(), ASKS, "{}", run.dump());
    let status = nth_output(&mock, "status", 0);
    let dropped: u64 = status
        .text
        .split("logLinesDropped")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no logLinesDropped in {status:?}"));
    eprintln!(
        "{}: {ASKS} asks of 8 KB answers at trace level in {:?}; log lines dropped: {dropped}",
        host.name(),
        started.elapsed()
    );
    if host == Host::Gemini {
        // Gemini never read our stderr: lines were dropped, and we served on.
        assert!(dropped > 0, "no line dropped? {status:?}");
    }
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn a_host_that_never_reads_our_stderr_gets_every_answer_while_we_log_more_than_it_holds() {
    for_both(unread_stderr);
}

fn extra_arguments(host: Host) {
    let sandbox = HostSandbox::new(host);
    let mock = mock_for(
        vec![
            ToolCall::new(
                "ask",
                json!({"prompt": "hello with an extra", "wait_for_previous": false}),
            ),
            ToolCall::new("status", json!({"wait_for_previous": true, "verbose": 1})),
        ],
        None,
    );
    sandbox.configure(&mock, &[]);
    let run = sandbox.run(&mock, PROMPT);
    assert_host_ok(&run);
    let calls = mock.host_calls("ask");
    assert_eq!(calls[0].args["wait_for_previous"], false, "{calls:?}");
    let answer = nth_output(&mock, "ask", 0);
    assert!(
        answer.text.contains("to: hello with an extra"),
        "{answer:?}"
    );
    assert!(!answer.text.contains("unknown field"), "{answer:?}");
    let status = nth_output(&mock, "status", 0);
    assert!(!status.text.contains("unknown field"), "{status:?}");
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn arguments_a_tool_does_not_know_are_ignored_for_both_hosts() {
    for_both(extra_arguments);
}

fn killed_mid_ask(host: Host) {
    let sandbox = HostSandbox::new(host);
    // About 30 s of inner stream, unless it is interrupted.
    let long = "SLOW ms=500 chunks=60";
    let mock = mock_for(vec![ask(long)], None);
    sandbox.configure(&mock, &[]);
    let mut running = sandbox.spawn(&mock, PROMPT);
    let streaming = mock.wait_for_requests(Duration::from_secs(60), |requests| {
        requests
            .iter()
            .any(|r| r.is_messages() && r.prompt() == long)
    });
    assert!(streaming, "the inner turn never started");
    // Let the first chunks flow, then kill the host outright.
    std::thread::sleep(Duration::from_millis(500));
    let servers = sandbox.servers();
    assert_eq!(servers.len(), 1, "one claude-coded: {servers:?}");
    let killed = Instant::now();
    running.child.kill().expect("kill the host");
    let _ = running.child.wait();
    // The turn is interrupted at once: its stream to the API is cut.
    while mock.aborted_streams() == 0 && killed.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let interrupted = killed.elapsed();
    let gone = assert_sandbox_empties(&sandbox);
    eprintln!(
        "{}: host killed mid-ask: inner stream cut after {interrupted:?}, every process gone \
         after {:?}",
        host.name(),
        killed.elapsed().max(gone)
    );
    assert!(
        interrupted < Duration::from_secs(3),
        "the turn ran on for {interrupted:?} after its host was killed"
    );
    assert_status_truthful(&saved_status(&sandbox, &mock));
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn a_host_killed_mid_ask_interrupts_the_turn_at_once_and_leaves_nothing() {
    for_both(killed_mid_ask);
}

fn shutdown_case(host: Host) {
    let sandbox = HostSandbox::new(host);
    let mock = mock_for(vec![ask("hello before the end")], None);
    sandbox.configure(&mock, &[]);
    let run = sandbox.run(&mock, PROMPT);
    assert_host_ok(&run);
    assert!(
        nth_output(&mock, "ask", 0)
            .text
            .contains("to: hello before the end")
    );
    let took = assert_sandbox_empties(&sandbox);
    let status = saved_status(&sandbox, &mock);
    eprintln!(
        "{}: every process gone {took:?} after the host exited; saved state: daemon {}",
        host.name(),
        status["daemon"]["state"]
    );
    assert_status_truthful(&status);
    // The examples name no project: the host starts claude-coded in the directory it runs
    // in, and the agent worked there.
    let project = std::fs::canonicalize(sandbox.project()).expect("the project");
    assert_eq!(
        status["sessions"][0]["cwd"],
        project.display().to_string(),
        "{status}"
    );
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn after_the_host_exits_nothing_runs_status_does_not_say_running_and_the_agent_worked_in_the_project()
 {
    for_both(shutdown_case);
}

fn offline_case(host: Host) {
    let sandbox = HostSandbox::new(host);
    let mock = mock_for(vec![ask("hello offline")], None);
    sandbox.configure(&mock, &[]);
    let (run, trace) = sandbox.run_traced(&mock, PROMPT);
    assert_host_ok(&run);
    assert!(
        nth_output(&mock, "ask", 0)
            .text
            .contains("to: hello offline")
    );
    let connects = trace.lines().filter(|l| l.contains("AF_INET")).count();
    let outside = non_loopback(&trace);
    eprintln!(
        "{}: {connects} INET connects and sends traced, {} beyond loopback",
        host.name(),
        outside.len()
    );
    assert!(
        connects > 0,
        "the trace shows no connection at all:\n{trace}"
    );
    assert!(
        outside.is_empty(),
        "beyond loopback:\n{}",
        outside.join("\n")
    );
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn configured_from_our_examples_neither_host_connects_beyond_loopback() {
    for_both(offline_case);
}

fn failed_turn(host: Host) {
    let sandbox = HostSandbox::new(host);
    let mock = mock_for(vec![ask("ERR400 refuse this")], None);
    sandbox.configure(&mock, &[]);
    let run = sandbox.run(&mock, PROMPT);
    assert_host_ok(&run);
    let output = nth_output(&mock, "ask", 0);
    eprintln!(
        "{}: a failed turn reached the model as {} bytes: {:?}",
        host.name(),
        output.bytes(),
        output.text
    );
    // The API's own words reach the model in our one-line reason (Codex reads only
    // structuredContent, Gemini dumps the text blocks and structuredContent together), the
    // CLI's raw echo of the error does not, and "turn failed" is said at most once, so a
    // host that shows both forms does not repeat the framing.
    assert!(
        output.text.contains("API error 400: mock 400"),
        "{output:?}"
    );
    assert!(!output.text.contains("API Error"), "{output:?}");
    assert!(
        output.text.matches("turn failed").count() <= 1,
        "{output:?}"
    );
    assert!(
        output.bytes() <= 600,
        "{} bytes: {output:?}",
        output.bytes()
    );
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn a_failed_turn_reaches_both_models_short_with_its_reason_once() {
    for_both(failed_turn);
}

fn permission_question(host: Host) {
    let sandbox = HostSandbox::new(host);
    let mock = mock_for(vec![ask("RUN_TOOL touch asked.txt")], None);
    sandbox.configure(&mock, &[]);
    let run = sandbox.run(&mock, PROMPT);
    assert_host_ok(&run);
    let output = nth_output(&mock, "ask", 0);
    eprintln!(
        "{}: the ask that needed a permission came back as ({} bytes): {:?}",
        host.name(),
        output.bytes(),
        output.text
    );
    assert!(!sandbox.project().join("asked.txt").exists());
    match host {
        // Codex takes the question (it declares elicitation); `codex exec`, with nobody at
        // a terminal, declines it: the agent is told so, and the denial is in the result.
        Host::Codex => {
            let json = codex_output_json(&output.text);
            assert!(output.text.contains("declined"), "{output:?}");
            assert_eq!(json["permissionDenials"][0]["tool"], "Bash", "{json}");
        }
        // Gemini has no elicitation: denied at once, and the agent is told which rule
        // would allow it.
        Host::Gemini => {
            assert!(output.text.contains("--allow-tool"), "{output:?}");
            assert!(output.text.contains("refused"), "{output:?}");
        }
    }
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn a_permission_question_is_declined_by_codex_exec_and_denied_with_the_rule_under_gemini() {
    for_both(permission_question);
}

/// Codex's own clients (its TUI, IDE extensions) talk to `codex app-server`: there our
/// permission question reaches the client as the form we sent, and its answer decides.
#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn codex_app_server_puts_our_permission_form_to_its_client_and_the_answer_decides() {
    let _serial = one_real_cli_blocking();
    let sandbox = HostSandbox::new(Host::Codex);
    let mock = mock_for(vec![ask("RUN_TOOL touch asked.txt")], None);
    sandbox.configure(&mock, &[]);
    let mut server = sandbox.codex_app_server(&mock);
    let mut seen = Vec::new();
    let init = server.request(
        "initialize",
        json!({"clientInfo": {"name": "claude-coded-test", "version": "0"}}),
    );
    let reply = server.response(&mut seen, init);
    assert!(reply.get("error").is_none(), "{reply}");
    server.send(&json!({"jsonrpc": "2.0", "method": "initialized"}));
    let project = sandbox.project().display().to_string();
    // The sandbox's config says `approval_policy = "never"` (for `codex exec`), under
    // which Codex declines every form itself; a client that shows forms asks for them.
    let start = server.request(
        "thread/start",
        json!({ "cwd": project, "approvalPolicy": "on-request" }),
    );
    let started = server.response(&mut seen, start);
    let thread = started["result"]["thread"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no thread: {started}"))
        .to_string();
    server.request(
        "turn/start",
        json!({"threadId": thread, "input": [{"type": "text", "text": PROMPT}]}),
    );
    let question = server.until(&mut seen, |m| {
        m["method"] == "mcpServer/elicitation/request"
    });
    let params = &question["params"];
    eprintln!("codex app-server put to its client: {params}");
    assert_eq!(params["serverName"], "claude-coded", "{params}");
    assert_eq!(params["mode"], "form", "{params}");
    let message = params["message"].as_str().unwrap_or_default();
    assert!(message.contains("touch asked.txt"), "{params}");
    let choices = &params["requestedSchema"]["properties"]["decision"]["enum"];
    assert_eq!(choices[0], "Allow once", "{params}");
    assert!(!sandbox.project().join("asked.txt").exists());
    server.send(&json!({"jsonrpc": "2.0", "id": question["id"],
        "result": {"action": "accept", "content": {"decision": "Allow once"}}}));
    let done = server.until(&mut seen, |m| m["method"] == "turn/completed");
    assert!(
        sandbox.project().join("asked.txt").exists(),
        "the allowed command did not run: {done}"
    );
}
