"""A real ``keyops serve`` per database for the declarative tests (as tests/client), a
project with two environments of its own per test, and material to put in a file."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from keyops.client import Client
from tests.client.conftest import Material, material
from tests.conftest import LOOPBACK_ALLOW_LIST, TEST_TARGETS
from tests.support.databases import database
from tests.support.server import LiveServer, live_server, password_token

ADMIN_PASSWORD = "admin-declarative-tests-1"


def start(backend: str, work: Path) -> Iterator[LiveServer]:
    env = {
        "KEYOPS_URL_ALLOW_LIST": LOOPBACK_ALLOW_LIST,
        "KEYOPS_RECONCILE_SECONDS": "3600",
        "KEYOPS_DEPLOY_TIMEOUT_SECONDS": "2",
        # tests/support/targets.py: an environment whose every roll-out fails.
        "KEYOPS_EXTRA_TARGETS": TEST_TARGETS,
    }
    with (
        database(backend, work) as url,
        live_server(url, work / "data", admin_password=ADMIN_PASSWORD, extra_env=env) as server,
    ):
        yield server


@pytest.fixture(scope="session")
def live(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start(backend, tmp_path_factory.mktemp(f"declarative-{backend}"))


@pytest.fixture(scope="session")
def token(live: LiveServer) -> str:
    return password_token(live.base_url, "admin", ADMIN_PASSWORD)


@pytest.fixture
def kc(live: LiveServer, token: str) -> Iterator[Client]:
    with Client(live.base_url, token) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Setting:
    """A project of the test's own, with environments ``envs`` limited to it."""

    project: str
    envs: tuple[str, ...]


def new_setting(
    kc: Client, envs: int = 2, *, project: str | None = None, names: tuple[str, ...] = ()
) -> Setting:
    name = project or unique("decl")
    kc.projects.create(name, description="declarative test")
    made = []
    for i in range(envs):
        env = names[i] if names else unique("env")
        kc.environments.create(env, projects=[name])
        made.append(env)
    return Setting(name, tuple(made))


@pytest.fixture
def setting(kc: Client) -> Setting:
    return new_setting(kc)


def public_pem(m: Material) -> str:
    return m.public_pem.decode()


def private_pem(m: Material) -> str:
    return m.issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


__all__ = ["Material", "Setting", "material", "new_setting", "private_pem", "public_pem", "unique"]
