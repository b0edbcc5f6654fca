"""Queries on resource versions (history and rollback); every lookup is scoped by
project and kind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session, defer

from keyops.storage.models import Environment, ResourceVersion
from keyops.storage.models.base import utcnow
from keyops.storage.prepared import Prepared

_V = ResourceVersion


def _of(kind: str, project_id: int, name: str) -> Any:
    return (_V.kind == kind) & (_V.project_id == project_id) & (_V.resource_name == name)


# Built once: every replace and delete of a resource runs them.
_KEY = (
    (_V.kind == bindparam("kind"))
    & (_V.project_id == bindparam("project_id"))
    & (_V.resource_name == bindparam("name"))
)
_NEWEST = Prepared(select(func.coalesce(func.max(_V.version), 0)).where(_KEY))
_INSERT = Prepared(insert(_V))
_TRIM = Prepared(delete(_V).where(_KEY, _V.version < bindparam("oldest_kept")))


class VersionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        kind: str,
        project_id: int,
        name: str,
        values: dict[str, Any],
        *,
        keep: int,
    ) -> int:
        """Append the next version of the resource and trim its history to ``keep``
        versions: three statements, in the change's transaction. Returns its number."""
        key = {"kind": kind, "project_id": project_id, "name": name}
        newest = _NEWEST.execute(self.session, key)[0][0]
        number = int(newest) + 1
        row = {
            "kind": kind,
            "project_id": project_id,
            "resource_name": name,
            "version": number,
            "created_at": utcnow(),
            **values,
        }
        _INSERT.execute(self.session, row)
        _TRIM.execute(self.session, {**key, "oldest_kept": number - keep + 1})
        return number

    def rename(self, kind: str, project_id: int, old: str, new: str) -> None:
        """Move a renamed resource's history to its new name; a deleted resource's
        history under the new name is dropped (its numbers would collide)."""
        conn = self.session.connection()
        conn.execute(delete(_V).where(_of(kind, project_id, new)))
        conn.execute(update(_V).where(_of(kind, project_id, old)).values(resource_name=new))

    def listing(self, kind: str, project_id: int, name: str) -> Sequence[ResourceVersion]:
        """The resource's versions, newest first, without their material."""
        stmt = (
            select(_V)
            .where(_of(kind, project_id, name))
            .order_by(_V.version.desc())
            .options(_defer_material())
        )
        return self.session.scalars(stmt).all()

    def get(self, kind: str, project_id: int, name: str, version: int) -> ResourceVersion | None:
        stmt = select(_V).where(_of(kind, project_id, name), _V.version == version)
        found: ResourceVersion | None = self.session.scalars(stmt).first()
        return found

    def latest(self, kind: str, project_id: int, name: str) -> ResourceVersion | None:
        stmt = select(_V).where(_of(kind, project_id, name)).order_by(_V.version.desc()).limit(1)
        found: ResourceVersion | None = self.session.scalars(stmt).first()
        return found

    def environment_names(self, ids: Sequence[int]) -> dict[int, str]:
        """Environment id -> name for the ids that still exist."""
        if not ids:
            return {}
        stmt = select(Environment.id, Environment.name).where(Environment.id.in_(set(ids)))
        return {row[0]: row[1] for row in self.session.execute(stmt).all()}


def _defer_material() -> Any:
    return defer(_V.material, raiseload=True)
