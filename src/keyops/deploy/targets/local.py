"""The built-in target: the environment's desired state lives in the database (written
with each change), where its gateway nodes pick it up; a roll-out waits for them.

A node that refuses a revision (its snapshot or its gateway driver failed) acknowledges
its still-applied revision with ``error`` = ``revision N not applied: <reason>``; the
roll-out then stops waiting for that node and the failure names it with the reason, e.g.
``not applied: gw-a (nginx -t failed: ...)``.

A node that said hello and never goodbye stays one of the environment's nodes while it
is silent (not heard from within the node TTL: killed, cut off), until it is back, an
admin removes it, or it has been silent for the forget period. A silent node can not
apply anything, so the roll-out does not wait for it and names it:
``not applied: gw-c (not heard from since 2026-12-02T18:00:00Z)``. Reporting success
while such a node still serves the old material would be a lie.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from keyops.crypto.x509 import format_instant
from keyops.deploy.target import DeploymentError, EnvironmentChange, TargetContext
from keyops.storage import notify
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.gateway import member_nodes

# What a node sends when it refused a revision (keyops.gateway.node).
_REFUSED = re.compile(r"^revision (\d+) not applied: (.*)$", re.DOTALL)
_MAX_REASON = 300


@dataclass(frozen=True, slots=True)
class _Node:
    applied: int
    error: str | None
    # When it was last heard from, if that is longer ago than the node TTL.
    silent_since: datetime | None

    def refused(self, revision: int) -> str | None:
        """Why this node will not apply ``revision``: it is silent, or it refused it (or
        a later one) and said why."""
        if self.silent_since is not None:
            return f"not heard from since {format_instant(self.silent_since)}"
        match = _REFUSED.match(self.error or "")
        if match is None or int(match.group(1)) < revision:
            return None
        reason = " ".join(match.group(2).split())
        return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 3] + "..."


class LocalTarget:
    """Nothing to push: confirm once every connected gateway node applied the revision."""

    def __init__(self, context: TargetContext) -> None:
        self.db = context.db
        self.ack_timeout = context.settings.deploy_timeout_seconds
        self.node_ttl = timedelta(seconds=context.settings.gateway_node_ttl_seconds)
        self.forget = timedelta(seconds=context.settings.gateway_node_forget_seconds)

    def _nodes(self, env_id: int) -> Callable[[Session], dict[str, _Node]]:
        def read(session: Session) -> dict[str, _Node]:
            now = utcnow()
            live_since = now - self.node_ttl
            return {
                n.name: _Node(
                    n.applied_revision,
                    n.last_error,
                    n.last_seen if n.last_seen < live_since else None,
                )
                for n in member_nodes(session, env_id, now - self.forget)
            }

        return read

    async def apply(self, change: EnvironmentChange) -> str | None:
        env_id, revision = change.environment.id, change.revision
        expected = await self.db.read(self._nodes(env_id))
        if not expected:
            return "no gateway node is connected to this environment"
        deadline = time.monotonic() + self.ack_timeout
        # Heard from before each read of the nodes, so an ack between the two is not missed.
        with self.db.notifier.subscribe([notify.nodes_topic(env_id)]) as acks:
            while True:
                nodes = await self.db.read(self._nodes(env_id))
                # A node that said goodbye meanwhile is no longer waited for.
                current = {name: node for name, node in nodes.items() if name in expected}
                behind = sorted(name for name, node in current.items() if node.applied < revision)
                if not behind:
                    return f"{len(current)} of {len(current)} gateway node(s) applied it"
                reasons = {name: current[name].refused(revision) for name in behind}
                remaining = deadline - time.monotonic()
                # Nodes that refused, or are silent, will not apply it: no need to wait.
                if remaining <= 0 or all(reasons.values()):
                    applied = len(current) - len(behind)
                    within = "" if remaining > 0 else f" within {self.ack_timeout:g} s"
                    names = ", ".join(
                        f"{name} ({reasons[name]})" if reasons[name] else name for name in behind
                    )
                    raise DeploymentError(
                        f"{applied} of {len(current)} gateway node(s) applied revision"
                        f" {revision}{within}; not applied: {names}"
                    )
                # Woken by a node's ack (or goodbye) in any replica; the timeout is a backstop.
                await acks.wait(min(remaining, 1.0))
