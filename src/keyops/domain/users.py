"""Users: creation, passwords, roles and credential checks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(f"password must be at least {MIN_PASSWORD_LENGTH} characters!")


@dataclass(frozen=True, slots=True)
class LoginCandidate:
    user_id: int
    password_hash: str
    enabled: bool


def verify_password(candidate: LoginCandidate | None, password: str) -> str | None:
    """Check a password (slow on purpose: run it in the CPU pool). Returns None when it
    does not match; else the hash to store instead ("" when the stored one is fine)."""
    try:
        _hasher.verify(candidate.password_hash if candidate else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if candidate is None or not candidate.enabled:
        return None
    if _hasher.check_needs_rehash(candidate.password_hash):
        return hash_password(password)
    return ""


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
    def __init__(self, session: Session) -> None:
        self.users = UserRepository(session)

    def login(self, username: str) -> LoginCandidate | None:
        """What checking a password against this user needs (read before the check)."""
        user = self.users.get_by_username(username)
        if user is None:
            return None
        return LoginCandidate(user.id, user.password_hash, user.enabled)

    def create(
        self,
        username: str,
        password: str,
        roles: Iterable[str] = (),
        *,
        password_hash: str | None = None,
    ) -> User:
        """A new user; ``password_hash`` is the password hashed beforehand (argon2 is slow:
        the API hashes in the CPU pool, outside the transaction)."""
        check_name("username", username)
        check_password(password)
        wanted = check_roles(roles)
        if self.users.get_by_username(username) is not None:
            raise Conflict(f"User (username: {username}) is already exist!")
        try:
            user = self.users.add(
                User(username=username, password_hash=password_hash or hash_password(password))
            )
        except IntegrityError as exc:
            # A concurrent request created the same user after the check above.
            if is_unique_violation(exc, "users_username"):
                raise Conflict(f"User (username: {username}) is already exist!") from None
            raise
        self.users.set_roles(user, wanted)
        return user

    def get(self, username: str) -> User:
        user = self.users.get_by_username(username)
        if user is None:
            raise NotFound(f"User (username: {username}) is not found!")
        return user

    def list(self) -> Sequence[User]:
        return self.users.list_all()

    def set_password(
        self, username: str, password: str, *, password_hash: str | None = None
    ) -> User:
        check_password(password)
        user = self.get(username)
        user.password_hash = password_hash or hash_password(password)
        return user

    def set_roles(self, username: str, roles: Iterable[str]) -> User:
        user = self.get(username)
        self.users.set_roles(user, check_roles(roles))
        return user

    def set_enabled(self, username: str, enabled: bool) -> User:
        user = self.get(username)
        user.enabled = enabled
        return user

    def delete(self, username: str) -> None:
        self.users.delete(self.get(username))
