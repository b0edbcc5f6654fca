"""First-run setup: the admin user and project, and the optional demo data."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from keyops.domain.environments import EnvironmentService, EnvironmentType
from keyops.domain.projects import ADMIN_PROJECT, ProjectService
from keyops.domain.roles import Role
from keyops.domain.users import UserService
from keyops.storage.repositories.environments import EnvironmentRepository
from keyops.storage.repositories.masterkey import lock_bootstrap
from keyops.storage.repositories.projects import ProjectRepository
from keyops.storage.repositories.users import UserRepository

ADMIN_USER = "admin"
DEMO_PROJECT = "MyProject"
DEMO_ENVIRONMENTS = (
    ("production", EnvironmentType.PRODUCTION, "Production environment"),
    ("staging", EnvironmentType.SANDBOX, "Staging environment"),
    ("development", EnvironmentType.TEST, "Development environment"),
)


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    created_admin: bool
    generated_password: str | None


def bootstrap(
    session: Session,
    *,
    admin_password: str | None,
    demo: bool,
    known_targets: frozenset[str],
) -> BootstrapResult:
    """Create what a first run needs; does nothing that already exists."""
    lock_bootstrap(session)
    users = UserService(session)
    generated = None
    created = False
    admin = UserRepository(session).get_by_username(ADMIN_USER)
    if admin is None:
        password = admin_password
        if not password:
            generated = password = secrets.token_urlsafe(18)
        admin = users.create(ADMIN_USER, password, [Role.ADMIN])
        created = True
    projects = ProjectService(session)
    project_repo = ProjectRepository(session)
    admin_project = project_repo.get_by_name(ADMIN_PROJECT)
    if admin_project is None:
        admin_project = projects.create(
            ADMIN_PROJECT, "Administration project: the truststore and shared material"
        )
        project_repo.add_member(admin_project.id, admin.id)
    if demo:
        demo_project = project_repo.get_by_name(DEMO_PROJECT)
        if demo_project is None:
            demo_project = projects.create(DEMO_PROJECT, "Demo project")
        project_repo.add_member(demo_project.id, admin.id)
        envs = EnvironmentService(session, known_targets=known_targets)
        env_repo = EnvironmentRepository(session)
        for name, env_type, description in DEMO_ENVIRONMENTS:
            if env_repo.get_by_name(name) is None:
                envs.create(name, description=description, type=env_type)
    return BootstrapResult(created_admin=created, generated_password=generated)
