"""Crypto keys and keystores: list, get, create, update, delete, versions, rollback.

Material goes per environment. A name in ``environments`` takes the call's material
(``public_key``/``private_key``, or ``file`` and passwords); a ``KeyMaterial`` or
``KeystoreFile`` carries its own, for environments that differ.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from keyops.client._ops import Call, Mode, first_call, json_call, operation
from keyops.client._resources import (
    JwkUpdateAction,
    UpdateScope,
    Versioned,
    jwk_update,
    list_params,
)
from keyops.client.models import Change, Key, Keystore, ResultList

__all__ = ["KeyMaterial", "Keys", "KeystoreFile", "Keystores"]


def _text(material: bytes | str | None) -> str | None:
    """Key material as the contract takes it: PEM text as it is, DER as base64."""
    if material is None or isinstance(material, str):
        return material
    if material.lstrip().startswith(b"-----BEGIN"):
        return material.decode("ascii")
    return base64.b64encode(material).decode("ascii")


def _names(environments: Sequence[Any]) -> None:
    if isinstance(environments, str):
        raise TypeError("environments is a sequence, not one string")


@dataclass(frozen=True)
class KeyMaterial:
    """One environment's key: PEM text or DER bytes (SubjectPublicKeyInfo / PKCS#8);
    a secret key is given as ``private_key``."""

    environment_name: str
    public_key: bytes | str | None = field(default=None, repr=False)
    private_key: bytes | str | None = field(default=None, repr=False)

    def body(self) -> dict[str, Any]:
        return {
            "environmentName": self.environment_name,
            "publicKey": _text(self.public_key),
            "privateKey": _text(self.private_key),
        }


@dataclass(frozen=True)
class KeystoreFile:
    """One environment's keystore file (JKS, JCEKS or PKCS12) and its passwords."""

    environment_name: str
    file: bytes = field(repr=False)
    type: str = "PKCS12"
    password: str | None = field(default=None, repr=False)
    key_password: str | None = field(default=None, repr=False)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "environmentName": self.environment_name,
            "type": self.type,
            "file": base64.b64encode(self.file).decode("ascii"),
            "password": self.password,
        }
        if self.key_password is not None:
            out["keyPassword"] = self.key_password
        return out


class _Kind(Versioned[Mode]):
    @operation
    def delete(self, project: str, name: str) -> Call[Change]:
        """Delete it and undeploy it everywhere."""
        return json_call("DELETE", self._one(project, name), Change)


class Keys(_Kind[Mode]):
    """``/apiops/projects/{project}/keys/``."""

    _kind = "keys"

    @operation
    def list(
        self,
        project: str,
        *,
        page: int | None = None,
        size: int | None = None,
        sort: str | None = None,
        name: str | None = None,
        environment: str | None = None,
        expiring_within_days: int | None = None,
    ) -> Call[ResultList[Key]]:
        """The project's keys (paging and filters as ``Certificates.list``)."""
        params = list_params(page, size, sort, name, environment, expiring_within_days)
        return json_call("GET", self._base(project), ResultList[Key], params=params)

    @staticmethod
    def _body(
        name: str,
        key_type: str,
        environments: Sequence[str | KeyMaterial],
        public_key: bytes | str | None,
        private_key: bytes | str | None,
        description: str,
    ) -> dict[str, Any]:
        _names(environments)
        entries = [
            e if isinstance(e, KeyMaterial) else KeyMaterial(e, public_key, private_key)
            for e in environments
        ]
        return {
            "name": name,
            "description": description,
            "keyType": key_type,
            "cryptoKeyInfoEnvironmentList": [e.body() for e in entries],
        }

    @operation
    def get(self, project: str, name: str) -> Call[Key]:
        """One key, with its material per environment."""
        return first_call("GET", self._one(project, name), Key)

    @operation
    def create(
        self,
        project: str,
        name: str,
        *,
        key_type: str,
        environments: Sequence[str | KeyMaterial],
        public_key: bytes | str | None = None,
        private_key: bytes | str | None = None,
        description: str = "",
    ) -> Call[Change]:
        """Create a key (``key_type`` RSA, EC, ...) in ``environments``."""
        body = self._body(name, key_type, environments, public_key, private_key, description)
        return json_call("POST", self._base(project), Change, json=body)

    @operation
    def update(
        self,
        project: str,
        name: str,
        *,
        key_type: str,
        environments: Sequence[str | KeyMaterial],
        public_key: bytes | str | None = None,
        private_key: bytes | str | None = None,
        description: str = "",
        update_referenced_jwks: bool | None = None,
        jwk_update_action: JwkUpdateAction | None = None,
        update_scope: UpdateScope | None = None,
    ) -> Call[Change]:
        """Replace the key; JWKs made from it are re-derived or detached (as certificates)."""
        body = self._body(name, key_type, environments, public_key, private_key, description)
        params = jwk_update(update_referenced_jwks, jwk_update_action, update_scope)
        return json_call("PUT", self._one(project, name), Change, params=params, json=body)


class Keystores(_Kind[Mode]):
    """``/apiops/projects/{project}/keystores/``."""

    _kind = "keystores"

    @operation
    def list(
        self,
        project: str,
        *,
        page: int | None = None,
        size: int | None = None,
        sort: str | None = None,
        name: str | None = None,
        environment: str | None = None,
        expiring_within_days: int | None = None,
    ) -> Call[ResultList[Keystore]]:
        """The project's keystores (paging and filters as ``Certificates.list``)."""
        params = list_params(page, size, sort, name, environment, expiring_within_days)
        return json_call("GET", self._base(project), ResultList[Keystore], params=params)

    @staticmethod
    def _body(
        name: str,
        environments: Sequence[str | KeystoreFile],
        file: bytes | None,
        store_type: str,
        password: str | None,
        key_password: str | None,
        description: str,
    ) -> dict[str, Any]:
        _names(environments)
        entries = []
        for e in environments:
            if isinstance(e, KeystoreFile):
                entries.append(e)
            elif file is None:
                raise TypeError(f"no file for environment {e}: give file= or a KeystoreFile")
            else:
                entries.append(KeystoreFile(e, file, store_type, password, key_password))
        return {
            "name": name,
            "description": description,
            "keyStoreEnvironmentList": [e.body() for e in entries],
        }

    @operation
    def get(self, project: str, name: str) -> Call[Keystore]:
        """One keystore: its file (base64) and entries per environment; never a password."""
        return first_call("GET", self._one(project, name), Keystore)

    @operation
    def create(
        self,
        project: str,
        name: str,
        *,
        environments: Sequence[str | KeystoreFile],
        file: bytes | None = None,
        store_type: str = "PKCS12",
        password: str | None = None,
        key_password: str | None = None,
        description: str = "",
    ) -> Call[Change]:
        """Upload a keystore file (JKS, JCEKS or PKCS12) with its passwords."""
        body = self._body(name, environments, file, store_type, password, key_password, description)
        return json_call("POST", self._base(project), Change, json=body)

    @operation
    def update(
        self,
        project: str,
        name: str,
        *,
        environments: Sequence[str | KeystoreFile],
        file: bytes | None = None,
        store_type: str = "PKCS12",
        password: str | None = None,
        key_password: str | None = None,
        description: str = "",
        update_referenced_jwks: bool | None = None,
        jwk_update_action: JwkUpdateAction | None = None,
        update_scope: UpdateScope | None = None,
    ) -> Call[Change]:
        """Replace the keystore; JWKs made from it are re-derived or detached."""
        body = self._body(name, environments, file, store_type, password, key_password, description)
        params = jwk_update(update_referenced_jwks, jwk_update_action, update_scope)
        return json_call("PUT", self._one(project, name), Change, params=params, json=body)
