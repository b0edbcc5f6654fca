"""Project shapes."""

from __future__ import annotations

from pydantic import Field

from keyops.api.schemas.common import CamelModel


class ProjectRead(CamelModel):
    name: str
    description: str


class ProjectListRead(CamelModel):
    status: str = "SUCCESS"
    result_list: list[ProjectRead]
    result_count: int


class ProjectCreate(CamelModel):
    name: str = Field(max_length=100)
    description: str = Field(default="", max_length=10_000)
    members: list[str] = Field(default_factory=list, max_length=1000)


class MemberCreate(CamelModel):
    username: str = Field(max_length=100)
