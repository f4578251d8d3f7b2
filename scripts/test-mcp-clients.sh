#!/usr/bin/env bash
# Drives claude-coded's MCP surface from MCP clients nobody here wrote: the official
# Python SDK (PyPI `mcp`, pinned in tests/clients/requirements.txt, in a venv under
# .cache/; on stdio and over Streamable HTTP with --listen) and the official TypeScript SDK (npm `@modelcontextprotocol/sdk`, pinned by
# tests/clients/package-lock.json), against freshly built binaries with the CLI double;
# then MCP Inspector's `--strict` check of the tool schemas (pinned the same way), which
# must find no error and no warning: hosts that map schemas to a single-type dialect
# reject tools it warns about.
#
# Prints each check, then a closing `N passed, M failed`; exits non-zero on any failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
clients="$root/tests/clients"
venv="$root/.cache/mcp-clients-venv"
target="${CARGO_TARGET_DIR:-$root/target}"

echo "== building claude-coded and claude-double"
# Two builds, as the tests do them (the double is a package of its own, see
# crates/test-support/src/bins.rs), so both share what they compiled.
cargo build --quiet --bin claude-coded
cargo build --quiet -p claude-double --bin claude-double
export CLAUDE_CODED_BIN="$target/debug/claude-coded"
export CLAUDE_DOUBLE_BIN="$target/debug/claude-double"

echo "== installing the Python SDK (venv: ${venv#"$root"/})"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$clients/requirements.txt"

echo "== installing the TypeScript SDK and MCP Inspector (npm install from the lock file)"
# Not `npm ci`: vite (under the Inspector's web UI, unused here) names an optional
# Windows-only package the registry does not serve, which `npm ci` counts as a lock file
# out of sync; `npm install --no-save` installs the locked versions and skips it.
(cd "$clients" && npm install --no-save --no-audit --no-fund --loglevel=error)

passed=0
failed=0

# Runs one client script; adds its closing counts (a run that ends without them, or
# exits non-zero with no failure counted, counts as one failure).
run_client() {
    local name="$1"
    shift
    local log
    log="$(mktemp)"
    echo "== $name"
    local status=0
    "$@" 2>&1 | tee "$log" || status=$?
    local summary
    summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)"
    rm -f "$log"
    if [[ -z "$summary" ]]; then
        echo "not ok - $name: ended without a summary (exit $status)"
        failed=$((failed + 1))
        return
    fi
    local p f
    p="${summary%% passed*}"
    f="${summary#*passed, }"
    f="${f%% failed}"
    passed=$((passed + p))
    failed=$((failed + f))
    if [[ $status -ne 0 && $f -eq 0 ]]; then
        echo "not ok - $name: exit $status"
        failed=$((failed + 1))
    fi
}

# A stuck client must not hang CI: each gets ten minutes.
run_client "Python SDK (mcp 2.3.0)" timeout 600 "$venv/bin/python" "$clients/py_client.py"
# The same SDK's Streamable HTTP client against `--listen 127.0.0.1:0` (the port from
# listen.json in the state directory).
run_client "Python SDK over Streamable HTTP (mcp 2.3.0)" timeout 600 "$venv/bin/python" "$clients/py_http_client.py"
run_client "TypeScript SDK (@modelcontextprotocol/sdk 1.32.2)" timeout 600 node "$clients/ts_client.mjs"

# Prints `ok`/`not ok` and a closing count, like the client scripts.
inspector_strict() {
    local work problems status=0
    work="$(mktemp -d)"
    mkdir -p "$work/cwd"
    (cd "$clients" && HOME="$work" timeout 300 npx --no-install mcp-inspector --cli --method tools/list \
        --strict -e "CLAUDE_CODED_CLAUDE_BIN=$CLAUDE_DOUBLE_BIN" \
        -e "CLAUDE_CODED_STATE_DIR=$work/state" "$CLAUDE_CODED_BIN" --cwd "$work/cwd") \
        >"$work/tools.json" 2>"$work/stderr" || status=$?
    problems="$(grep -cE '^(Warning|Error):' "$work/stderr" || true)"
    if [[ $status -eq 0 && $problems -eq 0 ]] && grep -q '"name": "ask"' "$work/tools.json"; then
        echo "ok - tools/list --strict: no portability error or warning"
        echo "1 passed, 0 failed"
    else
        cat "$work/stderr"
        echo "not ok - tools/list --strict: exit $status, $problems problems"
        echo "0 passed, 1 failed"
    fi
    rm -rf "$work"
}

run_client "MCP Inspector 2.12.0 --strict" inspector_strict

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
