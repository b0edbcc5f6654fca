"""Environments: all (admin only) and by project."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from keyops.api.deps import (
    CurrentPrincipal,
    KeyopsDep,
    bearer_token,
)
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.environments import EnvironmentListRead, EnvironmentRead
from keyops.domain.projects import ProjectService
from keyops.domain.roles import Principal
from keyops.domain.tokens import TokenService
from keyops.errors import BadRequest, Unauthorized

router = SlashAgnosticRouter(prefix="/apiops/environments", tags=["environments"])

_ENV_LIST_DENIED = "Invalid token or insufficient permissions"


async def _admin_for_env_list(request: Request, k: KeyopsDep) -> Principal:
    # The list-environments page answers a bad token and a non-admin alike: 401.
    def work(session: Session) -> Principal:
        try:
            principal = TokenService(session).authenticate(bearer_token(request))
        except Unauthorized:
            raise Unauthorized(_ENV_LIST_DENIED) from None
        if not principal.is_admin:
            raise Unauthorized(_ENV_LIST_DENIED)
        return principal

    return await k.db.read(work)


@router.get("/", response_model=EnvironmentListRead, summary="List environments (admin)")
async def list_environments(
    _principal: Annotated[Principal, Depends(_admin_for_env_list)],
    k: KeyopsDep,
) -> EnvironmentListRead:
    def work(session: Session) -> EnvironmentListRead:
        envs = k.environments(session).list_all()
        rows = [EnvironmentRead.of(e) for e in envs]
        return EnvironmentListRead(result_list=rows, result_count=len(rows))

    return await k.db.read(work)


@router.get(
    "/{projectName}",
    response_model=EnvironmentListRead,
    summary="Get environments by project",
)
async def environments_by_project(
    projectName: str,
    principal: CurrentPrincipal,
    k: KeyopsDep,
) -> EnvironmentListRead:
    def work(session: Session) -> EnvironmentListRead:
        project = ProjectService(session).find_visible(principal, projectName)
        if project is None:
            raise BadRequest(
                f"Project not found for name: ({projectName}) or user has not privilege to"
                " access it!"
            )
        envs = k.environments(session).list_for_project(project)
        rows = [EnvironmentRead.of(e) for e in envs]
        return EnvironmentListRead(result_list=rows, result_count=len(rows))

    return await k.db.read(work)
