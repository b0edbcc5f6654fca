"""Queries on the master-key record and every sealed value (for rotation)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from keyops.storage.models import (
    CryptoKeyEnvironment,
    DeployedArtifact,
    Jwk,
    KeystoreEnvironment,
    MasterKeyState,
    ResourceVersion,
    Webhook,
)
from keyops.storage.models.base import utcnow
from keyops.storage.upsert import insert_or_ignore

# Every sealed column (model, attribute, purpose name as keyops.secrets.Purpose spells it).
SEALED_COLUMNS: tuple[tuple[type[Any], str, str], ...] = (
    (CryptoKeyEnvironment, "private_sealed", "KEY_PRIVATE"),
    (KeystoreEnvironment, "file_sealed", "KEYSTORE_FILE"),
    (KeystoreEnvironment, "password_sealed", "KEYSTORE_PASSWORD"),
    (KeystoreEnvironment, "key_password_sealed", "KEYSTORE_KEY_PASSWORD"),
    (Jwk, "private_sealed", "JWK_PRIVATE"),
    (DeployedArtifact, "content", "DEPLOYED_CONTENT"),
    (Webhook, "secret_sealed", "WEBHOOK_SECRET"),
)

_BOOTSTRAP_LOCK_KEY = 0x6B6F707362


class MasterKeyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def recorded(self, *, fresh: bool = False, lock: bool = False) -> MasterKeyState | None:
        return self.session.get(
            MasterKeyState, 1, populate_existing=fresh, with_for_update=lock or None
        )

    def record_if_absent(self, key_id: str) -> MasterKeyState:
        """Record the key id unless one is (replicas starting together: first wins)."""
        insert_or_ignore(self.session, MasterKeyState, {"id": 1, "key_id": key_id}, ["id"])
        state = self.recorded(fresh=True)
        assert state is not None
        return state

    def set_key(self, key_id: str) -> None:
        state = self.recorded(lock=True)
        if state is None:
            self.session.add(MasterKeyState(id=1, key_id=key_id))
        else:
            state.key_id = key_id
            state.rotated_at = utcnow()
        self.session.flush()

    def versions_holding(self, kinds: Iterable[str]) -> list[ResourceVersion]:
        """Kept versions of these kinds (their ``material`` holds the rows as stored,
        sealed columns included: domain/history.py), loaded for update."""
        stmt = select(ResourceVersion).where(ResourceVersion.kind.in_(list(kinds)))
        return list(self.session.scalars(stmt).all())

    def sealed_values(self) -> Iterator[tuple[Any, str, str]]:
        """(row, attribute, purpose name) of every stored sealed value, rows loaded for
        update in this transaction."""
        for model, column, purpose in SEALED_COLUMNS:
            attr = getattr(model, column)
            condition = DeployedArtifact.sealed if model is DeployedArtifact else attr.is_not(None)
            for row in self.session.scalars(select(model).where(condition)).all():
                yield row, column, purpose


def lock_bootstrap(session: Session) -> None:
    """Replicas starting together must not both create first-run data (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _BOOTSTRAP_LOCK_KEY})
