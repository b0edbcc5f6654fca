"""``GET /apiops/expiring/``: what expires soon, across every project the caller may read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query, Request
from sqlalchemy.orm import Session

from keyops.api.deps import KeyopsDep, SecurityReader
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.listing import ExpiringList, expiring_item, parse_days
from keyops.domain.expiry import visible_not_afters

router = SlashAgnosticRouter(prefix="/apiops/expiring", tags=["expiry"])

DEFAULT_WITHIN_DAYS = 30


@router.get(
    "/",
    summary="List expiring certificates, keystore entries and JWKs",
    response_model=ExpiringList,
    response_model_exclude_unset=True,
)
async def list_expiring(
    request: Request,
    principal: SecurityReader,
    k: KeyopsDep,
    withinDays: Annotated[
        str | None,
        Query(description="Days ahead, 0 to 100000 (default 30); expired ones are included."),
    ] = None,
) -> dict[str, Any]:
    """Every certificate (per environment), keystore entry holding a certificate (per
    environment) and JWK with ``exp`` (no environment) whose not-after is at most
    ``withinDays`` days from now, expired ones included, soonest first, with whole days
    left (rounded down, negative once expired). An admin sees every project; anyone else
    the projects they are a member of. Needs ROLE_API_SECURITY (decision 10)."""
    days = parse_days(request, "withinDays", withinDays)
    within = DEFAULT_WITHIN_DAYS if days is None else days
    now = datetime.now(UTC)

    def read(session: Session) -> list[dict[str, Any]]:
        found = visible_not_afters(session, principal, now=now, within_days=within)
        return [expiring_item(e) for e in found]

    rows = await k.db.read(read)
    return {"success": True, "resultList": rows, "resultCount": len(rows), "withinDays": within}
