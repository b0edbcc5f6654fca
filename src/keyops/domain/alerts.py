"""The expiry watcher: alert webhooks once when a resource crosses a days-left threshold.

Every ``expiry_check_seconds`` the watcher takes every stored not-after
(``domain/expiry``: certificates and keystore entries per environment, JWKs with
``exp``) and, for each threshold of ``expiry_thresholds_days`` it has crossed (at most
that many days left: a certificate expiring in 2 days has crossed 30, 14 and 7, not 1
and 0), records one ``expiry_notifications`` row and enqueues one delivery per
subscribed webhook (the project's and the global ones), in one transaction. The row's
key holds what identifies the material (the resource's creation instant and version,
bumped by every replacement, and the not-after), and its insert is ``ON CONFLICT DO
NOTHING``: only what this pass inserted is enqueued, so a restart or a second replica
never alerts twice, and a replacement is alerted afresh. Rows of material no longer
stored are dropped.

One replica at a time runs a pass: on PostgreSQL the pass's transaction takes
``pg_try_advisory_xact_lock`` (a replica that does not get it skips the pass); on
SQLite the writer lock serialises passes. A pass that finds nothing new takes no write
lock at all.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from keyops.config import Settings
from keyops.domain.expiry import not_afters
from keyops.domain.webhooks import EXPIRY, Enqueued, enqueue, events_of, iso
from keyops.storage.db import UNAVAILABLE, Database
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.webhooks import AlertKey, WebhookRepository

log = logging.getLogger("keyops.alerts")

__all__ = ["Crossing", "ExpiryWatcher", "NotAfter", "crossed", "watched"]


@dataclass(frozen=True, slots=True)
class NotAfter:
    """One expiring thing: a resource's material in one environment."""

    project_id: int
    project: str
    kind: str
    name: str
    # "" for a JWK (not kept per environment): part of the alert's key.
    environment: str
    not_after: datetime
    material: str
    # As ``domain/expiry`` (and ``GET /apiops/expiring/``) counts them: rounded down.
    days_left: int
    no_environment: bool = False
    # A keystore's entry.
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Crossing:
    """A threshold a not-after has crossed and that has not been alerted yet."""

    entry: NotAfter
    threshold: int

    @property
    def key(self) -> AlertKey:
        e = self.entry
        return (e.project_id, e.kind, e.name, e.environment, self.threshold, e.material)


def crossed(not_after: datetime, now: datetime, threshold: int) -> bool:
    """Whether at most ``threshold`` days are left until ``not_after``."""
    return not_after - now <= timedelta(days=threshold)


def watched(session: Session, now: datetime) -> list[NotAfter]:
    """Every stored not-after, with what identifies its material."""
    materials = WebhookRepository(session).material_versions()
    found = []
    for e in not_afters(session, None, now=now):
        version = materials.get((e.kind, e.project_id, e.name))
        if version is None:  # made after the listing's read
            continue
        # The not-after is part of it: one keystore entry of several, or a JWK's exp.
        material = f"{version}/{e.alias or ''}/{e.not_after.timestamp():.0f}"
        found.append(
            NotAfter(
                e.project_id,
                e.project,
                e.kind,
                e.name,
                e.environment or "",
                e.not_after,
                material,
                e.days_left,
                e.environment is None,
                e.alias,
            )
        )
    return found


class ExpiryWatcher:
    """Runs expiry passes; ``run`` every ``expiry_check_seconds`` until cancelled."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.thresholds = settings.expiry_thresholds

    def plan(self, session: Session, now: datetime) -> tuple[list[Crossing], list[int]]:
        """The crossings not alerted yet, and the alert rows of material gone."""
        repo = WebhookRepository(session)
        alerted = repo.alerted()
        entries = watched(session, now)
        live = {(e.project_id, e.kind, e.name, e.environment, e.material) for e in entries}
        crossings: list[Crossing] = []
        for entry in entries:
            for threshold in self.thresholds:
                crossing = Crossing(entry, threshold)
                if crossed(entry.not_after, now, threshold) and crossing.key not in alerted:
                    crossings.append(crossing)
        stale = [i for key, i in alerted.items() if (*key[:4], key[5]) not in live]
        return crossings, stale

    def apply(self, session: Session, now: datetime) -> int:
        """Record and enqueue this pass's alerts in the caller's transaction; returns
        how many deliveries were enqueued (0 if another replica holds the pass)."""
        repo = WebhookRepository(session)
        if not repo.try_watch_lock():
            return 0
        crossings, stale = self.plan(session, now)
        repo.forget_alerts(stale)
        rows = [
            {
                "project_id": c.entry.project_id,
                "kind": c.entry.kind,
                "name": c.entry.name,
                "environment": c.entry.environment,
                "threshold": c.threshold,
                "material": c.entry.material,
                "not_after": c.entry.not_after,
                "sent_at": now,
            }
            for c in crossings
        ]
        inserted = repo.record_alerts(rows)
        fresh = [c for c in crossings if c.key in inserted]
        if not fresh:
            return 0
        hooks = [
            w
            for w in repo.subscribers({c.entry.project_id for c in fresh})
            if EXPIRY in events_of(w)
        ]
        return enqueue(
            session,
            (
                Enqueued(hook.id, EXPIRY, _payload(c))
                for c in fresh
                for hook in hooks
                if hook.project_id is None or hook.project_id == c.entry.project_id
            ),
        )

    async def run_pass(self, now: datetime | None = None) -> int:
        """One pass; returns how many deliveries it enqueued."""
        at = now or utcnow()
        crossings, stale = await self.db.read(lambda s: self.plan(s, at))
        if not crossings and not stale:
            return 0
        return await self.db.write(lambda s: self.apply(s, at))

    async def run(self) -> None:
        """A pass at once, then every ``expiry_check_seconds``."""
        while True:
            try:
                await self.run_pass()
            except asyncio.CancelledError:
                raise
            except UNAVAILABLE as exc:
                log.warning("the expiry pass was skipped: %s", type(exc).__name__)
            except Exception:
                log.warning("the expiry pass failed; retrying", exc_info=True)
            await asyncio.sleep(self.settings.expiry_check_seconds)


def _payload(c: Crossing) -> dict[str, object]:
    extra = {"alias": c.entry.alias} if c.entry.alias is not None else {}
    return {
        **extra,
        "event": EXPIRY,
        "project": c.entry.project,
        "kind": c.entry.kind,
        "name": c.entry.name,
        "environment": None if c.entry.no_environment else c.entry.environment,
        "notAfter": iso(c.entry.not_after),
        "daysLeft": c.entry.days_left,
        "threshold": c.threshold,
    }
