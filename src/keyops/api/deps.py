"""Dependencies: the database session, the caller, and role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from keyops.config import Settings
from keyops.deploy.registry import target_names
from keyops.deploy.service import Deployer
from keyops.domain.environments import EnvironmentService
from keyops.domain.projects import ProjectService
from keyops.domain.roles import Principal, Role
from keyops.domain.tokens import TokenService
from keyops.errors import Forbidden, NotFound, Unauthorized
from keyops.secrets import Keyring
from keyops.storage.db import Database
from keyops.storage.models import Project


def get_settings(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


def get_database(request: Request) -> Database:
    db = request.app.state.db
    assert isinstance(db, Database)
    return db


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session whose transaction commits if the endpoint returns and rolls back if not."""
    async with get_database(request).transaction() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
# Function scope: the commit happens before the response is sent, so a failed commit
# becomes an error response rather than a lie.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer`` header; Unauthorized otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized("Invalid token")
    return token


async def get_principal(request: Request, session: SessionDep) -> Principal:
    return await TokenService(session).authenticate(bearer_token(request))


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that lets the call through only if the caller holds every role."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not all(principal.has(r) for r in roles):
            raise Forbidden()
        return principal

    return check


AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


def get_keyring(request: Request) -> Keyring:
    keyring = request.app.state.keyring
    assert isinstance(keyring, Keyring)
    return keyring


KeyringDep = Annotated[Keyring, Depends(get_keyring)]


def get_deployer(request: Request) -> Deployer:
    deployer = request.app.state.deployer
    assert isinstance(deployer, Deployer)
    return deployer


DeployerDep = Annotated[Deployer, Depends(get_deployer)]
# Decision 10: keys & secrets need ROLE_API_SECURITY; deploying needs ROLE_DEPLOY_UNDEPLOY_PROXIES.
SecurityReader = Annotated[Principal, Depends(require_roles(Role.API_SECURITY))]
SecurityDeployer = Annotated[
    Principal, Depends(require_roles(Role.API_SECURITY, Role.DEPLOY_UNDEPLOY_PROXIES))
]
AdminDeployer = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.DEPLOY_UNDEPLOY_PROXIES))
]


def environment_service(session: AsyncSession, settings: Settings) -> EnvironmentService:
    return EnvironmentService(session, known_targets=target_names(settings))


async def visible_project(session: AsyncSession, principal: Principal, name: str) -> Project:
    """The project if the caller is a member; otherwise it does not exist (decision 10)."""
    project = await ProjectService(session).find_visible(principal, name)
    if project is None:
        raise NotFound(
            f"Project({name}) was not found or user does not have privilege to access it!"
        )
    return project


async def _reader_project(
    projectName: str,
    principal: SecurityReader,
    session: SessionDep,
) -> Project:
    return await visible_project(session, principal, projectName)


async def _deployer_project(
    projectName: str,
    principal: SecurityDeployer,
    session: SessionDep,
) -> Project:
    return await visible_project(session, principal, projectName)


# The path's project, once the caller's roles are checked (decision 10: reading needs
# ROLE_API_SECURITY, deploying also ROLE_DEPLOY_UNDEPLOY_PROXIES) and membership too.
ReaderProject = Annotated[Project, Depends(_reader_project)]
DeployerProject = Annotated[Project, Depends(_deployer_project)]


def _environments(session: SessionDep, settings: SettingsDep) -> EnvironmentService:
    return environment_service(session, settings)


EnvironmentsDep = Annotated[EnvironmentService, Depends(_environments)]
