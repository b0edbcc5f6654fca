"""The node's data directory: the last applied snapshot, sealed under a node-local key.

``snapshot.json`` keeps the snapshot exactly as the manager sent it, sealed with
AES-256-GCM (``keyops.crypto.envelope`` through ``keyops.secrets.Keyring``) under
``node.key``, a random key created on first use with mode 0600. Only the environment,
the revision and the save time are readable without the key, so an operator can tell
what a node would serve. Keeping the manager's bytes, rather than the derived state,
means a restart goes through the same parsing and checks as a live update.

Both files are written to a temporary file, fsynced and moved into place with
``os.replace``, so a crash leaves the previous file or the new one, never half of one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from keyops.crypto.envelope import SealError, new_master_key
from keyops.crypto.x509 import format_instant
from keyops.secrets import Keyring, read_key_file, write_key_file

__all__ = [
    "NODE_KEY_FILE",
    "SNAPSHOT_FILE",
    "SNAPSHOT_PURPOSE",
    "NodeStore",
    "StoreError",
    "StoredSnapshot",
]

NODE_KEY_FILE = "node.key"
SNAPSHOT_FILE = "snapshot.json"
SNAPSHOT_PURPOSE = "keyops:gateway.snapshot"
_FORMAT = 1


class StoreError(RuntimeError):
    """The stored snapshot can not be read (missing key, tampered or foreign file)."""


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    environment: str
    revision: int
    saved_at: str
    data: bytes


class NodeStore:
    """Reads and writes the sealed snapshot in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._keyring: Keyring | None = None

    @property
    def snapshot_path(self) -> Path:
        return self.data_dir / SNAPSHOT_FILE

    def _ensure_dir(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def keyring(self) -> Keyring:
        """The node key, created (mode 0600) on first use."""
        if self._keyring is None:
            path = self.data_dir / NODE_KEY_FILE
            if not path.exists():
                self._ensure_dir()
                write_key_file(path, new_master_key())
            self._keyring = Keyring(read_key_file(path))
        return self._keyring

    def save(self, environment: str, revision: int, data: bytes) -> None:
        """Seal and atomically replace the stored snapshot."""
        sealed = self.keyring().seal(data, SNAPSHOT_PURPOSE)
        document = {
            "format": _FORMAT,
            "environment": environment,
            "revision": revision,
            "savedAt": format_instant(datetime.now(UTC)),
            "sealed": base64.b64encode(sealed).decode("ascii"),
        }
        self._ensure_dir()
        atomic_write(self.snapshot_path, json.dumps(document, indent=1).encode("utf-8"))

    def load(self) -> StoredSnapshot | None:
        """The stored snapshot, None when there is none; StoreError when it can't be read."""
        path = self.snapshot_path
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            document = json.loads(raw)
            if document.get("format") != _FORMAT:
                raise StoreError(f"{path} has an unknown format")
            sealed = base64.b64decode(document["sealed"], validate=True)
            environment = str(document["environment"])
            revision = int(document["revision"])
            saved_at = str(document.get("savedAt", ""))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise StoreError(f"{path} is not a keyops gateway snapshot file") from None
        try:
            data = self.keyring().open(sealed, SNAPSHOT_PURPOSE)
        except (SealError, ValueError, PermissionError) as exc:
            raise StoreError(f"{path} can not be opened with {NODE_KEY_FILE}: {exc}") from None
        return StoredSnapshot(environment, revision, saved_at, data)


def atomic_write(
    path: Path,
    content: bytes,
    *,
    mode: int = 0o600,
    owner: tuple[int, int] | None = None,
    sync_dir: bool = True,
) -> None:
    """Replace ``path`` whole: a reader sees the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            # The umask may have taken bits away; set them exactly.
            os.fchmod(fh.fileno(), mode)
            if owner is not None:
                os.fchown(fh.fileno(), *owner)
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if sync_dir:
        # The rename itself must reach the disk for the new file to survive a power cut.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
