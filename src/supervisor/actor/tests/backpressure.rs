//! The actor in-process, continued: a caller that does not read holds the child back
//! (nothing lost, the stall watchdog and the turn timeout still right), and a caller
//! gone mid-turn frees it.

use super::*;

/// Waits (on the paused clock) until the turn has taken `messages` lines from the child.
async fn turn_messages_become(harness: &Harness, messages: u64) {
    let mut watch = harness.supervisor.watch();
    let reached = watch
        .wait_for(|s| s.turn.as_ref().is_some_and(|(t, _)| t.messages == messages))
        .await
        .is_ok();
    assert!(reached, "the actor ended first");
}

fn assistant(n: u64) -> serde_json::Value {
    json!({"type": "assistant", "message": {"content": [{"type": "text", "text": format!("{n}")}]}})
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_does_not_read_holds_the_child_back_and_loses_nothing() {
    let (harness, mut child) = Harness::ready(config()).await;
    let (sink, mut stream) = mpsc::channel(2);
    let asked = harness.ask_streamed("flood", LONG, Some(sink));
    expect_line(&mut child, "user", None).await;
    for n in 1..=10 {
        child.print(assistant(n)).await;
    }
    child.result("done").await;
    // Two fit in the caller's buffer; the rest wait in the child's pipe, not dropped.
    turn_messages_become(&harness, 2).await;
    sleep(Duration::from_secs(60)).await;
    let (turn, _) = harness.supervisor.snapshot().turn.expect("still running");
    assert_eq!(turn.messages, 2);
    let mut seqs = Vec::new();
    while let Some(item) = stream.recv().await {
        seqs.push(item.seq);
    }
    assert_eq!(seqs, (1..=11).collect::<Vec<u64>>());
    let result = answer(asked).await.expect("an answer");
    assert_eq!((result.ok, result.messages), (true, 11));
    assert_eq!(
        harness.supervisor.snapshot().totals.notifications_dropped,
        0
    );
}

#[tokio::test(start_paused = true)]
async fn the_stall_watchdog_does_not_count_the_time_a_child_is_held_back() {
    let (harness, mut child) = Harness::ready(Config {
        stall_timeout_ms: 1_000,
        ..config()
    })
    .await;
    let (sink, mut stream) = mpsc::channel(1);
    let asked = harness.ask_streamed("held", LONG, Some(sink));
    expect_line(&mut child, "user", None).await;
    for n in 1..=3 {
        child.print(assistant(n)).await;
    }
    turn_messages_become(&harness, 1).await;
    // Held back far longer than the stall timeout: the child is not silent, it waits.
    sleep(Duration::from_secs(30)).await;
    assert_eq!(harness.recorded("turn.stalled"), 0);
    assert_eq!(harness.status(), ChildStatus::Busy);
    for seq in 1..=3 {
        assert_eq!(stream.recv().await.map(|m| m.seq), Some(seq));
    }
    // Then silent for real: the watchdog goes off a stall timeout after the last line.
    let since = Instant::now();
    let stalled = answer(asked).await;
    assert_eq!(
        stalled.map(|r| r.ok),
        Err(AskError::Stalled { silent_ms: 1_000 })
    );
    assert_eq!(since.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_turn_times_out_and_is_interrupted_while_its_child_is_held_back() {
    let (harness, mut child) = Harness::ready(config()).await;
    let (sink, mut stream) = mpsc::channel(1);
    let asked_at = Instant::now();
    let asked = harness.ask_streamed("held", Duration::from_secs(2), Some(sink));
    expect_line(&mut child, "user", None).await;
    for n in 1..=3 {
        child.print(assistant(n)).await;
    }
    let timed_out = answer(asked).await;
    assert_eq!(
        timed_out.map(|r| r.ok),
        Err(AskError::Timeout { after_ms: 2_000 })
    );
    assert_eq!(asked_at.elapsed(), Duration::from_secs(2));
    expect_line(&mut child, "control_request", Some("interrupt")).await;
    // The caller has its answer: its stream ends with what it was given.
    assert_eq!(stream.recv().await.map(|m| m.seq), Some(1));
    assert_eq!(stream.recv().await, None);
    // The child's lines are read again (no caller to wait for), so its result ends the turn.
    child.result("interrupted").await;
    harness.status_becomes(ChildStatus::Ready).await;
}

#[tokio::test(start_paused = true)]
async fn a_caller_gone_mid_turn_frees_the_child_and_what_it_missed_is_counted() {
    let (harness, mut child) = Harness::ready(config()).await;
    let (sink, mut stream) = mpsc::channel(1);
    let asked = harness.ask_streamed("flood", LONG, Some(sink));
    expect_line(&mut child, "user", None).await;
    for n in 1..=5 {
        child.print(assistant(n)).await;
    }
    assert_eq!(stream.recv().await.map(|m| m.seq), Some(1));
    // The caller stops reading for good (its surface's stdout broke).
    drop(stream);
    child.result("done").await;
    let result = answer(asked).await.expect("an answer");
    assert_eq!(result.messages, 6);
    // 1 was read; 2 sat in the buffer when the reader went; 3..6 found nobody.
    let dropped = harness.supervisor.snapshot().totals.notifications_dropped;
    assert!((4..=5).contains(&dropped), "{dropped}");
}
