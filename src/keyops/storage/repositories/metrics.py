"""Queries behind ``/metrics`` that no other concept answers: gateway nodes per
environment, in one statement whatever their number.

(The not-afters come from ``storage/repositories/expiry.py`` through
``domain/expiry.not_afters``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from keyops.storage.models import Environment, GatewayNode

__all__ = ["EnvironmentNode", "MetricsRepository"]


class EnvironmentNode(NamedTuple):
    """An environment's desired revision and one of its connected nodes (``node`` None
    for an environment with no connected node)."""

    environment: str
    revision: int
    node: str | None
    applied_revision: int | None


class MetricsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def environment_nodes(self, since: datetime) -> Sequence[EnvironmentNode]:
        """Every environment with each node connected to it (not said goodbye, heard from
        at ``since`` or later), as ``gateway.member_nodes`` counts them."""
        stmt = (
            select(
                Environment.name,
                Environment.revision,
                GatewayNode.name,
                GatewayNode.applied_revision,
            )
            .outerjoin(
                GatewayNode,
                and_(
                    GatewayNode.environment_id == Environment.id,
                    GatewayNode.connected,
                    GatewayNode.last_seen >= since,
                ),
            )
            .order_by(Environment.name, GatewayNode.name)
        )
        return [EnvironmentNode(*row) for row in self.session.execute(stmt).all()]
