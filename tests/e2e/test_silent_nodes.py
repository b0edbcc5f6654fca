"""Silent gateway nodes, end to end: no false success once every node is past the TTL.

A real manager (node TTL 3 s) and two real nodes, both killed with SIGKILL (no goodbye).
Past the TTL, a deploy used to say ``Deployed successfully; no gateway node is
connected`` while the dead nodes' material was stale; now each is named as not applied
(``not heard from since ...``) at once, the environment is not up to date, and it stops
counting a node only when it is back, removed by an admin, or forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crypto import certs
from tests.support.databases import BACKENDS, database
from tests.support.gateway_nodes import Cluster, environment_result, gateway_cluster, until

TTL = 3.0
PROJECT = "MyProject"


@pytest.fixture(params=BACKENDS)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    env = {"KEYOPS_GATEWAY_NODE_TTL_SECONDS": str(TTL)}
    with (
        database(request.param, tmp_path) as url,
        gateway_cluster(url, tmp_path, extra_env=env) as c,
    ):
        try:
            yield c
        finally:
            print(c.logs())


def test_killed_nodes_past_the_ttl_are_named_until_removed_or_back(cluster: Cluster) -> None:
    c, env = cluster, cluster.environment
    gw_a, gw_b = c.nodes
    first = c.api.create_certificate(PROJECT, "before", certs.self_signed("p256").pem, [env])
    assert first["success"] is True, first
    gw_a.kill()
    gw_b.kill()
    time.sleep(TTL + 1.5)
    rows = c.api.nodes(env)["resultList"]
    assert {r["name"]: r["state"] for r in rows} == {gw_a.name: "SILENT", gw_b.name: "SILENT"}

    started = time.monotonic()
    result = c.api.create_certificate(PROJECT, "after", certs.self_signed("p256").pem, [env])
    elapsed = time.monotonic() - started
    assert result["success"] is False, result
    message = environment_result(result, env)["message"]
    latest = c.api.latest_revision(env)
    assert message.startswith(
        f"Deployment failed: 0 of 2 gateway node(s) applied revision {latest}; not applied: "
        f"{gw_a.name} (not heard from since "
    ), message
    assert f", {gw_b.name} (not heard from since " in message, message
    assert elapsed < 3, f"a deploy waited {elapsed:.1f} s for nodes that can not answer"
    assert c.api.environment_status(env) == "REPUBLISH_REQUIRED"

    # The admin removes gw-a for good; gw-b still holds the environment back.
    removed = c.api.request("DELETE", f"/apiops/environments/{env}/nodes/{gw_a.name}/")
    assert removed.status_code == 200, removed.text
    assert c.api.environment_status(env) == "REPUBLISH_REQUIRED"

    # gw-b comes back on its data dir: it catches up and the environment is PUBLISHED.
    gw_b.start()
    gw_b.wait_revision(latest)
    until(
        lambda: c.api.environment_status(env) == "PUBLISHED",
        timeout=15,
        what=lambda: f"{env} PUBLISHED again; nodes {c.api.nodes(env)}",
    )
    again = c.api.create_certificate(PROJECT, "later", certs.self_signed("p256").pem, [env])
    assert environment_result(again, env) == {
        "environmentName": env,
        "success": True,
        "message": "Deployed successfully; 1 of 1 gateway node(s) applied it",
    }
