"""Queries on gateway nodes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyops.storage.models import GatewayNode


async def connected_nodes(
    session: AsyncSession, environment_id: int, since: datetime
) -> list[GatewayNode]:
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
    return list((await session.scalars(stmt)).all())
