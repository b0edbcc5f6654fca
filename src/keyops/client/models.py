"""Typed answers of the keys & secrets endpoints, mirroring the contract's JSON.

Attributes are snake_case; each reads the camelCase field the contract names
(``certificate_environment_list`` is ``certificateEnvironmentList``). Fields the
client does not know are kept (``extra="allow"``), so an answer from a newer keyops or
from Apinizer itself still parses. Secret material (private keys, keystore files, JWK
members) is left out of ``repr``: printing a result never shows it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "Certificate",
    "CertificateEnvironment",
    "Change",
    "DeploymentResult",
    "EnvironmentResult",
    "Jwk",
    "Key",
    "KeyEnvironment",
    "Keystore",
    "KeystoreEntry",
    "KeystoreEnvironment",
    "Model",
    "ResultList",
    "Version",
    "VersionEnvironment",
]

T = TypeVar("T")


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


def secret(default: Any = None) -> Any:
    """A field whose value is never shown by ``repr``."""
    return Field(default=default, repr=False)


class ResultList(Model, Generic[T]):
    """The list envelope: ``resultList`` and ``resultCount``; the paging fields when a
    page was asked for. List projects answers ``status`` instead of ``success``."""

    success: bool | None = None
    status: str | None = None
    result_list: list[T]
    result_count: int
    page: int | None = None
    size: int | None = None
    total_count: int | None = None


class EnvironmentResult(Model):
    environment_name: str
    success: bool
    message: str


class DeploymentResult(Model):
    """``success`` only if every environment succeeded (decision 13)."""

    success: bool
    message: str
    environment_results: list[EnvironmentResult]


class JwkResult(Model):
    """What an update did to a JWK that followed the resource."""

    project_name: str
    name: str
    action: str  # UPDATED (re-derived from the new material) or DETACHED
    old_kid: str | None = None
    new_kid: str | None = None


class Change(Model):
    """The answer of a create, update, delete or rollback: its roll-out per environment,
    and for an update of a certificate, key or keystore what happened to the JWKs that
    followed it (``jwk_results``, empty for the other answers)."""

    success: bool
    deployment_result: DeploymentResult
    jwk_results: list[JwkResult] = Field(default_factory=list)

    @property
    def failed(self) -> list[EnvironmentResult]:
        """The environments the change could not be rolled out to."""
        return [r for r in self.deployment_result.environment_results if not r.success]

    def result_for(self, environment: str) -> EnvironmentResult:
        """The result in one environment; ``KeyError`` if the change did not touch it."""
        for r in self.deployment_result.environment_results:
            if r.environment_name == environment:
                return r
        raise KeyError(environment)


class CertificateEnvironment(Model):
    environment_name: str
    start_date: str
    end_date: str
    sha1_thumbprint: str
    subject_dn: str
    alias: str
    # In a get, not in a list (decision 9): base64 DER.
    base64_encoded_content: str | None = None


class Certificate(Model):
    name: str
    description: str
    certificate_environment_list: list[CertificateEnvironment]


class KeyEnvironment(Model):
    environment_name: str
    public_key: str | None = None
    private_key: str | None = secret()
    curve: str | None = None
    key_size: int | None = None


class Key(Model):
    name: str
    description: str
    project_id: str | None = None
    key_type: str
    crypto_key_info_environment_list: list[KeyEnvironment]


class KeystoreEntry(Model):
    alias: str
    kind: str
    subject_dn: str | None = None
    issuer_dn: str | None = None
    sha1_thumbprint: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    key_type: str | None = None
    chain_length: int | None = None


class KeystoreEnvironment(Model):
    environment_name: str
    type: str
    # base64 of the store file (in a get).
    file: str | None = secret()
    entries: list[KeystoreEntry] = Field(default_factory=list)


class Keystore(Model):
    name: str
    description: str
    project_id: str | None = None
    key_store_environment_list: list[KeystoreEnvironment]


class Jwk(Model):
    """A JWK's management object; a get adds the material (``rsa``/``ec``/``oct``/``okp``)
    and ``jwk``, the JWK itself."""

    name: str
    description: str
    project_id: str | None = None
    source_type: str | None = None
    source_id: str | None = None
    source_url: str | None = None
    source_environment: str | None = None  # of a JWK derived from a certificate, key, keystore
    source_alias: str | None = None  # the keystore entry it was derived from
    type: str
    kid: str | None = None
    use_type: str | None = None
    algorithm: str | None = None
    private: bool = False
    rsa: dict[str, Any] | None = secret()
    ec: dict[str, Any] | None = secret()
    oct: dict[str, Any] | None = secret()
    okp: dict[str, Any] | None = secret()
    jwk: dict[str, Any] | None = secret()


class VersionEnvironment(Model):
    """A kept version in one environment: public facts only (what its kind has)."""

    environment_name: str | None
    sha256_fingerprint: str
    alias: str | None = None
    subject_dn: str | None = None
    not_after: str | None = None
    curve: str | None = None
    key_size: int | None = None
    type: str | None = None


class Version(Model):
    """A kept version of a certificate, key or keystore, newest first."""

    version: int
    created_at: str
    created_by: str
    reason: str
    description: str
    environment_list: list[VersionEnvironment]
