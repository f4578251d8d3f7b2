#!/usr/bin/env bash
# Drives claude-coded's MCP surface from MCP clients nobody here wrote: the official
# Python SDK (PyPI `mcp`, pinned in tests/clients/requirements.txt, in a venv under
# .cache/) and the official TypeScript SDK (npm `@modelcontextprotocol/sdk`, pinned by
# tests/clients/package-lock.json), against freshly built binaries with the CLI double.
#
# Prints each check, then a closing `N passed, M failed`; exits non-zero on any failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
clients="$root/tests/clients"
venv="$root/.cache/mcp-clients-venv"
target="${CARGO_TARGET_DIR:-$root/target}"

echo "== building claude-coded and claude-double"
cargo build --quiet --bin claude-coded --bin claude-double
export CLAUDE_CODED_BIN="$target/debug/claude-coded"
export CLAUDE_DOUBLE_BIN="$target/debug/claude-double"

echo "== installing the Python SDK (venv: ${venv#"$root"/})"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$clients/requirements.txt"

echo "== installing the TypeScript SDK (npm ci)"
(cd "$clients" && npm ci --no-audit --no-fund --loglevel=error)

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

run_client "Python SDK (mcp 2.3.0)" "$venv/bin/python" "$clients/py_client.py"
run_client "TypeScript SDK (@modelcontextprotocol/sdk 1.32.2)" node "$clients/ts_client.mjs"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
