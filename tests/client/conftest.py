"""A real ``keyops serve`` per database for the client tests, and material to upload.

The sync client is tested against this process (an ``httpx.Client`` can not use an ASGI
transport); the async client against it and against the in-process app.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from keyops.client import Client
from tests.conftest import LOOPBACK_ALLOW_LIST
from tests.crypto import certs
from tests.support.databases import database
from tests.support.server import LiveServer, live_server

ADMIN_PASSWORD = "admin-client-tests-1"
PROJECT = "MyProject"  # the demo project; admin is a member
UPLOAD_LIMIT = 64 * 1024


@pytest.fixture(scope="session")
def live(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp(f"client-{backend}")
    env = {
        "KEYOPS_URL_ALLOW_LIST": LOOPBACK_ALLOW_LIST,
        "KEYOPS_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "KEYOPS_RECONCILE_SECONDS": "3600",
    }
    with (
        database(backend, work) as url,
        live_server(url, work / "data", admin_password=ADMIN_PASSWORD, extra_env=env) as server,
    ):
        yield server


@pytest.fixture
def kc(live: LiveServer) -> Iterator[Client]:
    """The sync client, logged in as admin."""
    with Client.login(live.base_url, "admin", ADMIN_PASSWORD) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Material:
    """A certificate with its key, and the same as a PKCS#12 keystore."""

    issued: certs.Issued
    p12: bytes
    password: str

    @property
    def pem(self) -> bytes:
        return self.issued.pem

    @property
    def public_pem(self) -> bytes:
        return self.issued.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def material(cn: str, kind: str = "p256") -> Material:
    issued = certs.make_cert(certs.name(("COMMON_NAME", cn)), certs.new_key(kind))
    password = secrets.token_urlsafe(8)
    p12 = pkcs12.serialize_key_and_certificates(
        b"signer",
        issued.key,  # type: ignore[arg-type]
        issued.cert,
        None,
        serialization.BestAvailableEncryption(password.encode()),
    )
    return Material(issued, p12, password)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
