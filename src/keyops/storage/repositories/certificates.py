"""Queries on certificates."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from keyops.storage.models import Certificate, CertificateEnvironment
from keyops.storage.repositories.per_environment import PerEnvironmentRepository


class CertificateRepository(PerEnvironmentRepository[Certificate, CertificateEnvironment]):
    parent = Certificate
    child = CertificateEnvironment
    parent_fk = "certificate_id"
    list_deferred = ("der",)

    def aliases_taken(
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
        return list((self.session.scalars(stmt)).all())
