"""The gateway node against a real test double of the manager's sync protocol.

The manager double is a small HTTP server on loopback speaking the protocol (long-poll
sync, ack, goodbye); snapshots are built from real material: CAs and certificates made
with pyca/cryptography, the server identity in a PKCS#12 file made by ``openssl pkcs12
-export``, JWKs made by keyops (private members included). The node is the real one,
run in-process on its own event loop thread (``GatewayNode.run``), or as a subprocess
(``python -m keyops.gateway``) for the CLI, SIGTERM and logging checks. Clients are
the standard library's ``ssl`` and ``http.client``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from keyops.crypto.jwk import PRIVATE_MEMBERS, generate_jwk
from keyops.gateway.drivers.base import Driver
from keyops.gateway.node import GatewayNode, HostPort, NodeConfig, Timing
from keyops.gateway.store import NODE_KEY_FILE, SNAPSHOT_FILE
from keyops.secrets import Secret
from tests.crypto import certs
from tests.support.databases import in_ci
from tests.support.gateway_nodes import STORE_PASSWORD, issue, pkcs12

ENV = "production"
TOKEN = "node-credential-for-tests"
FAST = Timing(
    poll_wait=2,
    read_margin=3,
    connect_timeout=1,
    backoff_initial=0.05,
    backoff_max=0.3,
    unauthorized_retry=0.2,
    handshake_timeout=3,
    goodbye_timeout=0.5,
)


@pytest.fixture(scope="module", autouse=True)
def _openssl() -> None:
    if shutil.which("openssl") is None:
        if in_ci():
            pytest.fail("openssl is not installed; with CI=true it must be", pytrace=False)
        pytest.skip("openssl is not installed")


# --- material ------------------------------------------------------------------------------


def jwk(kty: str, kid: str, **options: Any) -> dict[str, Any]:
    return generate_jwk(
        kty,
        key_size=options.get("key_size"),
        curve=options.get("curve"),
        use_type=None,
        algorithm=None,
        kid=kid,
        key_id_type=None,
        not_before=None,
        expiration=None,
        now=dt.datetime.now(dt.UTC),
    )


@dataclass
class Material:
    work: Path
    server_ca: certs.Issued
    server: certs.Issued
    server2: certs.Issued
    keystore: bytes  # alias "server" -> server
    keystore2: bytes  # alias "server" -> server2
    client_ca_a: certs.Issued
    client_a: certs.Issued
    client_ca_b: certs.Issued  # deployed to another project: not trusted
    client_b: certs.Issued
    client_ca_c: certs.Issued  # the CA of a later snapshot
    client_c: certs.Issued
    jwks: list[dict[str, Any]]  # EC, OKP (private) and oct

    def secrets(self) -> list[bytes]:
        """Byte strings that must never be found in clear on disk or in logs."""
        found = [STORE_PASSWORD.encode(), self.keystore, base64.b64encode(self.keystore)]
        for issued in (self.server, self.server2):
            der = issued.key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            found += [der, base64.b64encode(der), issued.key_pem]
        for key in self.jwks:
            found += [str(key[m]).encode() for m in ("d", "k") if m in key]
        return found


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    work = tmp_path_factory.mktemp("gateway-material")
    server_ca = issue("Server CA", ca=True)
    server = issue("gw.example", issuer=server_ca, server=True)
    server2 = issue("gw2.example", issuer=server_ca, server=True)
    client_ca_a = issue("Client CA A", ca=True)
    client_ca_b = issue("Client CA B", ca=True)
    client_ca_c = issue("Client CA C", ca=True)
    return Material(
        work=work,
        server_ca=server_ca,
        server=server,
        server2=server2,
        keystore=pkcs12(work, server, [server_ca], "server"),
        keystore2=pkcs12(work, server2, [server_ca], "server"),
        client_ca_a=client_ca_a,
        client_a=issue("client-a", issuer=client_ca_a),
        client_ca_b=client_ca_b,
        client_b=issue("client-b", issuer=client_ca_b),
        client_ca_c=client_ca_c,
        client_c=issue("client-c", issuer=client_ca_c),
        jwks=[
            jwk("EC", "ec-1", curve="P256"),
            jwk("OKP", "ed-1", curve="Ed25519"),
            jwk("OCT", "hmac-1", key_size=256),
        ],
    )


def artifact(kind: str, project: str, name: str, content: bytes) -> dict[str, Any]:
    return {
        "kind": kind,
        "projectName": project,
        "name": name,
        "alias": None,
        "contentHash": hashlib.sha256(content).hexdigest(),
        "content": base64.b64encode(content).decode(),
    }


def snapshot(
    m: Material,
    revision: int,
    *,
    keystore: bytes | None = None,
    alias: str = "server",
    trusted: tuple[certs.Issued, ...] | None = None,
    jwks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    store = {
        "type": "PKCS12",
        "file": base64.b64encode(keystore or m.keystore).decode(),
        "password": STORE_PASSWORD,
    }
    arts = [
        artifact("keystore", "admin", "gw", json.dumps(store).encode()),
        artifact("certificate", "other", "ca-b", m.client_ca_b.der),
        artifact("key", "other", "k1", json.dumps({"keyType": "RSA"}).encode()),
    ]
    for index, ca in enumerate(trusted if trusted is not None else (m.client_ca_a,)):
        arts.append(artifact("certificate", "admin", f"trusted-{index}", ca.der))
    for key in jwks if jwks is not None else m.jwks:
        arts.append(artifact("jwk", "other", key["kid"], json.dumps(key).encode()))
    return {
        "environment": ENV,
        "revision": revision,
        "tlsIdentity": {"projectName": "admin", "keyStoreName": "gw", "aliasName": alias},
        "artifacts": arts,
    }


# --- the manager double ------------------------------------------------------------------


@dataclass
class ManagerDouble:
    httpd: ThreadingHTTPServer
    current: dict[str, Any] | None = None
    polls: list[dict[str, str]] = field(default_factory=list)
    acks: list[dict[str, Any]] = field(default_factory=list)
    goodbyes: list[str] = field(default_factory=list)
    refused: int = 0
    dead: bool = False
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def publish(self, document: dict[str, Any]) -> None:
        with self.changed:
            self.current = document
            self.changed.notify_all()

    def wait_ack(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        with self.changed:
            while True:
                for ack in self.acks:
                    if predicate(ack):
                        return ack
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such ack; got {self.acks}")
                self.changed.wait(left)

    def kill(self) -> None:
        with self.changed:
            self.dead = True
            self.changed.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()


def _manager_handler(manager: ManagerDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                return True
            manager.refused += 1
            self._send(401, {"error": "invalid_token", "error_description": "unknown node"})
            return False

        def _send(self, status: int, body: dict[str, Any] | None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/apiops/gateway/sync/" or not self._authorized():
                return
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            # No since: the node holds nothing yet and gets the snapshot at once.
            since, wait = int(query.get("since", -1)), float(query["wait"])
            deadline = time.monotonic() + wait
            with manager.changed:
                manager.polls.append(query)
                while True:
                    if manager.dead:
                        return  # drop the connection without an answer
                    current = manager.current
                    if current is not None and current["revision"] > since:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        current = None
                        break
                    manager.changed.wait(left)
            self._send(200, current) if current is not None else self._send(204, None)

        def do_POST(self) -> None:
            if self.path != "/apiops/gateway/ack/" or not self._authorized():
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with manager.changed:
                manager.acks.append(body)
                manager.changed.notify_all()
            self._send(200, {"ok": True})

        def do_DELETE(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/apiops/gateway/sync/" or not self._authorized():
                return
            with manager.changed:
                manager.goodbyes.append(parse_qs(url.query)["node"][0])
                manager.changed.notify_all()
            self._send(204, None)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def manager_double(port: int = 0) -> Iterator[ManagerDouble]:
    httpd = ThreadingHTTPServer(("127.0.0.1", port), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    manager = ManagerDouble(httpd)
    httpd.RequestHandlerClass = _manager_handler(manager)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield manager
    finally:
        if not manager.dead:
            manager.kill()
        thread.join(timeout=5)


@pytest.fixture
def manager() -> Iterator[ManagerDouble]:
    with manager_double() as m:
        yield m


# --- running a node ----------------------------------------------------------------------


class RunningNode:
    """A GatewayNode on its own event loop in a thread, so tests can use blocking clients."""

    def __init__(self, config: NodeConfig, driver: Driver | None = None) -> None:
        self.node = GatewayNode(config, FAST, driver=driver)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self.node.run())
        except BaseException as exc:
            self.error = exc

    def start(self) -> RunningNode:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.node.started.is_set():
            assert self.error is None, self.error
            assert time.monotonic() < deadline, "node did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.node.stop_threadsafe()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "node did not stop"
        if self.error is not None:
            raise self.error

    @property
    def port(self) -> int:
        address = self.node.listen_address
        assert address is not None, "the node has no TLS listener"
        return address.port

    def status(self) -> dict[str, Any]:
        address = self.node.status_address
        response = httpx.get(f"http://{address.host}:{address.port}/status", timeout=5)
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    def wait_status(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while True:
            status = self.status()
            if predicate(status):
                return status
            assert time.monotonic() < deadline, f"status never matched: {status}"
            time.sleep(0.02)

    def wait_revision(self, revision: int) -> dict[str, Any]:
        return self.wait_status(lambda s: s["appliedRevision"] == revision)


def node_config(manager_url: str, data_dir: Path, name: str = "node-1") -> NodeConfig:
    return NodeConfig(
        environment=ENV,
        manager=manager_url,
        token=Secret(TOKEN.encode()),
        listen=HostPort("127.0.0.1", 0),
        status_listen=HostPort("127.0.0.1", 0),
        data_dir=data_dir,
        name=name,
    )


@contextmanager
def running(config: NodeConfig) -> Iterator[RunningNode]:
    node = RunningNode(config).start()
    try:
        yield node
    finally:
        node.stop()


# --- clients -------------------------------------------------------------------------------


def client_context(
    m: Material,
    client: certs.Issued | None = None,
    max_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=m.server_ca.pem.decode())
    context.maximum_version = max_version
    if client is not None:
        stem = m.work / f"client-{client.cert.serial_number:x}"
        cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert_path.write_bytes(client.pem)
        key_path.write_bytes(client.key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    server_cert_der: bytes


def get(conn: http.client.HTTPSConnection, path: str) -> Answer:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    assert conn.sock is not None
    peer = conn.sock.getpeercert(binary_form=True)
    assert peer is not None
    return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body, peer)


@contextmanager
def connect(port: int, context: ssl.SSLContext) -> Iterator[http.client.HTTPSConnection]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    try:
        yield conn
    finally:
        conn.close()


def fetch(port: int, context: ssl.SSLContext, path: str) -> Answer:
    with connect(port, context) as conn:
        return get(conn, path)


def refused(port: int, make_context: Callable[[ssl.TLSVersion], ssl.SSLContext]) -> None:
    """The node refuses this client's certificate in the TLS handshake, with an alert.

    With TLS 1.2 the client's own handshake call fails. With TLS 1.3 the client finishes
    its side of the handshake before the server checks the client certificate, so the
    refusal arrives on its first read. Either way it is OpenSSL's ``unknown ca`` alert,
    not a bare EOF or reset.
    """
    tls12 = make_context(ssl.TLSVersion.TLSv1_2)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError, match="TLSV1_ALERT_UNKNOWN_CA"):
            tls12.wrap_socket(raw, server_hostname="127.0.0.1")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with make_context(ssl.TLSVersion.TLSv1_3).wrap_socket(
            raw, server_hostname="127.0.0.1"
        ) as tls:
            with pytest.raises(ssl.SSLError, match="TLSV1_ALERT_UNKNOWN_CA"):
                tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                data = tls.recv(1024)
                pytest.fail(f"the server answered instead of refusing: {data!r}")


@dataclass
class SClient:
    """What ``openssl s_client -msg`` saw of one connection."""

    output: str

    @property
    def acceptable_ca_names(self) -> list[str]:
        lines = self.output.splitlines()
        if "Acceptable client certificate CA names" not in lines:
            return []
        names = []
        for line in lines[lines.index("Acceptable client certificate CA names") + 1 :]:
            if not line.strip() or (":" in line and "=" not in line.split(":", 1)[0]):
                break
            names.append(line.strip())
        return names

    @property
    def alerts_received(self) -> list[str]:
        return re.findall(r"^<<< TLS [0-9.]+, Alert \[length [0-9a-f]+\], (.+)$", self.output, re.M)


def s_client(port: int, m: Material, client: certs.Issued | None, version: str) -> SClient:
    """Run the real OpenSSL client against the node: a GET, then wait for the answer."""
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", f"-{version}", "-msg"]
    args += ["-CAfile", str(write(m.work / "server-ca.pem", m.server_ca.pem)), "-ign_eof"]
    if client is not None:
        stem = m.work / f"s-client-{client.cert.serial_number:x}"
        args += ["-cert", str(write(stem.with_suffix(".crt"), client.pem))]
        args += ["-key", str(write(stem.with_suffix(".key"), client.key_pem))]
    result = subprocess.run(
        args,
        input=b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        capture_output=True,
        timeout=20,
    )
    return SClient(result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace"))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


# --- tests -----------------------------------------------------------------------------------


def test_applies_acks_and_serves_jwks_and_mtls(
    manager: ManagerDouble, material: Material, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    manager.publish(snapshot(material, 1))
    with running(node_config(manager.url, tmp_path)) as node:
        status = node.wait_revision(1)
        ack = manager.wait_ack(lambda a: a["revision"] == 1)
        assert ack["error"] is None
        assert ack["node"] == "node-1"
        assert ack["listen"] == f"127.0.0.1:{node.port}" == status["listen"]
        assert (
            ack["fingerprints"]
            == status["fingerprints"]
            == {
                "serverCertificateSha256": sha256(material.server.der),
                "truststoreSha256": [sha256(material.client_ca_a.der)],
                "jwkKids": ["ec-1", "ed-1"],
            }
        )
        assert manager.polls[0] == {"wait": "2", "node": "node-1"}
        assert status["environment"] == ENV
        assert status["node"] == "node-1"
        assert status["tlsServing"] is True
        assert status["managerReachable"] is True
        assert status["lastError"] is None
        assert status["lastSyncAt"].endswith("Z")

        # The JWK Set: public parts only, with a cache header; no client certificate needed.
        answer = fetch(node.port, client_context(material), "/.well-known/jwks.json")
        assert answer.status == 200
        assert answer.headers["cache-control"] == "public, max-age=60"
        assert answer.headers["content-type"] == "application/json"
        assert answer.server_cert_der == material.server.der
        keys = json.loads(answer.body)["keys"]
        assert [k["kid"] for k in keys] == ["ec-1", "ed-1"]
        for key in keys:
            assert not set(key) & (PRIVATE_MEMBERS | {"k"}), key
        assert keys[0]["x"] == material.jwks[0]["x"]
        assert b"hmac-1" not in answer.body

        # mTLS: a client of the truststore's CA is greeted by its DN.
        hello = fetch(node.port, client_context(material, material.client_a), "/")
        assert (hello.status, hello.body) == (200, b"hello CN=client-a, O=Acme")
        assert hello.headers["content-type"].startswith("text/plain")
        # No client certificate: the connection is fine, but / is forbidden.
        assert fetch(node.port, client_context(material), "/").status == 403
        assert fetch(node.port, client_context(material), "/nope").status == 404

        # A client certificate from another CA (deployed to a non-admin project) is refused.
        refused(node.port, lambda v: client_context(material, material.client_b, v))
        assert "handshake" in caplog.text and "CERTIFICATE_VERIFY_FAILED" in caplog.text


def test_client_ca_and_server_identity_rotate_for_new_connections_only(
    manager: ManagerDouble, material: Material, tmp_path: Path
) -> None:
    manager.publish(snapshot(material, 1))
    with running(node_config(manager.url, tmp_path)) as node:
        node.wait_revision(1)
        old_client = client_context(material, material.client_a)
        with connect(node.port, old_client) as opened_before:
            first = get(opened_before, "/")
            assert first.status == 200
            assert first.server_cert_der == material.server.der

            # A new CA for clients and a new server certificate, in one snapshot.
            manager.publish(
                snapshot(material, 2, keystore=material.keystore2, trusted=(material.client_ca_c,))
            )
            status = node.wait_revision(2)
            manager.wait_ack(lambda a: a["revision"] == 2 and a["error"] is None)
            assert status["fingerprints"]["serverCertificateSha256"] == sha256(material.server2.der)
            assert status["fingerprints"]["truststoreSha256"] == [sha256(material.client_ca_c.der)]

            # New connections follow the new snapshot...
            refused(node.port, lambda v: client_context(material, material.client_a, v))
            new = fetch(node.port, client_context(material, material.client_c), "/")
            assert (new.status, new.body) == (200, b"hello CN=client-c, O=Acme")
            assert new.server_cert_der == material.server2.der

            # ...while the connection opened before the swap keeps its handshake.
            again = get(opened_before, "/")
            assert (again.status, again.body) == (200, b"hello CN=client-a, O=Acme")
            assert again.server_cert_der == material.server.der


def test_bad_snapshot_keeps_the_old_one_and_acks_the_error(
    manager: ManagerDouble, material: Material, tmp_path: Path
) -> None:
    manager.publish(snapshot(material, 1))
    with running(node_config(manager.url, tmp_path)) as node:
        node.wait_revision(1)
        manager.publish(snapshot(material, 2, alias="missing", keystore=material.keystore2))
        ack = manager.wait_ack(lambda a: a["error"] is not None)
        assert ack["revision"] == 1
        assert "alias (missing)" in ack["error"]
        assert ack["fingerprints"]["serverCertificateSha256"] == sha256(material.server.der)
        status = node.status()
        assert status["appliedRevision"] == 1
        assert "alias (missing)" in status["lastError"]
        assert fetch(node.port, client_context(material), "/").server_cert_der == (
            material.server.der
        )
        # The refused revision is not asked for again; the next one applies.
        deadline = time.monotonic() + 5
        while manager.polls[-1]["since"] != "2":
            assert time.monotonic() < deadline, manager.polls
            time.sleep(0.02)
        polls = len(manager.polls)
        time.sleep(0.3)
        assert len(manager.polls) == polls  # one long poll held, no spinning
        manager.publish(snapshot(material, 3, keystore=material.keystore2))
        node.wait_revision(3)
        assert manager.wait_ack(lambda a: a["revision"] == 3)["error"] is None
        assert node.status()["lastError"] is None


def test_survives_the_manager_restarts_from_disk_and_catches_up(
    material: Material, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    with manager_double() as manager:
        port = manager.httpd.server_address[1]
        manager.publish(snapshot(material, 1))
        node = RunningNode(node_config(manager.url, tmp_path)).start()
        node.wait_revision(1)
        manager.wait_ack(lambda a: a["revision"] == 1)
        manager.kill()
        status = node.wait_status(lambda s: s["managerReachable"] is False)
        assert status["appliedRevision"] == 1
        assert "manager unreachable" in status["lastError"]
        jwks = fetch(node.port, client_context(material), "/.well-known/jwks.json")
        assert jwks.status == 200
        assert fetch(node.port, client_context(material, material.client_a), "/").status == 200
        node.stop()

    # What is on disk: the node key (0600) and a sealed snapshot with nothing in clear.
    key_file, snapshot_file = tmp_path / NODE_KEY_FILE, tmp_path / SNAPSHOT_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert snapshot_file.stat().st_mode & 0o777 == 0o600
    stored = snapshot_file.read_bytes()
    assert json.loads(stored)["revision"] == 1
    for secret in material.secrets():
        assert secret not in stored

    # A node restarted while the manager is down serves the saved snapshot.
    restarted = RunningNode(node_config(f"http://127.0.0.1:{port}", tmp_path)).start()
    try:
        status = restarted.status()
        assert status["appliedRevision"] == 1
        assert status["source"] == "disk"
        assert status["managerReachable"] is False
        assert status["fingerprints"]["serverCertificateSha256"] == sha256(material.server.der)
        hello = fetch(restarted.port, client_context(material, material.client_a), "/")
        assert hello.status == 200

        # The manager comes back with a newer revision: the node reports and catches up.
        with manager_double(port) as back:
            back.publish(snapshot(material, 4, keystore=material.keystore2))
            restarted.wait_revision(4)
            assert back.wait_ack(lambda a: a["revision"] == 4)["error"] is None
            assert back.polls[0]["since"] == "1"
            status = restarted.wait_status(lambda s: s["managerReachable"])
            assert status["source"] == "manager"
            assert status["lastError"] is None
            assert fetch(restarted.port, client_context(material), "/").server_cert_der == (
                material.server2.der
            )
    finally:
        restarted.stop()

    logged = caplog.text.encode()
    for secret in material.secrets():
        assert secret not in logged


def test_refused_credential_is_reported_and_retried(
    manager: ManagerDouble, material: Material, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manager.publish(snapshot(material, 1))
    config = dataclasses.replace(node_config(manager.url, tmp_path), token=Secret(b"wrong"))
    with running(config) as node:
        status = node.wait_status(lambda s: s["lastError"] is not None)
        assert "401" in status["lastError"] and "unknown node" in status["lastError"]
        assert status["appliedRevision"] is None
        assert status["tlsServing"] is False
        deadline = time.monotonic() + 5
        while manager.refused < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # Without a server identity the listener accepts nothing.
        with pytest.raises((ssl.SSLError, ConnectionError)):
            fetch(node.port, client_context(material), "/")
    assert "refused the node credential" in caplog.text
    assert "wrong" not in caplog.text


def test_cli_subprocess_serves_and_says_goodbye_on_sigterm(
    manager: ManagerDouble, material: Material, tmp_path: Path
) -> None:
    manager.publish(snapshot(material, 7))
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    listen, status_port = ports
    command = [
        sys.executable, "-m", "keyops.gateway",
        "--environment", ENV, "--manager", manager.url,
        "--listen", f"127.0.0.1:{listen}", "--status-listen", f"127.0.0.1:{status_port}",
        "--data-dir", str(tmp_path / "data"),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        env={**os.environ, "KEYOPS_GATEWAY_TOKEN": TOKEN, "KEYOPS_LOG_LEVEL": "DEBUG"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        ack = manager.wait_ack(lambda a: a["revision"] == 7)
        assert ack["node"] == f"{socket.gethostname()}-{listen}"
        status = httpx.get(f"http://127.0.0.1:{status_port}/status", timeout=5).json()
        assert status["appliedRevision"] == 7
        hello = fetch(listen, client_context(material, material.client_a), "/")
        assert hello.body == b"hello CN=client-a, O=Acme"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert manager.goodbyes == [ack["node"]]
    assert b"applied revision 7" in stderr
    for secret in [*material.secrets(), TOKEN.encode()]:
        assert secret not in stderr


def test_unknown_client_ca_gets_an_alert_and_the_request_names_the_truststore(
    manager: ManagerDouble, material: Material, tmp_path: Path
) -> None:
    manager.publish(snapshot(material, 1))
    with running(node_config(manager.url, tmp_path)) as node:
        node.wait_revision(1)
        for version in ("tls1_2", "tls1_3"):
            # A client certificate from a CA the truststore does not hold: OpenSSL's alert.
            seen = s_client(node.port, material, material.client_b, version)
            assert seen.alerts_received == ["fatal unknown_ca"], seen.output
            assert "alert unknown ca" in seen.output
            assert seen.acceptable_ca_names == ["O = Acme, CN = Client CA A"], seen.output
            assert '"keys"' not in seen.output

            # A client of the truststore's CA gets its answer, with no alert.
            seen = s_client(node.port, material, material.client_a, version)
            assert '"keys"' in seen.output, seen.output
            assert "fatal" not in "".join(seen.alerts_received)
            assert seen.acceptable_ca_names == ["O = Acme, CN = Client CA A"]

        # After a truststore rotation, new connections name the new CAs.
        manager.publish(snapshot(material, 2, trusted=(material.client_ca_c, material.client_ca_a)))
        node.wait_revision(2)
        seen = s_client(node.port, material, None, "tls1_3")
        assert seen.acceptable_ca_names == [
            "O = Acme, CN = Client CA C",
            "O = Acme, CN = Client CA A",
        ], seen.output
        assert '"keys"' in seen.output
        assert s_client(node.port, material, material.client_a, "tls1_2").alerts_received in (
            [],
            ["warning close_notify"],
        )
