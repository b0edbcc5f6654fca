"""The built-in target: the environment's state is recorded in the database, where the
environment's gateway nodes pick it up; a deployment then waits for them to apply it."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from keyops.deploy.target import DeploymentError, EnvironmentChange, TargetContext
from keyops.secrets import Purpose
from keyops.storage.models import DeployedArtifact
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.gateway import connected_nodes
from keyops.storage.upsert import upsert

_KEY = ["environment_id", "kind", "project", "name"]


class LocalTarget:
    """Keeps, per environment, exactly which content is deployed, newest change winning."""

    def __init__(self, context: TargetContext) -> None:
        self.db = context.db
        self.keyring = context.keyring
        self.ack_timeout = context.settings.deploy_timeout_seconds
        self.node_ttl = timedelta(seconds=context.settings.gateway_node_ttl_seconds)

    async def apply(self, change: EnvironmentChange) -> str | None:
        env_id = change.environment.id
        now = utcnow()
        rows: list[dict[str, Any]] = [
            {
                "environment_id": env_id,
                "kind": ref.kind,
                "project": ref.project,
                "name": ref.name,
                "content": b"",
                "sealed": False,
                "content_hash": "",
                "alias": None,
                "present": False,
                "revision": change.revision,
                "deployed_at": now,
            }
            for ref in change.undeploy
        ]
        rows += [
            {
                "environment_id": env_id,
                "kind": a.ref.kind,
                "project": a.ref.project,
                "name": a.ref.name,
                "content": (
                    self.keyring.seal(a.content, Purpose.DEPLOYED_CONTENT)
                    if a.sensitive
                    else a.content
                ),
                "sealed": a.sensitive,
                "content_hash": a.content_hash,
                "alias": a.alias,
                "present": True,
                "revision": change.revision,
                "deployed_at": now,
            }
            for a in change.deploy
        ]
        async with self.db.transaction() as session:
            for row in rows:
                # Idempotent and order-proof: an equal revision re-applies, an older one
                # is void, so late deployments never overwrite newer state.
                await upsert(
                    session,
                    DeployedArtifact,
                    row,
                    _KEY,
                    where=lambda excluded: DeployedArtifact.revision <= excluded.revision,
                )
        return await self._await_nodes(change)

    async def _await_nodes(self, change: EnvironmentChange) -> str | None:
        """Wait until every connected gateway node has applied the change's revision."""
        env_id, revision = change.environment.id, change.revision
        async with self.db.transaction() as session:
            expected = {
                n.name for n in await connected_nodes(session, env_id, utcnow() - self.node_ttl)
            }
        if not expected:
            return "no gateway node is connected to this environment"
        deadline = time.monotonic() + self.ack_timeout
        while True:
            async with self.db.transaction() as session:
                nodes = await connected_nodes(session, env_id, utcnow() - self.node_ttl)
            # A node that said goodbye meanwhile is no longer waited for.
            current = {n.name: n for n in nodes if n.name in expected}
            behind = sorted(name for name, n in current.items() if n.applied_revision < revision)
            if not behind:
                return f"{len(current)} of {len(current)} gateway node(s) applied it"
            if time.monotonic() >= deadline:
                applied = len(current) - len(behind)
                raise DeploymentError(
                    f"{applied} of {len(current)} gateway node(s) applied revision {revision}"
                    f" within {self.ack_timeout:g} s; not applied: {', '.join(behind)}"
                )
            await asyncio.sleep(0.1)
