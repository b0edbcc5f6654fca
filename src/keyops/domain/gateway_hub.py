"""One replica's side of its gateway nodes' long-polls, at no database cost while idle.

With N nodes polling every ``gateway_poll_seconds``, a poll that opened transactions
(authenticate, mark the node connected, read the revision) cost the database N/poll
transactions per second at idle, and a change rebuilt the same snapshot once per node.
The hub keeps what those answers need, per replica, and is told when it goes stale:

- **Credentials**: token digest -> environment id, kept ``CREDENTIAL_SECONDS`` and dropped
  at once when any credential is revoked or an environment deleted
  (``notify.CREDENTIALS``, heard from every replica).
- **Revisions**: environment id -> committed revision, dropped on the environment's
  topic (every commit that changes what it holds), kept ``CACHE_SECONDS`` at most. Each
  entry carries a generation, so a read that raced a commit never stores a stale value.
  Concurrent readers of one environment share one database read.
- **Snapshots**: one body per (environment, revision), built once and sent to every
  node (a revision's content never changes); the last ``SNAPSHOTS_KEPT`` are kept.
- **Presence**: hellos written at once, later polls' ``last_seen`` batched every
  ``flush_seconds`` (``Presence``, ``gateway_presence``).
- **Acknowledgements**: written in groups, one transaction for all that arrived
  meanwhile (group commit: ``AckGroups``, ``gateway_acks``).

Every cache is dropped whenever the notifier may have missed something (``notify.ANY``:
the LISTEN connection came back, or a sibling SQLite process committed).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from keyops.config import Settings
from keyops.domain.gateway import GatewayService, NodeAck
from keyops.domain.gateway_acks import AckGroups
from keyops.domain.gateway_presence import Presence
from keyops.secrets import Keyring
from keyops.storage import notify
from keyops.storage.db import Database

CACHE_SECONDS = 10.0
# Credentials are kept longer than a poll (every poll would read again otherwise): a
# revocation or a deleted environment drops them at once, in every replica (and
# everything when a notification may be lost); hellos likewise (``gateway_presence``).
CREDENTIAL_SECONDS = 600.0
SNAPSHOTS_KEPT = 32


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    body: bytes


# What a node reported (``POST /apiops/gateway/ack/``), its name already checked.
Ack = NodeAck


class NodeHub:
    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        settings: Settings,
        render: Callable[[dict[str, Any]], bytes],
    ) -> None:
        """``render`` turns a snapshot into the answer's body (the API's JSON)."""
        self.db = db
        self.render = render
        self.keyring = keyring
        self.settings = settings
        ttl = settings.gateway_node_ttl_seconds
        # A connected node's last_seen is refreshed every ttl/3 by its poll; the batch
        # adds at most this much delay, leaving the TTL's margin intact.
        self.refresh_seconds = ttl / 3
        self.flush_seconds = min(ttl / 6, 5.0)
        self._lock = threading.Lock()  # the notifier calls ``_heard`` from any thread
        self._credentials: dict[str, tuple[int, float]] = {}
        self._credentials_generation = 0
        self._revisions: dict[int, tuple[int, float]] = {}
        self._generations: dict[int, int] = {}
        self._reading: dict[int, asyncio.Future[Any]] = {}
        self._snapshots: OrderedDict[tuple[int, int], Snapshot] = OrderedDict()
        self._building: dict[tuple[int, int], asyncio.Future[Any]] = {}
        self._presence = Presence(db, self._service, self.flush_seconds)
        self._acks = AckGroups(db, self._service)
        db.notifier.add_listener(self._heard)

    # --- staleness -------------------------------------------------------------------

    def _heard(self, topics: tuple[str, ...]) -> None:
        with self._lock:
            for topic in topics:
                if topic == notify.ANY:
                    self._credentials.clear()
                    self._credentials_generation += 1
                    self._revisions.clear()
                    self._generations = {k: v + 1 for k, v in self._generations.items()}
                    self._presence.forget()
                    continue
                if topic == notify.CREDENTIALS:
                    self._credentials.clear()
                    self._credentials_generation += 1
                    continue
                kind, _, raw = topic.partition(":")
                if not raw.isdigit():
                    continue
                env_id = int(raw)
                if kind == "env":
                    self._revisions.pop(env_id, None)
                    self._generations[env_id] = self._generations.get(env_id, 0) + 1
                elif kind == "goodbye":
                    self._presence.forget(env_id)

    # --- what a poll asks ------------------------------------------------------------

    async def authenticate(self, token: str) -> int:
        """The environment id a node credential stands for; Unauthorized otherwise."""
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        now = time.monotonic()
        with self._lock:
            found = self._credentials.get(digest)
            generation = self._credentials_generation
        if found is not None and found[1] > now:
            return found[0]

        def read(session: Session) -> int:
            return self._service(session).authenticate(token).id

        env_id = await self.db.read(read)
        with self._lock:
            if generation == self._credentials_generation:
                self._credentials[digest] = (env_id, now + CREDENTIAL_SECONDS)
        return env_id

    async def revision(self, env_id: int) -> int:
        """The environment's committed revision (Unauthorized if it is gone)."""
        now = time.monotonic()
        with self._lock:
            found = self._revisions.get(env_id)
            if found is not None and found[1] > now:
                return found[0]
            generation = self._generations.get(env_id, 0)

        async def read() -> int:
            value = await self.db.read(lambda s: self._service(s).reload_id(env_id).revision)
            with self._lock:
                # A commit heard meanwhile may be newer than what was read: not kept.
                if generation == self._generations.get(env_id, 0):
                    self._revisions[env_id] = (value, now + CACHE_SECONDS)
            return value

        found_now: int = await self._shared(self._reading, env_id, read)
        return found_now

    async def snapshot(self, env_id: int, revision: int) -> Snapshot:
        """The environment's snapshot at ``revision`` or, if it moved on, at its newest."""
        key = (env_id, revision)
        with self._lock:
            found = self._snapshots.get(key)
            if found is not None:
                self._snapshots.move_to_end(key)
                return found
        built: Snapshot = await self._shared(self._building, key, lambda: self._build(env_id))
        return built

    async def _build(self, env_id: int) -> Snapshot:
        def read(session: Session) -> dict[str, Any]:
            service = self._service(session)
            return service.snapshot(service.reload_id(env_id))

        document = await self.db.read(read)
        built = Snapshot(int(document["revision"]), self.render(document))
        with self._lock:
            self._snapshots[(env_id, built.revision)] = built
            while len(self._snapshots) > SNAPSHOTS_KEPT:
                self._snapshots.popitem(last=False)
        return built

    @staticmethod
    async def _shared(
        pending: dict[Any, asyncio.Future[Any]], key: Any, work: Callable[[], Awaitable[Any]]
    ) -> Any:
        """Run ``work`` once for every caller asking for ``key`` meanwhile."""
        if key in pending:
            return await asyncio.shield(pending[key])
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pending[key] = future
        try:
            value = await work()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning
            raise
        finally:
            pending.pop(key, None)
        future.set_result(value)
        return value

    # --- presence (``gateway_presence``) ----------------------------------------------

    async def hello(self, env_id: int, node: str) -> None:
        """A poll begins: the node is marked connected, or only seen (``Presence``)."""
        await self._presence.hello(env_id, node)

    def seen(self, env_id: int, node: str) -> None:
        """The node is still there: its ``last_seen`` is written with the next batch."""
        self._presence.seen(env_id, node)

    def goodbye(self, env_id: int, node: str) -> None:
        """Before a goodbye is written: nothing of this node is pending any more."""
        self._presence.goodbye(env_id, node)

    async def flush(self) -> int:
        """Write the gathered ``last_seen`` refreshes in one transaction."""
        return await self._presence.flush()

    async def run(self) -> None:
        """Flush every ``flush_seconds`` (and once more when stopped)."""
        await self._presence.run()

    # --- acknowledgements (``gateway_acks``) -------------------------------------------

    async def ack(self, env_id: int, ack: Ack) -> None:
        """Record what a node applied, as ``GatewayService.ack`` does, in the next group
        written (Unauthorized if the environment is gone)."""
        await self._acks.ack(env_id, ack)

    def _service(self, session: Session) -> GatewayService:
        return GatewayService.of(session, self.keyring, self.settings)
