//! End to end with the real Claude Code CLI as claude-coded's MCP host, and the real CLI
//! as claude-coded's child too, offline.
//!
//! The outer CLI runs `claude -p "OUTER: ..." --output-format stream-json --verbose` in a
//! sandbox project with claude-coded registered the way the README says (`claude mcp add
//! --scope project`, which writes `.mcp.json`) or with `--mcp-config FILE`; its three
//! tools are allowed with `--allowedTools` (no permission prompt, no
//! `--dangerously-skip-permissions`). Both CLIs talk to one mock Messages API
//! (`crates/mock-api`): the conversation whose first prompt starts with
//! `OUTER:` is the outer model, which loads the deferred MCP tool with `ToolSearch`, calls
//! it, and quotes the `tool_result` the host hands back; every other request is the inner
//! CLI's. What the outer model read is taken byte for byte from the recorded requests.
//!
//! ```sh
//! CLAUDE_BIN=$(scripts/install-claude-cli.sh) cargo test --test all e2e_real_host:: -- --nocapture
//! ```
//!
//! `--nocapture` shows the measurements (sizes, process counts, stop times). Built
//! without `CLAUDE_BIN` the tests are ignored, with the reason (see `build.rs`); under
//! `CI=true` or `CI=1` the test `in_ci_the_real_host_tests_are_built_to_run` fails then.
//! The tests run one at a time, and not beside those of `e2e_real_cli` (each starts two or
//! more ~200 MB CLIs).

mod host_support;
use std::path::Path;
use std::time::{Duration, Instant};

use host_support::{
    ASK, CLEANUP_DEADLINE, EVENTS, Kind, STATUS, Sandbox, WAIT, claude_bin, describe_pids,
    offline_env, serial, snapshot,
};
use mock_api::{
    Behavior, MessagesCall, MockApi, OuterModel, Script, TURN_ID, ToolCall, ToolResult,
};
use serde_json::{Value, json};
use test_support::{Bridge, Options, TempDir, proc_info};

#[test]
fn in_ci_the_real_host_tests_are_built_to_run() {
    test_support::assert_real_cli_tests_run_in_ci(cfg!(real_cli));
}

/// Starts the outer CLI's prompt, and no inner prompt.
const MARKER: &str = "OUTER:";
const OUTER_PROMPT: &str = "OUTER: use claude-coded for this task";

/// The size targets of issue 8 for what the outer model reads.
const ASK_12000_LIMIT: usize = 12_600;
const STATUS_LIMIT: usize = 800;
const EVENT_LIMIT: usize = 120;
/// A generous bound for claude-coded to exit after a signal (the 100 ms target of
/// issue 8 is for a benchmark, not a test on a shared two-core machine).
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// A mock whose outer model makes `calls`; inner requests go to `inner` (None: the
/// prompt keywords and the default `mock reply #N to: <prompt>`).
fn host_mock(
    calls: Vec<ToolCall>,
    inner: impl Fn(&MessagesCall<'_>) -> Option<Behavior> + Send + Sync + 'static,
) -> MockApi {
    MockApi::start_with(Script::host(OuterModel::new(MARKER, calls), inner))
}

fn ask(prompt: &str) -> ToolCall {
    ToolCall::new(ASK, json!({ "prompt": prompt }))
}

/// The inner CLI's default answer to `prompt`: `mock reply #N to: <prompt>`, N counting
/// every `/v1/messages` request of the mock (outer ones too) up to that one.
fn inner_default_reply(mock: &MockApi, prompt: &str) -> String {
    let requests = mock.messages_requests();
    let n = requests
        .iter()
        .position(|r| r.prompt() == prompt && !r.first_prompt().starts_with(MARKER))
        .unwrap_or_else(|| panic!("the inner CLI never sent {prompt:?} to the API"))
        + 1;
    format!("mock reply #{n} to: {prompt}")
}

/// The result of the `index`-th call of `tool` that the host gave back to the outer model.
fn nth_result(mock: &MockApi, tool: &str, index: usize) -> ToolResult {
    mock.tool_results_of(tool)
        .into_iter()
        .nth(index)
        .unwrap_or_else(|| {
            let prompts: Vec<String> = mock
                .messages_requests()
                .iter()
                .map(|r| r.prompt().chars().take(200).collect())
                .collect();
            panic!("the outer model never got result #{index} of {tool}; prompts: {prompts:#?}")
        })
}

/// The outer CLI finished its turn without error.
fn assert_outer_ok(run: &host_support::OuterRun) {
    assert!(run.exit.success(), "{}", run.dump());
    assert_eq!(run.result()["is_error"], false, "{}", run.dump());
}

/// How the host gave the result's content to its model: one string, or text blocks.
fn content_form(result: &ToolResult) -> String {
    match &result.content {
        Value::String(_) => "one string".to_string(),
        Value::Array(blocks) => format!("{} content blocks", blocks.len()),
        other => format!("{other}"),
    }
}

/// Events in an `events` tool result: the `events` array of its JSON, else its `#<seq>`
/// lines.
fn event_count(text: &str) -> usize {
    match serde_json::from_str::<Value>(text) {
        Ok(value) if value["events"].is_array() => value["events"].as_array().map_or(0, Vec::len),
        _ => text.lines().filter(|l| l.starts_with('#')).count(),
    }
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn registered_with_claude_mcp_add_the_outer_model_asks_and_reads_the_inner_answer() {
    let sandbox = Sandbox::new();
    let inner_prompt = "say hello from inside";
    let mock = host_mock(vec![ask(inner_prompt)], |_| None);
    sandbox.register_with_mcp_add(&mock, &[]);
    let run = sandbox.run_outer(&mock, OUTER_PROMPT, &[]);
    eprintln!("{}", run.summary());
    assert_outer_ok(&run);

    let expected = inner_default_reply(&mock, inner_prompt);
    let result = nth_result(&mock, ASK, 0);
    eprintln!(
        "ask tool_result: {} bytes in {}, is_error={}: {}",
        result.bytes(),
        content_form(&result),
        result.is_error,
        result.text()
    );
    assert!(!result.is_error, "{result:?}");
    assert!(result.text().contains(&expected), "{result:?}");
    // The whole chain: the outer model's final answer quotes the inner CLI's.
    assert!(run.result_text().contains(&expected), "{}", run.dump());
    // The inner CLI got the prompt exactly once.
    let inner_asks = mock
        .messages_requests()
        .iter()
        .filter(|r| r.prompt() == inner_prompt)
        .count();
    assert_eq!(inner_asks, 1);
    // Quiet under a host: the host logs every stderr line of a server as an error.
    assert_eq!(
        run.host_log.stderr_entries, 0,
        "claude-coded wrote to stderr: {:?}",
        run.host_log.server_lines
    );
    // The host started the server it was told to (and loaded it from .mcp.json).
    let init = run
        .lines
        .iter()
        .find(|l| l["subtype"] == "init")
        .expect("system/init line");
    let servers = init["mcp_servers"].to_string();
    assert!(servers.contains("\"claude-coded\""), "{servers}");
    assert!(servers.contains("\"connected\""), "{servers}");
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn given_with_mcp_config_the_outer_model_asks_and_no_claude_coded_nests() {
    let sandbox = Sandbox::new();
    let inner_prompt = "say hello through mcp-config";
    let mock = host_mock(vec![ask(inner_prompt)], |_| None);
    let config = sandbox.write_mcp_config(&[]);
    let config = config.display().to_string();
    let run = sandbox.run_outer(&mock, OUTER_PROMPT, &["--mcp-config", &config]);
    eprintln!("{}", run.summary());
    assert_outer_ok(&run);
    let expected = inner_default_reply(&mock, inner_prompt);
    let result = nth_result(&mock, ASK, 0);
    assert!(!result.is_error, "{result:?}");
    assert!(result.text().contains(&expected), "{result:?}");
    assert!(run.result_text().contains(&expected), "{}", run.dump());
    // `--mcp-config` is not inherited: the inner CLI starts no claude-coded.
    assert_eq!(
        run.tree.count(Kind::Server, 1),
        1,
        "{}",
        run.tree.describe()
    );
    assert_eq!(run.tree.count(Kind::Cli, 1), 1, "{}", run.tree.describe());
    assert_eq!(run.tree.count_at_or_below(2), 0, "{}", run.tree.describe());
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn status_and_events_calls_reach_the_outer_model_after_an_ask() {
    let sandbox = Sandbox::new();
    let mock = host_mock(
        vec![
            ask("hello"),
            ToolCall::new(STATUS, json!({})),
            ToolCall::new(EVENTS, json!({"limit": 50})),
        ],
        |_| None,
    );
    let config = sandbox.write_mcp_config(&[]).display().to_string();
    let run = sandbox.run_outer(&mock, OUTER_PROMPT, &["--mcp-config", &config]);
    eprintln!("{}", run.summary());
    assert_outer_ok(&run);
    let status = nth_result(&mock, STATUS, 0);
    let events = nth_result(&mock, EVENTS, 0);
    eprintln!(
        "status tool_result ({} bytes): {}",
        status.bytes(),
        status.text()
    );
    eprintln!(
        "events tool_result ({} bytes): {}",
        events.bytes(),
        events.text()
    );
    assert!(!status.is_error, "{status:?}");
    assert!(status.text().contains("ready"), "{status:?}");
    assert!(!events.is_error, "{events:?}");
    assert!(events.text().contains("child.started"), "{events:?}");
    assert!(event_count(&events.text()) > 0, "{events:?}");
    assert!(
        run.result_text().contains("child.started"),
        "the outer model quoted the events: {}",
        run.dump()
    );
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn an_inner_api_error_reaches_the_outer_model_as_a_readable_error() {
    let sandbox = Sandbox::new();
    let mock = host_mock(
        vec![ask("ERR400 refuse this"), ask("ERR500 fail this")],
        |_| None,
    );
    let config = sandbox.write_mcp_config(&[]).display().to_string();
    // One retry instead of ten (about 170 s) for the 500.
    let run = sandbox.run_outer_with_env(
        &mock,
        OUTER_PROMPT,
        &["--mcp-config", &config],
        &[("CLAUDE_CODE_MAX_RETRIES", "1")],
    );
    eprintln!("{}", run.summary());
    assert_outer_ok(&run);
    for (index, status) in [(0, "400"), (1, "500")] {
        let result = nth_result(&mock, ASK, index);
        let text = result.text();
        eprintln!(
            "inner {status}: tool_result ({} bytes in {}, is_error={}): {text}",
            result.bytes(),
            content_form(&result),
            result.is_error
        );
        assert!(
            result.is_error,
            "an API {status} is a failed ask: {result:?}"
        );
        // Readable: it names the API error (status and the API's own message) in words.
        assert!(text.contains(status), "{result:?}");
        assert!(text.contains(&format!("mock {status}")), "{result:?}");
    }
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn an_inner_timeout_gives_the_outer_model_a_timeout_error_and_claude_coded_serves_on() {
    let sandbox = Sandbox::new();
    let mock = host_mock(
        vec![
            ToolCall::new(
                ASK,
                json!({"prompt": "SLOW ms=300 chunks=30", "timeoutMs": 1000}),
            ),
            ask("after the timeout"),
        ],
        |_| None,
    );
    let config = sandbox.write_mcp_config(&[]).display().to_string();
    let run = sandbox.run_outer(&mock, OUTER_PROMPT, &["--mcp-config", &config]);
    eprintln!("{}", run.summary());
    assert_outer_ok(&run);
    let timed_out = nth_result(&mock, ASK, 0);
    eprintln!(
        "timeout: tool_result ({} bytes, is_error={}): {}",
        timed_out.bytes(),
        timed_out.is_error,
        timed_out.text()
    );
    assert!(timed_out.is_error, "{timed_out:?}");
    let lower = timed_out.text().to_lowercase();
    assert!(
        lower.contains("timed out") || lower.contains("timeout"),
        "{timed_out:?}"
    );
    assert!(
        timed_out.text().contains("1000"),
        "names the limit: {timed_out:?}"
    );
    let after = nth_result(&mock, ASK, 1);
    assert!(!after.is_error, "{after:?}");
    assert!(after.text().contains("to: after the timeout"), "{after:?}");
    // The same claude-coded answered both calls.
    assert_eq!(
        run.tree.count(Kind::Server, 1),
        1,
        "{}",
        run.tree.describe()
    );
}

/// The contract of the depth limit (default `--max-depth 1`): the inner CLI, started in
/// the same project and HOME, loads the same `.mcp.json` and starts claude-coded again,
/// but that one starts no CLI of its own.
#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn with_the_default_depth_limit_a_round_trip_runs_one_inner_cli_and_at_most_one_nested_claude_coded()
 {
    let sandbox = Sandbox::new();
    // About 2 s of inner stream: time for a nested claude-coded to start a CLI if it would.
    let mock = host_mock(vec![ask("SLOW ms=200 chunks=10")], |_| None);
    sandbox.register_with_mcp_add(&mock, &[]);
    let run = sandbox.run_outer(&mock, OUTER_PROMPT, &[]);
    eprintln!("{}", run.summary());
    eprintln!("processes:\n{}", run.tree.describe());
    assert_outer_ok(&run);
    let tree = &run.tree;
    let counts = format!(
        "outer CLI {}, top claude-coded {}, inner CLI {}, nested claude-coded {}, second \
         inner CLI {}, CLIs and claude-codeds deeper {}; deepest level {}",
        tree.count(Kind::Cli, 0),
        tree.count(Kind::Server, 1),
        tree.count(Kind::Cli, 1),
        tree.count(Kind::Server, 2),
        tree.count(Kind::Cli, 2),
        tree.count_at_or_below(3),
        tree.deepest()
    );
    eprintln!("{counts}");
    let result = nth_result(&mock, ASK, 0);
    assert!(!result.is_error, "{result:?}");
    assert_eq!(tree.count(Kind::Cli, 0), 1, "{counts}");
    assert_eq!(tree.count(Kind::Server, 1), 1, "{counts}");
    assert_eq!(tree.count(Kind::Cli, 1), 1, "{counts}");
    assert!(tree.count(Kind::Server, 2) <= 1, "{counts}");
    assert_eq!(tree.count(Kind::Cli, 2), 0, "{counts}");
    assert_eq!(tree.count_at_or_below(3), 0, "{counts}");
}

/// 12,000 bytes of text without leading or trailing blanks (the CLI trims those).
fn answer_of_12000_bytes() -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 12_000 {
        text.push_str(&format!("word{i:05} "));
        i += 1;
    }
    text.truncate(11_999);
    text.push('.');
    assert_eq!(text.len(), 12_000);
    text
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn what_the_outer_model_reads_stays_within_the_size_targets() {
    let sandbox = Sandbox::new();
    let answer = answer_of_12000_bytes();
    let inner_answer = answer.clone();
    let mock = host_mock(
        vec![
            ask("BIG answer please"),
            ToolCall::new(STATUS, json!({})),
            ToolCall::new(EVENTS, json!({"limit": 50})),
        ],
        move |call| {
            (call.prompt == "BIG answer please").then(|| Behavior::Text(inner_answer.clone()))
        },
    );
    let config = sandbox.write_mcp_config(&[]).display().to_string();
    let run = sandbox.run_outer(&mock, OUTER_PROMPT, &["--mcp-config", &config]);
    eprintln!("{}", run.summary());
    assert_outer_ok(&run);
    let asked = nth_result(&mock, ASK, 0);
    let status = nth_result(&mock, STATUS, 0);
    let events = nth_result(&mock, EVENTS, 0);
    let count = event_count(&events.text());
    let per_event = events.bytes() / count.max(1);
    let wire: usize = mock
        .messages_requests()
        .iter()
        .filter(|r| !r.tool_results().is_empty() && r.first_prompt().starts_with(MARKER))
        .map(|r| r.body_len)
        .max()
        .unwrap_or(0);
    eprintln!(
        "sizes the outer model read: ask of a 12,000-byte answer {} bytes (target <= \
         {ASK_12000_LIMIT}); status {} bytes (target <= {STATUS_LIMIT}); events {} bytes for \
         {count} events = {per_event} bytes/event (target <= {EVENT_LIMIT}); largest outer \
         request body {wire} bytes",
        asked.bytes(),
        status.bytes(),
        events.bytes()
    );
    assert!(!asked.is_error && !status.is_error && !events.is_error);
    assert!(asked.text().contains(&answer), "the answer is all there");
    assert!(count > 0, "{events:?}");
    let mut misses = Vec::new();
    if asked.bytes() > ASK_12000_LIMIT {
        misses.push(format!(
            "ask: {} bytes > {ASK_12000_LIMIT} (the answer is {} bytes; {} times in it)",
            asked.bytes(),
            answer.len(),
            asked.text().matches(&answer).count()
        ));
    }
    if status.bytes() > STATUS_LIMIT {
        misses.push(format!("status: {} bytes > {STATUS_LIMIT}", status.bytes()));
    }
    if per_event > EVENT_LIMIT {
        misses.push(format!(
            "events: {per_event} bytes/event > {EVENT_LIMIT} ({} bytes, {count} events)",
            events.bytes()
        ));
    }
    assert!(
        misses.is_empty(),
        "over the size targets:\n{}",
        misses.join("\n")
    );
}

/// Fails with the survivors, the process tree of the run and how the host stopped us.
fn assert_sandbox_empties(sandbox: &Sandbox, run: &host_support::OuterRun) {
    match sandbox.wait_empty(CLEANUP_DEADLINE) {
        Ok(took) => eprintln!("every process of the sandbox was gone {took:?} after the outer CLI"),
        Err(left) => panic!(
            "left {CLEANUP_DEADLINE:?} after the outer CLI exited:\n{}\nthe run's processes:\n{}\n\
             host log: {}",
            describe_pids(&left),
            run.tree.describe(),
            run.host_log.summary()
        ),
    }
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn no_claude_coded_or_cli_is_left_after_the_outer_cli_exits() {
    let sandbox = Sandbox::new();
    // Registered as the README says, so the inner CLI starts claude-coded again too.
    let mock = host_mock(vec![ask("hello")], |_| None);
    sandbox.register_with_mcp_add(&mock, &[]);
    let run = sandbox.run_outer(&mock, OUTER_PROMPT, &[]);
    eprintln!("{}", run.summary());
    assert_outer_ok(&run);
    assert!(!nth_result(&mock, ASK, 0).is_error);
    assert!(run.tree.count(Kind::Cli, 1) >= 1, "{}", run.tree.describe());
    assert_sandbox_empties(&sandbox, &run);
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn a_background_process_the_inner_agent_started_is_gone_after_the_outer_cli_exits() {
    let sandbox = Sandbox::new();
    // The inner agent may run Bash (so it is not denied); it starts a process that
    // outlives its tool call, as `npm run dev &` would.
    let tool = "touch tool-ran; sleep 47 >/dev/null 2>&1 &";
    let mock = host_mock(vec![ask(&format!("RUN_TOOL {tool}"))], |_| None);
    let config = sandbox
        .write_mcp_config(&["--claude-arg", "--allowedTools", "--claude-arg", "Bash"])
        .display()
        .to_string();
    let run = sandbox.run_outer(&mock, OUTER_PROMPT, &["--mcp-config", &config]);
    eprintln!("{}", run.summary());
    assert_outer_ok(&run);
    let result = nth_result(&mock, ASK, 0);
    assert!(!result.is_error, "{result:?}");
    assert!(
        sandbox.project().join("tool-ran").is_file(),
        "the inner agent ran its Bash tool: {result:?}"
    );
    assert_sandbox_empties(&sandbox, &run);
}

/// Starts claude-coded over the real CLI as an MCP server (initialize handshake), stops
/// it with `signal` during the CLI's warm-up and, in a second run, once an ask has been
/// answered; prints the exit times and fails past [`STOP_DEADLINE`] or on a survivor.
fn stop_by_signal(signal: i32) {
    let bin = claude_bin();
    let _serial = serial();
    let cli_exe = std::fs::canonicalize(&bin).expect("resolve CLAUDE_BIN");
    let bridge_exe = std::fs::canonicalize(test_support::bridge()).expect("resolve claude-coded");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut report = Vec::new();
    for ready in [false, true] {
        let state = if ready {
            "after an ask"
        } else {
            "during warm-up"
        };
        let mock = MockApi::start();
        let dir = TempDir::new("real-host-signal");
        let home = dir.path().to_path_buf();
        let tmp = home.join("tmp");
        std::fs::create_dir_all(&tmp).expect("create TMPDIR");
        let mut options = Options::default()
            .claude_bin(bin.to_str().expect("utf-8 path"))
            .clean_env()
            .dir(dir);
        options.env = offline_env(&mock);
        options
            .env
            .push(("TMPDIR".to_string(), tmp.display().to_string()));
        let (exit_after, all_gone_after) = runtime.block_on(async {
            let mut bridge = Bridge::start_with(options);
            let pid = bridge.pid() as u32;
            let init = bridge
                .call(
                    "initialize",
                    json!({"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "e2e_real_host", "version": "0"}}),
                )
                .await;
            assert!(init.get("result").is_some(), "{init}");
            bridge
                .send_raw(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .await;
            if ready {
                let answer = bridge
                    .call(
                        "tools/call",
                        json!({"name": "ask", "arguments": {"prompt": "hello"}}),
                    )
                    .await;
                assert_ne!(answer["result"]["isError"], true, "{answer}");
                assert!(answer.get("result").is_some(), "{answer}");
            }
            // The CLI has been started (during warm-up: it is still starting).
            let deadline = Instant::now() + Duration::from_secs(20);
            while !snapshot(pid, &cli_exe, &bridge_exe)
                .iter()
                .any(|(_, kind, _, _)| *kind == Kind::Cli)
            {
                assert!(Instant::now() < deadline, "claude-coded started no CLI");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let sent = Instant::now();
            // SAFETY: kill(2) on the claude-coded this test started.
            assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
            let status = tokio::time::timeout(Duration::from_secs(30), bridge.child.wait())
                .await
                .expect("claude-coded exits after the signal")
                .expect("wait");
            let exit_after = sent.elapsed();
            let left = wait_home_empty(&home, Duration::from_secs(30));
            assert!(
                left.is_empty(),
                "left after claude-coded exited:\n{}",
                describe_pids(&left)
            );
            eprintln!("  {state}: exit {status}");
            (exit_after, sent.elapsed())
        });
        report.push((state, exit_after, all_gone_after));
    }
    let name = if signal == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    for (state, exit_after, gone_after) in &report {
        eprintln!(
            "{name} {state}: claude-coded exited after {exit_after:?}, its processes were all \
             gone after {gone_after:?}"
        );
    }
    for (state, exit_after, gone_after) in report {
        assert!(
            exit_after <= STOP_DEADLINE && gone_after <= STOP_DEADLINE,
            "{name} {state}: exit after {exit_after:?}, all gone after {gone_after:?} \
             (limit {STOP_DEADLINE:?})"
        );
    }
}

/// Waits up to `limit` for no process with `HOME=<home>`; returns the survivors.
fn wait_home_empty(home: &Path, limit: Duration) -> Vec<u32> {
    let entry = format!("HOME={}", home.display());
    let deadline = Instant::now() + limit;
    loop {
        let left = proc_info::processes_with_env(&entry);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn sigint_stops_claude_coded_and_its_cli_within_five_seconds_in_warm_up_and_after_an_ask() {
    stop_by_signal(libc::SIGINT);
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn sigterm_stops_claude_coded_and_its_cli_within_five_seconds_in_warm_up_and_after_an_ask() {
    stop_by_signal(libc::SIGTERM);
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn a_permission_question_reaches_the_real_host_as_an_input_round_and_never_hangs() {
    let sandbox = Sandbox::new();
    let mock = host_mock(vec![ask("RUN_TOOL touch hosted.txt")], |_| None);
    sandbox.register_with_mcp_add(&mock, &[]);
    let run = sandbox.run_outer(&mock, OUTER_PROMPT, &[]);
    eprintln!("{}", run.summary());
    assert_outer_ok(&run);
    let result = nth_result(&mock, ASK, 0);
    eprintln!(
        "ask tool_result: is_error={}: {}",
        result.is_error,
        result.text()
    );
    // The host took the question as an input round (2026-07-28) and, in print mode with
    // nobody at a terminal, dismissed the form; its retry brought that answer, the turn
    // went on with the tool denied, and the call completed.
    let received = run
        .host_log
        .server_lines
        .iter()
        .any(|l| l.contains("Elicitation request received") && l.contains("decision"));
    assert!(received, "{:?}", run.host_log.server_lines);
    assert!(!result.is_error, "{result:?}");
    assert!(
        result.text().contains("dismissed the question"),
        "{result:?}"
    );
    assert!(!sandbox.project().join("hosted.txt").exists());
    assert_eq!(
        run.host_log.stderr_entries, 0,
        "{:?}",
        run.host_log.server_lines
    );
}

/// The `daemon-state.json` the host's claude-coded left in the sandbox's HOME.
fn hosted_daemon_state(sandbox: &Sandbox) -> Value {
    let base = sandbox.home().join(".local/state/claude-coded");
    let dirs = std::fs::read_dir(&base).unwrap_or_else(|e| panic!("{}: {e}", base.display()));
    let state = dirs
        .filter_map(Result::ok)
        .map(|dir| dir.path().join("daemon-state.json"))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("no daemon-state.json under {}", base.display()));
    serde_json::from_slice(&std::fs::read(&state).expect("read daemon-state.json"))
        .expect("daemon-state.json is JSON")
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn the_pinned_host_does_not_declare_tasks_so_a_long_ask_is_a_plain_call_there() {
    let sandbox = Sandbox::new();
    let mock = host_mock(vec![ask("SLOW ms=200 chunks=5")], |_| None);
    let config = sandbox.write_mcp_config(&[]).display().to_string();
    let run = sandbox.run_outer(&mock, OUTER_PROMPT, &["--mcp-config", &config]);
    eprintln!("{}", run.summary());
    assert_outer_ok(&run);
    let state = hosted_daemon_state(&sandbox);
    let client = &state["client"];
    eprintln!("the host as a client: {client}");
    let task_lines: Vec<&String> = run
        .host_log
        .server_lines
        .iter()
        .filter(|l| l.contains("tasks/") || l.contains("\"task\""))
        .collect();
    eprintln!("host log lines about tasks: {task_lines:?}");
    let result = nth_result(&mock, ASK, 0);
    eprintln!(
        "ask tool_result: is_error={}: {}",
        result.is_error,
        result.text()
    );
    // Observed with Claude Code 2.1.332: it speaks 2026-07-28 and declares roots and
    // elicitation, not the tasks extension, so `ask` is an ordinary call there (the model
    // can still hand long work off with `background: true` and `wait`). When a pinned CLI
    // declares tasks, this test fails and should become one that runs the ask as a task.
    assert_eq!(client["protocolVersion"], "2026-07-28", "{client}");
    let capabilities = client["capabilities"].to_string();
    assert!(!capabilities.contains("tasks"), "{capabilities}");
    assert!(task_lines.is_empty(), "{task_lines:?}");
    assert!(!result.is_error, "{result:?}");
    assert!(result.text().contains("\"ok\":true"), "{result:?}");
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn the_outer_model_hands_a_long_ask_off_works_on_and_collects_it_with_wait() {
    let sandbox = Sandbox::new();
    let long = "SLOW ms=400 chunks=6";
    let mock = host_mock(
        vec![
            ToolCall::new(ASK, json!({"prompt": long, "background": true})),
            ToolCall::new(STATUS, json!({})),
            ToolCall::new(WAIT, json!({"turnId": TURN_ID, "timeoutMs": 30_000})),
        ],
        |_| None,
    );
    let config = sandbox.write_mcp_config(&[]).display().to_string();
    let run = sandbox.run_outer(&mock, OUTER_PROMPT, &["--mcp-config", &config]);
    eprintln!("{}", run.summary());
    assert_outer_ok(&run);
    let handed_off = nth_result(&mock, ASK, 0);
    let status = nth_result(&mock, STATUS, 0);
    let waited = nth_result(&mock, WAIT, 0);
    eprintln!(
        "ask: {}\nstatus: {}\nwait: {}",
        handed_off.text(),
        status.text(),
        waited.text()
    );
    assert!(!handed_off.is_error, "{handed_off:?}");
    assert!(
        handed_off.text().contains("\"running\":true"),
        "{handed_off:?}"
    );
    // The outer model worked on while the inner ask was in flight: its status call saw
    // the turn running, or still queued behind the CLI's start, and nothing answered yet.
    let in_flight =
        status.text().contains("\"state\":\"busy\"") || status.text().contains("\"queued\":1");
    assert!(in_flight, "{status:?}");
    assert!(status.text().contains("\"ok\":0"), "{status:?}");
    assert!(!waited.is_error, "{waited:?}");
    assert!(waited.text().contains("\"running\":false"), "{waited:?}");
    assert!(waited.text().contains("slow"), "{waited:?}");
    assert!(run.result_text().contains("slow"), "{}", run.dump());
}

#[test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
fn a_server_started_elsewhere_works_in_the_hosts_project_which_its_roots_name() {
    let sandbox = Sandbox::new();
    let elsewhere = sandbox.root().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("create the other directory");
    let inner_prompt = "where do you work?";
    let mock = host_mock(vec![ask(inner_prompt)], |_| None);
    // Started in another directory, allowed to work anywhere in the sandbox: the host's
    // roots (its project) say where.
    let allowed = sandbox.root().display().to_string();
    let config = sandbox.write_mcp_config_in(&elsewhere, &["--allow-dir", &allowed]);
    let config = config.display().to_string();
    let run = sandbox.run_outer(&mock, OUTER_PROMPT, &["--mcp-config", &config]);
    eprintln!("{}", run.summary());
    assert_outer_ok(&run);
    let result = nth_result(&mock, ASK, 0);
    assert!(!result.is_error, "{result:?}");
    // The inner CLI tells its model where it works (its environment, and its memory
    // folder named after its directory): the host's project, not where it started.
    let inner = mock
        .messages_requests()
        .into_iter()
        .find(|r| r.prompt() == inner_prompt)
        .expect("the inner CLI's request");
    let told = inner.body.to_string();
    let project = std::fs::canonicalize(sandbox.project()).unwrap();
    let folder = |dir: &std::path::Path| dir.display().to_string().replace(['/', '.'], "-");
    assert!(
        told.contains(&folder(&project)),
        "the inner agent works in the host's project"
    );
    let elsewhere = std::fs::canonicalize(&elsewhere).unwrap();
    assert!(!told.contains(&folder(&elsewhere)), "nor where it started");
}
