"""Running a gateway's check and reload commands: bounded in time, output kept short."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["CommandResult", "first_line", "run_command"]

MAX_OUTPUT = 64 * 1024


@dataclass(frozen=True, slots=True)
class CommandResult:
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def first_line(text: str, *, limit: int = 300) -> str:
    """The most telling line of a command's output, for a one-line reason.

    nginx and most tools print the error first and a summary ("test failed") last; the
    first non-empty line is kept, trimmed to ``limit`` characters.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def trimmed(text: str, *, limit: int = 500) -> str:
    """All of a short output on one line (a shell command's stderr), trimmed."""
    joined = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


async def run_command(
    argv: Sequence[str] | str,
    *,
    time_limit: float,
    env: Mapping[str, str] | None = None,
) -> CommandResult:
    """Run ``argv`` (a list, or a string for ``/bin/sh -c``); kill its group at the timeout."""
    full_env = {**os.environ, **(env or {})}
    if isinstance(argv, str):
        process = await asyncio.create_subprocess_shell(
            argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=full_env,
            start_new_session=True,
        )
    else:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=full_env,
            start_new_session=True,
        )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), time_limit)
    except TimeoutError:
        # The whole group: a shell's children must not outlive the timeout either.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), 5)
        return CommandResult(None, "", "")
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        raise
    return CommandResult(
        process.returncode,
        stdout[:MAX_OUTPUT].decode("utf-8", "replace"),
        stderr[:MAX_OUTPUT].decode("utf-8", "replace"),
    )
