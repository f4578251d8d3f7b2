"""Drives claude-coded's MCP surface over Streamable HTTP (`--listen`) from the official
Python SDK's client transport (`mcp.client.streamable_http`, pinned in requirements.txt),
with the CLI double as the bridge's child. Run by scripts/test-mcp-clients.sh:

    CLAUDE_CODED_BIN=... CLAUDE_DOUBLE_BIN=... python tests/clients/py_http_client.py

claude-coded listens on 127.0.0.1 port 0 and writes the port it got to listen.json in
its state directory, where this finds it. Prints one line per check and a closing
`N passed, M failed`; exits non-zero on failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import anyio
from checks import TIMEOUT, Checks, expect, first_text
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

BRIDGE = os.environ.get("CLAUDE_CODED_BIN")
DOUBLE = os.environ.get("CLAUDE_DOUBLE_BIN")

CHECKS = Checks("py-http")
check = CHECKS.check


def start_bridge(home: Path) -> tuple[subprocess.Popen, str]:
    """claude-coded serving stdio (kept open) and HTTP; returns it and its /mcp URL."""
    cwd = home / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    state = home / "state"
    bridge = subprocess.Popen(
        [BRIDGE, "--claude-bin", DOUBLE, "--state-dir", str(state), "--cwd", str(cwd),
         "--surface", "plain", "--listen", "127.0.0.1:0",
         # Protocol checks, not authentication (tests/suite/http_listen.rs tests the token).
         "--listen-no-token", "true"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env={"RUST_LOG": "warn", "HOME": str(home), "PATH": os.environ.get("PATH", "")},
    )
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            return bridge, json.loads((state / "listen.json").read_text())["mcp"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.02)
    bridge.kill()
    raise RuntimeError("claude-coded wrote no listen.json")


async def session_checks(url: str) -> None:
    """The handshake-era flow: ClientSession over streamable_http_client."""
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:

        async def initialize() -> None:
            result = await session.initialize()
            expect(result.protocol_version == "2025-11-25", result.protocol_version)
            expect(result.server_info.name == "claude-coded")
            expect(result.capabilities.tools is not None)

        async def list_tools() -> None:
            tools = (await session.list_tools()).tools
            expect(sorted(t.name for t in tools) == ["ask", "cancel", "events", "sessions", "status", "wait"], tools)

        async def ask_with_progress() -> None:
            progress: list[str | None] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(message)

            result = await session.call_tool("ask", {"prompt": "RUN_TOOL ls"}, progress_callback=on_progress)
            expect(not result.is_error, result)
            expect(result.structured_content["ok"] is True)
            expect("tool use: Bash" in progress, progress)
            expect(progress[-1] == "result: success", progress)

        async def status() -> None:
            result = await session.call_tool("status", {"full": True})
            expect(not result.is_error)
            expect(result.structured_content["full"]["daemon"]["listen"].startswith("http://127.0.0.1:"), result)

        for name, body in [
            ("initialize over Streamable HTTP", initialize),
            ("tools/list", list_tools),
            ("call ask with progress over SSE", ask_with_progress),
            ("call status: it says where it listens", status),
        ]:
            await check(name, body)


async def modern_checks(url: str) -> None:
    """`mcp.Client` with a URL, in auto mode: server/discover and 2026-07-28 over HTTP."""

    async def discover_and_ask() -> None:
        async with Client(url, mode="auto") as client:
            expect(client.protocol_version == "2026-07-28", client.protocol_version)
            result = await client.call_tool("ask", {"prompt": "modern"})
            expect(not result.is_error, result)
            expect(first_text(result).endswith("to: modern"), first_text(result))

    await check("2026-07-28 via server/discover over HTTP (auto mode)", discover_and_ask)


async def main() -> int:
    if not BRIDGE or not DOUBLE:
        print("CLAUDE_CODED_BIN and CLAUDE_DOUBLE_BIN must be set", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cc-py-http-") as home:
        bridge, url = start_bridge(Path(home))
        try:
            await session_checks(url)
            await modern_checks(url)
        finally:
            bridge.stdin.close()
            try:
                bridge.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                bridge.kill()
                CHECKS.fail("exit", "claude-coded did not exit after stdin closed")
    return CHECKS.finish()


if __name__ == "__main__":
    sys.exit(anyio.run(main))
