"""Drives claude-coded's MCP surface from the official Python SDK (PyPI `mcp`, pinned in
requirements.txt), with the CLI double as the bridge's child, and with the real CLI as the
child (offline, on the mock Messages API) for the permission questions. Run by
scripts/test-mcp-clients.sh:

    CLAUDE_CODED_BIN=... CLAUDE_DOUBLE_BIN=... CLAUDE_REAL_BIN=... MOCK_API_URL=... \
        python tests/clients/py_client.py

Prints one line per check and a closing `N passed, M failed`; exits non-zero on failure.
A non-JSON line on the bridge's stdout reaches the session's message handler as an
exception, which fails the run.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import anyio
from checks import Checks, expect, first_text
from mcp import Client, ClientSession, types
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPDeprecationWarning

# The bridge serves MCP logging for handshake-era clients on purpose (SEP-2577 deprecates
# it only from 2026-07-28 on); the SDK's warning about using it is expected here.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

BRIDGE = os.environ.get("CLAUDE_CODED_BIN")
DOUBLE = os.environ.get("CLAUDE_DOUBLE_BIN")
REAL = os.environ.get("CLAUDE_REAL_BIN")
MOCK_API_URL = os.environ.get("MOCK_API_URL")

CHECKS = Checks("py")
check = CHECKS.check
transport_errors: list[BaseException] = []


def server_params(home: Path) -> StdioServerParameters:
    cwd = home / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    return StdioServerParameters(
        command=BRIDGE,
        args=["--claude-bin", DOUBLE, "--state-dir", str(home / "state"), "--cwd", str(cwd)],
        env={"RUST_LOG": "warn", "HOME": str(home)},
    )


def real_cli_params(home: Path) -> StdioServerParameters:
    """claude-coded over the real CLI, kept offline on the mock Messages API."""
    params = server_params(home)
    params.args[1] = REAL
    tmp = home / "tmp"
    tmp.mkdir(exist_ok=True)
    params.env.update({
        "ANTHROPIC_BASE_URL": MOCK_API_URL,
        "ANTHROPIC_API_KEY": "test-key",
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "TMPDIR": str(tmp),
    })
    return params


async def on_message(message: Any) -> None:
    if isinstance(message, Exception):
        transport_errors.append(message)


async def session_checks(session: ClientSession, logs: list[Any]) -> None:
    """The handshake-era flow (ClientSession over stdio_client: initialize at 2025-11-25)."""

    async def initialize() -> None:
        result = await session.initialize()
        expect(result.protocol_version == "2025-11-25", result.protocol_version)
        expect(result.server_info.name == "claude-coded")
        expect(result.server_info.title and result.server_info.version)
        expect("ask" in (result.instructions or ""))
        expect(result.capabilities.tools is not None and result.capabilities.logging is not None)

    async def list_tools() -> None:
        tools = (await session.list_tools()).tools
        names = sorted(t.name for t in tools)
        expect(names == ["ask", "cancel", "events", "sessions", "status", "wait"], tools)
        for tool in tools:
            expect(tool.output_schema, tool.name)
            expect(tool.annotations.read_only_hint == (tool.name not in ("ask", "sessions", "cancel")), tool.name)

    async def status() -> None:
        result = await session.call_tool("status", {})
        expect(not result.is_error)
        expect(result.structured_content["state"] in ("starting", "ready"), result)
        expect("full" not in result.structured_content, result)
        full = await session.call_tool("status", {"full": True})
        expect(full.structured_content["full"]["client"]["name"], full)

    async def ask_with_progress() -> None:
        progress: list[tuple[float, str | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, message))

        result = await session.call_tool("ask", {"prompt": "RUN_TOOL ls"}, progress_callback=on_progress)
        expect(not result.is_error)
        # call_tool has already validated structured_content against the outputSchema.
        expect(result.structured_content["ok"] is True)
        expect(first_text(result) == result.structured_content["result"])
        values = [v for v, _ in progress]
        expect(len(values) >= 4 and values == sorted(set(values)), values)
        messages = [m for _, m in progress]
        expect(messages[0].startswith("turn started"), messages)
        expect("tool use: Bash" in messages, messages)
        expect(messages[-1] == "result: success", messages)

    async def two_sessions_at_once() -> None:
        # A slow turn (~0.9 s) in one session and a quick one in another, started together:
        # the quick one is answered first, each in a conversation of its own.
        done: list[str] = []
        replies: dict[str, Any] = {}

        async def ask_in(name: str, prompt: str) -> None:
            replies[name] = await session.call_tool("ask", {"session": name, "prompt": prompt})
            done.append(name)

        async with anyio.create_task_group() as group:
            group.start_soon(ask_in, "py-slow", "SLOW ms=300 chunks=3")
            group.start_soon(ask_in, "py-quick", "quick")
        slow, quick = replies["py-slow"], replies["py-quick"]
        expect(not slow.is_error and not quick.is_error, replies)
        expect(first_text(slow) == "slow chunk 1slow chunk 2slow chunk 3", first_text(slow))
        expect(first_text(quick).endswith("to: quick"), first_text(quick))
        expect(done == ["py-quick", "py-slow"], done)
        ids = {name: reply.structured_content["sessionId"] for name, reply in replies.items()}
        expect(all(ids.values()) and ids["py-slow"] != ids["py-quick"], ids)
        listed = await session.call_tool("sessions", {})
        expect(not listed.is_error, listed)
        by_name = {s["name"]: s for s in listed.structured_content["sessions"]}
        for name, session_id in ids.items():
            expect(by_name.get(name, {}).get("sessionId") == session_id, (name, by_name))
            expect(f"- {name}: ready" in first_text(listed), first_text(listed))

    async def failed_turn() -> None:
        result = await session.call_tool("ask", {"prompt": "ERR400"})
        expect(result.is_error)
        expect(result.structured_content["ok"] is False)
        expect(first_text(result) == "Claude Code's turn failed: API error 400: mock 400", first_text(result))

    async def cancel_then_ask() -> None:
        streaming = anyio.Event()

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            if message == "assistant: slow chunk 1":
                streaming.set()

        async with anyio.create_task_group() as group:

            async def slow() -> None:
                await session.call_tool("ask", {"prompt": "SLOW 100 100"}, progress_callback=on_progress)
                raise AssertionError("the cancelled ask returned")

            group.start_soon(slow)
            await streaming.wait()
            group.cancel_scope.cancel()  # sends notifications/cancelled
        result = await session.call_tool("ask", {"prompt": "after"})
        expect(not result.is_error)
        expect(first_text(result).endswith("to: after"), first_text(result))
        status = await session.call_tool("status", {})
        expect(status.structured_content["restarts"] == 0, status)

    async def background_wait() -> None:
        # call_tool validates each structured_content against the tool's outputSchema.
        started = await session.call_tool("ask", {"prompt": "SLOW ms=200 chunks=8", "background": True})
        expect(not started.is_error and started.structured_content["running"] is True, started)
        turn_id = started.structured_content["turnId"]
        early = await session.call_tool("wait", {"turnId": turn_id, "timeoutMs": 100})
        expect(early.structured_content["running"] is True, early)
        expect(first_text(early).startswith("Still running after"), first_text(early))
        done = await session.call_tool("wait", {"turnId": turn_id, "timeoutMs": 20000})
        expect(done.structured_content["running"] is False, done)
        expect(first_text(done) == done.structured_content["answer"]["result"], done)
        expect(first_text(done).startswith("slow chunk 1slow chunk 2"), first_text(done))

    async def background_cancel() -> None:
        started = await session.call_tool("ask", {"prompt": "SLOW 100 100", "background": True})
        turn_id = started.structured_content["turnId"]
        cancelled = await session.call_tool("cancel", {"turnId": turn_id})
        expect(cancelled.structured_content["cancelled"] is True, cancelled)
        after = await session.call_tool("wait", {"turnId": turn_id, "timeoutMs": 20000})
        expect(after.is_error and "-32007" in first_text(after), after)
        nxt = await session.call_tool("ask", {"prompt": "after background"})
        expect(not nxt.is_error and first_text(nxt).endswith("to: after background"), nxt)

    async def logging() -> None:
        await session.set_logging_level("info")
        await session.call_tool("ask", {"prompt": "logged"})
        with anyio.fail_after(5):
            while not any(entry.data.get("type") == "turn.started" for entry in logs):
                await anyio.sleep(0.02)
        expect(all(entry.logger == "claude-coded" and entry.level != "debug" for entry in logs))

    async def events() -> None:
        result = await session.call_tool("events", {"since": 0, "level": "info"})
        expect(not result.is_error)
        expect(any(" turn.cancelled: " in e for e in result.structured_content["events"]), result)

    async def ping() -> None:
        await session.send_ping()

    for name, body in [
        ("initialize", initialize),
        ("tools/list", list_tools),
        ("call status", status),
        ("call ask with progress", ask_with_progress),
        ("ask on two sessions at once: both answered, each its own sessionId", two_sessions_at_once),
        ("failed turn is isError with a valid structured result", failed_turn),
        ("cancel an ask, then ask again", cancel_then_ask),
        ("background ask, wait while it runs, wait for its answer", background_wait),
        ("background ask, cancel it, then ask again", background_cancel),
        ("logging/setLevel then notifications/message", logging),
        ("call events", events),
        ("ping", ping),
    ]:
        await check(name, body)


async def modern_checks(home: Path) -> None:
    """`mcp.Client` in auto mode: probes server/discover and speaks 2026-07-28."""
    logs: list[Any] = []

    async def on_log(params: Any) -> None:
        logs.append(params)

    client = Client(
        server_params(home),
        mode="auto",
        log_level="info",
        logging_callback=on_log,
        message_handler=on_message,
    )

    async def discover_and_ask() -> None:
        async with client:
            expect(client.protocol_version == "2026-07-28", client.protocol_version)
            progress: list[str | None] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(message)

            result = await client.call_tool("ask", {"prompt": "modern"}, progress_callback=on_progress)
            expect(not result.is_error)
            expect(first_text(result) == "mock reply #1 to: modern", first_text(result))
            expect(progress and progress[-1] == "result: success", progress)
            # The request's `_meta` log level opted it in to its own log lines.
            expect(any(entry.data.get("type") == "turn.started" for entry in logs), logs)

    await check("2026-07-28 via server/discover (auto mode)", discover_and_ask)


async def elicitation_checks(home: Path) -> None:
    """Permission questions of the real CLI as form elicitations: the answers decide."""
    params = real_cli_params(home)
    params.args += ["--permission-timeout-ms", "1500"]
    cwd = home / "cwd"
    plan: list[Any] = []
    asked: list[Any] = []

    async def on_elicit(context: Any, request: Any) -> Any:
        asked.append(request)
        answer = plan.pop(0)
        if answer == "never":
            await anyio.sleep(5)
            return types.ElicitResult(action="cancel")
        action, content = answer
        return types.ElicitResult(action=action, content=content)

    async def ask(file: str, decision: Any = None) -> str:
        if decision is not None:
            plan.append(decision)
        result = await session.call_tool("ask", {"prompt": f"RUN_TOOL touch {file}"})
        expect(not result.is_error, result)
        expect(not plan, f"not asked: {plan}")
        return first_text(result)

    async def allow_once() -> None:
        text = await ask("once.txt", ("accept", {"decision": "Allow once"}))
        expect("is_error=False" in text, text)
        expect((cwd / "once.txt").exists(), "the command did not run")
        form = asked[-1]
        expect("run `touch once.txt`" in form.message, form.message)
        choices = form.requested_schema["properties"]["decision"]["enum"]
        expect("Allow for the rest of this session" in choices, choices)

    async def deny_with_message() -> None:
        text = await ask("denied.txt", ("accept", {"decision": "Deny", "message": "not today"}))
        expect("is_error=True" in text and "not today" in text, text)
        expect(not (cwd / "denied.txt").exists(), "a denied command ran")

    async def decline() -> None:
        text = await ask("declined.txt", ("decline", None))
        expect("is_error=True" in text and "declined" in text, text)
        expect(not (cwd / "declined.txt").exists(), "a declined command ran")

    async def no_answer() -> None:
        text = await ask("late.txt", "never")
        expect("is_error=True" in text and "within 1.5 s" in text, text)
        expect(not (cwd / "late.txt").exists(), "an unanswered command ran")

    async def allow_for_the_session() -> None:
        text = await ask("kept.txt", ("accept", {"decision": "Allow for the rest of this session"}))
        expect("is_error=False" in text, text)
        (cwd / "kept.txt").unlink()
        questions = len(asked)
        text = await ask("kept.txt")
        expect(len(asked) == questions, "the same command was asked again")
        expect("is_error=False" in text and (cwd / "kept.txt").exists(), text)

    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, elicitation_callback=on_elicit, message_handler=on_message) as session:
            await session.initialize()
            for name, body in [
                ("real CLI, elicitation: allow once runs the command", allow_once),
                ("real CLI, elicitation: deny with a message for the agent", deny_with_message),
                ("real CLI, elicitation: decline denies", decline),
                ("real CLI, elicitation: no answer is denied at the deadline", no_answer),
                ("real CLI, elicitation: allow for the session is not asked again", allow_for_the_session),
            ]:
                await check(name, body)


async def roots_checks(home: Path) -> None:
    """A client that declares roots: its first root becomes the project the agent works in
    (the server was started elsewhere, allowed to work anywhere under `home`)."""
    params = server_params(home)
    project = home / "my project"
    project.mkdir()
    params.args += ["--allow-dir", str(home)]
    record = home / "starts.jsonl"
    params.env["DOUBLE_RECORD"] = str(record)

    async def list_roots(context: Any) -> Any:
        return types.ListRootsResult(roots=[types.Root(uri=project.as_uri())])

    async def the_agent_works_in_the_root() -> None:
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write, list_roots_callback=list_roots, message_handler=on_message) as session:
                await session.initialize()
                for _ in range(200):
                    result = await session.call_tool("sessions", {})
                    if str(project) in first_text(result):
                        break
                    await anyio.sleep(0.05)
                result = await session.call_tool("ask", {"prompt": "where?"})
                expect(not result.is_error, result)
        starts = [line for line in record.read_text().splitlines() if line.strip()]
        expect(json.loads(starts[-1])["cwd"] == str(project.resolve()), starts[-1])

    await check("roots: the first root is where the agent works", the_agent_works_in_the_root)


async def main() -> int:
    if not BRIDGE or not DOUBLE or not REAL or not MOCK_API_URL:
        print("set CLAUDE_CODED_BIN, CLAUDE_DOUBLE_BIN, CLAUDE_REAL_BIN and MOCK_API_URL", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="claude-coded-py-") as legacy_home:
        async with stdio_client(server_params(Path(legacy_home))) as (read, write):
            logs: list[Any] = []

            async def on_log(params: Any) -> None:
                logs.append(params)

            async with ClientSession(read, write, logging_callback=on_log, message_handler=on_message) as session:
                await session_checks(session, logs)
    with tempfile.TemporaryDirectory(prefix="claude-coded-py-") as modern_home:
        await modern_checks(Path(modern_home))
    with tempfile.TemporaryDirectory(prefix="claude-coded-py-") as elicit_home:
        await elicitation_checks(Path(elicit_home))
    with tempfile.TemporaryDirectory(prefix="claude-coded-py-") as roots_home:
        await roots_checks(Path(roots_home).resolve())

    async def stdout_was_json() -> None:
        expect(not transport_errors, [repr(e) for e in transport_errors])

    await check("stdout carried only JSON-RPC", stdout_was_json)
    return CHECKS.finish()


if __name__ == "__main__":
    sys.exit(anyio.run(main))
