"""Queries on gateway nodes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from keyops.storage.models import GatewayNode


def connected_nodes(session: Session, environment_id: int, since: datetime) -> list[GatewayNode]:
    """Nodes of the environment that have not said goodbye and were heard from since."""
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
