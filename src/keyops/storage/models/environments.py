"""Environments (deployment targets) and the projects they are limited to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keyops.storage.models.base import Base, UTCDateTime, utcnow


class Environment(Base):
    __tablename__ = "environments"
    # SQLite never hands a deleted row's id out again (caches are keyed by id).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(16), default="TEST")
    access_url: Mapped[str] = mapped_column(String(2048), default="")
    # Which deployment target kind receives this environment's material.
    target: Mapped[str] = mapped_column(String(64), default="local")
    # The keystore entry gateway nodes present as their TLS server identity.
    tls_project: Mapped[str | None] = mapped_column(String(100), nullable=True)
    tls_keystore: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tls_alias: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The change revision of the last settings change nodes must pick up.
    settings_revision: Mapped[int] = mapped_column(BigInteger, default=0)
    # The revision of the newest desired state committed for this environment, and the
    # newest one its target (or every connected gateway node) confirmed holding.
    revision: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    applied_revision: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def status(self) -> str:
        """PUBLISHED when the target confirmed the newest committed state, else
        REPUBLISH_REQUIRED (a roll-out still running, failed, or cut short by a crash)."""
        return "PUBLISHED" if self.applied_revision >= self.revision else "REPUBLISH_REQUIRED"


class EnvironmentProject(Base):
    """Limits an environment to some projects; an environment with no rows serves all."""

    __tablename__ = "environment_projects"

    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, index=True
    )
