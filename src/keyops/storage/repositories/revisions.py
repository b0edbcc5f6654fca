"""The global change revision counter."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from keyops.storage.models import RevisionCounter


def next_revision(session: Session) -> int:
    """Take the next revision; the row lock also orders concurrent deploying changes."""
    value = session.scalar(
        update(RevisionCounter)
        .where(RevisionCounter.id == 1)
        .values(value=RevisionCounter.value + 1)
        .returning(RevisionCounter.value)
    )
    assert value is not None, "revision_counter row missing: migrations not applied?"
    return int(value)


def current_revision(session: Session) -> int:
    value = session.scalar(select(RevisionCounter.value).where(RevisionCounter.id == 1))
    return int(value or 0)
