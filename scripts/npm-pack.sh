#!/usr/bin/env bash
# Builds the npm tarballs for this platform: `claude-coded` (the launcher) and
# `@claude-coded/<os>-<cpu>` (the native binary), into OUT_DIR.
#
# Usage: scripts/npm-pack.sh OUT_DIR
#   CLAUDE_CODED_BIN  the binary to ship (default: target/release/claude-coded, built
#                     with `cargo build --release --locked` when missing)
#   NPM_OS, NPM_CPU   the platform to pack it as (default: this machine's), for a release
#                     job that packs a binary built for another target
# The release workflow runs it once per platform and publishes the platform packages
# before the launcher, whose optionalDependencies name them at the same version.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:?usage: scripts/npm-pack.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

case "${NPM_OS:-$(uname -s)}" in
    Linux | linux) os=linux ;;
    Darwin | darwin) os=darwin ;;
    *) echo "npm-pack: no npm package for $(uname -s); the packages are linux and darwin" >&2; exit 1 ;;
esac
case "${NPM_CPU:-$(uname -m)}" in
    x86_64 | amd64 | x64) cpu=x64 ;;
    aarch64 | arm64) cpu=arm64 ;;
    *) echo "npm-pack: no npm package for $(uname -m); the packages are x64 and arm64" >&2; exit 1 ;;
esac

bin="${CLAUDE_CODED_BIN:-}"
if [ -z "$bin" ]; then
    bin="${CARGO_TARGET_DIR:-target}/release/claude-coded"
    [ -x "$bin" ] || nice cargo build --release --locked --bin claude-coded >&2
fi
[ -x "$bin" ] || { echo "npm-pack: $bin is not an executable" >&2; exit 1; }

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
reported="$("$bin" --version)"
case "$reported" in
    *" $version") ;;
    *) echo "npm-pack: $bin says '$reported', but Cargo.toml is at $version" >&2; exit 1 ;;
esac

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

# The platform's package: the binary, with os/cpu so that npm installs it only there.
platform="$stage/platform"
mkdir -p "$platform/bin"
install -m 0755 "$bin" "$platform/bin/claude-coded"
cp npm/README.md LICENSE "$platform/"
cat > "$platform/package.json" <<JSON
{
  "name": "@claude-coded/$os-$cpu",
  "version": "$version",
  "description": "The claude-coded binary for $os $cpu (installed by the claude-coded package)",
  "license": "MIT",
  "repository": {
    "type": "git",
    "url": "git+https://github.com/claude-coded/claude-coded.git"
  },
  "os": ["$os"],
  "cpu": ["$cpu"],
  "files": ["bin/claude-coded", "README.md", "LICENSE"],
  "publishConfig": { "access": "public" }
}
JSON

# The launcher's package, at the same version as the platform packages it depends on.
launcher="$stage/launcher"
cp -R npm/claude-coded "$launcher"
cp npm/README.md LICENSE "$launcher/"
node -e '
  const fs = require("fs");
  const [file, version] = process.argv.slice(1);
  const manifest = JSON.parse(fs.readFileSync(file, "utf8"));
  manifest.version = version;
  for (const name of Object.keys(manifest.optionalDependencies)) {
    manifest.optionalDependencies[name] = version;
  }
  fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + "\n");
' "$launcher/package.json" "$version"

(cd "$platform" && npm pack --silent --pack-destination "$out" >/dev/null)
(cd "$launcher" && npm pack --silent --pack-destination "$out" >/dev/null)
ls "$out/claude-coded-$version.tgz" "$out/claude-coded-$os-$cpu-$version.tgz"
