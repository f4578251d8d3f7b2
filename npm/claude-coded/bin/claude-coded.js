#!/usr/bin/env node
// The `claude-coded` command of the npm package: runs the native binary that npm
// installed with the platform's package (@claude-coded/<os>-<cpu>, an optional
// dependency whose `os` and `cpu` fields make npm pick the one that fits), passing the
// arguments, stdin/stdout/stderr and the exit status through unchanged.
"use strict";

const { spawn } = require("node:child_process");

const PACKAGES = {
  "darwin-arm64": "@claude-coded/darwin-arm64",
  "darwin-x64": "@claude-coded/darwin-x64",
  "linux-arm64": "@claude-coded/linux-arm64",
  "linux-x64": "@claude-coded/linux-x64",
};

function fail(message) {
  process.stderr.write(`claude-coded: ${message}\n`);
  process.exit(1);
}

const platform = `${process.platform}-${process.arch}`;
const name = PACKAGES[platform];
if (!name) {
  fail(
    `no build for ${platform} (there are builds for ${Object.keys(PACKAGES).join(", ")}); ` +
      "build it from source with `cargo install --locked claude-coded`",
  );
}

let binary;
try {
  binary = require.resolve(`${name}/bin/claude-coded`);
} catch {
  fail(
    `${name}, which holds the binary for ${platform}, is not installed (npm leaves ` +
      "optional dependencies out with --omit=optional or --no-optional); reinstall " +
      "claude-coded without that flag, or use `cargo install --locked claude-coded`",
  );
}

// stdio is the child's own (an MCP host's pipes reach claude-coded directly), so when
// the host closes stdin claude-coded sees it; the signals a host sends us go on to it.
const child = spawn(binary, process.argv.slice(2), { stdio: "inherit" });
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("error", (err) => fail(`cannot run ${binary}: ${err.message}`));
child.on("exit", (code, signal) => {
  if (signal) {
    // Exit the way it did: the same signal, its default action restored.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
