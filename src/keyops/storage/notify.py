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
from collections.abc import Callable, Iterable
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


def goodbye_topic(environment_id: int) -> str:
    """A node of the environment said goodbye or was removed."""
    return f"goodbye:{environment_id}"


# A node credential was revoked, or an environment (with its credentials) deleted.
CREDENTIALS = "credentials"


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
        self._waiters: dict[str, set[_Entry]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listeners: list[Callable[[tuple[str, ...]], None]] = []

    def add_listener(self, listener: Callable[[tuple[str, ...]], None]) -> None:
        """Call ``listener`` with every fire's topics (from the firing thread: it must be
        quick and thread-safe), e.g. to drop cached state a change made stale."""
        self._listeners.append(listener)

    def fire(self, *topics: str) -> None:
        for listener in self._listeners:
            listener(topics)
        with self._lock:
            if ANY in topics:
                found = [w for ws in self._waiters.values() for w in ws]
            else:
                found = [w for t in topics for w in self._waiters.get(t, ())]
        for entry in found:
            entry.loop.call_soon_threadsafe(entry.set)

    def subscribe(self, topics: Iterable[str]) -> Subscription:
        """Start hearing topics now; check the database after this, then ``wait``.

        A commit that lands between the check and the wait is not lost: it is held by
        the subscription until the next ``wait`` consumes it.
        """
        return Subscription(self, list(topics))

    async def wait(self, topics: Iterable[str], seconds: float) -> bool:
        """Wait until one of the topics fires or the timeout passes; True if it fired."""
        with self.subscribe(topics) as subscription:
            return await subscription.wait(seconds)

    def _add(self, names: list[str], entry: _Entry) -> None:
        with self._lock:
            for t in names:
                self._waiters.setdefault(t, set()).add(entry)

    def _remove(self, names: list[str], entry: _Entry) -> None:
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


class _Entry:
    """One subscription's registration: fired from any thread, consumed on its loop."""

    __slots__ = ("event", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.event = asyncio.Event()

    def set(self) -> None:
        self.event.set()


class Subscription:
    """Topics heard from creation until ``close``; ``wait`` consumes what was heard."""

    def __init__(self, notifier: Notifier, names: list[str]) -> None:
        self._notifier = notifier
        self._names = names
        self._entry = _Entry(asyncio.get_running_loop())
        notifier._add(names, self._entry)

    async def wait(self, seconds: float) -> bool:
        """True at once if a topic fired since the last wait; else wait up to ``seconds``."""
        event = self._entry.event
        await asyncio.sleep(0)  # run what other threads' fires scheduled on this loop
        if not event.is_set() and seconds > 0:
            try:
                await asyncio.wait_for(event.wait(), seconds)
            except TimeoutError:
                pass
        fired = event.is_set()
        event.clear()
        return fired

    def close(self) -> None:
        self._notifier._remove(self._names, self._entry)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
