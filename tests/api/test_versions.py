"""History and rollback of certificates: versions on update and delete, rollback."""

from __future__ import annotations

import httpx
import pytest_asyncio

from tests.conftest import Factory, unique
from tests.crypto import certs
from tests.support.certificates import Setting, deployed, new_setting, pooled_key, sha256_hex


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory)


def rsa_cert(cn: str) -> certs.Issued:
    subject = certs.name(("COMMON_NAME", cn))
    return certs.make_cert(subject, pooled_key("rsa2048"))


async def test_update_keeps_version_and_rollback_restores(s: Setting) -> None:
    name = unique("cert")
    old, new = rsa_cert("old.example"), rsa_cert("new.example")
    await s.api.create_ok(name, old.pem, s.envs[:2])
    r = await s.api.update(name, new.pem, s.envs[1:])
    assert r.status_code == 200, r.text

    r = await s.client.get(f"{s.api.base}{name}/versions/", headers=s.api.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["resultCount"] == 1
    (v1,) = body["resultList"]
    assert v1["version"] == 1 and v1["createdBy"] == "admin"
    envs = {e["environmentName"]: e for e in v1["environmentList"]}
    assert set(envs) == set(s.envs[:2])
    assert envs[s.envs[0]]["sha256Fingerprint"] == sha256_hex(old.der)

    r = await s.client.post(f"{s.api.base}{name}/rollback/?version=1", headers=s.api.headers)
    assert r.status_code == 200, r.text
    for env in s.envs[:2]:
        row = (await deployed(s.client, s.admin_token, env))[(s.project, name)]
        assert row["contentHash"] == sha256_hex(old.der)
    assert (s.project, name) not in await deployed(s.client, s.admin_token, s.envs[2])

    r = await s.client.get(f"{s.api.base}{name}/versions/", headers=s.api.headers)
    assert [v["version"] for v in r.json()["resultList"]] == [2, 1]


async def test_wrong_version_and_name(s: Setting) -> None:
    name = unique("cert")
    await s.api.create_ok(name, rsa_cert("a.example").pem, s.envs[:1])
    r = await s.client.post(f"{s.api.base}{name}/rollback/?version=7", headers=s.api.headers)
    assert r.status_code == 400
    assert (
        r.json()["error_description"] == f"Version (7) of Certificate (name: {name}) is not found!"
    )
    r = await s.client.get(f"{s.api.base}nope-{name}/versions/", headers=s.api.headers)
    assert r.status_code == 400
    assert r.json()["error_description"] == f"Certificate (name: nope-{name}) is not found!"


async def test_rollback_of_deleted_recreates(s: Setting) -> None:
    name = unique("cert")
    old = rsa_cert("gone.example")
    await s.api.create_ok(name, old.pem, s.envs[:1])
    assert (await s.api.delete(name)).status_code == 200
    r = await s.client.post(f"{s.api.base}{name}/rollback/?version=1", headers=s.api.headers)
    assert r.status_code == 200, r.text
    row = (await deployed(s.client, s.admin_token, s.envs[0]))[(s.project, name)]
    assert row["contentHash"] == sha256_hex(old.der)
