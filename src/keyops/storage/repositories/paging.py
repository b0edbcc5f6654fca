"""Paging and filters of list queries, shared by every list that has them.

``ListQuery`` says what a list asks for; the repositories turn it into SQL: ``WHERE`` for
the filters, ``ORDER BY`` for the sort, ``LIMIT``/``OFFSET`` for the page, and one
``COUNT`` for the total when a page was asked for.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session

from keyops.storage.models import Jwk

__all__ = ["ListQuery", "apply_page", "count_of", "jwk_page", "name_starts_with"]

SORT_NAME = "name"
SORT_NOT_AFTER = "notAfter"


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A list's paging and filters; all None (the default) is the whole list by name."""

    # A page is asked for when ``size`` is set; ``page`` is 0-based.
    page: int = 0
    size: int | None = None
    # ``name`` or ``notAfter``, and whether descending.
    sort: str = SORT_NAME
    descending: bool = False
    # Case-sensitive prefix of the resource's name.
    name_prefix: str | None = None
    # Only resources with a row in this environment (by name).
    environment: str | None = None
    # Only resources with a not-after at most this instant (expired included).
    until: datetime | None = None

    @property
    def paged(self) -> bool:
        return self.size is not None


def name_starts_with(column: Any, prefix: str) -> Any:
    """Case-sensitive on both databases (SQLite's ``LIKE`` ignores ASCII case), with no
    wildcard characters to escape."""
    return func.substr(column, 1, len(prefix)) == prefix


def apply_page(stmt: Any, query: ListQuery) -> Any:
    if query.size is None:
        return stmt
    return stmt.limit(query.size).offset(query.page * query.size)


def count_of(session: Session, model: Any, conditions: Sequence[Any]) -> int:
    """How many rows of ``model`` meet the conditions, in one statement."""
    stmt = select(func.count()).select_from(model).where(*conditions)
    return int(session.execute(stmt).scalar_one())


def jwk_page(
    session: Session,
    project_id: int,
    query: ListQuery,
    *,
    only_ids: Collection[int] | None = None,
) -> tuple[Sequence[Jwk], int | None]:
    """The project's JWKs meeting the query's name prefix (and among ``only_ids`` if
    given), sorted by name, the asked page only; with the total count if paged. The
    environment and expiry filters are the caller's (JWKs have no per-environment rows;
    ``exp`` is in their JSON), given as ``only_ids``."""
    conditions: list[Any] = [Jwk.project_id == project_id]
    if query.name_prefix is not None:
        conditions.append(name_starts_with(Jwk.name, query.name_prefix))
    if only_ids is not None:
        conditions.append(Jwk.id.in_(list(only_ids)) if only_ids else false())
    order = Jwk.name.desc() if query.descending else Jwk.name
    stmt = apply_page(select(Jwk).where(*conditions).order_by(order, Jwk.id), query)
    jwks = session.scalars(stmt).all()
    total = count_of(session, Jwk, conditions) if query.paged else None
    return jwks, total
