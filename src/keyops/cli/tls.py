"""``keyops env set-tls``: what an environment serves TLS with, in the CLI's own words."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy.orm import Session

from keyops.domain.environments import EnvironmentService
from keyops.domain.keystores import KeystoreService
from keyops.domain.projects import ProjectService
from keyops.errors import BadRequest
from keyops.secrets import Keyring
from keyops.storage.models import Environment

__all__ = ["TlsIdentity", "check_alias", "identity_of"]


@dataclass(frozen=True, slots=True)
class TlsIdentity:
    project: str
    keystore: str
    alias: str

    def __str__(self) -> str:
        return f"project {self.project}, keystore {self.keystore}, alias {self.alias}"

    @property
    def short(self) -> str:
        """project/keystore/alias, as ``env list`` shows it."""
        return f"{self.project}/{self.keystore}/{self.alias}"


def identity_of(env: Environment) -> TlsIdentity | None:
    """The environment's current TLS identity, None when it serves none."""
    if env.tls_project and env.tls_keystore and env.tls_alias:
        return TlsIdentity(env.tls_project, env.tls_keystore, env.tls_alias)
    return None


def check_alias(
    session: Session,
    environments: EnvironmentService,
    keyring: Keyring,
    env: Environment,
    chosen: TlsIdentity,
) -> None:
    """Refuse an alias that is not a private-key entry, listing the ones that are.

    The domain checks the same (and the rest); this only says more than its message,
    in the terms of the command line.
    """
    project = ProjectService(session).get(chosen.project)
    keystore = KeystoreService(session, environments, keyring).get(project, chosen.keystore)
    row = next((r for r in keystore.environments if r.environment_id == env.id), None)
    if row is None:
        return  # the domain says it is not deployed to the environment
    entries = json.loads(row.entries_json)
    private = [e["alias"] for e in entries if e["kind"] == "PRIVATE_KEY"]
    if chosen.alias.lower() in (a.lower() for a in private):
        return
    where = f"keystore (name: {chosen.keystore}) in environment ({env.name})"
    if not private:
        raise BadRequest(
            f"--alias ({chosen.alias}) can not be served: {where} has no private key entry,"
            " and TLS needs one"
        )
    raise BadRequest(
        f"--alias ({chosen.alias}) is not a private key entry of {where}! Give --alias one"
        f" of: {', '.join(sorted(private, key=str.lower))}"
    )
