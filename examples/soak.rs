//! Soak test: one claude-coded bridge over the CLI double, fed a long seeded random mix of
//! asks (normal, failing turns, crashes, kills, hangs, garbage, slow and huge output, tool
//! processes, pipelined up to N deep) with `status` polled along the way; then checks that
//! every ask got exactly one answer of the right kind, that the bridge exits 0 on stdin
//! EOF, and that none of its processes is left. Prints a summary table; exits 1 on any
//! problem. The same driver runs 100 asks in CI (`tests/suite/soak_short.rs`).
//!
//! ```sh
//! cargo run --release --example soak -- --asks 1000 [--seed N] [--in-flight N] [--mcp]
//! ```
//!
//! `--mcp` drives the MCP surface instead (tools/call, raw events opted in), with asks
//! cancelled right behind their prompt in the mix: each must get no answer, and its turn
//! must end at the interrupt, never by a kill after the grace period.
//!
//! The bridge and the double are the `claude-coded` and `claude-double` binaries of the
//! same build (built first when missing); `--bridge PATH` and `--double PATH` override.
// Test code: a failed unwrap is a failed test, and its output is the report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

use std::path::PathBuf;

use test_support::soak;

fn main() {
    let settings = match settings() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("soak: {message}");
            eprintln!(
                "usage: soak [--asks N] [--seed N] [--in-flight N] [--mcp] [--bridge PATH] [--double PATH]"
            );
            std::process::exit(2);
        }
    };
    println!(
        "soak: {} asks on {}, seed {}, up to {} in flight (rerun with --seed {})",
        settings.asks,
        settings.surface.flag(),
        settings.seed,
        settings.max_in_flight,
        settings.seed
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("soak: {err}");
            std::process::exit(1);
        }
    };
    let report = runtime.block_on(soak::run(&settings));
    print!("{}", report.render());
    std::process::exit(if report.problems.is_empty() { 0 } else { 1 });
}

fn settings() -> Result<soak::Settings, String> {
    let mut asks = 1000;
    let mut seed = soak::clock_seed();
    let mut in_flight = 8;
    let mut bridge = None;
    let mut double = None;
    let mut surface = soak::SoakSurface::Plain;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        match arg.as_str() {
            "--asks" => asks = number(value()?)? as usize,
            "--seed" => seed = number(value()?)?,
            "--in-flight" => in_flight = (number(value()?)? as usize).max(1),
            "--bridge" => bridge = Some(PathBuf::from(value()?)),
            "--double" => double = Some(PathBuf::from(value()?)),
            "--mcp" => surface = soak::SoakSurface::Mcp,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let (bridge, double) = match (bridge, double) {
        (Some(bridge), Some(double)) => (bridge, double),
        (bridge, double) => {
            let (built_bridge, built_double) = binaries()?;
            (
                bridge.unwrap_or(built_bridge),
                double.unwrap_or(built_double),
            )
        }
    };
    Ok(soak::Settings {
        asks,
        seed,
        max_in_flight: in_flight,
        bridge,
        double,
        surface,
    })
}

/// `claude-coded` and `claude-double` of this build, built with the same profile by cargo
/// (`cargo run --example` does not build the package's binaries, and the double is a
/// package of its own).
fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let bridge = test_support::bins::cargo_build("claude-coded", "claude-coded")?;
    let double = test_support::bins::cargo_build("claude-double", "claude-double")?;
    Ok((bridge, double))
}
