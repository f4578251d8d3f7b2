#!/usr/bin/env bash
# The project's test command: installs what the tests need (the pinned Claude Code CLI,
# the pinned MCP client packages), then runs the Rust tests, the MCP client scripts and
# the npm packages' install test.
# Everything talks to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real CLI for the end-to-end tests (cached under .cache/ after the first run).
CLAUDE_BIN="$(scripts/install-claude-cli.sh)"
export CLAUDE_BIN

# CLAUDE_BIN is exported before the build: it turns the real-CLI tests on (build.rs).
# --workspace: the test tools under crates/ have tests of their own.
cargo test --workspace

scripts/test-mcp-clients.sh

# The npm packages, installed offline into a fresh prefix and run.
scripts/test-npm.sh
