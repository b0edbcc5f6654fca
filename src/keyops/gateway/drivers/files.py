"""``--driver files``: the files alone, with an optional check and reload command.

For any gateway that reads files (Envoy SDS, Kong, a cron job, a custom script), in the
manner of Vault Agent templates and consul-template: after the files are in place the
check command runs; a non-zero exit (or a timeout) makes the framework put the previous
files back and fails the apply with the command's stderr. Then the reload command runs;
its failure fails the apply too (the files are put back, and the gateway, if it did
reload, still sees a consistent set of the previous files).

Both are shell commands (``/bin/sh -c``) with ``KEYOPS_OUTPUT_DIR`` and
``KEYOPS_REVISION`` in their environment, in their own process group, killed at the
timeout.
"""

from __future__ import annotations

from typing import Any

from keyops.gateway.drivers.base import Change, DriverError
from keyops.gateway.drivers.commands import CommandResult, run_command, trimmed

__all__ = ["FilesDriver"]


def _failure(what: str, command: str, result: CommandResult, timeout: float) -> DriverError:
    if result.returncode is None:
        return DriverError(f"{what} command timed out after {timeout:g} s: {command}")
    detail = trimmed(result.stderr) or trimmed(result.stdout) or "no output"
    return DriverError(f"{what} command failed (exit {result.returncode}): {detail}")


class FilesDriver:
    """Runs ``check_command`` then ``reload_command`` (either optional) after each change."""

    name = "files"

    def __init__(
        self,
        check_command: str | None = None,
        reload_command: str | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        self.check_command = check_command or None
        self.reload_command = reload_command or None
        self.timeout = timeout

    async def _run(self, what: str, command: str, change: Change) -> None:
        env = {"KEYOPS_OUTPUT_DIR": str(change.output_dir), "KEYOPS_REVISION": str(change.revision)}
        result = await run_command(command, time_limit=self.timeout, env=env)
        if not result.ok:
            raise _failure(what, command, result, self.timeout)

    async def activate(self, change: Change) -> str:
        done = [f"wrote {len(change.written)} file(s), removed {len(change.removed)}"]
        if self.check_command:
            await self._run("check", self.check_command, change)
            done.append("check passed")
        if self.reload_command:
            await self._run("reload", self.reload_command, change)
            done.append("reloaded")
        return ", ".join(done)

    def describe(self) -> dict[str, Any]:
        return {"checkCommand": self.check_command, "reloadCommand": self.reload_command}
