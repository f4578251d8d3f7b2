//! The actor in-process, continued: permission questions (asked, decided by policy,
//! relayed, timed out, withdrawn), per-ask modes and models, and budgets (a child started
//! for an ask's budget, replaced, stopped while replaced).

use super::*;

/// A `can_use_tool` request as the CLI prints it.
fn can_use_tool(request_id: &str, command: &str) -> serde_json::Value {
    json!({"type": "control_request", "request_id": request_id,
           "request": {"subtype": "can_use_tool", "tool_name": "Bash",
                       "input": {"command": command},
                       "permission_suggestions": [{"type": "addRules", "behavior": "allow",
                           "rules": [{"toolName": "Bash", "ruleContent": command}],
                           "destination": "localSettings"}],
                       "tool_use_id": "toolu_1"}})
}

impl Harness {
    /// An ask whose permission questions come to the returned receiver.
    fn ask_asking(&self, prompt: &str, timeout: Duration) -> (Answer, mpsc::Receiver<Asked>) {
        let (asker, questions) = mpsc::channel(4);
        let pending = self.supervisor.submit(NewTurn {
            prompt: prompt.to_string(),
            timeout,
            mode: None,
            model: None,
            sink: None,
            asker: Some(asker),
            max_budget_usd: None,
            partial: false,
        });
        (
            tokio::spawn(async move { pending?.wait().await }),
            questions,
        )
    }
}

/// The child's next stdin line, which must answer `request_id`: its `response`.
async fn answer_to(child: &mut FakeChild, request_id: &str) -> serde_json::Value {
    let line = expect_line(child, "control_response", None).await;
    assert_eq!(line["response"]["subtype"], "success", "{line}");
    assert_eq!(line["response"]["request_id"], request_id, "{line}");
    line["response"]["response"].clone()
}

#[tokio::test(start_paused = true)]
async fn a_question_with_nobody_to_ask_is_denied_at_once_saying_how_to_allow_it() {
    let (harness, mut child) = Harness::ready(config()).await;
    let _asked = harness.ask("use a tool", LONG);
    expect_line(&mut child, "user", None).await;
    child.print(can_use_tool("p1", "touch x")).await;
    let answer = answer_to(&mut child, "p1").await;
    assert_eq!(answer["behavior"], "deny");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("--allow-tool 'Bash(touch x)'"),
        "{message}"
    );
    assert_eq!(harness.recorded("permission.requested"), 1);
    assert_eq!(harness.recorded("permission.decided"), 1);
    let totals = harness.supervisor.snapshot().totals;
    assert_eq!(
        (totals.permissions_requested, totals.permissions_denied),
        (1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn the_policy_can_allow_or_deny_without_asking_anyone() {
    for (decider, behavior) in [(Decider::Allow, "allow"), (Decider::Deny, "deny")] {
        let config = Config {
            permission_decider: decider,
            ..config()
        };
        let (harness, mut child) = Harness::ready(config).await;
        let (_asked, mut questions) = harness.ask_asking("use a tool", LONG);
        expect_line(&mut child, "user", None).await;
        child.print(can_use_tool("p1", "ls")).await;
        assert_eq!(answer_to(&mut child, "p1").await["behavior"], behavior);
        assert!(questions.try_recv().is_err(), "the client was asked");
    }
}

#[tokio::test(start_paused = true)]
async fn a_relayed_question_gets_the_clients_decision_and_a_remembered_allow_stays_in_the_session()
{
    let (harness, mut child) = Harness::ready(config()).await;
    let (asked, mut questions) = harness.ask_asking("use a tool", LONG);
    expect_line(&mut child, "user", None).await;
    child.print(can_use_tool("p1", "touch x")).await;
    let question = questions.recv().await.expect("a question");
    assert_eq!(question.question.summary, "run `touch x`");
    let decision = Decision::Allow {
        remember: true,
        answers: serde_json::Map::new(),
    };
    assert!(question.reply.send(decision).is_ok());
    let answer = answer_to(&mut child, "p1").await;
    assert_eq!(answer["behavior"], "allow");
    assert_eq!(answer["updatedInput"], json!({"command": "touch x"}));
    let rule = &answer["updatedPermissions"][0];
    assert_eq!(rule["destination"], "session", "{rule}");
    child.result("done").await;
    assert!(answer_of(asked).await.ok);
    assert_eq!(harness.supervisor.snapshot().totals.permissions_allowed, 1);
}

async fn answer_of(asked: Answer) -> AskResult {
    answer(asked).await.expect("an answer")
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_question_is_denied_at_the_deadline_and_a_late_answer_is_ignored() {
    let (harness, mut child) = Harness::ready(Config {
        permission_timeout_ms: 2_000,
        ..config()
    })
    .await;
    let (_asked, mut questions) = harness.ask_asking("use a tool", LONG);
    expect_line(&mut child, "user", None).await;
    let since = Instant::now();
    child.print(can_use_tool("p1", "touch x")).await;
    let question = questions.recv().await.expect("a question");
    let answer = answer_to(&mut child, "p1").await;
    assert_eq!(since.elapsed(), Duration::from_secs(2));
    assert_eq!(answer["behavior"], "deny");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("within 2 s")
    );
    // The client answers late: nobody takes it, and the child hears nothing more.
    let late = Decision::Allow {
        remember: false,
        answers: serde_json::Map::new(),
    };
    assert!(question.reply.send(late).is_err());
    sleep(Duration::from_secs(1)).await;
    assert_eq!(child.try_read(), None);
}

#[tokio::test(start_paused = true)]
async fn a_question_the_agent_withdraws_or_the_ask_abandons_is_never_answered_twice() {
    let (harness, mut child) = Harness::ready(config()).await;
    let (asked, mut questions) = harness.ask_asking("use tools", Duration::from_secs(10));
    expect_line(&mut child, "user", None).await;
    child.print(can_use_tool("p1", "a")).await;
    let first = questions.recv().await.expect("a question");
    // The agent withdraws it: no answer is owed, and the client's comes to nothing.
    child
        .print(json!({"type": "control_cancel_request", "request_id": "p1"}))
        .await;
    sleep(Duration::from_millis(10)).await;
    let ignored = Decision::Deny {
        message: "no".into(),
    };
    let _ = first.reply.send(ignored);
    sleep(Duration::from_millis(10)).await;
    assert_eq!(child.try_read(), None);
    // A second question is open when the ask times out: it is denied as cancelled.
    child.print(can_use_tool("p2", "b")).await;
    let _second = questions.recv().await.expect("a question");
    let timed_out = answer(asked).await;
    assert!(
        matches!(timed_out, Err(AskError::Timeout { .. })),
        "{timed_out:?}"
    );
    let answer = answer_to(&mut child, "p2").await;
    assert_eq!(answer["behavior"], "deny");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cancelled")
    );
    expect_line(&mut child, "control_request", Some("interrupt")).await;
}

#[tokio::test(start_paused = true)]
async fn an_ask_with_its_own_mode_and_model_switches_the_child_and_the_next_one_switches_back() {
    let (harness, mut child) = Harness::ready(config()).await;
    let pending = harness.supervisor.submit(NewTurn {
        prompt: "edit".into(),
        timeout: LONG,
        mode: Some(PermissionMode::AcceptEdits),
        model: Some("claude-haiku".into()),
        sink: None,
        asker: None,
        max_budget_usd: None,
        partial: false,
    });
    let first = tokio::spawn(async move { pending?.wait().await });
    let mode = expect_line(&mut child, "control_request", Some("set_permission_mode")).await;
    assert_eq!(mode["request"]["mode"], "acceptEdits");
    let model = expect_line(&mut child, "control_request", Some("set_model")).await;
    assert_eq!(model["request"]["model"], "claude-haiku");
    expect_line(&mut child, "user", None).await;
    child.result("one").await;
    answer_of(first).await;
    let second = harness.ask("plain", LONG);
    let mode = expect_line(&mut child, "control_request", Some("set_permission_mode")).await;
    assert_eq!(mode["request"]["mode"], "default");
    let model = expect_line(&mut child, "control_request", Some("set_model")).await;
    assert!(model["request"].get("model").is_none(), "{model}");
    expect_line(&mut child, "user", None).await;
    child.result("two").await;
    answer_of(second).await;
    // A third ask like the second needs no switch.
    let third = harness.ask("plain again", LONG);
    expect_line(&mut child, "user", None).await;
    child.result("three").await;
    answer_of(third).await;
}

/// A session that has `usd` left of its own budget.
fn session_budget(usd: f64) -> SessionStart {
    SessionStart {
        budget: BudgetSource::new(move || {
            Some(Budget {
                usd,
                scope: BudgetScope::Session,
            })
        }),
        ..SessionStart::default()
    }
}

/// A top-level actor with `usd` left of its session's budget, and its warm first child.
async fn ready_with_budget(usd: f64) -> (Harness, FakeChild) {
    let harness = Harness::with_start(Fake::default(), config(), TOP, session_budget(usd));
    let mut child = harness.fake.next_child().await;
    child.warm_up().await;
    harness.status_becomes(ChildStatus::Ready).await;
    (harness, child)
}

/// Plays a child that exits once its stdin is closed.
fn exits_on_eof(mut child: FakeChild) -> JoinHandle<()> {
    tokio::spawn(async move {
        while child.read().await.is_some() {}
        child.exit(0).await;
    })
}

/// Takes the next child, warms it up and answers its one turn with `text`.
async fn next_turn(harness: &Harness, prompt: &str, text: &str) -> FakeChild {
    let mut child = harness.fake.next_child().await;
    child.warm_up().await;
    let line = expect_line(&mut child, "user", None).await;
    assert_eq!(line["message"]["content"], prompt);
    child.result(text).await;
    child
}

#[tokio::test(start_paused = true)]
async fn an_ask_with_a_budget_runs_in_a_child_started_for_it_and_the_next_ask_in_a_normal_one() {
    let (harness, mut child) = ready_with_budget(1.0).await;
    // Queued together: FIFO order holds across the replacements.
    let plain = harness.ask("one", LONG);
    let cheap = harness.ask_within("cheap", 0.05);
    let after = harness.ask("after", LONG);
    expect_line(&mut child, "user", None).await;
    child.init("s1").await;
    child.result("1").await;
    assert!(answer(plain).await.is_ok());
    // The warm child has spent something: a fresh one continues the conversation under
    // the ask's budget.
    exits_on_eof(child);
    let second = next_turn(&harness, "cheap", "2").await;
    assert_eq!(answer(cheap).await.map(|r| r.result), Ok(Some("2".into())));
    // The next ask has no budget of its own: the session's again, in a new child.
    exits_on_eof(second);
    next_turn(&harness, "after", "3").await;
    assert_eq!(answer(after).await.map(|r| r.result), Ok(Some("3".into())));
    assert_eq!(harness.fake.budgets(), [Some(1.0), Some(0.05), Some(1.0)]);
    let resumed: Vec<Option<String>> = harness.fake.starts().into_iter().map(|s| s.1).collect();
    assert_eq!(resumed, [None, Some("s1".into()), Some("s1".into())]);
    assert_eq!(harness.recorded("child.replacing"), 2);
    // Exits that were asked for: no error, no signal but the group's clean-up after each.
    let info = harness.supervisor.snapshot().child;
    assert_eq!(info.last_error, None);
    assert_eq!(info.consecutive_failures, 0);
    assert!(
        harness
            .fake
            .signals()
            .iter()
            .all(|(_, sig)| *sig == Stop::Kill)
    );
}

#[tokio::test(start_paused = true)]
async fn a_warm_child_that_spent_nothing_under_a_lower_budget_runs_an_ask_without_a_restart() {
    let (harness, mut child) = ready_with_budget(0.5).await;
    // What the session has left is below the ask's own: its turn runs as the session's.
    let roomy = harness.ask_within("roomy", 2.0);
    expect_line(&mut child, "user", None).await;
    child.result("1").await;
    assert!(answer(roomy).await.is_ok());
    assert_eq!(harness.fake.budgets(), [Some(0.5)]);
    assert_eq!(harness.recorded("child.replacing"), 0);
    assert!(!harness.fake.has_fresh_child());
}

#[tokio::test(start_paused = true)]
async fn a_replaced_child_that_ignores_its_closed_stdin_is_killed_after_the_stop_grace() {
    let (harness, child) = ready_with_budget(1.0).await;
    let cheap = harness.ask_within("cheap", 0.1);
    harness.status_becomes(ChildStatus::Starting).await;
    let closed_at = Instant::now();
    sleep(Duration::from_millis(4_999)).await;
    assert!(harness.fake.signals().is_empty(), "killed before the grace");
    next_turn(&harness, "cheap", "ok").await;
    assert_eq!(closed_at.elapsed(), Duration::from_secs(5));
    assert_eq!(harness.fake.signals()[0], (child.pid, Stop::Kill));
    assert!(answer(cheap).await.is_ok());
    assert_eq!(harness.fake.budgets(), [Some(1.0), Some(0.1)]);
}

#[tokio::test(start_paused = true)]
async fn the_turn_that_reaches_the_asks_budget_ends_as_the_cli_says_and_is_an_event() {
    let harness = Harness::start(config(), TOP);
    // No session budget: the warm child has none, so the ask needs its own.
    let mut first = harness.fake.next_child().await;
    first.warm_up().await;
    harness.status_becomes(ChildStatus::Ready).await;
    let cheap = harness.ask_within("cheap", 0.01);
    exits_on_eof(first);
    let mut child = harness.fake.next_child().await;
    child.warm_up().await;
    expect_line(&mut child, "user", None).await;
    child
        .print(
            json!({"type": "result", "subtype": "error_max_budget_usd", "is_error": true,
            "errors": ["Reached maximum budget ($0.01)"], "total_cost_usd": 0.012,
            "terminal_reason": "budget_exhausted"}),
        )
        .await;
    let result = answer(cheap).await.expect("a result");
    assert!(!result.ok);
    assert_eq!(result.subtype.as_deref(), Some("error_max_budget_usd"));
    assert_eq!(harness.fake.budgets(), [None, Some(0.01)]);
    let events = harness.events.query(&EventsParams::default()).events;
    let exhausted = events
        .iter()
        .find(|e| e.kind == crate::api::EventKind::BudgetExhausted)
        .expect("a budget.exhausted event");
    assert_eq!(exhausted.detail["scope"], "ask");
    assert_eq!(exhausted.detail["limitUsd"], 0.01);
}

#[tokio::test(start_paused = true)]
async fn a_nested_actor_starts_its_first_child_under_the_budget_of_its_first_ask() {
    let harness = Harness::start(config(), Nesting { depth: 1, limit: 2 });
    let cheap = harness.ask_within("cheap", 0.2);
    next_turn(&harness, "cheap", "ok").await;
    assert!(answer(cheap).await.is_ok());
    assert_eq!(harness.fake.budgets(), [Some(0.2)]);
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_a_child_is_replaced_fails_the_waiting_ask_and_starts_no_other_child() {
    let (harness, child) = ready_with_budget(1.0).await;
    let cheap = harness.ask_within("cheap", 0.1);
    harness.status_becomes(ChildStatus::Starting).await;
    // The replaced child ignores its closed stdin; the stop ends it with TERM.
    harness.supervisor.stop(false).await;
    assert_eq!(answer(cheap).await.err(), Some(AskError::Stopping));
    assert_eq!(harness.status(), ChildStatus::Stopped);
    assert!(harness.fake.signals().contains(&(child.pid, Stop::Term)));
    assert_eq!(
        harness.fake.budgets(),
        [Some(1.0)],
        "no child after the stop"
    );
    assert!(!harness.fake.has_fresh_child());
}

#[tokio::test(start_paused = true)]
async fn a_restart_request_while_a_child_is_replaced_ends_it_now_and_the_ask_still_runs() {
    let (harness, child) = ready_with_budget(1.0).await;
    let cheap = harness.ask_within("cheap", 0.1);
    harness.status_becomes(ChildStatus::Starting).await;
    let outcome = harness.supervisor.restart().await.expect("restarted");
    assert_eq!(outcome.killed_pid, Some(child.pid));
    next_turn(&harness, "cheap", "ok").await;
    assert!(answer(cheap).await.is_ok());
    assert_eq!(harness.fake.budgets(), [Some(1.0), Some(0.1)]);
    assert_eq!(harness.supervisor.snapshot().child.consecutive_failures, 0);
}
