"""Authenticated encryption of secrets at rest: AES-256-GCM under a master key.

A sealed value is ``b"KO1" | key id length (1 byte) | key id | nonce (12) | ciphertext
| tag``. The key id names the master key that sealed it, so a keyring holding old and
new keys can open values sealed before a rotation. The associated data binds a value
to its purpose, so a sealed password can not be moved into a private-key column.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"KO1"
KEY_BYTES = 32
NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value can not be opened: unknown key, wrong purpose, or tampered."""


def new_master_key() -> bytes:
    """32 random bytes for AES-256."""
    return os.urandom(KEY_BYTES)


def key_id(master_key: bytes) -> str:
    """A short, non-secret name of a master key (a hash prefix, not the key)."""
    return hashlib.sha256(b"keyops-master-key-id:" + master_key).hexdigest()[:16]


def decode_master_key(text: str) -> bytes:
    """A master key from its base64 text form; it must be exactly 32 bytes."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise ValueError("the master key is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"the master key must be {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def encode_master_key(master_key: bytes) -> str:
    return base64.b64encode(master_key).decode("ascii")


def seal(master_key: bytes, plaintext: bytes, purpose: str) -> bytes:
    """Encrypt and authenticate ``plaintext`` for ``purpose`` under ``master_key``."""
    kid = key_id(master_key).encode("ascii")
    nonce = os.urandom(NONCE_BYTES)
    body = AESGCM(master_key).encrypt(nonce, plaintext, purpose.encode("utf-8"))
    return MAGIC + bytes([len(kid)]) + kid + nonce + body


def sealed_key_id(blob: bytes) -> str:
    """The id of the master key a value was sealed with."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 1:
        raise SealError("not a sealed value")
    n = blob[len(MAGIC)]
    return blob[len(MAGIC) + 1 : len(MAGIC) + 1 + n].decode("ascii")


def open_sealed(keys: Mapping[str, bytes], blob: bytes, purpose: str) -> bytes:
    """Decrypt a sealed value with whichever key of the keyring sealed it."""
    kid = sealed_key_id(blob)
    master_key = keys.get(kid)
    if master_key is None:
        raise SealError(f"sealed with master key {kid}, which this keyring does not hold")
    start = len(MAGIC) + 1 + len(kid)
    nonce, body = blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :]
    try:
        return AESGCM(master_key).decrypt(nonce, body, purpose.encode("utf-8"))
    except InvalidTag:
        raise SealError("sealed value failed authentication (tampered or wrong purpose)") from None
