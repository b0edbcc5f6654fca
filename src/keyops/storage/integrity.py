"""Tell which uniqueness rule a failed write broke, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError


def violated_columns(exc: IntegrityError) -> str:
    """The constraint name (PostgreSQL) or the 'table.column, ...' list (SQLite)."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    text = str(orig)
    _, _, columns = text.partition("UNIQUE constraint failed:")
    return columns.strip() or text


def is_unique_violation(exc: IntegrityError, *parts: str) -> bool:
    """True if the violated rule mentions every given part (column or constraint text)."""
    found = violated_columns(exc).replace(".", "_").replace(", ", "_").replace(",", "_")
    return all(p in found for p in parts)
