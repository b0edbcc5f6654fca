"""Queries on gateway nodes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from keyops.storage.models import Environment, GatewayCredential, GatewayNode
from keyops.storage.models.base import UTCDateTime, utcnow
from keyops.storage.prepared import Prepared
from keyops.storage.repositories.desired import DesiredStateRepository, StoredArtifact
from keyops.storage.upsert import upsert, upsert_many


def member_nodes(session: Session, environment_id: int, since: datetime) -> list[GatewayNode]:
    """The nodes an environment counts: they said hello, have not said goodbye, and were
    heard from since ``since`` (the forget horizon; whether each is connected or silent
    is its ``last_seen`` against the node TTL)."""
    stmt = (
        select(GatewayNode)
        .where(
            GatewayNode.environment_id == environment_id,
            GatewayNode.connected,
            GatewayNode.last_seen >= since,
        )
        .order_by(GatewayNode.name)
    )
    return list((session.scalars(stmt)).all())


_NODES: Any = GatewayNode.__table__
_REFRESH = Prepared(
    update(_NODES)
    .where(
        _NODES.c.environment_id == bindparam("environment_id"),
        _NODES.c.name == bindparam("name"),
        _NODES.c.connected,
    )
    .values(last_seen=bindparam("at", type_=UTCDateTime()))
)


class GatewayRepository:
    """Node credentials, node state, and what an environment's nodes receive."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_credential(self, record: GatewayCredential) -> GatewayCredential:
        self.session.add(record)
        self.session.flush()
        return record

    def credentials(self, environment_id: int) -> Sequence[GatewayCredential]:
        stmt = (
            select(GatewayCredential)
            .where(GatewayCredential.environment_id == environment_id)
            .order_by(GatewayCredential.id)
        )
        return self.session.scalars(stmt).all()

    def credential(self, credential_id: int) -> GatewayCredential | None:
        return self.session.get(GatewayCredential, credential_id)

    def credential_by_hash(self, digest: str) -> GatewayCredential | None:
        return self.session.scalar(
            select(GatewayCredential).where(GatewayCredential.token_hash == digest)
        )

    def environment(self, environment_id: int) -> Environment | None:
        return self.session.get(Environment, environment_id)

    def present_artifacts(self, environment_id: int) -> list[StoredArtifact]:
        return DesiredStateRepository(self.session).artifacts(environment_id, present=True)

    def refresh_seen(self, environment_id: int, name: str) -> None:
        """A connected node is still there (it has not said goodbye)."""
        self.session.execute(
            update(GatewayNode)
            .where(
                GatewayNode.environment_id == environment_id,
                GatewayNode.name == name,
                GatewayNode.connected,
            )
            .values(last_seen=utcnow())
        )

    def refresh_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """``refresh_seen`` for many nodes at once (rows: environment_id, name, at)."""
        _REFRESH.executemany(self.session, rows)

    def save_node(self, environment_id: int, name: str, **values: Any) -> None:
        upsert(
            self.session,
            GatewayNode,
            {"environment_id": environment_id, "name": name, "last_seen": utcnow(), **values},
            ["environment_id", "name"],
        )

    def save_nodes(self, rows: Sequence[dict[str, Any]]) -> None:
        """``save_node`` for many nodes in one statement (rows with the same columns)."""
        upsert_many(self.session, GatewayNode, rows, ["environment_id", "name"])

    def remove_node(self, environment_id: int, name: str) -> bool:
        """Forget a node (an admin's removal); whether there was one."""
        found = self.session.scalar(
            select(GatewayNode).where(
                GatewayNode.environment_id == environment_id, GatewayNode.name == name
            )
        )
        if found is None:
            return False
        self.session.delete(found)
        self.session.flush()
        return True

    def disconnect(self, environment_id: int, name: str) -> None:
        self.session.execute(
            update(GatewayNode)
            .where(GatewayNode.environment_id == environment_id, GatewayNode.name == name)
            .values(connected=False, last_seen=utcnow())
        )

    def nodes(self, environment_id: int) -> Sequence[GatewayNode]:
        stmt = (
            select(GatewayNode)
            .where(GatewayNode.environment_id == environment_id)
            .order_by(GatewayNode.name)
        )
        return self.session.scalars(stmt).all()
