"""Projects: visibility by membership, administration."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keyops.domain.roles import Principal
from keyops.domain.users import UserService, check_name
from keyops.errors import BadRequest, Conflict, NotFound
from keyops.storage.integrity import is_unique_violation
from keyops.storage.models import Project, User
from keyops.storage.repositories.environments import EnvironmentRepository
from keyops.storage.repositories.projects import ProjectRepository

ADMIN_PROJECT = "admin"


class ProjectService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.projects = ProjectRepository(session)

    def visible(self, principal: Principal) -> Sequence[Project]:
        """Projects the caller is a member of."""
        return self.projects.list_for_member(principal.user_id)

    def find_visible(self, principal: Principal, name: str) -> Project | None:
        """The named project if the caller is a member; None hides its existence."""
        if not name:
            return None
        return self.projects.get_for_member(name, principal.user_id)

    def list_all(self) -> Sequence[Project]:
        return self.projects.list_all()

    def get(self, name: str) -> Project:
        project = self.projects.get_by_name(name)
        if project is None:
            raise NotFound(f"Project ({name}) is not found!")
        return project

    def create(self, name: str, description: str = "", members: Sequence[str] = ()) -> Project:
        check_name("projectName", name)
        if self.projects.get_by_name(name) is not None:
            raise Conflict(f"Project (name: {name}) is already exist!")
        users = [UserService(self.session).get(m) for m in dict.fromkeys(members)]
        try:
            project = self.projects.add(Project(name=name, description=description or ""))
        except IntegrityError as exc:
            # A concurrent request created the same project after the check above.
            if is_unique_violation(exc, "projects_name"):
                raise Conflict(f"Project (name: {name}) is already exist!") from None
            raise
        for user in users:
            self.projects.add_member(project.id, user.id)
        return project

    def delete(self, name: str) -> None:
        if name == ADMIN_PROJECT:
            raise BadRequest("The admin project can not be deleted!")
        project = self.get(name)
        # An environment with no project rows serves every project: dropping the last
        # row would silently open an environment limited to this project to all others.
        environments = EnvironmentRepository(self.session)
        only_here = [
            env.name
            for env in environments.list_all()
            if environments.limited_to(env.id) == [project.id]
        ]
        if only_here:
            raise Conflict(
                f"Project ({name}) can not be deleted: environment(s)"
                f" ({', '.join(only_here)}) are limited to it alone. Delete them first!"
            )
        self.projects.delete(project)

    def add_member(self, name: str, username: str) -> tuple[Project, User]:
        project = self.get(name)
        user = UserService(self.session).get(username)
        self.projects.add_member(project.id, user.id)
        return project, user

    def remove_member(self, name: str, username: str) -> None:
        project = self.get(name)
        user = UserService(self.session).get(username)
        if not self.projects.remove_member(project.id, user.id):
            raise NotFound(f"User ({username}) is not a member of project ({name})!")

    def members(self, name: str) -> Sequence[User]:
        return self.projects.members((self.get(name)).id)
