"""Real ``keyops serve`` processes: the README flow, first run, two replicas, workers."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.crypto import certs
from tests.support.databases import database, postgres_database
from tests.support.server import (
    TEST_MASTER_KEY,
    LiveServer,
    free_port,
    live_server,
    password_token,
)

GENERATED = re.compile(r"created user 'admin' with generated password: (\S+)")
INVALID_TOKEN = {"error": "unauthorized_client", "error_description": "Invalid token"}


def call(server: LiveServer, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method,
        server.base_url + path,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        **kwargs,
    )


@contextmanager
def live_servers(
    count: int, database_url: str, root: Path, **kwargs: Any
) -> Iterator[list[LiveServer]]:
    """Start several servers on one database at the same moment; stop them all after."""
    managers = [live_server(database_url, root / f"node-{i}", **kwargs) for i in range(count)]
    with ExitStack() as stack:
        with ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(m.__enter__) for m in managers]
        servers, errors = [], []
        for manager, future in zip(managers, futures, strict=True):
            try:
                servers.append(future.result())
            except Exception as exc:
                errors.append(exc)
            else:
                stack.push(manager.__exit__)
        if errors:
            raise errors[0]
        yield servers


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(str(request.param), tmp_path) as url:
        yield url


def test_readme_flow(fresh_database: str, tmp_path: Path) -> None:
    with live_server(fresh_database, tmp_path / "data", admin_password="demo-admin-pw") as server:
        assert httpx.get(f"{server.base_url}/apiops/test/healthcheck", timeout=10).text == "OK"
        token = password_token(server.base_url, "admin", "demo-admin-pw")

        r = call(server, "GET", "/apiops/projects/", token)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json;charset=UTF-8"
        body = r.json()
        assert body["status"] == "SUCCESS"
        assert {"name": "MyProject", "description": "Demo project"} in body["resultList"]
        assert body["resultCount"] == len(body["resultList"])

        r = call(server, "GET", "/apiops/environments/MyProject", token)
        assert r.status_code == 200, r.text
        names = {e["name"] for e in r.json()["resultList"]}
        assert {"production", "staging", "development"} <= names

        r = call(server, "GET", "/apiops/test/hello/John", token)
        assert (r.status_code, r.text) == (200, "Hello John")

        # Without the slash too, with no redirect.
        r = call(server, "GET", "/apiops/projects", token, follow_redirects=False)
        assert r.status_code == 200

        r = httpx.get(f"{server.base_url}/apiops/projects/", timeout=10)
        assert r.status_code == 401 and r.json() == INVALID_TOKEN

        # A chosen password is never echoed to the console.
        assert "generated password" not in server.log()
        assert "demo-admin-pw" not in server.log()


def test_first_run_prints_a_generated_password_once(fresh_database: str, tmp_path: Path) -> None:
    with live_server(fresh_database, tmp_path / "first", admin_password="") as first:
        found = GENERATED.findall(first.log())
        assert len(found) == 1, first.log()
        password = found[0]
        assert len(password) >= 16
        token = password_token(first.base_url, "admin", password)
        assert call(first, "GET", "/apiops/projects/", token).status_code == 200
        assert first.log().count(password) == 1

    with live_server(fresh_database, tmp_path / "second", admin_password="") as second:
        assert "generated password" not in second.log()
        assert password not in second.log()
        # The first run's password is still the admin's.
        password_token(second.base_url, "admin", password)

    # Setting KEYOPS_ADMIN_PASSWORD later does not change an existing admin.
    with live_server(fresh_database, tmp_path / "third", admin_password="late-password") as third:
        r = httpx.post(
            f"{third.base_url}/apiops/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "admin",
                "client_secret": "late-password",
            },
            timeout=10,
        )
        assert r.status_code == 401
        password_token(third.base_url, "admin", password)


def test_two_replicas_on_one_postgresql_behave_as_one(tmp_path: Path) -> None:
    with postgres_database() as url, live_servers(2, url, tmp_path, admin_password="") as (a, b):
        # Both started on an empty database at once: one migrated and bootstrapped, the
        # other waited for the locks and found everything made.
        printed = [GENERATED.findall(s.log()) for s in (a, b)]
        assert sorted(len(p) for p in printed) == [0, 1], [a.log(), b.log()]
        password = next(p[0] for p in printed if p)

        token = password_token(a.base_url, "admin", password)
        assert call(b, "GET", "/apiops/projects/", token).status_code == 200

        users = call(b, "GET", "/apiops/admin/users/", token).json()["resultList"]
        assert [u["username"] for u in users] == ["admin"]
        envs = call(a, "GET", "/apiops/environments/", token).json()["resultList"]
        assert sorted(e["name"] for e in envs) == ["development", "production", "staging"]
        projects = call(b, "GET", "/apiops/projects/", token).json()["resultList"]
        assert sorted(p["name"] for p in projects) == ["MyProject", "admin"]

        # A project created on one is visible on the other.
        r = call(a, "POST", "/apiops/admin/projects/", token, json={"name": "made-on-a"})
        assert r.status_code == 200, r.text
        listed = call(b, "GET", "/apiops/projects/", token).json()["resultList"]
        assert "made-on-a" in {p["name"] for p in listed}
        r = call(b, "POST", "/apiops/admin/projects/", token, json={"name": "made-on-a"})
        assert r.status_code == 409

        # A personal token made on one works on the other until revoked on either.
        r = call(a, "POST", "/apiops/admin/users/admin/tokens/", token, json={"name": "ci"})
        assert r.status_code == 200, r.text
        personal = r.json()["result"]
        assert call(b, "GET", "/apiops/projects/", personal["token"]).status_code == 200
        r = call(b, "DELETE", f"/apiops/admin/tokens/{personal['id']}/", token)
        assert r.status_code == 200, r.text
        for server in (a, b):
            r = call(server, "GET", "/apiops/projects/", personal["token"])
            assert r.status_code == 401 and r.json() == INVALID_TOKEN

        # The other way round: issued by b, revoked on a, refused by b.
        r = call(b, "POST", "/apiops/admin/users/admin/tokens/", token, json={"name": "ci2"})
        second = r.json()["result"]
        assert call(a, "GET", "/apiops/test/hello/x", second["token"]).status_code == 200
        assert call(a, "DELETE", f"/apiops/admin/tokens/{second['id']}/", token).status_code == 200
        assert call(b, "GET", "/apiops/test/hello/x", second["token"]).status_code == 401

        # Both replicas stayed up.
        for server in (a, b):
            assert server.process.poll() is None


# --- startup refusals: one line on stderr, exit status 2, nothing left behind ----------


def serve_once(
    data_dir: Path, *, args: Sequence[str] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``keyops serve`` expecting it to refuse; its port is never reached."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KEYOPS_")}
    base.update(
        {
            "KEYOPS_DATA_DIR": str(data_dir),
            "KEYOPS_LOG_LEVEL": "INFO",
            "KEYOPS_ADMIN_PASSWORD": "long-enough-pw",
            "COLUMNS": "40",
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "keyops", "serve", "--port", str(free_port()), *args],
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keyops: ")
    return lines[0]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"KEYOPS_ADMIN_PASSWORD": "short"},
            "keyops: KEYOPS_ADMIN_PASSWORD is too short (5 characters): at least 8 characters"
            " are required; set a longer one, or unset it to have one generated on the first run",
        ),
        (
            {"KEYOPS_MASTER_KEY": "bm90LWEta2V5"},
            "keyops: KEYOPS_MASTER_KEY is not valid (the master key must be 32 bytes, got 9):"
            " set it to the base64 of a 32-byte key, or unset it to use {data}/master.key",
        ),
        (
            {"KEYOPS_MASTER_KEY": "not base64!"},
            "keyops: KEYOPS_MASTER_KEY is not valid (the master key is not valid base64):"
            " set it to the base64 of a 32-byte key, or unset it to use {data}/master.key",
        ),
        (
            {"KEYOPS_TOKEN_TTL_SECONDS": "5", "KEYOPS_MAX_UPLOAD_BYTES": "lots"},
            "keyops: KEYOPS_TOKEN_TTL_SECONDS is not valid (input should be greater than or"
            " equal to 60); KEYOPS_MAX_UPLOAD_BYTES is not valid (input should be a valid"
            " integer, unable to parse string as an integer): fix or unset it",
        ),
        (
            {"KEYOPS_LOG_LEVEL": "loud"},
            "keyops: KEYOPS_LOG_LEVEL is not valid: use one of critical, error, warning, info,"
            " debug",
        ),
        (
            {"KEYOPS_DATABASE_URL": "mysql://db/x"},
            "keyops: KEYOPS_DATABASE_URL is not valid (unsupported database 'mysql': use SQLite"
            " or PostgreSQL): use sqlite:///path.db or postgresql://user@host/db",
        ),
        (
            {"KEYOPS_URL_ALLOW_LIST": "10.1.2.3/8"},
            "keyops: KEYOPS_URL_ALLOW_LIST is not valid: allow list entry '10.1.2.3/8' is not an"
            " IP network: 10.1.2.3/8 has host bits set",
        ),
    ],
)
def test_a_bad_setting_is_refused_in_one_line(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    data = tmp_path / "data"
    line = refusal(serve_once(data, **env))
    assert line == expected.format(data=data.resolve())
    # Refused before anything was created: no schema, no key file.
    assert not data.exists()


def test_an_unreachable_database_is_refused_fast(tmp_path: Path) -> None:
    started = time.monotonic()
    result = serve_once(
        tmp_path / "data",
        KEYOPS_DATABASE_URL="postgresql://postgres:hunter2@127.0.0.1:1/x",
        KEYOPS_DATABASE_CONNECT_TIMEOUT_SECONDS="2",
    )
    line = refusal(result)
    assert time.monotonic() - started < 30
    assert line.startswith(
        "keyops: can not reach the database postgresql://postgres:***@127.0.0.1:1/x ("
    )
    assert line.endswith(
        "): check KEYOPS_DATABASE_URL and that the database is running and reachable"
    )
    assert "hunter2" not in result.stderr


def test_an_unopenable_sqlite_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "keyops.db"
    line = refusal(serve_once(tmp_path / "data", KEYOPS_DATABASE_URL=f"sqlite:///{missing}"))
    assert line == (
        f"keyops: can not reach the database sqlite:///{missing} (unable to open database"
        " file): check KEYOPS_DATABASE_URL and that the database is running and reachable"
    )


def test_a_failed_migration_is_refused(tmp_path: Path) -> None:
    db_path = tmp_path / "newer.db"
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('ffffffffffff')")
    line = refusal(serve_once(tmp_path / "data", KEYOPS_DATABASE_URL=f"sqlite:///{db_path}"))
    assert line.startswith(f"keyops: migrating the database sqlite:///{db_path} failed (")
    assert "ffffffffffff" in line
    assert line.endswith(
        "): restore it from a backup, or run the keyops version that last migrated it"
    )


def test_a_missing_key_file_beside_sealed_secrets_is_refused_not_replaced(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{tmp_path / 'keyops.db'}"
    # A first run with the key file: the database records that key.
    with live_server(
        url, data, admin_password="long-enough-pw", extra_env={"KEYOPS_MASTER_KEY": ""}
    ):
        pass
    key_file = data / "master.key"
    assert key_file.exists()
    key_file.rename(tmp_path / "master.key.backup")

    line = refusal(serve_once(data, KEYOPS_DATABASE_URL=url))
    path = key_file.resolve()
    assert re.fullmatch(
        r"keyops: no master key: this database's secrets are sealed with master key"
        rf" [0-9a-f]{{16}}, but {re.escape(str(path))} does not exist and KEYOPS_MASTER_KEY is"
        rf" not set\. Restore the key file from your backup to {re.escape(str(path))} \(mode"
        r" 0600\), or set KEYOPS_MASTER_KEY to the base64 of that key\.",
        line,
    ), line
    assert not key_file.exists()
    assert sorted(p.name for p in data.iterdir() if p.name.startswith("master")) == []

    # Another key is refused too, naming both ids.
    line = refusal(serve_once(data, KEYOPS_DATABASE_URL=url, KEYOPS_MASTER_KEY=TEST_MASTER_KEY))
    assert "this database's secrets are sealed with master key" in line
    assert "Set KEYOPS_MASTER_KEY (or the data directory's master.key)" in line

    # Restored, it starts again.
    (tmp_path / "master.key.backup").rename(key_file)
    with live_server(
        url, data, admin_password="long-enough-pw", extra_env={"KEYOPS_MASTER_KEY": ""}
    ):
        pass


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "master.key").write_text(TEST_MASTER_KEY + "\n")
    (data / "master.key").chmod(0o644)
    line = refusal(serve_once(data))
    assert line == (
        f"keyops: the master key file can not be used ({data / 'master.key'} is readable by"
        " others (mode 644); keyops needs it to be 0600): restore it from your backup with"
        " mode 0600, or set KEYOPS_MASTER_KEY"
    )


# --- serving: several workers, client disconnects, uvloop and httptools ---------------


def _children(pid: int) -> list[int]:
    """Pids of the processes whose parent is ``pid`` (from /proc: psutil is not a dep)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        # The command name, in parentheses, may hold spaces; ppid is the 2nd field after it.
        if int(text.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def worker_pids(server: LiveServer) -> list[int]:
    """The worker processes uvicorn's supervisor spawned (not its resource tracker)."""
    return sorted(
        pid
        for pid in _children(server.process.pid)
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    )


def _hex_endpoint(port: int) -> str:
    # /proc/net/tcp writes 127.0.0.1:port as 0100007F:PORT (address in host byte order).
    return f"0100007F:{port:04X}"


def _link(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:
        return ""  # closed meanwhile (another connection's)


def serving_pid(server: LiveServer, client_port: int, candidates: list[int]) -> int:
    """The process holding the server end of the open connection from ``client_port``."""
    server_port = int(server.base_url.rsplit(":", 1)[1])
    local, remote = _hex_endpoint(server_port), _hex_endpoint(client_port)
    inode = next(
        fields[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if (fields := line.split())[1] == local and fields[2] == remote
    )
    holders = [
        pid
        for pid in candidates
        for fd in Path(f"/proc/{pid}/fd").iterdir()
        if _link(fd) == f"socket:[{inode}]"
    ]
    assert len(holders) == 1, (holders, candidates)
    return holders[0]


def traced(
    server: LiveServer, workers: list[int], method: str, path: str, **kwargs: Any
) -> tuple[httpx.Response, int]:
    """One request on a fresh connection, and the pid of the worker that answered it."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        r = client.request(method, path, **kwargs)
        # The connection is still open (keep-alive): its server end names the worker.
        client_port = r.extensions["network_stream"].get_extra_info("client_addr")[1]
        return r, serving_pid(server, client_port, workers)


def test_workers_share_one_port_and_one_database(fresh_database: str, tmp_path: Path) -> None:
    with live_server(fresh_database, tmp_path / "data", admin_password="", workers=2) as server:
        workers = worker_pids(server)
        assert len(workers) == 2, workers
        # Both workers started on an empty database at once: the parent migrated it
        # first, one worker made the admin, and the password was printed once.
        printed = GENERATED.findall(server.log())
        assert len(printed) == 1, server.log()
        password = printed[0]

        def issue() -> tuple[str, int]:
            r, pid = traced(
                server,
                workers,
                "POST",
                "/apiops/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "admin",
                    "client_secret": password,
                },
            )
            assert r.status_code == 200, r.text
            return r.json()["access_token"], pid

        # Tokens issued by each worker (fresh connections until both have issued one).
        tokens: dict[int, str] = {}
        for _ in range(40):
            token, pid = issue()
            tokens.setdefault(pid, token)
            if len(tokens) == 2:
                break
        assert sorted(tokens) == workers, "one worker issued every token"

        def projects(i: int) -> tuple[int, int, int]:
            issuer = workers[i % 2]
            r, pid = traced(
                server, workers, "GET", "/apiops/projects/", headers=bearer(tokens[issuer])
            )
            return r.status_code, issuer, pid

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(projects, range(40)))
        assert [status for status, _, _ in results] == [200] * 40
        assert {pid for _, _, pid in results} == set(workers)
        # Each worker accepted a token the other one issued.
        assert {(issuer, pid) for _, issuer, pid in results if issuer != pid} == {
            (workers[0], workers[1]),
            (workers[1], workers[0]),
        }

        # A write through one worker is read back by both, on every fresh connection.
        token = tokens[workers[0]]
        pem = certs.self_signed("p256", "workers.example").cert.public_bytes(Encoding.PEM)
        r, writer = traced(
            server,
            workers,
            "POST",
            "/apiops/projects/MyProject/certificates/",
            headers=bearer(token),
            data={
                "certificateName": "made-by-one-worker",
                "alias": "w",
                "certificateDescription": "written through one worker",
                "environmentList": "production",
            },
            files={"pemEncodedFile": ("certificate.pem", pem)},
        )
        assert r.status_code == 200, r.text
        readers = set()
        for _ in range(20):
            r, pid = traced(
                server,
                workers,
                "GET",
                "/apiops/projects/MyProject/certificates/",
                headers=bearer(token),
            )
            assert r.status_code == 200, r.text
            names = {c["name"] for c in r.json()["resultList"]}
            assert "made-by-one-worker" in names
            readers.add(pid)
        assert readers - {writer}, f"all 20 reads were served by the writer {writer}"

        assert "Traceback" not in server.log()
        assert worker_pids(server) == workers, "a worker died and was replaced"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def send_part_and_leave(server: LiveServer, head: str, body: bytes, declared: int) -> None:
    """Send a request's headers and the start of its body, then close the connection."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"{head}\r\nHost: {host}\r\nContent-Length: {declared}\r\n\r\n".encode() + body
        )
        # Long enough for the server to start reading the body before the close.
        time.sleep(0.5)


def wait_for_log(server: LiveServer, text: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while server.log().count(text) < count:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)


def test_a_client_leaving_mid_body_is_one_info_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keyops.db'}"
    with live_server(
        url,
        tmp_path / "data",
        admin_password="long-enough-pw",
        extra_env={"KEYOPS_LOG_LEVEL": "info"},
    ) as server:
        token = password_token(server.base_url, "admin", "long-enough-pw")
        boundary = "keyops-disconnect"
        pem = certs.self_signed("p256", "partial.example").cert.public_bytes(Encoding.PEM)
        multipart_start = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="certificateName"\r\n\r\n'
            f"never-finished\r\n--{boundary}\r\nContent-Disposition: form-data;"
            ' name="pemEncodedFile"; filename="certificate.pem"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + pem[: len(pem) // 2]
        path = "/apiops/projects/MyProject/certificates/"
        send_part_and_leave(
            server,
            f"POST {path} HTTP/1.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}",
            multipart_start,
            declared=100_000,
        )
        wait_for_log(server, f"INFO keyops client disconnected during POST {path}", 1)

        # The same for a JSON body (read first by the input guard, then by FastAPI) and
        # a form-encoded one the endpoint reads itself.
        send_part_and_leave(
            server,
            "POST /apiops/admin/projects/ HTTP/1.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}",
            b'{"name": "never-fini',
            declared=1000,
        )
        wait_for_log(server, "client disconnected during POST /apiops/admin/projects/", 1)
        send_part_and_leave(
            server,
            "POST /apiops/auth/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
            b"grant_type=client_credentials&client_id=ad",
            declared=1000,
        )
        wait_for_log(server, "client disconnected during POST /apiops/auth/token", 1)

        log = server.log()
        assert "Traceback" not in log
        assert "ERROR" not in log
        assert " 500" not in log
        # Nothing of the unfinished requests was stored, and the server still answers.
        r = httpx.get(server.base_url + path, headers=bearer(token), timeout=10)
        assert r.status_code == 200, r.text
        assert "never-finished" not in r.text
        r = httpx.get(server.base_url + "/apiops/projects/", headers=bearer(token), timeout=10)
        assert r.status_code == 200 and "never-fini" not in r.text
        assert server.process.poll() is None


def test_workers_run_uvloop_and_httptools(tmp_path: Path) -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "keyops", "serve", "--help"],
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "--workers" in help_text

    url = f"sqlite:///{tmp_path / 'keyops.db'}"
    with live_server(url, tmp_path / "data", admin_password="long-enough-pw", workers=2) as server:
        for pid in worker_pids(server):
            # Asked for by name, so each worker has both extension modules loaded.
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert re.search(r"/uvloop/loop\.[^/]*\.so", maps), pid
            assert re.search(r"/httptools/parser/parser\.[^/]*\.so", maps), pid


@pytest.mark.parametrize("workers", ["0", "-3"])
def test_fewer_than_one_worker_is_refused(tmp_path: Path, workers: str) -> None:
    data = tmp_path / "data"
    line = refusal(serve_once(data, args=["--workers", workers]))
    assert line == (
        f"keyops: --workers must be at least 1 (got {workers}): give the number of server"
        " processes, or leave it out for one"
    )
    assert not data.exists()
