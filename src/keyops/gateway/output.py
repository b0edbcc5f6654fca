"""The files a driver's gateway reads: their layout, and writing them without a torn state.

``render`` turns an applied state into relative path -> ``OutputFile`` (pure, no I/O):

* ``tls/<project>/<keystore>/<alias>.pem``: certificate chain (leaf first) then the
  private key, the form HAProxy's ``crt`` takes; beside it ``<alias>.crt`` (the chain)
  and ``<alias>.key`` (the key) for nginx; for every private key entry of every keystore
  deployed to the environment;
* ``truststore.pem``: the environment's truststore (the admin project's certificates
  deployed to it), concatenated PEM; written even when empty, so a gateway config can
  always name it;
* ``certificates/<project>/<name>.pem``: every certificate deployed to the environment;
* ``jwks.json``: the public JWK Set.

``OutputWriter`` puts a rendering in place under the output directory and returns the
``Change`` (only files whose bytes differ); ``restore`` undoes one. Decisions:

* Every file goes through a temporary file in its own directory, fsync and
  ``os.replace``: a reader sees the old bytes or the new ones, never half a file. Each
  file is its own replace, so a gateway reading *while* an apply writes may see a new
  ``.crt`` beside an old ``.key``; the drivers only tell the gateway after the whole set
  is written, which is when it reads them.
* Files holding a private key (``.pem`` and ``.key`` under ``tls/``) are created mode
  0600, everything else 0644, directories 0755; with ``owner`` every file and directory
  the writer creates is given to that user and group (the gateway's worker user).
* ``.keyops-manifest.json`` in the output directory lists what the writer put there, so
  material removed from the environment is removed from disk even after a node restart.
  Files it does not list are never touched: the output directory may hold other files.
* Names become path components only if they match ``[A-Za-z0-9._@-]+`` and are not ``.``
  or ``..``; keyops names always do, keystore aliases (any text in a PKCS#12 file) may not.
  Such an entry fails the apply with a reason naming it rather than being written
  somewhere unexpected or silently left out.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cryptography.hazmat.primitives import serialization

from keyops.gateway.drivers.base import Change
from keyops.gateway.snapshot import AppliedState
from keyops.gateway.store import atomic_write

__all__ = [
    "JWKS_FILE",
    "MANIFEST_FILE",
    "TRUSTSTORE_FILE",
    "OutputError",
    "OutputFile",
    "OutputWriter",
    "pem_certificate",
    "pem_private_key",
    "render",
]

MANIFEST_FILE = ".keyops-manifest.json"
TRUSTSTORE_FILE = "truststore.pem"
JWKS_FILE = "jwks.json"
_MANIFEST_FORMAT = 1
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._@-]+$")
_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644
_DIR_MODE = 0o755


class OutputError(Exception):
    """The output can not be rendered or written; the message is safe to report."""


@dataclass(frozen=True, slots=True)
class OutputFile:
    content: bytes = field(repr=False)
    private: bool = False


# --- rendering -----------------------------------------------------------------------------


def pem_certificate(der: bytes) -> bytes:
    """One certificate, PEM (the same text ``openssl x509`` writes)."""
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode("ascii")


def pem_private_key(pkcs8_der: bytes) -> bytes:
    """A PKCS#8 private key as unencrypted ``BEGIN PRIVATE KEY`` PEM."""
    key = serialization.load_der_private_key(pkcs8_der, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _component(value: str, what: str) -> str:
    if not _SAFE_NAME.match(value) or value in (".", ".."):
        raise OutputError(
            f"{what} ({value}) can not be used in a file name: only letters, digits and"
            " ._@- are allowed"
        )
    return value


def render(state: AppliedState) -> dict[str, OutputFile]:
    """The files for ``state``: relative posix path -> content (see the module docstring)."""
    files: dict[str, OutputFile] = {}
    for store in state.keystores:
        project = _component(store.project_name, "project name")
        name = _component(store.name, f"keystore name of {store.project_name}")
        for entry in store.entries:
            alias = _component(entry.alias, f"alias of keystore {store.project_name}/{store.name}")
            chain = b"".join(pem_certificate(der) for der in entry.chain_der)
            try:
                key = pem_private_key(entry.private_key_der.reveal())
            except (ValueError, TypeError):
                raise OutputError(
                    f"the private key of {store.project_name}/{store.name}#{entry.alias}"
                    " can not be written as PEM"
                ) from None
            stem = f"tls/{project}/{name}/{alias}"
            files[f"{stem}.pem"] = OutputFile(chain + key, private=True)
            files[f"{stem}.crt"] = OutputFile(chain)
            files[f"{stem}.key"] = OutputFile(key, private=True)
    files[TRUSTSTORE_FILE] = OutputFile(b"".join(pem_certificate(der) for der in state.truststore))
    for cert in state.certificates:
        project = _component(cert.project_name, "project name")
        name = _component(cert.name, f"certificate name of {cert.project_name}")
        files[f"certificates/{project}/{name}.pem"] = OutputFile(pem_certificate(cert.der))
    files[JWKS_FILE] = OutputFile(state.jwks_json)
    return files


# --- writing -------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None  # absent; a file in the way of a directory fails the write itself
    except IsADirectoryError:
        raise OutputError(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise OutputError(f"can not read {path}: {exc.strerror or exc}") from None


class OutputWriter:
    """Writes renderings into ``output_dir`` atomically; one writer per directory."""

    def __init__(self, output_dir: Path, *, owner: tuple[int, int] | None = None) -> None:
        self.output_dir = output_dir.absolute()
        self.owner = owner
        # Paths written by the last ``write`` (or found in the manifest): path -> private.
        self._known: dict[str, bool] | None = None
        # The last change written, what the writer knew before it and the manifest's
        # bytes then, for ``restore``.
        self._last: tuple[Change, dict[str, bool], bytes | None] | None = None

    @property
    def manifest_path(self) -> Path:
        return self.output_dir / MANIFEST_FILE

    # The manifest ---------------------------------------------------------------------

    def _load_manifest(self) -> dict[str, bool]:
        raw = _read(self.manifest_path)
        if raw is None:
            return {}
        try:
            doc = json.loads(raw)
            if doc.get("format") != _MANIFEST_FORMAT:
                raise ValueError("unknown format")
            listed = {str(p): bool(private) for p, private in doc["files"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            # Without a readable manifest nothing is removed, which is the safe side.
            return {}
        return {p: private for p, private in listed.items() if self._safe_relative(p)}

    def known(self) -> dict[str, bool]:
        """The files this writer is responsible for: path -> holds a private key."""
        if self._known is None:
            self._known = self._load_manifest()
        return dict(self._known)

    def _save_manifest(self, files: Mapping[str, bool], revision: int) -> None:
        doc = {
            "format": _MANIFEST_FORMAT,
            "revision": revision,
            "files": dict(sorted(files.items())),
        }
        self._write_file(
            self.manifest_path, json.dumps(doc, indent=1).encode("utf-8"), private=False
        )
        _fsync_dir(self.output_dir)
        self._known = dict(files)

    @staticmethod
    def _safe_relative(path: str) -> bool:
        parts = PurePosixPath(path).parts
        return (
            bool(parts)
            and not PurePosixPath(path).is_absolute()
            and all(_SAFE_NAME.match(p) and p not in (".", "..") for p in parts)
        )

    # Files ----------------------------------------------------------------------------

    def _make_dirs(self, directory: Path) -> None:
        missing: list[Path] = []
        current = directory
        while not current.exists():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=_DIR_MODE)
                if self.owner is not None:
                    os.chown(path, *self.owner)

    def _write_file(self, path: Path, content: bytes, *, private: bool) -> None:
        self._make_dirs(path.parent)
        mode = _PRIVATE_MODE if private else _PUBLIC_MODE
        # The directory is synced once per apply, after every file is in place.
        atomic_write(path, content, mode=mode, owner=self.owner, sync_dir=False)

    def _remove(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        # Empty directories left behind (a removed keystore) go too; the top-level ones
        # (tls/, certificates/) stay, a gateway config may name them.
        parent = path.parent
        while self.output_dir in parent.parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def _sync_dirs(self, paths: Iterable[str]) -> None:
        for directory in sorted({(self.output_dir / p).parent for p in paths}):
            if directory.exists():
                _fsync_dir(directory)

    # The public operations ------------------------------------------------------------

    def write(self, files: Mapping[str, OutputFile], revision: int) -> Change:
        """Put ``files`` in place, remove what the last rendering had and this one lacks.

        Only files whose bytes (or privacy) differ are written. On an error the files
        already written are put back before OutputError is raised.
        """
        for path in files:
            if not self._safe_relative(path) or path == MANIFEST_FILE:
                raise OutputError(f"{path} is not a path the writer may write")
        self.output_dir.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        known = self.known()
        manifest = _read(self.manifest_path)
        written: dict[str, bytes] = {}
        previous: dict[str, bytes | None] = {}
        for path, item in files.items():
            old = _read(self.output_dir / path)
            if old == item.content and known.get(path, item.private) == item.private:
                continue
            written[path] = item.content
            previous[path] = old
        removed = tuple(sorted(p for p in known if p not in files))
        for path in removed:
            previous[path] = _read(self.output_dir / path)
        change = Change(
            output_dir=self.output_dir,
            revision=revision,
            written=written,
            previous=previous,
            removed=removed,
        )
        done: list[str] = []
        try:
            for path, content in written.items():
                self._write_file(self.output_dir / path, content, private=files[path].private)
                done.append(path)
            for path in removed:
                self._remove(self.output_dir / path)
                done.append(path)
            self._sync_dirs(done)
            self._save_manifest({p: f.private for p, f in files.items()}, revision)
        except OSError as exc:
            partial = Change(
                output_dir=self.output_dir,
                revision=revision,
                written={p: written[p] for p in done if p in written},
                previous={p: previous[p] for p in done},
                removed=tuple(p for p in done if p not in written),
            )
            self._undo(partial, known, manifest)
            raise OutputError(f"could not write {self.output_dir}: {exc.strerror or exc}") from None
        self._last = (change, known, manifest)
        return change

    def restore(self, change: Change) -> None:
        """Put back what ``change`` (the last ``write``) replaced or removed."""
        if self._last is None or self._last[0] is not change:
            raise OutputError("only the last change written can be restored")
        self._undo(change, self._last[1], self._last[2])
        self._last = None

    def _undo(self, change: Change, known: Mapping[str, bool], manifest: bytes | None) -> None:
        touched: list[str] = []
        for path in (*change.written, *change.removed):
            old = change.previous.get(path)
            target = self.output_dir / path
            if old is None:
                self._remove(target)
            else:
                self._write_file(target, old, private=known.get(path, True))
            touched.append(path)
        if manifest is None:
            self._remove(self.manifest_path)
        else:
            self._write_file(self.manifest_path, manifest, private=False)
        self._sync_dirs([*touched, MANIFEST_FILE])
        self._known = dict(known)
