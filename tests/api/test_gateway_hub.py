"""A replica's gateway node long-polls at no database cost while idle (domain/gateway_hub.py).

Statements are counted on the app's engines for exactly the requests under test
(tests/support/statements.py): an idle poll runs none; one change is read and rendered
once for every node; revoked credentials and deleted environments stop working at once;
presence is written in batches, never reviving a node that said goodbye.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from keyops.storage.models import Environment, GatewayNode
from tests.api.test_gateway_protocol import _ack, _create_ca, _node_token, _sync
from tests.conftest import Factory, bearer
from tests.support.statements import statements_of


async def _node_row(app: FastAPI, env: str, node: str) -> GatewayNode:
    def read(session: Any) -> GatewayNode:
        env_id = session.scalars(select(Environment.id).where(Environment.name == env)).one()
        row: GatewayNode = session.scalars(
            select(GatewayNode).where(
                GatewayNode.environment_id == env_id, GatewayNode.name == node
            )
        ).one()
        return row

    found: GatewayNode = await app.state.db.read(read)
    return found


async def test_an_idle_poll_runs_no_statement(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str, factory: Factory, node_env: str
) -> None:
    env = node_env
    token = await _node_token(client, admin_token, env)
    first = await _sync(client, token, "idle", -1)
    revision = first.json()["revision"]
    await _ack(client, token, "idle", revision)
    assert (await _sync(client, token, "idle", revision, wait=0.2)).status_code == 204
    with statements_of(app.state.db) as sent:
        for _ in range(3):
            r = await _sync(client, token, "idle", revision, wait=0.3)
            assert r.status_code == 204, r.text
    assert sent == [], sent


async def test_a_change_is_read_and_rendered_once_for_every_node(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str, factory: Factory, node_env: str
) -> None:
    env = node_env
    token = await _node_token(client, admin_token, env)
    nodes = [f"n{i}" for i in range(12)]
    for node in nodes:
        await _sync(client, token, node, -1)
    created, _ = await _create_ca(client, admin_token, env)
    assert created.status_code == 200, created.text
    with statements_of(app.state.db) as sent:
        answers = await asyncio.gather(*(_sync(client, token, n, -1) for n in nodes))
    bodies = {r.content for r in answers}
    assert [r.status_code for r in answers] == [200] * len(nodes)
    assert len(bodies) == 1  # byte-identical: one rendering
    artifacts = [s for s in sent if "FROM deployed_artifacts" in s]
    assert len(artifacts) == 1, sent


async def test_a_revoked_credential_and_a_deleted_environment_stop_at_once(
    client: httpx.AsyncClient, admin_token: str, factory: Factory, node_env: str
) -> None:
    env = node_env
    token = await _node_token(client, admin_token, env)
    assert (await _sync(client, token, "n", -1)).status_code == 200  # cached now
    listed = await client.get(
        f"/apiops/admin/environments/{env}/node-tokens/", headers=bearer(admin_token)
    )
    (cred,) = listed.json()["resultList"]
    revoked = await client.delete(
        f"/apiops/admin/node-tokens/{cred['id']}/", headers=bearer(admin_token)
    )
    assert revoked.status_code == 200
    r = await _sync(client, token, "n", -1)
    assert r.status_code == 401, r.text
    assert r.json() == {"error": "unauthorized_client", "error_description": "Invalid token"}

    other = await factory.environment()
    token = await _node_token(client, admin_token, other)
    assert (await _sync(client, token, "n", -1)).status_code == 200
    gone = await client.delete(f"/apiops/admin/environments/{other}/", headers=bearer(admin_token))
    assert gone.status_code == 200, gone.text
    assert (await _sync(client, token, "n", -1)).status_code == 401


async def test_presence_is_batched_and_a_goodbye_is_never_undone(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str, node_env: str
) -> None:
    hub = app.state.keyops.nodes
    env = node_env
    token = await _node_token(client, admin_token, env)
    first = await _sync(client, token, "p", -1)
    revision = first.json()["revision"]
    hello = await _node_row(app, env, "p")
    assert hello.connected
    # A later poll within the refresh period is only noted; the batch writes it.
    with statements_of(app.state.db) as sent:
        assert (await _sync(client, token, "p", revision, wait=0)).status_code == 204
    assert not [s for s in sent if "gateway_nodes" in s], sent
    await hub.flush()
    assert (await _node_row(app, env, "p")).last_seen > hello.last_seen

    # Seen, then goodbye before the batch: the batch does not mark it connected again.
    assert (await _sync(client, token, "p", revision, wait=0)).status_code == 204
    hub.seen((await _node_row(app, env, "p")).environment_id, "p")
    bye = await client.request(
        "DELETE", "/apiops/gateway/sync/", params={"node": "p"}, headers=bearer(token)
    )
    assert bye.status_code == 200
    await hub.flush()
    assert (await _node_row(app, env, "p")).connected is False
    # Its next poll says hello again at once (the goodbye made the hub forget it).
    assert (await _sync(client, token, "p", revision, wait=0)).status_code == 204
    assert (await _node_row(app, env, "p")).connected is True
