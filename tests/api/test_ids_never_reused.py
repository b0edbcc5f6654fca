"""A deleted project's or environment's id is never handed out again (SQLite used to give
the newest row's id to the next one), so nothing cached under the old id and a revision
reaches the new one: a replica's gateway snapshot, a project's cached list."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.api.test_gateway_protocol import _create_ca, _node_token, _sync
from tests.conftest import Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import delete_environment


async def test_a_new_environment_gets_no_snapshot_of_a_deleted_one(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    seen: list[str] = []
    for _ in range(2):
        env = await factory.environment(projects=("admin",))
        token = await _node_token(client, admin_token, env)
        first = (await _sync(client, token, "n", -1)).json()
        assert first["environment"] == env and first["artifacts"] == [], first
        r, _ = await _create_ca(client, admin_token, env)
        assert r.status_code == 200, r.text
        (artifact,) = (await _sync(client, token, "n", -1)).json()["artifacts"]
        seen.append(artifact["name"])
        await delete_environment(client, admin_token, env)
    assert seen[0] != seen[1]


async def _certificate(client: httpx.AsyncClient, admin_token: str, project: str, env: str) -> str:
    name = unique("cert")
    r = await client.post(
        f"/apiops/projects/{project}/certificates/",
        data={
            "certificateName": name,
            "alias": unique("alias"),
            "certificateDescription": "d",
            "environmentList": env,
        },
        files={"pemEncodedFile": ("c.pem", certs.self_signed("p256", name).pem, "text/plain")},
        headers=bearer(admin_token),
    )
    assert r.status_code == 200, r.text
    return name


async def test_a_new_project_lists_none_of_a_deleted_ones_certificates(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    listed: list[list[str]] = []
    for _ in range(2):
        project = await factory.project("admin")
        env = await factory.environment(projects=(project,))
        made = await _certificate(client, admin_token, project, env)
        r = await client.get(
            f"/apiops/projects/{project}/certificates/", headers=bearer(admin_token)
        )
        assert r.status_code == 200, r.text
        listed.append([c["name"] for c in r.json()["resultList"]])
        assert listed[-1] == [made]
        await delete_environment(client, admin_token, env)
        gone = await client.delete(
            f"/apiops/admin/projects/{project}/", headers=bearer(admin_token)
        )
        assert gone.status_code == 200, gone.text
