"""Crypto keys: one per (project, name), with its material per environment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keyops.storage.models.base import Base, UTCDateTime, utcnow


class CryptoKey(Base):
    __tablename__ = "crypto_keys"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    key_type: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    environments: Mapped[list[CryptoKeyEnvironment]] = relationship(
        back_populates="key",
        lazy="raise",
        cascade="all, delete-orphan",
        order_by="CryptoKeyEnvironment.position",
    )


class CryptoKeyEnvironment(Base):
    """The key's material in one environment; private material only sealed."""

    __tablename__ = "crypto_key_environments"
    __table_args__ = (
        UniqueConstraint("key_id", "environment_id"),
        Index("ix_crypto_key_environments_environment_id", "environment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("crypto_keys.id", ondelete="CASCADE"))
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    public_der: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # PKCS#8 DER of a private key, or the raw secret of a symmetric key, sealed.
    private_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    curve: Mapped[str | None] = mapped_column(String(32), nullable=True)
    size_bits: Mapped[int | None] = mapped_column(Integer, nullable=True)

    key: Mapped[CryptoKey] = relationship(back_populates="environments", lazy="raise")
