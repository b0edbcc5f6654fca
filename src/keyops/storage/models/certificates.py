"""Certificates: one per (project, name), with its content and alias per environment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keyops.storage.models.base import Base, UTCDateTime, utcnow


class Certificate(Base):
    __tablename__ = "certificates"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Bumped by every update; lets readers and deployments tell versions apart.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    environments: Mapped[list[CertificateEnvironment]] = relationship(
        back_populates="certificate",
        lazy="raise",
        cascade="all, delete-orphan",
        order_by="CertificateEnvironment.position",
    )


class CertificateEnvironment(Base):
    """The certificate as it stands in one environment."""

    __tablename__ = "certificate_environments"
    __table_args__ = (
        UniqueConstraint("certificate_id", "environment_id"),
        # Decision 7: an alias is unique per (project, environment).
        UniqueConstraint("project_id", "environment_id", "alias"),
        Index("ix_certificate_environments_environment_id", "environment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id", ondelete="CASCADE"))
    # Copied from the certificate so the database itself can enforce alias uniqueness.
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    alias: Mapped[str] = mapped_column(String(200))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    sha1_thumbprint: Mapped[str] = mapped_column(String(40))
    subject_dn: Mapped[str] = mapped_column(Text)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())

    certificate: Mapped[Certificate] = relationship(back_populates="environments", lazy="raise")
