"""History of certificates, keys and keystores: each replace and delete keeps the version
it replaced, exactly as stored (sealed material stays sealed), for listing and rollback.

A version's per-environment rows are kept as the columns of the kind's row table, so one
encoder serves every kind; what a kind adds (what its fingerprint is taken over, its
subject and not-after, how a version becomes a request again) are hooks of
``PerEnvironmentService``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keyops.errors import BadRequest
from keyops.storage.models import Project
from keyops.storage.repositories.versions import VersionRepository

__all__ = [
    "ChangeAuthor",
    "VersionView",
    "keep_version",
    "rename_history",
    "rollback_input",
    "versions_of",
]

# The largest version number the column holds.
MAX_VERSION = 2**31 - 1

# The resource's columns that belong to the lifecycle, not to a version's content.
_LIFECYCLE = frozenset({"id", "project_id", "name", "version", "created_at", "updated_at"})


@dataclass(frozen=True, slots=True)
class ChangeAuthor:
    """Who makes a change, and how many versions of a resource history keeps."""

    username: str
    history_keep: int = 10


def _columns(model: type[Any], skip: frozenset[str]) -> list[str]:
    return [c.key for c in model.__table__.columns if c.key not in skip]


def attributes_of(resource: Any) -> dict[str, Any]:
    """The resource's own columns (description, key type) as JSON-ready values."""
    return {k: getattr(resource, k) for k in _columns(type(resource), _LIFECYCLE)}


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "b" in value:
            return base64.b64decode(value["b"])
        return datetime.fromisoformat(value["t"])
    return value


def encode_rows(rows: Sequence[Any], parent_fk: str) -> bytes:
    """The rows' stored columns (not their ids), in order, as one document."""
    if not rows:
        return b"[]"
    columns = _columns(type(rows[0]), frozenset({"id", parent_fk}))
    doc = [{c: _encode(getattr(row, c)) for c in columns} for row in rows]
    return json.dumps(doc, sort_keys=True).encode("utf-8")


def decode_rows(data: bytes, child: type[Any]) -> list[Any]:
    """Transient rows of ``child`` from ``encode_rows``' document."""
    return [child(**{k: _decode(v) for k, v in item.items()}) for item in json.loads(data)]


@dataclass(frozen=True, slots=True)
class VersionView:
    """One kept version as a listing shows it: public facts only."""

    version: int
    created_at: datetime
    created_by: str
    reason: str
    description: str
    environments: list[dict[str, Any]]


def keep_version(
    service: Any, project: Project, resource: Any, name: str, author: ChangeAuthor, reason: str
) -> None:
    """Append the resource as it stands to its history (under ``name``), trimmed to the
    author's ``history_keep``; in the change's transaction."""
    rows = list(resource.environments)
    summary = [
        {
            "environmentId": row.environment_id,
            "sha256Fingerprint": hashlib.sha256(service.fingerprint_of(resource, row)).hexdigest(),
            **service.version_facts(row),
        }
        for row in rows
    ]
    VersionRepository(service.session).record(
        service.kind,
        project.id,
        name,
        {
            "created_by": author.username,
            "reason": reason,
            "attributes_json": json.dumps(attributes_of(resource), sort_keys=True),
            "summary_json": json.dumps(summary),
            "material": encode_rows(rows, service.repo.parent_fk),
        },
        keep=author.history_keep,
    )


def rename_history(service: Any, project: Project, old: str, new: str) -> None:
    """Move a renamed resource's history to its new name, in the change's transaction."""
    VersionRepository(service.session).rename(service.kind, project.id, old, new)


def versions_of(service: Any, project: Project, name: str) -> list[VersionView]:
    """The kept versions, newest first; unknown name (no resource, no history): 400."""
    repo = VersionRepository(service.session)
    found = repo.listing(service.kind, project.id, name)
    if not found and service.repo.get(project.id, name) is None:
        raise service.not_found(name)
    summaries = [json.loads(v.summary_json) for v in found]
    names = repo.environment_names([e["environmentId"] for s in summaries for e in s])
    views = []
    for v, summary in zip(found, summaries, strict=True):
        envs = []
        for item in summary:
            env_id = item.pop("environmentId")
            envs.append({"environmentName": names.get(env_id), **item})
        description = json.loads(v.attributes_json).get("description", "")
        views.append(
            VersionView(v.version, v.created_at, v.created_by, v.reason, description, envs)
        )
    return views


def rollback_input(service: Any, project: Project, name: str, number: int) -> tuple[Any, bool]:
    """The request that restores version ``number``, and whether the resource exists
    (a rollback of a deleted resource re-creates it)."""
    repo = VersionRepository(service.session)
    exists = service.repo.get(project.id, name) is not None
    # Numbers are 32-bit: a larger one is a version that can not exist, never a query
    # the database refuses (SQLite can not even bind it).
    version = repo.get(service.kind, project.id, name, number) if number <= MAX_VERSION else None
    if version is None:
        if not exists and repo.latest(service.kind, project.id, name) is None:
            raise service.not_found(name)
        raise BadRequest(f"Version ({number}) of {service.label} (name: {name}) is not found!")
    rows = decode_rows(version.material, service.repo.child)
    names = repo.environment_names([row.environment_id for row in rows])
    if len(names) != len({row.environment_id for row in rows}):
        raise BadRequest(
            f"Version ({number}) of {service.label} (name: {name}) was deployed to an"
            " environment that no longer exists!"
        )
    attributes = json.loads(version.attributes_json)
    env_names = [names[row.environment_id] for row in rows]
    return service.restore_input(name, attributes, rows, env_names), exists
