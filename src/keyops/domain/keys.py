"""Crypto keys: per-environment material, private parts sealed at rest."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keyops.crypto.keys import KeyMaterial, KeyMaterialError, parse_key_material
from keyops.deploy.plan import ChangePlan
from keyops.deploy.target import Artifact, ArtifactRef
from keyops.domain.common import environment_names, resource_name, undeploy_from
from keyops.domain.environments import EnvironmentService
from keyops.domain.jwks import JwkFollower, JwkUpdate
from keyops.errors import BadRequest
from keyops.secrets import Keyring, Purpose
from keyops.storage.integrity import is_unique_violation
from keyops.storage.models import CryptoKey, CryptoKeyEnvironment, Environment, Project
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.keys import KeyRepository

KIND = "key"


@dataclass(slots=True)
class KeyEnvironmentInput:
    environment_name: str | None
    public_key: str | None
    private_key: str | None


@dataclass(slots=True)
class KeyInput:
    name: str | None
    description: str | None
    key_type: str | None
    environments: list[KeyEnvironmentInput]


@dataclass(frozen=True, slots=True)
class KeyChange:
    key: CryptoKey
    plan: ChangePlan


def not_found(name: str) -> BadRequest:
    return BadRequest(f"Key (name: {name}) is not found!")


def _already_exists(name: str) -> BadRequest:
    return BadRequest(
        f"Key (name: {name}) is already exist! Try update operation if want to change its value."
    )


def key_artifact(project: str, name: str, material: KeyMaterial) -> Artifact:
    """A key in an environment: its type and material as JSON; sealed if private."""
    content = json.dumps(
        {
            "keyType": material.key_type,
            "publicKey": _b64(material.public_der),
            "privateKey": material.private_b64,
        },
        sort_keys=True,
    ).encode("utf-8")
    private = material.private_der is not None or material.secret is not None
    return Artifact(ArtifactRef(KIND, project, name), content, sensitive=private)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


class KeyService:
    def __init__(
        self, session: Session, environments: EnvironmentService, keyring: Keyring
    ) -> None:
        self.session = session
        self.environments = environments
        self.keyring = keyring
        self.keys = KeyRepository(session)

    def _validate(
        self, project: Project, inp: KeyInput
    ) -> tuple[str, list[tuple[Environment, KeyMaterial]]]:
        names = environment_names(
            "cryptoKeyInfoEnvironmentList", [e.environment_name for e in inp.environments]
        )
        if inp.key_type is None or not inp.key_type.strip():
            raise BadRequest("keyType value can not be empty!")
        materials = []
        for env_input in inp.environments:
            try:
                materials.append(
                    parse_key_material(inp.key_type, env_input.public_key, env_input.private_key)
                )
            except KeyMaterialError as exc:
                raise BadRequest(
                    f"{exc.reason} (environment: {(env_input.environment_name or '').strip()})"
                ) from None
        key_type = materials[0].key_type
        envs = self.environments.resolve_for_project(names, project)
        return key_type, list(zip(envs, materials, strict=True))

    def _rows(self, pairs: Sequence[tuple[Environment, KeyMaterial]]) -> list[CryptoKeyEnvironment]:
        return [
            CryptoKeyEnvironment(
                environment_id=env.id,
                position=i,
                public_der=m.public_der,
                private_sealed=self.keyring.seal_optional(
                    m.secret if m.secret is not None else m.private_der, Purpose.KEY_PRIVATE
                ),
                curve=m.curve,
                size_bits=m.size_bits,
            )
            for i, (env, m) in enumerate(pairs)
        ]

    def create(self, project: Project, inp: KeyInput) -> KeyChange:
        name = resource_name("Key", inp.name)
        if self.keys.get(project.id, name) is not None:
            raise _already_exists(name)
        key_type, pairs = self._validate(project, inp)
        key = CryptoKey(
            project_id=project.id,
            name=name,
            description=(inp.description or "").strip(),
            key_type=key_type,
        )
        try:
            self.keys.add(key)
        except IntegrityError as exc:
            if is_unique_violation(exc, "crypto_keys"):
                raise _already_exists(name) from None
            raise
        self.keys.replace_environments(key, self._rows(pairs))
        plan = ChangePlan()
        for env, material in pairs:
            plan.deploy(env, key_artifact(project.name, name, material))
        return KeyChange(key, plan)

    def update(
        self, project: Project, name: str, inp: KeyInput, jwk_update: JwkUpdate
    ) -> KeyChange:
        """Replace the key whole (a new ``name`` renames it); a refusal changes nothing."""
        key = self.keys.get(project.id, name, for_update=True)
        if key is None:
            raise not_found(name)
        new_name = resource_name("Key", inp.name) if inp.name and inp.name.strip() else name
        if new_name != name and self.keys.get(project.id, new_name) is not None:
            raise BadRequest(f"Key (name: {new_name}) is already exist!")
        key_type, pairs = self._validate(project, inp)
        by_env_name = {env.name: m for env, m in pairs}
        jwks = JwkFollower(self.session, self.environments, self.keyring)
        jwk_plan = jwks.plan(
            "key",
            key.id,
            project,
            lambda jwk: jwks.derive_from_key_material(
                jwk, by_env_name.get(jwk.source_environment or "")
            ),
            jwk_update,
        )
        old_envs = {row.environment_id for row in key.environments}
        self.keys.replace_environments(key, self._rows(pairs))
        key.name = new_name
        key.key_type = key_type
        key.description = (inp.description or "").strip()
        key.version += 1
        key.updated_at = utcnow()
        plan = ChangePlan()
        for env, material in pairs:
            plan.deploy(env, key_artifact(project.name, new_name, material))
            if new_name != name:
                plan.undeploy(env, ArtifactRef(KIND, project.name, name))
        undeploy_from(
            self.session,
            plan,
            old_envs - {env.id for env, _ in pairs},
            ArtifactRef(KIND, project.name, name),
        )
        jwks.apply(jwk_plan, plan)
        return KeyChange(key, plan)

    def delete(self, project: Project, name: str) -> KeyChange:
        key = self.keys.get(project.id, name, for_update=True)
        if key is None:
            raise not_found(name)
        plan = ChangePlan()
        undeploy_from(
            self.session,
            plan,
            (row.environment_id for row in key.environments),
            ArtifactRef(KIND, project.name, name),
        )
        self.keys.delete(key)
        return KeyChange(key, plan)

    def get(self, project: Project, name: str) -> CryptoKey:
        key = self.keys.get(project.id, name)
        if key is None:
            raise not_found(name)
        return key

    def listing(self, project: Project) -> tuple[Sequence[CryptoKey], dict[int, str]]:
        """The project's keys and their environments' names, in two statements."""
        return self.keys.listing(project.id)

    def environment_names(self, key: CryptoKey) -> dict[int, str]:
        return self.keys.environment_names(key)
