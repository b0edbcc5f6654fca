"""Wake whoever waits for a change: a deployment waiting for node acks, a node in long-poll.

A unit of work names what it changed as topics (``env:<id>``, ``nodes:<id>``). After its
commit the topics wake local waiters at once; on PostgreSQL they are also sent with
``pg_notify`` inside the transaction, so every replica's listener hears them exactly when
the change is visible. SQLite served by several processes has no such channel: each
process then watches ``PRAGMA data_version`` and wakes every waiter when another
connection committed. Waiters always re-check the database after waking; a topic is a
hint, never the data.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

log = logging.getLogger("keyops.notify")

CHANNEL = "keyops"
ANY = "*"
_INFO_KEY = "keyops_topics"


def environment_topic(environment_id: int) -> str:
    return f"env:{environment_id}"


def nodes_topic(environment_id: int) -> str:
    return f"nodes:{environment_id}"


def publish(session: Session, *topics: str) -> None:
    """Announce topics when (and only if) the session's transaction commits."""
    pending: set[str] = session.info.setdefault(_INFO_KEY, set())
    fresh = [t for t in topics if t not in pending]
    pending.update(fresh)
    if fresh and session.get_bind().dialect.name == "postgresql":
        # Sent by the server at commit, to every listening replica; dropped on rollback.
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            [{"channel": CHANNEL, "payload": t} for t in fresh],
        )


def deliver(session: Session, notifier: Notifier) -> None:
    """After a commit: wake this process's waiters for what the session published."""
    topics = session.info.pop(_INFO_KEY, None)
    if topics:
        notifier.fire(*topics)


class Notifier:
    """Topic -> waiting futures; ``fire`` may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def fire(self, *topics: str) -> None:
        with self._lock:
            if ANY in topics:
                found = [w for ws in self._waiters.values() for w in ws]
            else:
                found = [w for t in topics for w in self._waiters.get(t, ())]
        for loop, future in found:
            loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, topics: Iterable[str], seconds: float) -> bool:
        """Wait until one of the topics fires or the timeout passes; True if it fired."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        names = list(topics)
        with self._lock:
            for t in names:
                self._waiters.setdefault(t, set()).add(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), max(0.0, seconds))
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                for t in names:
                    waiting = self._waiters.get(t)
                    if waiting is not None:
                        waiting.discard(entry)
                        if not waiting:
                            del self._waiters[t]

    # --- hearing other processes --------------------------------------------------------

    def listen_postgres(self, dsn: str) -> None:
        """Hear every replica's commits through LISTEN, in a thread that reconnects."""
        self._start(self._postgres_loop, dsn)

    def watch_sqlite(self, path: str, interval: float = 0.05) -> None:
        """Hear other processes' commits to a SQLite file (``serve --workers``)."""
        self._start(self._sqlite_loop, path, interval)

    def _start(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name="keyops-notify", daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=3)
        self._threads.clear()

    def _postgres_loop(self, dsn: str) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Anything may have changed while no one listened.
                    self.fire(ANY)
                    backoff = 0.2
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self.fire(note.payload)
            except psycopg.Error as exc:
                log.warning("database notifications interrupted: %s", type(exc).__name__)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _sqlite_loop(self, path: str, interval: float) -> None:
        seen: int | None = None
        conn: sqlite3.Connection | None = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = sqlite3.connect(path, timeout=5, check_same_thread=False)
                version = int(conn.execute("PRAGMA data_version").fetchone()[0])
                if seen is not None and version != seen:
                    self.fire(ANY)
                seen = version
            except sqlite3.Error:
                conn = None
            time.sleep(interval)
        if conn is not None:
            conn.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
