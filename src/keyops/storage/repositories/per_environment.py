"""Queries shared by resources that hold one row per environment (certificates, keys,
keystores); every lookup is scoped by project."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, delete, exists, false, func, insert, select, update
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from keyops.storage.models import Environment, Project
from keyops.storage.prepared import Prepared
from keyops.storage.repositories.paging import (
    SORT_NOT_AFTER,
    ListQuery,
    apply_page,
    count_of,
    name_starts_with,
)

P = TypeVar("P", bound=Any)
C = TypeVar("C", bound=Any)


_GET_STATEMENTS: dict[tuple[type, bool], Any] = {}


class _CoreStatements:
    """A kind's write-path statements, built once: lock-and-read the resource, read its
    rows, save its columns, delete it."""

    def __init__(self, parent: Any, child: Any, parent_fk: str) -> None:
        table, rows = parent.__table__, child.__table__
        self.columns = [c.key for c in table.columns if c.key != "id"]
        self.row_columns = {c.key for c in rows.columns} - {"id"}
        self.lock = Prepared(
            select(*table.columns)
            .where(
                table.c.project_id == bindparam("project_id"),
                table.c.name == bindparam("name"),
            )
            .with_for_update()
        )
        self.rows = Prepared(
            select(*rows.columns)
            .where(rows.c[parent_fk] == bindparam("pid"))
            .order_by(rows.c.position)
        )
        self.save = Prepared(
            update(table)
            .where(table.c.id == bindparam("pk"))
            .values({c: bindparam(f"v_{c}") for c in self.columns})
        )
        self.delete = Prepared(delete(table).where(table.c.id == bindparam("pk")))
        self.delete_rows = Prepared(delete(rows).where(rows.c[parent_fk] == bindparam("pid")))
        self.insert_rows = Prepared(insert(rows))


_CORE: dict[type, _CoreStatements] = {}


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
        """The resource and its rows, or None.

        With ``for_update`` (a change is about to replace it) the resource comes from Core
        statements, not the ORM: the write path's hottest read, where loading entities
        cost more than the rest of the change. It is then a *transient* object, outside
        the session, whose changes only ``save`` or ``delete`` write.
        """
        if for_update:
            return self._get_for_update(project_id, name)
        stmt = self._get_statement()
        found = self.session.scalars(stmt, {"project_id": project_id, "name": name})
        return found.unique().first()

    @classmethod
    def _get_statement(cls) -> Any:
        """The by-name lookup, built once per kind."""
        key = (cls, False)
        stmt = _GET_STATEMENTS.get(key)
        if stmt is None:
            stmt = cls._with_rows(
                select(cls.parent).where(
                    cls.parent.project_id == bindparam("project_id"),
                    cls.parent.name == bindparam("name"),
                )
            )
            _GET_STATEMENTS[key] = stmt
        return stmt

    @classmethod
    def _core(cls) -> _CoreStatements:
        found = _CORE.get(cls)
        if found is None:
            found = _CORE[cls] = _CoreStatements(cls.parent, cls.child, cls.parent_fk)
        return found

    def _get_for_update(self, project_id: int, name: str) -> P | None:
        # Serialises concurrent writers of one resource on PostgreSQL (SQLite's writer
        # already holds the write lock). The rows are read by a second statement, after
        # the lock is granted: one joined statement would pair the locked (newest)
        # resource with rows from the snapshot taken before it waited, i.e. from before
        # the writer it waited for committed.
        core = self._core()
        locked = core.lock.execute(self.session, {"project_id": project_id, "name": name})
        if not locked:
            return None
        found = locked[0]
        resource = self.parent(**found._asdict())
        stored = core.rows.execute(self.session, {"pid": found.id})
        set_committed_value(resource, "environments", [self.child(**r._asdict()) for r in stored])
        return resource  # type: ignore[no-any-return]

    def save(self, resource: P) -> None:
        """Write a changed resource's own columns (one statement; its rows are written by
        ``replace_environments``)."""
        core = self._core()
        values = {f"v_{c}": getattr(resource, c) for c in core.columns}
        core.save.execute(self.session, {"pk": resource.id, **values})

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

    def page(
        self, project_id: int, query: ListQuery, *, only_ids: Collection[int] | None = None
    ) -> tuple[Sequence[P], dict[int, str], int | None]:
        """``listing`` with the query's filters, sort and page (and only ``only_ids`` if
        given), plus the total count when paged: at most three statements, whatever the
        count (resources with their rows, the count, environment names).

        ``query.until`` needs a ``not_after`` column on ``child`` (certificates); a kind
        whose dates live elsewhere passes the matching ids as ``only_ids`` instead.
        """
        conditions = self._conditions(project_id, query, only_ids)
        rows = joinedload(self.parent.environments)
        for column in self.list_deferred:
            rows = rows.defer(getattr(self.child, column), raiseload=True)
        if query.sort == SORT_NOT_AFTER:
            first = self._soonest_not_after()
            order = [first.desc().nulls_last() if query.descending else first.nulls_last()]
        else:
            order = [self.parent.name.desc() if query.descending else self.parent.name]
        stmt = select(self.parent).where(*conditions).order_by(*order, self.parent.id)
        stmt = apply_page(stmt.options(rows), query)
        resources = self.session.scalars(stmt).unique().all()
        total = count_of(self.session, self.parent, conditions) if query.paged else None
        return resources, self.environment_names_of(resources), total

    def _conditions(
        self, project_id: int, query: ListQuery, only_ids: Collection[int] | None
    ) -> list[Any]:
        parent, child = self.parent, self.child
        conditions: list[Any] = [parent.project_id == project_id]
        if query.name_prefix is not None:
            conditions.append(name_starts_with(parent.name, query.name_prefix))
        if only_ids is not None:
            conditions.append(parent.id.in_(list(only_ids)) if only_ids else false())
        row: list[Any] = []
        if query.environment is not None:
            row += [child.environment_id == Environment.id, Environment.name == query.environment]
        if query.until is not None:
            # The same row: "expiring in that environment" when both are given.
            row.append(child.not_after <= query.until)
        if row:
            fk = getattr(child, self.parent_fk)
            conditions.append(exists().where(fk == parent.id, *row))
        return conditions

    def _soonest_not_after(self) -> Any:
        fk = getattr(self.child, self.parent_fk)
        return (
            select(func.min(self.child.not_after))
            .where(fk == self.parent.id)
            .correlate(self.parent)
            .scalar_subquery()
        )

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
        core = self._core()
        core.delete_rows.execute(self.session, {"pid": resource.id})
        values = []
        for row in rows:
            setattr(row, self.parent_fk, resource.id)
            values.append({k: v for k, v in vars(row).items() if k in core.row_columns})
        core.insert_rows.executemany(self.session, values)
        set_committed_value(resource, "environments", list(rows))

    def delete(self, resource: P) -> None:
        """Remove the resource; the database removes its rows and clears the source of
        JWKs derived from it (foreign keys)."""
        self._core().delete.execute(self.session, {"pk": resource.id})

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
