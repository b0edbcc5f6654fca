"""Fixtures: every API test runs against SQLite and against PostgreSQL.

Each backend gets one database and one app for the whole run (real migrations, real
bootstrap); tests keep out of each other's way by naming what they create uniquely.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from keyops.api.app import create_app
from keyops.config import Settings
from tests.support.databases import BACKENDS, database

ADMIN_PASSWORD = "admin-test-password-1"
LOOPBACK_ALLOW_LIST = "127.0.0.0/8,::1/128"
TEST_TARGETS = (
    "failing=tests.support.targets:FailingTarget,hanging=tests.support.targets:HangingTarget"
)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with database(backend, tmp_path_factory.mktemp(f"db-{backend}")) as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        admin_password=ADMIN_PASSWORD,  # type: ignore[arg-type]
        max_request_bytes=256 * 1024,
        max_upload_bytes=64 * 1024,
        deploy_timeout_seconds=2.0,
        extra_targets=TEST_TARGETS,
        # JWK URL sources are served by test servers on loopback (tests/support/jwks_server).
        url_allow_list=LOOPBACK_ALLOW_LIST,
        # Roll-outs the tests leave failed are not retried behind their backs.
        reconcile_seconds=3600,
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, demo=True)
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://keyops.test") as c:
        yield c


async def issue_token(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post(
        "/apiops/auth/token",
        data={"grant_type": "client_credentials", "client_id": username, "client_secret": password},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def admin_token(client: httpx.AsyncClient) -> str:
    return await issue_token(client, "admin", ADMIN_PASSWORD)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class Actor:
    username: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass
class Factory:
    """Makes users, projects and environments through the admin API."""

    client: httpx.AsyncClient
    admin_token: str

    async def user(self, *roles: str, projects: tuple[str, ...] = ()) -> Actor:
        username, password = unique("user"), secrets.token_urlsafe(12)
        r = await self.client.post(
            "/apiops/admin/users/",
            json={"username": username, "password": password, "roles": list(roles)},
            headers=bearer(self.admin_token),
        )
        assert r.status_code == 200, r.text
        for project in projects:
            await self.add_member(project, username)
        return Actor(username, password, await issue_token(self.client, username, password))

    async def project(self, *members: str, name: str | None = None) -> str:
        name = name or unique("proj")
        r = await self.client.post(
            "/apiops/admin/projects/",
            json={"name": name, "description": f"{name} description", "members": list(members)},
            headers=bearer(self.admin_token),
        )
        assert r.status_code == 200, r.text
        return name

    async def add_member(self, project: str, username: str) -> None:
        r = await self.client.post(
            f"/apiops/admin/projects/{project}/members/",
            json={"username": username},
            headers=bearer(self.admin_token),
        )
        assert r.status_code == 200, r.text

    async def environment(
        self, *, projects: tuple[str, ...] = (), target: str = "local", type: str = "TEST"
    ) -> str:
        name = unique("env")
        r = await self.client.post(
            "/apiops/admin/environments/",
            json={"name": name, "projects": list(projects), "target": target, "type": type},
            headers=bearer(self.admin_token),
        )
        assert r.status_code == 200, r.text
        return name


@pytest.fixture
def factory(client: httpx.AsyncClient, admin_token: str) -> Factory:
    return Factory(client, admin_token)


@pytest_asyncio.fixture(loop_scope="session")
async def node_env(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> AsyncIterator[str]:
    """An admin-project environment for gateway nodes a test leaves connected or silent;
    deleted after the test, so those nodes never fail another test's deploy to every
    environment of a project."""
    env = await factory.environment(projects=("admin",))
    yield env
    r = await client.delete(f"/apiops/admin/environments/{env}/", headers=bearer(admin_token))
    assert r.status_code == 200, r.text


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("work")
