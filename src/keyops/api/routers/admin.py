"""Admin-only management: users, tokens, projects, members and environments.

These go beyond the Apinizer pages so that a pipeline can set up a fresh install
without a shell. All answer in the keys & secrets envelope.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy.orm import Session

from keyops.api.deps import (
    AdminDeployer,
    AdminPrincipal,
    KeyopsDep,
)
from keyops.api.responses import result, result_list
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.common import CamelModel, SuccessRead
from keyops.api.schemas.environments import (
    EnvironmentAdminRead,
    EnvironmentCreate,
    EnvironmentRead,
    TlsIdentityRead,
)
from keyops.api.schemas.projects import MemberCreate, ProjectCreate, ProjectRead
from keyops.api.schemas.users import (
    PersonalTokenCreated,
    PersonalTokenRead,
    TokenCreate,
    UserCreate,
    UserRead,
    UserUpdate,
)
from keyops.config import Settings
from keyops.cpu import run_cpu
from keyops.deploy.plan import ChangePlan
from keyops.domain.environments import EnvironmentService
from keyops.domain.gateway import GatewayService, set_tls_identity
from keyops.domain.projects import ProjectService
from keyops.domain.roles import Role
from keyops.domain.tokens import TokenService, parse_expiry
from keyops.domain.users import UserService, hash_password
from keyops.errors import BadRequest
from keyops.secrets import Keyring
from keyops.storage.models import AccessToken, Environment, GatewayCredential, User
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.projects import ProjectRepository

router = SlashAgnosticRouter(prefix="/apiops/admin", tags=["admin"])


def _user(user: User) -> dict[str, Any]:
    return UserRead(
        username=user.username,
        roles=sorted(user.role_names),
        enabled=user.enabled,
        created_at=user.created_at,
    ).model_dump(mode="json", by_alias=True)


def _token(record: AccessToken, username: str) -> PersonalTokenRead:
    now = utcnow()
    return PersonalTokenRead(
        id=record.id,
        name=record.name,
        username=username,
        prefix=record.prefix,
        created_at=record.created_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
        active=record.revoked_at is None and (record.expires_at is None or record.expires_at > now),
    )


# --- users ---------------------------------------------------------------------------


@router.get("/users/", summary="List users")
async def list_users(_: AdminPrincipal, k: KeyopsDep) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        return result_list(_user(u) for u in UserService(session).list())

    return await k.db.read(work)


@router.post("/users/", summary="Create a user")
async def create_user(body: UserCreate, _: AdminPrincipal, k: KeyopsDep) -> dict[str, Any]:
    # argon2 runs in the CPU pool, before the transaction, never in the writer thread.
    password_hash = await run_cpu(hash_password, body.password)

    def work(session: Session) -> dict[str, Any]:
        user = UserService(session).create(
            body.username, body.password, body.roles, password_hash=password_hash
        )
        return result(_user(user))

    return await k.db.write(work)


@router.get("/users/{username}/", summary="Get a user")
async def get_user(username: str, _: AdminPrincipal, k: KeyopsDep) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        return result(_user(UserService(session).get(username)))

    return await k.db.read(work)


@router.patch("/users/{username}/", summary="Change a user's password, roles or state")
async def update_user(
    username: str, body: UserUpdate, principal: AdminPrincipal, k: KeyopsDep
) -> dict[str, Any]:
    password_hash = None
    if body.password is not None:
        password_hash = await run_cpu(hash_password, body.password)

    def work(session: Session) -> dict[str, Any]:
        if username == principal.username:
            # Like deleting oneself: an admin must not lock themselves out over REST.
            if body.enabled is False:
                raise BadRequest("You can not disable your own user!")
            if body.roles is not None and Role.ADMIN not in body.roles:
                raise BadRequest(f"You can not remove {Role.ADMIN} from your own user!")
        users = UserService(session)
        user = users.get(username)
        if body.password is not None:
            users.set_password(username, body.password, password_hash=password_hash)
        if body.roles is not None:
            users.set_roles(username, body.roles)
        if body.enabled is not None:
            users.set_enabled(username, body.enabled)
        return result(_user(user))

    return await k.db.write(work)


@router.delete("/users/{username}/", summary="Delete a user", response_model=SuccessRead)
async def delete_user(username: str, principal: AdminPrincipal, k: KeyopsDep) -> SuccessRead:
    def work(session: Session) -> SuccessRead:
        if username == principal.username:
            raise BadRequest("You can not delete your own user!")
        UserService(session).delete(username)
        return SuccessRead()

    return await k.db.write(work)


# --- personal access tokens ----------------------------------------------------------


@router.get("/users/{username}/tokens/", summary="List a user's personal access tokens")
async def list_tokens(username: str, _: AdminPrincipal, k: KeyopsDep) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        records = TokenService(session).list(username)
        return result_list(
            _token(r, username).model_dump(mode="json", by_alias=True) for r in records
        )

    return await k.db.read(work)


@router.post("/users/{username}/tokens/", summary="Create a personal access token")
async def create_token(
    username: str, body: TokenCreate, _: AdminPrincipal, k: KeyopsDep
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        issued = TokenService(session).create_personal(
            username, body.name, parse_expiry(body.expires)
        )
        read = _token(issued.record, username)
        created = PersonalTokenCreated(**read.model_dump(), token=issued.token)
        return result(created.model_dump(mode="json", by_alias=True))

    return await k.db.write(work)


@router.delete("/tokens/{tokenId}/", summary="Revoke a personal access token")
async def revoke_token(
    tokenId: int,
    _: AdminPrincipal,
    k: KeyopsDep,
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        record = TokenService(session).revoke(tokenId)
        user = UserService(session).users.get(record.user_id)
        username = user.username if user else ""
        return result(_token(record, username).model_dump(mode="json", by_alias=True))

    return await k.db.write(work)


# --- projects and members ------------------------------------------------------------


@router.get("/projects/", summary="List every project")
async def list_all_projects(_: AdminPrincipal, k: KeyopsDep) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        projects = ProjectService(session).list_all()
        return result_list(
            ProjectRead(name=p.name, description=p.description).model_dump(by_alias=True)
            for p in projects
        )

    return await k.db.read(work)


@router.post("/projects/", summary="Create a project")
async def create_project(
    body: ProjectCreate, principal: AdminPrincipal, k: KeyopsDep
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        service = ProjectService(session)
        members = list(dict.fromkeys([principal.username, *body.members]))
        project = service.create(body.name, body.description, members)
        return result(
            {
                "name": project.name,
                "description": project.description,
                "members": [u.username for u in ProjectRepository(session).members(project.id)],
            }
        )

    return await k.db.write(work)


@router.delete("/projects/{projectName}/", summary="Delete a project", response_model=SuccessRead)
async def delete_project(
    projectName: str,
    _: AdminPrincipal,
    k: KeyopsDep,
) -> SuccessRead:
    def work(session: Session) -> SuccessRead:
        ProjectService(session).delete(projectName)
        return SuccessRead()

    return await k.db.write(work)


@router.get("/projects/{projectName}/members/", summary="List a project's members")
async def list_members(
    projectName: str,
    _: AdminPrincipal,
    k: KeyopsDep,
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        return result_list(_user(u) for u in ProjectService(session).members(projectName))

    return await k.db.read(work)


@router.post("/projects/{projectName}/members/", summary="Add a member to a project")
async def add_member(
    projectName: str,
    body: MemberCreate,
    _: AdminPrincipal,
    k: KeyopsDep,
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        _project, user = ProjectService(session).add_member(projectName, body.username)
        return result(_user(user))

    return await k.db.write(work)


@router.delete(
    "/projects/{projectName}/members/{username}/",
    summary="Remove a member from a project",
    response_model=SuccessRead,
)
async def remove_member(
    projectName: str,
    username: str,
    _: AdminPrincipal,
    k: KeyopsDep,
) -> SuccessRead:
    def work(session: Session) -> SuccessRead:
        ProjectService(session).remove_member(projectName, username)
        return SuccessRead()

    return await k.db.write(work)


# --- environments --------------------------------------------------------------------


def _environment(env: Environment, service: EnvironmentService, session: Session) -> dict[str, Any]:
    project_ids = service.projects_of(env)
    names = [p.name for p in ProjectService(session).list_all() if p.id in project_ids]
    base = EnvironmentRead.of(env).model_dump()
    return EnvironmentAdminRead(
        **base, projects=names, target=env.target, tls_identity=TlsIdentityRead.of(env)
    ).model_dump(by_alias=True)


@router.post("/environments/", summary="Create an environment")
async def create_environment(
    body: EnvironmentCreate, _: AdminPrincipal, k: KeyopsDep
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        service = k.environments(session)
        env = service.create(
            body.name,
            description=body.description,
            type=body.type,
            access_url=body.access_url,
            projects=body.projects,
            target=body.target,
        )
        return result(_environment(env, service, session))

    return await k.db.write(work)


@router.get("/environments/{environmentName}/", summary="Get an environment")
async def get_environment(
    environmentName: str,
    _: AdminPrincipal,
    k: KeyopsDep,
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        service = k.environments(session)
        return result(_environment(service.get(environmentName), service, session))

    return await k.db.read(work)


@router.delete(
    "/environments/{environmentName}/",
    summary="Delete an environment",
    response_model=SuccessRead,
)
async def delete_environment(
    environmentName: str,
    _: AdminPrincipal,
    k: KeyopsDep,
) -> SuccessRead:
    def work(session: Session) -> SuccessRead:
        k.environments(session).delete(environmentName)
        return SuccessRead()

    return await k.db.write(work)


# --- gateway nodes -------------------------------------------------------------------


class NodeTokenCreate(CamelModel):
    name: str = Field(max_length=100)


class TlsIdentityBody(CamelModel):
    project_name: str | None = Field(default=None, max_length=100)
    key_store_name: str | None = Field(default=None, max_length=200)
    alias_name: str | None = Field(default=None, max_length=200)


def _credential(record: GatewayCredential) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "createdAt": record.created_at.isoformat(),
        "revokedAt": record.revoked_at.isoformat() if record.revoked_at else None,
    }


def _gateway(session: Session, keyring: Keyring, settings: Settings) -> GatewayService:
    return GatewayService.of(session, keyring, settings)


@router.post(
    "/environments/{environmentName}/node-tokens/",
    summary="Create a gateway node credential for an environment",
)
async def create_node_token(
    environmentName: str,
    body: NodeTokenCreate,
    _: AdminPrincipal,
    k: KeyopsDep,
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        env = k.environments(session).get(environmentName)
        token, record = _gateway(session, k.keyring, k.settings).create_credential(env, body.name)
        return result({**_credential(record), "token": token})

    return await k.db.write(work)


@router.get(
    "/environments/{environmentName}/node-tokens/",
    summary="List an environment's gateway node credentials",
)
async def list_node_tokens(
    environmentName: str,
    _: AdminPrincipal,
    k: KeyopsDep,
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        env = k.environments(session).get(environmentName)
        return result_list(
            _credential(c) for c in _gateway(session, k.keyring, k.settings).credentials(env)
        )

    return await k.db.read(work)


@router.delete("/node-tokens/{credentialId}/", summary="Revoke a gateway node credential")
async def revoke_node_token(
    credentialId: int,
    _: AdminPrincipal,
    k: KeyopsDep,
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        record = _gateway(session, k.keyring, k.settings).revoke_credential(credentialId)
        return result(_credential(record))

    return await k.db.write(work)


@router.put(
    "/environments/{environmentName}/tls-identity/",
    summary="Choose the keystore entry gateway nodes serve TLS with",
)
async def put_tls_identity(
    environmentName: str, body: TlsIdentityBody, _: AdminDeployer, k: KeyopsDep
) -> dict[str, Any]:
    def work(session: Session) -> ChangePlan:
        env = k.environments(session).get(environmentName)
        return set_tls_identity(
            session, env, body.project_name, body.key_store_name, body.alias_name
        )

    # Nothing to deploy, but a new revision the nodes must pick up: wait for them.
    outcome = await k.deployer.change(work)
    return {"success": True, "deploymentResult": outcome.as_contract()}
