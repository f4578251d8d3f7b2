"""What the Python client scripts share: a named check under a deadline that reports and
keeps going, an assertion that survives `python -O`, the first text block of a tool
result, and the closing tally.
"""

from __future__ import annotations

import traceback
from typing import Any

import anyio

TIMEOUT = 20


class Checks:
    """Counts the checks of one script; `label` starts each report line (`ok - py: ...`)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.passed = 0
        self.failed = 0

    async def check(self, name: str, body) -> None:
        try:
            with anyio.fail_after(TIMEOUT):
                await body()
            self.passed += 1
            print(f"ok - {self.label}: {name}", flush=True)
        except BaseException as error:  # noqa: BLE001 - report every failure, keep going
            if isinstance(error, KeyboardInterrupt):
                raise
            self.fail(name, "".join(traceback.format_exception(error)).strip())

    def fail(self, name: str, detail: str) -> None:
        self.failed += 1
        print(f"not ok - {self.label}: {name}: {detail}", flush=True)

    def finish(self) -> int:
        """Prints `N passed, M failed`; the script's exit code."""
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 else 1


def expect(condition: object, detail: object = "") -> None:
    """An assertion that stays under `python -O` (a bare `assert` is stripped there)."""
    if not condition:
        raise AssertionError(detail)


def first_text(result: Any) -> str:
    return next(block.text for block in result.content if block.type == "text")
