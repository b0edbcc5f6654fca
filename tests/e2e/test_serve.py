"""Real ``keyops serve`` processes: the README flow, first run, and two replicas."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.databases import database, postgres_database
from tests.support.server import LiveServer, live_server

GENERATED = re.compile(r"created user 'admin' with generated password: (\S+)")
INVALID_TOKEN = {"error": "unauthorized_client", "error_description": "Invalid token"}


def get_token(base_url: str, username: str, password: str) -> str:
    r = httpx.post(
        f"{base_url}/apiops/auth/token",
        data={"grant_type": "client_credentials", "client_id": username, "client_secret": password},
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


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
        token = get_token(server.base_url, "admin", "demo-admin-pw")

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
        token = get_token(first.base_url, "admin", password)
        assert call(first, "GET", "/apiops/projects/", token).status_code == 200
        assert first.log().count(password) == 1

    with live_server(fresh_database, tmp_path / "second", admin_password="") as second:
        assert "generated password" not in second.log()
        assert password not in second.log()
        # The first run's password is still the admin's.
        get_token(second.base_url, "admin", password)

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
        get_token(third.base_url, "admin", password)


def test_two_replicas_on_one_postgresql_behave_as_one(tmp_path: Path) -> None:
    with postgres_database() as url, live_servers(2, url, tmp_path, admin_password="") as (a, b):
        # Both started on an empty database at once: one migrated and bootstrapped, the
        # other waited for the locks and found everything made.
        printed = [GENERATED.findall(s.log()) for s in (a, b)]
        assert sorted(len(p) for p in printed) == [0, 1], [a.log(), b.log()]
        password = next(p[0] for p in printed if p)

        token = get_token(a.base_url, "admin", password)
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
