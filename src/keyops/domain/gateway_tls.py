"""The TLS identity an environment's gateway nodes serve: a keystore entry it holds."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from keyops.deploy.plan import ChangePlan
from keyops.errors import BadRequest
from keyops.storage.models import Environment

__all__ = ["set_tls_identity"]


def set_tls_identity(
    session: Session,
    env: Environment,
    project_name: str | None,
    keystore_name: str | None,
    alias: str | None,
) -> ChangePlan:
    """Choose (or clear, with all None) the keystore entry nodes serve TLS with; it must
    be a private-key entry of a keystore deployed to this environment."""
    from keyops.storage.repositories.keystores import KeystoreRepository
    from keyops.storage.repositories.projects import ProjectRepository

    if project_name is None and keystore_name is None and alias is None:
        env.tls_project = env.tls_keystore = env.tls_alias = None
    else:
        if not (project_name and keystore_name and alias):
            raise BadRequest("projectName, keyStoreName and aliasName are all required!")
        project = ProjectRepository(session).get_by_name(project_name)
        keystore = KeystoreRepository(session).get(project.id, keystore_name) if project else None
        if keystore is None:
            raise BadRequest(f"Keystore (name: {keystore_name}) is not found!")
        row = next((r for r in keystore.environments if r.environment_id == env.id), None)
        if row is None:
            raise BadRequest(
                f"Keystore (name: {keystore_name}) is not deployed to environment ({env.name})!"
            )
        entries = json.loads(row.entries_json)
        entry = next((e for e in entries if e["alias"].lower() == alias.lower()), None)
        if entry is None or entry["kind"] != "PRIVATE_KEY":
            raise BadRequest(
                f"Alias ({alias}) is not a private key entry of keystore (name: {keystore_name})!"
            )
        env.tls_project, env.tls_keystore, env.tls_alias = (
            project_name,
            keystore_name,
            entry["alias"],
        )
    session.flush()
    # No artifact changes, but a new revision: nodes must pick the new identity up.
    plan = ChangePlan()
    plan.touch(env)
    return plan
