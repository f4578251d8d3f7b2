#!/usr/bin/env bash
# The project's test command: installs what the tests need (the pinned Claude Code CLI,
# Codex CLI and Gemini CLI, the pinned MCP client packages), then runs the Rust tests, the
# MCP client scripts and the npm packages' install test.
# Everything talks to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase's time on stderr, and the whole at the end (the closing notes quote them).
phase_start=$SECONDS
phase() {
    echo "== test.sh: $1 took $((SECONDS - phase_start)) s (total $SECONDS s)" >&2
    phase_start=$SECONDS
}

# The real CLI for the end-to-end tests (cached under .cache/ after the first run).
CLAUDE_BIN="$(scripts/install-claude-cli.sh)"
export CLAUDE_BIN
# Codex CLI and Gemini CLI, the other real MCP hosts of tests/suite/e2e_other_hosts.rs
# (pinned, cached under .cache/host-clis): sets CODEX_BIN and GEMINI_BIN.
# (An assignment first: `set -e` stops on a failed install, which `eval "$(...)"` hides.)
host_clis="$(scripts/install-host-clis.sh)"
eval "$host_clis"
export CODEX_BIN GEMINI_BIN
phase "installing the CLIs"

# CLAUDE_BIN is exported before the build: it turns the real-CLI tests on (build.rs).
# --workspace: the test tools under crates/ have tests of their own.
# Most integration tests wait (on a real CLI, a mock API, a timer), not compute: with one
# test thread per core the suite took ~15 min at a load under 1; 8 threads take ~7 min
# (measured: 32 took 5 min but made timing-sensitive tests fail under the load). Through
# the variable, which libtest reads and fuzz_inputs' own main ignores.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-8}"
# Every crate of the lock file, for every target (a build fetches only this one's):
# tests/suite/package.rs reads the whole locked tree offline.
cargo fetch --locked --quiet
# Built first, so the build and the tests are timed apart.
cargo test --workspace --no-run --quiet
phase "building"
cargo test --workspace
phase "the Rust tests"

scripts/test-mcp-clients.sh
phase "the client scripts and the conformance suite"

# The npm packages, installed offline into a fresh prefix and run.
scripts/test-npm.sh
phase "the npm install test"
