"""Whether a keyops server runs on a database: a lock every server process holds.

Each ``keyops serve`` process (the supervisor and each worker) holds a *shared* lock on
its database for as long as it runs; ``rotate-master-key`` takes the same lock
*exclusively*, without waiting, and keeps it until it is done. So a rotation refuses
while any server runs on the database, whichever host or data directory it was started
from, and a server refuses to start while a rotation is under way. The operating system
or the database drops the lock when its holder dies, however it dies, so there is no
stale pid file to clean up.

* SQLite: ``flock(2)`` on ``<database file>.serve-lock``, beside the database file (the
  same database is the same file, whatever each process calls its data directory).
* PostgreSQL: a session-level advisory lock on one dedicated connection, opened at
  startup and otherwise idle: requests never touch it, so it adds no statement to any of
  them. It lasts as long as that connection (a database restart drops it; the server
  keeps serving, and holds no lock until it restarts).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, create_engine, pool, text
from sqlalchemy.exc import SQLAlchemyError

from keyops.cli.startup import Refused, describe_database, sqlite_path, unreachable
from keyops.config import Settings, to_sync_url

__all__ = ["ServerRunning", "exclusive", "hold_shared", "lock_file"]

# Any constant works; it only has to be the same in every keyops process, and differ
# from the migration lock (storage/migrate.py).
_PG_SERVE_LOCK = 0x6B6F70735F737276
LOCK_SUFFIX = ".serve-lock"


class ServerRunning(Refused):
    """A keyops server holds the database's serve lock."""


@dataclass
class _Held:
    fd: int | None = None
    connection: Connection | None = None


# The lock of this process, held until it exits; one per process however often asked.
_held: _Held | None = None


def lock_file(settings: Settings) -> Path | None:
    """The lock file of a SQLite database; None for PostgreSQL."""
    path = sqlite_path(settings)
    return None if path is None else path.with_name(path.name + LOCK_SUFFIX)


def _open_file(settings: Settings, path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise Refused(
            f"can not open the lock file {path} ({exc.strerror}): the directory of the database"
            f" {describe_database(settings)} must exist and be writable"
        ) from None


def _connect(settings: Settings) -> Connection:
    engine = create_engine(
        to_sync_url(settings.async_database_url),
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": settings.database_connect_timeout_seconds},
    )
    try:
        return engine.connect()
    except SQLAlchemyError as exc:
        inner = getattr(exc, "orig", None) or exc
        raise unreachable(settings, " ".join(str(inner).split())) from None


def _try_pg(connection: Connection, function: str) -> bool:
    got = connection.execute(text(f"SELECT {function}(:k)"), {"k": _PG_SERVE_LOCK}).scalar()
    # Session-level: the lock outlives this transaction, which must not stay open.
    connection.commit()
    return bool(got)


def hold_shared(settings: Settings) -> None:
    """Hold the shared serve lock for the rest of this process's life.

    Refuses while ``rotate-master-key`` holds it exclusively.
    """
    global _held
    if _held is not None:
        return
    busy = Refused(
        f"rotate-master-key is running on the database {describe_database(settings)}: wait for"
        " it to finish, then start keyops serve again (with the new key if it printed one)"
    )
    path = lock_file(settings)
    if path is not None:
        fd = _open_file(settings, path)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise busy from None
        _held = _Held(fd=fd)
        return
    connection = _connect(settings)
    if not _try_pg(connection, "pg_try_advisory_lock_shared"):
        connection.close()
        raise busy
    _held = _Held(connection=connection)


@contextmanager
def exclusive(settings: Settings) -> Iterator[None]:
    """Hold the serve lock exclusively for the block; ``ServerRunning`` if a server has it."""
    running = ServerRunning(
        f"a keyops server is running on the database {describe_database(settings)}: stop"
        " every keyops serve on it (with replicas on PostgreSQL: all of them, on every"
        " host), run rotate-master-key once, then start them again (with KEYOPS_MASTER_KEY:"
        " set the new key it prints on each first)"
    )
    path = lock_file(settings)
    if path is not None:
        fd = _open_file(settings, path)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise running from None
            yield
        finally:
            os.close(fd)  # releases the lock
        return
    connection = _connect(settings)
    try:
        if not _try_pg(connection, "pg_try_advisory_lock"):
            raise running
        yield
    finally:
        connection.close()  # ends the session, and with it the lock
