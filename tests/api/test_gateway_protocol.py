"""The manager's side of the gateway node protocol: credentials, long-poll sync,
acknowledgements, and deployments that wait for the nodes of an environment."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from keyops.crypto.x509 import format_instant
from keyops.storage.models import Environment, GatewayNode
from keyops.storage.models.base import utcnow
from tests.conftest import Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import environment_status
from tests.support.messages import NO_NODES


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
    client: httpx.AsyncClient, admin_token: str, factory: Factory, node_env: str
) -> None:
    env = node_env
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
    client: httpx.AsyncClient, admin_token: str, factory: Factory, node_env: str
) -> None:
    env = node_env
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
    client: httpx.AsyncClient, admin_token: str, factory: Factory, node_env: str
) -> None:
    env = node_env
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


# --- silent nodes: counted until back, removed or forgotten ------------------------------


async def _silence(app: FastAPI, env: str, node: str, seconds: float) -> None:
    """Make a node last heard from ``seconds`` ago (as if it had been killed then)."""

    def work(session: Session) -> None:
        env_id = session.scalars(select(Environment.id).where(Environment.name == env)).one()
        session.execute(
            update(GatewayNode)
            .where(GatewayNode.environment_id == env_id, GatewayNode.name == node)
            .values(last_seen=utcnow() - timedelta(seconds=seconds))
        )

    await app.state.db.write(work)


async def _nodes(client: httpx.AsyncClient, admin: str, env: str) -> dict[str, dict[str, Any]]:
    r = await client.get(f"/apiops/environments/{env}/nodes/", headers=bearer(admin))
    assert r.status_code == 200, r.text
    return {row["name"]: row for row in r.json()["resultList"]}


def _message(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    (result,) = r.json()["deploymentResult"]["environmentResults"]
    message: str = result["message"]
    return message


async def test_a_silent_node_fails_deploys_by_name_until_it_is_back(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str, factory: Factory, node_env: str
) -> None:
    """A node killed without goodbye, past the TTL, is not "no node connected": each
    deploy names it as not applied at once (no wait for the timeout), the environment is
    not up to date, and it is PUBLISHED again once the node is back and acknowledges."""
    env = node_env
    token = await _node_token(client, admin_token, env)
    first = await _sync(client, token, "gw-3", -1)
    await _ack(client, token, "gw-3", first.json()["revision"])
    await _silence(app, env, "gw-3", 31)  # the default TTL is 30 s
    listed = await _nodes(client, admin_token, env)
    assert listed["gw-3"]["state"] == "SILENT" and listed["gw-3"]["connected"] is False
    last_contact = listed["gw-3"]["lastContact"]

    started = time.monotonic()
    r, _ = await _create_ca(client, admin_token, env)
    elapsed = time.monotonic() - started
    assert r.json()["deploymentResult"]["success"] is False, r.text
    revision = (await _nodes(client, admin_token, env))["gw-3"]["appliedRevision"]
    status = await environment_status(client, admin_token, env)
    assert status == "REPUBLISH_REQUIRED"
    message = _message(r)
    since = format_instant(datetime.fromisoformat(last_contact))
    assert message.startswith("Deployment failed: 0 of 1 gateway node(s) applied revision "), (
        message
    )
    assert message.endswith(
        f"; not applied: gw-3 (not heard from since {since})."
        " The change is saved; the environment needs a republish."
    ), message
    assert elapsed < 4, f"waited {elapsed:.1f} s for a node that can not answer"
    assert revision == first.json()["revision"]

    # Back: its poll gets the new snapshot, its ack confirms the environment.
    back = await _sync(client, token, "gw-3", revision)
    assert back.status_code == 200
    await _ack(client, token, "gw-3", back.json()["revision"])
    assert await environment_status(client, admin_token, env) == "PUBLISHED"
    assert (await _nodes(client, admin_token, env))["gw-3"]["state"] == "CONNECTED"


async def test_an_admin_removes_a_silent_node(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str, factory: Factory, node_env: str
) -> None:
    env = node_env
    token = await _node_token(client, admin_token, env)
    for node in ("gw-1", "gw-2"):
        got = await _sync(client, token, node, -1)
        await _ack(client, token, node, got.json()["revision"])
    await _silence(app, env, "gw-2", 120)
    r, _ = await _create_ca(client, admin_token, env)
    # gw-1 is connected but not polling here: it times out; gw-2 is named as silent.
    assert "; not applied: gw-1, gw-2 (not heard from since " in _message(r)
    assert await environment_status(client, admin_token, env) == "REPUBLISH_REQUIRED"

    # gw-1 applies the new revision; gw-2 still holds the environment back.
    latest = (await _sync(client, token, "gw-1", -1)).json()["revision"]
    await _ack(client, token, "gw-1", latest)
    assert await environment_status(client, admin_token, env) == "REPUBLISH_REQUIRED"

    path = f"/apiops/environments/{env}/nodes/gw-2/"
    user = await factory.user("ROLE_API_SECURITY")
    refused = await client.delete(path, headers=bearer(user.token))
    assert refused.status_code == 403, refused.text
    removed = await client.delete(path, headers=bearer(admin_token))
    assert removed.status_code == 200 and removed.json() == {"success": True}
    assert await environment_status(client, admin_token, env) == "PUBLISHED"
    assert set(await _nodes(client, admin_token, env)) == {"gw-1"}
    again = await client.delete(path, headers=bearer(admin_token))
    assert again.status_code == 404
    assert again.json() == {
        "error": "not_found",
        "error_description": "Gateway node (name: gw-2) is not found!",
    }
    missing_env = await client.delete(
        f"/apiops/environments/{unique('no-env')}/nodes/gw-1/", headers=bearer(admin_token)
    )
    assert missing_env.status_code == 404


async def test_a_node_silent_past_the_forget_period_stops_counting(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str, factory: Factory, node_env: str
) -> None:
    env = node_env
    token = await _node_token(client, admin_token, env)
    got = await _sync(client, token, "old", -1)
    await _ack(client, token, "old", got.json()["revision"])
    await _silence(app, env, "old", 86400 + 60)
    assert (await _nodes(client, admin_token, env))["old"]["state"] == "FORGOTTEN"
    r, _ = await _create_ca(client, admin_token, env)
    assert r.json()["deploymentResult"]["success"] is True, r.text
    assert _message(r) == f"Deployed successfully; {NO_NODES}"
    assert await environment_status(client, admin_token, env) == "PUBLISHED"
