"""Queries shared by resources that hold one row per environment (certificates, keys,
keystores); every lookup is scoped by project."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from keyops.storage.models import Environment

P = TypeVar("P", bound=Any)
C = TypeVar("C", bound=Any)


class PerEnvironmentRepository(Generic[P, C]):
    """``parent`` has ``project_id``, ``name`` and an ``environments`` relationship to
    ``child`` rows, which point back through ``parent_fk`` and carry ``environment_id``."""

    parent: type[P]
    child: type[C]
    parent_fk: str

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, project_id: int, name: str, *, for_update: bool = False) -> P | None:
        stmt = select(self.parent).where(
            self.parent.project_id == project_id, self.parent.name == name
        )
        if for_update:
            # Serialises concurrent writers of one resource on PostgreSQL; SQLite
            # transactions already hold the database write lock from their start. The
            # lock keeps other writers out, so the rows may be loaded in a second query
            # (FOR UPDATE can not lock the nullable side of the outer join below).
            stmt = stmt.options(selectinload(self.parent.environments)).with_for_update()
            result: P | None = await self.session.scalar(stmt)
            return result
        return (await self.session.scalars(self._with_rows(stmt))).unique().first()

    async def get_by_id(self, resource_id: int) -> P | None:
        stmt = self._with_rows(select(self.parent).where(self.parent.id == resource_id))
        return (await self.session.scalars(stmt)).unique().first()

    async def list_for_project(self, project_id: int) -> Sequence[P]:
        stmt = self._with_rows(
            select(self.parent)
            .where(self.parent.project_id == project_id)
            .order_by(self.parent.name)
        )
        return (await self.session.scalars(stmt)).unique().all()

    def _with_rows(self, stmt: Any) -> Any:
        """Load the resource and its rows in one statement, hence from one snapshot.

        PostgreSQL's READ COMMITTED takes a snapshot per statement: loading the rows in
        a second query could pair them with the description of the version before a
        concurrent update committed, a state that never existed.
        """
        return stmt.options(joinedload(self.parent.environments))

    async def add(self, resource: P) -> P:
        self.session.add(resource)
        await self.session.flush()
        return resource

    async def replace_environments(self, resource: P, rows: Sequence[C]) -> None:
        """Swap every per-environment row of the resource, within the transaction."""
        fk = getattr(self.child, self.parent_fk)
        await self.session.execute(delete(self.child).where(fk == resource.id))
        # The old rows must be gone before new ones claim their unique values.
        await self.session.flush()
        self.session.expire(resource, ["environments"])
        for row in rows:
            setattr(row, self.parent_fk, resource.id)
            self.session.add(row)
        await self.session.flush()
        await self.session.refresh(resource, ["environments"])

    async def delete(self, resource: P) -> None:
        await self.session.delete(resource)
        await self.session.flush()

    async def environment_names(self, resource: P) -> dict[int, str]:
        """Environment id -> name for the resource's rows."""
        ids = [row.environment_id for row in resource.environments]
        if not ids:
            return {}
        stmt = select(Environment.id, Environment.name).where(Environment.id.in_(ids))
        return {row[0]: row[1] for row in (await self.session.execute(stmt)).all()}
