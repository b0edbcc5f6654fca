"""The master keyring: where the master key comes from, and sealing with it."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from keyops.crypto.envelope import (
    decode_master_key,
    encode_master_key,
    key_id,
    new_master_key,
    open_sealed,
    seal,
)

MASTER_KEY_FILE = "master.key"


class Purpose:
    """What a sealed value is for; bound into its authentication, one per column."""

    KEY_PRIVATE = "keyops:crypto_key_environments.private_sealed"
    KEYSTORE_FILE = "keyops:keystore_environments.file_sealed"
    KEYSTORE_PASSWORD = "keyops:keystore_environments.password_sealed"  # noqa: S105
    KEYSTORE_KEY_PASSWORD = "keyops:keystore_environments.key_password_sealed"  # noqa: S105
    JWK_PRIVATE = "keyops:jwks.private_sealed"
    DEPLOYED_CONTENT = "keyops:deployed_artifacts.content"
    WEBHOOK_SECRET = "keyops:webhooks.secret_sealed"  # noqa: S105
    CONSOLE_SESSION = "keyops:console.session_cookie"


class Secret:
    """Wraps secret text or bytes so that it never shows in a repr, log line or traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass
class Keyring:
    """The current master key, plus earlier ones that may still open old values."""

    current: bytes
    previous: list[bytes] = field(default_factory=list)

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def _all(self) -> dict[str, bytes]:
        return {key_id(k): k for k in [*self.previous, self.current]}

    def seal(self, plaintext: bytes, purpose: str) -> bytes:
        return seal(self.current, plaintext, purpose)

    def open(self, blob: bytes, purpose: str) -> bytes:
        return open_sealed(self._all(), blob, purpose)

    def seal_optional(self, plaintext: bytes | None, purpose: str) -> bytes | None:
        return None if plaintext is None else self.seal(plaintext, purpose)

    def open_optional(self, blob: bytes | None, purpose: str) -> bytes | None:
        return None if blob is None else self.open(blob, purpose)


def write_key_file(path: Path, master_key: bytes) -> None:
    """Write a key file readable by its owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(encode_master_key(master_key) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(
            f"{path} is readable by others (mode {mode:o}); keyops needs it to be 0600"
        )
    return decode_master_key(path.read_text())


def load_keyring(
    master_key: str | None, data_dir: Path, previous: str | None = None, *, create: bool = True
) -> Keyring:
    """The keyring from ``KEYOPS_MASTER_KEY``, or from the key file in the data directory.

    On the first run without either, a key file is created with mode 0600.
    """
    earlier = [decode_master_key(p) for p in (previous or "").split(",") if p.strip()]
    if master_key:
        return Keyring(decode_master_key(master_key), earlier)
    path = data_dir / MASTER_KEY_FILE
    if path.exists():
        return Keyring(read_key_file(path), earlier)
    if not create:
        raise FileNotFoundError(f"no master key: set KEYOPS_MASTER_KEY or provide {path}")
    key = new_master_key()
    write_key_file(path, key)
    return Keyring(key, earlier)
