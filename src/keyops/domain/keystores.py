"""Keystores (JKS, JCEKS, PKCS12): parsed on the way in, file and passwords sealed at rest.

The request, its files' decoding and what its checks keep (PEM converted to PKCS12) are
in ``keystore_input``.

A request's environments are resolved (400 for an unknown one) before any file is
parsed, and all its files are parsed in one call off the event loop under one
key-derivation budget (``keystore_parsing``), each distinct file once. No transaction
is open while they parse: on SQLite every transaction holds the write lock, so a parse
inside one stalled every other request, the healthcheck included. The read-only
transaction of the cheap checks is committed first (as the JWK URL and GENERATE routes
do), and what those checks found is checked again afterwards.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from keyops.crypto.keystores import KeystoreError, ParsedKeystore
from keyops.crypto.x509 import format_instant
from keyops.deploy.target import Artifact
from keyops.domain.common import environment_names
from keyops.domain.jwks import JwkFollower
from keyops.domain.keystore_input import (
    MAX_FILE_BYTES,
    CheckedStore,
    KeystoreEnvironmentInput,
    KeystoreFields,
    KeystoreInput,
    parse_job,
)
from keyops.domain.keystore_parsing import ParseJob
from keyops.domain.material import file_of, key_password_of, store_of
from keyops.domain.resources import Derive, PerEnvironmentService
from keyops.errors import BadRequest
from keyops.secrets import Purpose
from keyops.storage.models import Environment, Keystore, KeystoreEnvironment, Project
from keyops.storage.repositories.environments import EnvironmentRepository
from keyops.storage.repositories.keystores import KeystoreRepository

__all__ = [
    "MAX_FILE_BYTES",
    "KeystoreEnvironmentInput",
    "KeystoreFields",
    "KeystoreInput",
    "KeystoreService",
    "entries_summary",
]


def entries_summary(parsed: ParsedKeystore) -> list[dict[str, Any]]:
    """Each entry's alias, kind and certificate summary: public facts only."""
    rows = []
    for entry in parsed.entries:
        item: dict[str, Any] = {"alias": entry.alias, "kind": entry.kind}
        cert = entry.certificate
        if cert is not None:
            item.update(
                subjectDn=cert.subject_dn,
                issuerDn=cert.issuer_dn,
                sha1Thumbprint=cert.sha1_thumbprint,
                startDate=format_instant(cert.not_before),
                endDate=format_instant(cert.not_after),
                keyType=cert.key_type,
                chainLength=len(entry.chain_der) or 1,
            )
        rows.append(item)
    return rows


class KeystoreService(
    PerEnvironmentService[Keystore, KeystoreEnvironment, KeystoreInput, KeystoreFields]
):
    kind = "keystore"
    label = "Keystore"
    repository = KeystoreRepository
    exists_hint = " Try update operation if want to change its value."
    # The write re-checks what the parse found before it looks the name up again.
    name_first = False

    def _jobs(
        self, project: Project, inp: KeystoreInput
    ) -> tuple[list[Environment], list[ParseJob]]:
        names = environment_names(
            "keyStoreEnvironmentList", [e.environment_name for e in inp.environments]
        )
        # Environments first: a request naming unknown ones costs no parsing at all.
        envs = self.environments.resolve_for_project(names, project)
        jobs = [parse_job(n, e) for n, e in zip(names, inp.environments, strict=True)]
        return envs, jobs

    def parse_jobs(
        self, project: Project, inp: KeystoreInput, *, name: str | None
    ) -> list[ParseJob]:
        """Check what can be checked before parsing (name, environments, encodings) and
        say what to parse; ``name`` is the keystore updated, None for a create. The slow
        parse then runs outside any transaction (``keystore_parsing.parse_all``), and its
        results go to ``create`` or ``update`` in ``inp.parsed``."""
        if name is None:
            self.check_new(project, inp)
        else:
            keystore, _ = self.check_existing(project, name, inp, lock=False)
            # Loaded again under the lock after the parse, fresh, not from this session.
            self.session.expunge(keystore)
        return self._jobs(project, inp)[1]

    def check_conflicts(
        self, project: Project, name: str, valid: KeystoreFields, except_id: int | None
    ) -> None:
        """An update must keep every environment's TLS identity it holds: the private-key
        entry its gateway nodes serve TLS with, under the same keystore name (decision
        in docs/decisions.md: a node would otherwise lose its certificate)."""
        if except_id is None:
            return
        current = self.session.get(Keystore, except_id)
        if current is None:
            return
        envs = EnvironmentRepository(self.session).serving_tls_from(project.name, current.name)
        by_env = {c.env.id: c for c in valid.checked}
        for env in envs:
            checked = by_env.get(env.id)
            alias = env.tls_alias or ""
            keeps = (
                name == current.name
                and checked is not None
                and any(
                    e.kind == "PRIVATE_KEY" and e.alias.lower() == alias.lower()
                    for e in checked.parsed.entries
                )
            )
            if not keeps:
                raise BadRequest(
                    f"Keystore (name: {current.name}) serves TLS in environment ({env.name})"
                    f" with alias ({alias}): keep that private key entry, under this name, in"
                    " that environment, or change the environment's TLS identity first"
                    " (keyops env set-tls)!"
                )

    def check_delete(self, project: Project, resource: Keystore) -> None:
        envs = EnvironmentRepository(self.session).serving_tls_from(project.name, resource.name)
        if envs:
            names = ", ".join(e.name for e in envs)
            raise BadRequest(
                f"Keystore (name: {resource.name}) serves TLS in environment ({names}):"
                " change or clear the environment's TLS identity first (keyops env set-tls)!"
            )

    def validate(self, project: Project, inp: KeystoreInput) -> KeystoreFields:
        envs, jobs = self._jobs(project, inp)
        checked = []
        for env, job, result in zip(envs, jobs, inp.parsed or (), strict=False):
            if isinstance(result, KeystoreError):
                raise BadRequest(f"{result.reason} (environment: {env.name})")
            data, key_password = job.data, job.key_password
            if result.file is not None:
                # Converted (PEM): the PKCS12 file is protected by the store password alone.
                data, key_password = result.file, None
            checked.append(
                CheckedStore(env, result.store_type, data, job.password, key_password, result)
            )
        if len(checked) != len(jobs):
            raise BadRequest("the keystores of the request were not all parsed!")
        return KeystoreFields((inp.description or "").strip(), checked)

    def rows(self, project: Project, valid: KeystoreFields) -> list[KeystoreEnvironment]:
        return [
            KeystoreEnvironment(
                environment_id=c.env.id,
                position=i,
                store_type=c.store_type,
                file_sealed=self.keyring.seal(c.data, Purpose.KEYSTORE_FILE),
                password_sealed=self.keyring.seal(
                    (c.password or "").encode("utf-8"), Purpose.KEYSTORE_PASSWORD
                ),
                key_password_sealed=(
                    self.keyring.seal(c.key_password.encode("utf-8"), Purpose.KEYSTORE_KEY_PASSWORD)
                    if c.key_password
                    else None
                ),
                entries_json=json.dumps(entries_summary(c.parsed)),
            )
            for i, c in enumerate(valid.checked)
        ]

    def artifact(self, project_name: str, resource: Keystore, row: KeystoreEnvironment) -> Artifact:
        """A keystore in an environment: type, file and passwords, always sealed.

        ``password`` is null for a store of trusted certificates kept without one;
        ``keyPassword`` is there only when it differs from the store password.
        """
        data, password = store_of(row, self.keyring)
        doc: dict[str, Any] = {
            "type": row.store_type,
            "file": base64.b64encode(data).decode("ascii"),
            "password": password or None,
        }
        key_password = key_password_of(row, self.keyring)
        if key_password:
            doc["keyPassword"] = key_password
        content = json.dumps(doc, sort_keys=True).encode("utf-8")
        return Artifact(self.ref(project_name, resource.name), content, sensitive=True)

    def fingerprint_of(self, resource: Keystore, row: KeystoreEnvironment) -> bytes:
        return file_of(row, self.keyring)

    def version_facts(self, row: KeystoreEnvironment) -> dict[str, Any]:
        """The soonest-expiring certificate entry's subject and not-after."""
        dated = [e for e in json.loads(row.entries_json) if e.get("endDate")]
        if not dated:
            return {"type": row.store_type}
        first = min(dated, key=lambda e: e["endDate"])
        return {
            "type": row.store_type,
            "subjectDn": first["subjectDn"],
            "notAfter": first["endDate"],
        }

    def restore_input(
        self,
        name: str,
        attributes: dict[str, Any],
        rows: list[KeystoreEnvironment],
        environment_names: list[str],
    ) -> KeystoreInput:
        environments = []
        for env_name, row in zip(environment_names, rows, strict=True):
            data, password = store_of(row, self.keyring)
            environments.append(
                KeystoreEnvironmentInput(
                    env_name,
                    row.store_type,
                    base64.b64encode(data).decode("ascii"),
                    password or None,
                    key_password_of(row, self.keyring),
                )
            )
        return KeystoreInput(name, attributes.get("description", ""), environments)

    def derive(self, follower: JwkFollower, valid: KeystoreFields) -> Derive:
        by_env = {c.env.name: c.parsed for c in valid.checked}

        def derive(jwk: Any) -> dict[str, Any] | None:
            parsed = by_env.get(jwk.source_environment or "")
            entry = (
                parsed.entry(jwk.source_alias)
                if parsed is not None and jwk.source_alias is not None
                else None
            )
            return follower.derive_from_entry(jwk, entry)

        return derive
