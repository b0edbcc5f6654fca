"""What each environment holds, and the log of every attempt to change it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from keyops.storage.models.base import Base, UTCDateTime, utcnow


class DeployedArtifact(Base):
    """One artifact as the in-process target holds it in one environment.

    Public content (not sealed) is stored once per distinct content in
    ``artifact_contents``, under its hash, and ``content`` is empty: one admin
    certificate's JWK in a thousand projects' environments is one row of bytes, not
    thousands. Sealed content stays in its own row, sealed for it.
    """

    __tablename__ = "deployed_artifacts"
    __table_args__ = (UniqueConstraint("environment_id", "kind", "project", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    project: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    # Sealed with the master keyring when the artifact carries secret material; empty
    # when it is public (its bytes are in ``artifact_contents``).
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sealed: Mapped[bool] = mapped_column(default=False)
    alias: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The change revision this row came from. A change older than the row is ignored,
    # so deployments that finish out of order still leave the newest state.
    revision: Mapped[int] = mapped_column(BigInteger)
    # False is a tombstone: undeployed at ``revision``, kept to refuse older deploys.
    present: Mapped[bool] = mapped_column(default=True)
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ArtifactContent(Base):
    """The bytes of public artifact content, once per distinct content (SHA-256 hex).

    Written by every change that deploys public content (before the artifact rows that
    point at it), read through a join by whoever reads deployed artifacts, and removed
    by the reconciler once no artifact row points at it (``DesiredStateRepository``).
    """

    __tablename__ = "artifact_contents"

    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class DeploymentAttempt(Base):
    """The outcome of deploying or undeploying one artifact to one environment."""

    __tablename__ = "deployment_attempts"
    __table_args__ = (Index("ix_deployment_attempts_environment_id_at", "environment_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    project: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revision: Mapped[int] = mapped_column(BigInteger)
    success: Mapped[bool] = mapped_column()
    message: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RevisionCounter(Base):
    """One row: the last change revision handed out. Every deploying change takes the next."""

    __tablename__ = "revision_counter"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class MasterKeyState(Base):
    """One row: the id (not the key) of the master key every sealed value is under."""

    __tablename__ = "master_key_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32))
    rotated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
