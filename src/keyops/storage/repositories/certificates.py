"""Queries on certificates."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select

from keyops.storage.models import Certificate, CertificateEnvironment
from keyops.storage.prepared import Prepared
from keyops.storage.repositories.per_environment import PerEnvironmentRepository

_ROW = CertificateEnvironment
# Built once: the seed's update runs these every time.
_ALIASES_SELECT = select(_ROW.environment_id).where(
    _ROW.project_id == bindparam("project_id"),
    _ROW.environment_id.in_(bindparam("environment_ids", expanding=True)),
    _ROW.alias == bindparam("alias"),
)
_ALIASES = Prepared(_ALIASES_SELECT)
_ALIASES_OF_OTHERS = Prepared(_ALIASES_SELECT.where(_ROW.certificate_id != bindparam("except_id")))


class CertificateRepository(PerEnvironmentRepository[Certificate, CertificateEnvironment]):
    parent = Certificate
    child = CertificateEnvironment
    parent_fk = "certificate_id"
    list_deferred = ("der",)

    def aliases_taken(
        self, project_id: int, environment_ids: Sequence[int], alias: str, *, except_id: int | None
    ) -> list[int]:
        """Environment ids where another certificate of the project uses the alias."""
        params: dict[str, object] = {
            "project_id": project_id,
            "environment_ids": list(environment_ids),
            "alias": alias,
        }
        stmt = _ALIASES
        if except_id is not None:
            stmt, params["except_id"] = _ALIASES_OF_OTHERS, except_id
        return [row[0] for row in stmt.execute(self.session, params)]
