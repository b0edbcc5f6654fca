"""SQLite writers of several processes queue on one flock, handed over without sleeps,
and a lock held too long turns into "database unavailable" within the bound."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from keyops.storage.db import UNAVAILABLE, Database
from keyops.storage.writer_lock import WriterLock


@contextmanager
def held_elsewhere(path: Path) -> Iterator[int]:
    """The lock held through another open file, as another process would hold it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield fd
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing the file releases a lock it got
    return True


def test_an_uncontended_lock_is_taken_and_released(tmp_path: Path) -> None:
    path = tmp_path / "db-writer.lock"
    lock = WriterLock(str(path), timeout=1.0)
    with lock.held():
        assert not free(path)
    assert free(path)


def test_a_waiting_writer_gets_the_lock_when_it_is_released(tmp_path: Path) -> None:
    path = tmp_path / "db-writer.lock"
    lock = WriterLock(str(path), timeout=10.0)
    got: list[float] = []
    with held_elsewhere(path):
        waiter = threading.Thread(target=lambda: got.append(_hold(lock)))
        waiter.start()
        time.sleep(0.3)
        assert got == []  # still waiting
    waiter.join(timeout=10)
    assert len(got) == 1
    assert free(path)


def _hold(lock: WriterLock) -> float:
    with lock.held():
        return time.monotonic()


def test_a_lock_held_too_long_is_an_error_within_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "db-writer.lock"
    lock = WriterLock(str(path), timeout=0.3)
    with held_elsewhere(path):
        started = time.monotonic()
        with pytest.raises(OperationalError, match=r"held the write lock for more than 0\.3 s"):
            with lock.held():
                pass
        assert time.monotonic() - started < 10  # bounded, not hung
    # The helper that kept waiting got the lock on release and gave it straight back.
    deadline = time.monotonic() + 5
    while not free(path):
        assert time.monotonic() < deadline, "an abandoned wait kept the lock"
        time.sleep(0.05)
    with lock.held():
        pass


def test_the_database_writes_through_the_lock(tmp_path: Path) -> None:
    db_file = tmp_path / "keyops.db"
    db = Database(f"sqlite:///{db_file}", statement_timeout=0.5)
    lock_file = Path(f"{db_file}-writer.lock")
    try:
        db._write(lambda s: s.execute(text("CREATE TABLE t (x INTEGER)")))
        with held_elsewhere(lock_file):
            with pytest.raises(UNAVAILABLE):
                db._write(lambda s: s.execute(text("INSERT INTO t VALUES (1)")))
        db._write(lambda s: s.execute(text("INSERT INTO t VALUES (2)")))
        assert db._read(lambda s: s.execute(text("SELECT x FROM t")).scalars().all()) == [2]
    finally:
        db.dispose()
