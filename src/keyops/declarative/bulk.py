"""Bulk import: every certificate (or keystore) file of a directory, concurrently.

Each file is one create on a thread of a bounded pool (the sync ``Client``'s connection
pool is shared by the threads; the work is I/O, waiting on the server). A file ends as:

- ``created``: created and rolled out to every environment;
- ``partial``: created, but some environments did not take it (listed);
- ``exists``: a resource of that name is already there (not retried: importing a
  directory again skips what the first run made);
- ``failed``: refused (not a certificate, a wrong password...) or still failing after
  the retries.

What failed for a reason that may pass (a 5xx answer, no answer, a 409 lost race) is
retried, ``retries`` more rounds after the first pass, with a short pause between.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import NameOID

from keyops.client import (
    BadRequest,
    Change,
    Client,
    Conflict,
    KeyopsError,
    ServerError,
    TransportError,
)

__all__ = [
    "CERTIFICATE_SUFFIXES",
    "KEYSTORE_TYPES",
    "FileResult",
    "ImportResult",
    "certificate_files",
    "import_certificates",
    "import_keystores",
    "keystore_files",
]

CERTIFICATE_SUFFIXES = (".pem", ".crt", ".cer", ".der")
KEYSTORE_TYPES = {".p12": "PKCS12", ".pfx": "PKCS12", ".jks": "JKS", ".jceks": "JCEKS"}
Status = Literal["created", "partial", "exists", "failed"]
NameFrom = Literal["file", "cn"]
RETRY_PAUSE = 0.5


@dataclass(frozen=True)
class FileResult:
    path: Path
    name: str
    status: Status
    message: str = ""
    attempts: int = 1
    failed_environments: tuple[str, ...] = ()
    # The HTTP status of the last refusal (0: no answer), for an exit code.
    status_code: int | None = None
    retryable: bool = field(default=False, repr=False)


@dataclass
class ImportResult:
    results: list[FileResult]

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        """Every file created everywhere (or already there)."""
        return all(r.status in ("created", "exists") for r in self.results)


def _files(directory: Path, suffixes: Sequence[str]) -> list[Path]:
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory")
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def certificate_files(directory: Path) -> list[Path]:
    """The directory's PEM, CRT, CER and DER files (not recursive), by name."""
    return _files(directory, CERTIFICATE_SUFFIXES)


def keystore_files(directory: Path) -> list[Path]:
    """The directory's .p12, .pfx, .jks and .jceks files, by name."""
    return _files(directory, tuple(KEYSTORE_TYPES))


def _common_name(data: bytes) -> str | None:
    try:
        if b"-----BEGIN" in data:
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else None
    return value if isinstance(value, str) and value.strip() else None


def _outcome(path: Path, name: str, call: Callable[[], Change], attempts: int) -> FileResult:
    try:
        change = call()
    except KeyopsError as exc:
        # The server says a taken name as 400 "... is already exist!" (the contract's text).
        exists = isinstance(exc, BadRequest) and "already exist" in exc.error_description
        return FileResult(
            path,
            name,
            "exists" if exists else "failed",
            exc.error_description,
            attempts,
            status_code=exc.status,
            retryable=isinstance(exc, Conflict | ServerError | TransportError),
        )
    failed = tuple(r.environment_name for r in change.failed)
    if failed:
        return FileResult(path, name, "partial", "not deployed everywhere", attempts, failed)
    return FileResult(path, name, "created", "", attempts)


def _run(
    jobs: list[tuple[Path, str, Callable[[], Change]]],
    concurrency: int,
    retries: int,
    on_result: Callable[[FileResult], None] | None,
) -> ImportResult:
    by_path: dict[Path, FileResult] = {}
    pending = [(path, name, call, 1) for path, name, call in jobs]
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for round_ in range(retries + 1):
            if round_:
                time.sleep(RETRY_PAUSE * round_)

            def one(job: tuple[Path, str, Callable[[], Change], int]) -> FileResult:
                path, name, call, attempt = job
                result = _outcome(path, name, call, attempt)
                final = not result.retryable or attempt > retries
                if on_result is not None and final:
                    on_result(result)
                return result

            results = list(pool.map(one, pending))
            for result in results:
                by_path[result.path] = result
            calls = {path: call for path, _, call, _ in pending}
            pending = [
                (r.path, r.name, calls[r.path], r.attempts + 1) for r in results if r.retryable
            ]
            if not pending:
                break
    ordered = [by_path[path] for path, _, _ in jobs]
    return ImportResult([replace(r, retryable=False) for r in ordered])


def _name(path: Path, prefix: str, data: bytes | None, name_from: NameFrom) -> str:
    base = (_common_name(data) if name_from == "cn" and data is not None else None) or path.stem
    return f"{prefix}{base}"


def import_certificates(
    client: Client,
    directory: Path,
    project: str,
    envs: Sequence[str],
    prefix: str = "",
    concurrency: int = 8,
    *,
    name_from: NameFrom = "file",
    retries: int = 2,
    on_result: Callable[[FileResult], None] | None = None,
) -> ImportResult:
    """Create a certificate from every certificate file of ``directory`` in ``project``,
    deployed to ``envs``; named ``prefix`` + the file's stem (or its subject's CN).
    ``on_result`` hears of each file once it is final (from the pool's threads)."""
    jobs: list[tuple[Path, str, Callable[[], Change]]] = []
    for path in certificate_files(directory):
        data = path.read_bytes()
        name = _name(path, prefix, data, name_from)

        call = partial(client.certificates.create, project, name, pem=data, environments=list(envs))
        jobs.append((path, name, call))
    return _run(jobs, concurrency, retries, on_result)


def import_keystores(
    client: Client,
    directory: Path,
    project: str,
    envs: Sequence[str],
    prefix: str = "",
    concurrency: int = 8,
    *,
    password: str | None = None,
    key_password: str | None = None,
    retries: int = 2,
    on_result: Callable[[FileResult], None] | None = None,
) -> ImportResult:
    """Create a keystore from every .p12/.pfx/.jks/.jceks file of ``directory``, each
    opened with ``password``; named ``prefix`` + the file's stem."""
    jobs: list[tuple[Path, str, Callable[[], Change]]] = []
    for path in keystore_files(directory):
        data = path.read_bytes()
        name = _name(path, prefix, None, "file")
        store_type = KEYSTORE_TYPES[path.suffix.lower()]

        call = partial(
            client.keystores.create,
            project,
            name,
            environments=list(envs),
            file=data,
            store_type=store_type,
            password=password,
            key_password=key_password,
        )
        jobs.append((path, name, call))
    return _run(jobs, concurrency, retries, on_result)
