"""Key and keystore shapes (CryptoKeyInfo and Keystore objects of the contract)."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from keyops.api.schemas.common import CamelModel
from keyops.crypto.keys import KeyMaterial

Material = Annotated[str | None, Field(max_length=2 * 1024 * 1024)]
ShortText = Annotated[str | None, Field(max_length=1000)]


class KeyEnvironmentBody(CamelModel):
    environment_name: ShortText = None
    public_key: Material = None
    private_key: Material = None


class KeyBody(CamelModel):
    name: ShortText = None
    description: Annotated[str | None, Field(max_length=10_000)] = None
    key_type: Annotated[str | None, Field(max_length=32)] = None
    project_id: ShortText = Field(default=None, description="Ignored; the path names the project.")
    crypto_key_info_environment_list: list[KeyEnvironmentBody] = Field(
        default_factory=list, max_length=100
    )


class KeystoreEnvironmentBody(CamelModel):
    environment_name: ShortText = None
    type: Annotated[str | None, Field(max_length=16)] = None
    file: Annotated[str | None, Field(max_length=6 * 1024 * 1024)] = None
    password: Annotated[str | None, Field(max_length=1000)] = Field(
        default=None,
        description="Write-only: never returned. May be left out for a store holding only"
        " trusted certificates.",
    )
    key_password: Annotated[str | None, Field(max_length=1000)] = Field(
        default=None,
        description="Write-only: never returned. The key entries' password when it differs"
        " from the store password (keytool -keypass); defaults to password.",
    )


class KeystoreBody(CamelModel):
    name: ShortText = None
    description: Annotated[str | None, Field(max_length=10_000)] = None
    project_id: ShortText = Field(default=None, description="Ignored; the path names the project.")
    key_store_environment_list: list[KeystoreEnvironmentBody] = Field(
        default_factory=list, max_length=100
    )


class KeyEnvironmentRead(CamelModel):
    environment_name: str
    public_key: str | None
    private_key: str | None
    curve: str | None
    key_size: int | None


class KeyRead(CamelModel):
    name: str
    description: str
    project_id: str
    key_type: str
    crypto_key_info_environment_list: list[KeyEnvironmentRead]


class KeystoreEntryRead(CamelModel):
    """An entry's alias and kind; the certificate summary when it holds a certificate."""

    # Summaries stored by an earlier version may carry other facts: shown as stored.
    model_config = ConfigDict(extra="allow")

    alias: str
    kind: str
    subject_dn: str | None = None
    issuer_dn: str | None = None
    sha1_thumbprint: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    key_type: str | None = None
    chain_length: int | None = None


class KeystoreEnvironmentRead(CamelModel):
    environment_name: str
    type: str
    file: str
    entries: list[KeystoreEntryRead]


class KeystoreRead(CamelModel):
    name: str
    description: str
    project_id: str
    key_store_environment_list: list[KeystoreEnvironmentRead]


def key_environment(environment_name: str, material: KeyMaterial) -> dict[str, Any]:
    return {
        "environmentName": environment_name,
        "publicKey": (
            base64.b64encode(material.public_der).decode("ascii")
            if material.public_der is not None
            else None
        ),
        "privateKey": material.private_b64,
        "curve": material.curve,
        "keySize": material.size_bits,
    }


def keystore_environment(
    environment_name: str, store_type: str, data: bytes, entries_json: str
) -> dict[str, Any]:
    """A keystore environment object; the password is write-only and never shown."""
    return {
        "environmentName": environment_name,
        "type": store_type,
        "file": base64.b64encode(data).decode("ascii"),
        "entries": json.loads(entries_json),
    }
