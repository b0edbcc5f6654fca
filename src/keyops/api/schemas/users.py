"""User and personal token shapes for the admin endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from keyops.api.schemas.common import CamelModel


class UserCreate(CamelModel):
    username: str = Field(max_length=100)
    password: str = Field(min_length=1, max_length=1024)
    roles: list[str] = Field(default_factory=list, max_length=16)


class UserUpdate(CamelModel):
    password: str | None = Field(default=None, max_length=1024)
    roles: list[str] | None = Field(default=None, max_length=16)
    enabled: bool | None = None


class UserRead(CamelModel):
    username: str
    roles: list[str]
    enabled: bool
    created_at: datetime


class TokenCreate(CamelModel):
    name: str = Field(max_length=100)
    expires: str = Field(
        default="never", description="Expiry date YYYY-MM-DD (end of that day, UTC) or 'never'."
    )


class PersonalTokenRead(CamelModel):
    id: int
    name: str
    username: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    active: bool


class PersonalTokenCreated(PersonalTokenRead):
    token: str = Field(description="The token itself. It is shown only in this response.")
