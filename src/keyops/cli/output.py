"""What the client commands print, and the exit codes scripts test.

People get Rich tables on stdout; scripts get ``-o json`` or ``-o yaml``: the answer's
model dumped with the contract's (camelCase) field names, exactly what the API said.
Errors are one line on stderr, ``error: <error_description>``, and the exit code says
which kind of failure it was (``exit_code``, the one place that decides):

    0 ok, 1 usage or a refused request, 2 not found, 3 conflict,
    4 partial deployment failure (some environment's result failed), 5 server error or
    unreachable.

The contract answers a missing or duplicate certificate, key, keystore or JWK with 400
and the text ``... is not found!`` / ``... is already exist!`` (not 404/409), so those
texts count as not found and conflict too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keyops.client import (
    BadRequest,
    Change,
    Conflict,
    KeyopsError,
    NotFound,
    ServerError,
    TransportError,
)

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_NOT_FOUND",
    "EXIT_PARTIAL",
    "EXIT_SERVER",
    "EXIT_USAGE",
    "Format",
    "change_table",
    "days_left",
    "dump",
    "exit_code",
    "expiry_cell",
    "out",
]

EXIT_USAGE = 1
EXIT_NOT_FOUND = 2
EXIT_CONFLICT = 3
EXIT_PARTIAL = 4
EXIT_SERVER = 5

# soft_wrap: a long name or DN is not broken in the middle when stdout is a pipe.
out = Console(soft_wrap=False)

OK_MARK = "✓"
FAILED_MARK = "✗"


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def exit_code(exc: KeyopsError) -> int:
    """The exit code of a refused or failed call."""
    text = exc.error_description
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, Conflict):
        return EXIT_CONFLICT
    if isinstance(exc, ServerError | TransportError) or exc.status >= 500:
        return EXIT_SERVER
    if isinstance(exc, BadRequest):
        if " is not found" in text or " was not found" in text:
            return EXIT_NOT_FOUND
        if " is already exist" in text:
            return EXIT_CONFLICT
    return EXIT_USAGE


def plain(data: Any) -> Any:
    """Models as the contract's JSON (camelCase names), lists of them too."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json", by_alias=True)
    if isinstance(data, list | tuple):
        return [plain(item) for item in data]
    if isinstance(data, dict):
        return {key: plain(value) for key, value in data.items()}
    return data


def dump(data: Any, fmt: Format) -> None:
    """Print ``data`` as JSON or YAML (plain print: no Rich markup, no wrapping)."""
    value = plain(data)
    if fmt is Format.yaml:
        print(yaml.safe_dump(value, sort_keys=False, allow_unicode=True), end="", flush=True)
    else:
        print(json.dumps(value, indent=2, ensure_ascii=False), flush=True)


def _parse_instant(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def days_left(not_after: str | None, now: datetime | None = None) -> int | None:
    """Whole days until ``not_after`` (negative once past); ``None`` if not a date."""
    if not not_after:
        return None
    instant = _parse_instant(not_after)
    if instant is None:
        return None
    return (instant - (now or datetime.now(UTC))).days


def expiry_cell(not_after: str | None) -> Text:
    """``not_after`` with the days left, red when expired or within 7 days, yellow
    within 30, green beyond."""
    days = days_left(not_after)
    if not_after is None or days is None:
        return Text(not_after or "-")
    if days < 0:
        return Text(f"{not_after} (expired {-days} days ago)", style="bold red")
    style = "red" if days <= 7 else "yellow" if days <= 30 else "green"
    return Text(f"{not_after} ({days} days left)", style=style)


def mark(success: bool) -> Text:
    return Text(OK_MARK, style="green") if success else Text(FAILED_MARK, style="bold red")


def change_table(change: Change) -> Table:
    """One row per environment the change touched: ✓ or ✗ and the environment's message."""
    table = Table("", "environment", "message")
    for result in change.deployment_result.environment_results:
        table.add_row(mark(result.success), result.environment_name, result.message)
    return table


def jwk_results_table(change: Change) -> Table | None:
    """What an update did to the JWKs that followed the resource, if any."""
    if not change.jwk_results:
        return None
    table = Table("jwk project", "jwk", "action", "old kid", "new kid")
    for r in change.jwk_results:
        table.add_row(r.project_name, r.name, r.action, r.old_kid or "-", r.new_kid or "-")
    return table


def names(items: Sequence[Any]) -> list[str]:
    """The ``name`` of each item, for ``--quiet`` lists."""
    return [str(getattr(item, "name", item)) for item in items]
