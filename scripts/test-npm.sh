#!/usr/bin/env bash
# The npm packages as a user installs them: packs this platform's tarballs
# (scripts/npm-pack.sh), installs them with `npm install -g` into a fresh prefix, offline,
# and runs the installed command: `--version`, and an MCP `initialize` over stdio. Then
# the launcher's messages when the platform's package is missing or no package fits.
#
# CLAUDE_CODED_BIN: the binary to pack (default: the debug build, which the tests built;
# the release workflow packs the release one).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
export CLAUDE_CODED_BIN="${CLAUDE_CODED_BIN:-$target/debug/claude-coded}"
[ -x "$CLAUDE_CODED_BIN" ] || cargo build --locked --bin claude-coded
double="$target/debug/claude-double"
[ -x "$double" ] || cargo build --locked -p claude-double
double="$(cd "$(dirname "$double")" && pwd)/claude-double"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "test-npm: FAIL: $*" >&2; exit 1; }
# `timeout` is not on macOS; perl is.
with_timeout() { perl -e 'alarm shift; exec @ARGV or die "$ARGV[0]: $!"' "$@"; }

scripts/npm-pack.sh "$work/tarballs" >/dev/null
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
launcher="$work/tarballs/claude-coded-$version.tgz"
native=("$work"/tarballs/claude-coded-*-*-"$version".tgz)

# A fresh prefix and cache: nothing from the registry, nothing installed before.
install() {
    npm install -g --prefix "$1" --cache "$work/cache" --offline --no-audit --no-fund \
        --loglevel=error "${@:2}" >/dev/null
}
install "$work/prefix" "${native[@]}" "$launcher"
command="$work/prefix/bin/claude-coded"

[ "$("$command" --version)" = "claude-coded $version" ] || fail "--version: $("$command" --version)"

# MCP initialize through the installed command; stdin's end then stops it.
initialize='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test-npm","version":"1"}}}'
mkdir -p "$work/project"
reply="$(printf '%s\n' "$initialize" | with_timeout 30 "$command" --claude-bin "$double" \
    --state-dir "$work/state" --cwd "$work/project")" || fail "the installed command exited $?"
# shellcheck disable=SC2016 # JavaScript, not shell
node -e '
  const reply = JSON.parse(process.argv[1]);
  if (reply.id !== 1 || reply.result?.serverInfo?.name !== "claude-coded") {
    console.error(`not an initialize result: ${process.argv[1]}`);
    process.exit(1);
  }
' "$reply" || fail "MCP initialize"

# The launcher alone (npm left the optional dependency out): it says which package is
# missing and what to do.
install "$work/bare" "$launcher"
if message="$("$work/bare/bin/claude-coded" --version 2>&1)"; then
    fail "ran without its platform package: $message"
fi
case "$message" in
    *"@claude-coded/"*"is not installed"*"cargo install --locked claude-coded"*) ;;
    *) fail "missing package message: $message" ;;
esac

# A platform with no package (here: this one, reported as another CPU).
echo 'Object.defineProperty(process, "arch", { value: "s390x" });' >"$work/s390x.js"
if message="$(node --require "$work/s390x.js" "$work/prefix/lib/node_modules/claude-coded/bin/claude-coded.js" 2>&1)"; then
    fail "ran on an unsupported platform: $message"
fi
case "$message" in
    *"no build for "*"-s390x"*"linux-x64"*) ;;
    *) fail "unsupported platform message: $message" ;;
esac

echo "test-npm: the packages install offline into a fresh prefix; --version, MCP initialize and the launcher's messages pass" >&2
