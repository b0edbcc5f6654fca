"""Crypto keys: per-environment material, private parts sealed at rest."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keyops.crypto.keys import KeyMaterial, KeyMaterialError, parse_key_material
from keyops.deploy.target import Artifact
from keyops.domain.common import environment_names
from keyops.domain.jwks import JwkFollower
from keyops.domain.material import material_of
from keyops.domain.resources import Derive, PerEnvironmentService
from keyops.errors import BadRequest
from keyops.secrets import Purpose
from keyops.storage.models import CryptoKey, CryptoKeyEnvironment, Environment, Project
from keyops.storage.repositories.keys import KeyRepository


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
class KeyFields:
    key_type: str
    description: str
    environments: Sequence[Environment]
    materials: Sequence[KeyMaterial]


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


class KeyService(PerEnvironmentService[CryptoKey, CryptoKeyEnvironment, KeyInput, KeyFields]):
    kind = "key"
    label = "Key"
    repository = KeyRepository
    exists_hint = " Try update operation if want to change its value."

    def validate(self, project: Project, inp: KeyInput) -> KeyFields:
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
        envs = self.environments.resolve_for_project(names, project)
        return KeyFields(materials[0].key_type, (inp.description or "").strip(), envs, materials)

    def rows(self, project: Project, valid: KeyFields) -> list[CryptoKeyEnvironment]:
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
            for i, (env, m) in enumerate(zip(valid.environments, valid.materials, strict=True))
        ]

    def assign(self, resource: CryptoKey, valid: KeyFields) -> None:
        resource.description = valid.description
        resource.key_type = valid.key_type

    def artifact(
        self, project_name: str, resource: CryptoKey, row: CryptoKeyEnvironment
    ) -> Artifact:
        """A key in an environment: its type and material as JSON; sealed if private."""
        material = material_of(row, resource.key_type, self.keyring)
        content = json.dumps(
            {
                "keyType": material.key_type,
                "publicKey": _b64(material.public_der),
                "privateKey": material.private_b64,
            },
            sort_keys=True,
        ).encode("utf-8")
        private = material.private_der is not None or material.secret is not None
        return Artifact(self.ref(project_name, resource.name), content, sensitive=private)

    def fingerprint_of(self, resource: CryptoKey, row: CryptoKeyEnvironment) -> bytes:
        """The public key where there is one, else the secret (hashed, never kept)."""
        if row.public_der is not None:
            return row.public_der
        material = material_of(row, resource.key_type, self.keyring)
        return material.secret or material.private_der or b""

    def version_facts(self, row: CryptoKeyEnvironment) -> dict[str, Any]:
        return {"curve": row.curve, "keySize": row.size_bits}

    def restore_input(
        self,
        name: str,
        attributes: dict[str, Any],
        rows: list[CryptoKeyEnvironment],
        environment_names: list[str],
    ) -> KeyInput:
        key_type = str(attributes["key_type"])
        environments = []
        for env_name, row in zip(environment_names, rows, strict=True):
            material = material_of(row, key_type, self.keyring)
            environments.append(
                KeyEnvironmentInput(env_name, _b64(material.public_der), material.private_b64)
            )
        return KeyInput(name, attributes.get("description", ""), key_type, environments)

    def derive(self, follower: JwkFollower, valid: KeyFields) -> Derive:
        by_env_name = {
            env.name: m for env, m in zip(valid.environments, valid.materials, strict=True)
        }
        return lambda jwk: follower.derive_from_key_material(
            jwk, by_env_name.get(jwk.source_environment or "")
        )
