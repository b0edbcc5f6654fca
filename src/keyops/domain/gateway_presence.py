"""Gateway nodes' presence as one replica records it: hellos at once, the rest batched.

A node's first poll through this replica marks it connected at once (a deploy must count
it), and so does its first poll after ``HELLO_SECONDS``; later polls and the refreshes
of a waiting poll are gathered and written in one statement batch every
``flush_seconds``, only for nodes still connected (a goodbye through another replica is
never undone). A goodbye or removal anywhere (``notify.goodbye_topic``) makes the next
poll of that environment's nodes say hello again: ``NodeHub`` (``gateway_hub``), which
hears the notifier, calls ``forget``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from keyops.domain.gateway import GatewayService, node_name
from keyops.storage.db import UNAVAILABLE, Database
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.gateway import GatewayRepository

__all__ = ["HELLO_SECONDS", "Presence"]

log = logging.getLogger("keyops.gateway")

# Hellos are kept longer than a poll (every poll would write again otherwise): a goodbye
# or a removal drops them at once, in every replica (and all of them when a notification
# may be lost).
HELLO_SECONDS = 600.0


class Presence:
    """Which nodes this replica marked connected, and the ``last_seen`` refreshes it has
    gathered for the next batch."""

    def __init__(
        self, db: Database, service: Callable[[Session], GatewayService], flush_seconds: float
    ) -> None:
        self.db = db
        self._service = service
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()  # ``forget`` is called from the notifier's thread
        # (environment id, node) -> when this replica last wrote it connected.
        self._said_hello: dict[tuple[int, str], float] = {}
        self._seen: dict[tuple[int, str], datetime] = {}

    def forget(self, env_id: int | None = None) -> None:
        """The next poll of the environment's nodes (of every node, with None) says
        hello again."""
        with self._lock:
            if env_id is None:
                self._said_hello.clear()
                return
            for key in [k for k in self._said_hello if k[0] == env_id]:
                del self._said_hello[key]

    async def hello(self, env_id: int, node: str) -> None:
        """A poll begins: a node this replica has not recently marked connected is
        marked now; otherwise it is only seen (batched)."""
        key = (env_id, node_name(node))
        now = time.monotonic()
        with self._lock:
            said = self._said_hello.get(key)
        if said is not None and now - said < HELLO_SECONDS:
            self.seen(env_id, node)
            return

        def write(session: Session) -> None:
            self._service(session).touch_id(env_id, key[1], hello=True)

        await self.db.write(write)
        with self._lock:
            self._said_hello[key] = now
            self._seen.pop(key, None)

    def seen(self, env_id: int, node: str) -> None:
        """The node is still there: its ``last_seen`` is written with the next batch."""
        with self._lock:
            self._seen[(env_id, node_name(node))] = utcnow()

    def goodbye(self, env_id: int, node: str) -> None:
        """Before a goodbye is written: nothing of this node is pending any more."""
        key = (env_id, node_name(node))
        with self._lock:
            self._said_hello.pop(key, None)
            self._seen.pop(key, None)

    async def flush(self) -> int:
        """Write the gathered ``last_seen`` refreshes in one transaction."""
        with self._lock:
            batch, self._seen = self._seen, {}
        if not batch:
            return 0
        # In key order, as the acks' groups write them: two transactions that update the
        # same rows lock them in the same order (no deadlock).
        rows = [{"environment_id": e, "name": n, "at": at} for (e, n), at in sorted(batch.items())]
        await self.db.write(lambda s: GatewayRepository(s).refresh_many(rows))
        return len(rows)

    async def run(self) -> None:
        """Flush every ``flush_seconds`` (and once more when stopped)."""
        try:
            while True:
                await asyncio.sleep(self.flush_seconds)
                try:
                    await self.flush()
                except UNAVAILABLE as exc:
                    log.warning("recording node presence paused: %s", type(exc).__name__)
                except Exception:
                    log.warning("recording node presence failed; retrying", exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.flush())
