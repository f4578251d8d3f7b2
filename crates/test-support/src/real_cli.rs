//! What the tests with the real Claude Code CLI share: where it is, what keeps it offline,
//! and the check that CI does not skip them.

use std::path::{Path, PathBuf};

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
