"""Users: creation, passwords, roles and credential checks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keyops.domain.roles import ALL_ROLES
from keyops.errors import BadRequest, Conflict, NotFound
from keyops.storage.integrity import is_unique_violation
from keyops.storage.models import User
from keyops.storage.repositories.users import UserRepository

_hasher = PasswordHasher()
# Checked against when the user does not exist, so a wrong username costs as much
# time as a wrong password and usernames cannot be probed by timing.
_DUMMY_HASH = _hasher.hash("keyops-timing-equaliser")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
# Resource names travel in URL paths and file names: no spaces, slashes or quotes.
RESOURCE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,199}$")
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    """An Argon2id hash of the password."""
    return _hasher.hash(password)


def check_name(kind: str, value: str) -> str:
    """Validate a user, project or environment name; returns it unchanged."""
    if not value or not value.strip():
        raise BadRequest(f"{kind} value can not be empty!")
    if not NAME_RE.match(value):
        raise BadRequest(
            f"{kind} ({value}) is not valid: use 1-100 letters, digits, '.', '_', '@' or '-',"
            " starting with a letter or digit!"
        )
    return value


def check_resource_name(kind: str, value: str) -> str:
    """Validate a certificate, key, keystore or JWK name; returns it unchanged."""
    if not RESOURCE_NAME_RE.match(value):
        raise BadRequest(
            f"{kind} ({value}) is not valid: use 1-200 letters, digits, '.', '_', '@' or '-',"
            " starting with a letter or digit!"
        )
    return value


def check_roles(roles: Iterable[str]) -> set[str]:
    """Validate role names."""
    wanted = set(roles)
    unknown = sorted(wanted - ALL_ROLES)
    if unknown:
        raise BadRequest(
            f"Unknown role(s): {', '.join(unknown)}. Valid roles: {', '.join(sorted(ALL_ROLES))}"
        )
    return wanted


class UserService:
    def __init__(self, session: AsyncSession) -> None:
        self.users = UserRepository(session)

    async def authenticate(self, username: str, password: str) -> User | None:
        """The enabled user with these credentials, or None."""
        user = await self.users.get_by_username(username)
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or not user.enabled:
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return user

    async def create(self, username: str, password: str, roles: Iterable[str] = ()) -> User:
        check_name("username", username)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise BadRequest(f"password must be at least {MIN_PASSWORD_LENGTH} characters!")
        wanted = check_roles(roles)
        if await self.users.get_by_username(username) is not None:
            raise Conflict(f"User (username: {username}) is already exist!")
        try:
            user = await self.users.add(
                User(username=username, password_hash=hash_password(password))
            )
        except IntegrityError as exc:
            # A concurrent request created the same user after the check above.
            if is_unique_violation(exc, "users_username"):
                raise Conflict(f"User (username: {username}) is already exist!") from None
            raise
        await self.users.set_roles(user, wanted)
        return user

    async def get(self, username: str) -> User:
        user = await self.users.get_by_username(username)
        if user is None:
            raise NotFound(f"User (username: {username}) is not found!")
        return user

    async def list(self) -> Sequence[User]:
        return await self.users.list_all()

    async def set_password(self, username: str, password: str) -> User:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise BadRequest(f"password must be at least {MIN_PASSWORD_LENGTH} characters!")
        user = await self.get(username)
        user.password_hash = hash_password(password)
        return user

    async def set_roles(self, username: str, roles: Iterable[str]) -> User:
        user = await self.get(username)
        await self.users.set_roles(user, check_roles(roles))
        return user

    async def set_enabled(self, username: str, enabled: bool) -> User:
        user = await self.get(username)
        user.enabled = enabled
        return user

    async def delete(self, username: str) -> None:
        await self.users.delete(await self.get(username))
