"""Queries on the audit log: append under the chain lock, search, read in chain order.

There is no update and no delete here: nothing in keyops changes an entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select
from sqlalchemy.orm import Session

from keyops.storage.models.audit import AuditEntry
from keyops.storage.models.tokens import AccessToken
from keyops.storage.prepared import Prepared

_A = AuditEntry
# The key of the PostgreSQL advisory lock that serialises appends across replicas
# (any constant; "keyops audit" as two 32-bit halves would do, this is its CRC-ish tag).
CHAIN_LOCK_KEY = 0x6B61_7564_6974  # "kaudit"
# Built once: every change runs them.
_HEAD = Prepared(select(_A.id, _A.hash).order_by(_A.id.desc()).limit(1))
_LOCK_PG = Prepared(select(func.pg_advisory_xact_lock(bindparam("key"))))
_APPEND = Prepared(insert(_A))


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def lock_head(self) -> tuple[int, str] | None:
        """Take the chain lock for the rest of the transaction and read the chain's head
        (its last position and hash). On SQLite the writer's ``BEGIN IMMEDIATE`` already
        serialises every write transaction."""
        if self.session.get_bind().dialect.name == "postgresql":
            _LOCK_PG.execute(self.session, {"key": CHAIN_LOCK_KEY})
        found = _HEAD.execute(self.session)
        return None if not found else (int(found[0][0]), str(found[0][1]))

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        """One Core INSERT of the chained rows (positions and hashes already set)."""
        _APPEND.executemany(self.session, rows)

    def search(
        self,
        *,
        user: str | None,
        project: str | None,
        kind: str | None,
        name: str | None,
        since: datetime | None,
        until: datetime | None,
        offset: int,
        limit: int,
    ) -> tuple[list[AuditEntry], int]:
        """Matching entries, newest first, and how many match in all."""
        conditions: list[Any] = []
        if user is not None:
            conditions.append(_A.username == user)
        if project is not None:
            conditions.append(_A.project == project)
        if kind is not None:
            conditions.append(_A.kind == kind)
        if name is not None:
            conditions.append(_A.name == name)
        if since is not None:
            conditions.append(_A.at >= since)
        if until is not None:
            conditions.append(_A.at <= until)
        total = self.session.execute(
            select(func.count()).select_from(_A).where(*conditions)
        ).scalar_one()
        rows = (
            self.session.execute(
                select(_A).where(*conditions).order_by(_A.id.desc()).offset(offset).limit(limit)
            )
            .scalars()
            .all()
        )
        return list(rows), int(total)

    def token_names(self, token_ids: Sequence[int]) -> dict[int, str]:
        """The names of the tokens that made some entries, in one query (a token whose
        user was deleted is gone, and has no name any more)."""
        if not token_ids:
            return {}
        found = self.session.execute(
            select(AccessToken.id, AccessToken.name).where(AccessToken.id.in_(set(token_ids)))
        )
        return {row.id: row.name for row in found}


def chain_rows(conn: Connection, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every entry in chain order, as plain column dicts, read in batches (for verify)."""
    last = None
    columns = [c for c in _A.__table__.columns]
    while True:
        query = select(*columns).order_by(_A.id).limit(batch)
        if last is not None:
            query = query.where(_A.id > last)
        rows = conn.execute(query).mappings().all()
        if not rows:
            return
        for row in rows:
            yield dict(row)
        last = rows[-1]["id"]
