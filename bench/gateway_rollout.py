"""Gateway roll-out: a keystore update until the first handshake presenting it, per driver.

    python bench/gateway_rollout.py [--rotations 10] [--certificates 100] [--entries 100]
                                    [--applies 3] [--db sqlite|postgresql]
                                    [--database-url URL] [--deadline 900]

Starts a real manager (``keyops serve --demo``; a fresh SQLite file by default, a fresh
PostgreSQL database with ``--db postgresql``, or ``--database-url``) and, each in an
environment of its own, a real gateway node per driver with the real gateway serving
TLS on loopback from the node's output directory:

* ``node``: no driver, the node's own TLS listener (the reference);
* ``files``: ``--driver files`` with nginx as the gateway, ``nginx -t`` as the check
  command and ``nginx -s reload`` as the reload command;
* ``nginx``: ``--driver nginx`` (``nginx -t``, then a graceful ``nginx -s reload``);
* ``haproxy``: ``--driver haproxy`` through HAProxy's runtime API, no reload, with
  ``--haproxy-crt-list`` naming the crt-list of HAProxy's ``bind``.

A gateway whose binary is missing is skipped, with the reason printed.

A. ``--rotations`` times per gateway, the environment's TLS keystore is updated through
   the keystore update endpoint with a freshly issued server certificate. Measured: (a)
   the update request itself (the manager answers once the node acknowledged), and (b)
   from sending the request to the first TLS handshake (Python's ``ssl``, in a tight
   loop from the moment the request is sent) presenting the new certificate. Printed:
   p50/p95 of both and the ratio (b)/(a) of the p50s. A ratio at or under 1 means the
   gateway served the new certificate by the time the caller heard "deployed".
B. The environment then holds ``--certificates`` certificates (the admin project's client
   CA, ``--certificates - 2`` shared ones and one of its own) and a keystore of
   ``--entries`` private-key entries (a JKS; for HAProxy each entry is one identity added
   to the crt-list in memory). ``--applies`` times each, one apply is timed: updating
   the environment's own certificate (1 of N), and replacing the keystore by one with
   ``--entries`` new entries. Printed, as medians: update request until the node's ack,
   until the driver finished (the node's ``lastApply.at``), the node's CPU time (its own,
   and its reaped children's such as ``nginx -t``; ``/proc/<pid>/stat``, clock ticks),
   the gateway's CPU time (HAProxy; nginx's master with its reaped workers) and the
   manager's.

The machine is shared and noisy: nothing here asserts a timing. A deployment that does
not report every node applied, a handshake that never presents the new certificate, a
gateway process that restarted (HAProxy) or a master that changed (nginx) is an error.
Every process is stopped on the way out, also on Ctrl-C and at ``--deadline``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import os
import secrets
import shlex
import signal
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _support as s  # bench/, first on sys.path when run as a script
import httpx
import jks  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.gateway_nodes import (  # noqa: E402 - after the sys.path line above
    ADMIN_PROJECT,
    FAST_ENV,
    HAPROXY,
    NGINX,
    STORE_PASSWORD,
    TLS_ALIAS,
    Cluster,
    HaproxyProcess,
    NginxProcess,
    NodeProcess,
    Pki,
    applied_by_all,
    environment_result,
    gateway_cluster,
    haproxy_conf,
    issue,
    nginx_conf,
    pkcs12,
)
from tests.support.server import free_port  # noqa: E402
from tests.support.tls_client import first_presenting, presented  # noqa: E402

KINDS = ("node", "files", "nginx", "haproxy")
LABELS = {
    "node": "node (own TLS)",
    "files": "files + nginx",
    "nginx": "nginx",
    "haproxy": "haproxy",
}
DEMO_PROJECT = "MyProject"
CLIENT_CA = "rollout-client-ca"
# One apply of a 100-identity HAProxy takes hundreds of runtime API commands.
DEPLOY_TIMEOUT_S = 45  # under the API client's 60 s, so a stall is an answer, not a timeout
HANDSHAKE_WAIT_S = 30.0
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


# --- CPU time from /proc ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cpu:
    """Seconds of CPU: the process's own (utime + stime) and its reaped children's."""

    own: float
    children: float

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.own - other.own, self.children - other.children)


def cpu(pid: int) -> Cpu:
    # Fields 14-17 of /proc/<pid>/stat; the command name (field 2) may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return Cpu((utime + stime) * TICK_S, (cutime + cstime) * TICK_S)


# --- one gateway: environment, node, gateway process --------------------------------------------


@dataclass
class Gateway:
    kind: str
    env: str
    root: Path
    node: NodeProcess | None = None
    process: HaproxyProcess | NginxProcess | None = None
    port: int = 0  # where TLS is served from outside
    first_gateway_pid: int | None = None

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    @property
    def keystore(self) -> str:
        return f"tls-{self.kind}"

    @property
    def bulk(self) -> str:
        return f"bulk-{self.kind}"

    @property
    def probe(self) -> str:
        return f"probe-{self.kind}"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def identity(self) -> Path:
        """The TLS identity's files without suffix (``.pem``, ``.crt``, ``.key``)."""
        return self.out / "tls" / ADMIN_PROJECT / self.keystore / TLS_ALIAS

    @property
    def crt_list(self) -> Path:
        return self.root / "haproxy" / "bulk.list"

    def gateway_pid(self) -> int | None:
        """HAProxy's own process id (``show info``) or nginx's master's."""
        if isinstance(self.process, HaproxyProcess):
            return self.process.pid()
        if isinstance(self.process, NginxProcess):
            return self.process.pid
        return None

    def gateway_cpu(self) -> Cpu | None:
        if self.process is None or self.process.process is None:
            return None
        return cpu(self.process.process.pid)

    def node_args(self) -> list[str]:
        if self.kind == "node":
            return []
        args = ["--driver", self.kind, "--output-dir", str(self.out)]
        if self.kind == "files":
            assert isinstance(self.process, NginxProcess) and NGINX is not None
            nginx, conf = shlex.quote(NGINX), shlex.quote(str(self.process.conf))
            pid = shlex.quote(str(self.process.root / "nginx.pid"))
            args += [
                "--check-command", f"{nginx} -t -q -c {conf}",
                # nginx starts after the first files are written: nothing to reload yet.
                "--reload-command", f"if [ -s {pid} ]; then {nginx} -s reload -c {conf}; fi",
            ]  # fmt: skip
        elif self.kind == "nginx":
            assert isinstance(self.process, NginxProcess) and NGINX is not None
            args += ["--nginx-binary", NGINX, "--nginx-conf", str(self.process.conf)]
        else:
            assert isinstance(self.process, HaproxyProcess)
            args += [
                "--haproxy-socket", self.process.socket,
                "--haproxy-crt-list", str(self.crt_list),
            ]  # fmt: skip
        return args

    def start_gateway(self, pki: Pki) -> None:
        """The gateway on the node's files (which must be written by now)."""
        if isinstance(self.process, NginxProcess):
            self.process.start(pki.context(None))
        elif isinstance(self.process, HaproxyProcess):
            self.crt_list.parent.mkdir(parents=True, exist_ok=True)
            self.crt_list.write_text("")
            bind = (
                f"crt {self.identity}.pem crt-list {self.crt_list}"
                f" ca-file {self.out}/truststore.pem verify optional"
            )
            self.process.start(haproxy_conf(self.process.socket, self.process.port, bind))
        self.first_gateway_pid = self.gateway_pid()

    def stop_gateway(self) -> None:
        if self.process is not None:
            self.process.stop()

    def check_same_gateway(self) -> None:
        """No restart behind the numbers: HAProxy kept its pid, nginx its master."""
        if self.process is None:
            return
        if self.process.process is None or self.process.process.poll() is not None:
            raise s.BenchError(f"{self.label}: the gateway process exited:\n{self.process.log()}")
        if self.gateway_pid() != self.first_gateway_pid:
            raise s.BenchError(f"{self.label}: the gateway restarted (pid changed)")


def available(kind: str) -> str | None:
    """None, or why the gateway of ``kind`` can not run here."""
    if kind in ("files", "nginx") and NGINX is None:
        return "nginx is not installed (apt-get install nginx)"
    if kind == "haproxy" and HAPROXY is None:
        return "haproxy is not installed (apt-get install haproxy)"
    return None


def expect_applied(deployment: dict[str, Any], env: str, what: str) -> None:
    message = environment_result(deployment, env)["message"]
    if not deployment["success"] or message != applied_by_all(1):
        raise s.BenchError(f"{what}: {env} says {message!r}")


def expect_all_applied(deployment: dict[str, Any], what: str) -> None:
    bad = [r for r in deployment["environmentResults"] if not r["success"]]
    if not deployment["success"] or bad:
        raise s.BenchError(f"{what}: {bad or deployment}")


def provision(c: Cluster, gateways: Sequence[Gateway], pki: Pki) -> None:
    """Environments, the client CA, a TLS keystore each; then nodes, then gateways."""
    for gw in gateways:
        c.api.create_environment(gw.env)
    envs = [gw.env for gw in gateways]
    ca = pki.client_ca("rollout").pem
    expect_all_applied(c.api.create_certificate(ADMIN_PROJECT, CLIENT_CA, ca, envs), "client CA")
    for gw in gateways:
        gw.root.mkdir(parents=True)
        keystore = c.api.create_keystore(
            ADMIN_PROJECT, gw.keystore, gw.env, pki.keystore, STORE_PASSWORD
        )
        expect_all_applied(keystore, f"{gw.label}: TLS keystore")
        if gw.kind == "node":
            c.api.set_tls_identity(gw.env, ADMIN_PROJECT, gw.keystore, TLS_ALIAS)
        elif gw.kind == "haproxy":
            gw.process = HaproxyProcess(gw.root / "haproxy", free_port())
        else:
            nginx = gw.process = NginxProcess(gw.root / "nginx", free_port())
            # Written first: the node's first apply runs nginx -t on it.
            nginx.write_conf(
                nginx_conf(
                    nginx.root,
                    nginx.port,
                    identity=gw.identity,
                    truststore=gw.out / "truststore.pem",
                    jwks=gw.out / "jwks.json",
                )
            )
        gw.node = c.add_node(
            f"{gw.kind}-node", environment=gw.env, args=gw.node_args(), listen=gw.kind == "node"
        )
        c.wait_connected([gw.node])
        if gw.kind == "node":
            gw.port = gw.node.listen_port
        else:
            gw.node.wait_status(
                lambda st: (
                    ((st["driver"] or {}).get("lastApply") or {}).get("outcome") == "applied"
                ),
                timeout=30,
                what="the first files written",
            )
            gw.start_gateway(pki)
            assert gw.process is not None
            gw.port = gw.process.port
        if presented(gw.port, pki.context(None)) != pki.server.der:
            raise s.BenchError(f"{gw.label}: does not present the TLS identity")


# --- A. rotations --------------------------------------------------------------------------------


@dataclass
class Rotations:
    request_s: list[float] = field(default_factory=list)
    handshake_s: list[float] = field(default_factory=list)


def rotate(c: Cluster, gw: Gateway, pki: Pki, n: int) -> tuple[float, float]:
    """One keystore update: (request time, time to the first handshake presenting it)."""
    leaf = issue("gw.example", issuer=pki.server_ca, server=True)
    store = pkcs12(pki.work / f"{gw.kind}-{n}", leaf, [pki.server_ca], TLS_ALIAS)
    context = pki.context(None)
    seen: list[float | None] = []
    started = time.perf_counter()
    poller = threading.Thread(
        target=lambda: seen.append(
            first_presenting(gw.port, context, leaf.der, deadline=started + HANDSHAKE_WAIT_S)
        ),
        daemon=True,
    )
    poller.start()
    result = c.api.update_keystore(ADMIN_PROJECT, gw.keystore, gw.env, store, STORE_PASSWORD)
    answered = time.perf_counter()
    poller.join()
    expect_applied(result, gw.env, f"{gw.label}: keystore update {n}")
    if not seen or seen[0] is None:
        raise s.BenchError(
            f"{gw.label}: no handshake presented the new certificate within"
            f" {HANDSHAKE_WAIT_S:g} s of update {n}"
        )
    return answered - started, seen[0] - started


def rotations(c: Cluster, gw: Gateway, pki: Pki, count: int) -> Rotations:
    measured = Rotations()
    for n in range(1, count + 1):
        request_s, handshake_s = rotate(c, gw, pki, n)
        measured.request_s.append(request_s)
        measured.handshake_s.append(handshake_s)
    gw.check_same_gateway()
    return measured


# --- B. one apply in a big environment ------------------------------------------------------------


def bulk_keystore(pki: Pki, entries: int, tag: str) -> tuple[bytes, dict[str, bytes]]:
    """A JKS of ``entries`` private-key entries ``bulk-NNN`` (CN bulk-NNN.example, issued
    by the server CA, chain included); also alias -> certificate DER."""
    made: list[Any] = []
    ders: dict[str, bytes] = {}
    for i in range(entries):
        alias = f"bulk-{i:03d}"
        leaf = issue(f"{alias}.{tag}.example", issuer=pki.server_ca)
        key = leaf.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        made.append(jks.PrivateKeyEntry.new(alias, [leaf.der, pki.server_ca.der], key))
        ders[alias] = leaf.der
    data: bytes = jks.KeyStore.new("jks", made).saves(STORE_PASSWORD)
    return data, ders


@dataclass
class Apply:
    ack_s: float
    applied_s: float | None  # until the driver finished, per the node's lastApply.at
    node: Cpu
    gateway: Cpu | None
    manager_s: float


def timed_apply(c: Cluster, gw: Gateway, change: Callable[[], dict[str, Any]], what: str) -> Apply:
    assert gw.node is not None and c.manager.process is not None
    node_pid, manager_pid = gw.node.pid, c.manager.process.pid
    node0, gateway0, manager0 = cpu(node_pid), gw.gateway_cpu(), cpu(manager_pid)
    wall0 = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    result = change()
    ack_s = time.perf_counter() - started
    node1, gateway1, manager1 = cpu(node_pid), gw.gateway_cpu(), cpu(manager_pid)
    expect_applied(result, gw.env, f"{gw.label}: {what}")
    applied_s = None
    if gw.kind != "node":
        last = gw.node.status()["driver"]["lastApply"]
        if last["outcome"] != "applied":
            raise s.BenchError(f"{gw.label}: {what}: the driver says {last}")
        at = dt.datetime.strptime(last["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        applied_s = (at - wall0).total_seconds()
    gateway = gateway1 - gateway0 if gateway0 is not None and gateway1 is not None else None
    return Apply(ack_s, applied_s, node1 - node0, gateway, (manager1 - manager0).own)


def big_environment(
    c: Cluster, gateways: Sequence[Gateway], pki: Pki, certificates: int, entries: int
) -> None:
    """Every environment: ``certificates`` certificates in all and a keystore of ``entries``."""
    envs = [gw.env for gw in gateways]
    shared = certificates - 2  # the admin project's client CA and the environment's own
    started = time.monotonic()
    for i in range(shared):
        pem = issue(f"shared-{i:03d}.example").pem
        expect_all_applied(
            c.api.create_certificate(DEMO_PROJECT, f"shared-{i:03d}", pem, envs),
            f"shared certificate {i}",
        )
    for gw in gateways:
        pem = issue(f"{gw.probe}.example").pem
        expect_applied(
            c.api.create_certificate(DEMO_PROJECT, gw.probe, pem, [gw.env]), gw.env, gw.probe
        )
        data, _ = bulk_keystore(pki, entries, f"{gw.kind}-0")
        expect_applied(
            c.api.create_keystore(
                DEMO_PROJECT, gw.bulk, gw.env, data, STORE_PASSWORD, store_type="JKS"
            ),
            gw.env,
            f"{gw.bulk} created",
        )
    print(
        f"  ({shared} shared certificates to {len(envs)} environments and {len(gateways)}"
        f" keystores of {entries} entries deployed in {time.monotonic() - started:.0f} s)",
        flush=True,
    )


def applies(c: Cluster, gw: Gateway, pki: Pki, count: int, entries: int) -> dict[str, list[Apply]]:
    measured: dict[str, list[Apply]] = {"certificate": [], "keystore": []}
    for n in range(1, count + 1):
        pem = issue(f"{gw.probe}-{n}.example").pem
        certificate = functools.partial(
            c.api.update_certificate, DEMO_PROJECT, gw.probe, pem, [gw.env]
        )
        measured["certificate"].append(timed_apply(c, gw, certificate, f"certificate update {n}"))
        tag = f"{gw.kind}-{n}"
        data, ders = bulk_keystore(pki, entries, tag)
        keystore = functools.partial(
            c.api.update_keystore,
            DEMO_PROJECT, gw.bulk, gw.env, data, STORE_PASSWORD, store_type="JKS",
        )  # fmt: skip
        measured["keystore"].append(timed_apply(c, gw, keystore, f"keystore update {n}"))
        if gw.kind == "haproxy":
            # The entries are served, in memory: SNI picks the renewed certificate.
            alias = f"bulk-{entries // 2:03d}"
            context = pki.context(None)
            context.check_hostname = False
            got = presented(gw.port, context, server_name=f"{alias}.{tag}.example")
            if got != ders[alias]:
                raise s.BenchError(f"{gw.label}: {alias} is not served renewed")
    gw.check_same_gateway()
    return measured


# --- printing ------------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def p50(values: Sequence[float]) -> float:
    return s.percentile(values, 50)


def p95(values: Sequence[float]) -> float:
    return s.percentile(values, 95)


def print_rotations(results: dict[str, Rotations], count: int) -> list[str]:
    print(f"\nA. TLS keystore update -> first handshake presenting the new certificate ({count}x)")
    print(
        f"  {'gateway':16s} {'(a) update request':>20s} {'(b) first new handshake':>25s}"
        f" {'(b)/(a)':>9s}"
    )
    print(f"  {'':16s} {'p50 / p95 ms':>20s} {'p50 / p95 ms':>25s} {'p50':>9s}")
    summary = []
    for kind, r in results.items():
        a50, a95, b50, b95 = (
            p50(r.request_s), p95(r.request_s), p50(r.handshake_s), p95(r.handshake_s)
        )  # fmt: skip
        ratio = b50 / a50
        print(
            f"  {LABELS[kind]:16s} {ms(a50):>9s} / {ms(a95):>8s} {ms(b50):>14s} / {ms(b95):>8s}"
            f" {ratio:>8.2f}x"
        )
        summary.append(
            f"{LABELS[kind]:16s} update {ms(a50)} ms, first new handshake {ms(b50)} ms"
            f" (p50), ratio {ratio:.2f}"
        )
    return summary


def checked(gateways: Sequence[Gateway], count: int) -> str:
    """What was checked to be the same gateway process throughout."""
    notes = []
    for gw in gateways:
        if isinstance(gw.process, HaproxyProcess):
            notes.append(f"{gw.label}: pid {gw.first_gateway_pid} throughout, no reload")
        elif isinstance(gw.process, NginxProcess):
            notes.append(
                f"{gw.label}: master {gw.first_gateway_pid} throughout,"
                f" {gw.process.reloads()} graceful reload(s)"
            )
    return f"  checked after {count} updates each: " + "; ".join(notes)


def print_applies(
    results: dict[str, dict[str, list[Apply]]], count: int, certificates: int, entries: int
) -> list[str]:
    print(
        f"\nB. one apply with {certificates} certificates and a {entries}-entry keystore in the"
        f" environment (median of {count}; CPU in ms, {TICK_S * 1000:g} ms ticks)"
    )
    print(
        f"  {'gateway':16s} {'change':26s} {'->ack ms':>9s} {'->applied':>10s}"
        f" {'node CPU':>9s} {'children':>9s} {'gateway':>8s} {'manager':>8s}"
    )
    changes = {
        "certificate": f"1 of {certificates} certificates",
        "keystore": f"{entries}-entry keystore renewed",
    }
    summary = []
    for kind, by_change in results.items():
        for change, runs in by_change.items():
            ack = s.median(r.ack_s for r in runs)
            applied = [r.applied_s for r in runs if r.applied_s is not None]
            node = s.median(r.node.own for r in runs)
            children = s.median(r.node.children for r in runs)
            gateways = [r.gateway.own + r.gateway.children for r in runs if r.gateway is not None]
            manager = s.median(r.manager_s for r in runs)
            print(
                f"  {LABELS[kind]:16s} {changes[change]:26s} {ms(ack):>9s}"
                f" {ms(s.median(applied) if applied else None):>10s} {ms(node):>9s}"
                f" {ms(children):>9s} {ms(s.median(gateways) if gateways else None):>8s}"
                f" {ms(manager):>8s}"
            )
            summary.append(
                f"{LABELS[kind]:16s} {changes[change]}: ack {ms(ack)} ms,"
                f" node CPU {ms(node + children)} ms"
            )
    return summary


# --- the run -------------------------------------------------------------------------------------


@contextlib.contextmanager
def database_url(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    if args.database_url:
        yield args.database_url
        return
    with s.database(args.db, workdir) as url:
        yield url


def run(args: argparse.Namespace, workdir: Path) -> list[str]:
    kinds = []
    for kind in args.gateways:
        reason = available(kind)
        if reason is None:
            kinds.append(kind)
        else:
            print(f"  skipped {LABELS[kind]}: {reason}", flush=True)
    pki = Pki.create(workdir / "pki")
    tag = secrets.token_hex(3)
    gateways = [Gateway(kind, f"rollout-{kind}-{tag}", workdir / kind) for kind in kinds]
    env_vars = {**FAST_ENV, "KEYOPS_DEPLOY_TIMEOUT_SECONDS": str(DEPLOY_TIMEOUT_S)}
    with (
        database_url(args, workdir) as url,
        gateway_cluster(url, workdir / "cluster", node_names=(), extra_env=env_vars) as c,
        contextlib.ExitStack() as stack,
    ):
        for gw in gateways:
            stack.callback(gw.stop_gateway)
        try:
            provision(c, gateways, pki)
            rotated = {gw.kind: rotations(c, gw, pki, args.rotations) for gw in gateways}
            summary = print_rotations(rotated, args.rotations)
            print(checked(gateways, args.rotations), flush=True)
            print("", flush=True)
            big_environment(c, gateways, pki, args.certificates, args.entries)
            applied = {gw.kind: applies(c, gw, pki, args.applies, args.entries) for gw in gateways}
            summary += print_applies(applied, args.applies, args.certificates, args.entries)
        except (s.BenchError, AssertionError, RuntimeError, OSError, httpx.HTTPError) as exc:
            print(f"  logs of the cluster:\n{c.logs()[-6000:]}", flush=True)
            for gw in gateways:
                if gw.process is not None:
                    print(f"=== {gw.label}\n{gw.process.log()[-3000:]}", flush=True)
            if isinstance(exc, s.BenchError):
                raise
            raise s.BenchError(str(exc)) from exc
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        epilog="\n\n".join((__doc__ or "").split("\n\n")[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rotations", type=int, default=10, help="keystore updates per gateway")
    parser.add_argument("--certificates", type=int, default=100, help="in each environment (B)")
    parser.add_argument("--entries", type=int, default=100, help="of the big keystore (B)")
    parser.add_argument("--applies", type=int, default=3, help="timed applies per change (B)")
    parser.add_argument(
        "--gateways",
        type=lambda text: [k.strip() for k in text.split(",") if k.strip()],
        default=list(KINDS),
        help=f"comma-separated, of {','.join(KINDS)} (default all)",
    )
    parser.add_argument("--db", choices=s.DATABASES, default="sqlite", help="a fresh database")
    parser.add_argument("--database-url", default=None, help="use this database instead")
    parser.add_argument("--deadline", type=int, default=900, help="stop after this many s")
    args = parser.parse_args(argv)
    if args.rotations < 1 or args.applies < 1 or args.certificates < 2 or args.entries < 1:
        parser.error("--rotations, --applies, --entries at least 1, --certificates at least 2")
    if not args.gateways or set(args.gateways) - set(KINDS):
        parser.error(f"--gateways takes a comma-separated list of {', '.join(KINDS)}")

    s._install_signals(args.deadline)  # SIGALRM at the deadline, SIGTERM as Ctrl-C
    started = time.monotonic()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    backend = "the given database" if args.database_url else args.db
    print(
        f"keyops gateway roll-out ({backend}; {os.cpu_count()} cores, load {load};"
        f" {dt.datetime.now().isoformat(timespec='seconds')}; {ssl.OPENSSL_VERSION})",
        flush=True,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="keyops-rollout-") as tmp:
            summary = run(args, Path(tmp))
    except s.BenchError as exc:
        print(f"ERROR: {exc}", flush=True)
        return 1
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    finally:
        signal.alarm(0)
    print(f"\nsummary ({time.monotonic() - started:.0f} s):")
    for line in summary:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
