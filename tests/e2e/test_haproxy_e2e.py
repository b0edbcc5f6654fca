"""HAProxy end to end: a real manager, a real node with ``--driver haproxy``, a real HAProxy.

Each test starts ``keyops serve`` (fresh database, SQLite and PostgreSQL), one gateway
node process with ``--driver haproxy --output-dir OUT --haproxy-socket SOCK`` and no TLS
listener of its own, and, once the node has written the environment's files, Debian's
``haproxy`` in the foreground with a configuration naming them (``bind ... ssl crt
OUT/tls/admin/gw-tls/server.pem ca-file OUT/truststore.pem verify optional``). Material
goes in through the REST API and is checked from outside with the standard library's
``ssl`` client:

* the first deployments reach the node while HAProxy is not running yet: the files are
  written (HAProxy then starts on them) and the driver says HAProxy is not running;
* rotating the TLS keystore through the keystore update endpoint makes new handshakes
  present the new certificate as soon as the update call has answered, with HAProxy's
  process id unchanged and a keep-alive connection opened before still answering;
* the seed's certificate update of the admin project's CA makes a client certificate of
  the new CA accepted and one of the old CA refused, again without a reload.
"""

from __future__ import annotations

import http.client
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import BACKENDS, database, in_ci
from tests.support.gateway_nodes import (
    ADMIN_PROJECT,
    HAPROXY,
    STORE_PASSWORD,
    TLS_ALIAS,
    TLS_KEYSTORE,
    Cluster,
    HaproxyProcess,
    NodeProcess,
    Pki,
    applied_by_all,
    environment_result,
    gateway_cluster,
    haproxy_conf,
    issue,
    pkcs12,
    refused,
)
from tests.support.server import free_port
from tests.support.tls_client import greeting, presented

CA_NAME = "client-ca"
IDENTITY = f"tls/{ADMIN_PROJECT}/{TLS_KEYSTORE}/{TLS_ALIAS}.pem"


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    for tool, why in ((HAPROXY, "haproxy"), (shutil.which("openssl"), "openssl")):
        if tool is None or not os.access(tool, os.X_OK):
            if in_ci():
                pytest.fail(f"{why} is not installed; with CI=true it must be", pytrace=False)
            pytest.skip(f"{why} is not installed")


# --- the node with the HAProxy driver, and HAProxy ---------------------------------------------


def last_apply(node: NodeProcess) -> dict[str, Any]:
    """The node's ``driver.lastApply`` from /status."""
    driver: dict[str, Any] = node.status()["driver"]
    assert driver["name"] == "haproxy", driver
    last: dict[str, Any] = driver["lastApply"]
    return last


class Haproxy(HaproxyProcess):
    def start_on(self, out: Path) -> None:
        """Start with the configuration the README shows, naming the node's files."""
        bind = f"crt {out}/{IDENTITY} ca-file {out}/truststore.pem verify optional"
        self.start(haproxy_conf(self.socket, self.port, bind))


@dataclass
class Setup:
    cluster: Cluster
    node: NodeProcess
    haproxy: Haproxy
    out: Path


@pytest.fixture(params=BACKENDS)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    root = tmp_path / "haproxy"
    root.mkdir()
    haproxy = Haproxy(root, free_port())
    out = tmp_path / "out"
    with (
        database(request.param, tmp_path) as url,
        gateway_cluster(url, tmp_path, node_names=()) as c,
    ):
        args = ("--driver", "haproxy", "--output-dir", str(out), "--haproxy-socket", haproxy.socket)
        try:
            node = c.add_node("gw-haproxy", args=args, listen=False)
            c.wait_connected([node])
            yield Setup(c, node, haproxy, out)
        finally:
            haproxy.stop()
            print(c.logs())
            print(f"=== haproxy\n{haproxy.log()[-4000:]}")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


# --- the admin API -------------------------------------------------------------------------------


def assert_applied(deployment: dict[str, Any], env: str) -> None:
    assert deployment["success"] is True, deployment
    assert environment_result(deployment, env)["message"] == applied_by_all(1), deployment


# --- TLS from outside ----------------------------------------------------------------------------


def hello(port: int, pki: Pki, client: str) -> str | None:
    """HAProxy's answer to ``GET /`` over mTLS with ``client``'s certificate; None if refused."""
    return greeting(port, pki.context(client))


# --- the test ------------------------------------------------------------------------------------


def test_haproxy_takes_keystore_and_ca_rotations_in_memory(setup: Setup, pki: Pki) -> None:
    c, node, haproxy, env = setup.cluster, setup.node, setup.haproxy, setup.cluster.environment

    # HAProxy is not running yet: the deployments succeed and the files are written.
    ca_a = pki.client_ca("a").pem
    assert_applied(c.api.create_certificate(ADMIN_PROJECT, CA_NAME, ca_a, [env]), env)
    assert_applied(
        c.api.create_keystore(ADMIN_PROJECT, TLS_KEYSTORE, env, pki.keystore, STORE_PASSWORD), env
    )
    last = last_apply(node)
    assert last["outcome"] == "applied", last
    assert last["message"].startswith("haproxy: not running (no socket at "), last
    assert node.status()["driver"]["haproxyReachable"] is False
    assert (setup.out / IDENTITY).read_bytes().startswith(pki.server.pem)
    assert (setup.out / "truststore.pem").read_bytes() == ca_a

    haproxy.start_on(setup.out)
    pid = haproxy.pid()
    assert presented(haproxy.port, pki.context(None)) == pki.server.der
    assert hello(haproxy.port, pki, "a") == "hello client-a"
    assert hello(haproxy.port, pki, "b") is None
    kept = http.client.HTTPSConnection(
        "127.0.0.1", haproxy.port, context=pki.context(None), timeout=5
    )
    kept.request("GET", "/")
    assert kept.getresponse().read() == b"hello "

    # The TLS keystore rotated through its update endpoint.
    rotated = issue("gw.example", issuer=pki.server_ca, server=True)
    store = pkcs12(pki.work / "rotated", rotated, [pki.server_ca], TLS_ALIAS)
    assert_applied(
        c.api.update_keystore(ADMIN_PROJECT, TLS_KEYSTORE, env, store, STORE_PASSWORD), env
    )

    # At once: the node acknowledged after HAProxy had committed.
    assert presented(haproxy.port, pki.context(None)) == rotated.der
    kept.request("GET", "/")
    response = kept.getresponse()
    assert (response.status, response.read()) == (200, b"hello ")
    assert kept.sock is not None and kept.sock.getpeercert(binary_form=True) == pki.server.der
    kept.close()
    assert haproxy.pid() == pid and haproxy.process is not None and haproxy.process.poll() is None
    last = last_apply(node)
    assert last["outcome"] == "applied", last
    assert last["message"] == f"haproxy: updated in memory: {IDENTITY}", last
    assert node.status()["driver"]["haproxyCertificates"] == [str(setup.out / IDENTITY)]

    # The seed's update: the admin project's CA certificate replaced by another CA.
    ca_b = pki.client_ca("b").pem
    assert_applied(c.api.update_certificate(ADMIN_PROJECT, CA_NAME, ca_b, [env]), env)

    assert hello(haproxy.port, pki, "b") == "hello client-b"
    assert hello(haproxy.port, pki, "a") is None
    assert refused(haproxy.port, pki, "a")
    assert presented(haproxy.port, pki.context(None)) == rotated.der
    assert haproxy.pid() == pid
    last = last_apply(node)
    assert last["message"] == "haproxy: updated in memory: truststore.pem", last
    assert node.status()["driver"]["haproxyReachable"] is True
