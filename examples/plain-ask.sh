#!/usr/bin/env bash
# Asks claude-coded one question over the plain JSON-RPC surface (no MCP handshake) and
# prints what streams back: one line per child message, then the answer.
#
#   examples/plain-ask.sh "What does this repository do?" [project-dir]
#
# Needs claude-coded on PATH (or CLAUDE_CODED=/path/to/claude-coded) and jq.
set -euo pipefail

prompt="${1:?usage: plain-ask.sh PROMPT [PROJECT_DIR]}"
project="${2:-$PWD}"
bridge="${CLAUDE_CODED:-claude-coded}"

request="$(jq -cn --arg prompt "$prompt" '{jsonrpc: "2.0", id: 1, method: "ask", params: {prompt: $prompt}}')"

# stdin closes after the request; claude-coded answers it, then exits. The script exits 1
# when the answer is an error or a failed turn (jq's halt_error), so a caller can branch.
echo "$request" | "$bridge" --surface plain --cwd "$project" 2>/dev/null | jq -r '
  if .method == "ask/event" then
    "[\(.params.seq)] \(.params.type)\(if .params.subtype then "/" + .params.subtype else "" end)"
  elif .error then
    ("error \(.error.code): \(.error.message)\n" | halt_error(1))
  elif .result.ok then
    "---\n\(.result.result // "(no reply)")\n--- ok=true cost=$\(.result.costUsd) session=\(.result.sessionId)"
  else
    ("--- the turn failed: \(.result.errors // [] | join("; ")) \(.result.result // "")\n" | halt_error(1))
  end'
