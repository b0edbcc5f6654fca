"""Retention (issue 12): ``KEYOPS_HISTORY_KEEP`` versions per resource, and
``KEYOPS_ATTEMPTS_KEEP`` deployment attempts per environment, trimmed by the reconciler.

Both run against an app of their own on a fresh database with small limits, so that what
is trimmed is exactly what these tests made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from keyops.api.app import create_app
from keyops.config import Settings
from tests.api.test_versions import cert_env, rollback, rsa_cert, versions_ok
from tests.conftest import ADMIN_PASSWORD, Factory, issue_token, unique
from tests.support.certificates import Setting, deployments, der_of, new_setting
from tests.support.databases import database
from tests.support.keysecrets import bad_request

KEEP = 3
ATTEMPTS_KEEP = 4
CERTS = "certificates"


@dataclass
class Small:
    app: FastAPI
    client: httpx.AsyncClient
    admin_token: str
    factory: Factory


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def small(
    backend: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Small]:
    with database(backend, tmp_path_factory.mktemp(f"retention-{backend}")) as url:
        # Built anew, not model_copy'd: a copy would keep the cached database URL.
        limited = Settings(
            **{
                **settings.model_dump(),
                "database_url": url,
                "data_dir": tmp_path_factory.mktemp("retention-data"),
                "history_keep": KEEP,
                "attempts_keep": ATTEMPTS_KEEP,
            }
        )
        app = create_app(limited, demo=True)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://small.test") as c:
                token = await issue_token(c, "admin", ADMIN_PASSWORD)
                yield Small(app, c, token, Factory(c, token))


@pytest_asyncio.fixture(loop_scope="session")
async def s(small: Small) -> Setting:
    return await new_setting(small.client, small.admin_token, small.factory, envs=2)


async def test_only_the_newest_versions_are_kept(s: Setting) -> None:
    name = unique("cert")
    issued = [rsa_cert(f"c{i}.example") for i in range(KEEP + 3)]
    await s.api.create_ok(name, issued[0].pem, s.envs[:1])
    for cert in issued[1:]:
        r = await s.api.update(name, cert.pem, s.envs[:1])
        assert r.status_code == 200, r.text

    # Five replacements made versions 1..5; the newest KEEP stay, numbered as made.
    listed = await versions_ok(s.client, s.admin_token, s.project, CERTS, name)
    assert [v["version"] for v in listed] == [5, 4, 3]
    assert [v["environmentList"] for v in listed] == [
        [cert_env(s.envs[0], issued[i])] for i in (4, 3, 2)
    ]
    r = await rollback(s.client, s.admin_token, s.project, CERTS, name, "version=2")
    assert r.status_code == 400
    assert r.json() == bad_request(f"Version (2) of Certificate (name: {name}) is not found!")

    r = await rollback(s.client, s.admin_token, s.project, CERTS, name, "version=3")
    assert r.status_code == 200, r.text
    listed = await versions_ok(s.client, s.admin_token, s.project, CERTS, name)
    assert [v["version"] for v in listed] == [6, 5, 4]
    assert listed[0]["environmentList"] == [cert_env(s.envs[0], issued[5])]
    (served,) = (await s.api.get_one(name))["certificateEnvironmentList"]
    assert der_of(served) == issued[2].der


async def test_another_resource_keeps_its_own_history(s: Setting) -> None:
    a, b = unique("cert"), unique("cert")
    for name in (a, b):
        await s.api.create_ok(name, rsa_cert("x.example").pem, s.envs[:1], alias=name)
    for _ in range(KEEP + 1):
        r = await s.api.update(a, rsa_cert("y.example").pem, s.envs[:1], alias=a)
        assert r.status_code == 200, r.text
    r = await s.api.update(b, rsa_cert("z.example").pem, s.envs[:1], alias=b)
    assert r.status_code == 200, r.text
    assert [
        v["version"] for v in await versions_ok(s.client, s.admin_token, s.project, CERTS, a)
    ] == [4, 3, 2]
    assert [
        v["version"] for v in await versions_ok(s.client, s.admin_token, s.project, CERTS, b)
    ] == [1]


async def test_the_reconciler_keeps_the_newest_attempts_per_environment(
    s: Setting, small: Small
) -> None:
    busy, quiet = s.envs
    name, other = unique("cert"), unique("cert")
    await s.api.create_ok(name, rsa_cert("a.example").pem, [busy], alias=name)
    for i in range(ATTEMPTS_KEEP + 2):
        r = await s.api.update(name, rsa_cert(f"a{i}.example").pem, [busy], alias=name)
        assert r.status_code == 200, r.text
    await s.api.create_ok(other, rsa_cert("b.example").pem, [quiet], alias=other)
    before = {e: (await deployments(s.client, s.admin_token, e))["recentAttempts"] for e in s.envs}
    assert len(before[busy]) == ATTEMPTS_KEEP + 3 and len(before[quiet]) == 1

    await small.app.state.deployer.reconcile()

    after = {e: (await deployments(s.client, s.admin_token, e))["recentAttempts"] for e in s.envs}
    # The newest ATTEMPTS_KEEP stay, exactly as they were; the quiet environment is untouched.
    assert after[busy] == before[busy][:ATTEMPTS_KEEP]
    assert after[quiet] == before[quiet]
    # Under budget: nothing more to trim.
    assert await small.app.state.deployer.trim_attempts() == 0


async def test_history_keep_is_validated() -> None:
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="history_keep"):
            Settings(history_keep=bad)
    assert Settings().history_keep == 10
    assert Settings().attempts_keep == 1000
