"""Queries on certificates; every lookup is scoped by project."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from keyops.storage.models import Certificate, CertificateEnvironment, Environment


class CertificateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, project_id: int, name: str, *, for_update: bool = False
    ) -> Certificate | None:
        stmt = (
            select(Certificate)
            .where(Certificate.project_id == project_id, Certificate.name == name)
            .options(selectinload(Certificate.environments))
        )
        if for_update:
            # Serialises concurrent updates of one certificate on PostgreSQL; SQLite
            # transactions already hold the database write lock from their start.
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def get_by_id(self, certificate_id: int) -> Certificate | None:
        stmt = (
            select(Certificate)
            .where(Certificate.id == certificate_id)
            .options(selectinload(Certificate.environments))
        )
        return await self.session.scalar(stmt)

    async def list_for_project(self, project_id: int) -> Sequence[Certificate]:
        stmt = (
            select(Certificate)
            .where(Certificate.project_id == project_id)
            .options(selectinload(Certificate.environments))
            .order_by(Certificate.name)
        )
        return (await self.session.scalars(stmt)).all()

    async def aliases_taken(
        self, project_id: int, environment_ids: Sequence[int], alias: str, *, except_id: int | None
    ) -> list[int]:
        """Environment ids where another certificate of the project uses the alias."""
        stmt = select(CertificateEnvironment.environment_id).where(
            CertificateEnvironment.project_id == project_id,
            CertificateEnvironment.environment_id.in_(environment_ids),
            CertificateEnvironment.alias == alias,
        )
        if except_id is not None:
            stmt = stmt.where(CertificateEnvironment.certificate_id != except_id)
        return list((await self.session.scalars(stmt)).all())

    async def add(self, certificate: Certificate) -> Certificate:
        self.session.add(certificate)
        await self.session.flush()
        return certificate

    async def replace_environments(
        self, certificate: Certificate, rows: Sequence[CertificateEnvironment]
    ) -> None:
        """Swap every per-environment row of the certificate, within the transaction."""
        await self.session.execute(
            delete(CertificateEnvironment).where(
                CertificateEnvironment.certificate_id == certificate.id
            )
        )
        # The deleted rows must be gone before the new ones claim their aliases.
        await self.session.flush()
        self.session.expire(certificate, ["environments"])
        for row in rows:
            row.certificate_id = certificate.id
            self.session.add(row)
        await self.session.flush()
        await self.session.refresh(certificate, ["environments"])

    async def delete(self, certificate: Certificate) -> None:
        await self.session.delete(certificate)
        await self.session.flush()

    async def in_environment(
        self, environment_id: int
    ) -> Sequence[tuple[CertificateEnvironment, Certificate]]:
        stmt = (
            select(CertificateEnvironment, Certificate)
            .join(Certificate, Certificate.id == CertificateEnvironment.certificate_id)
            .where(CertificateEnvironment.environment_id == environment_id)
        )
        return [(row[0], row[1]) for row in (await self.session.execute(stmt)).all()]

    async def environment_names(self, certificate: Certificate) -> dict[int, str]:
        ids = [e.environment_id for e in certificate.environments]
        if not ids:
            return {}
        stmt = select(Environment.id, Environment.name).where(Environment.id.in_(ids))
        return {row[0]: row[1] for row in (await self.session.execute(stmt)).all()}
