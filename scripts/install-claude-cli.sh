#!/usr/bin/env bash
# Install the pinned Claude Code CLI into a cache folder and print the absolute
# path of its `claude` binary on stdout (that single line only; everything else
# goes to stderr), so callers can do: CLAUDE_BIN=$(scripts/install-claude-cli.sh)
#
# Cache folder: $CLAUDE_CODED_CACHE, else <repo>/.cache/claude-cli.
# Idempotent: an existing install whose binary reports the pinned version is
# reused without touching the network.
set -euo pipefail

VERSION="2.1.332"
PKG="@anthropic-ai/claude-code"
PLATFORM_PKG="@anthropic-ai/claude-code-linux-x64"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${CLAUDE_CODED_CACHE:-$repo_root/.cache/claude-cli}"

log() { printf 'install-claude-cli: %s\n' "$*" >&2; }

# Candidates in order of preference: the bin placed by the postinstall script,
# then the platform package's binary (what the postinstall would have copied;
# present even with --ignore-scripts).
candidates() {
    printf '%s\n' \
        "$cache/node_modules/.bin/claude" \
        "$cache/node_modules/$PKG/bin/claude.exe" \
        "$cache/node_modules/$PKG/bin/claude" \
        "$cache/node_modules/$PLATFORM_PKG/claude"
}

# Prints the first candidate that is a native executable reporting $VERSION.
find_good_bin() {
    local c real out
    while IFS= read -r c; do
        [ -e "$c" ] || continue
        real="$(readlink -f "$c")"
        [ -f "$real" ] && [ -x "$real" ] || continue
        # The npm wrapper may be a JS shim when postinstall did not run; only
        # accept binaries that answer --version with the pinned version.
        out="$(timeout 60 "$real" --version 2>/dev/null </dev/null || true)"
        case "$out" in
            "$VERSION"*) printf '%s\n' "$real"; return 0 ;;
        esac
    done < <(candidates)
    return 1
}

if bin="$(find_good_bin)"; then
    log "reusing $bin ($VERSION)"
    printf '%s\n' "$bin"
    exit 0
fi

command -v npm >/dev/null 2>&1 || { log "npm not found; install Node.js/npm first"; exit 1; }

mkdir -p "$cache"
# A package.json of our own keeps npm from walking up into the repo.
if [ ! -f "$cache/package.json" ]; then
    printf '{ "name": "claude-cli-cache", "private": true }\n' >"$cache/package.json"
fi

log "installing $PKG@$VERSION into $cache (about 400 MB)"
# --include=optional: the native binary lives in an optional dependency.
# EBADENGINE on Node < 22 is only a warning; the native binary does not need Node.
(
    cd "$cache"
    npm install --no-audit --no-fund --save-exact --include=optional \
        --loglevel=error "$PKG@$VERSION" 1>&2
)

if bin="$(find_good_bin)"; then
    log "installed $bin"
    printf '%s\n' "$bin"
    exit 0
fi

log "no working claude $VERSION binary found under $cache/node_modules"
exit 1
