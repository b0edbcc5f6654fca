"""Environments: where material is deployed; global, optionally limited to projects."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keyops.domain.projects import ProjectService
from keyops.domain.users import check_name
from keyops.errors import BadRequest, Conflict, NotFound
from keyops.storage import notify
from keyops.storage.integrity import is_unique_violation
from keyops.storage.models import Environment, Project
from keyops.storage.repositories.desired import DesiredStateRepository
from keyops.storage.repositories.environments import EnvironmentRepository


class EnvironmentType(StrEnum):
    PRODUCTION = "PRODUCTION"
    SANDBOX = "SANDBOX"
    TEST = "TEST"


class PublishStatus(StrEnum):
    PUBLISHED = "PUBLISHED"
    UNPUBLISHED = "UNPUBLISHED"
    REPUBLISH_REQUIRED = "REPUBLISH_REQUIRED"


class EnvironmentService:
    def __init__(self, session: Session, *, known_targets: frozenset[str]) -> None:
        self.session = session
        self.environments = EnvironmentRepository(session)
        self.known_targets = known_targets

    def list_all(self) -> Sequence[Environment]:
        return self.environments.list_all()

    def list_for_project(self, project: Project) -> Sequence[Environment]:
        return self.environments.list_for_project(project.id)

    def get(self, name: str) -> Environment:
        env = self.environments.get_by_name(name)
        if env is None:
            raise NotFound(f"Environment ({name}) is not found!")
        return env

    def resolve_for_project(self, names: Sequence[str], project: Project) -> list[Environment]:
        """The named environments in the given order; 400 if any is unknown to the project."""
        found = self.environments.get_many_for_project(names, project.id)
        missing = [n for n in names if n not in found]
        if missing:
            raise BadRequest(
                f"Environment ({', '.join(missing)}) is not found or user does not have"
                " privilege to access it!"
            )
        return [found[n] for n in names]

    def create(
        self,
        name: str,
        *,
        description: str = "",
        type: str = EnvironmentType.TEST,
        access_url: str = "",
        projects: Sequence[str] = (),
        target: str = "local",
    ) -> Environment:
        check_name("environmentName", name)
        if type not in EnvironmentType.__members__:
            raise BadRequest(
                f"type ({type}) is not valid! Valid values: {', '.join(EnvironmentType)}"
            )
        if target not in self.known_targets:
            raise BadRequest(
                f"target ({target}) is not valid! Valid values: "
                + ", ".join(sorted(self.known_targets))
            )
        if self.environments.get_by_name(name) is not None:
            raise Conflict(f"Environment (name: {name}) is already exist!")
        project_service = ProjectService(self.session)
        project_ids = [(project_service.get(p)).id for p in dict.fromkeys(projects)]
        env = Environment(
            name=name,
            description=description or "",
            type=type,
            access_url=access_url or "",
            target=target,
        )
        try:
            return self.environments.add(env, project_ids)
        except IntegrityError as exc:
            # A concurrent request created the same environment after the check above.
            if is_unique_violation(exc, "environments_name"):
                raise Conflict(f"Environment (name: {name}) is already exist!") from None
            raise

    def delete(self, name: str) -> None:
        self.environments.delete(self.get(name))
        # Its node credentials went with it: every replica forgets them.
        notify.publish(self.session, notify.CREDENTIALS)
        # Every project's lists named the environment: none of them may be served cached.
        DesiredStateRepository(self.session).bump_projects(None)

    def projects_of(self, env: Environment) -> list[int]:
        return self.environments.limited_to(env.id)
