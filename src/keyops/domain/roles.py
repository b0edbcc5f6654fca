"""Roles and the authenticated principal."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "ROLE_ADMIN"
    API_SECURITY = "ROLE_API_SECURITY"
    DEPLOY_UNDEPLOY_PROXIES = "ROLE_DEPLOY_UNDEPLOY_PROXIES"
    MANAGE_PROXIES = "ROLE_MANAGE_PROXIES"


ALL_ROLES = frozenset(r.value for r in Role)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved once from the bearer token."""

    user_id: int
    username: str
    roles: frozenset[str]
    token_id: int

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def has(self, role: Role) -> bool:
        """True if the principal holds the role; ROLE_ADMIN holds every role."""
        return self.is_admin or role in self.roles
