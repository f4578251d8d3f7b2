#!/usr/bin/env bash
# Drives claude-coded's MCP surface from MCP clients nobody here wrote: the official
# Python SDK (PyPI `mcp`, pinned in tests/clients/requirements.txt, in a venv under
# .cache/; on stdio and over Streamable HTTP with --listen) and the official TypeScript SDK
# (npm `@modelcontextprotocol/sdk`, pinned by tests/clients/package-lock.json), and its ACP
# surface from the official ACP SDK (npm `@agentclientprotocol/sdk`, pinned the same way), against
# freshly built binaries: with the CLI double as the child, and with the real pinned CLI as
# the child (offline, on the mock Messages API run as a process of its own) for the
# permission questions; then MCP Inspector's `--strict` check of the tool schemas (pinned
# the same way), which
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

echo "== the real CLI, claude-coded, claude-double and mock-api"
# CLAUDE_BIN first: it is part of the build (build.rs turns the real-CLI tests on).
CLAUDE_BIN="${CLAUDE_BIN:-$(scripts/install-claude-cli.sh)}"
export CLAUDE_BIN
export CLAUDE_REAL_BIN="$CLAUDE_BIN"
# The binaries of the workspace's test build, which scripts/test.sh has just made (then
# this is a no-op): a plain `cargo build` resolves other features and would compile the
# whole dependency tree a second time. The double is built as the tests build it
# (crates/test-support/src/bins.rs), so the two share what they compiled.
cargo test --workspace --no-run --quiet
cargo build --quiet -p claude-double --bin claude-double
export CLAUDE_CODED_BIN="$target/debug/claude-coded"
export CLAUDE_DOUBLE_BIN="$target/debug/claude-double"

echo "== the mock Messages API"
# The mock stops when its stdin closes: this script holds the coprocess's pipe, so the
# mock ends with the script however the script ends.
coproc MOCK_API { "$target/debug/mock-api"; }
if ! read -r -t 30 -u "${MOCK_API[0]}" MOCK_API_URL; then
    echo "not ok - the mock Messages API did not start"
    exit 1
fi
export MOCK_API_URL
echo "mock Messages API at $MOCK_API_URL"

echo "== installing the Python SDK (venv: ${venv#"$root"/})"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$clients/requirements.txt"

echo "== installing the TypeScript SDKs (MCP, ACP) and MCP Inspector (npm install from the lock file)"
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
# The ACP surface (`serve --surface acp`) from the official ACP SDK, on the real CLI. A
# claude-coded without that surface is one clean `not ok` (the script checks `serve --help`).
run_client "ACP: official SDK (@agentclientprotocol/sdk 2.4.0)" timeout 600 node "$clients/acp_client.mjs"
# And from acpx, a headless ACP client as orchestrators run one (`acpx --agent ... exec`).
run_client "ACP: acpx 0.19.1" timeout 300 node "$clients/acpx_check.mjs"

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

# The official conformance suite's server scenarios, straight against `--listen` (no
# stdio gateway in between). Only those that hold for any server: the others call the
# suite's own reference tools, resources and prompts, which claude-coded does not have.
conformance_scenarios=(server-initialize ping logging-set-level tools-list
    dns-rebinding-protection server-sse-polling server-sse-multiple-streams)

# Prints `ok`/`not ok` per scenario and a closing count, like the client scripts.
conformance() {
    local dir="$clients/conformance" work bridge url p f status
    work="$(mktemp -d)"
    mkdir -p "$work/cwd"
    # `serve --background` (what `claude-coded start` runs): no stdio, ended by SIGTERM.
    # The suite sends no token: --listen-no-token (tests/suite/http_listen.rs tests the token).
    HOME="$work" RUST_LOG=warn "$CLAUDE_CODED_BIN" serve --background --claude-bin "$CLAUDE_DOUBLE_BIN" \
        --state-dir "$work/state" --cwd "$work/cwd" --listen 127.0.0.1:0 --listen-no-token true &
    bridge=$!
    for _ in $(seq 100); do
        [[ -s "$work/state/listen.json" ]] && break
        sleep 0.1
    done
    url="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mcp"])' "$work/state/listen.json")"
    p=0
    f=0
    for scenario in "${conformance_scenarios[@]}"; do
        status=0
        timeout 120 "$dir/node_modules/node/bin/node" \
            "$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js" \
            server --url "$url" --scenario "$scenario" >"$work/out" 2>&1 || status=$?
        if [[ $status -eq 0 ]] && grep -qE '^Passed: [0-9]+/[0-9]+, 0 failed' "$work/out"; then
            echo "ok - conformance: $scenario ($(grep -E '^Passed:' "$work/out"))"
            p=$((p + 1))
        else
            cat "$work/out"
            echo "not ok - conformance: $scenario (exit $status)"
            f=$((f + 1))
        fi
    done
    kill "$bridge" 2>/dev/null || true
    wait "$bridge" 2>/dev/null || true
    rm -rf "$work"
    echo "$p passed, $f failed"
}

echo "== installing the MCP conformance suite (npm install from its lock file)"
(cd "$clients/conformance" && npm install --no-save --no-audit --no-fund --loglevel=error)
run_client "MCP conformance 0.1.16, server scenarios over --listen" conformance

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
