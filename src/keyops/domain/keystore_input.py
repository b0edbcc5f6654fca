"""A keystore request as it arrives, how its files are read, and what its checks keep.

``parse_job`` reads one environment's file (base64, or PEM text as it is) and says what
to parse of it; the parse itself runs later, off the event loop (``keystore_parsing``).

``type: PEM`` (a private key and its certificate chain as PEM text, base64 in ``file``
as the contract says, or the PEM text itself) is converted by the parse into a PKCS12
file under the request's ``password`` (``crypto/pem_bundle.py``); that file is what is
stored, shown, deployed and kept in history, with ``type`` PKCS12 and no separate key
password (``keyPassword`` only opens an encrypted PEM key).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from keyops.crypto.keystores import PEM_TYPE, KeystoreError, ParsedKeystore
from keyops.domain.keystore_parsing import ParseJob
from keyops.errors import BadRequest
from keyops.storage.models import Environment

__all__ = [
    "MAX_FILE_BYTES",
    "CheckedStore",
    "KeystoreEnvironmentInput",
    "KeystoreFields",
    "KeystoreInput",
    "parse_job",
]

MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class KeystoreEnvironmentInput:
    environment_name: str | None
    type: str | None
    file: str | None
    password: str | None
    key_password: str | None = None


@dataclass(slots=True)
class KeystoreInput:
    name: str | None
    description: str | None
    environments: list[KeystoreEnvironmentInput]
    # What ``parse_all`` made of the files ``parse_jobs`` named; set before the write.
    parsed: Sequence[ParsedKeystore | KeystoreError] | None = None


@dataclass(frozen=True, slots=True)
class CheckedStore:
    env: Environment
    store_type: str
    data: bytes
    password: str | None
    key_password: str | None
    parsed: ParsedKeystore


@dataclass(frozen=True, slots=True)
class KeystoreFields:
    description: str
    checked: Sequence[CheckedStore]

    @property
    def environments(self) -> Sequence[Environment]:
        return [c.env for c in self.checked]


def _decode_file(value: str | None, env_name: str, *, pem: bool = False) -> bytes:
    if value is None or not value.strip():
        raise BadRequest(f"file value can not be empty! (environment: {env_name})")
    if len(value) > MAX_FILE_BYTES * 4 // 3 + 4:
        raise BadRequest(f"file is larger than {MAX_FILE_BYTES} bytes! (environment: {env_name})")
    if pem and "-----BEGIN " in value:
        # PEM text as it is (base64 has no "-"): what `jq --rawfile` puts in a body.
        data = value.encode("utf-8")
        if len(data) > MAX_FILE_BYTES:
            raise BadRequest(
                f"file is larger than {MAX_FILE_BYTES} bytes! (environment: {env_name})"
            )
        return data
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"file is not valid base64! (environment: {env_name})") from None


def parse_job(env_name: str, env_input: KeystoreEnvironmentInput) -> ParseJob:
    """What to parse of one environment's file; BadRequest if a field is missing."""
    pem = (env_input.type or "").strip().upper() == PEM_TYPE
    data = _decode_file(env_input.file, env_name, pem=pem)
    if env_input.type is None or not env_input.type.strip():
        raise BadRequest(f"type value can not be empty! (environment: {env_name})")
    if env_input.key_password and not env_input.password:
        raise BadRequest(f"password value can not be empty! (environment: {env_name})")
    return ParseJob(
        data,
        env_input.type.strip(),
        env_input.password or None,
        env_input.key_password or None,
    )
