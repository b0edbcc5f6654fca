"""Reading stored key material back, opening what is sealed."""

from __future__ import annotations

import json
from typing import Any

from keyops.crypto.jwk import join_private
from keyops.crypto.keys import KeyMaterial
from keyops.crypto.keystores import KeystoreEntry, KeystoreError
from keyops.domain.keystore_parsing import ParseJob, parse_now
from keyops.secrets import Keyring, Purpose
from keyops.storage.models import CryptoKeyEnvironment, Jwk, KeystoreEnvironment


def material_of(row: CryptoKeyEnvironment, key_type: str, keyring: Keyring) -> KeyMaterial:
    """The key material of one environment, private part opened."""
    private = keyring.open_optional(row.private_sealed, Purpose.KEY_PRIVATE)
    symmetric = key_type == "SYMMETRIC"
    return KeyMaterial(
        key_type=key_type,
        public_der=row.public_der,
        private_der=None if symmetric else private,
        secret=private if symmetric else None,
        curve=row.curve,
        size_bits=row.size_bits,
    )


def file_of(row: KeystoreEnvironment, keyring: Keyring) -> bytes:
    """The keystore file of one environment, opened (lists show it, not its password)."""
    return keyring.open(row.file_sealed, Purpose.KEYSTORE_FILE)


def store_of(row: KeystoreEnvironment, keyring: Keyring) -> tuple[bytes, str]:
    """The keystore file and password ("" for a store kept without one) of one environment."""
    data = keyring.open(row.file_sealed, Purpose.KEYSTORE_FILE)
    password = keyring.open(row.password_sealed, Purpose.KEYSTORE_PASSWORD).decode("utf-8")
    return data, password


def key_password_of(row: KeystoreEnvironment, keyring: Keyring) -> str | None:
    """The key password of one environment when it differs from the store password."""
    sealed = keyring.open_optional(row.key_password_sealed, Purpose.KEYSTORE_KEY_PASSWORD)
    return None if sealed is None else sealed.decode("utf-8")


def entry_of(row: KeystoreEnvironment, alias: str, keyring: Keyring) -> KeystoreEntry | None:
    """One entry of a stored keystore, or None if not there (parsed in the calling
    thread: call it from a unit of work, never on the event loop)."""
    data, password = store_of(row, keyring)
    job = ParseJob(data, row.store_type, password or None, key_password_of(row, keyring))
    [parsed] = parse_now([job])
    if isinstance(parsed, KeystoreError):
        # It parsed when it was stored; failing now means the stored bytes changed.
        raise RuntimeError("a stored keystore no longer parses")
    return parsed.entry(alias)


def full_jwk(jwk: Jwk, keyring: Keyring) -> dict[str, Any]:
    """The whole JWK, its sealed private members opened and joined to the public part."""
    public: dict[str, Any] = json.loads(jwk.public_json)
    if jwk.private_sealed is None:
        return public
    private = json.loads(keyring.open(jwk.private_sealed, Purpose.JWK_PRIVATE))
    return join_private(public, private)
