//! Build script: lets the tests that need the real Claude Code CLI know whether it is there.
//!
//! `CLAUDE_BIN` (the pinned CLI, from `scripts/install-claude-cli.sh`) set when the tests
//! are built turns on `cfg(real_cli)`. Without it those tests are `#[ignore]`d with the
//! reason, so `cargo test` shows them as ignored instead of counting a skip as a pass;
//! under `CI` a test per file fails when they were not built to run.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(real_cli)");
    println!("cargo::rerun-if-env-changed=CLAUDE_BIN");
    if std::env::var_os("CLAUDE_BIN").is_some_and(|bin| !bin.is_empty()) {
        println!("cargo::rustc-cfg=real_cli");
    }
}
