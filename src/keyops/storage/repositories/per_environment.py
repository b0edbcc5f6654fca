"""Queries shared by resources that hold one row per environment (certificates, keys,
keystores); every lookup is scoped by project."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from keyops.storage.models import Environment, Project

P = TypeVar("P", bound=Any)
C = TypeVar("C", bound=Any)


_GET_STATEMENTS: dict[tuple[type, bool], Any] = {}


class PerEnvironmentRepository(Generic[P, C]):
    """``parent`` has ``project_id``, ``name`` and an ``environments`` relationship to
    ``child`` rows, which point back through ``parent_fk`` and carry ``environment_id``."""

    parent: type[P]
    child: type[C]
    parent_fk: str
    # Columns of ``child`` that lists do not show, hence never load.
    list_deferred: tuple[str, ...] = ()

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, project_id: int, name: str, *, for_update: bool = False) -> P | None:
        stmt = self._get_statement(for_update)
        found = self.session.scalars(stmt, {"project_id": project_id, "name": name})
        return found.unique().first()

    @classmethod
    def _get_statement(cls, for_update: bool) -> Any:
        """The by-name lookup, built once per kind (every change of a resource runs it)."""
        key = (cls, for_update)
        stmt = _GET_STATEMENTS.get(key)
        if stmt is None:
            stmt = select(cls.parent).where(
                cls.parent.project_id == bindparam("project_id"),
                cls.parent.name == bindparam("name"),
            )
            if for_update:
                # Serialises concurrent writers of one resource on PostgreSQL (SQLite's
                # writer already holds the write lock). The rows are loaded by a second
                # statement, after the lock is granted: one joined statement would pair
                # the locked (newest) resource with rows from the snapshot taken before
                # it waited, i.e. from before the writer it waited for committed.
                stmt = stmt.options(selectinload(cls.parent.environments)).with_for_update()
            else:
                stmt = cls._with_rows(stmt)
            _GET_STATEMENTS[key] = stmt
        return stmt

    def get_by_id(self, resource_id: int) -> P | None:
        stmt = self._with_rows(select(self.parent).where(self.parent.id == resource_id))
        return (self.session.scalars(stmt)).unique().first()

    def list_for_project(self, project_id: int) -> Sequence[P]:
        """The project's resources with their rows, in one statement; the columns a list
        does not show (``list_deferred``) are not loaded, and reading them raises."""
        rows = joinedload(self.parent.environments)
        for column in self.list_deferred:
            rows = rows.defer(getattr(self.child, column), raiseload=True)
        stmt = (
            select(self.parent)
            .where(self.parent.project_id == project_id)
            .order_by(self.parent.name)
            .options(rows)
        )
        return (self.session.scalars(stmt)).unique().all()

    def in_environment(self, environment_id: int) -> Sequence[tuple[C, P, str]]:
        """Every row deployed to the environment, with its resource and project name, in
        one statement (the resource's own rows are not loaded)."""
        fk = getattr(self.child, self.parent_fk)
        stmt = (
            select(self.child, self.parent, Project.name)
            .join(self.parent, self.parent.id == fk)
            .join(Project, Project.id == self.parent.project_id)
            .where(self.child.environment_id == environment_id)
        )
        return [(row, parent, name) for row, parent, name in self.session.execute(stmt).all()]

    def listing(self, project_id: int) -> tuple[Sequence[P], dict[int, str]]:
        """The project's resources and the names of every environment they are in: two
        statements, whatever the count."""
        resources = self.list_for_project(project_id)
        return resources, self.environment_names_of(resources)

    @classmethod
    def _with_rows(cls, stmt: Any) -> Any:
        """Load the resource and its rows in one statement, hence from one snapshot.

        PostgreSQL's READ COMMITTED takes a snapshot per statement: loading the rows in
        a second query could pair them with the description of the version before a
        concurrent update committed, a state that never existed.
        """
        return stmt.options(joinedload(cls.parent.environments))

    def add(self, resource: P) -> P:
        self.session.add(resource)
        self.session.flush()
        return resource

    def replace_environments(self, resource: P, rows: Sequence[C]) -> None:
        """Swap every per-environment row of the resource, within the transaction.

        Two bulk statements on the session's connection (delete, then one multi-row
        insert: the old rows must be gone before new ones claim their unique values);
        ``resource.environments`` then holds the new rows, in order.
        """
        table = self.child.__table__
        columns = {c.key for c in table.columns} - {"id"}
        conn = self.session.connection()
        conn.execute(delete(table).where(table.c[self.parent_fk] == resource.id))
        values = []
        for row in rows:
            setattr(row, self.parent_fk, resource.id)
            values.append({k: v for k, v in vars(row).items() if k in columns})
        if values:
            conn.execute(insert(table), values)
        set_committed_value(resource, "environments", list(rows))

    def delete(self, resource: P) -> None:
        self.session.delete(resource)
        self.session.flush()

    def environment_names(self, resource: P) -> dict[int, str]:
        """Environment id -> name for the resource's rows."""
        return self.environment_names_of([resource])

    def environment_names_of(self, resources: Sequence[P]) -> dict[int, str]:
        """Environment id -> name for the rows of all these resources, in one statement."""
        ids = {row.environment_id for r in resources for row in r.environments}
        if not ids:
            return {}
        stmt = select(Environment.id, Environment.name).where(Environment.id.in_(ids))
        return {row[0]: row[1] for row in (self.session.execute(stmt)).all()}
