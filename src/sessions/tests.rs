//! The pool of sessions in-process: each session's supervisor runs on a fake child (no
//! binary), on tokio's paused clock, so parallel turns, eviction, a full pool, idle
//! reaping and revival, `closeSession` and the budgets each child starts under are
//! played exactly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::sleep;

use super::budget::budget_left;
use super::*;
use crate::api::{EventKind, EventsParams};
use crate::supervisor::MIN_BUDGET_USD;
use crate::supervisor::fake::{Fake, FakeChild, config};
use crate::supervisor::{AskError, BudgetScope};

const TOP: Nesting = Nesting { depth: 0, limit: 1 };

/// One supervisor the pool made: for which session, starting where, on which fake.
#[derive(Clone)]
struct Made {
    name: String,
    origin: Origin,
    fake: Fake,
}

/// A pool whose supervisors run on fakes, and what it made.
struct Pool {
    sessions: Sessions,
    made: Arc<Mutex<Vec<Made>>>,
    events: EventLog,
}

type Answer = JoinHandle<Result<crate::api::AskResult, DaemonError>>;

impl Pool {
    fn start(config: Config) -> Pool {
        let made = Arc::new(Mutex::new(Vec::new()));
        let record = made.clone();
        let spawner: Spawner = Box::new(move |config, events, start| {
            let fake = Fake::default();
            lock(&record).push(Made {
                name: start.name.clone(),
                origin: start.origin.clone(),
                fake: fake.clone(),
            });
            Supervisor::with_backend(config, TOP, events, fake.backend(), start)
        });
        let events = EventLog::new(1_000);
        let sessions = Sessions::with_spawner(Arc::new(config), events.clone(), None, spawner);
        Pool {
            sessions,
            made,
            events,
        }
    }

    /// The supervisors made for `name`, oldest first.
    fn made_for(&self, name: &str) -> Vec<Made> {
        lock(&self.made)
            .iter()
            .filter(|m| m.name == name)
            .cloned()
            .collect()
    }

    /// The warm child of the supervisor made last for `name`.
    async fn warm(&self, name: &str) -> FakeChild {
        let made = self.made_for(name);
        let last = made
            .last()
            .unwrap_or_else(|| panic!("no supervisor for {name}"));
        let mut child = last.fake.next_child().await;
        child.warm_up().await;
        child
    }

    fn submit(&self, name: &str, prompt: &str, budget: Option<f64>) -> Answer {
        self.submit_from(name, prompt, budget, None)
    }

    /// [`Pool::submit`] from the process `caller`, as a socket client's ask.
    fn submit_from(
        &self,
        name: &str,
        prompt: &str,
        budget: Option<f64>,
        caller: Option<Caller>,
    ) -> Answer {
        let route = Route {
            name: name.to_string(),
            origin: None,
            cwd: None,
            ask_budget: budget,
            extra_args: Vec::new(),
        };
        let turn = NewTurn {
            prompt: prompt.to_string(),
            timeout: Duration::from_secs(300),
            mode: None,
            model: None,
            sink: None,
            asker: None,
            max_budget_usd: budget,
            partial: false,
        };
        let pending = self.sessions.submit(&route, turn, caller);
        tokio::spawn(async move { Ok(pending?.wait().await?) })
    }

    fn ask(&self, name: &str, prompt: &str) -> Answer {
        self.submit(name, prompt, None)
    }

    fn state_of(&self, name: &str) -> ChildStatus {
        let list = self.sessions.list();
        let info = list.sessions.iter().find(|s| s.name == name);
        info.unwrap_or_else(|| panic!("no session {name}")).state
    }

    fn recorded(&self, kind: EventKind) -> Vec<Value> {
        let params = EventsParams {
            limit: Some(1_000),
            ..EventsParams::default()
        };
        let events = self.events.query(&params).events;
        events
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.detail)
            .collect()
    }
}

async fn answer(answer: Answer) -> Result<crate::api::AskResult, DaemonError> {
    answer.await.unwrap_or(Err(AskError::Stopping.into()))
}

/// Reads the child's stdin until the user message of a turn; its text.
async fn user_prompt(child: &mut FakeChild) -> String {
    loop {
        let line = child.read().await.unwrap_or_default();
        if line["type"] == "user" {
            return line["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .into();
        }
        assert!(!line.is_null(), "stdin closed before a turn");
    }
}

/// Ends the turn with the CLI's running total for the session at `total_usd`.
async fn result_at(child: &FakeChild, session: &str, total_usd: f64) {
    child
        .print(
            json!({"type": "result", "subtype": "success", "is_error": false,
            "result": "done", "session_id": session, "total_cost_usd": total_usd}),
        )
        .await;
}

#[tokio::test(start_paused = true)]
async fn sessions_run_turns_side_by_side_and_a_full_pool_stops_the_idle_one_or_is_busy() {
    let pool = Pool::start(Config {
        max_sessions: 2,
        ..config()
    });
    let mut default = pool.warm(DEFAULT_SESSION).await;
    let a = pool.ask("a", "one");
    let mut child_a = pool.warm("a").await;
    assert_eq!(user_prompt(&mut child_a).await, "one");
    // Two places, both taken: `b` takes the place of the idle `default`.
    let b = pool.ask("b", "two");
    let mut child_b = pool.warm("b").await;
    assert_eq!(user_prompt(&mut child_b).await, "two");
    // Both turns run at once: neither is answered yet.
    assert!(!a.is_finished() && !b.is_finished());
    assert!(default.read().await.is_none(), "default's stdin is closed");
    default.exit(0).await;
    assert_eq!(pool.state_of(DEFAULT_SESSION), ChildStatus::Stopped);
    // Every running session is busy: no room for a third.
    let refused = answer(pool.ask("c", "three")).await;
    assert_eq!(
        refused.err(),
        Some(DaemonError::SessionsFull {
            live: 2,
            max: 2,
            busy: 2
        })
    );
    child_b.result("2").await;
    child_a.result("1").await;
    assert!(answer(a).await.is_ok_and(|r| r.ok));
    assert!(answer(b).await.is_ok_and(|r| r.ok));
    let stopped = pool.recorded(EventKind::SessionStopped);
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0]["name"], DEFAULT_SESSION);
    assert_eq!(
        stopped[0]["reason"],
        "its place was needed by another session"
    );
    // Now `a` is the least recently used idle session: `c` takes its place.
    let c = pool.ask("c", "three");
    let mut child_c = pool.warm("c").await;
    assert_eq!(user_prompt(&mut child_c).await, "three");
    child_c.result("3").await;
    assert!(answer(c).await.is_ok());
    assert_eq!(pool.state_of("a"), ChildStatus::Stopped);
    assert_eq!(pool.sessions.list().live, 2);
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_is_reaped_and_its_next_ask_resumes_its_conversation() {
    let pool = Pool::start(Config {
        session_idle_ms: 1_000,
        ..config()
    });
    pool.warm(DEFAULT_SESSION).await;
    let first = pool.ask("a", "remember");
    let mut child = pool.warm("a").await;
    user_prompt(&mut child).await;
    child.init("s-a").await;
    result_at(&child, "s-a", 0.01).await;
    assert!(answer(first).await.is_ok());
    // Busy until just now; idle for a second plus the reaper's tick after that.
    sleep(Duration::from_millis(2_100)).await;
    assert_eq!(pool.state_of("a"), ChildStatus::Stopped);
    let list = pool.sessions.list();
    let listed = list.sessions.iter().find(|s| s.name == "a");
    assert_eq!(
        listed.and_then(|s| s.session_id.clone()).as_deref(),
        Some("s-a")
    );
    assert!(child.read().await.is_none(), "its stdin is closed");
    child.exit(0).await;
    let stopped = pool.recorded(EventKind::SessionStopped);
    assert!(
        stopped
            .iter()
            .any(|e| e["name"] == "a" && e["reason"] == "idle for 1 s"),
        "{stopped:?}"
    );
    // The next ask starts it again, continuing its conversation.
    let again = pool.ask("a", "what was it?");
    let mut revived = pool.warm("a").await;
    assert_eq!(user_prompt(&mut revived).await, "what was it?");
    result_at(&revived, "s-a", 0.02).await;
    let result = answer(again).await.expect("an answer");
    assert_eq!(result.cost_usd, Some(0.01), "its own turn's cost");
    let made = pool.made_for("a");
    assert_eq!(made.len(), 2);
    assert_eq!(made[1].origin, Origin::Resume("s-a".into()));
    let starts = made[1].fake.starts();
    assert_eq!(starts[0].1.as_deref(), Some("s-a"));
}

#[tokio::test(start_paused = true)]
async fn close_session_tells_its_running_and_waiting_asks_and_keeps_the_conversation() {
    let pool = Pool::start(config());
    pool.warm(DEFAULT_SESSION).await;
    let running = pool.ask("a", "long");
    let waiting = pool.ask("a", "next");
    let mut child = pool.warm("a").await;
    user_prompt(&mut child).await;
    child.init("s-a").await;
    let closed = pool.sessions.close("a").expect("closed");
    assert!(closed.was_live);
    for asked in [running, waiting] {
        let error = answer(asked).await.err();
        let expected = AskError::SessionStopped {
            session: "a".into(),
            reason: "closed by a client".into(),
        };
        assert_eq!(error, Some(DaemonError::Ask(expected)));
    }
    assert_eq!(pool.state_of("a"), ChildStatus::Stopped);
    let unknown = pool.sessions.close("nobody");
    assert!(matches!(
        unknown,
        Err(DaemonError::InvalidParams {
            field: "session",
            ..
        })
    ));
}

/// A pool with a $1 session budget whose session `a` ran one turn for $0.25 (session
/// id `s-a`), with that turn's child still live.
async fn session_a_that_spent_a_quarter_of_its_dollar() -> (Pool, FakeChild) {
    let pool = Pool::start(Config {
        session_budget_usd: Some(1.0),
        ..config()
    });
    pool.warm(DEFAULT_SESSION).await;
    let first = pool.ask("a", "one");
    let mut child = pool.warm("a").await;
    user_prompt(&mut child).await;
    child.init("s-a").await;
    result_at(&child, "s-a", 0.25).await;
    assert!(answer(first).await.is_ok());
    (pool, child)
}

#[tokio::test(start_paused = true)]
async fn each_child_starts_under_what_its_session_has_left_or_its_asks_own_budget() {
    let (pool, mut child) = session_a_that_spent_a_quarter_of_its_dollar().await;
    // An ask with its own budget: a child under min(0.5, 1.0 - 0.25).
    let capped = pool.submit("a", "two", Some(0.5));
    assert!(child.read().await.is_none(), "the spent child is replaced");
    child.exit(0).await;
    let fake = pool.made_for("a")[0].fake.clone();
    let mut second = fake.next_child().await;
    second.warm_up().await;
    user_prompt(&mut second).await;
    result_at(&second, "s-a", 0.35).await;
    let cost = answer(capped).await.expect("an answer").cost_usd;
    assert!(cost.is_some_and(|c| (c - 0.1).abs() < 1e-9), "{cost:?}");
    // The next ask has none: the session's budget, less the 0.35 spent.
    let after = pool.ask("a", "three");
    assert!(second.read().await.is_none());
    second.exit(0).await;
    let mut third = fake.next_child().await;
    third.warm_up().await;
    user_prompt(&mut third).await;
    result_at(&third, "s-a", 0.36).await;
    assert!(answer(after).await.is_ok());
    let budgets = fake.budgets();
    assert_eq!(budgets.len(), 3);
    let expected = [1.0, 0.5, 0.65];
    for (got, want) in budgets.iter().zip(expected) {
        assert!(got.is_some_and(|b| (b - want).abs() < 1e-9), "{budgets:?}");
    }
    let left = budget_left(
        &pool.sessions.inner.config,
        &lock(&pool.sessions.inner.slots),
        &lock(&pool.sessions.inner.held),
        "a",
    );
    assert_eq!(left.map(|b| b.scope), Some(BudgetScope::Session));
    assert!(
        left.is_some_and(|b| (b.usd - 0.64).abs() < 1e-9),
        "{left:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_restarted_after_a_crash_starts_under_what_is_left_not_the_whole_budget() {
    let (pool, child) = session_a_that_spent_a_quarter_of_its_dollar().await;
    child.exit(1).await;
    let fake = pool.made_for("a")[0].fake.clone();
    let restarted = fake.next_child().await;
    assert_eq!(fake.starts()[1].1.as_deref(), Some("s-a"));
    drop(restarted);
    assert_eq!(fake.budgets(), [Some(1.0), Some(0.75)]);
}

#[tokio::test(start_paused = true)]
async fn a_session_made_for_an_ask_with_a_budget_starts_its_first_child_under_it() {
    let pool = Pool::start(Config {
        session_budget_usd: Some(1.0),
        ..config()
    });
    pool.warm(DEFAULT_SESSION).await;
    let capped = pool.submit("worker", "review", Some(0.3));
    let mut child = pool.warm("worker").await;
    assert_eq!(user_prompt(&mut child).await, "review");
    child.result("ok").await;
    assert!(answer(capped).await.is_ok());
    let fake = pool.made_for("worker")[0].fake.clone();
    assert_eq!(fake.budgets(), [Some(0.3)]);
    assert!(pool.recorded(EventKind::ChildReplacing).is_empty());
}

/// A stopped session last used `n` seconds after the others began.
fn stopped_slot(n: u64, cost_usd: f64) -> Slot {
    Slot {
        cwd: PathBuf::from("/"),
        created_at: now_rfc3339(),
        last_used: Instant::now() + Duration::from_secs(n),
        last_used_at: now_rfc3339(),
        live: None,
        session_id: None,
        session_cost_usd: None,
        past: Totals {
            cost_usd,
            ..Totals::default()
        },
    }
}

#[tokio::test(start_paused = true)]
async fn past_the_bound_the_least_recently_used_stopped_sessions_are_forgotten_but_not_what_they_spent()
 {
    let pool = Pool::start(config());
    {
        let mut slots = lock(&pool.sessions.inner.slots);
        for n in 0..MAX_STORED_SESSIONS as u64 + 10 {
            // The oldest one spent money in this run: it still counts against the budget.
            let cost = if n == 0 { 0.5 } else { 0.0 };
            slots.insert(format!("s{n:03}"), stopped_slot(n, cost));
        }
    }
    let before = lock(&pool.sessions.inner.slots).len();
    pool.sessions.bound_stored();
    let slots = lock(&pool.sessions.inner.slots);
    assert_eq!(slots.len(), MAX_STORED_SESSIONS);
    assert!(
        slots.contains_key("s000"),
        "a session that spent was forgotten"
    );
    // The oldest that spent nothing went, in order of last use.
    let over = before - MAX_STORED_SESSIONS;
    for n in 1..=over {
        assert!(!slots.contains_key(&format!("s{n:03}")), "s{n:03} kept");
    }
    assert!(slots.contains_key(&format!("s{:03}", over + 1)));
    drop(slots);
    assert_eq!(pool.recorded(EventKind::SessionForgotten).len(), over);
}

#[tokio::test(start_paused = true)]
async fn a_running_turn_holds_what_is_left_so_another_sessions_turn_is_refused_until_it_ends() {
    let pool = Pool::start(Config {
        budget_usd: Some(1.0),
        ..config()
    });
    let mut default = pool.warm(DEFAULT_SESSION).await;
    let first = pool.ask(DEFAULT_SESSION, "one");
    assert_eq!(user_prompt(&mut default).await, "one");
    // The running turn may spend the whole dollar: nothing is left to start another under.
    let second = pool.ask("b", "two");
    let mut b = pool.warm("b").await;
    match answer(second).await {
        Err(DaemonError::Ask(AskError::BudgetExhausted {
            spent, held, limit, ..
        })) => {
            assert_eq!((spent, held, limit), (0.0, 1.0, 1.0));
        }
        other => panic!("not refused for the budget: {other:?}"),
    }
    // The first turn spent a quarter: the rest goes back, and b's next turn may spend it,
    // in a child whose CLI is held to just that.
    default.init("s-d").await;
    result_at(&default, "s-d", 0.25).await;
    assert!(answer(first).await.is_ok());
    let third = pool.ask("b", "three");
    assert!(
        b.read().await.is_none(),
        "b's child held to nothing is replaced"
    );
    b.exit(0).await;
    let fake = pool.made_for("b")[0].fake.clone();
    let mut again = fake.next_child().await;
    again.warm_up().await;
    assert_eq!(user_prompt(&mut again).await, "three");
    again.init("s-b").await;
    result_at(&again, "s-b", 0.5).await;
    assert!(answer(third).await.is_ok());
    let budgets = fake.budgets();
    assert_eq!(budgets.len(), 2, "{budgets:?}");
    assert_eq!(budgets[0], Some(MIN_BUDGET_USD), "the least the CLI takes");
    assert!(
        budgets[1].is_some_and(|b| (b - 0.75).abs() < 1e-9),
        "{budgets:?}"
    );
    assert!(lock(&pool.sessions.inner.held).turns.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_ask_from_inside_a_busy_sessions_child_is_refused_and_others_are_not() {
    let pool = Pool::start(config());
    let mut child = pool.warm(DEFAULT_SESSION).await;
    let first = pool.ask(DEFAULT_SESSION, "one");
    assert_eq!(user_prompt(&mut child).await, "one");
    // The fake's pid stands for its guard: a process there runs under the session's child.
    let inside = Some(Caller(child.pid));
    match answer(pool.submit_from(DEFAULT_SESSION, "two", None, inside)).await {
        Err(DaemonError::InvalidParams {
            field: "session",
            reason,
        }) => {
            assert!(reason.contains("would wait on that turn"), "{reason}");
            assert!(reason.contains("--session NAME"), "{reason}");
        }
        other => panic!("not refused: {other:?}"),
    }
    // From the same process, another session runs.
    let elsewhere = pool.submit_from("b", "three", None, inside);
    let mut b = pool.warm("b").await;
    assert_eq!(user_prompt(&mut b).await, "three");
    b.result("ok").await;
    assert!(answer(elsewhere).await.is_ok());
    // From a process outside it, the busy session queues the ask as ever.
    let outside = Some(Caller(std::process::id()));
    let queued = pool.submit_from(DEFAULT_SESSION, "four", None, outside);
    child.result("one done").await;
    assert!(answer(first).await.is_ok());
    assert_eq!(user_prompt(&mut child).await, "four");
    child.result("four done").await;
    assert!(answer(queued).await.is_ok());
    // Idle again: even from inside, the session takes the ask.
    let later = pool.submit_from(DEFAULT_SESSION, "five", None, inside);
    assert_eq!(user_prompt(&mut child).await, "five");
    child.result("five done").await;
    assert!(answer(later).await.is_ok());
}
