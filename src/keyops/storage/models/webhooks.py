"""Webhooks, their deliveries, and the expiry alerts already sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from keyops.storage.models.base import Base, UTCDateTime, utcnow


class Webhook(Base):
    """A URL that receives signed events: a project's, or global (``project_id`` None)."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_project_id", "project_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    url: Mapped[str] = mapped_column(Text)
    # The HMAC key, sealed with the master keyring; shown once, when the webhook is made.
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # Comma-separated event names the webhook subscribes to.
    events: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="")


class WebhookDelivery(Base):
    """One event for one webhook: the exact body sent, and how sending it went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_webhook_id", "webhook_id"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    # The JSON body as sent, byte for byte on every attempt (the signature covers it).
    payload: Mapped[str] = mapped_column(Text)
    # pending, delivered or failed (attempts used up).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the next attempt is due; while one is in flight, when its claim lapses.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ExpiryNotification(Base):
    """An expiry threshold already alerted for one resource's material in one environment.

    ``material`` identifies what expires (the resource's creation instant and version,
    the entry's alias, the not-after), so a replacement has no rows and is alerted
    afresh.
    """

    __tablename__ = "expiry_notifications"
    __table_args__ = (
        UniqueConstraint(
            "project_id",
            "kind",
            "name",
            "environment",
            "threshold",
            "material",
            name="uq_expiry_notifications_once",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    # Empty for what is not kept per environment (JWKs).
    environment: Mapped[str] = mapped_column(String(100), default="")
    threshold: Mapped[int] = mapped_column(Integer)
    material: Mapped[str] = mapped_column(String(200))
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
