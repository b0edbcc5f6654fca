"""Queries on users and roles."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from keyops.storage.models import User, UserRole


class UserRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_username(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(User.username == username))

    def get(self, user_id: int) -> User | None:
        return self.session.get(User, user_id)

    def list_all(self) -> Sequence[User]:
        # One statement however many users (selectin would send one per 500).
        stmt = select(User).options(joinedload(User.roles)).order_by(User.username)
        return self.session.scalars(stmt).unique().all()

    def add(self, user: User) -> User:
        self.session.add(user)
        self.session.flush()
        return user

    def set_roles(self, user: User, roles: set[str]) -> None:
        self.session.execute(delete(UserRole).where(UserRole.user_id == user.id))
        self.session.add_all(UserRole(user_id=user.id, role=r) for r in sorted(roles))
        self.session.flush()
        self.session.refresh(user, ["roles"])

    def delete(self, user: User) -> None:
        self.session.delete(user)
        self.session.flush()
