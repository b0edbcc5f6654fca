"""Shapes shared across concepts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """A request or response model whose JSON names are camelCase, as in the contract."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SuccessRead(BaseModel):
    success: bool = True
