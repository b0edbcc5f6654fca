"""Expiry: every stored "not after", per environment, for a set of projects or all.

``not_afters(session, project_ids, now=...)`` is the one function to call. It answers
``Expiring`` records, soonest first, in three statements whatever the count:

- ``certificate``: each certificate's end date, one record per environment row.
- ``keystore``: each keystore entry holding a certificate, per environment, with the
  entry's ``alias``; its end date comes from the public entry summary stored at upload
  (no secret is unsealed). Entries without a certificate (secret keys) have none.
- ``jwk``: each JWK whose public JSON has a numeric ``exp`` (seconds since the epoch).
  A JWK is one document per project, not a per-environment row, so its ``environment``
  is ``None``.

``days_left`` is ``floor((not_after - now) / 1 day)``: 0 in the last day, negative once
expired (-1 during the first day after). ``within_days=N`` keeps the records whose
not-after is at most N days from now (``not_after - now <= N days``), expired ones
included. The kinds are the contract's resource names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from keyops.domain.projects import ProjectService
from keyops.domain.roles import Principal
from keyops.storage.repositories.expiry import ExpiryRepository

__all__ = [
    "Expiring",
    "ExpiryKind",
    "days_left",
    "jwk_not_after",
    "keystore_not_afters",
    "not_afters",
    "visible_not_afters",
]

ExpiryKind = Literal["certificate", "keystore", "jwk"]
_DAY = timedelta(days=1)


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days from ``now`` to ``not_after``, rounded down (negative once past)."""
    return (not_after - now) // _DAY


@dataclass(frozen=True, slots=True)
class Expiring:
    """One not-after: a resource's certificate (or ``exp``) in one environment."""

    project_id: int
    project: str
    kind: ExpiryKind
    name: str
    # None for a JWK: JWKs are not stored per environment.
    environment: str | None
    not_after: datetime
    days_left: int
    # The keystore entry's alias; None for certificates and JWKs.
    alias: str | None = None


def keystore_not_afters(entries_json: str) -> list[tuple[str, datetime]]:
    """(alias, not-after) of each entry of a stored keystore summary that has one."""
    found = []
    for entry in json.loads(entries_json):
        end = entry.get("endDate")
        if end:
            found.append((entry["alias"], _instant(end)))
    return found


def jwk_not_after(public_json: str) -> datetime | None:
    """The JWK's ``exp`` as an instant, or None if it has no usable one."""
    try:
        exp: Any = json.loads(public_json).get("exp")
    except (ValueError, AttributeError):
        return None
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        return None
    try:
        return datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def not_afters(
    session: Session,
    project_ids: Collection[int] | None,
    *,
    now: datetime,
    within_days: int | None = None,
) -> list[Expiring]:
    """Every not-after of the projects (all projects when ``project_ids`` is None),
    soonest first (then project, kind, name, environment, alias), optionally only those
    at most ``within_days`` days from ``now``."""
    repo = ExpiryRepository(session)
    until = now + timedelta(days=within_days) if within_days is not None else None
    found: list[Expiring] = []

    def keep(not_after: datetime) -> bool:
        return until is None or not_after <= until

    for c in repo.certificates(project_ids, until):
        found.append(
            Expiring(
                c.project_id,
                c.project,
                "certificate",
                c.name,
                c.environment,
                c.not_after,
                days_left(c.not_after, now),
            )
        )
    for k in repo.keystores(project_ids):
        for alias, not_after in keystore_not_afters(k.entries_json):
            if keep(not_after):
                found.append(
                    Expiring(
                        k.project_id,
                        k.project,
                        "keystore",
                        k.name,
                        k.environment,
                        not_after,
                        days_left(not_after, now),
                        alias,
                    )
                )
    for j in repo.jwks(project_ids):
        jwk_end = jwk_not_after(j.public_json)
        if jwk_end is not None and keep(jwk_end):
            found.append(
                Expiring(
                    j.project_id,
                    j.project,
                    "jwk",
                    j.name,
                    None,
                    jwk_end,
                    days_left(jwk_end, now),
                )
            )
    found.sort(
        key=lambda e: (e.not_after, e.project, e.kind, e.name, e.environment or "", e.alias or "")
    )
    return found


def visible_not_afters(
    session: Session, principal: Principal, *, now: datetime, within_days: int | None = None
) -> list[Expiring]:
    """``not_afters`` of every project the caller may read: all for an admin, else the
    projects they are a member of (decision 10)."""
    project_ids = None
    if not principal.is_admin:
        project_ids = [p.id for p in ProjectService(session).visible(principal)]
        if not project_ids:
            return []
    return not_afters(session, project_ids, now=now, within_days=within_days)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
