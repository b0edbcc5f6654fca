"""Desired state per environment: revisions, deployed artifacts, confirmations, attempts.

Everything a change writes for its environments, in bulk statements, inside the
change's own transaction; and what a roll-out records once the environments answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from keyops.storage.models import (
    Certificate,
    DeployedArtifact,
    DeploymentAttempt,
    Environment,
    GatewayNode,
    Project,
    RevisionCounter,
)
from keyops.storage.models.base import utcnow

SEQUENCE = "keyops_revision_seq"


@dataclass(frozen=True, slots=True)
class EnvironmentState:
    id: int
    name: str
    target: str
    revision: int
    applied_revision: int


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    kind: str
    project: str
    name: str
    content: bytes
    sealed: bool
    alias: str | None
    present: bool
    revision: int


def _state(row: Any) -> EnvironmentState:
    return EnvironmentState(row.id, row.name, row.target, row.revision, row.applied_revision)


class DesiredStateRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"

    def lock(self, environment_ids: Iterable[int]) -> dict[int, EnvironmentState]:
        """The environments' states, locked until commit (in id order: no deadlocks).

        Locking before the revision is taken makes every environment see its changes
        commit in revision order, so a node that saw revision N never misses a smaller
        one committed later. SQLite's single writer gives that order by itself.
        """
        ids = sorted(set(environment_ids))
        if not ids:
            return {}
        stmt = (
            select(
                Environment.id,
                Environment.name,
                Environment.target,
                Environment.revision,
                Environment.applied_revision,
            )
            .where(Environment.id.in_(ids))
            .order_by(Environment.id)
        )
        if self.postgres:
            stmt = stmt.with_for_update()
        return {row.id: _state(row) for row in self.session.execute(stmt)}

    def next_revision(self) -> int:
        """The next global revision: a sequence on PostgreSQL (no hot row), the counter
        row on SQLite (whose writers are serialised anyway)."""
        if self.postgres:
            value = self.session.scalar(select(func.nextval(SEQUENCE)))
        else:
            value = self.session.scalar(
                update(RevisionCounter)
                .where(RevisionCounter.id == 1)
                .values(value=RevisionCounter.value + 1)
                .returning(RevisionCounter.value)
            )
        assert value is not None, "revision counter missing: migrations not applied?"
        return int(value)

    def current_revision(self) -> int:
        if self.postgres:
            return int(self.session.scalar(select(func.max(Environment.revision))) or 0)
        return int(
            self.session.scalar(select(RevisionCounter.value).where(RevisionCounter.id == 1)) or 0
        )

    def write_artifacts(self, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert artifact rows (tombstones included); an older revision never wins."""
        if not rows:
            return
        insert_ = pg_insert if self.postgres else sqlite_insert
        stmt = insert_(DeployedArtifact)
        stmt = stmt.on_conflict_do_update(
            index_elements=["environment_id", "kind", "project", "name"],
            set_={
                c: stmt.excluded[c]
                for c in (
                    "content",
                    "sealed",
                    "content_hash",
                    "alias",
                    "present",
                    "revision",
                    "deployed_at",
                )
            },
            where=DeployedArtifact.revision <= stmt.excluded.revision,
        )
        self.session.connection().execute(stmt, list(rows))

    def connected_counts(self, environment_ids: Iterable[int], since: datetime) -> dict[int, int]:
        """Environment id -> gateway nodes connected now (heard from since ``since``)."""
        ids = list(environment_ids)
        if not ids:
            return {}
        stmt = (
            select(GatewayNode.environment_id, func.count())
            .where(
                GatewayNode.environment_id.in_(ids),
                GatewayNode.connected,
                GatewayNode.last_seen >= since,
            )
            .group_by(GatewayNode.environment_id)
        )
        return {row[0]: int(row[1]) for row in self.session.execute(stmt)}

    def set_revision(self, environment_ids: Iterable[int], revision: int, *, applied: bool) -> None:
        """Record that the environments' desired state is now at ``revision`` (and, with
        ``applied``, that their target already holds it)."""
        ids = list(environment_ids)
        if not ids:
            return
        values: dict[str, Any] = {"revision": func.max(Environment.revision, revision)}
        if self.postgres:
            values["revision"] = func.greatest(Environment.revision, revision)
        if applied:
            values["applied_revision"] = values["revision"]
        self.session.execute(update(Environment).where(Environment.id.in_(ids)).values(values))

    def confirm(self, confirmations: Iterable[tuple[int, int]]) -> None:
        """Record (environment id, revision) pairs a target confirmed; never goes back."""
        greatest = func.greatest if self.postgres else func.max
        for env_id, revision in confirmations:
            self.session.execute(
                update(Environment)
                .where(Environment.id == env_id)
                .values(applied_revision=greatest(Environment.applied_revision, revision))
            )

    def add_attempts(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            at = utcnow()
            self.session.connection().execute(
                insert(DeploymentAttempt), [{"at": at, **row} for row in rows]
            )

    def behind(self) -> list[EnvironmentState]:
        """Environments whose target has not confirmed their newest desired state."""
        stmt = select(
            Environment.id,
            Environment.name,
            Environment.target,
            Environment.revision,
            Environment.applied_revision,
        ).where(Environment.applied_revision < Environment.revision)
        return [_state(row) for row in self.session.execute(stmt)]

    def state(self, environment_id: int) -> EnvironmentState | None:
        stmt = select(
            Environment.id,
            Environment.name,
            Environment.target,
            Environment.revision,
            Environment.applied_revision,
        ).where(Environment.id == environment_id)
        row = self.session.execute(stmt).first()
        return _state(row) if row is not None else None

    def artifacts(self, environment_id: int) -> list[StoredArtifact]:
        """Every artifact row of the environment, tombstones included."""
        stmt = (
            select(
                DeployedArtifact.kind,
                DeployedArtifact.project,
                DeployedArtifact.name,
                DeployedArtifact.content,
                DeployedArtifact.sealed,
                DeployedArtifact.alias,
                DeployedArtifact.present,
                DeployedArtifact.revision,
            )
            .where(DeployedArtifact.environment_id == environment_id)
            .order_by(DeployedArtifact.kind, DeployedArtifact.project, DeployedArtifact.name)
        )
        return [StoredArtifact(*row) for row in self.session.execute(stmt)]

    def rows(self, environment_id: int) -> Sequence[DeployedArtifact]:
        """Every artifact row of the environment, tombstones included, ordered for display."""
        stmt = (
            select(DeployedArtifact)
            .where(DeployedArtifact.environment_id == environment_id)
            .order_by(DeployedArtifact.kind, DeployedArtifact.project, DeployedArtifact.name)
        )
        return self.session.scalars(stmt).all()

    def recent_attempts(self, environment_id: int, limit: int) -> Sequence[DeploymentAttempt]:
        stmt = (
            select(DeploymentAttempt)
            .where(DeploymentAttempt.environment_id == environment_id)
            .order_by(DeploymentAttempt.id.desc())
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

    def confirmed_certificates(
        self, environment_id: int, project: str
    ) -> list[tuple[DeployedArtifact, str | None]]:
        """A project's certificates the environment's target confirmed holding, with the
        description of the certificate they came from (None if it is gone)."""
        stmt = (
            select(DeployedArtifact, Certificate.description)
            .join(Environment, Environment.id == DeployedArtifact.environment_id)
            .outerjoin(Project, Project.name == DeployedArtifact.project)
            .outerjoin(
                Certificate,
                (Certificate.project_id == Project.id)
                & (Certificate.name == DeployedArtifact.name),
            )
            .where(
                DeployedArtifact.environment_id == environment_id,
                DeployedArtifact.kind == "certificate",
                DeployedArtifact.project == project,
                DeployedArtifact.present,
                DeployedArtifact.revision <= Environment.applied_revision,
            )
            .order_by(DeployedArtifact.name)
        )
        return [(row, description) for row, description in self.session.execute(stmt)]
