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
- **Presence**: a node's first poll through this replica marks it connected at once (a
  deploy must count it), and so does its first poll after ``HELLO_SECONDS``; later polls
  and the refreshes of a waiting poll are gathered and written in one statement batch
  every ``flush_seconds``, only for nodes still connected (a goodbye through another
  replica is never undone). A goodbye or removal anywhere (``notify.goodbye_topic``)
  makes the next poll of that environment's nodes say hello again.
- **Acknowledgements**: written in groups (group commit). An ack that arrives while the
  previous group is being written waits for it and goes into the next one, with every
  other ack that arrived meanwhile: one transaction, one notification and one "has every
  node caught up?" check per environment per group, not per ack. When a change reaches
  1,000 nodes, their acks cost tens of transactions instead of 1,000, each of which
  re-read all 1,000 nodes. A lone ack is written at once, as before.

Every cache is dropped whenever the notifier may have missed something (``notify.ANY``:
the LISTEN connection came back, or a sibling SQLite process committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from keyops.config import Settings
from keyops.domain.gateway import GatewayService, NodeAck, node_name
from keyops.errors import KeyopsError
from keyops.secrets import Keyring
from keyops.storage import notify
from keyops.storage.db import UNAVAILABLE, Database
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.gateway import GatewayRepository

log = logging.getLogger("keyops.gateway")

CACHE_SECONDS = 10.0
# Credentials and hellos are kept longer than a poll (every poll would read or write
# again otherwise): a revocation, a deleted environment, a goodbye or a removal drops
# them at once, in every replica (and everything when a notification may be lost).
CREDENTIAL_SECONDS = 600.0
HELLO_SECONDS = 600.0
SNAPSHOTS_KEPT = 32
ACKS_PER_GROUP = 500


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
        # (environment id, node) -> when this replica last wrote it connected.
        self._said_hello: dict[tuple[int, str], float] = {}
        self._seen: dict[tuple[int, str], datetime] = {}
        self._acks: list[tuple[int, Ack, asyncio.Future[None]]] = []
        self._ack_writer: asyncio.Task[None] | None = None
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
                    self._said_hello.clear()
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
                    for key in [k for k in self._said_hello if k[0] == env_id]:
                        del self._said_hello[key]

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

    # --- presence --------------------------------------------------------------------

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

    # --- acknowledgements -------------------------------------------------------------

    async def ack(self, env_id: int, ack: Ack) -> None:
        """Record what a node applied, as ``GatewayService.ack`` does, in the next group
        written (Unauthorized if the environment is gone)."""
        ack = Ack(node_name(ack.node), ack.revision, ack.listen, ack.fingerprints, ack.error)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks.append((env_id, ack, future))
        if self._ack_writer is None or self._ack_writer.done():
            self._ack_writer = asyncio.create_task(self._write_acks())
        # A request that goes away meanwhile does not take its ack out of the group.
        await asyncio.shield(future)

    async def _write_acks(self) -> None:
        while self._acks:
            group = self._acks[:ACKS_PER_GROUP]
            del self._acks[:ACKS_PER_GROUP]
            try:
                failed = await self.db.write(functools.partial(self._record, group=group))
            except Exception as exc:
                if len(group) == 1 or isinstance(exc, UNAVAILABLE):
                    for *_, future in group:
                        _fail(future, exc)
                    continue
                # One ack spoilt the transaction (an environment deleted meanwhile...):
                # each is written on its own, so only that one fails.
                for item in group:
                    try:
                        failed = await self.db.write(functools.partial(self._record, group=[item]))
                    except Exception as one:
                        _fail(item[2], one)
                    else:
                        _answer([item], failed)
                continue
            _answer(group, failed)

    def _record(
        self, session: Session, group: list[tuple[int, Ack, asyncio.Future[None]]]
    ) -> dict[int, KeyopsError]:
        """The group's acks in one transaction; environments that refused, by id."""
        service = self._service(session)
        failed: dict[int, KeyopsError] = {}
        for env_id in sorted({e for e, _, _ in group}):
            try:
                env = service.reload_id(env_id)
            except KeyopsError as exc:  # deleted: its credentials went with it
                failed[env_id] = exc
                continue
            service.record_acks(env, [ack for e, ack, _ in group if e == env_id])
        return failed

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

    def _service(self, session: Session) -> GatewayService:
        return GatewayService.of(session, self.keyring, self.settings)


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" warning if its request left


def _answer(
    group: list[tuple[int, Ack, asyncio.Future[None]]], failed: dict[int, KeyopsError]
) -> None:
    for env_id, _, future in group:
        if env_id in failed:
            _fail(future, failed[env_id])
        elif not future.done():
            future.set_result(None)
