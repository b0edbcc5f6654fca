"""The versions listing of certificates, keys and keystores (history, issue 12).

A kept version shows public facts only: a SHA-256 fingerprint per environment and what
its kind adds (a certificate's alias, subject and not-after; a key's curve and size; a
keystore's type and its soonest-expiring certificate). Never material, never a password.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from keyops.api.schemas.common import CamelModel, ResultList

__all__ = [
    "CertificateVersionRead",
    "KeyVersionRead",
    "KeystoreVersionRead",
    "version_list_answer",
]


class _VersionEnvironmentRead(CamelModel):
    # The facts are stored with the version: a fact a later keyops no longer shows is
    # dropped from the answer rather than refused.
    model_config = ConfigDict(extra="ignore")

    environment_name: str | None = Field(
        description="Null when the environment has been deleted since (such a version can"
        " not be rolled back)."
    )
    sha256_fingerprint: str = Field(
        description="Hex SHA-256 of the certificate's DER, the key's SubjectPublicKeyInfo"
        " (a symmetric key: its secret) or the keystore file."
    )


class CertificateVersionEnvironmentRead(_VersionEnvironmentRead):
    alias: str
    subject_dn: str
    not_after: str


class KeyVersionEnvironmentRead(_VersionEnvironmentRead):
    curve: str | None
    key_size: int | None


class KeystoreVersionEnvironmentRead(_VersionEnvironmentRead):
    type: str
    subject_dn: str | None = Field(
        default=None, description="Of the soonest-expiring certificate entry; null if none."
    )
    not_after: str | None = Field(
        default=None, description="Of the soonest-expiring certificate entry; null if none."
    )


class _VersionRead(CamelModel):
    version: int = Field(description="Numbered per resource from 1, newest first.")
    created_at: str = Field(description="When this version was kept: the change that replaced it.")
    created_by: str = Field(description="Who made the change that replaced or deleted it.")
    reason: Literal["REPLACED", "DELETED"]
    description: str


class CertificateVersionRead(_VersionRead):
    environment_list: list[CertificateVersionEnvironmentRead]


class KeyVersionRead(_VersionRead):
    environment_list: list[KeyVersionEnvironmentRead]


class KeystoreVersionRead(_VersionRead):
    environment_list: list[KeystoreVersionEnvironmentRead]


_ANSWERS: dict[str, type[CamelModel]] = {
    "certificate": ResultList[CertificateVersionRead],
    "key": ResultList[KeyVersionRead],
    "keystore": ResultList[KeystoreVersionRead],
}


def version_list_answer(singular: str) -> type[CamelModel]:
    """The versions listing's answer for a kind, by its routes' singular name."""
    return _ANSWERS[singular]
