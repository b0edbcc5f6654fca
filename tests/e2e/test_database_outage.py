"""A PostgreSQL outage: 503 within a bound while it lasts, service again after, no restart.

The server runs as a real process whose database connection goes through a TCP proxy
the test cuts (connections refused, or a silent network path) and restores.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.support.databases import postgres_database
from tests.support.server import LiveServer, live_server, password_token
from tests.support.tcp_proxy import TcpProxy, tcp_proxy

ADMIN_PASSWORD = "outage-admin-password-1"
CONNECT_TIMEOUT = 2
STATEMENT_TIMEOUT = 2.0
# Worst case: a silent pooled connection (statement timeout + 2 s margin), then one
# reconnect attempt (connect timeout), plus slack for a loaded machine.
BOUND = STATEMENT_TIMEOUT + 2 + CONNECT_TIMEOUT + 3
UNAVAILABLE = {
    "error": "service_unavailable",
    "error_description": "The database is unavailable; try again later",
}


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, TcpProxy]]:
    with postgres_database() as url:
        parts = urlsplit(url)
        with tcp_proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
            env = {
                "KEYOPS_DATABASE_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
                "KEYOPS_DATABASE_STATEMENT_TIMEOUT_SECONDS": str(STATEMENT_TIMEOUT),
            }
            data_dir: Path = tmp_path_factory.mktemp("outage")
            with live_server(
                _through(url, proxy.port),
                data_dir,
                admin_password=ADMIN_PASSWORD,
                demo=False,
                extra_env=env,
            ) as server:
                yield server, proxy


def _timed(method: str, url: str, **kwargs: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = httpx.request(method, url, timeout=60, **kwargs)  # type: ignore[arg-type]
    return r, time.monotonic() - started


def _all_answer(server: LiveServer, token: str, status: int) -> None:
    base = server.base_url
    auth = {"Authorization": f"Bearer {token}"}
    calls: list[tuple[str, str, dict[str, object]]] = [
        ("GET", f"{base}/apiops/test/healthcheck", {}),
        ("GET", f"{base}/apiops/projects/", {"headers": auth}),
        ("GET", f"{base}/apiops/admin/users/", {"headers": auth}),
        (
            "POST",
            f"{base}/apiops/auth/token",
            {"data": {"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"}},
        ),
    ]
    for method, url, kwargs in calls:
        r, elapsed = _timed(method, url, **kwargs)
        if status == 503:
            assert r.status_code == 503, (url, r.text)
            assert r.json() == UNAVAILABLE
            assert elapsed < BOUND, (url, elapsed)
        elif url.endswith("/token"):
            assert r.status_code == 401, (url, r.text)
        else:
            assert r.status_code == 200, (url, r.text)
    r, elapsed = _timed("HEAD", f"{base}/apiops/test/healthcheck")
    assert r.status_code == (503 if status == 503 else 200)
    assert elapsed < BOUND


def test_connections_dropped_in_steady_use_cost_at_most_one_request(
    outage: tuple[LiveServer, TcpProxy],
) -> None:
    """The pool checks a connection only when it was idle or after a failure (no round
    trip per unit of work): every pooled connection dropped at once, while in steady use
    (a database restart), costs at most one answer 503; the failure makes the pool check
    and replace the rest, and the next answers are 200. It runs before the outage tests:
    after a failure the pool checks every connection for a while."""
    server, proxy = outage
    token = password_token(server.base_url, "admin", ADMIN_PASSWORD)
    url = f"{server.base_url}/apiops/projects/"
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(20):  # every pooled connection recently used
        assert httpx.get(url, headers=auth, timeout=30).status_code == 200
    proxy.cut("refuse")
    proxy.restore()  # every connection through the proxy is closed; new ones work
    answers = [httpx.get(url, headers=auth, timeout=30) for _ in range(10)]
    statuses = [r.status_code for r in answers]
    print("answers after the drop:", statuses)
    assert statuses.count(503) <= 1, statuses
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[1:] == [200] * 9, statuses
    for r in answers:
        if r.status_code == 503:
            assert r.json() == UNAVAILABLE
    assert "Traceback" not in server.log(), server.log()


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_outage_is_503_within_the_bound_and_recovers(
    outage: tuple[LiveServer, TcpProxy], mode: str
) -> None:
    server, proxy = outage
    token = password_token(server.base_url, "admin", ADMIN_PASSWORD)
    _all_answer(server, token, 200)
    proxy.cut(mode)  # type: ignore[arg-type]
    try:
        _all_answer(server, token, 503)
        _all_answer(server, token, 503)  # and again: nothing piles up or sticks
    finally:
        proxy.restore()
    _all_answer(server, token, 200)
    assert server.process.poll() is None
    assert "Traceback" not in server.log(), server.log()
