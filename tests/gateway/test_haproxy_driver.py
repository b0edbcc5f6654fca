"""``HaproxyDriver`` against a real HAProxy on loopback, checked from outside over TLS.

Each test starts Debian's ``haproxy`` (2.6 in CI) in the foreground with a temporary
configuration: two admin stats sockets (a unix socket and ``ipv4@127.0.0.1:PORT``), one
TLS ``bind`` naming ``out/tls/p/ks/a.pem`` as its default certificate, the directory
``out/tls/p/dir/`` (HAProxy handles a directory as a crt-list), a certificate outside
the output directory and an empty crt-list file, with ``ca-file out/truststore.pem
verify optional``; it answers ``hello <client CN>``. The test writes files into
``out/`` the way the output writer does (a file at a time through ``os.replace``), calls
``activate`` with the ``Change`` and looks with the standard library's ``ssl`` client:
which certificate new handshakes get, which client certificates are accepted, that an
open keep-alive connection still works and that HAProxy's process id did not change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import ipaddress
import os
import socket
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keyops.gateway.drivers.base import Change, DriverError
from keyops.gateway.drivers.haproxy import HaproxyDriver
from keyops.gateway.drivers.haproxy_api import RuntimeApiAddress, parse_address, quote_arg
from tests.crypto import certs
from tests.support.databases import in_ci
from tests.support.gateway_nodes import HAPROXY, HaproxyProcess, Pki, issue, refused
from tests.support.server import free_port
from tests.support.tls_client import greeting
from tests.support.tls_client import presented as presented_at

IDENTITY = "tls/p/ks/a.pem"
TRUSTSTORE = "truststore.pem"


@pytest.fixture(scope="module", autouse=True)
def _haproxy_installed() -> None:
    if HAPROXY is None:
        if in_ci():
            pytest.fail("haproxy is not installed; with CI=true it must be", pytrace=False)
        pytest.skip("haproxy is not installed (apt-get install haproxy)")


# --- certificates ------------------------------------------------------------------------------


def named(common_name: str, issuer: certs.Issued, dns: str) -> certs.Issued:
    """A server certificate for ``dns`` (and 127.0.0.1) issued by ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(dns), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(issuer.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return certs.Issued(cert, key)


def crt(leaf: certs.Issued, *chain: certs.Issued) -> bytes:
    """What the output writer puts in ``tls/.../<alias>.pem``: the chain, then the key."""
    return leaf.pem + b"".join(c.pem for c in chain) + leaf.key_pem


@dataclass
class Material:
    pki: Pki
    servers: dict[str, certs.Issued]

    def pem(self, label: str) -> bytes:
        return crt(self.servers[label], self.pki.server_ca)


@pytest.fixture
def material(tmp_path: Path) -> Material:
    server_ca = issue("Gateway Server CA", ca=True)
    first = issue("gw.example", issuer=server_ca, server=True)
    pki = Pki(tmp_path / "pki", server_ca, first, b"")
    pki.work.mkdir()
    servers = {
        "first": first,
        "second": issue("gw.example", issuer=server_ca, server=True),
        "outside": named("outside.example", server_ca, "outside.example"),
        "new": named("new.example", server_ca, "new.example"),
        "other": named("other.example", server_ca, "other.example"),
    }
    return Material(pki, servers)


# --- HAProxy -------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Haproxy(HaproxyProcess):
    """HAProxy serving ``out``, with a second admin socket on ``ipv4@127.0.0.1:admin_port``."""

    out: Path
    admin_port: int

    @property
    def unix_socket(self) -> str:
        return self.socket

    @property
    def tcp_socket(self) -> str:
        return f"ipv4@127.0.0.1:{self.admin_port}"

    @property
    def outside(self) -> str:
        return str(self.root / "outside.pem")

    def transactions(self) -> str:
        return self.cli("show", "ssl", "cert") + "\n" + self.cli("show", "ssl", "ca-file")

    @property
    def running(self) -> subprocess.Popen[bytes]:
        assert self.process is not None
        return self.process


CONFIG = """\
global
    stats socket {root}/admin.sock level admin
    stats socket ipv4@127.0.0.1:{admin_port} level admin
    stats timeout 10s

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

frontend tls
    bind 127.0.0.1:{port} ssl crt {out}/tls/p/ks/a.pem crt {out}/tls/p/dir/ crt {root}/outside.pem crt-list {root}/extra.list ca-file {out}/truststore.pem verify optional
    http-request return status 200 content-type text/plain lf-string "hello %[ssl_c_s_dn(CN)]"
"""  # noqa: E501


def write_files(out: Path, files: Mapping[str, bytes | None]) -> Change:
    """Put ``files`` in place as the output writer does (None removes) and return the Change."""
    written: dict[str, bytes] = {}
    previous: dict[str, bytes | None] = {}
    removed: list[str] = []
    for rel, content in files.items():
        path = out / rel
        previous[rel] = path.read_bytes() if path.exists() else None
        if content is None:
            path.unlink()
            removed.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
        written[rel] = content
    return Change(out, 1, written, previous, tuple(removed))


def activate(driver: HaproxyDriver, change: Change) -> str:
    return asyncio.run(driver.activate(change))


@pytest.fixture
def haproxy(tmp_path: Path, material: Material) -> Iterator[Haproxy]:
    root = tmp_path / "haproxy"
    out = tmp_path / "out"
    (out / "tls/p/dir").mkdir(parents=True)
    root.mkdir()
    write_files(out, {IDENTITY: material.pem("first"), TRUSTSTORE: material.pki.client_ca("a").pem})
    (root / "outside.pem").write_bytes(material.pem("outside"))
    (root / "extra.list").write_text("")
    port, admin_port = free_port(), free_port()
    proxy = Haproxy(root, port, out=out, admin_port=admin_port)
    try:
        proxy.start(CONFIG.format(root=root, out=out, port=port, admin_port=admin_port))
        yield proxy
    finally:
        proxy.stop()
        print(proxy.log())


# --- a TLS client ------------------------------------------------------------------------------


def presented(proxy: Haproxy, pki: Pki, server_name: str | None = None) -> bytes:
    """The DER certificate a new handshake gets (``server_name`` for SNI, not checked)."""
    context = pki.context(None)
    context.check_hostname = False
    return presented_at(proxy.port, context, server_name=server_name)


def hello(proxy: Haproxy, pki: Pki, client: str) -> str | None:
    """The answer to ``GET /`` with ``client``'s certificate; None when refused."""
    return greeting(proxy.port, pki.context(client))


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["unix", "ipv4"])
def test_rotated_identity_is_served_without_reload_and_open_connections_keep_working(
    haproxy: Haproxy, material: Material, kind: str
) -> None:
    pki, servers = material.pki, material.servers
    socket_address = haproxy.unix_socket if kind == "unix" else haproxy.tcp_socket
    driver = HaproxyDriver(socket_address, timeout=5)
    pid = haproxy.pid()
    assert pid == haproxy.running.pid
    assert presented(haproxy, pki) == servers["first"].der

    kept = http.client.HTTPSConnection("127.0.0.1", haproxy.port, context=pki.context(None))
    kept.request("GET", "/")
    assert kept.getresponse().read() == b"hello "

    summary = activate(driver, write_files(haproxy.out, {IDENTITY: material.pem("second")}))

    assert summary == f"haproxy: updated in memory: {IDENTITY}"
    assert presented(haproxy, pki) == servers["second"].der
    kept.request("GET", "/")  # the same TCP connection and TLS session as before
    response = kept.getresponse()
    assert (response.status, response.read()) == (200, b"hello ")
    assert kept.sock is not None
    assert kept.sock.getpeercert(binary_form=True) == servers["first"].der
    kept.close()
    assert haproxy.pid() == pid and haproxy.running.poll() is None
    assert "*" not in haproxy.transactions()
    described = driver.describe()
    assert described["haproxySocket"] == socket_address
    assert described["haproxyCertificates"] == [str(haproxy.out / IDENTITY)]
    assert described["haproxyReloadNeeded"] == []


def test_truststore_update_accepts_the_new_ca_and_refuses_the_old(
    haproxy: Haproxy, material: Material
) -> None:
    pki = material.pki
    driver = HaproxyDriver(haproxy.unix_socket)
    pid = haproxy.pid()
    assert hello(haproxy, pki, "a") == "hello client-a"
    assert hello(haproxy, pki, "b") is None
    assert refused(haproxy.port, pki, "b")

    summary = activate(driver, write_files(haproxy.out, {TRUSTSTORE: pki.client_ca("b").pem}))

    assert summary == f"haproxy: updated in memory: {TRUSTSTORE}"
    assert hello(haproxy, pki, "b") == "hello client-b"
    assert hello(haproxy, pki, "a") is None
    assert refused(haproxy.port, pki, "a")
    assert hello(haproxy, pki, "b") == "hello client-b"
    assert haproxy.pid() == pid
    assert driver.describe()["haproxyCaFiles"] == [str(haproxy.out / TRUSTSTORE)]

    # Both CAs at once, with blank lines between the PEM blocks (the payload ends at the
    # first empty line, so the client drops them).
    both = pki.client_ca("a").pem + b"\n\n" + pki.client_ca("b").pem
    activate(driver, write_files(haproxy.out, {TRUSTSTORE: both}))
    assert hello(haproxy, pki, "a") == "hello client-a"
    assert hello(haproxy, pki, "b") == "hello client-b"


def test_garbage_payload_aborts_and_the_old_certificate_keeps_serving(
    haproxy: Haproxy, material: Material
) -> None:
    pki = material.pki
    driver = HaproxyDriver(haproxy.unix_socket)
    garbage = b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"

    with pytest.raises(DriverError) as caught:
        activate(driver, write_files(haproxy.out, {IDENTITY: garbage}))

    reason = str(caught.value)
    path = haproxy.out / IDENTITY
    assert reason.startswith(f"haproxy: set ssl cert {path}: unable to load certificate"), reason
    assert "\n" not in reason
    assert presented(haproxy, pki) == material.servers["first"].der
    assert "*" not in haproxy.transactions()

    # A certificate without its key: HAProxy takes the set, refuses the commit.
    cert_only = material.servers["second"].pem
    with pytest.raises(DriverError, match="must contain at least a certificate and a private key"):
        activate(driver, write_files(haproxy.out, {IDENTITY: cert_only}))
    assert presented(haproxy, pki) == material.servers["first"].der
    assert "*" not in haproxy.transactions()

    # Larger than HAProxy's buffer (tune.bufsize, 16384): HAProxy closes without a word.
    huge = crt(material.servers["second"], *[pki.server_ca] * 40)
    assert len(huge) > 20000
    with pytest.raises(DriverError, match="closed the connection without answering set ssl cert"):
        activate(driver, write_files(haproxy.out, {IDENTITY: huge}))
    assert presented(haproxy, pki) == material.servers["first"].der
    assert "*" not in haproxy.transactions()


def test_a_later_failure_puts_back_what_this_activation_committed(
    haproxy: Haproxy, material: Material
) -> None:
    pki = material.pki
    driver = HaproxyDriver(haproxy.unix_socket)
    change = write_files(
        haproxy.out,
        {
            IDENTITY: material.pem("second"),
            TRUSTSTORE: b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        },
    )

    with pytest.raises(DriverError) as caught:
        activate(driver, change)

    reason = str(caught.value)
    assert f"set ssl ca-file {haproxy.out / TRUSTSTORE}: Invalid payload" in reason, reason
    assert "put back 1 of 1 file(s) committed before" in reason, reason
    assert presented(haproxy, pki) == material.servers["first"].der
    assert hello(haproxy, pki, "a") == "hello client-a"
    assert "*" not in haproxy.transactions()


def test_empty_truststore_fails_closed(haproxy: Haproxy, material: Material) -> None:
    driver = HaproxyDriver(haproxy.unix_socket)
    with pytest.raises(DriverError, match=r"truststore\.pem is empty, but HAProxy verifies"):
        activate(driver, write_files(haproxy.out, {TRUSTSTORE: b""}))
    with pytest.raises(DriverError, match=r"truststore\.pem is removed, but HAProxy verifies"):
        activate(driver, write_files(haproxy.out, {TRUSTSTORE: None}))
    assert hello(haproxy, material.pki, "a") == "hello client-a"


def test_new_identities_go_to_a_crt_list_or_need_a_reload(
    haproxy: Haproxy, material: Material
) -> None:
    pki, servers = material.pki, material.servers
    driver = HaproxyDriver(haproxy.unix_socket)
    new, elsewhere = "tls/p/dir/new.pem", "tls/q/ks/other.pem"

    summary = activate(
        driver,
        write_files(haproxy.out, {new: material.pem("new"), elsewhere: material.pem("other")}),
    )

    assert summary == (
        f"haproxy: added: {new}; not loaded by HAProxy (a reload with a configuration naming "
        f"them is needed): {elsewhere}"
    )
    assert presented(haproxy, pki, "new.example") == servers["new"].der
    assert presented(haproxy, pki, "other.example") == servers["first"].der
    assert str(haproxy.out / new) in haproxy.cli(
        "show", "ssl", "crt-list", str(haproxy.out / "tls/p/dir")
    )
    assert driver.describe()["haproxyReloadNeeded"] == [elsewhere]

    # With a crt-list file given to the driver, a new identity anywhere goes there (a
    # directory crt-list takes only files inside it).
    listed = HaproxyDriver(haproxy.unix_socket, crt_list=str(haproxy.root / "extra.list"))
    summary = activate(listed, write_files(haproxy.out, {elsewhere: material.pem("other")}))
    assert summary == f"haproxy: added: {elsewhere}"
    assert presented(haproxy, pki, "other.example") == servers["other"].der

    # A crt-list HAProxy does not have: nothing is left behind.
    wrong = HaproxyDriver(haproxy.unix_socket, crt_list=str(haproxy.root / "nope.list"))
    with pytest.raises(DriverError, match="does not exist"):
        activate(wrong, write_files(haproxy.out, {"tls/r/ks/x.pem": material.pem("other")}))
    assert str(haproxy.out / "tls/r/ks/x.pem") not in haproxy.cli("show", "ssl", "cert")


def test_a_summary_names_five_files_and_counts_the_rest(
    haproxy: Haproxy, material: Material
) -> None:
    # The summary goes to the manager in the node's ack, which takes 2000 characters.
    pki = material.pki
    driver = HaproxyDriver(haproxy.unix_socket)
    rels = [f"tls/p/dir/n{i}.pem" for i in range(8)]

    def issued() -> dict[str, certs.Issued]:
        return {
            rel: named(f"n{i}.example", pki.server_ca, f"n{i}.example")
            for i, rel in enumerate(rels)
        }

    first = issued()
    summary = activate(
        driver, write_files(haproxy.out, {r: crt(c, pki.server_ca) for r, c in first.items()})
    )
    assert summary == f"haproxy: added: {', '.join(rels[:5])} and 3 more"
    assert presented(haproxy, pki, "n7.example") == first[rels[7]].der

    renewed = issued()
    summary = activate(
        driver, write_files(haproxy.out, {r: crt(c, pki.server_ca) for r, c in renewed.items()})
    )
    assert summary == f"haproxy: updated in memory: {', '.join(rels[:5])} and 3 more"
    for i, rel in enumerate(rels):
        assert presented(haproxy, pki, f"n{i}.example") == renewed[rel].der


def test_removed_identities_leave_memory_where_haproxy_allows(
    haproxy: Haproxy, material: Material
) -> None:
    pki, servers = material.pki, material.servers
    driver = HaproxyDriver(haproxy.unix_socket)
    new = "tls/p/dir/new.pem"
    activate(driver, write_files(haproxy.out, {new: material.pem("new")}))
    assert presented(haproxy, pki, "new.example") == servers["new"].der

    summary = activate(driver, write_files(haproxy.out, {new: None, IDENTITY: None}))

    assert summary == (
        f"haproxy: removed {new}; {IDENTITY} is still served: HAProxy's configuration "
        "names it, reload needed"
    )
    assert presented(haproxy, pki, "new.example") == servers["first"].der
    assert str(haproxy.out / new) not in haproxy.cli("show", "ssl", "cert")
    assert driver.describe()["haproxyReloadNeeded"] == [IDENTITY]


def test_open_transactions_ours_are_aborted_others_refuse(
    haproxy: Haproxy, material: Material
) -> None:
    pki, servers = material.pki, material.servers
    driver = HaproxyDriver(haproxy.unix_socket)

    # Left open by a node that died between set and commit: aborted, then the update runs.
    path = str(haproxy.out / IDENTITY)
    assert "Transaction created" in haproxy.cli(
        "set", "ssl", "cert", path, payload=material.pem("outside")
    )
    activate(driver, write_files(haproxy.out, {IDENTITY: material.pem("second")}))
    assert presented(haproxy, pki) == servers["second"].der

    # Someone else's transaction: HAProxy would fold our set into it, so nothing is done.
    assert "Transaction created" in haproxy.cli(
        "set", "ssl", "cert", haproxy.outside, payload=material.pem("other")
    )
    with pytest.raises(DriverError, match=f"transaction is open on {haproxy.outside}"):
        activate(driver, write_files(haproxy.out, {IDENTITY: material.pem("first")}))
    assert presented(haproxy, pki) == servers["second"].der
    assert "Transaction aborted" in haproxy.cli("abort", "ssl", "cert", haproxy.outside)


def test_haproxy_not_running_not_answering_and_changes_it_does_not_care_about(
    tmp_path: Path,
) -> None:
    driver = HaproxyDriver(str(tmp_path / "missing.sock"), timeout=1)
    out = tmp_path / "out"
    change = write_files(out, {"jwks.json": b"{}", "tls/p/ks/a.crt": b"x", "tls/p/ks/a.key": b"y"})
    assert activate(driver, change) == "haproxy: no TLS file changed"

    # Not running: nothing to update in memory, it reads the files when it starts.
    summary = activate(driver, write_files(out, {IDENTITY: b"x"}))
    assert summary == (
        f"haproxy: not running (no socket at {tmp_path / 'missing.sock'}); it reads the new "
        "files when it starts"
    )
    assert driver.describe()["haproxyReachable"] is False
    refused_port = HaproxyDriver(f"ipv4@127.0.0.1:{free_port()}", timeout=1)
    summary = activate(refused_port, write_files(out, {TRUSTSTORE: b"z"}))
    assert summary.startswith("haproxy: not running (127.0.0.1:"), summary
    assert "refused the connection); it reads the new files when it starts" in summary

    # A listener that never answers: bounded by the timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        slow = HaproxyDriver(f"ipv4@127.0.0.1:{port}", timeout=0.5)
        with pytest.raises(DriverError, match=r"did not answer show ssl cert within 0\.5 s"):
            activate(slow, write_files(out, {IDENTITY: b"y"}))

    with pytest.raises(ValueError, match="expected PATH, unix@PATH, ipv4@HOST:PORT"):
        HaproxyDriver("tcp@somewhere")


def test_addresses_and_arguments() -> None:
    assert parse_address("/run/haproxy/admin.sock") == RuntimeApiAddress(
        path="/run/haproxy/admin.sock"
    )
    assert parse_address("unix@/tmp/a.sock") == RuntimeApiAddress(path="/tmp/a.sock")
    assert parse_address("ipv4@127.0.0.1:9999") == RuntimeApiAddress(host="127.0.0.1", port=9999)
    assert parse_address("ipv6@[::1]:9999") == RuntimeApiAddress(host="::1", port=9999)
    for bad in ("ipv4@127.0.0.1", "ipv4@:80", "ipv4@h:99999", "tcp@h:1", ""):
        with pytest.raises(ValueError):
            parse_address(bad)
    assert quote_arg("/a b/c;d\\e.pem") == "/a\\ b/c\\;d\\\\e.pem"
    with pytest.raises(ValueError, match="control character"):
        quote_arg("/a\nb")
