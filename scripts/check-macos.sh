#!/usr/bin/env bash
# Cross-checks the crate for macOS without a Mac and without rustup downloads:
# `cargo check` and `cargo clippy --all-targets -- -D warnings` for aarch64-apple-darwin
# and x86_64-apple-darwin, with Debian's Rust toolchain (rustc-web, cargo-web,
# rust-web-clippy) building std for the target from rust-web-src (-Zbuild-std, allowed on
# a stable compiler by RUSTC_BOOTSTRAP=1). Only checks: nothing is linked, so no macOS SDK.
#
# Usage: scripts/check-macos.sh [TARGET...]   (default: both targets)
# The std build (about 2-4 minutes a target on 2 cores, run with nice) is kept in
# target/macos (CARGO_TARGET_DIR_MACOS), so later runs only check the crate.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(aarch64-apple-darwin x86_64-apple-darwin)
fi

# Debian's packages: the toolchain in /usr/bin, std's sources in /usr/lib/rustlib/src.
if ! [ -x /usr/bin/rustc ] || ! [ -x /usr/bin/cargo-clippy ] \
    || ! [ -f /usr/lib/rustlib/src/rust/library/Cargo.lock ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "check-macos: needs Debian's rustc-web cargo-web rust-web-src rust-web-clippy; install them as root (apt-get install -y ...)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        rustc-web cargo-web rust-web-src rust-web-clippy >/dev/null
fi

export CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_MACOS:-$PWD/target/macos}"
# cargo-clippy is run directly: `cargo clippy` looks in $CARGO_HOME/bin first, where
# rustup's proxy would pick rustup's toolchain (which has no std sources to build).
build_std=-Zbuild-std=std,panic_abort
echo "check-macos: $(/usr/bin/rustc --version)" >&2
for target in "${targets[@]}"; do
    echo "check-macos: cargo check --target $target" >&2
    nice /usr/bin/cargo check --quiet "$build_std" --target "$target"
    echo "check-macos: cargo clippy --all-targets --target $target" >&2
    nice /usr/bin/cargo-clippy clippy --quiet "$build_std" --target "$target" \
        --all-targets -- -D warnings
done
echo "check-macos: ${targets[*]} pass" >&2
