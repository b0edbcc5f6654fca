"""Queries on environments, including which projects may use them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from keyops.storage.models import Environment, EnvironmentProject
from keyops.storage.prepared import Prepared


def _usable_by(project_id: Any) -> Any:
    """Environments that serve every project or are limited to include this one."""
    limited = exists().where(EnvironmentProject.environment_id == Environment.id)
    allowed = exists().where(
        EnvironmentProject.environment_id == Environment.id,
        EnvironmentProject.project_id == project_id,
    )
    return or_(~limited, allowed)


# Built once: every change resolves its environments with it.
_USABLE_NAMED = Prepared(
    select(*Environment.__table__.columns).where(
        Environment.name.in_(bindparam("names", expanding=True)),
        _usable_by(bindparam("project_id")),
    )
)


class EnvironmentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_name(self, name: str) -> Environment | None:
        return self.session.scalar(select(Environment).where(Environment.name == name))

    def serving_tls_from(self, project_name: str, keystore_name: str) -> Sequence[Environment]:
        """The environments whose gateway nodes serve TLS with this keystore's entry."""
        stmt = select(Environment).where(
            Environment.tls_project == project_name, Environment.tls_keystore == keystore_name
        )
        return self.session.scalars(stmt.order_by(Environment.name)).all()

    def list_all(self) -> Sequence[Environment]:
        return (self.session.scalars(select(Environment).order_by(Environment.name))).all()

    def list_for_project(self, project_id: int) -> Sequence[Environment]:
        """Environments that serve every project or are limited to include this one."""
        stmt = select(Environment).where(_usable_by(project_id)).order_by(Environment.name)
        return (self.session.scalars(stmt)).all()

    def usable_by_projects(self, project_ids: Iterable[int]) -> dict[int, list[Environment]]:
        """Project id -> the environments it may use (ordered by name), in two statements."""
        ids = set(project_ids)
        if not ids:
            return {}
        envs = self.list_all()
        limits: dict[int, set[int]] = {}
        for env_id, project_id in self.session.execute(
            select(EnvironmentProject.environment_id, EnvironmentProject.project_id)
        ):
            limits.setdefault(env_id, set()).add(project_id)
        return {p: [e for e in envs if e.id not in limits or p in limits[e.id]] for p in ids}

    def get_many_for_project(self, names: Iterable[str], project_id: int) -> dict[str, Environment]:
        """The named environments this project may use, keyed by name: transient
        objects (read for a change's checks, never written through)."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        found = _USABLE_NAMED.execute(self.session, {"names": wanted, "project_id": project_id})
        return {row.name: Environment(**row._asdict()) for row in found}

    def get_many(self, environment_ids: Iterable[int]) -> Sequence[Environment]:
        """The environments of these ids that exist, by id, in one statement."""
        ids = set(environment_ids)
        if not ids:
            return []
        stmt = select(Environment).where(Environment.id.in_(ids)).order_by(Environment.id)
        return (self.session.scalars(stmt)).all()

    def add(self, environment: Environment, project_ids: Iterable[int] = ()) -> Environment:
        self.session.add(environment)
        self.session.flush()
        self.session.add_all(
            EnvironmentProject(environment_id=environment.id, project_id=p) for p in project_ids
        )
        self.session.flush()
        return environment

    def limited_to(self, environment_id: int) -> list[int]:
        stmt = select(EnvironmentProject.project_id).where(
            EnvironmentProject.environment_id == environment_id
        )
        return list((self.session.scalars(stmt)).all())

    def delete(self, environment: Environment) -> None:
        self.session.execute(
            delete(EnvironmentProject).where(EnvironmentProject.environment_id == environment.id)
        )
        self.session.delete(environment)
        self.session.flush()

    def set_status(self, environment_ids: Iterable[int], status: str) -> None:
        ids = list(environment_ids)
        if ids:
            self.session.execute(
                update(Environment).where(Environment.id.in_(ids)).values(status=status)
            )
