"""Real gateway clusters on loopback: a ``keyops serve`` manager process, gateway node
processes (``python -m keyops.gateway``), the admin API calls that drive them, the
certificates, keystores and TLS clients that talk to the nodes, and HAProxy and nginx
processes serving a node's output directory (the generic TLS client is in tls_client.py).

Used by the gateway tests and by bench/fanout.py and bench/gateway_rollout.py, so
nothing here imports pytest. Every process is started on free loopback ports with its
own data directory and log file; ``gateway_cluster`` stops every process it started,
whatever happens. Waiting is always ``until(...)`` with a deadline, never a blind sleep.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keyops.gateway.drivers.haproxy_api import RuntimeApi
from tests.crypto import certs
from tests.support.server import TEST_MASTER_KEY, free_port
from tests.support.tls_client import Answer, https_get

T = TypeVar("T")

ADMIN_PASSWORD = "gateway-e2e-admin-pw-1"
ADMIN_PROJECT = "admin"
STORE_PASSWORD = "gw-e2e-store-pass"
TLS_KEYSTORE = "gw-tls"
TLS_ALIAS = "server"
JWKS_PATH = "/.well-known/jwks.json"

# The small timeouts the gateway runtime is exercised with.
FAST_ENV = {
    "KEYOPS_DEPLOY_TIMEOUT_SECONDS": "3",
    "KEYOPS_GATEWAY_NODE_TTL_SECONDS": "15",
    "KEYOPS_GATEWAY_POLL_SECONDS": "5",
}


# --- waiting -------------------------------------------------------------------------------


def until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str | Callable[[], str],
    interval: float = 0.1,
) -> T:
    """Call ``check`` until it returns something other than None/False; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"not within {timeout:g} s: {text}")
        time.sleep(interval)


def _stop_process(process: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    """SIGCONT (a frozen process can not act on SIGTERM), SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGCONT)
        process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _kill_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


# --- the manager ----------------------------------------------------------------------------


@dataclass
class ManagerProcess:
    """``keyops serve`` on a fixed loopback port, so it can be restarted where it was."""

    database_url: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    admin_password: str = ADMIN_PASSWORD
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"serve-{self.port}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, *, timeout: float = 60.0) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        env = {
            **os.environ,
            "KEYOPS_DATABASE_URL": self.database_url,
            "KEYOPS_DATA_DIR": str(self.data_dir),
            "KEYOPS_ADMIN_PASSWORD": self.admin_password,
            "KEYOPS_LOG_LEVEL": "warning",
            "KEYOPS_MASTER_KEY": TEST_MASTER_KEY,
            **self.extra_env,
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "keyops", "serve", "--port", str(self.port), "--demo"]
        with self.log_path.open("ab") as log:
            log.write(f"--- start #{self.starts + 1}\n".encode())
            log.flush()
            self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        process = self.process

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"keyops serve exited early:\n{self.log()}")
            try:
                url = f"{self.base_url}/apiops/test/healthcheck"
                return httpx.get(url, timeout=1).text == "OK"
            except httpx.HTTPError:
                return False

        until(healthy, timeout=timeout, what=lambda: f"keyops serve up\n{self.log()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: an outage, nothing is said to anyone."""
        if self.process is not None:
            _kill_process(self.process)

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process, grace=15)


# --- gateway nodes ---------------------------------------------------------------------------


@dataclass
class NodeProcess:
    """One ``python -m keyops.gateway`` process; ports and data dir survive a restart."""

    environment: str
    manager_url: str
    token: str
    name: str
    data_dir: Path
    listen_port: int = field(default_factory=free_port)
    status_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    frozen: bool = False
    # More options (a driver's); with ``listen=False`` the node runs ``--listen none``.
    args: Sequence[str] = ()
    listen: bool = True

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, timeout: float = 30.0) -> None:
        """Start the process and wait until its status endpoint answers."""
        assert self.process is None or self.process.poll() is not None, "already running"
        listen = f"127.0.0.1:{self.listen_port}" if self.listen else "none"
        command = [
            sys.executable, "-m", "keyops.gateway",
            "--environment", self.environment, "--manager", self.manager_url,
            "--listen", listen,
            "--status-listen", f"127.0.0.1:{self.status_port}",
            "--data-dir", str(self.data_dir), "--name", self.name,
            *self.args,
        ]  # fmt: skip
        env = {**os.environ, "KEYOPS_GATEWAY_TOKEN": self.token, "KEYOPS_LOG_LEVEL": "INFO"}
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.frozen = False
        process = self.process

        def answering() -> dict[str, Any] | None:
            if process.poll() is not None:
                raise RuntimeError(f"node {self.name} exited early:\n{self.log()}")
            try:
                return self.status(timeout=1)
            except httpx.HTTPError:
                return None

        until(answering, timeout=timeout, what=lambda: f"node {self.name} up\n{self.log()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def status(self, *, timeout: float = 5.0) -> dict[str, Any]:
        r = httpx.get(f"http://127.0.0.1:{self.status_port}/status", timeout=timeout)
        r.raise_for_status()
        document: dict[str, Any] = r.json()
        return document

    def wait_status(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float, what: str
    ) -> dict[str, Any]:
        seen: list[dict[str, Any]] = []

        def check() -> dict[str, Any] | None:
            try:
                status = self.status(timeout=2)
            except httpx.HTTPError:
                return None
            seen[:] = [status]
            return status if predicate(status) else None

        return until(
            check,
            timeout=timeout,
            what=lambda: f"node {self.name}: {what}; last status {seen}\n{self.log()[-4000:]}",
        )

    def wait_revision(self, revision: int, *, timeout: float = 20.0) -> dict[str, Any]:
        return self.wait_status(
            lambda s: s["appliedRevision"] == revision,
            timeout=timeout,
            what=f"appliedRevision {revision}",
        )

    def kill(self) -> None:
        """SIGKILL: no goodbye, so the manager still counts the node until its TTL."""
        if self.process is not None:
            _kill_process(self.process)

    def freeze(self) -> None:
        """SIGSTOP: the open long poll stays, the node never answers or acknowledges."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        """SIGTERM (after SIGCONT): a clean stop that says goodbye; SIGKILL if it hangs."""
        if self.process is not None:
            _stop_process(self.process)
        self.frozen = False


# --- the admin API ----------------------------------------------------------------------------


class Api:
    """The manager's REST API as the admin user (logs in again after a manager restart)."""

    def __init__(self, base_url: str, password: str = ADMIN_PASSWORD) -> None:
        self.base_url = base_url
        self.password = password
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.token: str | None = None

    def close(self) -> None:
        self.http.close()

    def login(self) -> None:
        r = self.http.post(
            "/apiops/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "admin",
                "client_secret": self.password,
            },
        )
        assert r.status_code == 200, r.text
        self.token = r.json()["access_token"]

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.token is None:
            self.login()
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
            r = self.http.request(method, path, headers=headers, **kwargs)
            if r.status_code != 401 or attempt:
                return r
            self.login()
        raise AssertionError("unreachable")

    def ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        r = self.request(method, path, **kwargs)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        body: dict[str, Any] = r.json()
        return body

    def deploy(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A call that deploys: its ``deploymentResult``."""
        result: dict[str, Any] = self.ok(method, path, **kwargs)["deploymentResult"]
        return result

    # environments and nodes

    def create_environment(self, name: str, *, projects: Sequence[str] = ()) -> None:
        self.ok(
            "POST",
            "/apiops/admin/environments/",
            json={"name": name, "type": "TEST", "projects": list(projects)},
        )

    def node_token(self, environment: str, name: str) -> str:
        body = self.ok(
            "POST", f"/apiops/admin/environments/{environment}/node-tokens/", json={"name": name}
        )
        token: str = body["result"]["token"]
        return token

    def environment_status(self, environment: str) -> str:
        listed = self.ok("GET", "/apiops/environments/")["resultList"]
        (status,) = [e["status"] for e in listed if e["name"] == environment]
        return str(status)

    def nodes(self, environment: str) -> dict[str, Any]:
        return self.ok("GET", f"/apiops/environments/{environment}/nodes/")

    def latest_revision(self, environment: str) -> int:
        return int(self.nodes(environment)["latestRevision"])

    # keys and secrets; each returns the deploymentResult

    def _cert_form(
        self, pem: bytes, environments: Sequence[str], alias: str, **extra: str
    ) -> dict[str, Any]:
        return {
            "data": {
                **extra,
                "alias": alias,
                "certificateDescription": "gateway e2e",
                "environmentList": ",".join(environments),
            },
            "files": {"pemEncodedFile": ("certificate.pem", pem, "application/x-pem-file")},
        }

    def create_certificate(
        self, project: str, name: str, pem: bytes, environments: Sequence[str]
    ) -> dict[str, Any]:
        form = self._cert_form(pem, environments, f"{name}-alias", certificateName=name)
        return self.deploy("POST", f"/apiops/projects/{project}/certificates/", **form)

    def update_certificate(
        self, project: str, name: str, pem: bytes, environments: Sequence[str]
    ) -> dict[str, Any]:
        form = self._cert_form(pem, environments, f"{name}-alias")
        return self.deploy("PUT", f"/apiops/projects/{project}/certificates/{name}/", **form)

    def create_keystore(
        self,
        project: str,
        name: str,
        environment: str,
        data: bytes,
        password: str,
        *,
        store_type: str = "PKCS12",
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "description": "gateway TLS identity",
            "keyStoreEnvironmentList": [
                {
                    "environmentName": environment,
                    "type": store_type,
                    "file": base64.b64encode(data).decode("ascii"),
                    "password": password,
                }
            ],
        }
        return self.deploy("POST", f"/apiops/projects/{project}/keystores/", json=body)

    def set_tls_identity(
        self, environment: str, project: str, keystore: str, alias: str
    ) -> dict[str, Any]:
        body = {"projectName": project, "keyStoreName": keystore, "aliasName": alias}
        return self.deploy(
            "PUT", f"/apiops/admin/environments/{environment}/tls-identity/", json=body
        )

    def generate_jwk(
        self, project: str, name: str, kty: str, kid: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        body = {"name": name, "type": kty, "kid": kid, kty.lower(): params}
        return self.deploy("POST", f"/apiops/projects/{project}/jwks/generate", json=body)

    def get_jwk(self, project: str, name: str) -> dict[str, Any]:
        (item,) = self.ok("GET", f"/apiops/projects/{project}/jwks/{name}/")["resultList"]
        jwk: dict[str, Any] = item["jwk"]
        return jwk

    def update_keystore(
        self,
        project: str,
        name: str,
        environment: str,
        data: bytes,
        password: str,
        *,
        store_type: str = "PKCS12",
    ) -> dict[str, Any]:
        """The keystore update endpoint: a new file for ``environment``."""
        body = {
            "description": "gateway TLS identity",
            "keyStoreEnvironmentList": [
                {
                    "environmentName": environment,
                    "type": store_type,
                    "file": base64.b64encode(data).decode("ascii"),
                    "password": password,
                }
            ],
        }
        return self.deploy("PUT", f"/apiops/projects/{project}/keystores/{name}/", json=body)

    def delete_jwk(self, project: str, name: str) -> dict[str, Any]:
        return self.deploy("DELETE", f"/apiops/projects/{project}/jwks/{name}/")


def environment_result(deployment: dict[str, Any], environment: str) -> dict[str, Any]:
    """The ``environmentResults`` entry of one environment."""
    found: list[dict[str, Any]] = [
        r for r in deployment["environmentResults"] if r["environmentName"] == environment
    ]
    assert len(found) == 1, deployment
    return found[0]


def applied_by_all(count: int, verb: str = "Deployed") -> str:
    return f"{verb} successfully; {count} of {count} gateway node(s) applied it"


# --- certificates and keystores ----------------------------------------------------------------


def issue(
    common_name: str,
    *,
    issuer: certs.Issued | None = None,
    ca: bool = False,
    server: bool = False,
) -> certs.Issued:
    """An EC P-256 certificate valid from an hour ago for a day (the clock is real)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    signer = issuer.key if issuer else key
    cert = builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]
    return certs.Issued(cert, key)


def pkcs12(work: Path, leaf: certs.Issued, chain: Sequence[certs.Issued], alias: str) -> bytes:
    """A PKCS#12 keystore (leaf key + chain) made by ``openssl pkcs12 -export``."""
    work.mkdir(parents=True, exist_ok=True)
    stem = work / f"{alias}-{leaf.cert.serial_number:x}"
    key_pem, cert_pem, chain_pem, out = (
        stem.with_suffix(s) for s in (".key", ".crt", ".ca", ".p12")
    )
    key_pem.write_bytes(leaf.key_pem)
    cert_pem.write_bytes(leaf.pem)
    chain_pem.write_bytes(b"".join(c.pem for c in chain))
    certs.openssl(
        "pkcs12", "-export", "-inkey", str(key_pem), "-in", str(cert_pem),
        "-certfile", str(chain_pem), "-name", alias, "-passout", f"pass:{STORE_PASSWORD}",
        "-out", str(out),
    )  # fmt: skip
    return out.read_bytes()


@dataclass
class Pki:
    """The server CA and server identity nodes present, and client CAs with a client each."""

    work: Path
    server_ca: certs.Issued
    server: certs.Issued
    keystore: bytes  # PKCS#12, alias TLS_ALIAS -> server (+ server_ca)
    client_cas: dict[str, certs.Issued] = field(default_factory=dict)
    clients: dict[str, certs.Issued] = field(default_factory=dict)

    @classmethod
    def create(cls, work: Path) -> Pki:
        server_ca = issue("Gateway Server CA", ca=True)
        server = issue("gw.example", issuer=server_ca, server=True)
        return cls(work, server_ca, server, pkcs12(work, server, [server_ca], TLS_ALIAS))

    def client_ca(self, label: str) -> certs.Issued:
        """A client CA and one client it signed (CN=client-<label>), made on first use."""
        if label not in self.client_cas:
            ca = issue(f"Client CA {label}", ca=True)
            self.client_cas[label] = ca
            self.clients[label] = issue(f"client-{label}", issuer=ca)
        return self.client_cas[label]

    def client(self, label: str) -> certs.Issued:
        self.client_ca(label)
        return self.clients[label]

    def context(
        self,
        client: str | None = None,
        *,
        max_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
    ) -> ssl.SSLContext:
        """A client context trusting the server CA, presenting ``client``'s certificate."""
        context = ssl.create_default_context(cadata=self.server_ca.pem.decode("ascii"))
        context.maximum_version = max_version
        if client is not None:
            issued = self.client(client)
            stem = self.work / f"client-{client}-{issued.cert.serial_number:x}"
            cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
            if not cert_path.exists():
                cert_path.write_bytes(issued.pem)
                key_path.write_bytes(issued.key_pem)
            context.load_cert_chain(cert_path, key_path)
        return context


# --- talking TLS to a node ----------------------------------------------------------------------


def hello(port: int, pki: Pki, client: str) -> str:
    """The node's answer to ``GET /`` over mTLS with ``client``'s certificate (200 only)."""
    answer = https_get(port, pki.context(client), "/")
    assert answer.status == 200, (answer.status, answer.body)
    assert answer.server_cert_der == pki.server.der
    return answer.body.decode("utf-8")


def accepted(port: int, pki: Pki, client: str) -> bool:
    """True when ``client`` completes mTLS on a new connection and is greeted."""
    try:
        return hello(port, pki, client) == f"hello CN=client-{client}, O=Acme"
    except (ssl.SSLError, ConnectionError, OSError, http.client.HTTPException, AssertionError):
        return False


def refused(port: int, pki: Pki, client: str) -> bool:
    """True when the node refuses ``client``'s certificate on new connections.

    With TLS 1.2 the client's own handshake fails. With TLS 1.3 the client finishes its
    side first, so the refusal is the connection ending before any HTTP answer.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with pki.context(client, max_version=ssl.TLSVersion.TLSv1_2).wrap_socket(
                raw, server_hostname="127.0.0.1"
            ):
                return False
        except (ssl.SSLError, ConnectionError):
            pass
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        data = b""
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            with pki.context(client, max_version=ssl.TLSVersion.TLSv1_3).wrap_socket(
                raw, server_hostname="127.0.0.1"
            ) as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n")
                data = tls.recv(1024)
        return data == b""


def jwks(port: int, pki: Pki) -> tuple[Answer, dict[str, Any]]:
    """The node's JWK Set over TLS, no client certificate (the server CA is trusted)."""
    answer = https_get(port, pki.context(None), JWKS_PATH)
    assert answer.status == 200, (answer.status, answer.body)
    document: dict[str, Any] = json.loads(answer.body)
    return answer, document


# --- real gateways: HAProxy and nginx on loopback ------------------------------------------------

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None
)
NGINX = shutil.which("nginx") or (
    "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
)


def haproxy_conf(socket_path: str, port: int, bind: str) -> str:
    """An admin stats socket and one TLS frontend on 127.0.0.1:``port`` with the ``bind``
    options (``crt ... ca-file ... verify optional``), answering ``hello <client CN>``."""
    return f"""\
global
    stats socket {socket_path} level admin

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

frontend tls
    bind 127.0.0.1:{port} ssl {bind}
    http-request return status 200 content-type text/plain lf-string "hello %[ssl_c_s_dn(CN)]"
"""


def nginx_conf(
    root: Path, port: int, *, identity: Path, truststore: Path, jwks: Path, broken: bool = False
) -> str:
    """A foreground-friendly nginx.conf: pid, error log and temp paths under ``root``, one
    TLS server on 127.0.0.1:``port`` with ``identity``.crt/.key, ``ssl_client_certificate``
    ``truststore`` (verify optional), ``/.well-known/jwks.json`` from ``jwks``, and ``/``
    answering ``hello <client DN>`` or 403 ``client <verify result>``. ``broken`` adds a
    directive nginx -t refuses."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {root}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    extra = "    this_is_not_a_directive on;\n" if broken else ""
    return f"""{user}worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp}
{extra}    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {identity}.crt;
        ssl_certificate_key {identity}.key;
        ssl_client_certificate {truststore};
        ssl_verify_client optional;
        location = /.well-known/jwks.json {{
            default_type application/json;
            alias {jwks};
        }}
        location / {{
            default_type text/plain;
            if ($ssl_client_verify != SUCCESS) {{ return 403 "client $ssl_client_verify"; }}
            return 200 "hello $ssl_client_s_dn";
        }}
    }}
}}
"""


@dataclass
class HaproxyProcess:
    """Debian's ``haproxy`` in the foreground (``-db``) with ``root/haproxy.cfg``; its
    runtime API at ``root/admin.sock`` (the configuration must name it)."""

    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> str:
        return str(self.root / "admin.sock")

    def log(self) -> str:
        path = self.root / "haproxy.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, config: str, *, timeout: float = 15.0) -> None:
        """Write ``config`` and start; ready when the TLS port and the socket are there."""
        assert HAPROXY is not None, "haproxy is not installed"
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "haproxy.cfg"
        path.write_text(config)
        with (self.root / "haproxy.log").open("ab") as log:
            self.process = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(path)], stdout=log, stderr=subprocess.STDOUT
            )
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"haproxy exited early:\n{self.log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return os.path.exists(self.socket)
            return False

        until(up, timeout=timeout, what=lambda: f"haproxy up\n{self.log()}")

    def cli(self, *args: str, payload: bytes | None = None) -> str:
        """One runtime API command through the unix socket; HAProxy's answer."""
        return asyncio.run(RuntimeApi(self.socket).execute(*args, payload=payload))

    def pid(self) -> int:
        """HAProxy's own idea of its process id (``show info``)."""
        answer = self.cli("show", "info")
        info = dict(line.split(": ", 1) for line in answer.splitlines() if ": " in line)
        return int(info["Pid"])

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process)


@dataclass
class NginxProcess:
    """nginx as a foreground master (``-g 'daemon off;'``) with ``root/nginx.conf``."""

    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"

    def write_conf(self, text: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(text)

    def log(self) -> str:
        """The error log (``nginx_conf`` puts it at ``root/error.log``)."""
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, client_context: ssl.SSLContext, *, timeout: float = 15.0) -> None:
        """Start on the written configuration; ready once a TLS GET with
        ``client_context`` gets an answer."""
        assert NGINX is not None, "nginx is not installed"
        self.process = subprocess.Popen(
            [NGINX, "-c", str(self.conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        process = self.process

        def serving() -> bool:
            if process.poll() is not None:
                assert process.stderr is not None
                raise RuntimeError(f"nginx exited: {process.stderr.read()!r}\n{self.log()}")
            with contextlib.suppress(OSError):
                return bool(https_get(self.port, client_context, "/").status)
            return False

        until(serving, timeout=timeout, what=lambda: f"nginx serving on {self.port}\n{self.log()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def reloads(self) -> int:
        return self.log().count("signal 1 (SIGHUP) received")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful shutdown
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


# --- a whole cluster ----------------------------------------------------------------------------


@dataclass
class Cluster:
    root: Path
    manager: ManagerProcess
    api: Api
    environment: str
    token: str
    nodes: list[NodeProcess]

    def add_node(
        self,
        name: str,
        *,
        environment: str | None = None,
        args: Sequence[str] = (),
        listen: bool = True,
    ) -> NodeProcess:
        (node,) = self.add_nodes([name], environment=environment, args=args, listen=listen)
        return node

    def add_nodes(
        self,
        names: Sequence[str],
        *,
        environment: str | None = None,
        args: Sequence[str] = (),
        listen: bool = True,
    ) -> list[NodeProcess]:
        """Node processes of ``environment`` (default the cluster's), started side by side;
        ``args`` are more options for each (a driver's), ``listen=False`` is ``--listen none``."""
        env = environment or self.environment
        token = self.token if env == self.environment else self.api.node_token(env, "e2e-nodes")
        nodes = [
            NodeProcess(
                environment=env,
                manager_url=self.manager.base_url,
                token=token,
                name=name,
                data_dir=self.root / "nodes" / name,
                args=tuple(args),
                listen=listen,
            )
            for name in names
        ]
        self.nodes.extend(nodes)  # before starting: cleanup must find every process
        with ThreadPoolExecutor(max(1, len(nodes))) as pool:
            for future in [pool.submit(node.start) for node in nodes]:
                future.result()
        return nodes

    def wait_connected(self, nodes: Sequence[NodeProcess], *, timeout: float = 20.0) -> None:
        """Every node has synced with the manager and the manager lists it as connected."""
        for node in nodes:
            node.wait_status(
                lambda s: s["managerReachable"] and s["appliedRevision"] is not None,
                timeout=timeout,
                what="synced with the manager",
            )
        by_env: dict[str, set[str]] = {}
        for node in nodes:
            by_env.setdefault(node.environment, set()).add(node.name)
        for env, names in by_env.items():

            def listed(env: str = env, names: set[str] = names) -> bool:
                rows = self.api.nodes(env)["resultList"]
                return names <= {r["name"] for r in rows if r["connected"]}

            until(listed, timeout=timeout, what=f"nodes {sorted(names)} connected to {env}")

    def logs(self) -> str:
        parts = [f"=== manager\n{self.manager.log()[-6000:]}"]
        parts += [f"=== {n.name}\n{n.log()[-4000:]}" for n in self.nodes]
        return "\n".join(parts)


@contextmanager
def gateway_cluster(
    database_url: str,
    root: Path,
    *,
    environment: str = "edge",
    node_names: Sequence[str] = ("gw-a", "gw-b"),
    extra_env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """A manager, an environment open to every project, its node credential and nodes.

    Nodes are stopped first (SIGCONT + SIGTERM, SIGKILL if they hang), then the manager.
    """
    manager = ManagerProcess(
        database_url=database_url,
        data_dir=root / "manager",
        extra_env={**FAST_ENV, **(extra_env or {})},
    )
    api = Api(manager.base_url)
    cluster: Cluster | None = None
    try:
        manager.start()
        api.create_environment(environment)
        token = api.node_token(environment, "e2e-nodes")
        cluster = Cluster(root, manager, api, environment, token, [])
        cluster.add_nodes(node_names)
        cluster.wait_connected(cluster.nodes)
        yield cluster
    finally:
        api.close()
        for node in cluster.nodes if cluster is not None else []:
            with contextlib.suppress(Exception):
                node.stop()
        manager.stop()


@contextmanager
def manager_replicas(
    database_url: str, root: Path, count: int, *, extra_env: dict[str, str] | None = None
) -> Iterator[list[ManagerProcess]]:
    """``count`` ``keyops serve`` replicas on one database, started one after the other
    (the first runs the migrations), each on its own port; all stopped afterwards."""
    replicas = [
        ManagerProcess(
            database_url=database_url,
            data_dir=root / f"manager-{index}",
            extra_env={**FAST_ENV, **(extra_env or {})},
        )
        for index in range(count)
    ]
    try:
        for replica in replicas:
            replica.start()
        yield replicas
    finally:
        for replica in replicas:
            with contextlib.suppress(Exception):
                replica.stop()
