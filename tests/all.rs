//! The integration tests of claude-coded, in one binary: one module per subject under
//! `suite/` (see `suite/mod.rs`), sharing `crates/test-support`.
//!
//! One binary links once instead of once per subject, and its tests share the two cores
//! as one pool. Run a subject with `cargo test --test all <subject>::`, one test with
//! `cargo test --test all <test name>`.
// Test code: a failed unwrap is a failed test, and its output is the report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

mod suite;
