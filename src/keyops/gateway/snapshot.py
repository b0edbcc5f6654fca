"""An environment's snapshot as the manager sends it, and the state a node serves from it.

``parse_snapshot`` reads the sync answer (JSON bytes) and checks its shape and every
artifact's ``contentHash``; ``build_state`` turns it into an immutable ``AppliedState``:
the server identity, the truststore, the published JWK Set and the fingerprints. Both
are pure (no I/O) and raise ``SnapshotError`` whose message is safe to log and to send
back to the manager in an ack: it never quotes key material.

Decisions:

* The truststore is the certificates of the ``admin`` project deployed to the
  environment, deduplicated; certificates of other projects are checked but not trusted.
* The server identity is the ``tlsIdentity`` alias of the named keystore artifact; it
  must be a private key entry. Without a driver, other keystores are not opened (each
  costs a password derivation), so a broken unrelated keystore does not stop a node.
  With a driver (``open_keystores=True``) every keystore is opened, since each of its
  private key entries becomes files a gateway serves; one that can not be opened fails
  the apply rather than silently dropping that gateway's certificate.
* The JWK Set holds the public part of every ``jwk`` artifact. Symmetric (``oct``) keys
  have no public part and are left out rather than published.
* Artifacts of a kind this node does not know are skipped, so a manager that learns a new
  kind does not make older nodes refuse every snapshot.
* Fingerprints are lower-case SHA-256 hex of the DER, the same digest as the artifacts'
  ``contentHash``, so the manager can compare an ack with what it deployed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from keyops.crypto.jwk import JwkError, jwk_thumbprint, public_jwk, split_private
from keyops.crypto.keystores import KeystoreError, ParsedKeystore, parse_keystore
from keyops.crypto.x509 import CertificateParseError, parse_certificate
from keyops.secrets import Secret

__all__ = [
    "ADMIN_PROJECT",
    "KINDS",
    "AppliedState",
    "Artifact",
    "DeployedCertificate",
    "DeployedKeystore",
    "KeyEntry",
    "ServerIdentity",
    "Snapshot",
    "SnapshotError",
    "TlsIdentityRef",
    "build_state",
    "parse_snapshot",
]

log = logging.getLogger(__name__)

ADMIN_PROJECT = "admin"
KINDS: tuple[str, ...] = ("certificate", "jwk", "key", "keystore")


class SnapshotError(ValueError):
    """The snapshot can not be applied; the message names what is wrong, never a secret."""


@dataclass(frozen=True, slots=True)
class TlsIdentityRef:
    project_name: str
    keystore_name: str
    alias: str

    def __str__(self) -> str:
        return f"{self.project_name}/{self.keystore_name}#{self.alias}"


@dataclass(frozen=True, slots=True)
class Artifact:
    kind: str
    project_name: str
    name: str
    alias: str | None
    content_hash: str
    content: bytes = field(repr=False)

    def __str__(self) -> str:
        return f"{self.kind} {self.project_name}/{self.name}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    environment: str
    revision: int
    tls_identity: TlsIdentityRef | None
    artifacts: tuple[Artifact, ...]


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """The certificate chain (leaf first, DER) and PKCS#8 private key a listener serves."""

    source: TlsIdentityRef
    chain_der: tuple[bytes, ...]
    private_key_der: Secret
    subject_dn: str

    @property
    def certificate_sha256(self) -> str:
        return hashlib.sha256(self.chain_der[0]).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """A private key entry of a keystore: its chain (leaf first, DER) and PKCS#8 key."""

    alias: str
    chain_der: tuple[bytes, ...]
    private_key_der: Secret


@dataclass(frozen=True, slots=True)
class DeployedKeystore:
    """A keystore deployed to the environment, with its private key entries."""

    project_name: str
    name: str
    entries: tuple[KeyEntry, ...]


@dataclass(frozen=True, slots=True)
class DeployedCertificate:
    project_name: str
    name: str
    der: bytes


@dataclass(frozen=True, slots=True)
class AppliedState:
    """Everything a node serves for one revision; replaced as a whole, never changed."""

    environment: str
    revision: int
    identity: ServerIdentity | None
    truststore: tuple[bytes, ...]
    jwks_json: bytes
    jwk_kids: tuple[str, ...]
    # Every certificate deployed to the environment, in the snapshot's order.
    certificates: tuple[DeployedCertificate, ...] = ()
    # Every keystore; only filled by ``build_state(..., open_keystores=True)``.
    keystores: tuple[DeployedKeystore, ...] = ()

    def fingerprints(self) -> dict[str, Any]:
        """The fingerprints reported by the status endpoint and in acks."""
        return {
            "serverCertificateSha256": (
                self.identity.certificate_sha256 if self.identity is not None else None
            ),
            "truststoreSha256": sorted(hashlib.sha256(der).hexdigest() for der in self.truststore),
            "jwkKids": list(self.jwk_kids),
        }


# --- parsing ---------------------------------------------------------------------------


def _str(obj: dict[str, Any], key: str, where: str, *, optional: bool = False) -> str | None:
    value = obj.get(key)
    if optional and (value is None or value == ""):
        return None
    if not isinstance(value, str) or not value:
        raise SnapshotError(f"{where}: {key} must be a non-empty string")
    return value


def _required(obj: dict[str, Any], key: str, where: str) -> str:
    value = _str(obj, key, where)
    assert value is not None
    return value


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SnapshotError(f"{where} is not valid base64") from None


def parse_snapshot(data: bytes) -> Snapshot:
    """Read a sync answer, checking its shape and each artifact's content hash."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise SnapshotError("the snapshot is not valid JSON") from None
    if not isinstance(doc, dict):
        raise SnapshotError("the snapshot is not a JSON object")
    environment = _required(doc, "environment", "snapshot")
    revision = doc.get("revision")
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
        raise SnapshotError("snapshot: revision must be a non-negative integer")

    identity_doc = doc.get("tlsIdentity")
    identity: TlsIdentityRef | None = None
    if identity_doc is not None:
        if not isinstance(identity_doc, dict):
            raise SnapshotError("snapshot: tlsIdentity must be an object or null")
        identity = TlsIdentityRef(
            project_name=_required(identity_doc, "projectName", "tlsIdentity"),
            keystore_name=_required(identity_doc, "keyStoreName", "tlsIdentity"),
            alias=_required(identity_doc, "aliasName", "tlsIdentity"),
        )

    items = doc.get("artifacts", [])
    if not isinstance(items, list):
        raise SnapshotError("snapshot: artifacts must be a list")
    artifacts: list[Artifact] = []
    for index, item in enumerate(items):
        where = f"artifact #{index}"
        if not isinstance(item, dict):
            raise SnapshotError(f"{where} is not an object")
        kind = _required(item, "kind", where)
        project = _required(item, "projectName", where)
        name = _required(item, "name", where)
        where = f"{kind} {project}/{name}"
        alias = _str(item, "alias", where, optional=True)
        expected = _required(item, "contentHash", where).lower()
        content = _b64(_required(item, "content", where), f"{where}: content")
        if hashlib.sha256(content).hexdigest() != expected:
            raise SnapshotError(f"{where}: content does not match its contentHash")
        artifacts.append(Artifact(kind, project, name, alias, expected, content))
    return Snapshot(environment, revision, identity, tuple(artifacts))


# --- building the served state -----------------------------------------------------------


def _json_object(artifact: Artifact) -> dict[str, Any]:
    try:
        value = json.loads(artifact.content)
    except (ValueError, RecursionError):
        raise SnapshotError(f"{artifact}: content is not valid JSON") from None
    if not isinstance(value, dict):
        raise SnapshotError(f"{artifact}: content is not a JSON object")
    return value


def _certificates(
    artifacts: tuple[Artifact, ...],
) -> tuple[tuple[bytes, ...], tuple[DeployedCertificate, ...]]:
    """The truststore (admin project's certificates, deduplicated) and every certificate."""
    trusted: dict[bytes, None] = {}
    deployed: list[DeployedCertificate] = []
    for artifact in artifacts:
        if artifact.kind != "certificate":
            continue
        try:
            parsed = parse_certificate(artifact.content)
        except CertificateParseError as exc:
            raise SnapshotError(f"{artifact}: {exc.reason}") from None
        deployed.append(DeployedCertificate(artifact.project_name, artifact.name, parsed.der))
        if artifact.project_name == ADMIN_PROJECT:
            trusted.setdefault(parsed.der, None)
    return tuple(trusted), tuple(deployed)


def _open_keystore(store: Artifact, where: str) -> ParsedKeystore:
    doc = _json_object(store)
    store_type = _required(doc, "type", str(store))
    password = _required(doc, "password", str(store))
    key_password = doc.get("keyPassword")
    file = _b64(_required(doc, "file", str(store)), f"{store}: file")
    try:
        return parse_keystore(
            file, store_type, password, key_password if isinstance(key_password, str) else None
        )
    except KeystoreError as exc:
        raise SnapshotError(f"{where}: {exc.reason}") from None


def _keystores(
    artifacts: tuple[Artifact, ...], opened: dict[tuple[str, str], ParsedKeystore]
) -> tuple[DeployedKeystore, ...]:
    stores: list[DeployedKeystore] = []
    for artifact in artifacts:
        if artifact.kind != "keystore":
            continue
        key = (artifact.project_name, artifact.name)
        parsed = opened.get(key) or _open_keystore(artifact, str(artifact))
        entries = tuple(
            KeyEntry(e.alias, tuple(e.chain_der), Secret(e.private_der))
            for e in parsed.entries
            if e.kind == "PRIVATE_KEY" and e.private_der is not None and e.chain_der
        )
        stores.append(DeployedKeystore(artifact.project_name, artifact.name, entries))
    return tuple(stores)


def _identity(
    snapshot: Snapshot, opened: dict[tuple[str, str], ParsedKeystore]
) -> ServerIdentity | None:
    ref = snapshot.tls_identity
    if ref is None:
        return None
    store = next(
        (
            a
            for a in snapshot.artifacts
            if a.kind == "keystore"
            and a.project_name == ref.project_name
            and a.name == ref.keystore_name
        ),
        None,
    )
    if store is None:
        raise SnapshotError(
            f"TLS identity {ref}: keystore {ref.project_name}/{ref.keystore_name} "
            "is not deployed to the environment"
        )
    parsed = _open_keystore(store, f"TLS identity {ref}")
    opened[(store.project_name, store.name)] = parsed
    entry = parsed.entry(ref.alias)
    if entry is None:
        raise SnapshotError(
            f"TLS identity {ref}: alias ({ref.alias}) is not in keystore "
            f"{ref.project_name}/{ref.keystore_name}"
        )
    if entry.kind != "PRIVATE_KEY" or entry.private_der is None or not entry.chain_der:
        raise SnapshotError(
            f"TLS identity {ref}: alias ({ref.alias}) is a {entry.kind} entry, "
            "not a private key with a certificate"
        )
    assert entry.certificate is not None
    return ServerIdentity(
        source=ref,
        chain_der=tuple(entry.chain_der),
        private_key_der=Secret(entry.private_der),
        subject_dn=entry.certificate.subject_dn,
    )


def _jwks(artifacts: tuple[Artifact, ...]) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    keys: list[dict[str, Any]] = []
    kids: list[str] = []
    for artifact in artifacts:
        if artifact.kind != "jwk":
            continue
        jwk = _json_object(artifact)
        if jwk.get("kty") == "oct":
            continue  # a secret key has no public part to publish
        try:
            public = public_jwk(jwk)
        except JwkError as exc:
            raise SnapshotError(f"{artifact}: {exc}") from None
        _, private = split_private(public)
        if private:  # defensive: public_jwk never returns private members
            raise SnapshotError(f"{artifact}: the public part still holds private members")
        keys.append(public)
        kid = public.get("kid")
        kids.append(kid if isinstance(kid, str) and kid else jwk_thumbprint(public))
    return keys, tuple(kids)


def _check_keys(artifacts: tuple[Artifact, ...]) -> None:
    for artifact in artifacts:
        if artifact.kind == "key" and not isinstance(_json_object(artifact).get("keyType"), str):
            raise SnapshotError(f"{artifact}: keyType is missing")


def build_state(
    snapshot: Snapshot, environment: str, *, open_keystores: bool = False
) -> AppliedState:
    """The state a node serves for ``snapshot``, or SnapshotError saying why it can't.

    ``open_keystores`` opens every keystore (for a driver's files), not only the identity's.
    """
    if snapshot.environment != environment:
        raise SnapshotError(
            f"the snapshot is for environment {snapshot.environment}, this node serves "
            f"{environment}"
        )
    unknown = sorted({a.kind for a in snapshot.artifacts} - set(KINDS))
    if unknown:
        log.warning("ignoring artifacts of unknown kinds: %s", ", ".join(unknown))
    _check_keys(snapshot.artifacts)
    keys, kids = _jwks(snapshot.artifacts)
    truststore, certificates = _certificates(snapshot.artifacts)
    opened: dict[tuple[str, str], ParsedKeystore] = {}
    identity = _identity(snapshot, opened)
    return AppliedState(
        environment=snapshot.environment,
        revision=snapshot.revision,
        identity=identity,
        truststore=truststore,
        jwks_json=json.dumps({"keys": keys}, separators=(",", ":")).encode("utf-8"),
        jwk_kids=kids,
        certificates=certificates,
        keystores=_keystores(snapshot.artifacts, opened) if open_keystores else (),
    )
