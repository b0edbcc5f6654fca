"""The audit log, read-only: ``GET /apiops/admin/audit/`` (admin). Nothing here, nor
anywhere in the API, updates or deletes an entry."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy.orm import Session

from keyops.api.deps import AdminPrincipal, KeyopsDep
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.common import CamelModel
from keyops.domain import audit

router = SlashAgnosticRouter(prefix="/apiops/admin/audit", tags=["audit"])


class AuditEntryRead(CamelModel):
    id: int
    time: datetime
    username: str | None
    token_id: int | None
    # Additive: the token's name (``client_credentials`` for one issued at login).
    token_name: str | None = None
    source_address: str | None
    request_id: str | None
    operation: str
    project: str | None
    kind: str | None
    name: str | None
    environments: list[str]
    before_sha256: str | None
    after_sha256: str | None
    outcome: str
    description: str | None
    prev_hash: str
    hash: str


class AuditPage(CamelModel):
    success: bool = True
    result_list: list[AuditEntryRead]
    result_count: int
    page: int
    size: int
    total_count: int


def _read(row: Any, token_names: dict[int, str]) -> AuditEntryRead:
    return AuditEntryRead(
        id=row.id,
        time=row.at,
        username=row.username,
        token_id=row.token_id,
        token_name=token_names.get(row.token_id) if row.token_id else None,
        source_address=row.source_address,
        request_id=row.request_id,
        operation=row.operation,
        project=row.project,
        kind=row.kind,
        name=row.name,
        environments=json.loads(row.environments or "[]"),
        before_sha256=row.before_sha256,
        after_sha256=row.after_sha256,
        outcome=row.outcome,
        description=row.detail,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


@router.get(
    "/",
    summary="Search the audit log (newest first)",
    response_model=AuditPage,
    response_model_by_alias=True,
)
async def search(
    _: AdminPrincipal,
    k: KeyopsDep,
    user: str | None = None,
    project: str | None = None,
    kind: str | None = None,
    name: str | None = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    page: Annotated[int, Query(ge=0, le=10**9)] = 0,
    size: Annotated[int, Query(ge=1, le=audit.MAX_PAGE_SIZE)] = 100,
) -> AuditPage:
    filters = audit.AuditFilter(user, project, kind, name, since, until)

    def read(session: Session) -> AuditPage:
        rows, total = audit.search(session, filters, page, size)
        names = audit.token_names(session, rows)
        items = [_read(r, names) for r in rows]
        return AuditPage(
            result_list=items, result_count=len(items), page=page, size=size, total_count=total
        )

    return await k.db.read(read)
