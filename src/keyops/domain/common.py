"""Rules every keys & secrets resource shares: names, per-environment lists, lookups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from sqlalchemy.orm import Session

from keyops.deploy.plan import ChangePlan
from keyops.deploy.target import ArtifactRef
from keyops.domain.users import check_resource_name
from keyops.errors import BadRequest
from keyops.storage.repositories.environments import EnvironmentRepository

T = TypeVar("T")


def required_text(field: str, value: str | None) -> str:
    """A stripped, non-blank value; ``<field> value can not be empty!`` otherwise."""
    if value is None or not value.strip():
        raise BadRequest(f"{field} value can not be empty!")
    return value.strip()


def resource_name(label: str, value: str | None) -> str:
    """A resource name: ``<label> name can not be empty!`` when blank, else checked."""
    if value is None or not value.strip():
        raise BadRequest(f"{label} name can not be empty!")
    return check_resource_name(f"{label} name", value.strip())


def environment_names(field: str, names: Sequence[str | None]) -> list[str]:
    """Environment names of a per-environment list: present and each listed once."""
    if not names:
        raise BadRequest(f"{field} value can not be empty!")
    seen: list[str] = []
    for name in names:
        clean = required_text("environmentName", name)
        if clean in seen:
            raise BadRequest(f"Environment ({clean}) is listed more than once in {field}!")
        seen.append(clean)
    return seen


def undeploy_from(
    session: Session, plan: ChangePlan, environment_ids: Iterable[int], ref: ArtifactRef
) -> None:
    """Plan the removal of an artifact from each of these environments (those that exist)."""
    for env in EnvironmentRepository(session).get_many(environment_ids):
        plan.undeploy(env, ref)
