#!/usr/bin/env bash
# Install the pinned Codex CLI and Gemini CLI (the MCP hosts of tests/suite/e2e_other_hosts)
# into a cache folder and print two lines on stdout, `CODEX_BIN=<path>` and
# `GEMINI_BIN=<path>` (everything else goes to stderr), so callers can do:
#   eval "$(scripts/install-host-clis.sh)"; export CODEX_BIN GEMINI_BIN
#
# Cache folder: $CLAUDE_CODED_CACHE/host-clis, else <repo>/.cache/host-clis.
# Idempotent: an install whose binaries report the pinned versions is reused without
# touching the network.
#
# Codex is a native binary in an optional platform package (the `@openai/codex` package
# only holds a Node launcher); Gemini CLI is a Node program (Node >= 20), started here
# through a small wrapper script so the tests can run it as one executable.
set -euo pipefail

CODEX_VERSION="0.169.0"
GEMINI_VERSION="0.61.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${CLAUDE_CODED_CACHE:+$CLAUDE_CODED_CACHE/host-clis}"
cache="${cache:-$repo_root/.cache/host-clis}"

log() { printf 'install-host-clis: %s\n' "$*" >&2; }

# The native Codex binary of this platform, whatever folder layout npm chose.
find_codex() {
    local c out
    for c in "$cache"/node_modules/@openai/codex-linux-*/vendor/*/bin/codex \
        "$cache"/node_modules/@openai/codex/node_modules/@openai/codex-linux-*/vendor/*/bin/codex; do
        [ -x "$c" ] || continue
        out="$(timeout 60 "$c" --version 2>/dev/null </dev/null || true)"
        case "$out" in
            *"$CODEX_VERSION"*) printf '%s\n' "$c"; return 0 ;;
        esac
    done
    return 1
}

# A wrapper that runs Gemini CLI's entry point with this machine's node.
find_gemini() {
    local wrapper="$cache/bin/gemini" entry="$cache/node_modules/@google/gemini-cli/bundle/gemini.js" out
    [ -f "$entry" ] || return 1
    mkdir -p "$cache/bin"
    printf '#!/bin/sh\nexec "%s" --no-warnings=DEP0040 "%s" "$@"\n' "$(command -v node)" "$entry" >"$wrapper"
    chmod 755 "$wrapper"
    out="$(timeout 60 "$wrapper" --version 2>/dev/null </dev/null || true)"
    case "$out" in
        *"$GEMINI_VERSION"*) printf '%s\n' "$wrapper"; return 0 ;;
    esac
    return 1
}

found() {
    codex="$(find_codex)" && gemini="$(find_gemini)"
}

if ! found; then
    command -v npm >/dev/null 2>&1 || { log "npm not found; install Node.js (>= 20) first"; exit 1; }
    mkdir -p "$cache"
    # A package.json of our own keeps npm from walking up into the repo.
    [ -f "$cache/package.json" ] || printf '{ "name": "host-clis-cache", "private": true }\n' >"$cache/package.json"
    log "installing @openai/codex@$CODEX_VERSION and @google/gemini-cli@$GEMINI_VERSION into $cache"
    (
        cd "$cache"
        npm install --no-audit --no-fund --save-exact --include=optional --loglevel=error \
            "@openai/codex@$CODEX_VERSION" "@google/gemini-cli@$GEMINI_VERSION" 1>&2
    )
    if ! found; then
        log "no working codex $CODEX_VERSION or gemini $GEMINI_VERSION under $cache/node_modules"
        exit 1
    fi
fi

log "codex $CODEX_VERSION: $codex"
log "gemini $GEMINI_VERSION: $gemini"
printf 'CODEX_BIN=%s\nGEMINI_BIN=%s\n' "$codex" "$gemini"
