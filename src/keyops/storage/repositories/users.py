"""Queries on users and roles."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyops.storage.models import User, UserRole


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_username(self, username: str) -> User | None:
        return await self.session.scalar(select(User).where(User.username == username))

    async def get(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def list_all(self) -> Sequence[User]:
        return (await self.session.scalars(select(User).order_by(User.username))).all()

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def set_roles(self, user: User, roles: set[str]) -> None:
        await self.session.execute(delete(UserRole).where(UserRole.user_id == user.id))
        self.session.add_all(UserRole(user_id=user.id, role=r) for r in sorted(roles))
        await self.session.flush()
        await self.session.refresh(user, ["roles"])

    async def delete(self, user: User) -> None:
        await self.session.delete(user)
        await self.session.flush()
