"""Earlier versions of certificates, keys and keystores, kept for history and rollback."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from keyops.storage.models.base import Base, UTCDateTime, utcnow


class ResourceVersion(Base):
    """One replaced or deleted version of a resource, as it was stored.

    ``material`` holds the per-environment rows exactly as stored (a certificate's DER,
    a key's or keystore's sealed material): never opened into this row, never shown.
    ``summary_json`` holds only public facts (fingerprints, subject, not-after).
    """

    __tablename__ = "resource_versions"
    __table_args__ = (UniqueConstraint("kind", "project_id", "resource_name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    resource_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    # REPLACED or DELETED: what happened to this version.
    reason: Mapped[str] = mapped_column(String(16))
    # The resource's own columns (description, key type) as JSON.
    attributes_json: Mapped[str] = mapped_column(Text)
    summary_json: Mapped[str] = mapped_column(Text)
    material: Mapped[bytes] = mapped_column(LargeBinary)
