"""Engine and session factory: the one place that opens, commits and rolls back.

Every wait on the database is bounded, so an outage turns into an error (answered 503
by the API) within a known time instead of a hung request: opening a connection by
the connect timeout, a statement by the server's ``statement_timeout``, and any other
wait for a PostgreSQL server that went silent by ``_BoundedConnection``. The pool
checks a connection before handing it out and reconnects, so service resumes by itself
when the database is back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.errors import _WaitTimeout
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from keyops.config import Settings

# Primary keys are INTEGER columns (32-bit on PostgreSQL): a larger id names no row, and
# asking the database about it would be a driver error rather than "not found".
MAX_ROW_ID = 2**31 - 1
# How much longer than a statement's timeout keyops waits for a server that says nothing
# (the server itself cancels the statement at the timeout and says so).
SILENCE_MARGIN_SECONDS = 2.0


def _sqlite_pragmas(busy_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers proceed during a write; busy_timeout makes concurrent writers
        # queue instead of failing at once with "database is locked".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


class _BoundedConnection(psycopg.AsyncConnection[Any]):
    """A psycopg connection that stops waiting for a server gone silent.

    ``statement_timeout`` only helps while the server can answer; behind a dead network
    path a query would wait for ever. A wait past the bound closes the connection (its
    state is unknown), which SQLAlchemy then discards from the pool.
    """

    wait_bound: float | None = None

    # The signature of psycopg's own wait(), which it calls for every round trip.
    async def wait(
        self,
        gen: Any,
        interval: float = 0.1,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        try:
            return await super().wait(gen, interval, timeout if timeout else self.wait_bound)
        except _WaitTimeout:
            self.pgconn.finish()
            raise psycopg.OperationalError("the database server did not answer in time") from None


def _bounded_connect(bound: float) -> Any:
    async def connect(*args: Any, **kwargs: Any) -> _BoundedConnection:
        connection = await _BoundedConnection.connect(*args, **kwargs)
        connection.wait_bound = bound
        return connection

    return connect


def _sqlite_begin_immediate(conn: Any) -> None:
    # A deferred SQLite transaction that reads and then writes can fail with
    # SQLITE_BUSY without waiting; taking the write lock up front serialises writers.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Owns the async engine of one database and hands out sessions."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        connect_timeout: int = 5,
        statement_timeout: float = 15.0,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": statement_timeout}
        else:
            kwargs.update(
                pool_size=10,
                max_overflow=10,
                pool_pre_ping=True,
                # A request waiting for a free connection gives up like a slow statement.
                pool_timeout=statement_timeout,
                connect_args={
                    "connect_timeout": connect_timeout,
                    "options": f"-c statement_timeout={int(statement_timeout * 1000)}",
                    "async_creator_fn": _bounded_connect(
                        statement_timeout + SILENCE_MARGIN_SECONDS
                    ),
                },
            )
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            sync_engine: Engine = self.engine.sync_engine
            event.listen(sync_engine, "connect", _sqlite_pragmas(int(statement_timeout * 1000)))
            # Let SQLAlchemy, not the driver, decide when a transaction starts.
            event.listen(
                sync_engine,
                "connect",
                lambda dbapi_conn, _rec: setattr(dbapi_conn, "isolation_level", None),
            )
            event.listen(sync_engine, "begin", _sqlite_begin_immediate)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def of(cls, settings: Settings) -> Database:
        """The database the settings point at, with their timeouts."""
        return cls(
            settings.async_database_url,
            connect_timeout=settings.database_connect_timeout_seconds,
            statement_timeout=settings.database_statement_timeout_seconds,
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits if the block succeeds, rolls back if it raises."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
