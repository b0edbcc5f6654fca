"""nginx end to end: a real manager, a real node with ``--driver nginx``, a real nginx.

Each test starts ``keyops serve`` (fresh database, SQLite and PostgreSQL), a node
``python -m keyops.gateway --driver nginx --output-dir DIR --nginx-conf CONF --listen
none``, and Debian's nginx as a foreground master (``-g 'daemon off;'``) on a loopback
port with its own pid file, error log and temp paths, configured as the README says:
``ssl_certificate DIR/tls/admin/gw-tls/server.crt``, ``ssl_certificate_key .../server.key``,
``ssl_client_certificate DIR/truststore.pem`` with ``ssl_verify_client optional``, and
``/.well-known/jwks.json`` served from ``DIR/jwks.json``. Material goes in through the
REST API; what nginx serves is checked from outside with the standard library's ``ssl``.

1. The keystore update endpoint rotates the server certificate and the seed's
   certificate update rotates the client CA, each through one graceful reload: the same
   nginx master, new handshakes present the new certificate, a client of the new CA is
   accepted and one of the old CA refused.
2. A configuration nginx -t refuses: the rotation fails naming the node and nginx's
   reason, nginx keeps serving the old material from the old files, the environment
   needs a republish; once the configuration is fixed the next change goes through.
3. The node restarted while the manager is down (its output directory wiped) writes its
   sealed snapshot out again and nginx keeps serving; the manager back, it converges.
"""

from __future__ import annotations

import json
import shutil
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import BACKENDS, database, in_ci
from tests.support.gateway_nodes import (
    ADMIN_PROJECT,
    NGINX,
    STORE_PASSWORD,
    TLS_ALIAS,
    TLS_KEYSTORE,
    Cluster,
    NginxProcess,
    NodeProcess,
    Pki,
    environment_result,
    gateway_cluster,
    issue,
    nginx_conf,
    pkcs12,
    until,
)
from tests.support.server import free_port
from tests.support.tls_client import Answer, get_once, presented

CA_NAME = "client-ca"
NODE = "gw-a"
IDENTITY = f"tls/{ADMIN_PROJECT}/{TLS_KEYSTORE}/{TLS_ALIAS}"


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    for tool, why in (("openssl", "the keystore is made by openssl pkcs12"), ("nginx", "")):
        found = NGINX if tool == "nginx" else shutil.which(tool)
        if found is None:
            if in_ci():
                pytest.fail(f"{tool} is not installed; with CI=true it must be", pytrace=False)
            pytest.skip(f"{tool} is not installed{f' ({why})' if why else ''}")


# --- nginx ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Nginx(NginxProcess):
    """A foreground nginx master on a free loopback port, serving the node's files."""

    out: Path
    client_context: ssl.SSLContext  # trusts the server CA

    def write(self, *, broken: bool = False) -> None:
        out = self.out
        self.write_conf(
            nginx_conf(
                self.root,
                self.port,
                identity=out / IDENTITY,
                truststore=out / "truststore.pem",
                jwks=out / "jwks.json",
                broken=broken,
            )
        )


@dataclass
class Setup:
    c: Cluster
    pki: Pki
    nginx: Nginx
    node: NodeProcess

    @property
    def out(self) -> Path:
        return self.nginx.out


@pytest.fixture(params=BACKENDS)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    # No nodes yet: the nginx node is added once its material is deployed.
    with (
        database(request.param, tmp_path) as url,
        gateway_cluster(url, tmp_path, node_names=()) as c,
    ):
        try:
            yield c
        finally:
            print(c.logs())


@pytest.fixture
def setup(cluster: Cluster, tmp_path: Path) -> Iterator[Setup]:
    pki = Pki.create(tmp_path / "pki")
    nginx = Nginx(
        tmp_path / "nginx", free_port(), out=tmp_path / "out", client_context=pki.context(None)
    )
    nginx.write()
    try:
        yield provision(cluster, pki, nginx)
    finally:
        nginx.stop()
        print(f"=== nginx\n{nginx.log()[-4000:]}")


def node_args(nginx: Nginx) -> list[str]:
    assert NGINX is not None
    return [
        "--driver", "nginx", "--output-dir", str(nginx.out),
        "--nginx-binary", NGINX, "--nginx-conf", str(nginx.conf),
    ]  # fmt: skip


def provision(c: Cluster, pki: Pki, nginx: Nginx) -> Setup:
    """CA "a" in the admin project and the TLS keystore, then the node, then nginx.

    The node writes the files before nginx runs (nginx -t passes, there is nothing to
    reload yet), as on a host that starts the node before its gateway.
    """
    env = c.environment
    c.api.create_certificate(ADMIN_PROJECT, CA_NAME, pki.client_ca("a").pem, [env])
    c.api.create_keystore(ADMIN_PROJECT, TLS_KEYSTORE, env, pki.keystore, STORE_PASSWORD)
    node = c.add_node(NODE, args=node_args(nginx), listen=False)
    c.wait_connected([node])
    status = node.wait_status(
        lambda s: (s["driver"]["lastApply"] or {}).get("outcome") == "applied",
        timeout=20,
        what="files written",
    )
    assert "nginx is not running" in status["driver"]["lastApply"]["message"]
    assert status["listen"] is None and status["driver"]["name"] == "nginx"
    nginx.start(nginx.client_context)
    return Setup(c, pki, nginx, node)


# --- checks from outside ---------------------------------------------------------------------


def get(s: Setup, client: str | None, path: str = "/") -> Answer:
    """One request on a new connection (``Connection: close``, as nginx answers a 400)."""
    return get_once(s.nginx.port, s.pki.context(client), path)


def greeted(s: Setup, client: str) -> bool:
    """``client`` completes the handshake and nginx verified it against the truststore."""
    answer = get(s, client)
    return answer.status == 200 and answer.body == f"hello CN=client-{client},O=Acme".encode()


def rejected(s: Setup, client: str) -> bool:
    """nginx does not accept ``client``'s certificate (400 with ``optional``)."""
    try:
        return get(s, client).status == 400
    except (ssl.SSLError, ConnectionError):
        return True


def presents(s: Setup, der: bytes) -> bool:
    return presented(s.nginx.port, s.pki.context(None)) == der


def second_identity(pki: Pki) -> tuple[bytes, bytes]:
    """Another server certificate of the same server CA, as a PKCS#12 keystore."""
    server2 = issue("gw2.example", issuer=pki.server_ca, server=True)
    return server2.der, pkcs12(pki.work / "second", server2, [pki.server_ca], TLS_ALIAS)


def applied_by_one(deployment: dict[str, Any], env: str) -> None:
    assert deployment["success"] is True, deployment
    assert environment_result(deployment, env)["message"] == (
        "Deployed successfully; 1 of 1 gateway node(s) applied it"
    ), deployment


def node_row(c: Cluster) -> dict[str, Any]:
    (row,) = [r for r in c.api.nodes(c.environment)["resultList"] if r["name"] == NODE]
    return row


# --- 1. rotations through a graceful reload ------------------------------------------------------


def test_keystore_and_ca_rotations_reach_nginx_through_a_graceful_reload(setup: Setup) -> None:
    s, c, env = setup, setup.c, setup.c.environment
    assert greeted(s, "a") and rejected(s, "b")
    no_cert = get(s, None)
    assert (no_cert.status, no_cert.body) == (403, b"client NONE")
    assert presents(s, s.pki.server.der)
    jwks = get(s, None, "/.well-known/jwks.json")
    assert jwks.headers["content-type"] == "application/json"
    assert json.loads(jwks.body) == {"keys": []}
    assert (s.out / f"{IDENTITY}.key").stat().st_mode & 0o777 == 0o600
    master, reloads = s.nginx.pid, s.nginx.reloads()

    # The keystore update endpoint: a new server certificate.
    server2, keystore2 = second_identity(s.pki)
    applied_by_one(
        c.api.update_keystore(ADMIN_PROJECT, TLS_KEYSTORE, env, keystore2, STORE_PASSWORD), env
    )
    until(lambda: presents(s, server2), timeout=10, what="the new server certificate")
    assert s.nginx.process is not None and s.nginx.process.poll() is None
    assert s.nginx.pid == master and s.nginx.reloads() == reloads + 1
    assert greeted(s, "a")
    status = s.node.status()
    assert status["driver"]["lastApply"]["outcome"] == "applied"
    assert status["driver"]["lastApply"]["message"].startswith("nginx -t passed, reloaded nginx")

    # The seed's update of the admin project's CA: clients of the new CA only.
    pem = s.pki.client_ca("c").pem
    applied_by_one(c.api.update_certificate(ADMIN_PROJECT, CA_NAME, pem, [env]), env)
    until(lambda: greeted(s, "c"), timeout=10, what="a client of the new CA accepted")
    # A graceful reload: an old worker may take a new connection until it winds down.
    until(lambda: rejected(s, "a"), timeout=10, what="a client of the old CA refused")
    assert s.nginx.pid == master and s.nginx.reloads() == reloads + 2
    assert (s.out / "truststore.pem").read_bytes() == pem
    assert presents(s, server2)

    row = node_row(c)
    assert row["upToDate"] and row["connected"] and row["lastError"] is None
    assert row["appliedRevision"] == c.api.latest_revision(env)
    assert c.api.environment_status(env) == "PUBLISHED"


# --- 2. nginx -t refuses ---------------------------------------------------------------------


def test_a_failing_nginx_check_keeps_the_old_material_and_names_the_node(setup: Setup) -> None:
    s, c, env = setup, setup.c, setup.c.environment
    crt_before = (s.out / f"{IDENTITY}.crt").read_bytes()
    reloads = s.nginx.reloads()
    s.nginx.write(broken=True)

    server2, keystore2 = second_identity(s.pki)
    result = c.api.update_keystore(ADMIN_PROJECT, TLS_KEYSTORE, env, keystore2, STORE_PASSWORD)
    latest = c.api.latest_revision(env)
    assert result["success"] is False, result
    mine = environment_result(result, env)
    assert mine["success"] is False
    message = mine["message"]
    assert message.startswith(
        f"Deployment failed: 0 of 1 gateway node(s) applied revision {latest}; not applied:"
        f' {NODE} (nginx -t failed: [emerg] unknown directive "this_is_not_a_directive"'
    ), message
    assert message.endswith("The change is saved; the environment needs a republish."), message

    # nginx never reloaded: the old certificate, the old files.
    assert s.nginx.reloads() == reloads
    assert presents(s, s.pki.server.der) and greeted(s, "a")
    assert (s.out / f"{IDENTITY}.crt").read_bytes() == crt_before
    row = node_row(c)
    assert not row["upToDate"] and row["appliedRevision"] < latest
    assert "nginx -t failed" in row["lastError"]
    status = s.node.status()
    assert status["driver"]["lastApply"]["outcome"] == "failed"
    assert status["appliedRevision"] < latest
    assert c.api.environment_status(env) == "REPUBLISH_REQUIRED"

    # Fixed: the next change carries both (new keystore and new CA) through one reload.
    s.nginx.write()
    pem = s.pki.client_ca("c").pem
    applied_by_one(c.api.update_certificate(ADMIN_PROJECT, CA_NAME, pem, [env]), env)
    until(lambda: presents(s, server2), timeout=10, what="the new server certificate")
    until(lambda: greeted(s, "c"), timeout=10, what="a client of the new CA accepted")
    until(lambda: rejected(s, "a"), timeout=10, what="a client of the old CA refused")
    assert s.nginx.reloads() == reloads + 1
    assert node_row(c)["upToDate"]


# --- 3. the node restarted without the manager --------------------------------------------------


def test_node_restarted_without_the_manager_rewrites_its_files_and_converges(
    setup: Setup,
) -> None:
    s, c, env = setup, setup.c, setup.c.environment
    served = c.api.latest_revision(env)
    written = sorted(p.relative_to(s.out) for p in s.out.rglob("*") if p.is_file())
    master = s.nginx.pid

    s.node.stop()
    c.manager.kill()
    shutil.rmtree(s.out)  # lost with the node down; nginx still serves from memory
    assert greeted(s, "a")

    s.node.start()
    status = s.node.wait_status(
        lambda st: st["source"] == "disk" and st["managerReachable"] is False,
        timeout=20,
        what="serving from disk without the manager",
    )
    assert status["appliedRevision"] == served
    assert status["driver"]["lastApply"]["outcome"] == "applied"
    assert sorted(p.relative_to(s.out) for p in s.out.rglob("*") if p.is_file()) == written
    assert f"serving revision {served} of {env} from disk" in s.node.log()
    # nginx reloaded onto the rewritten files and serves the same material.
    assert s.nginx.pid == master
    assert presents(s, s.pki.server.der) and greeted(s, "a") and rejected(s, "b")

    c.manager.start()
    c.wait_connected([s.node])
    pem = s.pki.client_ca("c").pem
    applied_by_one(c.api.update_certificate(ADMIN_PROJECT, CA_NAME, pem, [env]), env)
    until(lambda: greeted(s, "c"), timeout=10, what="a client of the new CA accepted")
    until(lambda: rejected(s, "a"), timeout=10, what="a client of the old CA refused")
    s.node.wait_status(lambda st: st["source"] == "manager", timeout=10, what="from the manager")
    assert c.api.environment_status(env) == "PUBLISHED"
