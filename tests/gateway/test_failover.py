"""Gateway node failover between manager replicas, with real processes.

Two ``keyops serve`` replicas on one PostgreSQL database, and two ``python -m
keyops.gateway`` nodes given both URLs (one as a comma list, one as two ``--manager``
options). The replica in use is SIGKILLed: the next certificate update, sent through the
other replica, is applied by both nodes within the deploy timeout. Then the other one
dies too, and when a replica comes back the node's ``/status`` says
``managerReachable: true`` after its first request, long before its long poll answers.

In process, against the protocol double of test_node.py: a node on its fallback goes
back to the preferred manager once it answers, staying reachable meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyops.gateway.client import ClientError, ManagerClient
from tests.gateway import test_node
from tests.gateway.test_node import (
    FAST,
    Material,
    RunningNode,
    manager_double,
    node_config,
    snapshot,
)
from tests.support.databases import postgres_database
from tests.support.gateway_nodes import (
    ADMIN_PROJECT,
    Api,
    ManagerProcess,
    NodeProcess,
    applied_by_all,
    environment_result,
    issue,
    manager_replicas,
    until,
)
from tests.support.server import free_port

material = test_node.material

ENV = "edge"
DEPLOY_TIMEOUT_S = 3.0  # FAST_ENV's KEYOPS_DEPLOY_TIMEOUT_SECONDS
# Longer than the node's own 20 s poll, so a waiting poll is only answered at a change.
LONG_POLL = {"KEYOPS_GATEWAY_POLL_SECONDS": "60"}


def sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def manager_entry(status: dict[str, Any], url: str) -> dict[str, Any]:
    (entry,) = [m for m in status["managers"] if m["url"] == url]
    return entry


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[ManagerProcess]]:
    with postgres_database() as url, manager_replicas(url, tmp_path, 2, extra_env=LONG_POLL) as r:
        yield r


def test_nodes_fail_over_to_the_other_replica_and_report_it(
    replicas: list[ManagerProcess], tmp_path: Path
) -> None:
    a, b = replicas
    api_a, api_b = Api(a.base_url), Api(b.base_url)
    nodes: list[NodeProcess] = []
    try:
        api_a.create_environment(ENV)
        token = api_a.node_token(ENV, "failover")
        first_ca = issue("Failover CA 1", ca=True)
        api_a.create_certificate(ADMIN_PROJECT, "failover-ca", first_ca.pem, [ENV])
        nodes = [
            NodeProcess(ENV, f"{a.base_url},{b.base_url}", token, "gw-1", tmp_path / "gw-1"),
            NodeProcess(
                ENV, a.base_url, token, "gw-2", tmp_path / "gw-2", args=("--manager", b.base_url)
            ),
        ]
        for node in nodes:
            node.start()
        revision = api_a.latest_revision(ENV)
        for node in nodes:
            status = node.wait_status(
                lambda s: s["managerReachable"] and s["appliedRevision"] == revision,
                timeout=20,
                what=f"revision {revision} from {a.base_url}",
            )
            assert status["manager"] == a.base_url
            assert [m["url"] for m in status["managers"]] == [a.base_url, b.base_url]
            assert manager_entry(status, a.base_url)["inUse"] is True
            assert manager_entry(status, a.base_url)["reachable"] is True
            assert manager_entry(status, b.base_url)["inUse"] is False
            assert manager_entry(status, b.base_url)["reachable"] is None  # not asked yet
            assert sha256(first_ca.der) in status["fingerprints"]["truststoreSha256"]

        a.kill()
        second_ca = issue("Failover CA 2", ca=True)
        started = time.monotonic()
        result = api_b.update_certificate(ADMIN_PROJECT, "failover-ca", second_ca.pem, [ENV])
        took = time.monotonic() - started
        logs = "\n".join(n.log()[-3000:] for n in nodes)
        assert result["success"] is True, (result, logs)
        assert environment_result(result, ENV)["message"] == applied_by_all(2), (result, logs)
        assert took < DEPLOY_TIMEOUT_S + 2, took
        revision = api_b.latest_revision(ENV)
        for node in nodes:
            status = node.status()
            assert status["appliedRevision"] == revision
            assert status["fingerprints"]["truststoreSha256"] == [sha256(second_ca.der)]
            assert status["managerReachable"] is True
            assert status["manager"] == b.base_url
            dead = manager_entry(status, a.base_url)
            assert dead["inUse"] is False and dead["reachable"] is False
            assert dead["consecutiveFailures"] >= 1
            assert dead["lastError"] and dead["lastErrorAt"].endswith("Z")
            assert manager_entry(status, b.base_url)["reachable"] is True
            assert "unreachable" in node.log()

        # Both replicas down: the nodes keep serving and say so.
        b.kill()
        for node in nodes:
            status = node.wait_status(
                lambda s: s["managerReachable"] is False, timeout=10, what="both managers down"
            )
            assert status["appliedRevision"] == revision
            assert "manager unreachable" in status["lastError"]
            assert all(m["reachable"] is False for m in status["managers"])
        synced_before = {n.name: n.status()["lastSyncAt"] for n in nodes}

        # The preferred replica comes back. The node's first request to it is its ack,
        # answered at once: reachable again within a retry (at most backoff_max, 5 s),
        # while its long poll (up to 20 s, nothing changes) is still waiting.
        a.start()
        back = time.monotonic()
        for node in nodes:
            status = node.wait_status(
                lambda s: s["managerReachable"] is True, timeout=8, what="reachable again"
            )
            assert status["manager"] == a.base_url
            assert status["lastError"] is None
            assert manager_entry(status, a.base_url)["reachable"] is True
            assert manager_entry(status, a.base_url)["consecutiveFailures"] == 0
            assert manager_entry(status, b.base_url)["reachable"] is False
            # Not the long poll's answer: that would have set lastSyncAt.
            assert status["lastSyncAt"] == synced_before[node.name], status
        assert time.monotonic() - back < 10

        # And the manager lists both as connected again (the ack said what they serve).
        def listed() -> bool:
            rows = api_a.nodes(ENV)["resultList"]
            return {"gw-1", "gw-2"} <= {
                r["name"] for r in rows if r["connected"] and r["appliedRevision"] == revision
            }

        until(listed, timeout=10, what="both nodes connected to the restarted replica")
    finally:
        for node in nodes:
            node.stop()
        api_a.close()
        api_b.close()


# --- in process: going back to the preferred manager -------------------------------------


def test_goes_back_to_the_preferred_manager_and_stays_reachable_meanwhile(
    material: Material, tmp_path: Path
) -> None:
    preferred_port = free_port()  # nothing listens there yet
    preferred_url = f"http://127.0.0.1:{preferred_port}"
    with manager_double() as fallback:
        fallback.publish(snapshot(material, 1))
        config = dataclasses.replace(
            node_config(preferred_url, tmp_path), fallbacks=(fallback.url,)
        )
        running = RunningNode(config)
        running.node.timing = dataclasses.replace(FAST, failback_max=0.4)
        running.start()
        try:
            status = running.wait_status(
                lambda s: s["appliedRevision"] == 1 and s["managerReachable"]
            )
            assert status["manager"] == fallback.url
            assert status["managers"][0]["url"] == preferred_url
            assert status["managers"][0]["reachable"] is False
            # Trying the preferred one again (and failing) does not make the node
            # unreachable: it stays connected through the fallback.
            # (Each try waits for the fallback's long poll, cut to 1 s.)
            seen = [running.status()]
            deadline = time.monotonic() + 10
            while seen[-1]["managers"][0]["consecutiveFailures"] < 3:
                assert time.monotonic() < deadline, seen[-1]
                time.sleep(0.05)
                seen.append(running.status())
            assert all(s["managerReachable"] and s["lastError"] is None for s in seen), seen
            assert {s["manager"] for s in seen} == {fallback.url}

            with manager_double(preferred_port) as preferred:
                preferred.publish(snapshot(material, 1))
                # The switch back starts with an ack of what the node serves.
                assert preferred.wait_ack(lambda a: a["revision"] == 1)["node"] == "node-1"
                status = running.wait_status(lambda s: s["manager"] == preferred_url)
                assert status["managerReachable"] is True
                assert status["managers"][0]["consecutiveFailures"] == 0
                assert status["managers"][1]["inUse"] is False
                # It now follows the preferred manager only.
                preferred.publish(snapshot(material, 2, keystore=material.keystore2))
                running.wait_revision(2)
                polls = len(fallback.polls)
                time.sleep(0.5)
                assert len(fallback.polls) == polls
        finally:
            running.stop()


# --- the node's HTTP client ---------------------------------------------------------------


def test_the_node_client_reuses_its_connection_and_fails_cleanly() -> None:
    async def scenario() -> None:
        connections: list[int] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(1)
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ")[1]
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                if target == b"/silent":
                    await asyncio.sleep(5)
                if target == b"/hangup":
                    writer.close()
                    return
                body = b"x" * 100 if target == b"/big" else b'{"ok": true}'
                status = b"503 Service Unavailable" if target == b"/down" else b"200 OK"
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Length: "
                    + str(len(body)).encode() + b"\r\n\r\n" + body
                )  # fmt: skip
                await writer.drain()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with ManagerClient({"User-Agent": "t"}, connect_timeout=1) as client:
            first = await client.request("GET", base + "/a", params={"q": "1"}, within=2)
            second = await client.request("POST", base + "/b", json_body={"n": 1}, within=2)
            assert (first.status, first.body) == (200, b'{"ok": true}')
            assert second.status == 200
            assert len(connections) == 1  # kept alive
            assert (await client.request("GET", base + "/down", within=2)).status == 503
            with pytest.raises(ClientError, match="answer larger than 10 bytes"):
                await client.request("GET", base + "/big", within=2, limit=10)
            with pytest.raises(ClientError, match=r"no answer within 0\.3 s"):
                await client.request("GET", base + "/silent", within=0.3)
            with pytest.raises(ClientError, match="closed before an answer"):
                await client.request("GET", base + "/hangup", within=2)
            assert (await client.request("GET", base + "/again", within=2)).status == 200
            with pytest.raises(ClientError, match="ConnectionRefusedError"):
                await client.request("GET", f"http://127.0.0.1:{free_port()}/", within=2)
            with pytest.raises(ClientError, match="not an http"):
                await client.request("GET", "ftp://127.0.0.1/", within=2)
        server.close()

    asyncio.run(scenario())
