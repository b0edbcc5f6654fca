"""Keystores (JKS, PKCS12): parsed on the way in, file and password sealed at rest."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keyops.crypto.keystores import KeystoreError, ParsedKeystore, parse_keystore
from keyops.crypto.x509 import format_instant
from keyops.deploy.plan import ChangePlan
from keyops.deploy.target import Artifact, ArtifactRef
from keyops.domain.common import environment_names, resource_name, undeploy_from
from keyops.domain.environments import EnvironmentService
from keyops.domain.jwks import JwkService, JwkUpdate
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
    password: str
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
    project: str, name: str, store_type: str, data: bytes, password: str
) -> Artifact:
    """A keystore in an environment: type, file and password, always sealed."""
    content = json.dumps(
        {
            "type": store_type,
            "file": base64.b64encode(data).decode("ascii"),
            "password": password,
        },
        sort_keys=True,
    ).encode("utf-8")
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
        self, session: AsyncSession, environments: EnvironmentService, keyring: Keyring
    ) -> None:
        self.session = session
        self.environments = environments
        self.keyring = keyring
        self.keystores = KeystoreRepository(session)

    async def _validate(self, project: Project, inp: KeystoreInput) -> list[_Checked]:
        names = environment_names(
            "keyStoreEnvironmentList", [e.environment_name for e in inp.environments]
        )
        parsed_items = []
        for env_name, env_input in zip(names, inp.environments, strict=True):
            data = _decode_file(env_input.file, env_name)
            if env_input.type is None or not env_input.type.strip():
                raise BadRequest(f"type value can not be empty! (environment: {env_name})")
            if env_input.password is None:
                raise BadRequest(f"password value can not be empty! (environment: {env_name})")
            try:
                parsed = parse_keystore(data, env_input.type.strip(), env_input.password)
            except KeystoreError as exc:
                raise BadRequest(f"{exc.reason} (environment: {env_name})") from None
            parsed_items.append((parsed, data, env_input.password))
        envs = await self.environments.resolve_for_project(names, project)
        return [
            _Checked(env, parsed.store_type, data, password, parsed)
            for env, (parsed, data, password) in zip(envs, parsed_items, strict=True)
        ]

    def _rows(self, checked: Sequence[_Checked]) -> list[KeystoreEnvironment]:
        return [
            KeystoreEnvironment(
                environment_id=c.env.id,
                position=i,
                store_type=c.store_type,
                file_sealed=self.keyring.seal(c.data, Purpose.KEYSTORE_FILE),
                password_sealed=self.keyring.seal(
                    c.password.encode("utf-8"), Purpose.KEYSTORE_PASSWORD
                ),
                entries_json=json.dumps(entries_summary(c.parsed)),
            )
            for i, c in enumerate(checked)
        ]

    async def create(self, project: Project, inp: KeystoreInput) -> KeystoreChange:
        name = resource_name("Keystore", inp.name)
        if await self.keystores.get(project.id, name) is not None:
            raise _already_exists(name)
        checked = await self._validate(project, inp)
        keystore = Keystore(
            project_id=project.id, name=name, description=(inp.description or "").strip()
        )
        try:
            await self.keystores.add(keystore)
        except IntegrityError as exc:
            if is_unique_violation(exc, "keystores"):
                raise _already_exists(name) from None
            raise
        await self.keystores.replace_environments(keystore, self._rows(checked))
        plan = ChangePlan()
        for c in checked:
            plan.deploy(
                c.env, keystore_artifact(project.name, name, c.store_type, c.data, c.password)
            )
        return KeystoreChange(keystore, plan)

    async def update(
        self, project: Project, name: str, inp: KeystoreInput, jwk_update: JwkUpdate
    ) -> KeystoreChange:
        """Replace the keystore whole (a new ``name`` renames it); a refusal changes nothing."""
        keystore = await self.keystores.get(project.id, name, for_update=True)
        if keystore is None:
            raise not_found(name)
        new_name = resource_name("Keystore", inp.name) if inp.name and inp.name.strip() else name
        if new_name != name and await self.keystores.get(project.id, new_name) is not None:
            raise BadRequest(f"Keystore (name: {new_name}) is already exist!")
        checked = await self._validate(project, inp)
        by_env = {c.env.name: c.parsed for c in checked}
        jwks = JwkService(self.session, self.environments, self.keyring)

        def derive(jwk: Any) -> dict[str, Any] | None:
            parsed = by_env.get(jwk.source_environment or "")
            entry = (
                parsed.entry(jwk.source_alias)
                if parsed is not None and jwk.source_alias is not None
                else None
            )
            return jwks.derive_from_entry(jwk, entry)

        jwk_plan = await jwks.plan_replacement(
            await jwks.jwks.referencing("keystore", keystore.id), project, derive, jwk_update
        )
        old_envs = {row.environment_id for row in keystore.environments}
        await self.keystores.replace_environments(keystore, self._rows(checked))
        keystore.name = new_name
        keystore.description = (inp.description or "").strip()
        keystore.version += 1
        keystore.updated_at = utcnow()
        plan = ChangePlan()
        for c in checked:
            plan.deploy(
                c.env, keystore_artifact(project.name, new_name, c.store_type, c.data, c.password)
            )
            if new_name != name:
                plan.undeploy(c.env, ArtifactRef(KIND, project.name, name))
        await undeploy_from(
            self.session,
            plan,
            old_envs - {c.env.id for c in checked},
            ArtifactRef(KIND, project.name, name),
        )
        await jwks.apply_replacement(jwk_plan, plan)
        return KeystoreChange(keystore, plan)

    async def delete(self, project: Project, name: str) -> KeystoreChange:
        keystore = await self.keystores.get(project.id, name, for_update=True)
        if keystore is None:
            raise not_found(name)
        plan = ChangePlan()
        await undeploy_from(
            self.session,
            plan,
            (row.environment_id for row in keystore.environments),
            ArtifactRef(KIND, project.name, name),
        )
        await self.keystores.delete(keystore)
        return KeystoreChange(keystore, plan)

    async def get(self, project: Project, name: str) -> Keystore:
        keystore = await self.keystores.get(project.id, name)
        if keystore is None:
            raise not_found(name)
        return keystore

    async def list_in_project(self, project: Project) -> Sequence[Keystore]:
        return await self.keystores.list_for_project(project.id)

    async def environment_names(self, keystore: Keystore) -> dict[int, str]:
        return await self.keystores.environment_names(keystore)
