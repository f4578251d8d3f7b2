//! What the tests with the real Claude Code CLI share: where it is, what keeps it offline,
//! and the check that CI does not skip them.

use std::path::{Path, PathBuf};

use tokio::sync::{Mutex, MutexGuard};

/// One real CLI (or real CLI tree) at a time in the test process: the CLI takes ~0.5 s and
/// ~200 MB to start, two would share two cores, and the tests that time it must not run
/// beside another CLI starting. A tokio mutex works across the per-test runtimes and is
/// not poisoned by a failing test.
static ONE_REAL_CLI: Mutex<()> = Mutex::const_new(());

/// Waits for the real CLI to be free; hold the guard while the test runs it.
pub async fn one_real_cli() -> MutexGuard<'static, ()> {
    ONE_REAL_CLI.lock().await
}

/// [`one_real_cli`] for a plain `#[test]` (outside any tokio runtime).
pub fn one_real_cli_blocking() -> MutexGuard<'static, ()> {
    ONE_REAL_CLI.blocking_lock()
}

/// `CLAUDE_BIN`, for the tests built with it (`cfg(real_cli)`, see `build.rs`): it must
/// be set when they run too.
pub fn real_cli_bin() -> PathBuf {
    let bin = std::env::var("CLAUDE_BIN").unwrap_or_default();
    assert!(
        Path::new(&bin).is_file(),
        "CLAUDE_BIN={bin:?} is not a file; set CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
    );
    PathBuf::from(bin)
}

/// Fails under `CI=true` or `CI=1` when the real-CLI tests were built without
/// `CLAUDE_BIN` (and so are ignored): CI must not go green by skipping them.
/// `built_to_run` is the test crate's `cfg!(real_cli)` (its `build.rs` sets it; this crate
/// has none).
pub fn assert_real_cli_tests_run_in_ci(built_to_run: bool) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci || built_to_run,
        "CI is set but the real-CLI tests were built without CLAUDE_BIN, so they are \
         ignored; build with CLAUDE_BIN=$(scripts/install-claude-cli.sh)"
    );
}

/// What keeps the real CLI offline on a mock API at `base_url`: a dummy key, no
/// telemetry, no update checks (claude-coded passes its environment on to the CLI).
pub fn offline_env(base_url: &str) -> Vec<(String, String)> {
    [
        ("ANTHROPIC_BASE_URL", base_url),
        ("ANTHROPIC_API_KEY", "test-key"),
        ("DISABLE_TELEMETRY", "1"),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("DISABLE_AUTOUPDATER", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
