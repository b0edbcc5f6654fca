"""Reading the audit log: one page of matching entries, and the tokens that made them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from keyops.storage.repositories.audit import AuditRepository

MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class AuditFilter:
    user: str | None = None
    project: str | None = None
    kind: str | None = None
    name: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def token_names(session: Session, rows: Sequence[Any]) -> dict[int, str]:
    """The name of each token that made one of ``rows`` (login tokens are named
    ``client_credentials``, personal ones as their owner named them)."""
    return AuditRepository(session).token_names([r.token_id for r in rows if r.token_id])


def search(session: Session, f: AuditFilter, page: int, size: int) -> tuple[list[Any], int]:
    """One page of matching entries, newest first, and how many match in all."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    return AuditRepository(session).search(
        user=f.user,
        project=f.project,
        kind=f.kind,
        name=f.name,
        since=f.since,
        until=f.until,
        offset=page * size,
        limit=size,
    )
