"""GET /apiops/projects/: the caller's projects."""

from __future__ import annotations

from sqlalchemy.orm import Session

from keyops.api.deps import (
    CurrentPrincipal,
    KeyopsDep,
)
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.projects import ProjectListRead, ProjectRead
from keyops.domain.projects import ProjectService

router = SlashAgnosticRouter(prefix="/apiops/projects", tags=["projects"])


@router.get("/", response_model=ProjectListRead, summary="List projects")
async def list_projects(principal: CurrentPrincipal, k: KeyopsDep) -> ProjectListRead:
    def work(session: Session) -> ProjectListRead:
        projects = ProjectService(session).visible(principal)
        rows = [ProjectRead(name=p.name, description=p.description) for p in projects]
        return ProjectListRead(result_list=rows, result_count=len(rows))

    return await k.db.read(work)
