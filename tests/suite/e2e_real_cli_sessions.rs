//! Named sessions end to end with the real Claude Code CLI, offline on the mock Messages
//! API: parallel sessions each in its own conversation, order within one, a name's
//! conversation continued after claude-coded restarts, `fork`, the real CLI in a session's
//! `cwd`, one session's CLI killed while another works, idle reaping with revival, and
//! budgets (a session's, and an ask's own, which runs in a CLI started for it).
//!
//! ```sh
//! CLAUDE_BIN=$(scripts/install-claude-cli.sh) cargo test --test all e2e_real_cli_sessions
//! ```
//!
//! Built without `CLAUDE_BIN` the tests are ignored with the reason (see `build.rs` and
//! `e2e_real_cli`). Each test holds the one-real-CLI lock for all its CLIs (a test with
//! four sessions runs four at once, beside no other real-CLI test), in the sandbox of
//! `test_support::real_cli::Real`. The CLI double's side of the same rules is in
//! `sessions`.

use std::collections::BTreeSet;
use std::time::Duration;

use mock_api::MockApi;
use serde_json::{Value, json};
use test_support::real_cli::{Real, kill, wait_for_session_file};
use test_support::{Bridge, READ_TIMEOUT, TempDir, error_code, listed_session, wait_gone};

#[test]
fn in_ci_the_real_cli_sessions_tests_are_built_to_run() {
    test_support::assert_real_cli_tests_run_in_ci(cfg!(real_cli));
}

/// What claude-coded printed and this test has not looked at yet: answers and
/// notifications that came while it waited for something else, kept so none is lost
/// (several asks are open at once here).
#[derive(Default)]
struct Backlog(Vec<Value>);

impl Backlog {
    /// Sends a request and returns its response, keeping whatever came before it.
    async fn call(&mut self, bridge: &mut Bridge, method: &str, params: Value) -> Value {
        let id = bridge.request(method, params).await;
        let (response, notes) = bridge.response_for(&id).await;
        self.0.extend(notes);
        response
    }

    async fn sessions(&mut self, bridge: &mut Bridge) -> Value {
        self.call(bridge, "sessions", json!({})).await["result"].clone()
    }

    /// Polls `sessions` until `pred` holds; returns that list.
    async fn wait_sessions(
        &mut self,
        bridge: &mut Bridge,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
        loop {
            let list = self.sessions(bridge).await;
            if pred(&list) {
                return list;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last sessions: {list}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The response to the request `id`, and the `ask/event` notifications of it.
    async fn answer(&mut self, bridge: &mut Bridge, id: &Value) -> (Value, Vec<Value>) {
        loop {
            let found = self
                .0
                .iter()
                .position(|m| m.get("id") == Some(id) && m.get("method").is_none());
            if let Some(at) = found {
                let response = self.0.remove(at);
                let (notes, rest) = std::mem::take(&mut self.0)
                    .into_iter()
                    .partition(|m| m["params"]["requestId"] == *id);
                self.0 = rest;
                return (response, notes);
            }
            self.0.push(bridge.next_message().await);
        }
    }

    /// The result of the ask `id` (panics on an error response).
    async fn result(&mut self, bridge: &mut Bridge, id: &Value) -> Value {
        let (response, _) = self.answer(bridge, id).await;
        assert!(response.get("result").is_some(), "{response}");
        response["result"].clone()
    }

    /// Reads until the ask `id` has streamed an `assistant` line: its turn is under way.
    async fn wait_streaming(&mut self, bridge: &mut Bridge, id: &Value) {
        loop {
            let streaming = self
                .0
                .iter()
                .any(|m| m["params"]["requestId"] == *id && m["params"]["type"] == "assistant");
            if streaming {
                return;
            }
            let message = bridge.next_message().await;
            assert_ne!(message.get("id"), Some(id), "the turn ended: {message}");
            self.0.push(message);
        }
    }
}

fn session_id(result: &Value) -> String {
    let id = result["sessionId"].as_str().unwrap_or_default();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "no session id: {result}");
    id.to_string()
}

/// What the model saw in the last request whose prompt is `prompt`: the conversation.
fn history_of(mock: &MockApi, prompt: &str) -> String {
    mock.messages_requests()
        .into_iter()
        .rev()
        .find(|r| r.prompt() == prompt)
        .unwrap_or_else(|| panic!("no request with the prompt {prompt:?}"))
        .body["messages"]
        .to_string()
}

/// The CLI's arguments in the session's `child.started` events, latest last.
async fn started_args(bridge: &mut Bridge, name: &str) -> Vec<Vec<Value>> {
    let events = bridge
        .call("events", json!({"session": name, "limit": 1000}))
        .await["result"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    events
        .iter()
        .filter(|e| e["type"] == "child.started")
        .map(|e| e["detail"]["args"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// `--resume <id>` is among `args`.
fn resumes(args: &[Value], id: &str) -> bool {
    args.windows(2)
        .any(|pair| pair[0] == "--resume" && pair[1] == id)
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn four_asks_to_four_sessions_run_at_once_each_in_a_conversation_of_its_own() {
    let mut real = Real::start().await;
    real.ready().await;
    let mut seen = Backlog::default();
    let names = ["a", "b", "c", "d"];
    let mut ids = Vec::new();
    for name in names {
        // ~3 s of stream each; the words after the keyword tell the requests apart.
        let prompt = format!("SLOW ms=400 chunks=10 worker-{name}");
        ids.push(real.bridge.ask_in(name, &prompt).await);
    }
    // All four CLIs run a turn at the same time (the pool of four makes room by stopping
    // the idle `default`).
    seen.wait_sessions(&mut real.bridge, "four turns at once", |list| {
        names.iter().all(|name| {
            list["sessions"]
                .as_array()
                .is_some_and(|all| all.iter().any(|s| s["name"] == *name && s["busy"] == true))
        })
    })
    .await;
    let mut session_ids = BTreeSet::new();
    for id in &ids {
        let result = seen.result(&mut real.bridge, id).await;
        assert_eq!(result["ok"], true, "{result}");
        session_ids.insert(session_id(&result));
    }
    assert_eq!(session_ids.len(), 4, "{session_ids:?}");
    let list = seen.sessions(&mut real.bridge).await;
    assert_eq!(list["live"], 4, "{list}");
    assert_eq!(
        listed_session(&list, "default")["state"],
        "stopped",
        "{list}"
    );
    let listed: BTreeSet<String> = names
        .iter()
        .map(|name| session_id(listed_session(&list, name)))
        .collect();
    assert_eq!(listed, session_ids);
    // Four conversations: each request of a session carries its own prompt only.
    for name in names {
        let history = history_of(&real.mock, &format!("SLOW ms=400 chunks=10 worker-{name}"));
        let others = names.iter().filter(|other| **other != name);
        for other in others {
            assert!(!history.contains(&format!("worker-{other}")), "{history}");
        }
    }
    assert_eq!(real.bridge.close_and_wait().await, 0);
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn two_asks_to_one_session_are_answered_in_the_order_sent_in_one_conversation() {
    let mut real = Real::start().await;
    let mut seen = Backlog::default();
    let slow = real.bridge.ask_in("a", "SLOW ms=200 chunks=6").await;
    let quick = real.bridge.ask_in("a", "after the slow one").await;
    let mut order = Vec::new();
    while order.len() < 2 {
        let message = real.bridge.next_message().await;
        if let Some(id) = message.get("id").filter(|id| **id == slow || **id == quick) {
            assert_eq!(message["result"]["ok"], true, "{message}");
            order.push((id.clone(), message["result"]["sessionId"].clone()));
        }
        seen.0.push(message);
    }
    assert_eq!(order[0].0, slow);
    assert_eq!(order[1].0, quick);
    assert_eq!(order[0].1, order[1].1, "one conversation");
    // The second turn was sent after the first had ended: its history has the whole
    // first exchange.
    let history = history_of(&real.mock, "after the slow one");
    assert!(history.contains("SLOW ms=200 chunks=6"), "{history}");
    assert!(history.contains("slow slow"), "{history}");
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn a_named_session_continues_its_real_conversation_after_claude_coded_restarts() {
    let mut real = Real::start().await;
    let before = real
        .bridge
        .ask_ok_with(json!({"session": "reviewer", "prompt": "remember the word banana"}))
        .await;
    let id = session_id(&before);
    wait_for_session_file(&real.home, &id).await;
    assert_eq!(real.restart_with(|o| o).await, 0);
    let list = real.bridge.call("sessions", json!({})).await["result"].clone();
    let stored = listed_session(&list, "reviewer");
    assert_eq!(stored["state"], "stopped", "{list}");
    assert_eq!(stored["sessionId"], json!(id), "{list}");
    let after = real
        .bridge
        .ask_ok_with(json!({"session": "reviewer", "prompt": "what was the word?"}))
        .await;
    assert_eq!(session_id(&after), id);
    // The real CLI resumed the saved conversation: the model saw the turn of the first run.
    let history = history_of(&real.mock, "what was the word?");
    assert!(history.contains("remember the word banana"), "{history}");
    assert!(
        history.contains("to: remember the word banana"),
        "{history}"
    );
    let started = started_args(&mut real.bridge, "reviewer").await;
    assert!(
        started.last().is_some_and(|args| resumes(args, &id)),
        "{started:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn fork_branches_a_real_conversation_under_a_new_id_and_the_parent_goes_on_unchanged() {
    let mut real = Real::start().await;
    let parent = real
        .bridge
        .ask_ok_with(json!({"session": "main", "prompt": "remember the word banana"}))
        .await;
    let parent_id = session_id(&parent);
    wait_for_session_file(&real.home, &parent_id).await;
    let branch = real
        .bridge
        .ask_ok_with(
            json!({"session": "branch", "resume": parent_id, "fork": true,
               "prompt": "in the branch: forget it"}),
        )
        .await;
    let branch_id = session_id(&branch);
    assert_ne!(branch_id, parent_id);
    // The branch starts from the parent's conversation.
    let history = history_of(&real.mock, "in the branch: forget it");
    assert!(history.contains("remember the word banana"), "{history}");
    let started = started_args(&mut real.bridge, "branch").await;
    let args = started.last().cloned().unwrap_or_default();
    assert!(
        resumes(&args, &parent_id) && args.contains(&json!("--fork-session")),
        "{args:?}"
    );
    // The parent goes on in its own id, and never saw the branch's turn.
    let next = real
        .bridge
        .ask_ok_with(json!({"session": "main", "prompt": "what was the word?"}))
        .await;
    assert_eq!(session_id(&next), parent_id);
    let history = history_of(&real.mock, "what was the word?");
    assert!(history.contains("remember the word banana"), "{history}");
    assert!(!history.contains("in the branch"), "{history}");
    // And the branch continues its own id.
    let again = real
        .bridge
        .ask_ok_with(json!({"session": "branch", "prompt": "and now?"}))
        .await;
    assert_eq!(session_id(&again), branch_id);
    let history = history_of(&real.mock, "and now?");
    assert!(history.contains("in the branch: forget it"), "{history}");
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn the_real_cli_of_a_session_works_in_its_cwd_and_a_symlink_out_is_refused() {
    let mut real = Real::start().await;
    let cwd = real.bridge.cwd();
    std::fs::create_dir_all(cwd.join("sub")).unwrap();
    let outside = TempDir::new("outside");
    std::os::unix::fs::symlink(outside.path(), cwd.join("escape")).unwrap();
    let id = real
        .bridge
        .request(
            "ask",
            json!({"session": "w", "cwd": "escape", "prompt": "x"}),
        )
        .await;
    let (refused, _) = real.bridge.response_for(&id).await;
    assert_eq!(error_code(&refused), Some(-32602), "{refused}");
    assert_eq!(refused["error"]["data"]["field"], "cwd");
    let list = real.bridge.call("sessions", json!({})).await["result"].clone();
    assert!(
        list["sessions"]
            .as_array()
            .is_some_and(|all| all.iter().all(|s| s["name"] != "w")),
        "a refused session was made: {list}"
    );
    let id = real
        .bridge
        .request(
            "ask",
            json!({"session": "w", "cwd": "sub", "prompt": "where are you?"}),
        )
        .await;
    let (response, notes) = real.bridge.response_for(&id).await;
    assert_eq!(response["result"]["ok"], true, "{response}");
    let sub = std::fs::canonicalize(cwd.join("sub")).unwrap();
    let init = notes
        .iter()
        .find(|n| n["params"]["subtype"] == "init")
        .expect("system/init");
    assert_eq!(init["params"]["message"]["cwd"], sub.display().to_string());
    // The CLI tells the model where it works: there.
    let request = real
        .mock
        .messages_requests()
        .into_iter()
        .find(|r| r.prompt() == "where are you?")
        .expect("the ask's request");
    let body = request.body.to_string();
    assert!(body.contains(&sub.display().to_string()), "{body}");
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn sigkill_of_one_sessions_cli_fails_only_its_turn_and_it_resumes_its_conversation() {
    let mut real = Real::start().await;
    let mut seen = Backlog::default();
    let warm = real
        .bridge
        .ask_ok_with(json!({"session": "steady", "prompt": "warm up"}))
        .await;
    let steady_id = session_id(&warm);
    let first = real
        .bridge
        .ask_ok_with(json!({"session": "victim", "prompt": "remember the word banana"}))
        .await;
    let victim_id = session_id(&first);
    wait_for_session_file(&real.home, &victim_id).await;
    let list = seen.sessions(&mut real.bridge).await;
    let steady_pid = listed_session(&list, "steady")["pid"].clone();
    let victim_pid = listed_session(&list, "victim")["pid"]
        .as_i64()
        .expect("pid") as i32;
    // ~5 s of stream in `steady`; `victim` is killed while both stream.
    let long = real.bridge.ask_in("steady", "SLOW ms=300 chunks=18").await;
    let doomed = real.bridge.ask_in("victim", "SLOW ms=200 chunks=50").await;
    seen.wait_streaming(&mut real.bridge, &long).await;
    seen.wait_streaming(&mut real.bridge, &doomed).await;
    kill(victim_pid);
    let (failed, _) = seen.answer(&mut real.bridge, &doomed).await;
    assert_eq!(error_code(&failed), Some(-32002), "{failed}");
    assert_eq!(failed["error"]["data"]["signal"], 9, "{failed}");
    assert!(wait_gone(victim_pid, Duration::from_secs(5)).await);
    let (fine, _) = seen.answer(&mut real.bridge, &long).await;
    assert_eq!(fine["result"]["ok"], true, "{fine}");
    assert_eq!(fine["result"]["sessionId"], json!(steady_id));
    let list = seen.sessions(&mut real.bridge).await;
    assert_eq!(listed_session(&list, "steady")["pid"], steady_pid, "{list}");
    // The killed session's CLI is restarted with --resume, in its conversation.
    let after = real
        .bridge
        .ask_ok_with(json!({"session": "victim", "prompt": "what was the word?"}))
        .await;
    assert_eq!(session_id(&after), victim_id);
    let history = history_of(&real.mock, "what was the word?");
    assert!(history.contains("remember the word banana"), "{history}");
    let started = started_args(&mut real.bridge, "victim").await;
    assert_eq!(started.len(), 2, "{started:?}");
    assert!(resumes(&started[1], &victim_id), "{started:?}");
    assert_eq!(started_args(&mut real.bridge, "steady").await.len(), 1);
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn an_idle_session_is_stopped_and_its_next_ask_revives_the_same_conversation() {
    let mut real =
        Real::start_with(MockApi::start(), |o| o.args(&["--session-idle-ms", "500"])).await;
    let mut seen = Backlog::default();
    let first = real
        .bridge
        .ask_ok_with(json!({"session": "a", "prompt": "remember the word banana"}))
        .await;
    let id = session_id(&first);
    // From the event, not from `sessions`: on a loaded machine the session may already
    // be idle for 500 ms and stopped by the time a listing is answered. The guard leads
    // the CLI's process group and outlives the CLI.
    let events = real
        .bridge
        .call("events", json!({"session": "a", "limit": 1000}))
        .await;
    let pid = events["result"]["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["type"] == "child.started"))
        .and_then(|e| e["detail"]["pid"].as_i64())
        .expect("a child.started event with a pid") as i32;
    wait_for_session_file(&real.home, &id).await;
    let list = seen
        .wait_sessions(&mut real.bridge, "the idle session to stop", |list| {
            listed_session(list, "a")["state"] == "stopped"
        })
        .await;
    assert_eq!(listed_session(&list, "a")["sessionId"], json!(id), "{list}");
    assert_eq!(listed_session(&list, "a")["pid"], Value::Null, "{list}");
    assert!(
        wait_gone(pid, Duration::from_secs(5)).await,
        "the CLI lives on"
    );
    let again = real
        .bridge
        .ask_ok_with(json!({"session": "a", "prompt": "what was the word?"}))
        .await;
    assert_eq!(session_id(&again), id);
    let history = history_of(&real.mock, "what was the word?");
    assert!(history.contains("remember the word banana"), "{history}");
    let started = started_args(&mut real.bridge, "a").await;
    assert!(
        started.last().is_some_and(|args| resumes(args, &id)),
        "{started:?}"
    );
}

/// The session's events of `kind`, oldest first.
async fn events_of(bridge: &mut Bridge, name: &str, kind: &str) -> Vec<Value> {
    let events = bridge
        .call("events", json!({"session": name, "limit": 1000}))
        .await["result"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    events.into_iter().filter(|e| e["type"] == kind).collect()
}

/// Milliseconds from one event to another, by their `createdAt` (`...THH:MM:SS.mmmZ`;
/// both of one day).
fn ms_between(from: &Value, to: &Value) -> i64 {
    let at = |e: &Value| -> i64 {
        let text = e["createdAt"].as_str().unwrap_or_default();
        let clock = text
            .get(11..23)
            .unwrap_or_default()
            .replace(['.', ':'], " ");
        let parts: Vec<i64> = clock.split(' ').filter_map(|p| p.parse().ok()).collect();
        assert_eq!(parts.len(), 4, "createdAt {text:?}");
        ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + parts[3]
    };
    at(to) - at(from)
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn the_real_cli_ends_the_turn_that_reaches_the_session_budget_and_later_asks_are_refused() {
    // A turn on the mock costs the real CLI $0.00014: the second crosses $0.0002.
    let mut real = Real::start_with(MockApi::start(), |o| {
        o.args(&["--session-budget-usd", "0.0002"])
    })
    .await;
    let first = real
        .bridge
        .ask_ok_with(json!({"session": "a", "prompt": "one"}))
        .await;
    assert_eq!(first["ok"], true, "{first}");
    let second = real
        .bridge
        .ask_ok_with(json!({"session": "a", "prompt": "two"}))
        .await;
    assert_eq!(second["ok"], false, "{second}");
    assert_eq!(second["subtype"], "error_max_budget_usd", "{second}");
    let id = real.bridge.ask_in("a", "three").await;
    let (refused, _) = real.bridge.response_for(&id).await;
    assert_eq!(error_code(&refused), Some(-32010), "{refused}");
    assert_eq!(refused["error"]["data"]["scope"], "session `a`");
    // The CLI never saw the refused ask.
    assert!(
        real.mock
            .messages_requests()
            .iter()
            .all(|r| r.prompt() != "three"),
        "the refused ask reached the model"
    );
    let exhausted = events_of(&mut real.bridge, "a", "budget.exhausted").await;
    let scopes: Vec<&Value> = exhausted.iter().map(|e| &e["detail"]["scope"]).collect();
    assert_eq!(
        scopes,
        [&json!("session"), &json!("session")],
        "{exhausted:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn an_asks_own_budget_ends_its_real_turn_and_the_conversation_goes_on_after_it() {
    let mut real = Real::start().await;
    let first = real
        .bridge
        .ask_ok_with(json!({"session": "a", "prompt": "remember the word banana"}))
        .await;
    let id = session_id(&first);
    wait_for_session_file(&real.home, &id).await;
    // $0.00014 a turn: over this ask's own budget. Its turn runs in a new CLI that
    // continues the conversation under that budget.
    let capped = real
        .bridge
        .ask_ok_with(json!({"session": "a", "prompt": "two", "maxBudgetUsd": 0.0001}))
        .await;
    assert_eq!(capped["ok"], false, "{capped}");
    assert_eq!(capped["subtype"], "error_max_budget_usd", "{capped}");
    assert_eq!(session_id(&capped), id);
    // The next ask has no budget: another CLI, the same conversation.
    let after = real
        .bridge
        .ask_ok_with(json!({"session": "a", "prompt": "what was the word?"}))
        .await;
    assert_eq!(after["ok"], true, "{after}");
    assert_eq!(session_id(&after), id);
    let history = history_of(&real.mock, "what was the word?");
    assert!(history.contains("remember the word banana"), "{history}");
    let started = started_args(&mut real.bridge, "a").await;
    assert_eq!(started.len(), 3, "{started:?}");
    assert!(
        started[1..].iter().all(|args| resumes(args, &id)),
        "{started:?}"
    );
    assert!(
        started[1]
            .windows(2)
            .any(|w| w[0] == "--max-budget-usd" && w[1] == "0.000100"),
        "{:?}",
        started[1]
    );
    assert!(
        !started[2].contains(&json!("--max-budget-usd")),
        "{:?}",
        started[2]
    );
    let exhausted = events_of(&mut real.bridge, "a", "budget.exhausted").await;
    assert_eq!(exhausted.len(), 1, "{exhausted:?}");
    assert_eq!(exhausted[0]["detail"]["scope"], "ask");
    // What a replacement costs: the old CLI's exit on EOF and the new one's warm-up.
    let replacing = events_of(&mut real.bridge, "a", "child.replacing").await;
    let exited = events_of(&mut real.bridge, "a", "child.exited").await;
    let ready = events_of(&mut real.bridge, "a", "child.ready").await;
    assert_eq!((replacing.len(), exited.len(), ready.len()), (2, 2, 3));
    for (n, ((replacing, exited), ready)) in
        replacing.iter().zip(&exited).zip(&ready[1..]).enumerate()
    {
        assert_eq!(exited["level"], "info", "an exit asked for: {exited}");
        eprintln!(
            "replacement {}: the old CLI exited {} ms after its stdin closed; the new one \
             was ready {} ms later (startupMs {}); {} ms in all",
            n + 1,
            ms_between(replacing, exited),
            ms_between(exited, ready),
            ready["detail"]["startupMs"],
            ms_between(replacing, ready),
        );
    }
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn parallel_asks_to_two_real_sessions_spend_the_shared_budget_at_most_one_call_over() {
    // Issue 21, 9: each session's CLI was started under all that was left, so parallel
    // sessions spent the budget each. A turn on the mock costs the real CLI $0.00014, in
    // one model call, which is as far as the CLI may go past its own cap.
    const BUDGET: f64 = 0.0003;
    const CALL: f64 = 0.00014;
    let mut real = Real::start_with(MockApi::start(), |o| {
        o.args(&["--budget-usd", "0.0003", "--max-sessions", "2"])
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(real.bridge.ask_in(&format!("s{}", n % 2), "hello").await);
    }
    let (mut answered, mut refused) = (0, 0);
    for id in &ids {
        let (response, _) = real.bridge.response_for(id).await;
        match error_code(&response) {
            None => answered += 1,
            Some(-32010) => refused += 1,
            Some(other) => {
                panic!("neither an answer nor the budget's refusal ({other}): {response}")
            }
        }
    }
    let status = real.bridge.status().await;
    let spent = status["totals"]["costUsd"].as_f64().unwrap();
    eprintln!("real CLI: spent ${spent} of ${BUDGET}: {answered} answered, {refused} refused");
    assert!(
        spent <= BUDGET + CALL + 1e-9,
        "spent ${spent} of ${BUDGET} ({answered} answered, {refused} refused)"
    );
    assert!(refused > 0, "{answered} answered");
}

/// One new session's first answer, in ms, with `spares` warm spares; and whether the CLI
/// that answered was already running before the ask (a spare).
async fn new_session_first_answer(spares: &str) -> (u128, u128, bool) {
    let mut real =
        Real::start_with(MockApi::start(), |o| o.args(&["--spare-sessions", spares])).await;
    let status = real.ready().await;
    let daemon_id = status["identity"]["daemonId"].as_str().unwrap().to_string();
    let warm = std::time::Instant::now();
    real.bridge.ask_ok("warm").await;
    let warm = warm.elapsed().as_millis();
    if spares != "0" {
        real.bridge
            .wait_status("a warm spare", |s| s["spares"]["ready"] == 1)
            .await;
    }
    let before: BTreeSet<u32> = test_support::proc_info::processes_of_daemon(&daemon_id)
        .into_iter()
        .collect();
    let asked = std::time::Instant::now();
    let answer = real
        .bridge
        .ask_ok_with(json!({"session": "fan-out", "prompt": "hello"}))
        .await;
    let first = asked.elapsed().as_millis();
    assert_eq!(answer["ok"], true, "{answer}");
    let listed = real.bridge.call("sessions", json!({})).await["result"].clone();
    let pid = listed_session(&listed, "fan-out")["pid"].as_u64().unwrap() as u32;
    let rss = listed_session(&listed, "fan-out")["rssBytes"]
        .as_u64()
        .unwrap_or(0);
    eprintln!("real CLI: the new session's CLI holds {} MiB", rss >> 20);
    assert_eq!(real.bridge.close_and_wait().await, 0);
    (warm, first, before.contains(&pid))
}

#[tokio::test]
#[cfg_attr(
    not(real_cli),
    ignore = "needs the real CLI: build and run with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
)]
async fn a_new_session_answers_from_a_warm_spare_instead_of_a_cold_cli() {
    let (warm, cold, cold_was_running) = new_session_first_answer("0").await;
    let (_, spared, spare_was_running) = new_session_first_answer("1").await;
    eprintln!(
        "real CLI: a new session's first answer took {cold} ms cold, {spared} ms from a warm spare; a warm ask {warm} ms"
    );
    assert!(!cold_was_running, "without spares the session's CLI is new");
    assert!(
        spare_was_running,
        "with a spare the session's CLI was waiting"
    );
}
