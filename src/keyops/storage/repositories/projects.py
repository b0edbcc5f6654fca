"""Queries on projects and membership; scoping by member lives here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.orm import Session

from keyops.storage.models import Project, ProjectMember, User
from keyops.storage.prepared import Prepared

# Built once: every project-scoped request runs it.
_FOR_MEMBER = Prepared(
    select(*Project.__table__.columns)
    .join(ProjectMember, ProjectMember.project_id == Project.id)
    .where(Project.name == bindparam("name"), ProjectMember.user_id == bindparam("user_id"))
)


class ProjectRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_name(self, name: str) -> Project | None:
        return self.session.scalar(select(Project).where(Project.name == name))

    def get_for_member(self, name: str, user_id: int) -> Project | None:
        """The project of that name if the user is a member of it: a transient object,
        read to scope a request, never written through."""
        found = _FOR_MEMBER.execute(self.session, {"name": name, "user_id": user_id})
        return Project(**found[0]._asdict()) if found else None

    def list_for_member(self, user_id: int) -> Sequence[Project]:
        stmt = (
            select(Project)
            .join(ProjectMember, ProjectMember.project_id == Project.id)
            .where(ProjectMember.user_id == user_id)
            .order_by(Project.name)
        )
        return (self.session.scalars(stmt)).all()

    def get_many(self, project_ids: Iterable[int]) -> dict[int, Project]:
        """Projects by id, in one statement."""
        ids = set(project_ids)
        if not ids:
            return {}
        return {p.id: p for p in self.session.scalars(select(Project).where(Project.id.in_(ids)))}

    def list_all(self) -> Sequence[Project]:
        return (self.session.scalars(select(Project).order_by(Project.name))).all()

    def add(self, project: Project) -> Project:
        self.session.add(project)
        self.session.flush()
        return project

    def delete(self, project: Project) -> None:
        self.session.delete(project)
        self.session.flush()

    def is_member(self, project_id: int, user_id: int) -> bool:
        stmt = select(
            exists().where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
        )
        return bool(self.session.scalar(stmt))

    def add_member(self, project_id: int, user_id: int) -> None:
        if not self.is_member(project_id, user_id):
            self.session.add(ProjectMember(project_id=project_id, user_id=user_id))
            self.session.flush()

    def remove_member(self, project_id: int, user_id: int) -> bool:
        result = self.session.execute(
            delete(ProjectMember).where(
                ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
            )
        )
        return bool(getattr(result, "rowcount", 0))

    def members(self, project_id: int) -> Sequence[User]:
        stmt = (
            select(User)
            .join(ProjectMember, ProjectMember.user_id == User.id)
            .where(ProjectMember.project_id == project_id)
            .order_by(User.username)
        )
        return (self.session.scalars(stmt)).all()
