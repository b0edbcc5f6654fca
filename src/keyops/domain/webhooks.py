"""Webhooks: who receives which events, and putting an event in their delivery queue.

An event is enqueued in the transaction of what it reports (a change, a failed
roll-out, an expiry threshold crossed): it is sent only if that commits, and a commit
is never without its events. ``domain/deliveries`` sends them afterwards. The body is
fixed when the event is enqueued, so every attempt sends, and signs, the same bytes.

Receivers verify ``X-Keyops-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body
bytes, keyed with the webhook's secret (shown once, when the webhook is made; sealed
with the master keyring at rest).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session

from keyops.deploy.target import ArtifactRef, EnvironmentChange, EnvironmentResult
from keyops.errors import BadRequest, NotFound
from keyops.secrets import Keyring, Purpose
from keyops.storage import notify
from keyops.storage.db import MAX_ROW_ID
from keyops.storage.models import Environment, Project
from keyops.storage.models.base import utcnow
from keyops.storage.models.webhooks import Webhook, WebhookDelivery
from keyops.storage.repositories.webhooks import PENDING, WebhookRepository

__all__ = [
    "CHANGE_EVENTS",
    "EVENTS",
    "EXPIRY",
    "TOPIC",
    "Enqueued",
    "WebhookService",
    "body_of",
    "deployment_failed",
    "enqueue",
    "events_of",
    "iso",
    "resource_changed",
    "sign",
]

EXPIRY = "expiry"
CHANGE_EVENTS = ("created", "replaced", "deleted")
DEPLOYMENT_FAILED = "deployment_failed"
EVENTS = (EXPIRY, *CHANGE_EVENTS, DEPLOYMENT_FAILED)
# Woken when a delivery is enqueued (in this process at once, other replicas via NOTIFY).
TOPIC = "webhooks"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MAX_URL_LENGTH = 2048
# A failed roll-out lists at most this many of the environment's artifacts.
MAX_LISTED_RESOURCES = 100


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Keyops-Signature`` value of a body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def body_of(payload: Mapping[str, Any]) -> str:
    """The exact JSON text sent (and signed) for a payload."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def iso(moment: datetime) -> str:
    """A UTC instant as ``2026-12-02T14:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_url(url: str) -> str:
    url = url.strip()
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if (
        parsed is None
        or parsed.scheme not in ("http", "https")
        or not parsed.host
        or len(url) > MAX_URL_LENGTH
    ):
        raise BadRequest("url must be an absolute http or https URL!")
    return url


def _check_events(events: Sequence[str] | None) -> list[str]:
    if not events:
        return list(EVENTS)
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise BadRequest(f"Unknown webhook event: {unknown[0]}. Valid events: {', '.join(EVENTS)}")
    return [e for e in EVENTS if e in set(events)]


def events_of(webhook: Webhook) -> list[str]:
    return [e for e in webhook.events.split(",") if e]


@dataclass(frozen=True, slots=True)
class Enqueued:
    """One delivery to enqueue: the webhook it goes to and its payload."""

    webhook_id: int
    event: str
    payload: Mapping[str, Any]


def enqueue(session: Session, deliveries: Iterable[Enqueued]) -> int:
    """Add deliveries in the caller's transaction and wake the senders at its commit."""
    now = utcnow()
    rows = [
        {
            "webhook_id": d.webhook_id,
            "event": d.event,
            "payload": body_of(d.payload),
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for d in deliveries
    ]
    if rows:
        WebhookRepository(session).add_deliveries(rows)
        notify.publish(session, TOPIC)
    return len(rows)


def _subscribed(webhooks: Iterable[Webhook], event: str) -> list[Webhook]:
    return [w for w in webhooks if event in events_of(w)]


def resource_changed(
    session: Session,
    event: str,
    project: Project,
    kind: str,
    name: str,
    environments: Sequence[Environment] | Callable[[], Iterable[str]],
) -> int:
    """Enqueue a change event (created, replaced, deleted) for the project's and the
    global webhooks subscribed to it, in the change's transaction. ``environments`` are
    the resource's, or a function naming them, called only when a webhook listens."""
    hooks = _subscribed(WebhookRepository(session).subscribers([project.id]), event)
    if not hooks:
        return 0
    payload = {
        "event": event,
        "project": project.name,
        "kind": kind,
        "name": name,
        "environments": (
            list(environments()) if callable(environments) else [e.name for e in environments]
        ),
        "occurredAt": iso(utcnow()),
    }
    return enqueue(session, (Enqueued(w.id, event, payload) for w in hooks))


def deployment_failed(
    session: Session, failures: Sequence[tuple[EnvironmentChange, EnvironmentResult]]
) -> int:
    """Enqueue ``deployment_failed`` for each environment whose roll-out failed.

    A project's webhook hears only of its project's resources; a global one of all.
    """
    if not failures:
        return 0
    repo = WebhookRepository(session)
    names = {ref.project for change, _ in failures for ref in _refs(change)}
    ids = repo.project_ids(names)
    hooks = _subscribed(repo.subscribers(ids.values()), DEPLOYMENT_FAILED)
    if not hooks:
        return 0
    project_of = {v: k for k, v in ids.items()}
    out: list[Enqueued] = []
    for change, result in failures:
        refs = _refs(change)
        for hook in hooks:
            # A project's webhook: only its project's resources, and only if any.
            scope = project_of.get(hook.project_id) if hook.project_id is not None else None
            mine = [r for r in refs if scope is None or r.project == scope]
            if not mine:
                continue
            payload = {
                "event": DEPLOYMENT_FAILED,
                "environment": change.environment.name,
                "revision": change.revision,
                "message": result.message,
                "resourceCount": len(mine),
                "resources": [
                    {"project": r.project, "kind": r.kind, "name": r.name}
                    for r in mine[:MAX_LISTED_RESOURCES]
                ],
                "occurredAt": iso(utcnow()),
            }
            out.append(Enqueued(hook.id, DEPLOYMENT_FAILED, payload))
    return enqueue(session, out)


def _refs(change: EnvironmentChange) -> list[ArtifactRef]:
    return [a.ref for a in change.deploy] + list(change.undeploy)


@dataclass(frozen=True, slots=True)
class CreatedWebhook:
    webhook: Webhook
    # Shown once, in the answer to the create; never stored in clear.
    secret: str


class WebhookService:
    """Create, list and delete webhooks, and read their deliveries."""

    def __init__(self, session: Session, keyring: Keyring) -> None:
        self.session = session
        self.repo = WebhookRepository(session)
        self.keyring = keyring

    def create(
        self, project: Project | None, url: str, events: Sequence[str] | None, author: str
    ) -> CreatedWebhook:
        url = _check_url(url)
        chosen = _check_events(events)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        webhook = self.repo.add(
            Webhook(
                project_id=project.id if project is not None else None,
                url=url,
                secret_sealed=self.keyring.seal(secret.encode("ascii"), Purpose.WEBHOOK_SECRET),
                events=",".join(chosen),
                created_at=utcnow(),
                created_by=author,
            )
        )
        return CreatedWebhook(webhook, secret)

    def listing(self, project: Project | None, *, every: bool = False) -> Sequence[Webhook]:
        return self.repo.listing(project.id if project is not None else None, every=every)

    def get(self, webhook_id: int, project: Project | None, *, every: bool = False) -> Webhook:
        """The webhook of the project (``None``: global; ``every``: any)."""
        found = self.repo.get(webhook_id) if 0 < webhook_id <= MAX_ROW_ID else None
        scope = project.id if project is not None else None
        if found is None or (not every and found.project_id != scope):
            raise NotFound(f"Webhook (id: {webhook_id}) is not found!")
        return found

    def delete(self, webhook: Webhook) -> None:
        self.repo.delete(webhook)

    def deliveries(self, webhook: Webhook, limit: int) -> Sequence[WebhookDelivery]:
        return self.repo.deliveries(webhook.id, limit)

    def project_names(self, webhooks: Iterable[Webhook]) -> dict[int, str]:
        return self.repo.project_names(w.project_id for w in webhooks)
