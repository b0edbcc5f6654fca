"""Webhook and delivery shapes (admin endpoints)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from keyops.api.schemas.common import CamelModel


class WebhookCreate(CamelModel):
    url: str = Field(max_length=2048)
    events: list[str] | None = Field(
        default=None,
        max_length=16,
        description="expiry, created, replaced, deleted, deployment_failed; all if left out.",
    )


class WebhookRead(CamelModel):
    id: int
    project_name: str | None = Field(description="None for a global webhook.")
    url: str
    events: list[str]
    created_at: datetime
    created_by: str


class WebhookCreated(WebhookRead):
    secret: str = Field(description="The HMAC-SHA256 key: shown only in this answer.")


class DeliveryRead(CamelModel):
    id: int
    webhook_id: int
    event: str
    status: str = Field(description="pending, delivered or failed.")
    attempts: int
    next_attempt_at: datetime | None = Field(description="Set while pending.")
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]
