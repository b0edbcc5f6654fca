"""One SQLite writer at a time across processes, without sleeping in between.

Inside one process the writer thread serialises writers. Several processes on one file
(``keyops serve --workers N``) met at SQLite's own lock, whose busy handler retries
after sleeps growing to 100 ms: under load a writer could wait seconds for a lock freed
long before (the seed update's p99 reached 1.7 s with two workers). Here each unit of
work first takes an exclusive ``flock`` on ``<database>-writer.lock``; the kernel hands
it to a waiting process the moment it is released.

A blocked ``flock`` can not be given a timeout, so the wait happens in a helper thread,
on a file descriptor of its own, while the writer waits for it at most ``timeout``
seconds (a process stopped while holding the lock must turn into "database
unavailable", not a hung request). A helper whose writer gave up releases the lock as
soon as it gets it. SQLite's lock stays the guard of the data: a writer that does not
take this lock (an admin command) is still serialised by it.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import OperationalError

__all__ = ["WriterLock"]


class WriterLock:
    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block; OperationalError if it is not had in time."""
        fd = self._acquire()
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _acquire(self) -> int:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        except BaseException:
            os.close(fd)
            raise
        # Held by another process: wait for the kernel to hand it over.
        got = threading.Event()
        guard = threading.Lock()
        abandoned = False

        def wait() -> None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with guard:
                if not abandoned:
                    got.set()
                    return
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

        threading.Thread(target=wait, name="keyops-writer-lock", daemon=True).start()
        if got.wait(self.timeout):
            return fd
        with guard:
            if got.is_set():
                return fd
            abandoned = True
        raise OperationalError(
            None,
            None,
            sqlite3.OperationalError(
                f"database is locked: another keyops process held the write lock for more"
                f" than {self.timeout:g} s"
            ),
        )
