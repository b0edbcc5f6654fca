"""Shapes shared across concepts."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

T = TypeVar("T")


class CamelModel(BaseModel):
    """A request or response model whose JSON names are camelCase, as in the contract."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SuccessRead(BaseModel):
    success: bool = True


class ResultList(CamelModel, Generic[T]):
    """The keys & secrets list envelope (decision 2): a get answers a list of one."""

    success: bool = True
    result_list: list[T]
    result_count: int


class EnvironmentResultRead(CamelModel):
    environment_name: str
    success: bool
    message: str


class DeploymentResultRead(CamelModel):
    """The ``deploymentResult`` object: ``success`` only if every environment succeeded."""

    success: bool
    message: str
    environment_results: list[EnvironmentResultRead]


class DeploymentRead(CamelModel):
    """The answer of a change: what its roll-out did in each environment."""

    success: bool = True
    deployment_result: DeploymentResultRead


class JwkResultRead(CamelModel):
    """What an update of a certificate, key or keystore did to one JWK derived from it:
    ``UPDATED`` (re-derived from the new material; ``newKid`` is its kid now) or
    ``DETACHED`` (its source cleared, its material and kid unchanged)."""

    project_name: str
    name: str
    action: Literal["UPDATED", "DETACHED"]
    old_kid: str
    new_kid: str


class SourceUpdateRead(DeploymentRead):
    """The answer of an update of a certificate, key or keystore: its roll-out, and what
    happened to every JWK derived from it (``[]`` when none is)."""

    jwk_results: list[JwkResultRead]
