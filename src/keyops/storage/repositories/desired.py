"""Desired state per environment: revisions, deployed artifacts, confirmations, attempts.

Everything a change writes for its environments, in bulk statements, inside the
change's own transaction; and what a roll-out records once the environments answered.

Public artifact content is stored once per distinct content (``artifact_contents``,
keyed by its SHA-256) and sealed content in its own artifact row: ``write_artifacts``
splits them, and every read of artifacts (``artifacts``, ``confirmed_certificates``)
joins the two back. ``remove_unused_contents`` (run by the reconciler) deletes content
no artifact row points at any more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Table,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from keyops.storage.models import (
    ArtifactContent,
    Certificate,
    DeployedArtifact,
    DeploymentAttempt,
    Environment,
    GatewayNode,
    Project,
    RevisionCounter,
)
from keyops.storage.models.base import UTCDateTime, utcnow
from keyops.storage.prepared import Prepared

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
    """A deployed-artifact row with its content, sealed or not, as stored."""

    kind: str
    project: str
    name: str
    content: bytes
    sealed: bool
    alias: str | None
    present: bool
    revision: int
    content_hash: str


def _state(row: Any) -> EnvironmentState:
    return EnvironmentState(row.id, row.name, row.target, row.revision, row.applied_revision)


_ENV: Table = Environment.__table__  # type: ignore[assignment]
_NODE: Table = GatewayNode.__table__  # type: ignore[assignment]
_COUNTER: Table = RevisionCounter.__table__  # type: ignore[assignment]
_ARTIFACT: Table = DeployedArtifact.__table__  # type: ignore[assignment]
_CONTENTS: Table = ArtifactContent.__table__  # type: ignore[assignment]
# A row's content: its own (sealed, or a tombstone's empty one) or the shared public one.
_CONTENT = func.coalesce(_CONTENTS.c.content, _ARTIFACT.c.content)
_WITH_CONTENT = _ARTIFACT.outerjoin(
    _CONTENTS,
    (_CONTENTS.c.content_hash == _ARTIFACT.c.content_hash) & (_ARTIFACT.c.sealed == false()),
)
_STORED_COLUMNS = (
    _ARTIFACT.c.kind,
    _ARTIFACT.c.project,
    _ARTIFACT.c.name,
    _CONTENT.label("content"),
    _ARTIFACT.c.sealed,
    _ARTIFACT.c.alias,
    _ARTIFACT.c.present,
    _ARTIFACT.c.revision,
    _ARTIFACT.c.content_hash,
)
_UPSERT_COLUMNS = (
    "content",
    "sealed",
    "content_hash",
    "alias",
    "present",
    "revision",
    "deployed_at",
)


def _connected_subquery() -> Any:
    return (
        select(func.count())
        .where(
            _NODE.c.environment_id == _ENV.c.id,
            _NODE.c.connected,
            _NODE.c.last_seen >= bindparam("since"),
        )
        .scalar_subquery()
    )


# Built once: the write path runs these on every change, and building a statement costs
# more than running it on SQLite.
_STATE_COLUMNS = (_ENV.c.id, _ENV.c.name, _ENV.c.target, _ENV.c.revision, _ENV.c.applied_revision)
_STATES = select(*_STATE_COLUMNS)
_LOCK_SELECT = (
    select(*_STATE_COLUMNS, _connected_subquery().label("nodes"))
    .where(_ENV.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_ENV.c.id)
)
_LOCK = Prepared(_LOCK_SELECT)
# NO KEY UPDATE: the rows of a change (certificate rows, JWKs, nodes) referencing the
# environment already hold KEY SHARE locks on it, which FOR UPDATE would wait for: two
# changes of one environment would deadlock.
_LOCK_PG = Prepared(_LOCK_SELECT.with_for_update(of=_ENV, key_share=True))
_NEXT_SQLITE = Prepared(
    update(_COUNTER)
    .where(_COUNTER.c.id == 1)
    .values(value=_COUNTER.c.value + 1)
    .returning(_COUNTER.c.value)
)
_NEXT_PG = Prepared(select(func.nextval(SEQUENCE)))


def _upsert(insert_: Any) -> Any:
    stmt = insert_(_ARTIFACT)
    return stmt.on_conflict_do_update(
        index_elements=["environment_id", "kind", "project", "name"],
        set_={c: stmt.excluded[c] for c in _UPSERT_COLUMNS},
        where=_ARTIFACT.c.revision <= stmt.excluded.revision,
    )


_UPSERT_SQLITE = Prepared(_upsert(sqlite_insert))
_UPSERT_PG = Prepared(_upsert(pg_insert))
_ADD_CONTENT = {
    postgres: Prepared(insert_(_CONTENTS).on_conflict_do_nothing(index_elements=["content_hash"]))
    for postgres, insert_ in ((False, sqlite_insert), (True, pg_insert))
}
# Public content no present artifact row points at (tombstones and sealed rows never do).
_USED_HASHES = select(_ARTIFACT.c.content_hash).where(
    _ARTIFACT.c.present, _ARTIFACT.c.sealed == false()
)
_UNUSED_CONTENT = _CONTENTS.c.content_hash.not_in(_USED_HASHES)


def _stored(row: Any) -> StoredArtifact:
    return StoredArtifact(*row[: len(_STORED_COLUMNS)])


def _set_revision(greatest: Any, *, applied: bool) -> Any:
    revision = greatest(_ENV.c.revision, bindparam("revision"))
    values: dict[str, Any] = {"revision": revision}
    if applied:
        values["applied_revision"] = revision
    return update(_ENV).where(_ENV.c.id.in_(bindparam("ids", expanding=True))).values(values)


_SET_REVISION = {
    (postgres, applied): Prepared(
        _set_revision(func.greatest if postgres else func.max, applied=applied)
    )
    for postgres in (False, True)
    for applied in (False, True)
}
_CONFIRM = {
    postgres: update(_ENV)
    .where(_ENV.c.id == bindparam("env_id"))
    .values(
        applied_revision=(func.greatest if postgres else func.max)(
            _ENV.c.applied_revision, bindparam("confirmed")
        )
    )
    for postgres in (False, True)
}
_INSERT_ATTEMPT = Prepared(insert(DeploymentAttempt))
_ATTEMPT: Table = DeploymentAttempt.__table__  # type: ignore[assignment]
# One successful attempt per artifact row a revision wrote to an environment, made from
# the rows themselves (undeploys first): what a commit that was itself the delivery did.
_DELIVERED_ATTEMPTS = insert(_ATTEMPT).from_select(
    [
        *("environment_id", "action", "kind", "project", "name", "content_hash"),
        *("revision", "success", "message", "at"),
    ],
    select(
        _ARTIFACT.c.environment_id,
        case((_ARTIFACT.c.present, literal("DEPLOY")), else_=literal("UNDEPLOY")),
        _ARTIFACT.c.kind,
        _ARTIFACT.c.project,
        _ARTIFACT.c.name,
        case((_ARTIFACT.c.present, _ARTIFACT.c.content_hash), else_=None),
        _ARTIFACT.c.revision,
        true(),
        bindparam("message"),
        bindparam("at", type_=UTCDateTime()),
    )
    .where(
        _ARTIFACT.c.environment_id == bindparam("env_id"),
        _ARTIFACT.c.revision == bindparam("revision"),
    )
    .order_by(_ARTIFACT.c.present, _ARTIFACT.c.kind, _ARTIFACT.c.project, _ARTIFACT.c.name),
)
_PROJECT: Table = Project.__table__  # type: ignore[assignment]
_BUMP_PROJECTS = Prepared(
    update(_PROJECT)
    .where(_PROJECT.c.name.in_(bindparam("names", expanding=True)))
    .values(content_revision=_PROJECT.c.content_revision + 1)
)
_BUMP_ALL_PROJECTS = update(_PROJECT).values(content_revision=_PROJECT.c.content_revision + 1)


@dataclass(frozen=True, slots=True)
class LockedEnvironment:
    state: EnvironmentState
    # Gateway nodes connected now (heard from within the node TTL).
    nodes: int


class DesiredStateRepository:
    """Core statements on one connection: this is the write path's hot loop."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"

    @property
    def _conn(self) -> Any:
        return self.session.connection()

    def lock(
        self, environment_ids: Iterable[int], *, nodes_since: datetime | None = None
    ) -> dict[int, LockedEnvironment]:
        """The environments' states and node counts (nodes that said hello, not goodbye,
        heard from since ``nodes_since``: ``gateway.member_nodes``), locked until commit (in id
        order: no deadlocks).

        Locking before the revision is taken makes every environment see its changes
        commit in revision order, so a node that saw revision N never misses a smaller
        one committed later. SQLite's single writer gives that order by itself.
        """
        ids = sorted(set(environment_ids))
        if not ids:
            return {}
        since = nodes_since or utcnow()
        rows = (_LOCK_PG if self.postgres else _LOCK).execute(
            self.session, {"ids": ids, "since": since}
        )
        return {row.id: LockedEnvironment(_state(row), int(row.nodes)) for row in rows}

    def next_revision(self) -> int:
        """The next global revision: a sequence on PostgreSQL (no hot row), the counter
        row on SQLite (whose writers are serialised anyway)."""
        found = (_NEXT_PG if self.postgres else _NEXT_SQLITE).execute(self.session)
        value = found[0][0] if found else None
        assert value is not None, "revision counter missing: migrations not applied?"
        return int(value)

    def current_revision(self) -> int:
        if self.postgres:
            return int(self.session.scalar(select(func.max(Environment.revision))) or 0)
        return int(
            self.session.scalar(select(RevisionCounter.value).where(RevisionCounter.id == 1)) or 0
        )

    def write_artifacts(self, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert artifact rows (tombstones included); an older revision never wins.

        A present row's public content is stored once under its hash (first, so no row
        ever points at missing content) and the row itself keeps none.
        """
        if not rows:
            return
        shared: dict[str, bytes] = {}
        written = []
        for row in rows:
            if row["present"] and not row["sealed"]:
                shared.setdefault(row["content_hash"], row["content"])
                row = {**row, "content": b""}
            written.append(row)
        if shared:
            _ADD_CONTENT[self.postgres].executemany(
                self.session, [{"content_hash": h, "content": c} for h, c in shared.items()]
            )
        (_UPSERT_PG if self.postgres else _UPSERT_SQLITE).executemany(self.session, written)

    def unused_contents(self) -> list[str]:
        """Hashes of stored public content no artifact row points at (one read)."""
        stmt = select(_CONTENTS.c.content_hash).where(_UNUSED_CONTENT)
        return list(self._conn.execute(stmt).scalars())

    def remove_unused_contents(self, hashes: Sequence[str]) -> int:
        """Delete these contents if still unused; returns how many went.

        On PostgreSQL the table is locked first (EXCLUSIVE: reads go on): a change that
        has stored a content its new rows will point at holds ROW EXCLUSIVE on it until
        it commits, so its rows are visible to the delete's check, and a change that
        starts afterwards stores the content again. SQLite's writers are serialised.
        """
        if not hashes:
            return 0
        if self.postgres:
            self._conn.execute(text("LOCK TABLE artifact_contents IN EXCLUSIVE MODE"))
        removed = 0
        for start in range(0, len(hashes), 500):  # bounded IN lists
            result = self._conn.execute(
                delete(_CONTENTS).where(
                    _CONTENTS.c.content_hash.in_(hashes[start : start + 500]), _UNUSED_CONTENT
                )
            )
            removed += result.rowcount or 0
        return removed

    def set_revision(self, environment_ids: Iterable[int], revision: int, *, applied: bool) -> None:
        """Record that the environments' desired state is now at ``revision`` (and, with
        ``applied``, that their target already holds it)."""
        ids = list(environment_ids)
        if ids:
            stmt = _SET_REVISION[(self.postgres, applied)]
            stmt.execute(self.session, {"ids": ids, "revision": revision})

    def confirm(self, confirmations: Iterable[tuple[int, int]]) -> None:
        """Record (environment id, revision) pairs a target confirmed; never goes back."""
        params = [{"env_id": e, "confirmed": r} for e, r in confirmations]
        if params:
            self._conn.execute(_CONFIRM[self.postgres], params)

    def bump_projects(self, names: Iterable[str] | None) -> None:
        """Count a change to these projects' resources (None: every project's)."""
        if names is None:
            self._conn.execute(_BUMP_ALL_PROJECTS)
            return
        wanted = sorted(set(names))
        if wanted:
            _BUMP_PROJECTS.execute(self.session, {"names": wanted})

    def add_attempts(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            at = utcnow()
            _INSERT_ATTEMPT.executemany(self.session, [{"at": at, **row} for row in rows])

    def add_delivered_attempts(self, revision: int, messages: dict[int, str]) -> None:
        """Record, for each environment (id -> message) whose delivery was this change's
        commit, a successful attempt per artifact row the revision wrote there."""
        at = utcnow()
        for env_id, message in messages.items():
            self._conn.execute(
                _DELIVERED_ATTEMPTS,
                {"env_id": env_id, "revision": revision, "message": message, "at": at},
            )

    def over_attempt_budget(self, keep: int) -> list[int]:
        """Environments holding more than ``keep`` attempts (one grouped read)."""
        table = DeploymentAttempt.__table__
        stmt = (
            select(table.c.environment_id)
            .group_by(table.c.environment_id)
            .having(func.count() > keep)
        )
        return list(self._conn.execute(stmt).scalars())

    def trim_attempts(self, environment_ids: Iterable[int], keep: int) -> int:
        """Keep the newest ``keep`` attempts of each environment; returns how many went."""
        table = DeploymentAttempt.__table__
        removed = 0
        for env_id in environment_ids:
            cutoff = self._conn.execute(
                select(table.c.id)
                .where(table.c.environment_id == env_id)
                .order_by(table.c.id.desc())
                .limit(1)
                .offset(keep)
            ).scalar()
            if cutoff is not None:
                result = self._conn.execute(
                    delete(DeploymentAttempt).where(
                        DeploymentAttempt.environment_id == env_id, DeploymentAttempt.id <= cutoff
                    )
                )
                removed += result.rowcount or 0
        return removed

    def behind(self) -> list[EnvironmentState]:
        """Environments whose target has not confirmed their newest desired state."""
        stmt = _STATES.where(_ENV.c.applied_revision < _ENV.c.revision)
        return [_state(row) for row in self._conn.execute(stmt)]

    def state(self, environment_id: int) -> EnvironmentState | None:
        row = self._conn.execute(_STATES.where(_ENV.c.id == environment_id)).first()
        return _state(row) if row is not None else None

    def artifacts(self, environment_id: int, *, present: bool = False) -> list[StoredArtifact]:
        """Every artifact row of the environment, tombstones included unless ``present``."""
        stmt = (
            select(*_STORED_COLUMNS)
            .select_from(_WITH_CONTENT)
            .where(_ARTIFACT.c.environment_id == environment_id)
            .order_by(_ARTIFACT.c.kind, _ARTIFACT.c.project, _ARTIFACT.c.name)
        )
        if present:
            stmt = stmt.where(_ARTIFACT.c.present)
        return [_stored(row) for row in self._conn.execute(stmt)]

    def rows(self, environment_id: int) -> Sequence[DeployedArtifact]:
        """Every artifact row of the environment, tombstones included, ordered for display.

        The entities' ``content`` is empty for public content (``artifact_contents``
        holds it): for the bytes, read ``artifacts``."""
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
    ) -> list[tuple[StoredArtifact, str | None]]:
        """A project's certificates the environment's target confirmed holding, with the
        description of the certificate they came from (None if it is gone)."""
        stmt = (
            select(*_STORED_COLUMNS, Certificate.description)
            .select_from(_WITH_CONTENT)
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
        return [(_stored(row), row.description) for row in self.session.execute(stmt)]
