"""JWKs, with a reference to the material they were derived from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from keyops.storage.models.base import Base, UTCDateTime, utcnow


class Jwk(Base):
    __tablename__ = "jwks"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        Index("ix_jwks_source_certificate_id", "source_certificate_id"),
        Index("ix_jwks_source_key_id", "source_key_id"),
        Index("ix_jwks_source_keystore_id", "source_keystore_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    source_type: Mapped[str] = mapped_column(String(32))
    # Cleared (not cascaded) when the certificate goes: the JWK keeps its material.
    source_certificate_id: Mapped[int | None] = mapped_column(
        ForeignKey("certificates.id", ondelete="SET NULL"), nullable=True
    )
    source_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("crypto_keys.id", ondelete="SET NULL"), nullable=True
    )
    source_keystore_id: Mapped[int | None] = mapped_column(
        ForeignKey("keystores.id", ondelete="SET NULL"), nullable=True
    )
    source_alias: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source_environment: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    key_type: Mapped[str] = mapped_column(String(8))
    use_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    algorithm: Mapped[str | None] = mapped_column(String(32), nullable=True)
    kid: Mapped[str] = mapped_column(String(200))
    # True when the caller chose the kid; a re-derived JWK then keeps it.
    kid_given: Mapped[bool] = mapped_column(default=False)
    # The public JWK as JSON text. Private parameters never go here in clear.
    public_json: Mapped[str] = mapped_column(Text)
    # The private members (d, p, q, ..., or k) as JSON, sealed; None for public JWKs.
    private_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
