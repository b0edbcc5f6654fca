"""Keystores (JKS, PKCS12): one per (project, name), with its file per environment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keyops.storage.models.base import Base, UTCDateTime, utcnow


class Keystore(Base):
    __tablename__ = "keystores"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    environments: Mapped[list[KeystoreEnvironment]] = relationship(
        back_populates="keystore",
        lazy="raise",
        cascade="all, delete-orphan",
        order_by="KeystoreEnvironment.position",
    )


class KeystoreEnvironment(Base):
    """The keystore in one environment: file and password sealed, entry summary clear."""

    __tablename__ = "keystore_environments"
    __table_args__ = (
        UniqueConstraint("keystore_id", "environment_id"),
        Index("ix_keystore_environments_environment_id", "environment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    keystore_id: Mapped[int] = mapped_column(ForeignKey("keystores.id", ondelete="CASCADE"))
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    store_type: Mapped[str] = mapped_column(String(16))
    file_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # An empty password (sealed) for a store of trusted certificates sent without one.
    password_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # Only when keytool's -keypass differed from -storepass; else the store password.
    key_password_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Aliases, kinds and certificate summaries: public facts, kept clear for listing.
    entries_json: Mapped[str] = mapped_column(Text)

    keystore: Mapped[Keystore] = relationship(back_populates="environments", lazy="raise")
