"""``--driver nginx``: ``nginx -t`` on the new files, then a graceful ``nginx -s reload``.

nginx reads certificates only when it loads its configuration, so a change takes a
reload; ``-s reload`` is graceful: the master starts new workers with the new
configuration and the old ones finish their open connections. Before that, ``nginx -t``
checks the whole configuration against the files just written (it loads every
certificate and key it names); if it fails, the framework puts the previous files back
and the apply fails with nginx's first error line, so a running nginx never reloads
into a broken state. ``--nginx-conf`` is passed as ``-c`` to both commands.

An nginx that is not running (no pid file, or a stale one) is not a failure once
``nginx -t`` passed: it reads the checked files when it starts. That is the order a host
boots in (the node writes the files, then nginx starts), and the summary says so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from keyops.gateway.drivers.base import Change, DriverError
from keyops.gateway.drivers.commands import CommandResult, first_line, run_command

__all__ = ["NginxDriver"]


def _not_running(stderr: str) -> bool:
    """What ``nginx -s`` says when there is no master to signal: no pid file, or a stale one.

    ``open() "/run/nginx.pid" failed (2: No such file or directory)`` or
    ``kill(1234, 1) failed (3: No such process)``, or ``invalid PID number ""``: an
    empty pid file, which ``nginx -t`` itself leaves behind when there was none.
    """
    for line in stderr.splitlines():
        if 'invalid PID number ""' in line:
            return True
        if "open()" in line and "(2: No such file or directory)" in line:
            return True
        if "kill(" in line and "(3: No such process)" in line:
            return True
    return False


# "nginx: [emerg] ..." before the configuration is read, "2026/01/02 03:04:05 [error]
# 123#123: ..." after; the first line at error level or worse says what is wrong.
_LINE = re.compile(r"^(?:nginx: |\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?\[(\w+)\] (?:\d+#\d+: )?(.*)$")
_SERIOUS = {"error", "crit", "alert", "emerg"}


def _reason(result: CommandResult) -> str:
    for line in result.stderr.splitlines():
        match = _LINE.match(line.strip())
        if match and match.group(1) in _SERIOUS:
            return first_line(f"[{match.group(1)}] {match.group(2)}")
    text = first_line(result.stderr) or first_line(result.stdout) or f"exit {result.returncode}"
    return text.removeprefix("nginx: ")


class NginxDriver:
    """Checks and gracefully reloads a running nginx after each change."""

    name = "nginx"

    def __init__(
        self, binary: str = "nginx", conf: Path | None = None, *, timeout: float = 30.0
    ) -> None:
        self.binary = binary
        self.conf = conf
        self.timeout = timeout

    def _argv(self, *args: str) -> list[str]:
        # Once nginx has read its configuration it logs to the configured error_log, not
        # to stderr; a second error_log (allowed) brings the reason back to the caller.
        argv = [self.binary, *args, "-g", "error_log stderr;"]
        if self.conf is not None:
            argv += ["-c", str(self.conf)]
        return argv

    async def _run(self, what: str, *args: str) -> CommandResult:
        try:
            result = await run_command(self._argv(*args), time_limit=self.timeout)
        except OSError as exc:
            raise DriverError(f"{what} failed: can not run {self.binary}: {exc.strerror}") from None
        if result.returncode is None:
            raise DriverError(f"{what} failed: timed out after {self.timeout:g} s")
        return result

    async def activate(self, change: Change) -> str:
        checked = await self._run("nginx -t", "-t", "-q")
        if not checked.ok:
            raise DriverError(f"nginx -t failed: {_reason(checked)}")
        files = f"{len(change.written)} file(s) changed, {len(change.removed)} removed"
        reloaded = await self._run("nginx -s reload", "-s", "reload")
        if not reloaded.ok:
            if _not_running(reloaded.stderr):
                return f"nginx -t passed, nginx is not running: nothing to reload ({files})"
            raise DriverError(f"nginx -s reload failed: {_reason(reloaded)}")
        return f"nginx -t passed, reloaded nginx ({files})"

    def describe(self) -> dict[str, Any]:
        return {"nginxBinary": self.binary, "nginxConf": str(self.conf) if self.conf else None}
