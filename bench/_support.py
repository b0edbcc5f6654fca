"""What the issue-9 benchmarks share: servers, databases, wrk, API calls, certificates.

Every benchmark measures keyops against the bare FastAPI app of ``_bare_app.py`` started
in the same run, with the same interpreter and the same uvicorn options (loop and http
as uvicorn's "auto" picks them: uvloop and httptools when importable; ``--workers N``
for both when ``keyops serve`` has that option), on a fresh database per run: a SQLite
file in a temporary directory, or a PostgreSQL database created for the run and dropped
afterwards (``KEYOPS_TEST_PG_ADMIN_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``, as the tests use).

The machine is shared and noisy, so only ratios against the in-run baseline mean
anything, and nothing here asserts a timing. A measurement whose requests were not all
answered 2xx is an error (``BenchError``), never a speed.

Every process started here runs in its own process group and is stopped on the way
out: on return, on an exception, on Ctrl-C, on SIGTERM and at the deadline (SIGALRM).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import datetime as dt
import json
import math
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import httpx
import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

T = TypeVar("T")
R = TypeVar("R")

BENCH_DIR = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH_DIR / "_wrk.lua"
BARE_APP = BENCH_DIR / "_bare_app.py"
PG_ADMIN_URL = os.environ.get(
    "KEYOPS_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ADMIN_USER = "admin"
ADMIN_PASSWORD = "bench-admin-pw-9"  # noqa: S105 - a throw-away server's first-run password
DEMO_PROJECT = "MyProject"
ADMIN_PROJECT = "admin"
HEALTHCHECK = "/apiops/test/healthcheck"
DATABASES = ("sqlite", "postgresql")
# Budget per database: the deadline is this times the number of databases run.
SECONDS_PER_DATABASE = 200


class BenchError(Exception):
    """A run that can not be reported as a speed (a failed request, a dead server...)."""


class BenchTimeout(BenchError):
    """The deadline passed."""


# --- processes ------------------------------------------------------------------------------

_started: list[subprocess.Popen[bytes]] = []
_lock = threading.Lock()


def spawn(
    args: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None, cwd: Path
) -> subprocess.Popen[bytes]:
    """Start a process in its own process group, logging to ``log_path``; stopped on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(args),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with _lock:
        _started.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    """SIGTERM to the process's own group (uvicorn workers included), SIGKILL after grace."""
    try:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # The leader may be gone while a worker of its group lingers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        with _lock:
            if proc in _started:
                _started.remove(proc)


def stop_all() -> None:
    with _lock:
        procs = list(reversed(_started))
    for proc in procs:
        stop(proc, grace=5)


atexit.register(stop_all)


def _install_signals(deadline_s: int) -> None:
    def expired(signum: int, frame: FrameType | None) -> Any:
        raise BenchTimeout(f"the benchmark did not finish within its deadline ({deadline_s} s)")

    def terminated(signum: int, frame: FrameType | None) -> Any:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, expired)
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)
    signal.alarm(deadline_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- the two servers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The interpreter both servers run in, and the uvicorn options they share."""

    python: str
    workers: int
    flavour: str
    note: str = ""

    @classmethod
    def detect(cls, python: str, workers: int) -> Target:
        probe = subprocess.run(
            [python, "-c", "import json, sys; sys.path.insert(0, sys.argv[1]);"
             "import _bare_app, keyops; print(json.dumps([_bare_app.uvicorn_flavour(),"
             " keyops.__file__]))", str(BENCH_DIR)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if probe.returncode != 0:
            raise BenchError(f"{python} can not import keyops and FastAPI:\n{probe.stderr}")
        flavour, keyops_file = json.loads(probe.stdout)
        tree = Path(keyops_file).resolve().parent
        text = f"{flavour['loop']}+{flavour['http']}, keyops from {tree}"
        note = ""
        if workers > 1:
            helped = subprocess.run(
                [python, "-m", "keyops", "serve", "--help"],
                capture_output=True, text=True, timeout=60, check=False,
                env={**os.environ, "COLUMNS": "200"},
            )  # fmt: skip
            if "--workers" not in helped.stdout:
                note = f"keyops serve has no --workers: {workers} asked, both run 1 worker"
                workers = 1
        return cls(python, workers, text, note)


@dataclass
class Server:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"{self.name} exited (status {self.process.returncode}):\n{self.log_tail()}"
            )


def _wait_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        server.check_alive()
        try:
            if httpx.get(server.base_url + HEALTHCHECK, timeout=2).text == "OK":
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(
                f"{server.name} did not come up in {timeout:g} s:\n{server.log_tail()}"
            )
        time.sleep(0.1)


@contextmanager
def _running(server: Server, timeout: float) -> Iterator[Server]:
    try:
        _wait_healthy(server, timeout)
        yield server
    finally:
        stop(server.process)


@contextmanager
def keyops_server(
    target: Target, database_url: str, workdir: Path, *, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """``keyops serve --demo`` on a free port with a fresh data dir, healthy, stopped after."""
    port = free_port()
    data_dir = workdir / "keyops-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "KEYOPS_DATABASE_URL": database_url,
        "KEYOPS_DATA_DIR": str(data_dir),
        "KEYOPS_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "KEYOPS_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "KEYOPS_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    args = [target.python, "-m", "keyops", "serve", "--port", str(port), "--demo"]
    if target.workers > 1:
        args += ["--workers", str(target.workers)]
    proc = spawn(args, log_path=workdir / f"keyops-{port}.log", env=env, cwd=workdir)
    with _running(
        Server("keyops serve", f"http://127.0.0.1:{port}", proc, workdir / f"keyops-{port}.log"), 90
    ) as s:
        yield s


@contextmanager
def bare_server(
    target: Target, workdir: Path, *, list_file: Path | None = None
) -> Iterator[Server]:
    """The bare FastAPI app of ``_bare_app.py``, same interpreter and options as keyops."""
    port = free_port()
    args = [target.python, str(BARE_APP), "--port", str(port), "--workers", str(target.workers)]
    if list_file is not None:
        args += ["--list-file", str(list_file)]
    log_path = workdir / f"bare-{port}.log"
    proc = spawn(args, log_path=log_path, env=dict(os.environ), cwd=workdir)
    with _running(Server("bare app", f"http://127.0.0.1:{port}", proc, log_path), 60) as s:
        yield s


# --- databases ------------------------------------------------------------------------------


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh database of the kind for one run; a PostgreSQL one is dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'keyops.db'}"
        return
    name = f"keyops_bench_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise BenchError(
            f"PostgreSQL at {PG_ADMIN_URL} is not usable ({exc}); set KEYOPS_TEST_PG_ADMIN_URL"
            " or run with --db sqlite"
        ) from exc
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the command line and the run per database ----------------------------------------------


@dataclass
class Context:
    """One database's run: where, what, and the parsed options."""

    db: str
    database_url: str
    workdir: Path
    target: Target
    args: argparse.Namespace


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every benchmark has; add its own and pass the result to ``run``."""
    text = doc or ""
    p = argparse.ArgumentParser(
        description=text.split("\n\n")[0],
        epilog="\n\n".join(text.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", choices=[*DATABASES, "both"], default="both")
    p.add_argument("--workers", type=int, default=1, help="for keyops serve and the bare app")
    p.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter whose keyops and uvicorn both servers run (e.g. another tree's venv)",
    )
    p.add_argument(
        "--deadline",
        type=int,
        default=None,
        help=f"stop everything after this many s (default {SECONDS_PER_DATABASE} per database)",
    )
    return p


def run(
    args: argparse.Namespace,
    title: str,
    bench: Callable[[Context], list[str]],
    *,
    needs_wrk: bool = True,
) -> int:
    """Run ``bench`` once per database asked for; print its summary lines; 1 on any error."""
    dbs = list(DATABASES) if args.db == "both" else [args.db]
    deadline = args.deadline or SECONDS_PER_DATABASE * len(dbs)
    _install_signals(deadline)
    started = time.monotonic()
    summary: list[str] = []
    failed = 0
    try:
        target = Target.detect(args.python, args.workers)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"{title}\n  workers {target.workers}, {target.flavour}; {os.cpu_count()} cores,"
            f" load {load}; {dt.datetime.now().isoformat(timespec='seconds')}",
            flush=True,
        )
        if target.note:
            print(f"  note: {target.note}", flush=True)
        if needs_wrk:
            wrk_binary()
        for db in dbs:
            print(f"\n[{db}]", flush=True)
            db_started = time.monotonic()
            try:
                with (
                    tempfile.TemporaryDirectory(prefix=f"keyops-bench-{db}-") as tmp,
                    database(db, Path(tmp)) as url,
                ):
                    lines = bench(Context(db, url, Path(tmp), target, args))
                summary += [f"{db:10s} {line}" for line in lines]
            except BenchTimeout:
                raise
            except BenchError as exc:
                failed += 1
                print(f"  ERROR: {exc}", flush=True)
                summary.append(f"{db:10s} ERROR: {str(exc).splitlines()[0]}")
            print(f"  [{db} took {time.monotonic() - db_started:.0f} s]", flush=True)
    except BenchError as exc:
        failed += 1
        print(f"ERROR: {exc}", flush=True)
        summary.append(f"ERROR: {str(exc).splitlines()[0]}")
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    finally:
        signal.alarm(0)
        stop_all()
    print(f"\nsummary ({time.monotonic() - started:.0f} s):")
    for line in summary:
        print(f"  {line}")
    return 1 if failed else 0


# --- wrk -------------------------------------------------------------------------------------


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise BenchError(
            "wrk is not installed: apt-get install -y wrk (Debian/Ubuntu), brew install wrk"
            " (macOS), or build it from https://github.com/wg/wrk"
        )
    return path


@dataclass(frozen=True)
class WrkRequest:
    """One request of a wrk plan; ``@@SEQ@@`` in path or body becomes a unique value."""

    method: str
    path: str
    body: bytes | None = None
    content_type: str | None = None
    thread: int = -1


@dataclass
class WrkResult:
    label: str
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    statuses: dict[int, int]
    sample: str

    def check(self, *, allow_empty: bool = False) -> WrkResult:
        """Raise unless every request was answered 2xx (no speed for a failing run)."""
        bad = {s: n for s, n in self.statuses.items() if not 200 <= s < 300}
        errors = {k: n for k, n in self.errors.items() if n}
        if bad or errors or (self.requests == 0 and not allow_empty):
            raise BenchError(
                f"{self.label}: {self.requests} requests, statuses {self.statuses},"
                f" socket errors {errors or 'none'}; first non-2xx body: {self.sample!r}"
            )
        return self

    def line(self) -> str:
        return (
            f"{self.label:28s} {self.rps:9.1f} req/s   p50 {self.p50_ms:8.2f} ms"
            f"   p99 {self.p99_ms:8.2f} ms   ({self.requests} requests)"
        )


class WrkRun:
    """A wrk process running a plan in the background; ``result()`` waits and parses."""

    def __init__(
        self,
        base_url: str,
        plan: Sequence[WrkRequest],
        *,
        label: str,
        workdir: Path,
        headers: dict[str, str] | None = None,
        connections: int = 16,
        threads: int = 2,
        duration: float = 5.0,
        timeout_s: int = 60,
        seq_prefix: str = "",
    ) -> None:
        self.label = label
        self.duration = duration
        self.timeout_s = timeout_s
        plan_dir = Path(tempfile.mkdtemp(prefix="wrk-plan-", dir=workdir))
        lines = [f"H\t{k}\t{v}" for k, v in (headers or {}).items()]
        lines.append(f"P\t{seq_prefix}")
        for i, r in enumerate(plan):
            body = "-"
            if r.body is not None:
                body_path = plan_dir / f"body-{i}"
                body_path.write_bytes(r.body)
                body = str(body_path)
            lines.append(f"R\t{r.thread}\t{r.method}\t{r.path}\t{r.content_type or '-'}\t{body}")
        plan_file = plan_dir / "plan.tsv"
        plan_file.write_text("\n".join(lines) + "\n")
        self.output = plan_dir / "wrk.out"
        command = [
            wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{max(1, math.ceil(duration))}s",
            f"--timeout={timeout_s}s", "-s", str(WRK_SCRIPT), base_url,
        ]  # fmt: skip
        self.process = spawn(
            command, log_path=self.output, env={**os.environ, "WRK_PLAN": str(plan_file)},
            cwd=workdir,
        )  # fmt: skip

    def result(self) -> WrkResult:
        try:
            self.process.wait(timeout=self.duration + self.timeout_s + 30)
        finally:
            stop(self.process)
        text = self.output.read_text(errors="replace")
        line = next((x for x in text.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise BenchError(f"{self.label}: wrk printed no result:\n{text[-2000:]}")
        raw = json.loads(line[len("RESULT ") :])
        statuses = {int(k): int(v) for k, v in raw.pop("statuses").items()}
        return WrkResult(label=self.label, statuses=statuses, **raw)


def wrk(base_url: str, plan: Sequence[WrkRequest], **options: Any) -> WrkResult:
    """Run wrk on a plan to the end; the result is checked (every answer 2xx)."""
    return WrkRun(base_url, plan, **options).result().check()


def warm_up(base_url: str, plan: Sequence[WrkRequest], **options: Any) -> None:
    """A short wrk run not reported; a slow server may finish none of it, none may fail."""
    options = {**options, "duration": 2, "label": f"warm-up {options.get('label', '')}"}
    WrkRun(base_url, plan, **options).result().check(allow_empty=True)


# --- API calls ------------------------------------------------------------------------------


def issue_token(base_url: str, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> str:
    """A token from the token endpoint (client credentials, form-encoded)."""
    r = httpx.post(
        f"{base_url}/apiops/auth/token",
        data={"grant_type": "client_credentials", "client_id": username, "client_secret": password},
        timeout=60,
    )
    if r.status_code != 200:
        raise BenchError(f"token: {r.status_code} {r.text[:300]}")
    token: str = r.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


BOUNDARY = "----keyopsBench9MA4YWxkTrZu0gW"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def certificate_form(
    *,
    name: str | None,
    alias: str,
    description: str,
    environments: Sequence[str],
    pem: bytes,
) -> bytes:
    """The seed's multipart body (``MULTIPART`` is its Content-Type); name None on update."""
    fields = [("certificateName", name)] if name is not None else []
    fields += [
        ("alias", alias),
        ("certificateDescription", description),
        ("environmentList", ",".join(environments)),
    ]
    chunks = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields
    ]
    chunks.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="pemEncodedFile";'
        ' filename="certificate.pem"\r\nContent-Type: application/x-pem-file\r\n\r\n'.encode()
        + pem
        + b"\r\n"
    )
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(chunks)


def certificates_path(project: str, name: str | None = None) -> str:
    return f"/apiops/projects/{project}/certificates/" + (f"{name}/" if name else "")


class Api:
    """The keyops calls the benchmarks make to set up; every call must succeed."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self._local = threading.local()

    @property
    def client(self) -> httpx.Client:
        # One client per thread, so that ``concurrently`` needs no locking.
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base_url, headers=bearer(self.token), timeout=300)
            self._local.client = client
        return client

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        r = self.client.request(method, path, **kwargs)
        if not 200 <= r.status_code < 300:
            raise BenchError(f"{method} {path}: {r.status_code} {r.text[:400]}")
        answer: dict[str, Any] = r.json()
        if answer.get("success") is False:
            raise BenchError(f"{method} {path}: success false: {r.text[:400]}")
        return answer

    def create_certificate(
        self, project: str, name: str, pem: bytes, environments: Sequence[str]
    ) -> dict[str, Any]:
        body = certificate_form(
            name=name, alias=f"alias-{name}", description=f"bench certificate {name}",
            environments=environments, pem=pem,
        )  # fmt: skip
        return self.call(
            "POST", certificates_path(project), content=body, headers={"Content-Type": MULTIPART}
        )

    def update_certificate(
        self, project: str, name: str, pem: bytes, environments: Sequence[str], query: str = ""
    ) -> dict[str, Any]:
        body = certificate_form(
            name=None, alias=f"alias-{name}", description=f"bench certificate {name}",
            environments=environments, pem=pem,
        )  # fmt: skip
        return self.call(
            "PUT",
            certificates_path(project, name) + query,
            content=body,
            headers={"Content-Type": MULTIPART},
        )

    def create_project(self, name: str) -> dict[str, Any]:
        body = {"name": name, "description": "bench project", "members": [ADMIN_USER]}
        return self.call("POST", "/apiops/admin/projects/", json=body)

    def create_jwk(
        self, project: str, name: str, certificate: str, environment: str
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "description": "bench JWK from certificate",
            "sourceType": "CERTIFICATE",
            "certificateName": certificate,
            "environmentName": environment,
            "useType": "SIGNATURE",
            "algorithm": "RS256",
        }
        return self.call("POST", f"/apiops/projects/{project}/jwks/", json=body)

    def get_jwk(self, project: str, name: str) -> dict[str, Any]:
        item: dict[str, Any] = self.call("GET", f"/apiops/projects/{project}/jwks/{name}/")[
            "resultList"
        ][0]
        return item


def concurrently(fn: Callable[[T], R], items: Iterable[T], *, workers: int = 16) -> list[R]:
    """``fn`` over ``items`` on a thread pool; the first failure is raised."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    pem: bytes
    key: rsa.RSAPrivateKey = field(repr=False)

    def jwk_n(self) -> str:
        """The RSA modulus as a JWK's ``n`` (base64url, no padding)."""
        n = self.key.public_key().public_numbers().n
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rsa_certificate(common_name: str) -> Issued:
    """A self-signed RSA-2048 certificate valid for a year (fine for RS256 JWKs)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), key)


# --- numbers --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    if not ordered:
        raise BenchError("no sample to take a percentile of")
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def verdict(ratio: float, target: float, *, lower_is_better: bool = True) -> str:
    ok = ratio <= target if lower_is_better else ratio >= target
    sign = "<=" if lower_is_better else ">="
    return f"{'meets' if ok else 'MISSES'} target {sign} {target:g}x"
