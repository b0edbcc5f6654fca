"""The console's session over plain HTTP against a real ``keyops serve --demo`` per backend,
started with ``KEYOPS_CONSOLE_IDLE_SECONDS=2``: the idle timeout (and activity keeping a
session), the login form's CSRF protection, bad credentials, the session cookie's
attributes, a personal access token login, and logout.

Redirects are not followed, so every 303 and its Location are checked as sent.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.console import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    AdminApi,
    ConsoleHttp,
    alerts_of,
    cookie_attributes,
    path_of,
    query_of,
    redirect_location,
    set_cookie_headers,
    unique,
)
from tests.support.databases import BACKENDS, database
from tests.support.server import LiveServer, live_server

PASSWORD = "console-session-admin-pw-1"
IDLE_SECONDS = 2


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    backend = str(request.param)
    root = tmp_path_factory.mktemp(f"console-session-{backend}")
    with (
        database(backend, root) as url,
        live_server(
            url,
            root / "data",
            admin_password=PASSWORD,
            extra_env={"KEYOPS_CONSOLE_IDLE_SECONDS": str(IDLE_SECONDS)},
        ) as live,
    ):
        r = httpx.get(f"{live.base_url}/console/login", timeout=30)
        if r.status_code != 200:
            pytest.fail(
                f"GET /console/login answered {r.status_code}: the console is not served",
                pytrace=False,
            )
        yield live


@pytest.fixture
def http(server: LiveServer) -> Iterator[ConsoleHttp]:
    session = ConsoleHttp(server.base_url)
    yield session
    session.close()


def assert_to_login(response: httpx.Response, next_path: str | None = None) -> None:
    assert response.status_code == 303, (response.status_code, response.text[:300])
    target = redirect_location(response)
    assert path_of(target) == "/console/login", target
    if next_path is not None:
        assert query_of(target).get("next") == [next_path], target


def logged_in(http: ConsoleHttp) -> None:
    r = http.login("admin", PASSWORD)
    assert r.status_code == 303, (r.status_code, r.text[:500])
    assert path_of(redirect_location(r)) == "/console/", r.headers["location"]
    assert http.get("/console/").status_code == 200


def test_idle_session_goes_back_to_login(http: ConsoleHttp) -> None:
    logged_in(http)
    time.sleep(IDLE_SECONDS + 1.5)
    assert_to_login(http.get("/console/"), "/console/")
    # Not revived by the refused request either.
    assert_to_login(http.get("/console/"), "/console/")


def test_activity_keeps_the_session(http: ConsoleHttp) -> None:
    logged_in(http)
    started = time.monotonic()
    while time.monotonic() - started < IDLE_SECONDS * 2 + 1:
        time.sleep(IDLE_SECONDS / 2)
        r = http.get("/console/")
        assert r.status_code == 200, (
            f"{time.monotonic() - started:.1f} s after login, with a request every"
            f" {IDLE_SECONDS / 2} s: {r.status_code} {r.headers.get('location')}"
        )


def test_login_needs_its_csrf_token(server: LiveServer, http: ConsoleHttp) -> None:
    page, form = http.login_form()
    assert http.http.cookies.get(CSRF_COOKIE), f"GET {page} set no {CSRF_COOKIE} cookie"
    assert form.fields["csrf_token"] == http.http.cookies.get(CSRF_COOKIE), (
        "the login form's csrf_token is not the keyops_console_csrf cookie's value"
    )
    for what, csrf in (
        ("no csrf_token", None),
        ("an empty csrf_token", ""),
        ("a made-up csrf_token", secrets.token_urlsafe(24)),
    ):
        r = http.login("admin", PASSWORD, csrf=csrf)
        assert r.status_code == 403, f"login with {what}: {r.status_code} {r.text[:300]}"
        assert any("CSRF" in a for a in alerts_of(r.text)), (what, alerts_of(r.text))
        assert not set_cookie_headers(r, SESSION_COOKIE), f"login with {what} set a session"
    assert_to_login(http.get("/console/"))

    # The form's token without the cookie it goes with (another client posting it).
    with httpx.Client(base_url=server.base_url, follow_redirects=False, timeout=30) as bare:
        r = bare.post(
            "/console/login",
            data={
                "csrf_token": form.fields["csrf_token"],
                "username": "admin",
                "password": PASSWORD,
            },
        )
        assert r.status_code == 403, f"login with a token but no cookie: {r.status_code}"
        assert any("CSRF" in a for a in alerts_of(r.text)), alerts_of(r.text)


@pytest.mark.parametrize(
    ("what", "username", "password"),
    [("a wrong password", "admin", "wrong-password"), ("an unknown user", "nobody", PASSWORD)],
)
def test_bad_credentials(http: ConsoleHttp, what: str, username: str, password: str) -> None:
    r = http.login(username, password)
    assert r.status_code == 401, f"login with {what}: {r.status_code} {r.text[:300]}"
    assert any("Bad credentials" in a for a in alerts_of(r.text)), alerts_of(r.text)
    assert not set_cookie_headers(r, SESSION_COOKIE)
    assert_to_login(http.get("/console/"))


def test_session_cookie_attributes(http: ConsoleHttp) -> None:
    r = http.login("admin", PASSWORD)
    assert r.status_code == 303
    (header,) = set_cookie_headers(r, SESSION_COOKIE)
    attributes = cookie_attributes(header)
    assert "httponly" in attributes, header
    assert attributes.get("samesite", "").lower() == "strict", header
    # Served over plain http here: Secure would make browsers drop it.
    assert "secure" not in attributes, header


def test_personal_access_token_login(server: LiveServer, http: ConsoleHttp) -> None:
    api = AdminApi(server.base_url, PASSWORD)
    try:
        token = api.personal_token("admin", unique("console-session"))
    finally:
        api.close()
    r = http.login(token="not-a-token-" + secrets.token_hex(8))
    assert r.status_code == 401, f"a made-up token: {r.status_code}"
    assert any("Bad credentials" in a for a in alerts_of(r.text)), alerts_of(r.text)
    r = http.login(token=token)
    assert r.status_code == 303, (r.status_code, r.text[:300])
    assert path_of(redirect_location(r)) == "/console/"
    assert http.get("/console/").status_code == 200


def test_logout_needs_csrf_and_ends_the_session(server: LiveServer, http: ConsoleHttp) -> None:
    logged_in(http)
    old = http.session_cookie()
    assert old
    form = http.form_on("/console/", button="Log out")
    assert path_of(form.action) == "/console/logout", f"the Log out form posts to {form.action!r}"
    without = {k: v for k, v in form.fields.items() if k != "csrf_token"}
    r = http.post("/console/logout", without)
    assert r.status_code == 403, f"logout without csrf_token: {r.status_code}"
    assert any("CSRF" in a for a in alerts_of(r.text)), alerts_of(r.text)
    assert http.get("/console/").status_code == 200, "a refused logout ended the session"

    r = http.post("/console/logout", form.fields)
    assert_to_login(r)
    with httpx.Client(
        base_url=server.base_url,
        cookies={SESSION_COOKIE: old},
        follow_redirects=False,
        timeout=30,
    ) as replay:
        assert_to_login(replay.get("/console/"), "/console/")
