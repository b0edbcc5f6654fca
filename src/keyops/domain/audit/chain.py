"""The audit chain: what a change notes in its transaction, the entries appended with
its commit (or alone, for a refusal), hash-chained, and their verification (see the
package's docstring)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from keyops.domain.audit.context import Operation, Outcome, RequestContext, current, route_change
from keyops.storage.db import UNAVAILABLE, Database
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.audit import AuditRepository

log = logging.getLogger("keyops.audit")

GENESIS = "0" * 64


# --- what a change notes in its transaction -------------------------------------------

_NOTES = "keyops.audit.notes"
_PLAN = "keyops.audit.plan"


def fingerprints(materials: Iterable[bytes]) -> str | None:
    """The SHA-256 fingerprints of a resource's material, distinct, in first-seen order,
    comma-separated (one per environment whose material differs)."""
    seen: dict[str, None] = {}
    for material in materials:
        seen[hashlib.sha256(material).hexdigest()] = None
    return ",".join(seen) or None


def note(
    session: Session,
    operation: str,
    project: str,
    kind: str,
    name: str,
    environments: Sequence[str],
    *,
    before: str | None = None,
    after: str | None = None,
) -> None:
    """Record, in memory, what the change does; appended when the transaction commits."""
    session.info.setdefault(_NOTES, []).append(
        {
            "operation": operation,
            "project": project,
            "kind": kind,
            "name": name,
            "environments": list(environments),
            "before_sha256": before,
            "after_sha256": after,
        }
    )


def planned(session: Session, plan: Any) -> None:
    """Keep the change's deployment plan: its environments name an un-noted change's."""
    session.info[_PLAN] = plan


def _plan_environments(plan: Any) -> list[str]:
    if plan is None:
        return []
    return [change.environment.name for change in plan.changes(0)]


# --- the chain --------------------------------------------------------------------------

_HASHED = (
    "id",
    "at",
    "username",
    "token_id",
    "source_address",
    "request_id",
    "operation",
    "project",
    "kind",
    "name",
    "environments",
    "before_sha256",
    "after_sha256",
    "outcome",
    "detail",
    "prev_hash",
)


def _time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(entry: dict[str, Any]) -> bytes:
    """The bytes an entry's hash is over: its fields (``hash`` aside) as sorted,
    compact JSON, time as UTC ISO-8601 with microseconds."""
    values = {k: entry.get(k) for k in _HASHED}
    values["at"] = _time(entry["at"])
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def append(session: Session, entries: Sequence[dict[str, Any]]) -> None:
    """Chain and insert entries in the session's transaction, under the chain lock."""
    if not entries:
        return
    repo = AuditRepository(session)
    head = repo.lock_head()
    position, prev = head if head is not None else (0, GENESIS)
    now = utcnow()
    rows = []
    for entry in entries:
        position += 1
        row = {**entry, "id": position, "at": now, "prev_hash": prev}
        row["environments"] = json.dumps(list(entry.get("environments") or []))
        row["hash"] = prev = entry_hash(row)
        rows.append(row)
    repo.append(rows)


def _who(ctx: RequestContext | None) -> dict[str, Any]:
    if ctx is None:
        return {"username": None, "token_id": None, "source_address": None, "request_id": None}
    return {
        "username": ctx.username,
        "token_id": ctx.token_id,
        "source_address": ctx.source_address,
        "request_id": ctx.request_id,
    }


def _before_commit(session: Session) -> None:
    notes: list[dict[str, Any]] | None = session.info.pop(_NOTES, None)
    plan = session.info.pop(_PLAN, None)
    ctx = current.get()
    route = route_change(ctx) if ctx is not None else None
    if notes:
        rollback = route is not None and route.operation == Operation.ROLLBACK
        for n in notes:
            if rollback:
                n["operation"] = Operation.ROLLBACK
            if not n["environments"]:
                n["environments"] = _plan_environments(plan)
    elif route is not None and ctx is not None and not ctx.changed:
        notes = [
            {
                "operation": route.operation,
                "project": route.project,
                "kind": route.kind,
                "name": route.name,
                "environments": _plan_environments(plan),
            }
        ]
    else:
        return
    who = _who(ctx)
    append(session, [{**who, **n, "outcome": Outcome.SUCCESS} for n in notes])
    if ctx is not None:
        ctx.changed = True


def _after_rollback(session: Session) -> None:
    session.info.pop(_NOTES, None)
    session.info.pop(_PLAN, None)


def install(db: Database) -> None:
    """Append every write transaction's entries with its commit."""
    event.listen(db.sessionmaker, "before_commit", _before_commit)
    event.listen(db.sessionmaker, "after_rollback", _after_rollback)


async def record(db: Database, outcome: str, detail: str) -> None:
    """Append one entry in its own transaction (a refusal, a failed authorisation): the
    request's context says who and what. A failed authorisation's operation is
    AUTH_FAILED; a refusal's is the route's. Never fails the request it records."""
    ctx = current.get()
    route = route_change(ctx) if ctx is not None else None
    path = str(ctx.scope.get("path", "")) if ctx is not None else ""
    method = ctx.method if ctx is not None else ""
    params = (ctx.scope.get("path_params") or {}) if ctx is not None else {}
    refused = outcome == Outcome.REFUSED and route is not None
    entry = {
        **_who(ctx),
        "operation": route.operation if refused and route else Operation.AUTH_FAILED,
        "project": route.project if route else params.get("projectName"),
        "kind": route.kind if route else None,
        "name": route.name if route else None,
        "environments": [],
        "before_sha256": None,
        "after_sha256": None,
        "outcome": outcome,
        "detail": f"{method} {path}: {detail}".strip(),
    }

    def write(session: Session) -> None:
        # Nothing else is in this transaction: keep the commit hook from adding more.
        append(session, [entry])

    try:
        token = current.set(None)
        try:
            await db.write(write)
        finally:
            current.reset(token)
    except UNAVAILABLE as exc:
        log.warning("appending an audit entry failed: %s", type(exc).__name__)
    except Exception:
        log.warning("appending an audit entry failed", exc_info=True)


# --- verifying ---------------------------------------------------------------------------


@dataclass
class Verdict:
    ok: bool
    count: int
    position: int | None = None
    problem: str | None = None
    checked: list[int] = field(default_factory=list)


def verify(rows: Iterator[dict[str, Any]]) -> Verdict:
    """Walk the chain in position order: the first row whose position, ``prev_hash`` or
    ``hash`` does not follow from the one before is where it was edited, inserted,
    deleted or reordered."""
    expected_prev, expected_id, count = GENESIS, 1, 0
    for row in rows:
        if row["id"] != expected_id:
            return Verdict(
                False,
                count,
                row["id"],
                f"entry {row['id']}: expected entry {expected_id} here"
                " (an entry was deleted or inserted)",
            )
        if row["prev_hash"] != expected_prev:
            return Verdict(
                False,
                count,
                row["id"],
                f"entry {row['id']}: prev_hash does not match the previous entry's hash"
                " (an entry before it was edited, deleted, inserted or reordered)",
            )
        if entry_hash(row) != row["hash"]:
            return Verdict(
                False, count, row["id"], f"entry {row['id']}: hash does not match (edited)"
            )
        expected_prev, expected_id, count = row["hash"], expected_id + 1, count + 1
    return Verdict(True, count)
