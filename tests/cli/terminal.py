"""A real ``keyops`` process on a pseudo-terminal, for the prompts a person answers."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class Terminal:
    """``python -m keyops ARGS`` as the session leader of a new pty (its controlling
    terminal, so getpass turns echo off on it as it would for a person)."""

    pid: int
    fd: int
    buffer: bytes = b""
    seen: int = 0
    status: int | None = field(default=None)

    @classmethod
    def start(cls, args: tuple[str, ...], env: Mapping[str, str]) -> Terminal:
        pid, fd = pty.fork()
        if pid == 0:  # the child: nothing but exec
            try:
                # No shell wanted: the arguments reach keyops exactly as given.
                argv = [sys.executable, "-m", "keyops", *args]
                os.execve(sys.executable, argv, dict(env))  # noqa: S606
            finally:
                os._exit(127)
        return cls(pid, fd)

    @property
    def output(self) -> str:
        """Everything the process wrote (stdout and stderr share the terminal)."""
        return self.buffer.decode(errors="replace").replace("\r\n", "\n")

    def _read(self, deadline: float) -> bool:
        """Read what is there; False once the process closed the terminal."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"keyops said nothing more in time; so far:\n{self.output}")
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the child side is closed
            return False
        self.buffer += data
        return bool(data)

    def expect(self, text: str, timeout: float = 60) -> None:
        """Wait until ``text`` appears after what was already expected."""
        deadline = time.monotonic() + timeout
        wanted = text.encode()
        while (at := self.buffer.find(wanted, self.seen)) < 0:
            if not self._read(deadline):
                raise AssertionError(f"keyops ended before {text!r}:\n{self.output}")
        self.seen = at + len(wanted)

    def answer(self, line: str) -> None:
        """Type a line and press return (only once its prompt is shown: getpass flushes
        what was typed before it turns echo off)."""
        os.write(self.fd, line.encode() + b"\r")

    def wait(self, timeout: float = 60) -> int:
        """Read to the end; the exit status."""
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            pass
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        self.status = os.waitstatus_to_exitcode(status)
        return self.status
