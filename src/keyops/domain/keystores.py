"""Keystores (JKS, JCEKS, PKCS12): parsed on the way in, file and passwords sealed at rest.

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
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keyops.crypto.keystores import KeystoreError, ParsedKeystore
from keyops.crypto.x509 import format_instant
from keyops.deploy.plan import ChangePlan
from keyops.deploy.target import Artifact, ArtifactRef
from keyops.domain.common import environment_names, resource_name, undeploy_from
from keyops.domain.environments import EnvironmentService
from keyops.domain.jwks import JwkFollower, JwkUpdate
from keyops.domain.keystore_parsing import ParseJob
from keyops.errors import BadRequest
from keyops.secrets import Keyring, Purpose
from keyops.storage.integrity import is_unique_violation
from keyops.storage.models import Environment, Keystore, KeystoreEnvironment, Project
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.keystores import KeystoreRepository

KIND = "keystore"
MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class KeystoreEnvironmentInput:
    environment_name: str | None
    type: str | None
    file: str | None
    password: str | None
    key_password: str | None = None


@dataclass(slots=True)
class KeystoreInput:
    name: str | None
    description: str | None
    environments: list[KeystoreEnvironmentInput]


@dataclass(frozen=True, slots=True)
class KeystoreChange:
    keystore: Keystore
    plan: ChangePlan


@dataclass(frozen=True, slots=True)
class _Checked:
    env: Environment
    store_type: str
    data: bytes
    password: str | None
    key_password: str | None
    parsed: ParsedKeystore


def not_found(name: str) -> BadRequest:
    return BadRequest(f"Keystore (name: {name}) is not found!")


def _already_exists(name: str) -> BadRequest:
    return BadRequest(
        f"Keystore (name: {name}) is already exist! Try update operation if want to change"
        " its value."
    )


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


def keystore_artifact(
    project: str,
    name: str,
    store_type: str,
    data: bytes,
    password: str | None,
    key_password: str | None = None,
) -> Artifact:
    """A keystore in an environment: type, file and passwords, always sealed.

    ``password`` is null for a store of trusted certificates kept without one;
    ``keyPassword`` is there only when it differs from the store password.
    """
    doc: dict[str, Any] = {
        "type": store_type,
        "file": base64.b64encode(data).decode("ascii"),
        "password": password or None,
    }
    if key_password:
        doc["keyPassword"] = key_password
    content = json.dumps(doc, sort_keys=True).encode("utf-8")
    return Artifact(ArtifactRef(KIND, project, name), content, sensitive=True)


def _decode_file(value: str | None, env_name: str) -> bytes:
    if value is None or not value.strip():
        raise BadRequest(f"file value can not be empty! (environment: {env_name})")
    if len(value) > MAX_FILE_BYTES * 4 // 3 + 4:
        raise BadRequest(f"file is larger than {MAX_FILE_BYTES} bytes! (environment: {env_name})")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"file is not valid base64! (environment: {env_name})") from None


class KeystoreService:
    def __init__(
        self, session: Session, environments: EnvironmentService, keyring: Keyring
    ) -> None:
        self.session = session
        self.environments = environments
        self.keyring = keyring
        self.keystores = KeystoreRepository(session)

    def _jobs(
        self, project: Project, inp: KeystoreInput
    ) -> tuple[list[Environment], list[ParseJob]]:
        names = environment_names(
            "keyStoreEnvironmentList", [e.environment_name for e in inp.environments]
        )
        # Environments first: a request naming unknown ones costs no parsing at all.
        envs = self.environments.resolve_for_project(names, project)
        jobs = []
        for env_name, env_input in zip(names, inp.environments, strict=True):
            data = _decode_file(env_input.file, env_name)
            if env_input.type is None or not env_input.type.strip():
                raise BadRequest(f"type value can not be empty! (environment: {env_name})")
            if env_input.key_password and not env_input.password:
                raise BadRequest(f"password value can not be empty! (environment: {env_name})")
            jobs.append(
                ParseJob(
                    data,
                    env_input.type.strip(),
                    env_input.password or None,
                    env_input.key_password or None,
                )
            )
        return envs, jobs

    def parse_jobs(
        self, project: Project, inp: KeystoreInput, *, name: str | None
    ) -> list[ParseJob]:
        """Check what can be checked before parsing (name, environments, encodings) and
        say what to parse; ``name`` is the keystore updated, None for a create. The slow
        parse then runs outside any transaction (``keystore_parsing.parse_all``)."""
        if name is None:
            new = resource_name("Keystore", inp.name)
            if self.keystores.get(project.id, new) is not None:
                raise _already_exists(new)
        else:
            self._check_update(project, name, self._new_name(name, inp), lock=False)
        return self._jobs(project, inp)[1]

    def _checked(
        self, project: Project, inp: KeystoreInput, parsed: Sequence[ParsedKeystore | KeystoreError]
    ) -> list[_Checked]:
        envs, jobs = self._jobs(project, inp)
        checked = []
        for env, job, result in zip(envs, jobs, parsed, strict=False):
            if isinstance(result, KeystoreError):
                raise BadRequest(f"{result.reason} (environment: {env.name})")
            checked.append(
                _Checked(env, result.store_type, job.data, job.password, job.key_password, result)
            )
        if len(checked) != len(jobs):
            raise BadRequest("the keystores of the request were not all parsed!")
        return checked

    @staticmethod
    def _new_name(name: str, inp: KeystoreInput) -> str:
        return resource_name("Keystore", inp.name) if inp.name and inp.name.strip() else name

    def _rows(self, checked: Sequence[_Checked]) -> list[KeystoreEnvironment]:
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
            for i, c in enumerate(checked)
        ]

    @staticmethod
    def _artifact(project: str, name: str, c: _Checked) -> Artifact:
        return keystore_artifact(project, name, c.store_type, c.data, c.password, c.key_password)

    def create(
        self,
        project: Project,
        inp: KeystoreInput,
        parsed: Sequence[ParsedKeystore | KeystoreError],
    ) -> KeystoreChange:
        """Store a keystore whose files ``parse_jobs`` named and ``parse_all`` parsed."""
        name = resource_name("Keystore", inp.name)
        checked = self._checked(project, inp, parsed)
        if self.keystores.get(project.id, name) is not None:
            raise _already_exists(name)
        keystore = Keystore(
            project_id=project.id, name=name, description=(inp.description or "").strip()
        )
        try:
            self.keystores.add(keystore)
        except IntegrityError as exc:
            if is_unique_violation(exc, "keystores"):
                raise _already_exists(name) from None
            raise
        self.keystores.replace_environments(keystore, self._rows(checked))
        plan = ChangePlan()
        for c in checked:
            plan.deploy(c.env, self._artifact(project.name, name, c))
        return KeystoreChange(keystore, plan)

    def update(
        self,
        project: Project,
        name: str,
        inp: KeystoreInput,
        parsed: Sequence[ParsedKeystore | KeystoreError],
        jwk_update: JwkUpdate,
    ) -> KeystoreChange:
        """Replace the keystore whole (a new ``name`` renames it); a refusal changes nothing."""
        new_name = self._new_name(name, inp)
        keystore = self._check_update(project, name, new_name, lock=True)
        checked = self._checked(project, inp, parsed)
        by_env = {c.env.name: c.parsed for c in checked}
        jwks = JwkFollower(self.session, self.environments, self.keyring)

        def derive(jwk: Any) -> dict[str, Any] | None:
            parsed = by_env.get(jwk.source_environment or "")
            entry = (
                parsed.entry(jwk.source_alias)
                if parsed is not None and jwk.source_alias is not None
                else None
            )
            return jwks.derive_from_entry(jwk, entry)

        jwk_plan = jwks.plan("keystore", keystore.id, project, derive, jwk_update)
        old_envs = {row.environment_id for row in keystore.environments}
        self.keystores.replace_environments(keystore, self._rows(checked))
        keystore.name = new_name
        keystore.description = (inp.description or "").strip()
        keystore.version += 1
        keystore.updated_at = utcnow()
        plan = ChangePlan()
        for c in checked:
            plan.deploy(c.env, self._artifact(project.name, new_name, c))
            if new_name != name:
                plan.undeploy(c.env, ArtifactRef(KIND, project.name, name))
        undeploy_from(
            self.session,
            plan,
            old_envs - {c.env.id for c in checked},
            ArtifactRef(KIND, project.name, name),
        )
        jwks.apply(jwk_plan, plan)
        return KeystoreChange(keystore, plan)

    def _check_update(self, project: Project, name: str, new_name: str, *, lock: bool) -> Keystore:
        keystore = self.keystores.get(project.id, name, for_update=lock)
        if keystore is None:
            raise not_found(name)
        if new_name != name and self.keystores.get(project.id, new_name) is not None:
            raise BadRequest(f"Keystore (name: {new_name}) is already exist!")
        if not lock:
            # Loaded again under the lock after the parse, fresh, not from this session.
            self.session.expunge(keystore)
        return keystore

    def delete(self, project: Project, name: str) -> KeystoreChange:
        keystore = self.keystores.get(project.id, name, for_update=True)
        if keystore is None:
            raise not_found(name)
        plan = ChangePlan()
        undeploy_from(
            self.session,
            plan,
            (row.environment_id for row in keystore.environments),
            ArtifactRef(KIND, project.name, name),
        )
        self.keystores.delete(keystore)
        return KeystoreChange(keystore, plan)

    def get(self, project: Project, name: str) -> Keystore:
        keystore = self.keystores.get(project.id, name)
        if keystore is None:
            raise not_found(name)
        return keystore

    def listing(self, project: Project) -> tuple[Sequence[Keystore], dict[int, str]]:
        """The project's keystores and their environments' names, in two statements."""
        return self.keystores.listing(project.id)

    def environment_names(self, keystore: Keystore) -> dict[int, str]:
        return self.keystores.environment_names(keystore)
