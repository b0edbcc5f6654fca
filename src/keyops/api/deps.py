"""Dependencies: the service context, the caller, role checks and the path's project.

No dependency holds a database session open: each one that needs the database runs one
short read in a reader thread (the caller and the path's project in the same one), so a
client still sending its body holds no connection and no lock. The endpoint then runs
its change as one unit of work (``Keyops.deployer.change`` or ``Keyops.db.write``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from keyops.api.list_cache import ListCache
from keyops.config import Settings
from keyops.deploy.registry import target_names
from keyops.deploy.service import Deployer
from keyops.domain import audit
from keyops.domain.environments import EnvironmentService
from keyops.domain.gateway_hub import NodeHub
from keyops.domain.projects import ProjectService
from keyops.domain.roles import Principal, Role
from keyops.domain.tokens import TokenService
from keyops.errors import Forbidden, NotFound, Unauthorized
from keyops.secrets import Keyring
from keyops.storage.db import Database
from keyops.storage.models import Project

D = TypeVar("D")


@dataclass(frozen=True, slots=True)
class Keyops:
    """What an endpoint needs to run its unit of work."""

    settings: Settings
    db: Database
    keyring: Keyring
    deployer: Deployer
    # The gateway nodes' long-polls (domain/gateway_hub.py).
    nodes: NodeHub
    lists: ListCache = field(default_factory=ListCache)

    def environments(self, session: Session) -> EnvironmentService:
        return EnvironmentService(session, known_targets=target_names(self.settings))


# Dependencies are coroutines even where they need not be: FastAPI runs a plain
# function dependency in its thread pool, one thread hop per request for nothing.
async def get_keyops(request: Request) -> Keyops:
    keyops = request.app.state.keyops
    assert isinstance(keyops, Keyops)
    return keyops


async def get_settings(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


KeyopsDep = Annotated[Keyops, Depends(get_keyops)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer`` header; Unauthorized otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized("Invalid token")
    return token


def _audited(request: Request) -> None:
    """Audit: the request's routed scope (route template, path parameters)."""
    ctx = audit.current.get()
    if ctx is not None:
        ctx.scope = request.scope


def _check_roles(principal: Principal, roles: tuple[Role, ...]) -> Principal:
    ctx = audit.current.get()  # audit: who is calling (the context is shared, not copied)
    if ctx is not None:
        ctx.authenticated(principal.username, principal.token_id)
    missing = [r.value for r in roles if not principal.has(r)]
    if Role.ADMIN.value in missing:
        missing = [Role.ADMIN.value]  # it holds every other role
    if missing:
        raise Forbidden.lacking(missing)
    return principal


def require_roles(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that lets the call through only if the caller holds every role."""

    async def check(request: Request, keyops: KeyopsDep) -> Principal:
        _audited(request)
        token = bearer_token(request)
        return await keyops.db.read(
            lambda s: _check_roles(TokenService(s).authenticate(token), roles)
        )

    return _marked(check, roles)


def _marked(dependency: D, roles: tuple[Role, ...]) -> D:
    """Tell the OpenAPI builder (api/openapi.py) what a caller dependency checks."""
    setattr(dependency, "keyops_authenticates", True)  # noqa: B010 - a function attribute
    setattr(dependency, "keyops_roles", roles)  # noqa: B010
    return dependency


CurrentPrincipal = Annotated[Principal, Depends(require_roles())]
AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
# Decision 10: keys & secrets need ROLE_API_SECURITY; deploying needs ROLE_DEPLOY_UNDEPLOY_PROXIES.
SecurityReader = Annotated[Principal, Depends(require_roles(Role.API_SECURITY))]
SecurityDeployer = Annotated[
    Principal, Depends(require_roles(Role.API_SECURITY, Role.DEPLOY_UNDEPLOY_PROXIES))
]
AdminDeployer = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.DEPLOY_UNDEPLOY_PROXIES))
]


def visible_project(session: Session, principal: Principal, name: str) -> Project:
    """The project if the caller is a member; otherwise it does not exist (decision 10)."""
    project = ProjectService(session).find_visible(principal, name)
    if project is None:
        ctx = audit.current.get()  # audit: this 404 is a refused authorisation
        if ctx is not None:
            ctx.project_hidden = True
        raise NotFound(
            f"Project({name}) was not found or user does not have privilege to access it!"
        )
    return project


@dataclass(frozen=True, slots=True)
class Access:
    """The path's project and the caller, from the same one read."""

    project: Project
    principal: Principal


def _access_of(*roles: Role) -> Callable[..., Coroutine[Any, Any, Access]]:
    async def dependency(projectName: str, request: Request, keyops: KeyopsDep) -> Access:
        _audited(request)
        token = bearer_token(request)

        def read(session: Session) -> Access:
            principal = _check_roles(TokenService(session).authenticate(token), roles)
            return Access(visible_project(session, principal, projectName), principal)

        return await keyops.db.read(read)

    return _marked(dependency, roles)


def _project_of(*roles: Role) -> Callable[..., Coroutine[Any, Any, Project]]:
    access = _access_of(*roles)

    async def dependency(projectName: str, request: Request, keyops: KeyopsDep) -> Project:
        return (await access(projectName, request, keyops)).project

    return _marked(dependency, roles)


# The path's project, once the caller's roles are checked (decision 10: reading needs
# ROLE_API_SECURITY, deploying also ROLE_DEPLOY_UNDEPLOY_PROXIES) and membership too.
ReaderProject = Annotated[Project, Depends(_project_of(Role.API_SECURITY))]
DeployerProject = Annotated[
    Project, Depends(_project_of(Role.API_SECURITY, Role.DEPLOY_UNDEPLOY_PROXIES))
]
# The same, with the caller too: changes that record who made them (history).
DeployerAccess = Annotated[
    Access, Depends(_access_of(Role.API_SECURITY, Role.DEPLOY_UNDEPLOY_PROXIES))
]
