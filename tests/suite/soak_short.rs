//! The soak in CI: 100 asks of the seeded random mix through a spawned bridge, on each
//! surface (MCP with asks cancelled right behind their prompt); the long run is
//! `cargo run --release --example soak -- --asks 1000 [--mcp]`, the driver and what it
//! checks are in `test_support::soak`. The seed is printed; `SOAK_SEED` replays one.

use test_support::soak;

fn settings(surface: soak::SoakSurface) -> soak::Settings {
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(soak::clock_seed);
    soak::Settings {
        asks: 100,
        seed,
        max_in_flight: 6,
        bridge: env!("CARGO_BIN_EXE_claude-coded").into(),
        double: test_support::double().to_path_buf(),
        surface,
    }
}

/// Runs the soak on `surface`, prints its report and fails on any problem it found.
async fn soak_without_problems(surface: soak::SoakSurface) -> soak::Report {
    let settings = settings(surface);
    let seed = settings.seed;
    let report = soak::run(&settings).await;
    println!("{}", report.render());
    assert!(
        report.problems.is_empty(),
        "soak failed (SOAK_SEED={seed}):\n{}",
        report.render()
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_mixed_mcp_asks_with_cancels_at_turn_start_kill_no_child() {
    let report = soak_without_problems(soak::SoakSurface::Mcp).await;
    assert_eq!(report.asks_answered + report.asks_cancelled, 100);
    assert_eq!(report.exit_code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_mixed_asks_are_each_answered_once_and_nothing_is_left_behind() {
    let report = soak_without_problems(soak::SoakSurface::Plain).await;
    assert_eq!(report.asks_answered, 100);
    assert_eq!(report.exit_code, Some(0));
    // The mix did exercise the failure paths (100 asks make each of these near certain).
    let errors: usize = report
        .answers
        .iter()
        .filter(|(answer, _)| matches!(answer, soak::Answer::Error(_)))
        .map(|(_, count)| count)
        .sum();
    assert!(errors > 0 && report.restarts > 0, "{}", report.render());
}
