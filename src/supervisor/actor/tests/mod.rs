//! The actor in-process: a fake child (no binary) and tokio's paused clock, so every
//! transition, timer and failure path runs in microseconds and exactly on time.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

use crate::api::{AskResult, ChildStatus, EventKind, EventsParams};
use crate::config::Config;
use crate::events::EventLog;
use crate::nesting::Nesting;
use crate::permissions::{Asked, Decider, Decision, PermissionMode};
use crate::platform::Stop;
use crate::supervisor::fake::{Fake, FakeChild, config};
use crate::supervisor::{
    AskError, Budget, BudgetScope, BudgetSource, NewTurn, SessionStart, Supervisor, TurnMessage,
};

const TOP: Nesting = Nesting { depth: 0, limit: 1 };
const LONG: Duration = Duration::from_secs(300);

struct Harness {
    supervisor: Supervisor,
    fake: Fake,
    events: EventLog,
}

type Answer = JoinHandle<Result<AskResult, AskError>>;

impl Harness {
    fn start(config: Config, nesting: Nesting) -> Harness {
        Harness::with_fake(Fake::default(), config, nesting)
    }

    /// An actor on `fake`, which a test may set up (a missing binary) before the start.
    fn with_fake(fake: Fake, config: Config, nesting: Nesting) -> Harness {
        Harness::with_start(fake, config, nesting, SessionStart::default())
    }

    fn with_start(fake: Fake, config: Config, nesting: Nesting, start: SessionStart) -> Harness {
        let events = EventLog::new(1_000);
        let supervisor = Supervisor::with_backend(
            Arc::new(config),
            nesting,
            events.clone(),
            fake.backend(),
            start,
        );
        Harness {
            supervisor,
            fake,
            events,
        }
    }

    /// A top-level actor whose first child is warm.
    async fn ready(config: Config) -> (Harness, FakeChild) {
        let harness = Harness::start(config, TOP);
        let mut child = harness.fake.next_child().await;
        child.warm_up().await;
        harness.status_becomes(ChildStatus::Ready).await;
        (harness, child)
    }

    fn ask(&self, prompt: &str, timeout: Duration) -> Answer {
        self.ask_streamed(prompt, timeout, None)
    }

    /// An ask that may spend at most `usd`.
    fn ask_within(&self, prompt: &str, usd: f64) -> Answer {
        let pending = self.supervisor.submit(NewTurn {
            max_budget_usd: Some(usd),
            ..turn(prompt, LONG, None)
        });
        tokio::spawn(async move { pending?.wait().await })
    }

    fn ask_streamed(
        &self,
        prompt: &str,
        timeout: Duration,
        sink: Option<mpsc::Sender<TurnMessage>>,
    ) -> Answer {
        let pending = self.supervisor.submit(turn(prompt, timeout, sink));
        tokio::spawn(async move { pending?.wait().await })
    }

    fn status(&self) -> ChildStatus {
        self.supervisor.snapshot().child.status
    }

    async fn status_becomes(&self, status: ChildStatus) {
        let mut watch = self.supervisor.watch();
        let reached = watch.wait_for(|s| s.child.status == status).await.is_ok();
        assert!(reached, "the actor ended before the child was {status:?}");
    }

    fn kinds(&self) -> Vec<String> {
        let params = EventsParams {
            limit: Some(1_000),
            ..EventsParams::default()
        };
        self.events
            .query(&params)
            .events
            .into_iter()
            .map(|e| e.kind.as_str().to_string())
            .collect()
    }

    fn recorded(&self, kind: &str) -> usize {
        self.kinds().iter().filter(|k| *k == kind).count()
    }
}

fn turn(prompt: &str, timeout: Duration, sink: Option<mpsc::Sender<TurnMessage>>) -> NewTurn {
    NewTurn {
        prompt: prompt.to_string(),
        timeout,
        mode: None,
        model: None,
        sink,
        asker: None,
        max_budget_usd: None,
        partial: false,
    }
}

/// Reads stdin lines until one of `kind`/`subtype` (skipping none: asserts the order).
async fn expect_line(
    child: &mut FakeChild,
    kind: &str,
    subtype: Option<&str>,
) -> serde_json::Value {
    let line = child.read().await.unwrap_or_default();
    assert_eq!(line["type"], kind, "{line}");
    if let Some(subtype) = subtype {
        assert_eq!(line["request"]["subtype"], subtype, "{line}");
    }
    line
}

async fn answer(answer: Answer) -> Result<AskResult, AskError> {
    answer.await.unwrap_or(Err(AskError::Stopping))
}

#[tokio::test(start_paused = true)]
async fn a_top_level_actor_starts_its_child_at_once_and_is_ready_after_initialize() {
    let harness = Harness::start(config(), TOP);
    let mut child = harness.fake.next_child().await;
    assert_eq!(harness.status(), ChildStatus::Starting);
    assert!(!harness.supervisor.snapshot().child.ready);
    child.warm_up().await;
    harness.status_becomes(ChildStatus::Ready).await;
    let info = harness.supervisor.snapshot().child;
    assert!(info.ready);
    assert_eq!(info.pid, Some(child.pid));
    assert_eq!(info.cli_pid, Some(4242));
    assert_eq!(info.cli_version.as_deref(), Some("2.0.0-fake"));
    assert_eq!(harness.kinds(), ["child.started", "child.ready"]);
}

#[tokio::test(start_paused = true)]
async fn an_ask_is_a_user_message_whose_result_line_is_the_answer() {
    let (harness, mut child) = Harness::ready(config()).await;
    let (sink, mut stream) = mpsc::channel(16);
    let asked = harness.ask_streamed("hello", LONG, Some(sink));
    let line = expect_line(&mut child, "user", None).await;
    assert_eq!(line["message"]["content"], "hello");
    harness.status_becomes(ChildStatus::Busy).await;
    child.init("s1").await;
    child
        .print(json!({"type": "assistant", "message": {"content": []}}))
        .await;
    child.result("hi").await;
    let result = answer(asked).await.expect("an answer");
    assert!(result.ok);
    assert_eq!(result.result.as_deref(), Some("hi"));
    assert_eq!(result.messages, 3);
    let seqs: Vec<u64> = std::iter::from_fn(|| stream.try_recv().ok())
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    harness.status_becomes(ChildStatus::Ready).await;
    assert_eq!(
        harness.supervisor.snapshot().child.session_id.as_deref(),
        Some("s1")
    );
    assert_eq!(harness.supervisor.snapshot().totals.turns_ok, 1);
}

/// What the CLI prints with `--include-partial-messages` around one text block.
async fn print_partial_text(child: &FakeChild, text: &str) {
    child
        .print(json!({"type": "system", "subtype": "status", "status": "requesting"}))
        .await;
    let delta = json!({"type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": text}});
    child
        .print(json!({"type": "stream_event", "event": delta, "parent_tool_use_id": null}))
        .await;
    child
        .print(
            json!({"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}}),
        )
        .await;
}

#[tokio::test(start_paused = true)]
async fn partial_messages_reach_only_the_asks_that_asked_for_them() {
    let (harness, mut child) = Harness::ready(config()).await;
    let (sink, mut stream) = mpsc::channel(16);
    let plain = harness.ask_streamed("plain", LONG, Some(sink));
    expect_line(&mut child, "user", None).await;
    child.init("s1").await;
    print_partial_text(&child, "hello").await;
    child.result("hello").await;
    let result = answer(plain).await.expect("an answer");
    // init, assistant, result: as without the flag, numbered without gaps.
    assert_eq!(result.messages, 3);
    let kinds: Vec<(u64, String)> = std::iter::from_fn(|| stream.try_recv().ok())
        .map(|m| (m.seq, m.message.kind.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, "system".into()),
            (2, "assistant".into()),
            (3, "result".into())
        ]
    );

    let (sink, mut stream) = mpsc::channel(16);
    let watched = harness.supervisor.submit(NewTurn {
        partial: true,
        ..turn("watched", LONG, Some(sink))
    });
    let watched = tokio::spawn(async move { watched?.wait().await });
    expect_line(&mut child, "user", None).await;
    child.init("s1").await;
    print_partial_text(&child, "hello").await;
    child.result("hello").await;
    assert_eq!(answer(watched).await.expect("an answer").messages, 5);
    let kinds: Vec<String> = std::iter::from_fn(|| stream.try_recv().ok())
        .map(|m| m.message.kind.clone())
        .collect();
    assert_eq!(
        kinds,
        ["system", "system", "stream_event", "assistant", "result"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_turns_steps_are_in_its_status_and_one_event_each_not_one_per_piece_of_text() {
    let (harness, mut child) = Harness::ready(config()).await;
    let asked = harness.ask("work", LONG);
    expect_line(&mut child, "user", None).await;
    child.init("s1").await;
    print_partial_text(&child, "looking").await;
    child
        .print(json!({"type": "assistant", "message": {"content": [
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]}}))
        .await;
    let mut watch = harness.supervisor.watch();
    let stepped =
        watch.wait_for(|s| s.turn_now().and_then(|t| t.step).as_deref() == Some("tool use: Bash"));
    let stepped = tokio::time::timeout(LONG, stepped).await;
    assert!(
        stepped.is_ok_and(|s| s.is_ok()),
        "the step never showed in the status"
    );
    child.result("done").await;
    answer(asked).await.expect("an answer");
    let params = EventsParams {
        limit: Some(1_000),
        ..EventsParams::default()
    };
    let steps: Vec<String> = harness
        .events
        .query(&params)
        .events
        .into_iter()
        .filter(|e| e.kind == EventKind::TurnStep)
        .map(|e| e.detail["step"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(steps, ["assistant: looking", "tool use: Bash"]);
}

#[tokio::test(start_paused = true)]
async fn asks_run_one_at_a_time_in_the_order_they_came() {
    let (harness, mut child) = Harness::ready(config()).await;
    let first = harness.ask("one", LONG);
    let second = harness.ask("two", LONG);
    let line = expect_line(&mut child, "user", None).await;
    assert_eq!(line["message"]["content"], "one");
    sleep(Duration::from_secs(1)).await;
    assert!(
        child.try_read().is_none(),
        "the second turn waits for the first"
    );
    assert_eq!(harness.supervisor.snapshot().queue.length, 1);
    child.result("1").await;
    let line = expect_line(&mut child, "user", None).await;
    assert_eq!(line["message"]["content"], "two");
    child.result("2").await;
    assert_eq!(answer(first).await.map(|r| r.result), Ok(Some("1".into())));
    assert_eq!(answer(second).await.map(|r| r.result), Ok(Some("2".into())));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_the_ask_at_once() {
    let (harness, mut child) = Harness::ready(Config {
        queue_size: 1,
        ..config()
    })
    .await;
    let _running = harness.ask("one", LONG);
    expect_line(&mut child, "user", None).await;
    let _waiting = harness.ask("two", LONG);
    let refused = harness.ask("three", LONG);
    assert_eq!(
        answer(refused).await.map(|r| r.ok),
        Err(AskError::QueueFull {
            waiting: 1,
            capacity: 1
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_nested_actor_starts_its_child_on_its_first_ask_only() {
    let harness = Harness::start(config(), Nesting { depth: 1, limit: 2 });
    sleep(Duration::from_secs(60)).await;
    assert!(harness.fake.starts().is_empty());
    assert_eq!(harness.status(), ChildStatus::Idle);
    let asked = harness.ask("hello", LONG);
    let mut child = harness.fake.next_child().await;
    child.warm_up().await;
    expect_line(&mut child, "user", None).await;
    child.result("hi").await;
    assert!(answer(asked).await.is_ok_and(|r| r.ok));
}

#[tokio::test(start_paused = true)]
async fn an_actor_at_the_nesting_limit_refuses_asks_and_never_starts_a_child() {
    let harness = Harness::start(config(), Nesting { depth: 1, limit: 1 });
    let refused = answer(harness.ask("hello", LONG)).await;
    assert!(
        matches!(
            refused,
            Err(AskError::NestingLimit {
                depth: 1,
                limit: 1,
                ..
            })
        ),
        "{refused:?}"
    );
    sleep(Duration::from_secs(60)).await;
    assert!(harness.fake.starts().is_empty());
    assert_eq!(harness.status(), ChildStatus::Idle);
    assert_eq!(harness.recorded("turn.rejected"), 1);
}

#[tokio::test(start_paused = true)]
async fn exits_before_ready_back_off_one_second_doubling_to_the_cap() {
    let harness = Harness::start(config(), TOP);
    for _ in 0..5 {
        let child = harness.fake.next_child().await;
        child.exit(1).await;
        harness.status_becomes(ChildStatus::Backoff).await;
    }
    let starts: Vec<Instant> = harness
        .fake
        .starts()
        .into_iter()
        .map(|(at, _)| at)
        .collect();
    let gaps: Vec<u64> = starts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis() as u64)
        .collect();
    assert_eq!(gaps, [1_000, 2_000, 4_000, 4_000]);
    let info = harness.supervisor.snapshot().child;
    assert_eq!(info.consecutive_failures, 5);
    assert_eq!(info.restart_count, 4);
    assert!(info.next_restart_at.is_some());
    assert_eq!(info.exit_code, Some(1));
}

#[tokio::test(start_paused = true)]
async fn asks_fail_at_once_while_the_last_start_failed() {
    let harness = Harness::start(config(), TOP);
    let child = harness.fake.next_child().await;
    let waiting = harness.ask("queued while starting", LONG);
    child.exit(3).await;
    let since = Instant::now();
    let failed = answer(waiting).await;
    assert_eq!(
        since.elapsed(),
        Duration::ZERO,
        "nobody waits out the backoff"
    );
    let Err(AskError::Unavailable { reason, .. }) = failed else {
        panic!("{failed:?}");
    };
    assert!(reason.contains("exited with code 3"), "{reason}");
    assert_eq!(harness.status(), ChildStatus::Backoff);
    let Err(AskError::Unavailable { reason, .. }) = answer(harness.ask("later", LONG)).await else {
        panic!("a later ask fails at once too");
    };
    assert!(reason.contains("the next start is due at"), "{reason}");
    // The restart goes on in the background, and a warm child takes asks again.
    let mut next = harness.fake.next_child().await;
    next.warm_up().await;
    let asked = harness.ask("now", LONG);
    expect_line(&mut next, "user", None).await;
    next.result("ok").await;
    assert!(answer(asked).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn too_many_failed_starts_in_the_window_is_a_crash_loop_that_an_ask_ends() {
    let harness = Harness::start(
        Config {
            crash_loop_max: 3,
            ..config()
        },
        TOP,
    );
    for _ in 0..3 {
        harness.fake.next_child().await.exit(1).await;
    }
    harness.status_becomes(ChildStatus::Failed).await;
    assert_eq!(harness.recorded("child.crashloop"), 1);
    sleep(Duration::from_secs(600)).await;
    assert_eq!(
        harness.fake.starts().len(),
        3,
        "no automatic start in a crash loop"
    );
    // The next ask tries once more, and waits for that child.
    let asked = harness.ask("again", LONG);
    let mut child = harness.fake.next_child().await;
    assert_eq!(harness.status(), ChildStatus::Starting);
    child.warm_up().await;
    expect_line(&mut child, "user", None).await;
    child.result("back").await;
    assert!(answer(asked).await.is_ok_and(|r| r.ok));
}

#[tokio::test(start_paused = true)]
async fn a_restart_request_leaves_the_crash_loop_and_forgets_the_failures() {
    let harness = Harness::start(
        Config {
            crash_loop_max: 2,
            ..config()
        },
        TOP,
    );
    for _ in 0..2 {
        harness.fake.next_child().await.exit(1).await;
    }
    harness.status_becomes(ChildStatus::Failed).await;
    let outcome = harness.supervisor.restart().await.expect("restarted");
    assert_eq!(outcome.killed_pid, None);
    let mut child = harness.fake.next_child().await;
    assert_eq!(harness.supervisor.snapshot().child.consecutive_failures, 0);
    child.warm_up().await;
    harness.status_becomes(ChildStatus::Ready).await;
    // The failures were forgotten: it takes two more to loop again.
    child.exit(1).await;
    harness.status_becomes(ChildStatus::Backoff).await;
    assert_eq!(harness.supervisor.snapshot().child.consecutive_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn failures_further_apart_than_the_crash_window_are_no_crash_loop() {
    let harness = Harness::start(
        Config {
            crash_loop_max: 3,
            crash_loop_window_ms: 5_000,
            backoff_initial_ms: 4_000,
            backoff_max_ms: 4_000,
            ..config()
        },
        TOP,
    );
    for _ in 0..4 {
        harness.fake.next_child().await.exit(1).await;
        harness.status_becomes(ChildStatus::Backoff).await;
    }
    assert_eq!(harness.recorded("child.crashloop"), 0);
    harness.fake.next_child().await;
    assert_eq!(harness.fake.starts().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_healthy_run_resets_the_backoff() {
    let harness = Harness::start(config(), TOP);
    harness.fake.next_child().await.exit(1).await;
    harness.fake.next_child().await.exit(1).await;
    let mut third = harness.fake.next_child().await;
    assert_eq!(harness.supervisor.snapshot().child.consecutive_failures, 2);
    third.warm_up().await;
    sleep(Duration::from_secs(10)).await;
    third.exit(0).await;
    harness.status_becomes(ChildStatus::Backoff).await;
    let exited = Instant::now();
    harness.fake.next_child().await;
    let starts = harness.fake.starts();
    let last = starts.last().map(|(at, _)| *at).unwrap_or(exited);
    assert_eq!(last - exited, Duration::from_secs(1));
    assert_eq!(harness.supervisor.snapshot().child.consecutive_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn a_child_slow_to_warm_up_that_exits_soon_after_ready_does_not_reset_the_backoff() {
    let harness = Harness::start(config(), TOP);
    harness.fake.next_child().await.exit(1).await;
    harness.fake.next_child().await.exit(1).await;
    let mut third = harness.fake.next_child().await;
    // Ten seconds since it was spawned, but only two of them ready.
    sleep(Duration::from_secs(8)).await;
    third.warm_up().await;
    sleep(Duration::from_secs(2)).await;
    third.exit(0).await;
    harness.status_becomes(ChildStatus::Backoff).await;
    assert_eq!(harness.supervisor.snapshot().child.consecutive_failures, 3);
}

#[tokio::test(start_paused = true)]
async fn a_turn_past_its_timeout_is_interrupted_then_killed_after_the_grace() {
    let (harness, mut child) = Harness::ready(config()).await;
    let asked_at = Instant::now();
    let asked = harness.ask("slow", Duration::from_secs(2));
    expect_line(&mut child, "user", None).await;
    child
        .print(json!({"type": "assistant", "message": {}}))
        .await;
    let timed_out = answer(asked).await;
    assert_eq!(
        timed_out.map(|r| r.ok),
        Err(AskError::Timeout { after_ms: 2_000 })
    );
    assert_eq!(asked_at.elapsed(), Duration::from_secs(2));
    let first = expect_line(&mut child, "control_request", Some("interrupt")).await;
    assert_eq!(first["request_id"], "interrupt-1-1");
    // Unheeded: sent again after half a second, then killed at the end of the grace.
    let again = expect_line(&mut child, "control_request", Some("interrupt")).await;
    assert_eq!(again["request_id"], "interrupt-1-2");
    assert_eq!(asked_at.elapsed(), Duration::from_millis(2_500));
    assert!(
        harness
            .supervisor
            .snapshot()
            .turn
            .is_some_and(|(t, _)| t.abandoned)
    );
    let next = harness.fake.next_child().await;
    assert_eq!(asked_at.elapsed(), Duration::from_secs(7));
    assert_eq!(
        harness.fake.signals().first(),
        Some(&(child.pid, Stop::Kill))
    );
    assert_eq!(next.generation, 2);
    // A deliberate kill is no failure: the next child starts at once.
    assert_eq!(harness.supervisor.snapshot().child.consecutive_failures, 0);
    for kind in [
        "turn.timeout",
        "child.killing",
        "child.exited",
        "turn.failed",
    ] {
        assert_eq!(harness.recorded(kind), 1, "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_waits_until_the_turn_printed_its_first_line() {
    let (harness, mut child) = Harness::ready(config()).await;
    let asked = harness.ask("queued inside the CLI", Duration::from_secs(1));
    expect_line(&mut child, "user", None).await;
    assert!(matches!(answer(asked).await, Err(AskError::Timeout { .. })));
    sleep(Duration::from_secs(2)).await;
    assert!(
        child.try_read().is_none(),
        "no interrupt before the turn started"
    );
    child
        .print(json!({"type": "system", "subtype": "init", "session_id": "s"}))
        .await;
    expect_line(&mut child, "control_request", Some("interrupt")).await;
    // The grace runs from the interrupt the turn can act on: a result in time keeps the child.
    sleep(Duration::from_secs(4)).await;
    child.result("interrupted").await;
    harness.status_becomes(ChildStatus::Ready).await;
    assert!(harness.fake.signals().is_empty());
    assert_eq!(harness.recorded("turn.abandoned.finished"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_ask_leaves_the_queue_and_a_cancelled_turn_is_interrupted() {
    let (harness, mut child) = Harness::ready(config()).await;
    let running = harness.ask("running", LONG);
    expect_line(&mut child, "user", None).await;
    let queued = harness.ask("queued", LONG);
    sleep(Duration::from_millis(10)).await;
    queued.abort();
    sleep(Duration::from_millis(10)).await;
    assert_eq!(harness.supervisor.snapshot().queue.length, 0);
    child
        .print(json!({"type": "assistant", "message": {}}))
        .await;
    running.abort();
    expect_line(&mut child, "control_request", Some("interrupt")).await;
    child.result("stopped").await;
    harness.status_becomes(ChildStatus::Ready).await;
    sleep(Duration::from_secs(1)).await;
    assert!(child.try_read().is_none(), "the cancelled ask never ran");
    assert_eq!(harness.recorded("turn.cancelled"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_child_that_dies_mid_turn_fails_it_and_the_next_child_resumes_the_session() {
    let (harness, mut child) = Harness::ready(config()).await;
    let first = harness.ask("one", LONG);
    expect_line(&mut child, "user", None).await;
    child.init("s1").await;
    child.result("1").await;
    assert!(answer(first).await.is_ok());
    let second = harness.ask("two", LONG);
    expect_line(&mut child, "user", None).await;
    child.exit(1).await;
    let died = answer(second).await;
    assert!(
        matches!(
            died,
            Err(AskError::ChildExited {
                exit_code: Some(1),
                ..
            })
        ),
        "{died:?}"
    );
    harness.fake.next_child().await;
    let starts = harness.fake.starts();
    assert_eq!(
        starts.last().and_then(|(_, r)| r.clone()).as_deref(),
        Some("s1")
    );
    let info = harness.supervisor.snapshot().child;
    assert_eq!(info.resumed_from.as_deref(), Some("s1"));
    assert_eq!(info.session_id.as_deref(), Some("s1"));
}

#[tokio::test(start_paused = true)]
async fn a_resumed_child_that_dies_before_ready_starts_a_new_session_at_once() {
    let (harness, mut child) = Harness::ready(config()).await;
    let first = harness.ask("one", LONG);
    expect_line(&mut child, "user", None).await;
    child.init("gone").await;
    child.result("1").await;
    assert!(answer(first).await.is_ok());
    child.exit(1).await;
    let resumed = harness.fake.next_child().await;
    resumed.exit(1).await;
    let fresh = harness.fake.next_child().await;
    let starts = harness.fake.starts();
    assert_eq!(starts[1].1.as_deref(), Some("gone"));
    assert_eq!(
        (starts[2].1.clone(), starts[2].0 - starts[1].0),
        (None, Duration::ZERO)
    );
    assert_eq!(fresh.generation, 3);
    assert_eq!(harness.recorded("child.resume.failed"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_missing_binary_fails_asks_at_once_and_the_next_ask_tries_again() {
    let fake = Fake::default();
    fake.set_missing(true);
    let harness = Harness::with_fake(fake, config(), TOP);
    harness.status_becomes(ChildStatus::Failed).await;
    let refused = answer(harness.ask("hello", LONG)).await;
    let Err(AskError::Unavailable { reason, .. }) = refused else {
        panic!("{refused:?}");
    };
    assert!(reason.contains("cannot find"), "{reason}");
    sleep(Duration::from_secs(600)).await;
    assert!(!harness.fake.has_fresh_child(), "no retry on a timer");
    harness.fake.set_missing(false);
    let asked = harness.ask("installed now", LONG);
    let mut child = harness.fake.next_child().await;
    child.warm_up().await;
    expect_line(&mut child, "user", None).await;
    child.result("hi").await;
    assert!(answer(asked).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_child_whose_stdout_closed_is_killed_if_it_lingers() {
    let (harness, child) = Harness::ready(config()).await;
    child.close_stdout().await;
    let closed = Instant::now();
    harness.fake.next_child().await;
    assert_eq!(closed.elapsed(), Duration::from_secs(1));
    assert_eq!(
        harness.fake.signals().first(),
        Some(&(child.pid, Stop::Kill))
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_turn_is_stalled_and_interrupted() {
    let (harness, mut child) = Harness::ready(Config {
        stall_timeout_ms: 3_000,
        ..config()
    })
    .await;
    let asked = harness.ask("quiet", LONG);
    expect_line(&mut child, "user", None).await;
    child
        .print(json!({"type": "assistant", "message": {}}))
        .await;
    let stalled = answer(asked).await;
    assert_eq!(
        stalled.map(|r| r.ok),
        Err(AskError::Stalled { silent_ms: 3_000 })
    );
    expect_line(&mut child, "control_request", Some("interrupt")).await;
}

#[tokio::test(start_paused = true)]
async fn stopping_closes_stdin_then_terminates_the_child_and_refuses_asks() {
    let (harness, mut child) = Harness::ready(config()).await;
    let running = harness.ask("running", LONG);
    expect_line(&mut child, "user", None).await;
    let stopped_at = Instant::now();
    harness.supervisor.stop(false).await;
    assert_eq!(answer(running).await.map(|r| r.ok), Err(AskError::Stopping));
    assert_eq!(
        stopped_at.elapsed(),
        Duration::from_secs(5),
        "TERM after the stop grace"
    );
    expect_line(&mut child, "control_request", Some("interrupt")).await;
    assert!(child.read().await.is_none(), "stdin is closed");
    assert_eq!(
        harness.fake.signals().first(),
        Some(&(child.pid, Stop::Term))
    );
    assert_eq!(harness.status(), ChildStatus::Stopped);
    let refused = answer(harness.ask("after", LONG)).await;
    assert_eq!(refused.map(|r| r.ok), Err(AskError::Stopping));
}

#[tokio::test(start_paused = true)]
async fn a_prompt_stop_kills_a_child_that_ignores_term() {
    let (harness, child) = Harness::ready(config()).await;
    harness.fake.set_ignore_term(true);
    let stopped_at = Instant::now();
    harness.supervisor.stop(true).await;
    assert_eq!(stopped_at.elapsed(), Duration::from_millis(40));
    let signals = harness.fake.signals();
    assert_eq!(
        signals[..2],
        [(child.pid, Stop::Term), (child.pid, Stop::Kill)]
    );
    assert_eq!(harness.status(), ChildStatus::Stopped);
}

#[tokio::test(start_paused = true)]
async fn many_actors_run_side_by_side_each_with_its_own_child() {
    let (one, mut first) = Harness::ready(config()).await;
    let (two, mut second) = Harness::ready(config()).await;
    let a = one.ask("to one", LONG);
    let b = two.ask("to two", LONG);
    assert_eq!(
        expect_line(&mut first, "user", None).await["message"]["content"],
        "to one"
    );
    assert_eq!(
        expect_line(&mut second, "user", None).await["message"]["content"],
        "to two"
    );
    second.result("2").await;
    first.result("1").await;
    assert_eq!(answer(a).await.map(|r| r.result), Ok(Some("1".into())));
    assert_eq!(answer(b).await.map(|r| r.result), Ok(Some("2".into())));
}

#[tokio::test(start_paused = true)]
async fn a_restart_request_kills_the_running_child_and_starts_the_next_at_once() {
    let (harness, child) = Harness::ready(config()).await;
    let outcome = harness.supervisor.restart().await.expect("restarted");
    assert_eq!(outcome.killed_pid, Some(child.pid));
    let requested = Instant::now();
    let next = harness.fake.next_child().await;
    assert_eq!((requested.elapsed(), next.generation), (Duration::ZERO, 2));
    let info = harness.supervisor.snapshot().child;
    assert_eq!((info.restart_count, info.consecutive_failures), (1, 0));
    assert_eq!(info.status, ChildStatus::Starting);
}

#[tokio::test(start_paused = true)]
async fn an_oversized_line_fails_the_turn_and_replaces_the_child() {
    let (harness, mut child) = Harness::ready(config()).await;
    let asked = harness.ask("big", LONG);
    expect_line(&mut child, "user", None).await;
    child
        .print(json!({"type": "assistant", "message": {}}))
        .await;
    child.too_long(2 << 20).await;
    let failed = answer(asked).await;
    assert!(
        matches!(failed, Err(AskError::OutputTooLarge { len, .. }) if len == 2 << 20),
        "{failed:?}"
    );
    let next = harness.fake.next_child().await;
    assert_eq!(next.generation, 2);
    assert_eq!(
        harness.fake.signals().first(),
        Some(&(child.pid, Stop::Kill))
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_backoff_cancels_the_restart() {
    let harness = Harness::start(config(), TOP);
    harness.fake.next_child().await.exit(1).await;
    harness.status_becomes(ChildStatus::Backoff).await;
    let due = harness.supervisor.snapshot().child.next_restart_at;
    assert!(due.is_some());
    harness.supervisor.stop(false).await;
    let info = harness.supervisor.snapshot().child;
    assert_eq!(
        (info.status, info.next_restart_at),
        (ChildStatus::Stopped, None)
    );
    sleep(Duration::from_secs(60)).await;
    assert_eq!(harness.fake.starts().len(), 1, "no restart after a stop");
}

#[tokio::test(start_paused = true)]
async fn a_nested_actor_whose_binary_is_missing_fails_its_first_ask() {
    let harness = Harness::start(config(), Nesting { depth: 1, limit: 2 });
    harness.fake.set_missing(true);
    let refused = answer(harness.ask("hello", LONG)).await;
    assert!(
        matches!(refused, Err(AskError::Unavailable { .. })),
        "{refused:?}"
    );
    assert_eq!(harness.status(), ChildStatus::Failed);
    assert_eq!(harness.recorded("child.spawn.failed"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_binary_that_cannot_start_backs_off_and_fails_waiting_asks_at_once() {
    let harness = Harness::start(config(), TOP);
    let child = harness.fake.next_child().await;
    harness.fake.set_broken(true);
    let waiting = harness.ask("waits for the next child", LONG);
    child.exit(1).await;
    harness.status_becomes(ChildStatus::Backoff).await;
    assert!(matches!(
        answer(waiting).await,
        Err(AskError::Unavailable { .. })
    ));
    // The timer's start fails too: another backoff, one step longer, not a dead end.
    sleep(Duration::from_millis(1_500)).await;
    let info = harness.supervisor.snapshot().child;
    assert_eq!(
        (info.status, info.consecutive_failures),
        (ChildStatus::Backoff, 2)
    );
    assert!(info.last_error.is_some_and(|e| e.contains("cannot start")));
    harness.fake.set_broken(false);
    sleep(Duration::from_secs(2)).await;
    assert!(
        harness.fake.has_fresh_child(),
        "started once the binary works"
    );
}

#[tokio::test(start_paused = true)]
async fn a_binary_gone_missing_during_backoff_is_a_failure_the_next_ask_retries() {
    let harness = Harness::start(config(), TOP);
    harness.fake.next_child().await.exit(1).await;
    harness.status_becomes(ChildStatus::Backoff).await;
    harness.fake.set_missing(true);
    harness.status_becomes(ChildStatus::Failed).await;
    assert_eq!(harness.fake.starts().len(), 1);
    harness.fake.set_missing(false);
    let _asked = harness.ask("retry", LONG);
    harness.fake.next_child().await;
    assert_eq!(harness.status(), ChildStatus::Starting);
}

#[tokio::test(start_paused = true)]
async fn a_child_that_exits_when_its_stdin_closes_stops_without_a_signal() {
    let (harness, mut child) = Harness::ready(config()).await;
    let player = tokio::spawn(async move {
        while child.read().await.is_some() {}
        child.exit(0).await;
        child.pid
    });
    let stopped_at = Instant::now();
    harness.supervisor.stop(false).await;
    assert_eq!(stopped_at.elapsed(), Duration::ZERO);
    let pid = player.await.unwrap_or_default();
    // Only the clean-up of the group after the exit: no TERM was needed.
    assert_eq!(
        harness.fake.signals(),
        [(pid, Stop::Kill), (pid, Stop::Kill)]
    );
    assert_eq!(harness.status(), ChildStatus::Stopped);
    let exited = harness.events.query(&EventsParams::default()).events;
    let exit = exited
        .iter()
        .find(|e| e.kind == crate::api::EventKind::ChildExited);
    assert!(
        exit.is_some_and(|e| e.level == crate::api::Level::Info),
        "an asked-for exit"
    );
}

mod backpressure;
mod questions_and_budgets;
