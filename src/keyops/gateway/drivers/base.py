"""What a gateway driver is: the protocol, the change it activates, and its error.

A driver tells a running gateway (nginx, HAProxy, a script) that the files under the
output directory changed. The framework (``keyops.gateway.output``) writes the new files
first, atomically, then calls ``Driver.activate`` with the ``Change``; when activate
raises ``DriverError`` the framework puts the previous files back and the apply fails
with ``str(exc)`` as the reason the manager sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Change", "Driver", "DriverError"]


@dataclass(frozen=True, slots=True)
class Change:
    """The files one apply changed under ``output_dir``; paths are relative, posix."""

    output_dir: Path  # absolute
    revision: int
    # Added or changed files: relative path -> new content.
    written: Mapping[str, bytes]
    # For every path in ``written`` and ``removed``: the old content, None if it is new.
    previous: Mapping[str, bytes | None]
    # Relative paths removed.
    removed: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.written and not self.removed


class DriverError(Exception):
    """The driver refused or failed; str(exc) is the reason reported to the manager.

    One line, e.g. ``nginx -t failed: ...``; never key material.
    """


class Driver(Protocol):
    """Makes a gateway take up changed files; one instance per node."""

    name: str  # "files" | "nginx" | "haproxy"

    async def activate(self, change: Change) -> str:
        """Called after the new files are in place; returns a one-line summary.

        E.g. "reloaded nginx", "updated 2 certificate(s) in memory". Raises DriverError:
        the framework then puts the previous files back and the apply fails.
        """
        ...

    def describe(self) -> dict[str, Any]:
        """Extra fields for the node's /status (e.g. the socket path)."""
        ...
