"""INSERT ... ON CONFLICT DO UPDATE on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def upsert(
    session: Session,
    model: type[Any],
    values: dict[str, Any],
    key: Sequence[str],
    *,
    where: Any = None,
) -> None:
    """Insert the row, or update its non-key columns if ``key`` already exists.

    ``where`` is called with the statement's ``excluded`` row and may return a
    condition that must hold for the update to happen.
    """
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(model).values(**values)
    condition: ColumnElement[bool] | None = where(stmt.excluded) if where is not None else None
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={k: stmt.excluded[k] for k in values if k not in key},
        where=condition,
    )
    session.execute(stmt)


def upsert_many(
    session: Session, model: type[Any], rows: Sequence[dict[str, Any]], key: Sequence[str]
) -> None:
    """``upsert`` for many rows with the same columns: one statement, executed for every
    row (none twice), in the order given (callers keep one order to avoid deadlocks)."""
    if not rows:
        return
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(model)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={k: stmt.excluded[k] for k in rows[0] if k not in key},
    )
    session.execute(stmt, list(rows))


def insert_or_ignore(
    session: Session, model: type[Any], values: dict[str, Any], key: Sequence[str]
) -> None:
    """Insert the row unless one with the same ``key`` exists (then do nothing)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(model).values(**values).on_conflict_do_nothing(index_elements=list(key))
    session.execute(stmt)
