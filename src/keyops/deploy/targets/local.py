"""The built-in target: the environment's desired state lives in the database (written
with each change), where its gateway nodes pick it up; a roll-out waits for them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session

from keyops.deploy.target import DeploymentError, EnvironmentChange, TargetContext
from keyops.storage import notify
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.gateway import connected_nodes


class LocalTarget:
    """Nothing to push: confirm once every connected gateway node applied the revision."""

    def __init__(self, context: TargetContext) -> None:
        self.db = context.db
        self.ack_timeout = context.settings.deploy_timeout_seconds
        self.node_ttl = timedelta(seconds=context.settings.gateway_node_ttl_seconds)

    def _nodes(self, env_id: int) -> Callable[[Session], dict[str, int]]:
        def read(session: Session) -> dict[str, int]:
            nodes = connected_nodes(session, env_id, utcnow() - self.node_ttl)
            return {n.name: n.applied_revision for n in nodes}

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
                current = {name: applied for name, applied in nodes.items() if name in expected}
                behind = sorted(name for name, applied in current.items() if applied < revision)
                if not behind:
                    return f"{len(current)} of {len(current)} gateway node(s) applied it"
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    applied = len(current) - len(behind)
                    raise DeploymentError(
                        f"{applied} of {len(current)} gateway node(s) applied revision"
                        f" {revision} within {self.ack_timeout:g} s; not applied:"
                        f" {', '.join(behind)}"
                    )
                # Woken by a node's ack (or goodbye) in any replica; the timeout is a backstop.
                await acks.wait(min(remaining, 1.0))
