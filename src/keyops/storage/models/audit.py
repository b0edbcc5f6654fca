"""The audit log: one hash-chained row per change and per failed authorisation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keyops.storage.models.base import Base, UTCDateTime


class AuditEntry(Base):
    """One entry of the chain. ``id`` is its position (1, 2, ...), given by the writer
    holding the chain lock, not by the database; ``hash`` is SHA-256 over the entry's
    canonical form, ``prev_hash`` included (``domain/audit/chain.canonical``). Fingerprints
    are SHA-256 of material; the material itself is never here."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    username: Mapped[str | None] = mapped_column(String(100), index=True)
    token_id: Mapped[int | None] = mapped_column(Integer)
    source_address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    operation: Mapped[str] = mapped_column(String(32))
    project: Mapped[str | None] = mapped_column(String(200), index=True)
    kind: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    # A JSON array of environment names.
    environments: Mapped[str] = mapped_column(Text, default="[]")
    before_sha256: Mapped[str | None] = mapped_column(Text)
    after_sha256: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
