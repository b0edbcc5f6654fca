"""The web console's server side, in process on both databases: login and its CSRF,
the sealed session cookie, CSRF on every form, what a page may and may not show, and
that every action goes through the public API as the logged-in user.

The browser flows (Playwright with Debian's Chromium, axe-core) are in
tests/e2e/test_console.py; this module checks what a browser can not see.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI

from keyops.console import present
from keyops.console.views import default_algorithm
from tests.conftest import ADMIN_PASSWORD, Factory, bearer, unique
from tests.crypto import certs

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_client(app: FastAPI) -> httpx.AsyncClient:
    """A browser of its own (its own cookie jar), on the test application."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://keyops.test")


async def login(browser: httpx.AsyncClient, username: str, password: str) -> str:
    """Log in through the form; the session's CSRF token."""
    page = await browser.get("/console/login")
    token = CSRF.search(page.text)
    assert token is not None
    r = await browser.post(
        "/console/login",
        data={"csrf_token": token.group(1), "username": username, "password": password},
    )
    assert r.status_code == 303, r.text
    home = await browser.get("/console/")
    assert home.status_code == 200, home.text
    found = CSRF.search(home.text)
    assert found is not None
    return found.group(1)


def pem_cert(common_name: str, days: int = 90) -> tuple[bytes, str]:
    now = dt.datetime.now(dt.UTC)
    issued = certs.make_cert(
        certs.name(("COMMON_NAME", common_name)),
        certs.key("rsa2048"),
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=days),
    )
    return issued.cert.public_bytes(serialization.Encoding.PEM), hashlib.sha256(
        issued.der
    ).hexdigest()


@pytest.fixture
async def browser(app: FastAPI) -> httpx.AsyncClient:
    async with console_client(app) as c:
        yield c


# --- login -----------------------------------------------------------------------------


async def test_pages_need_a_session(browser: httpx.AsyncClient) -> None:
    r = await browser.get("/console/projects/MyProject/certificates/?q=a")
    assert r.status_code == 303
    assert r.headers["location"] == (
        "/console/login?next=%2Fconsole%2Fprojects%2FMyProject%2Fcertificates%2F%3Fq%3Da"
    )


async def test_login_sets_a_sealed_strict_http_only_cookie(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/console/login")
    assert "keyops_console_csrf=" in page.headers["set-cookie"]
    token = CSRF.search(page.text)
    assert token is not None
    r = await browser.post(
        "/console/login",
        data={
            "csrf_token": token.group(1),
            "username": "admin",
            "password": ADMIN_PASSWORD,
            "next": "/console/environments/",
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/console/environments/"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("keyops_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http here; https sets it (test_cookie_secure_...)
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    # The access token is sealed: it does not appear, in any encoding, in the cookie.
    assert "." not in value and len(value) > 60
    assert ADMIN_PASSWORD not in value


async def test_cookie_is_secure_over_https(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://keyops.test") as c:
        page = await c.get("/console/login")
        assert "Secure" in page.headers["set-cookie"]


async def test_wrong_password_is_refused(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/console/login")
    token = CSRF.search(page.text)
    assert token is not None
    r = await browser.post(
        "/console/login",
        data={"csrf_token": token.group(1), "username": "admin", "password": "wrong-one"},
    )
    assert r.status_code == 401
    assert 'role="alert"' in r.text and "Bad credentials" in r.text
    assert "keyops_console=" not in r.headers.get("set-cookie", "")
    assert "wrong-one" not in r.text  # the password is never echoed back


async def test_login_without_its_csrf_cookie_is_refused(browser: httpx.AsyncClient) -> None:
    """A page elsewhere can not post a login (login CSRF): the form's token must match
    the cookie the login page set."""
    r = await browser.post(
        "/console/login",
        data={"csrf_token": "forged", "username": "admin", "password": ADMIN_PASSWORD},
    )
    assert r.status_code == 403
    assert "CSRF" in r.text
    assert "keyops_console=" not in r.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "target", ["https://evil.example/console/", "//evil.example/x", "/apiops/projects/"]
)
async def test_next_never_leaves_the_console(browser: httpx.AsyncClient, target: str) -> None:
    page = await browser.get("/console/login", params={"next": target})
    token = CSRF.search(page.text)
    assert token is not None
    r = await browser.post(
        "/console/login",
        data={
            "csrf_token": token.group(1),
            "username": "admin",
            "password": ADMIN_PASSWORD,
            "next": target,
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/console/"


async def test_login_with_a_personal_token(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, admin_token: str
) -> None:
    r = await client.post(
        "/apiops/admin/users/admin/tokens/",
        json={"name": unique("pat")},
        headers=bearer(admin_token),
    )
    assert r.status_code == 200, r.text
    pat = r.json()["result"]["token"]
    page = await browser.get("/console/login")
    token = CSRF.search(page.text)
    assert token is not None
    r = await browser.post("/console/login", data={"csrf_token": token.group(1), "token": pat})
    assert r.status_code == 303
    assert (await browser.get("/console/")).status_code == 200
    page = await browser.get("/console/login")
    token = CSRF.search(page.text)
    assert token is not None
    r = await browser.post("/console/login", data={"csrf_token": token.group(1), "token": "nope"})
    assert r.status_code == 401


async def test_logout_revokes_the_session_token(app: FastAPI) -> None:
    async with console_client(app) as browser:
        csrf = await login(browser, "admin", ADMIN_PASSWORD)
        stolen = browser.cookies.get("keyops_console")
        assert stolen
        r = await browser.post("/console/logout", data={"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/console/login"
    # The cookie copied before the logout is worth nothing: its token was revoked.
    async with console_client(app) as thief:
        thief.cookies.set("keyops_console", stolen, path="/console")
        r = await thief.get("/console/")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/console/login")


async def test_a_forged_cookie_is_no_session(browser: httpx.AsyncClient) -> None:
    browser.cookies.set("keyops_console", "A" * 120, path="/console")
    r = await browser.get("/console/")
    assert r.status_code == 303


# --- CSRF and what pages show -------------------------------------------------------------


async def test_a_post_without_the_csrf_token_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str
) -> None:
    name = unique("csrf")
    pem, _ = pem_cert(f"{name}.example")
    async with console_client(app) as browser:
        csrf = await login(browser, "admin", ADMIN_PASSWORD)
        r = await browser.post(
            "/console/projects/MyProject/certificates/new",
            data={"csrf_token": csrf, "name": name, "environments": ["production"]},
            files={"file": ("c.pem", pem)},
        )
        assert r.status_code == 200, r.text
        for data in ({}, {"csrf_token": "x" + csrf[1:]}, {"csrf_token": ""}):
            r = await browser.post(
                f"/console/projects/MyProject/certificates/{name}/delete", data=data
            )
            assert r.status_code == 403
            assert 'role="alert"' in r.text and "CSRF" in r.text
    r = await client.get(
        f"/apiops/projects/MyProject/certificates/{name}/", headers=bearer(admin_token)
    )
    assert r.status_code == 200, "the CSRF-less delete must not have happened"


async def test_seed_update_and_rollback_through_the_console(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str
) -> None:
    name, jwk = unique("seed"), unique("seed-jwk")
    first, first_sha = pem_cert(f"{name}.example")
    second, second_sha = pem_cert(f"{name}-2.example")
    async with console_client(app) as browser:
        csrf = await login(browser, "admin", ADMIN_PASSWORD)
        base = f"/console/projects/MyProject/certificates/{name}"
        r = await browser.post(
            "/console/projects/MyProject/certificates/new",
            data={"csrf_token": csrf, "name": name, "environments": ["production", "staging"]},
            files={"file": ("c.pem", first)},
        )
        assert re.findall(r'data-environment="(\w+)" data-success="true"', r.text) == [
            "production",
            "staging",
        ]
        r = await browser.post(
            "/console/projects/MyProject/jwks/from-certificate",
            data={
                "csrf_token": csrf,
                "name": jwk,
                "certificate": name,
                "environment": "production",
                "use": "SIGNATURE",
            },
        )
        assert r.status_code == 200, r.text
        r = await browser.post(
            base + "/update",
            data={
                "csrf_token": csrf,
                "environments": ["production", "staging"],
                "jwks": "SAME_PROJECT",
            },
            files={"file": ("c.pem", second)},
        )
        assert r.status_code == 200, r.text
        assert f'data-name="{jwk}" data-action="UPDATED"' in r.text
        page = await browser.get(base + "/")
        assert re.findall(r'data-field="sha256">([0-9a-f]+)<', page.text) == [second_sha] * 2
        assert 'data-version="1"' in page.text
        assert f'data-name="{jwk}"' in page.text  # derived-jwks
        r = await browser.post(
            base + "/rollback", data={"csrf_token": csrf, "version": "1", "jwks": "SAME_PROJECT"}
        )
        assert r.status_code == 200, r.text
        page = await browser.get(base + "/")
        assert re.findall(r'data-field="sha256">([0-9a-f]+)<', page.text) == [first_sha] * 2
        confirm = await browser.get(base + "/delete")
        assert "will be undeployed from" in confirm.text
        assert "production, staging" in confirm.text
        r = await browser.post(base + "/delete", data={"csrf_token": csrf})
        assert r.status_code == 200, r.text
    r = await client.get(
        f"/apiops/projects/MyProject/certificates/{name}/", headers=bearer(admin_token)
    )
    assert r.status_code == 400  # gone (get-certificate.md answers 400 for a missing name)


async def test_the_console_acts_as_the_user(
    app: FastAPI, factory: Factory, client: httpx.AsyncClient, admin_token: str
) -> None:
    """A member of one project sees only it; another project's pages answer the API's
    refusal, and the audit trail records the user, not the console."""
    mine = await factory.project()
    user = await factory.user("ROLE_API_SECURITY", projects=(mine,))
    async with console_client(app) as browser:
        await login(browser, user.username, user.password)
        home = await browser.get("/console/")
        assert f'<option value="{mine}"' in home.text
        assert '<option value="MyProject"' not in home.text
        r = await browser.get("/console/projects/MyProject/certificates/")
        assert r.status_code == 400  # the API's answer for a project one is not a member of
        assert "has not privilege to access it!" in r.text
        # Not an admin: the audit section says so instead of failing the page.
        r = await browser.get(f"/console/projects/{mine}/certificates/")
        assert r.status_code == 200, r.text


async def test_no_page_shows_private_material_or_unescaped_input(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str
) -> None:
    name = unique("key")
    private = certs.key("p256")
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    r = await client.post(
        "/apiops/projects/MyProject/keys/",
        json={
            "name": name,
            "description": "<script>alert(1)</script>",
            "keyType": "EC",
            "cryptoKeyInfoEnvironmentList": [
                {"environmentName": "production", "privateKey": private_pem}
            ],
        },
        headers=bearer(admin_token),
    )
    assert r.status_code == 200, r.text
    body = private_pem.split("\n")[1]
    async with console_client(app) as browser:
        await login(browser, "admin", ADMIN_PASSWORD)
        for path in (
            "/console/projects/MyProject/keys/",
            f"/console/projects/MyProject/keys/{name}/",
            f"/console/projects/MyProject/keys/{name}/delete",
        ):
            page = await browser.get(path)
            assert page.status_code == 200, page.text
            assert "PRIVATE KEY" not in page.text and body not in page.text
            assert "<script>alert(1)</script>" not in page.text
            if not path.endswith("/delete"):
                assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
            assert page.headers["cache-control"] == "no-store"
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_unknown_query_parameters_and_kinds(browser: httpx.AsyncClient) -> None:
    await login(browser, "admin", ADMIN_PASSWORD)
    r = await browser.get("/console/projects/MyProject/secrets/")
    assert r.status_code == 404
    r = await browser.get("/console/projects/MyProject/certificates/", params={"bogus": "1"})
    assert r.status_code == 400
    r = await browser.get("/console/static/../views.py")
    assert r.status_code == 404


async def test_session_ends_after_idling(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    async with console_client(app) as browser:
        await login(browser, "admin", ADMIN_PASSWORD)
        monkeypatch.setattr(app.state.settings, "console_idle_seconds", 0.000001)
        r = await browser.get("/console/")
        assert r.status_code == 303


# --- what the pages compute (pure) --------------------------------------------------------


def test_badges_by_threshold() -> None:
    assert present.badge(-3).css == "badge-expired"
    assert present.badge(0).css == "badge-danger"
    assert present.badge(7).css == "badge-danger"
    assert present.badge(8).css == "badge-warn"
    assert present.badge(30).css == "badge-warn"
    assert present.badge(31).css == "badge-ok"
    assert present.badge(1).text == "1 day"
    assert present.badge(12).text == "12 days"
    assert present.badge(-2).text == "expired 2 days ago"


def test_certificate_facts_match_the_certificate() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    key = certs.key("p256")
    serial = secrets.randbits(64) | 1 << 63
    issued = certs.make_cert(
        certs.name(("COMMON_NAME", "facts.example"), ("ORGANIZATION_NAME", "Acme, Inc")),
        key,
        serial=serial,
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=10),
    )
    import base64

    facts = present.certificate_facts(base64.b64encode(issued.der).decode(), now)
    assert facts is not None
    assert facts.subject == 'O="Acme, Inc", CN=facts.example'
    assert facts.serial == f"{serial:X}"
    assert facts.sha256 == hashlib.sha256(issued.der).hexdigest()
    assert facts.key == "EC P-256"
    assert facts.badge.days == 10 and facts.badge.css == "badge-warn"
    assert present.certificate_facts("not base64!") is None
    assert present.certificate_facts(None) is None


@pytest.mark.parametrize(
    ("key", "use", "algorithm"),
    [
        ("RSA 2048", "SIGNATURE", "RS256"),
        ("RSA 2048", "ENCRYPTION", "RSA-OAEP-256"),
        ("EC P-384", "SIGNATURE", "ES384"),
        ("EC P-256", "ENCRYPTION", "ECDH-ES"),
        ("OKP Ed25519", "SIGNATURE", "EdDSA"),
    ],
)
def test_default_jwk_algorithm(key: str, use: str, algorithm: str) -> None:
    assert default_algorithm(key, use) == algorithm


async def test_upload_a_keystore_and_see_its_entries(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str
) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    name = unique("store")
    key = certs.key("rsa2048")
    issued = certs.make_cert(certs.name(("COMMON_NAME", f"{name}.example")), key)
    data = pkcs12.serialize_key_and_certificates(
        b"tls", key, issued.cert, None, serialization.BestAvailableEncryption(b"store-pw")
    )
    async with console_client(app) as browser:
        csrf = await login(browser, "admin", ADMIN_PASSWORD)
        r = await browser.post(
            "/console/projects/MyProject/keystores/new",
            data={
                "csrf_token": csrf,
                "name": name,
                "type": "PKCS12",
                "password": "wrong-pw",
                "environments": ["staging"],
            },
            files={"file": ("tls.p12", data)},
        )
        assert r.status_code == 400  # the API's refusal, shown on the page
        assert 'role="alert"' in r.text and "wrong-pw" not in r.text
        r = await browser.post(
            "/console/projects/MyProject/keystores/new",
            data={
                "csrf_token": csrf,
                "name": name,
                "type": "PKCS12",
                "password": "store-pw",
                "environments": ["staging"],
            },
            files={"file": ("tls.p12", data)},
        )
        assert r.status_code == 200, r.text
        assert re.findall(r'data-environment="(\w+)" data-success="true"', r.text) == ["staging"]
        page = await browser.get(f"/console/projects/MyProject/keystores/{name}/")
        assert page.status_code == 200, page.text
        assert 'data-environment="staging"' in page.text and 'data-alias="tls"' in page.text
        assert f"CN={name}.example" in page.text
        assert "store-pw" not in page.text
    r = await client.get(
        f"/apiops/projects/MyProject/keystores/{name}/", headers=bearer(admin_token)
    )
    assert r.status_code == 200, r.text
