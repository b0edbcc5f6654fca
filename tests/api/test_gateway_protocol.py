"""The manager's side of the gateway node protocol: credentials, long-poll sync,
acknowledgements, and deployments that wait for the nodes of an environment."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Any

import httpx

from tests.conftest import Factory, bearer, unique
from tests.crypto import certs


async def _node_token(client: httpx.AsyncClient, admin: str, env: str) -> str:
    r = await client.post(
        f"/apiops/admin/environments/{env}/node-tokens/",
        json={"name": "gw"},
        headers=bearer(admin),
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["result"]["token"]
    assert token.startswith("kgw_")
    return token


async def _sync(
    client: httpx.AsyncClient, token: str, node: str, since: int, wait: float = 0
) -> httpx.Response:
    return await client.get(
        "/apiops/gateway/sync/",
        params={"node": node, "since": since, "wait": wait},
        headers=bearer(token),
    )


async def _ack(client: httpx.AsyncClient, token: str, node: str, revision: int) -> None:
    r = await client.post(
        "/apiops/gateway/ack/",
        json={"node": node, "revision": revision, "listen": "127.0.0.1:8443"},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text


async def _create_ca(
    client: httpx.AsyncClient, admin: str, env: str
) -> tuple[httpx.Response, bytes]:
    cert = certs.self_signed("p256", "ca.example")
    r = await client.post(
        "/apiops/projects/admin/certificates/",
        data={
            "certificateName": unique("ca"),
            "alias": unique("alias"),
            "certificateDescription": "CA",
            "environmentList": env,
        },
        files={"pemEncodedFile": ("ca.pem", cert.pem, "application/x-pem-file")},
        headers=bearer(admin),
    )
    return r, cert.der


async def test_sync_requires_a_node_credential(client: httpx.AsyncClient, admin_token: str) -> None:
    for headers in ({}, bearer("kgw_not-a-token"), bearer(admin_token)):
        r = await client.get("/apiops/gateway/sync/", params={"node": "n"}, headers=headers)
        assert r.status_code == 401
        assert r.json() == {"error": "unauthorized_client", "error_description": "Invalid token"}


async def test_snapshot_then_no_change_then_change(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    env = await factory.environment()
    token = await _node_token(client, admin_token, env)
    first = await _sync(client, token, "n1", -1)
    assert first.status_code == 200
    assert first.json()["artifacts"] == [] and first.json()["environment"] == env

    # Nothing new: a short poll answers 204 after its wait.
    started = time.monotonic()
    idle = await _sync(client, token, "n1", first.json()["revision"], wait=0.5)
    assert idle.status_code == 204 and time.monotonic() - started >= 0.4

    r, der = await _create_ca(client, admin_token, env)
    assert r.status_code == 200, r.text
    # The node is connected but does not acknowledge: the result says so and names it.
    result = r.json()["deploymentResult"]
    assert result["success"] is False
    (env_result,) = result["environmentResults"]
    assert "0 of 1 gateway node(s)" in env_result["message"] and "n1" in env_result["message"]

    snap = (await _sync(client, token, "n1", -1)).json()
    (artifact,) = snap["artifacts"]
    assert artifact["kind"] == "certificate" and artifact["projectName"] == "admin"
    assert base64.b64decode(artifact["content"]) == der
    assert artifact["contentHash"] == hashlib.sha256(der).hexdigest()

    envs = (await client.get("/apiops/environments/", headers=bearer(admin_token))).json()
    status = {e["name"]: e["status"] for e in envs["resultList"]}
    assert status[env] == "REPUBLISH_REQUIRED"
    # Catching up brings the environment back to PUBLISHED.
    await _ack(client, token, "n1", snap["revision"])
    envs = (await client.get("/apiops/environments/", headers=bearer(admin_token))).json()
    assert {e["name"]: e["status"] for e in envs["resultList"]}[env] == "PUBLISHED"

    nodes = (
        await client.get(f"/apiops/environments/{env}/nodes/", headers=bearer(admin_token))
    ).json()
    (node,) = nodes["resultList"]
    assert node["name"] == "n1" and node["appliedRevision"] == snap["revision"]
    assert node["upToDate"] is True and node["connected"] is True


async def test_deploy_waits_for_nodes_that_apply(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    env = await factory.environment()
    token = await _node_token(client, admin_token, env)
    since = (await _sync(client, token, "a", -1)).json()["revision"]
    await _sync(client, token, "b", -1)

    async def node_loop(name: str) -> None:
        # A well-behaved node: poll, apply, acknowledge.
        r = await _sync(client, token, name, since, wait=5)
        assert r.status_code == 200
        await _ack(client, token, name, r.json()["revision"])

    deploy, *_ = await asyncio.gather(
        _create_ca(client, admin_token, env), node_loop("a"), node_loop("b")
    )
    r, _der = deploy
    result: dict[str, Any] = r.json()["deploymentResult"]
    assert result["success"] is True, result
    assert result["environmentResults"][0]["message"] == (
        "Deployed successfully; 2 of 2 gateway node(s) applied it"
    )


async def test_goodbye_and_revoked_credentials(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    env = await factory.environment()
    token = await _node_token(client, admin_token, env)
    await _sync(client, token, "leaving", -1)
    r = await client.request(
        "DELETE", "/apiops/gateway/sync/", params={"node": "leaving"}, headers=bearer(token)
    )
    assert r.status_code == 200
    # A node that said goodbye is not waited for.
    r, _ = await _create_ca(client, admin_token, env)
    assert r.json()["deploymentResult"]["success"] is True

    listed = await client.get(
        f"/apiops/admin/environments/{env}/node-tokens/", headers=bearer(admin_token)
    )
    (cred,) = listed.json()["resultList"]
    assert "token" not in cred
    revoked = await client.delete(
        f"/apiops/admin/node-tokens/{cred['id']}/", headers=bearer(admin_token)
    )
    assert revoked.status_code == 200
    assert (await _sync(client, token, "leaving", -1)).status_code == 401
