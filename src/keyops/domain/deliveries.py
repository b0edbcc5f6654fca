"""Send enqueued webhook deliveries: signed, with a timeout, retried with backoff.

A delivery is claimed in one short transaction (its next attempt moved to the end of a
lease, so no other replica takes it meanwhile, and one that dies mid-attempt leaves it
to be retried), sent outside any transaction, and its outcome recorded in another. A
2xx answer delivers it; anything else is retried after ``webhook_retry_seconds``,
doubling each time (at most an hour), until ``webhook_max_attempts`` are used up and it
is ``failed``. Delivery is at least once: receivers deduplicate on
``X-Keyops-Delivery``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from keyops.config import Settings
from keyops.domain.webhooks import TOPIC, sign
from keyops.metrics import WebhookOutcome, record_webhook_delivery
from keyops.secrets import Keyring, Purpose
from keyops.storage.db import UNAVAILABLE, Database
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.webhooks import (
    DELIVERED,
    FAILED,
    PENDING,
    Claimed,
    WebhookRepository,
)

log = logging.getLogger("keyops.webhooks")

USER_AGENT = "keyops-webhooks"
BATCH = 50
MAX_BACKOFF_SECONDS = 3600.0
# How long the sender sleeps when nothing is due and nothing wakes it.
IDLE_SECONDS = 10.0
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds before the next attempt, after ``attempts`` failed ones."""
    delay = settings.webhook_retry_seconds * 2.0 ** max(attempts - 1, 0)
    return min(delay, MAX_BACKOFF_SECONDS)


def headers_for(claimed: Claimed, signature: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Keyops-Event": claimed.event,
        "X-Keyops-Delivery": str(claimed.id),
        "X-Keyops-Signature": signature,
    }


class DeliveryWorker:
    """Sends due deliveries until cancelled; one per process."""

    def __init__(self, db: Database, settings: Settings, keyring: Keyring) -> None:
        self.db = db
        self.settings = settings
        self.keyring = keyring
        self._client: httpx.AsyncClient | None = None

    def _lease(self) -> timedelta:
        # Longer than any attempt of the batch can take.
        return timedelta(seconds=self.settings.webhook_timeout_seconds * 2 + 30)

    async def deliver_due(self) -> int:
        """Send every delivery due now (one batch); returns how many were attempted."""
        now = utcnow()
        claimed = await self.db.write(
            lambda s: WebhookRepository(s).claim_due(now, now + self._lease(), BATCH)
        )
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._send(c) for c in claimed))
        counted = await self.db.write(lambda s: self._record(s, claimed, outcomes))
        # Counted once committed (keyops_webhook_deliveries_total{outcome}).
        for outcome in counted:
            record_webhook_delivery(outcome)
        return len(claimed)

    async def _send(self, claimed: Claimed) -> Outcome:
        body = claimed.payload.encode("utf-8")
        try:
            secret = self.keyring.open(claimed.secret_sealed, Purpose.WEBHOOK_SECRET)
        except Exception:
            return Outcome(claimed.id, None, "the webhook's secret can not be opened")
        client = self._client or httpx.AsyncClient()
        try:
            response = await client.post(
                claimed.url,
                content=body,
                headers=headers_for(claimed, sign(secret, body)),
                timeout=self.settings.webhook_timeout_seconds,
                follow_redirects=False,
            )
        except httpx.TimeoutException:
            error = f"no answer within {self.settings.webhook_timeout_seconds:g} s"
            return Outcome(claimed.id, None, error)
        except httpx.HTTPError as exc:
            return Outcome(claimed.id, None, (f"{type(exc).__name__}: {exc}")[:MAX_ERROR_LENGTH])
        finally:
            if client is not self._client:
                await client.aclose()
        if 200 <= response.status_code < 300:
            return Outcome(claimed.id, response.status_code, None)
        return Outcome(claimed.id, response.status_code, f"HTTP {response.status_code}")

    def _record(
        self, session: Session, claimed: list[Claimed], outcomes: list[Outcome]
    ) -> list[WebhookOutcome]:
        """Record each attempt's outcome; returns them as the metrics name them."""
        repo = WebhookRepository(session)
        now = utcnow()
        counted: list[WebhookOutcome] = []
        for c, o in zip(claimed, outcomes, strict=True):
            attempts = c.attempts + 1
            values: dict[str, Any] = {
                "attempts": attempts,
                "last_status_code": o.status_code,
                "last_error": o.error,
                "updated_at": now,
            }
            if o.ok:
                values |= {"status": DELIVERED, "delivered_at": now}
                counted.append("delivered")
            elif attempts >= self.settings.webhook_max_attempts:
                values |= {"status": FAILED}
                counted.append("failed")
            else:
                values |= {
                    "status": PENDING,
                    "next_attempt_at": now + timedelta(seconds=backoff(self.settings, attempts)),
                }
                counted.append("retrying")
            repo.finish(c.id, values)
            if not o.ok:
                log.warning(
                    "webhook %s delivery %s attempt %s failed: %s",
                    c.webhook_id,
                    c.id,
                    attempts,
                    o.error,
                )
        return counted

    async def _until_next_due(self) -> float:
        due: datetime | None = await self.db.read(lambda s: WebhookRepository(s).next_due())
        if due is None:
            return IDLE_SECONDS
        return max(0.0, min((due - utcnow()).total_seconds(), IDLE_SECONDS))

    async def run(self) -> None:
        """Deliver whatever is due, then wait for the next due time or a new event."""
        async with httpx.AsyncClient(headers={"User-Agent": USER_AGENT}) as client:
            self._client = client
            with self.db.notifier.subscribe([TOPIC]) as woken:
                while True:
                    try:
                        if await self.deliver_due():
                            continue
                        wait = await self._until_next_due()
                    except asyncio.CancelledError:
                        raise
                    except UNAVAILABLE as exc:
                        # An outage is reported by every request already: one line here.
                        log.warning("sending webhook deliveries paused: %s", type(exc).__name__)
                        wait = IDLE_SECONDS / 3
                    except Exception:
                        log.warning("sending webhook deliveries failed; retrying", exc_info=True)
                        wait = IDLE_SECONDS / 3
                    await woken.wait(wait)
