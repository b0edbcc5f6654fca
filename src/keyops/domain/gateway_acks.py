"""Gateway nodes' acknowledgements, written in groups (group commit), per replica.

An ack that arrives while the previous group is being written waits for it and goes into
the next one, with every other ack that arrived meanwhile: one transaction, one
notification and one "has every node caught up?" check per environment per group, not
per ack. When a change reaches 1,000 nodes, their acks cost tens of transactions instead
of 1,000, each of which re-read all 1,000 nodes. A lone ack is written at once, as
before. ``NodeHub.ack`` (``gateway_hub``) hands its acks to one ``AckGroups``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from sqlalchemy.orm import Session

from keyops.domain.gateway import GatewayService, NodeAck, node_name
from keyops.errors import KeyopsError
from keyops.storage.db import UNAVAILABLE, Database

__all__ = ["ACKS_PER_GROUP", "AckGroups"]

ACKS_PER_GROUP = 500


class AckGroups:
    """The acks waiting for the next group, and the task writing them."""

    def __init__(self, db: Database, service: Callable[[Session], GatewayService]) -> None:
        self.db = db
        self._service = service
        self._acks: list[tuple[int, NodeAck, asyncio.Future[None]]] = []
        self._ack_writer: asyncio.Task[None] | None = None

    async def ack(self, env_id: int, ack: NodeAck) -> None:
        """Record what a node applied, as ``GatewayService.ack`` does, in the next group
        written (Unauthorized if the environment is gone)."""
        ack = NodeAck(node_name(ack.node), ack.revision, ack.listen, ack.fingerprints, ack.error)
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
        self, session: Session, group: list[tuple[int, NodeAck, asyncio.Future[None]]]
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


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" warning if its request left


def _answer(
    group: list[tuple[int, NodeAck, asyncio.Future[None]]], failed: dict[int, KeyopsError]
) -> None:
    for env_id, _, future in group:
        if env_id in failed:
            _fail(future, failed[env_id])
        elif not future.done():
            future.set_result(None)
