"""Queries on JWKs; every lookup is scoped by project."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyops.storage.models import Jwk


class JwkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, project_id: int, name: str) -> Jwk | None:
        return await self.session.scalar(
            select(Jwk).where(Jwk.project_id == project_id, Jwk.name == name)
        )

    async def list_for_project(self, project_id: int) -> Sequence[Jwk]:
        stmt = select(Jwk).where(Jwk.project_id == project_id).order_by(Jwk.name)
        return (await self.session.scalars(stmt)).all()

    async def list_for_projects(self, project_ids: Sequence[int] | None) -> Sequence[Jwk]:
        """JWKs of the given projects, or of every project when None."""
        stmt = select(Jwk)
        if project_ids is not None:
            stmt = stmt.where(Jwk.project_id.in_(project_ids))
        return (await self.session.scalars(stmt.order_by(Jwk.id))).all()

    async def referencing(self, source: str, source_id: int) -> Sequence[Jwk]:
        """JWKs derived from a certificate, key or keystore, locked for the change."""
        column = {
            "certificate": Jwk.source_certificate_id,
            "key": Jwk.source_key_id,
            "keystore": Jwk.source_keystore_id,
        }[source]
        stmt = (
            select(Jwk)
            .where(column == source_id)
            .order_by(Jwk.project_id, Jwk.name)
            .with_for_update()
        )
        return (await self.session.scalars(stmt)).all()

    async def add(self, jwk: Jwk) -> Jwk:
        self.session.add(jwk)
        await self.session.flush()
        return jwk

    async def delete(self, jwk: Jwk) -> None:
        await self.session.delete(jwk)
        await self.session.flush()
