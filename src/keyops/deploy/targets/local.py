"""The in-process target: the environment's material is recorded in the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from keyops.deploy.target import EnvironmentChange, TargetContext
from keyops.secrets import Purpose
from keyops.storage.models import DeployedArtifact
from keyops.storage.models.base import utcnow

_KEY = ["environment_id", "kind", "project", "name"]


class LocalTarget:
    """Keeps, per environment, exactly which content is deployed, newest change winning."""

    def __init__(self, context: TargetContext) -> None:
        self.db = context.db
        self.keyring = context.keyring

    async def apply(self, change: EnvironmentChange) -> None:
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
                await self._upsert(session, row)

    async def _upsert(self, session: AsyncSession, row: dict[str, Any]) -> None:
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(DeployedArtifact).values(**row)
        updated = {k: stmt.excluded[k] for k in row if k not in _KEY}
        stmt = stmt.on_conflict_do_update(
            index_elements=_KEY,
            set_=updated,
            # Idempotent and order-proof: an equal revision re-applies, an older one is void.
            where=DeployedArtifact.revision <= stmt.excluded.revision,
        )
        await session.execute(stmt)
