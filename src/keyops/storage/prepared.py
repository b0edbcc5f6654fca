"""Core statements of the write path, compiled once and run straight on the DBAPI cursor.

A change runs about fifteen statements. Through ``Connection.execute`` each one paid
SQLAlchemy's per-execution machinery (execution context, cache key, result proxy,
events): about half of the writer thread's time, several times what SQLite itself took.
``Prepared`` keeps SQLAlchemy as the one place SQL is written (the statement is ordinary
Core, rendered by the session's dialect) but does that work once per dialect, then per
execution only converts the parameters with their column types' processors, sends the
rendered text on the session's own connection (hence in its transaction) and converts
the result columns back.

What it does not do: ORM entities, SQLAlchemy events (``before_cursor_execute`` does not
see these statements) and implicit type coercion beyond the columns' own processors.
Use it for the statements every change runs; everything else keeps ``session.execute``.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

__all__ = ["Prepared"]

Processor = Callable[[Any], Any]
_UNSET = object()


class _Rendered:
    """One statement as one dialect runs it, for one set of parameter names."""

    __slots__ = (
        "compiled",
        "defaults",
        "expanded",
        "expanding",
        "names",
        "positional",
        "prefetch",
        "procs",
        "sql",
    )

    def __init__(self, statement: Any, dialect: Dialect, keys: Sequence[str]) -> None:
        # An INSERT renders the columns its parameters name (as SQLAlchemy does).
        column_keys = list(keys) if isinstance(statement, Insert) else None
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.compiled = compiled
        self.sql: str = compiled.string
        self.positional = dialect.paramstyle in ("qmark", "numeric", "format")
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.expanding = tuple(n for n, b in compiled.binds.items() if b.expanding)
        # Expanded text and positional names, per tuple of the lists' lengths.
        self.expanded: dict[tuple[int, ...], tuple[str, tuple[str, ...]] | None] = {}
        procs: dict[str, Processor] = {}
        defaults: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                procs[name] = proc
            if not bind.required and not bind.expanding:
                defaults[name] = bind.effective_value
        self.procs = procs
        # Python-side column defaults of an INSERT's unnamed columns, as SQLAlchemy
        # would fill them (a callable default takes an execution context: none here).
        self.prefetch = [
            (c.key, c.default) for c in getattr(compiled, "insert_prefetch", ()) if c.default
        ]
        self.defaults = {k: procs[k](v) if k in procs else v for k, v in defaults.items()}

    def args(self, params: Mapping[str, Any]) -> tuple[str, Any]:
        values = dict(self.defaults)
        for key, default in self.prefetch:
            if key not in params:
                value = default.arg(None) if default.is_callable else default.arg
                values[key] = self.procs[key](value) if key in self.procs else value
        procs = self.procs
        for key, value in params.items():
            proc = procs.get(key)
            if proc is None:
                values[key] = value
            elif (
                isinstance(value, list | tuple)
                and key in self.compiled.binds
                and (self.compiled.binds[key].expanding)
            ):
                values[key] = [proc(v) for v in value]
            else:
                values[key] = proc(value)
        if self.expanding:
            return self._expand(values)
        if self.positional:
            return self.sql, tuple(values[n] for n in self.names)
        return self.sql, values

    def many(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The parameter sets of an executemany whose rows all name the same keys (no IN
        lists): the per-column plan is made once, and a column whose value is the same
        object as the row before's (a change's timestamp, its revision) is converted
        once."""
        procs = self.procs
        prefetch = dict(self.prefetch)
        first = rows[0]
        if self.positional:
            names: tuple[str, ...] = self.names
        else:
            names = tuple(dict.fromkeys([*self.defaults, *prefetch, *first]))
        # Per output column: 0 = from the row, 1 = a Python-side default, 2 = a constant.
        plan: list[tuple[int, Any, Processor | None]] = []
        for name in names:
            if name in first:
                plan.append((0, name, procs.get(name)))
            elif name in prefetch:
                plan.append((1, prefetch[name], procs.get(name)))
            else:
                plan.append((2, self.defaults[name], None))
        last_raw: list[Any] = [_UNSET] * len(plan)
        last_out: list[Any] = [None] * len(plan)
        out: list[Any] = []
        for row in rows:
            values = []
            for i, (source, what, proc) in enumerate(plan):
                if source == 0:
                    value = row[what]
                    if proc is not None:
                        if value is last_raw[i]:
                            value = last_out[i]
                        else:
                            last_raw[i] = value
                            value = last_out[i] = proc(value)
                elif source == 1:
                    value = what.arg(None) if what.is_callable else what.arg
                    if proc is not None:
                        value = proc(value)
                else:
                    value = what
                values.append(value)
            out.append(tuple(values) if self.positional else dict(zip(names, values, strict=True)))
        return out

    def _expand(self, values: dict[str, Any]) -> tuple[str, Any]:
        """An IN list's parameters: SQLAlchemy renders ``name_1 .. name_n`` for a list of
        n; the text is rendered once per set of lengths."""
        lengths = tuple(len(values[k]) for k in self.expanding)
        flat = {k: v for k, v in values.items() if k not in self.expanding}
        for key in self.expanding:
            for i, item in enumerate(values[key], 1):
                flat[f"{key}_{i}"] = item
        if lengths not in self.expanded:
            state = self.compiled.construct_expanded_state(values)
            names = tuple(state.positiontup or ())
            usable = all(lengths) and all(n in flat for n in names)
            self.expanded[lengths] = (state.statement, names) if usable else None
        found = self.expanded[lengths]
        if found is None:  # an empty list, or names not as expected: render each time
            state = self.compiled.construct_expanded_state(values)
            if self.positional:
                return state.statement, state.positional_parameters
            return state.statement, state.parameters
        sql, names = found
        if self.positional:
            return sql, tuple(flat[n] for n in names)
        return sql, flat


def _driver(session: Session) -> tuple[Dialect, Any]:
    """The session's dialect and DBAPI connection, looked up once per unit of work (a
    session is one transaction in ``storage/db.py``, which alone ends it)."""
    found = session.info.get("keyops_driver")
    if found is None:
        conn = session.connection()
        found = session.info["keyops_driver"] = (conn.dialect, conn.connection.driver_connection)
    return found


class Prepared:
    """A Core statement run without SQLAlchemy's per-execution work (see the module)."""

    __slots__ = ("_columns", "_rendered", "_returns", "statement")

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        # Whether its rows are wanted: a dialect may add RETURNING of its own to an
        # INSERT (PostgreSQL's primary key), which nobody asked for.
        self._returns = bool(list(statement.exported_columns))
        self._rendered: dict[tuple[str, tuple[str, ...]], _Rendered] = {}
        self._columns: dict[str, tuple[type, list[Processor | None]]] = {}

    def _for(self, dialect: Dialect, keys: tuple[str, ...]) -> _Rendered:
        found = self._rendered.get((dialect.name, keys))
        if found is None:
            found = self._rendered[(dialect.name, keys)] = _Rendered(self.statement, dialect, keys)
        return found

    def _row_type(self, dialect: Dialect, names: list[str]) -> tuple[type, list[Processor | None]]:
        found = self._columns.get(dialect.name)
        if found is None:
            columns = list(self.statement.exported_columns)
            if len(columns) != len(names):
                raise RuntimeError("Prepared: the result's columns are not the statement's")
            procs = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
            found = self._columns[dialect.name] = (namedtuple("Row", names, rename=True), procs)
        return found

    def execute(self, session: Session, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Run it once in the session's transaction; the rows it returns, if any."""
        dialect, driver = _driver(session)
        params = params or {}
        rendered = self._for(dialect, tuple(sorted(params)))
        sql, args = rendered.args(params)
        cursor = driver.cursor()
        try:
            cursor.execute(sql, args)
            if not self._returns or cursor.description is None:
                return []
            row_type, procs = self._row_type(dialect, [d[0] for d in cursor.description])
            return [
                row_type(*(p(v) if p is not None else v for p, v in zip(procs, raw, strict=True)))
                for raw in cursor.fetchall()
            ]
        finally:
            cursor.close()

    def executemany(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run it once per parameter set (all sets name the same parameters)."""
        if not rows:
            return
        dialect, driver = _driver(session)
        keys = tuple(sorted(rows[0]))
        rendered = self._for(dialect, keys)
        if rendered.expanding or any(len(row) != len(keys) for row in rows):
            for row in rows:
                self.execute(session, row)
            return
        sql = rendered.sql
        args = rendered.many(rows)
        cursor = driver.cursor()
        try:
            cursor.executemany(sql, args)
        finally:
            cursor.close()
