#!/usr/bin/env bash
# Measures ACP agents from the same client (tests/clients/acp_measure.mjs, on the official
# ACP SDK), all on the real pinned CLI, offline, against one mock Messages API:
#   (a) claude-agent-acp      Zed's adapter (npm, pinned in benches/acp-adapter/package-lock.json),
#                             pointed at our CLI with CLAUDE_CODE_EXECUTABLE;
#   (b) claude-coded          `serve --surface acp`;
#   (c) claude-coded spare    the same with `--spare-sessions 1`.
# Each run has a fresh HOME and project directory; the agents take turns, in a rotated
# order, for BENCH_ROUNDS rounds (default 3), each run opening BENCH_SESSIONS sessions
# (default 3), BENCH_GAP_MS apart (default 0: back to back; a gap lets a spare warm up, as
# the pause between a user's threads does). Prints a table of medians and the ratios to
# claude-agent-acp; the raw JSON of every run stays in BENCH_OUT (default: a temporary
# directory, printed). BENCH_PROFILE=release measures a release build of claude-coded;
# BENCH_NO_BUILD=1 skips the cargo builds.
#
# An agent that cannot run here (claude-coded without an ACP surface) is reported as
# "not available"; a run that fails is counted and its error shown, and the others go on.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
clients="$root/tests/clients"
target="${CARGO_TARGET_DIR:-$root/target}"
rounds="${BENCH_ROUNDS:-3}"
sessions="${BENCH_SESSIONS:-3}"
gap="${BENCH_GAP_MS:-0}"
out="${BENCH_OUT:-$(mktemp -d -t bench-acp-XXXXXX)}"
mkdir -p "$out"

echo "== the real CLI, claude-coded and mock-api"
CLAUDE_BIN="${CLAUDE_BIN:-$(scripts/install-claude-cli.sh)}"
export CLAUDE_BIN
# BENCH_PROFILE=release measures an optimized claude-coded (its own RSS, and its per-CLI
# helper's, are a debug build's otherwise); the mock is the debug one either way.
profile="${BENCH_PROFILE:-debug}"
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    cargo build --quiet -p mock-api --bin mock-api
    if [[ "$profile" == release ]]; then
        cargo build --quiet --release --bin claude-coded
    else
        cargo build --quiet --bin claude-coded
    fi
fi
coded="$target/$profile/claude-coded"

echo "== the ACP SDK and claude-agent-acp (npm install from the lock file)"
(cd "$clients" && npm install --no-save --no-audit --no-fund --loglevel=error)
adapter="$root/benches/acp-adapter"
(cd "$adapter" && npm install --no-save --no-audit --no-fund --loglevel=error)
acp_agent="$adapter/node_modules/@agentclientprotocol/claude-agent-acp/dist/index.js"

echo "== the mock Messages API"
# The mock stops when its stdin closes: this script holds the coprocess's pipe.
coproc MOCK_API { "$target/debug/mock-api"; }
if ! read -r -t 30 -u "${MOCK_API[0]}" MOCK_API_URL; then
    echo "the mock Messages API did not start" >&2
    exit 1
fi
echo "mock Messages API at $MOCK_API_URL"

agents=(claude-agent-acp claude-coded claude-coded-spare)
declare -A available
available[claude-agent-acp]=yes
help="$("$coded" serve --help 2>/dev/null || true)"
if grep -qE '^ +- acp: ' <<<"$help"; then
    available[claude-coded]=yes
    if grep -q -- '--spare-sessions' <<<"$help"; then
        available[claude-coded-spare]=yes
    else
        available[claude-coded-spare]="not available: this claude-coded has no --spare-sessions"
    fi
else
    available[claude-coded]="not available: this claude-coded has no ACP surface (serve --surface acp)"
    available[claude-coded-spare]="${available[claude-coded]}"
fi

# One run of one agent: a fresh HOME and project, the offline environment, one JSON file.
run_agent() {
    local agent="$1" round="$2" home proj status=0
    home="$(mktemp -d -t bench-acp-home-XXXXXX)"
    proj="$home/project"
    mkdir -p "$proj" "$home/tmp"
    local -a cmd
    case "$agent" in
    claude-agent-acp) cmd=(node "$acp_agent") ;;
    claude-coded) cmd=("$coded" serve --surface acp --claude-bin "$CLAUDE_BIN" --cwd "$proj" --state-dir "$home/state") ;;
    claude-coded-spare) cmd=("$coded" serve --surface acp --claude-bin "$CLAUDE_BIN" --cwd "$proj" --state-dir "$home/state" --spare-sessions 1) ;;
    esac
    # IS_SANDBOX=1: as root the CLI refuses --dangerously-skip-permissions, which
    # claude-agent-acp passes when it may offer bypassPermissions (it reads any non-empty
    # IS_SANDBOX as yes; the CLI wants 1).
    env -i PATH="$PATH" HOME="$home" TMPDIR="$home/tmp" IS_SANDBOX=1 \
        ANTHROPIC_BASE_URL="$MOCK_API_URL" ANTHROPIC_API_KEY=test-key DISABLE_TELEMETRY=1 \
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 \
        CLAUDE_CODE_EXECUTABLE="$CLAUDE_BIN" RUST_LOG=warn \
        ACP_AGENT_STDERR="$out/$agent-$round.stderr" \
        timeout 600 node "$clients/acp_measure.mjs" --label "$agent" --cwd "$proj" \
        --sessions "$sessions" --gap-ms "$gap" -- "${cmd[@]}" >"$out/$agent-$round.json" || status=$?
    rm -rf "$home"
    if [[ $status -ne 0 ]]; then
        echo "   $agent round $round failed (exit $status): see $out/$agent-$round.json and .stderr"
    fi
}

for round in $(seq "$rounds"); do
    # Rotate the order so no agent is always first (or last) on a warm page cache.
    n=${#agents[@]}
    for i in $(seq 0 $((n - 1))); do
        agent="${agents[$(((i + round - 1) % n))]}"
        if [[ "${available[$agent]}" != yes ]]; then
            continue
        fi
        echo "== round $round: $agent"
        run_agent "$agent" "$round"
    done
done

avail_json="{"
for agent in "${agents[@]}"; do
    avail_json+="\"$agent\": \"${available[$agent]}\","
done
avail_json="${avail_json%,}}"

python3 - "$out" "$rounds" "$sessions" "$avail_json" "$gap" "$profile" <<'EOF'
import json, os, statistics, sys

out, rounds, sessions, available, gap, profile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5], sys.argv[6]
agents = ["claude-agent-acp", "claude-coded", "claude-coded-spare"]

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

rows = {}
for agent in agents:
    runs, errors = [], []
    for r in range(1, rounds + 1):
        p = os.path.join(out, f"{agent}-{r}.json")
        if not os.path.exists(p):
            continue
        try:
            o = json.load(open(p))
        except Exception as e:  # an empty or cut file
            errors.append(f"round {r}: no JSON ({e})")
            continue
        if "error" in o:
            errors.append(f"round {r}: {o['error'].splitlines()[0]}")
            continue
        runs.append(o)
    new_all = [s["newAnsweredMs"] for o in runs for s in o["sessionRuns"]]
    rows[agent] = {
        "runs": len(runs),
        "errors": errors,
        "init": med([o["initialize"]["spawnToAnswerMs"] for o in runs]),
        "new1": med([o["sessionRuns"][0]["newAnsweredMs"] for o in runs]),
        "new": med(new_all),
        "chunk": med([s["firstChunkMs"] for o in runs for s in o["sessionRuns"]]),
        "answer": med([s["promptAnsweredMs"] for o in runs for s in o["sessionRuns"]]),
        "warm": med([o["warmPrompt"]["answeredMs"] for o in runs]),
        "rss": med([o["rssPerSessionMb"] for o in runs]),
        "rssinc": med([o["rssIncreasePerSessionMb"] for o in runs]),
        "kinds": runs[0]["firstTurn"]["kindsFolded"] if runs else None,
        "stop": runs[0]["firstTurn"]["stopReason"] if runs else None,
    }

cols = [
    ("init", "spawn->init ms"),
    ("new1", "new#1 ms"),
    ("new", "new ms"),
    ("chunk", "new->chunk ms"),
    ("answer", "new->answer ms"),
    ("warm", "warm prompt ms"),
    ("rss", "RSS/session MB"),
    ("rssinc", "+RSS/session MB"),
]
base = rows["claude-agent-acp"]
print()
print(f"ACP agents, medians over {rounds} rounds x {sessions} sessions {gap} ms apart (the real CLI, mock Messages API, claude-coded {profile} build);")
print("new = session/new answered; chunk/answer = first agent_message_chunk / session/prompt answered, from the")
print("session/new request; warm = a second prompt in the first session; RSS = the agent's process tree after")
print(f"the {sessions} sessions, divided by {sessions} (+RSS: minus the tree after initialize). (x) = ratio to claude-agent-acp.")
print()
w = 18
print(f"{'agent':<20}{'runs':>5}" + "".join(f"{h:>{w}}" for _, h in cols))
for agent in agents:
    row = rows[agent]
    if available.get(agent) != "yes":
        print(f"{agent:<20}  {available.get(agent)}")
        continue
    cells = []
    for key, _ in cols:
        v = row[key]
        if v is None:
            cells.append(f"{'-':>{w}}")
            continue
        cell = f"{v:.0f}"
        if agent != "claude-agent-acp" and base[key]:
            cell += f" ({v / base[key]:.2f}x)"
        cells.append(f"{cell:>{w}}")
    print(f"{agent:<20}{row['runs']:>5}" + "".join(cells))
print()
for agent in agents:
    row = rows[agent]
    if row["kinds"] is not None:
        print(f"{agent}: first turn's updates: {', '.join(row['kinds'])}; stopReason {row['stop']}")
    for e in row["errors"]:
        print(f"{agent}: failed run, {e}")
print(f"\nraw runs: {out}")
EOF
