"""Queries on webhooks, their deliveries and the expiry alerts already sent."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from keyops.storage.models import Certificate, Jwk, Keystore, Project
from keyops.storage.models.webhooks import ExpiryNotification, Webhook, WebhookDelivery
from keyops.storage.prepared import Prepared

_D = WebhookDelivery
_N = ExpiryNotification
# Held (per transaction) by the one replica whose watcher runs an expiry pass.
_WATCH_LOCK_KEY = 0x6B6F707377

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

# One alert: (project id, kind, name, environment, threshold, material).
AlertKey = tuple[int, str, str, str, int, str]


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery taken for one attempt, with what sending it needs."""

    id: int
    webhook_id: int
    event: str
    payload: str
    attempts: int
    url: str
    secret_sealed: bytes


# Every change of a certificate, key or keystore asks this first.
_ANY_SUBSCRIBER = Prepared(
    select(Webhook.id)
    .where(
        or_(
            Webhook.project_id.is_(None),
            Webhook.project_id.in_(bindparam("ids", expanding=True)),
        )
    )
    .limit(1)
)


class WebhookRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- webhooks ----------------------------------------------------------------------

    def add(self, webhook: Webhook) -> Webhook:
        self.session.add(webhook)
        self.session.flush()
        return webhook

    def get(self, webhook_id: int) -> Webhook | None:
        return self.session.get(Webhook, webhook_id)

    def listing(self, project_id: int | None, *, every: bool = False) -> Sequence[Webhook]:
        """The project's webhooks (``None``: the global ones; ``every``: all of them)."""
        stmt = select(Webhook).order_by(Webhook.id)
        if not every:
            stmt = stmt.where(
                Webhook.project_id.is_(None)
                if project_id is None
                else Webhook.project_id == project_id
            )
        return self.session.scalars(stmt).all()

    def project_names(self, ids: Iterable[int | None]) -> dict[int, str]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        stmt = select(Project.id, Project.name).where(Project.id.in_(wanted))
        return {row[0]: row[1] for row in self.session.execute(stmt).all()}

    def project_ids(self, names: Iterable[str]) -> dict[str, int]:
        wanted = set(names)
        if not wanted:
            return {}
        stmt = select(Project.name, Project.id).where(Project.name.in_(wanted))
        return {row[0]: row[1] for row in self.session.execute(stmt).all()}

    def delete(self, webhook: Webhook) -> None:
        self.session.delete(webhook)
        self.session.flush()

    def subscribers(self, project_ids: Iterable[int]) -> Sequence[Webhook]:
        """The global webhooks and those of the projects: one statement (a cheap one
        when there are none, as for most changes)."""
        ids = set(project_ids)
        if not _ANY_SUBSCRIBER.execute(self.session, {"ids": sorted(ids) or [-1]}):
            return []
        condition: ColumnElement[bool] = Webhook.project_id.is_(None)
        if ids:
            condition = or_(condition, Webhook.project_id.in_(ids))
        return self.session.scalars(select(Webhook).where(condition).order_by(Webhook.id)).all()

    # --- deliveries --------------------------------------------------------------------

    def add_deliveries(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(_D), rows)

    def deliveries(self, webhook_id: int, limit: int) -> Sequence[WebhookDelivery]:
        """The webhook's deliveries, newest first."""
        stmt = select(_D).where(_D.webhook_id == webhook_id).order_by(_D.id.desc()).limit(limit)
        return self.session.scalars(stmt).all()

    def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        """Take pending deliveries that are due, moving their next attempt to the end of
        the lease: a replica that dies mid-attempt leaves them to be retried, and no other
        replica sends them meanwhile."""
        stmt = (
            select(
                _D.id,
                _D.webhook_id,
                _D.event,
                _D.payload,
                _D.attempts,
                Webhook.url,
                Webhook.secret_sealed,
            )
            .join(Webhook, Webhook.id == _D.webhook_id)
            .where(_D.status == PENDING, _D.next_attempt_at <= now)
            .order_by(_D.next_attempt_at, _D.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=_D, skip_locked=True)
        claimed = [Claimed(*row) for row in self.session.execute(stmt).all()]
        if claimed:
            self.session.execute(
                update(_D)
                .where(_D.id.in_([c.id for c in claimed]))
                .values(next_attempt_at=lease_until)
            )
        return claimed

    def next_due(self) -> datetime | None:
        """When the soonest pending delivery is due."""
        stmt = (
            select(_D.next_attempt_at)
            .where(_D.status == PENDING)
            .order_by(_D.next_attempt_at)
            .limit(1)
        )
        found: datetime | None = self.session.execute(stmt).scalar_one_or_none()
        return found

    def finish(self, delivery_id: int, values: dict[str, Any]) -> None:
        """Record an attempt's outcome."""
        self.session.execute(update(_D).where(_D.id == delivery_id).values(**values))

    # --- expiry alerts -----------------------------------------------------------------

    def try_watch_lock(self) -> bool:
        """Whether this transaction may run an expiry pass: on PostgreSQL only one
        replica at a time holds the lock (until its commit); SQLite's writer lock already
        serialises passes."""
        if self.session.get_bind().dialect.name != "postgresql":
            return True
        held = self.session.execute(
            text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _WATCH_LOCK_KEY}
        ).scalar_one()
        return bool(held)

    def alerted(self) -> dict[AlertKey, int]:
        """Every alert already sent, by key, with its row id."""
        stmt = select(
            _N.project_id, _N.kind, _N.name, _N.environment, _N.threshold, _N.material, _N.id
        )
        return {tuple(row[:6]): row[6] for row in self.session.execute(stmt).all()}  # type: ignore[misc]

    def record_alerts(self, rows: list[dict[str, Any]]) -> set[AlertKey]:
        """Insert the alerts that were not sent yet; returns the keys this call inserted
        (a concurrent pass that got there first inserted the others)."""
        if not rows:
            return set()
        dialect = self.session.get_bind().dialect.name
        build = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = (
            build(_N)
            .values(rows)
            .on_conflict_do_nothing(
                index_elements=[
                    "project_id",
                    "kind",
                    "name",
                    "environment",
                    "threshold",
                    "material",
                ]
            )
            .returning(_N.project_id, _N.kind, _N.name, _N.environment, _N.threshold, _N.material)
        )
        return {tuple(row) for row in self.session.execute(stmt).all()}  # type: ignore[misc]

    def forget_alerts(self, ids: Iterable[int]) -> None:
        """Drop alerts of material no longer stored (replaced or deleted)."""
        wanted = list(ids)
        if wanted:
            self.session.execute(delete(_N).where(_N.id.in_(wanted)))

    def material_versions(self) -> dict[tuple[str, int, str], str]:
        """(kind, project id, name) -> what identifies the resource's current material:
        its creation instant and version (bumped by every replacement) for certificates
        and keystores, its creation instant for JWKs. Three statements, no blobs."""
        found: dict[tuple[str, int, str], str] = {}
        for kind, model in (("certificate", Certificate), ("keystore", Keystore)):
            stmt = select(model.project_id, model.name, model.created_at, model.version)
            for project_id, name, created_at, version in self.session.execute(stmt).all():
                found[(kind, project_id, name)] = f"{created_at.timestamp():.6f}/v{version}"
        stmt_jwk = select(Jwk.project_id, Jwk.name, Jwk.created_at)
        for project_id, name, created_at in self.session.execute(stmt_jwk).all():
            found[("jwk", project_id, name)] = f"{created_at.timestamp():.6f}"
        return found
