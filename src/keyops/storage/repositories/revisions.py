"""The global change revision counter."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyops.storage.models import RevisionCounter


async def next_revision(session: AsyncSession) -> int:
    """Take the next revision; the row lock also orders concurrent deploying changes."""
    value = await session.scalar(
        update(RevisionCounter)
        .where(RevisionCounter.id == 1)
        .values(value=RevisionCounter.value + 1)
        .returning(RevisionCounter.value)
    )
    assert value is not None, "revision_counter row missing: migrations not applied?"
    return int(value)


async def current_revision(session: AsyncSession) -> int:
    value = await session.scalar(select(RevisionCounter.value).where(RevisionCounter.id == 1))
    return int(value or 0)
