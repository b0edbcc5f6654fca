"""Engines, the unit of work and the threads it runs in: the one place that commits.

Every request's database work is ONE synchronous function run in a worker thread
(``await db.read(fn)`` / ``await db.write(fn)``): one thread hop per unit of work instead
of one async driver hop per statement (see docs/architecture.md for the measurements).

- SQLite: one dedicated writer thread with one connection serialises writers without
  busy-wait sleeps (``BEGIN IMMEDIATE`` only guards against other processes); readers
  use their own connections and deferred transactions, so under WAL a read never takes
  the write lock and never waits for a writer.
- PostgreSQL: a small pool of threads, each with a pooled synchronous psycopg
  connection, for reads and writes alike.

Every wait on the database is bounded, so an outage turns into an error (answered 503
by the API) within a known time instead of a hung request: opening a connection by
the connect timeout, a statement by the server's ``statement_timeout``, and any other
wait for a PostgreSQL server that went silent by ``_BoundedConnection``. The pool
checks a connection before handing it out when it has been idle or the database has
just failed (``_Liveness``) and reconnects, so service resumes by itself
when the database is back.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.errors import _WaitTimeout
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from keyops.config import to_sync_url
from keyops.storage import notify
from keyops.storage.writer_lock import WriterLock

if TYPE_CHECKING:
    from keyops.config import Settings

T = TypeVar("T")

# Primary keys are INTEGER columns (32-bit on PostgreSQL): a larger id names no row, and
# asking the database about it would be a driver error rather than "not found".
MAX_ROW_ID = 2**31 - 1
# How much longer than a statement's timeout keyops waits for a server that says nothing
# (the server itself cancels the statement at the timeout and says so).
SILENCE_MARGIN_SECONDS = 2.0
READER_THREADS = 4
PG_THREADS = 8
# What "the database can not be reached now" raises: answered 503 by the API, logged as
# one line (no traceback) by the background loops, which retry.
UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeoutError)


def _sqlite_pragmas(busy_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers proceed during a write. busy_timeout only matters between
        # processes (``serve --workers``); inside one, the writer thread serialises.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


class _BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection that stops waiting for a server gone silent.

    ``statement_timeout`` only helps while the server can answer; behind a dead network
    path a query would wait for ever. A wait past the bound closes the connection (its
    state is unknown), which SQLAlchemy then discards from the pool.
    """

    wait_bound: float | None = None

    # The signature of psycopg's own wait(), which it calls for every round trip.
    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        try:
            return super().wait(gen, interval, timeout if timeout else self.wait_bound)
        except _WaitTimeout:
            self.pgconn.finish()
            raise psycopg.OperationalError("the database server did not answer in time") from None


def _sqlite_engine(url: str, *, timeout: float, begin: str, pool_size: int, echo: bool) -> Engine:
    engine = create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=timeout,
        connect_args={"timeout": timeout, "check_same_thread": False},
    )
    event.listen(engine, "connect", _sqlite_pragmas(int(timeout * 1000)))
    # Sent straight to the driver: through SQLAlchemy it cost more than many statements.
    event.listen(engine, "begin", lambda conn: conn.connection.driver_connection.execute(begin))
    return engine


class _Liveness:
    """Checks a pooled PostgreSQL connection before handing it out, when that is needed.

    SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` on every checkout: a round trip per
    unit of work, as much as a short statement costs. A connection that is in steady use
    has just proved itself, so the check is only made when it has been idle for
    ``IDLE_SECONDS`` (the server or a proxy may have dropped it meanwhile) or while a
    recent failure says the database may have gone away (``suspect``). A connection the
    driver already knows is closed or broken is replaced without a round trip.
    """

    IDLE_SECONDS = 2.0
    SUSPECT_SECONDS = 30.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.suspect_until = 0.0
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)

    def suspect(self) -> None:
        """A unit of work failed as if the database went away: check every checkout for
        a while."""
        self.suspect_until = time.monotonic() + self.SUSPECT_SECONDS

    @staticmethod
    def _checkin(_dbapi: Any, record: Any) -> None:
        if record is not None:
            record.info["keyops_used_at"] = time.monotonic()

    def _checkout(self, dbapi: Any, record: Any, _proxy: Any) -> None:
        if dbapi.closed or dbapi.broken:
            raise DisconnectionError("the connection was closed")
        now = time.monotonic()
        used_at = record.info.get("keyops_used_at")
        if used_at is not None and now - used_at < self.IDLE_SECONDS and now > self.suspect_until:
            return
        try:
            alive = self.engine.dialect.do_ping(dbapi)
        except Exception as exc:
            raise DisconnectionError("the connection did not answer a ping") from exc
        if not alive:
            raise DisconnectionError("the connection did not answer a ping")


class Database:
    """Owns the engines of one database and runs units of work in their threads."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        connect_timeout: int = 5,
        statement_timeout: float = 15.0,
    ) -> None:
        self.url = to_sync_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.notifier = notify.Notifier()
        if self.is_sqlite:
            # The writer: one connection, used by one thread.
            self.engine: Engine = _sqlite_engine(
                self.url,
                timeout=statement_timeout,
                begin="BEGIN IMMEDIATE",
                pool_size=1,
                echo=echo,
            )
            self.read_engine: Engine = _sqlite_engine(
                self.url,
                timeout=statement_timeout,
                begin="BEGIN",
                pool_size=READER_THREADS,
                echo=echo,
            )
            self._liveness: _Liveness | None = None
            # Writers of several processes (serve --workers) queue here, not in SQLite's
            # sleeping busy handler (storage/writer_lock.py).
            path = self.engine.url.database
            self._writer_lock: WriterLock | None = None
            if path and path != ":memory:" and not path.startswith("file:"):
                self._writer_lock = WriterLock(f"{path}-writer.lock", statement_timeout)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="keyops-db-writer")
            self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="keyops-db-read")
        else:
            bound = statement_timeout + SILENCE_MARGIN_SECONDS
            self.engine = create_engine(
                self.url,
                echo=echo,
                pool_size=PG_THREADS,
                max_overflow=4,
                # A request waiting for a free connection gives up like a slow statement.
                pool_timeout=statement_timeout,
                connect_args={
                    "connect_timeout": connect_timeout,
                    "options": f"-c statement_timeout={int(statement_timeout * 1000)}",
                },
            )

            @event.listens_for(self.engine, "do_connect")
            def _connect(_dialect: Any, _rec: Any, cargs: Any, cparams: Any) -> Any:
                connection = _BoundedConnection.connect(*cargs, **cparams)
                connection.wait_bound = bound
                return connection

            self._liveness = _Liveness(self.engine)
            self._writer_lock = None
            self.read_engine = self.engine
            pool = ThreadPoolExecutor(PG_THREADS, thread_name_prefix="keyops-db")
            self._writer = self._readers = pool
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessionmaker = sessionmaker(self.read_engine, expire_on_commit=False)

    @classmethod
    def of(cls, settings: Settings) -> Database:
        """The database the settings point at, with their timeouts."""
        return cls(
            settings.async_database_url,
            connect_timeout=settings.database_connect_timeout_seconds,
            statement_timeout=settings.database_statement_timeout_seconds,
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # --- the unit of work --------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work in the calling thread: commits if the block succeeds."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
        notify.deliver(session, self.notifier)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction in the calling thread (never takes SQLite's write lock)."""
        # Closing (not rolling back) ends the transaction and keeps what was loaded
        # readable after the session is gone.
        with self.read_sessionmaker() as session:
            yield session

    def _write(self, fn: Callable[[Session], T]) -> T:
        try:
            if self._writer_lock is not None:
                with self._writer_lock.held(), self.transaction() as session:
                    return fn(session)
            with self.transaction() as session:
                return fn(session)
        except UNAVAILABLE:
            self._suspect()
            raise

    def _read(self, fn: Callable[[Session], T]) -> T:
        try:
            with self.reading() as session:
                return fn(session)
        except UNAVAILABLE:
            self._suspect()
            raise

    def _suspect(self) -> None:
        if self._liveness is not None:
            self._liveness.suspect()

    async def write(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` as one transaction in the writer thread; commit if it returns."""
        return await self._submit(self._writer, self._write, fn)

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in a read-only transaction in a reader thread."""
        return await self._submit(self._readers, self._read, fn)

    async def ping(self) -> None:
        """One round trip to the database (the healthcheck)."""
        await self.read(lambda session: session.execute(text("SELECT 1")))

    @staticmethod
    async def _submit(pool: ThreadPoolExecutor, run: Callable[..., T], fn: Any) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(pool, ctx.run, run, fn)

    def dispose(self) -> None:
        """Stop the threads and close every pooled connection."""
        self._writer.shutdown(wait=True)
        if self._readers is not self._writer:
            self._readers.shutdown(wait=True)
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
