"""Bad input never reaches the database as a 500; gateway calls authenticate first.

* NUL (which PostgreSQL text can not hold) and other control characters in a path or
  query, and NUL in a JSON, urlencoded or multipart text value, are refused with 400
  before any query, on every entry point, authenticated or not (docs/decisions.md).
* Ids outside the columns' range are unknown ids: 404.
* A form's limits are checked against what they limit (request vs. file).
* Driver errors left over map to 400 (bad data) and 503 (database unavailable).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.exc import DataError, OperationalError

from keyops.api.app import create_app
from keyops.api.errors import install_error_handlers
from keyops.config import Settings
from tests.conftest import Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import CERT_PATH, certificate_parts, multipart

JSON = "application/json;charset=UTF-8"
FORM = "application/x-www-form-urlencoded"
PATH_REFUSED = {
    "error": "bad_request",
    "error_description": "The request path may not contain control characters!",
}


def refused(text: str, error: str = "bad_request") -> dict[str, str]:
    return {"error": error, "error_description": text}


def nul(field: str, error: str = "bad_request") -> dict[str, str]:
    return refused(f"{field} may not contain a NUL character!", error)


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


def assert_answer(r: httpx.Response, status: int, body: dict[str, Any]) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == JSON
    assert r.json() == body


# --- NUL and control characters --------------------------------------------------------

PATHS = [
    "/apiops/projects/ad%00min/certificates/",
    "/apiops/projects/admin/certificates/ce%00rt/",
    "/apiops/projects/admin/jwks/j%00wk/",
    "/apiops/projects/admin/keys/k%00ey/",
    "/apiops/projects/admin/keystores/k%00s/",
    "/apiops/admin/users/ad%00min/",
    "/apiops/admin/users/ad%00min/tokens/",
    "/apiops/admin/projects/ad%00min/members/",
    "/apiops/admin/environments/e%00nv/",
    "/apiops/environments/e%00nv/deployments/",
    "/apiops/projects/admin/certificates/tab%09name/",
    "/apiops/nothing%00here",
]


@pytest.mark.parametrize("path", PATHS)
async def test_control_character_in_path_is_400(
    client: httpx.AsyncClient, admin_token: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert_answer(await client.get(path, headers=bearer(admin_token)), 400, PATH_REFUSED)
    no_traceback(caplog)


async def test_control_character_in_path_is_400_unauthenticated(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    r = await client.delete("/apiops/projects/ad%00min/keys/k/")
    assert_answer(r, 400, PATH_REFUSED)
    no_traceback(caplog)


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("PUT", "/apiops/projects/admin/certificates/c1/?updateScope=ALL%00", "updateScope"),
        ("PUT", "/apiops/projects/admin/keys/k1/?jwkUpdateAction=UP%00DATE", "jwkUpdateAction"),
        ("PUT", "/apiops/projects/admin/keystores/k1/?updateScope=%00", "updateScope"),
        ("GET", "/apiops/gateway/sync/?node=n%00ode", "node"),
        ("DELETE", "/apiops/gateway/sync/?node=n%0Aode", "node"),
    ],
)
async def test_control_character_in_query_is_400(
    client: httpx.AsyncClient,
    admin_token: str,
    method: str,
    path: str,
    name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    r = await client.request(method, path, headers=bearer(admin_token))
    expected = refused(f"Query parameter {name} may not contain control characters!")
    assert_answer(r, 400, expected)
    no_traceback(caplog)


async def test_control_character_in_query_name_is_400(client: httpx.AsyncClient) -> None:
    r = await client.get("/apiops/test/healthcheck?a%00b=1")
    assert_answer(r, 400, refused("Query parameter names may not contain control characters!"))


@pytest.mark.parametrize(
    "fields",
    [
        "grant_type=client_credentials&client_id=ad%00min&client_secret=x",
        "grant_type=client_credentials&client_id=admin&client_secret=x%00",
        "grant_type=client%00credentials&client_id=admin&client_secret=x",
    ],
)
async def test_nul_on_the_token_endpoint_is_400(
    client: httpx.AsyncClient, fields: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    r = await client.post("/apiops/auth/token", content=fields, headers={"Content-Type": FORM})
    field = next(f.split("=")[0] for f in fields.split("&") if "%00" in f)
    assert_answer(r, 400, nul(field, "invalid_request"))
    no_traceback(caplog)


async def test_nul_in_a_token_parameter_name_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/apiops/auth/token",
        content="grant_type=client_credentials&client_id=admin&client_secret=x&a%00=1",
        headers={"Content-Type": FORM},
    )
    assert_answer(r, 400, nul("A parameter name", "invalid_request"))


@pytest_asyncio.fixture
async def env_name(factory: Factory) -> str:
    return await factory.environment(projects=("admin",))


def _json_cases(env: str) -> list[tuple[str, str, dict[str, Any], str]]:
    secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtMzItYnl0ZXMhIQ=="
    return [
        (
            "POST",
            "/apiops/admin/users/",
            {"username": "ad\x00min", "password": "a-password-1", "roles": []},
            "username",
        ),
        (
            "PATCH",
            "/apiops/admin/users/nobody-here/",
            {"password": "pass\x00word-1"},
            "password",
        ),
        ("POST", "/apiops/admin/projects/", {"name": "p1", "description": "d\x00"}, "description"),
        ("POST", "/apiops/admin/projects/admin/members/", {"username": "ad\x00min"}, "username"),
        ("POST", "/apiops/admin/environments/", {"name": "e\x00", "type": "TEST"}, "name"),
        ("POST", "/apiops/admin/users/admin/tokens/", {"name": "t\x00"}, "name"),
        (
            "POST",
            "/apiops/projects/admin/keys/",
            {
                "name": "key-1",
                "description": "d",
                "keyType": "SYMMETRIC",
                "cryptoKeyInfoEnvironmentList": [
                    {"environmentName": f"{env}\x00", "privateKey": secret}
                ],
            },
            "cryptoKeyInfoEnvironmentList.0.environmentName",
        ),
        (
            "POST",
            "/apiops/projects/admin/keystores/",
            {"name": "ks\x00", "description": "d", "type": "PKCS12"},
            "name",
        ),
        (
            "POST",
            "/apiops/projects/admin/jwks/generate",
            {"name": "jwk\x00", "keyType": "RSA", "environmentName": env},
            "name",
        ),
        (
            "POST",
            f"/apiops/admin/environments/{env}/node-tokens/",
            {"name": "n\x00"},
            "name",
        ),
        ("POST", "/apiops/admin/projects/", {"name\x00": "x"}, "body"),
    ]


async def test_nul_in_json_bodies_is_400(
    client: httpx.AsyncClient, admin_token: str, env_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for method, path, body, field in _json_cases(env_name):
        r = await client.request(method, path, json=body, headers=bearer(admin_token))
        assert r.status_code == 400, (path, r.text)
        assert r.json() == nul(field), path
    no_traceback(caplog)


async def test_escaped_backslash_u0000_is_ordinary_text(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    name = unique("proj")
    body = {"name": name, "description": "a literal \\u0000, not NUL"}
    r = await client.post("/apiops/admin/projects/", json=body, headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert r.json()["result"]["description"] == "a literal \\u0000, not NUL"


async def test_nul_in_a_json_body_is_400_before_authentication(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/apiops/admin/projects/",
        content=json.dumps({"name": "p\x00"}),
        headers={"Content-Type": "application/json"},
    )
    assert_answer(r, 400, nul("name"))


@pytest.mark.parametrize("field", ["certificateName", "alias", "environmentList"])
async def test_nul_in_a_certificate_form_is_400(
    client: httpx.AsyncClient,
    admin_token: str,
    env_name: str,
    field: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    values = {"certificateName": unique("cert"), "alias": "alias-1", "environmentList": env_name}
    values[field] += "\x00"
    parts = certificate_parts(
        name=values["certificateName"],
        alias=values["alias"],
        environments=values["environmentList"],
        pem=certs.self_signed("p256").pem,
    )
    body, headers = multipart(parts)
    r = await client.post(
        CERT_PATH.format(project="admin"), content=body, headers={**headers, **bearer(admin_token)}
    )
    assert_answer(r, 400, nul(field))
    no_traceback(caplog)


# --- ids outside the columns' range ----------------------------------------------------


@pytest.mark.parametrize("value", ["87178291199", "2147483648", "99999999999999999999999"])
async def test_out_of_range_ids_are_unknown(
    client: httpx.AsyncClient, admin_token: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    r = await client.delete(f"/apiops/admin/node-tokens/{value}/", headers=bearer(admin_token))
    assert_answer(r, 404, refused(f"Node credential (id: {value}) is not found!", "not_found"))
    r = await client.delete(f"/apiops/admin/tokens/{value}/", headers=bearer(admin_token))
    assert_answer(r, 404, refused(f"Token (id: {value}) is not found!", "not_found"))
    no_traceback(caplog)


# --- leftover driver errors ------------------------------------------------------------


@pytest_asyncio.fixture
async def raising_client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/data")
    async def data() -> None:
        raise DataError("SELECT 1", {}, ValueError("integer out of range"))

    @app.get("/down")
    async def down() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_a_driver_data_error_is_400(raising_client: httpx.AsyncClient) -> None:
    assert_answer(
        await raising_client.get("/data"),
        400,
        refused(
            "The request holds a value the database can not store "
            "(out of range, too long or not valid text); nothing was changed"
        ),
    )


async def test_an_unreachable_database_is_503(raising_client: httpx.AsyncClient) -> None:
    assert_answer(
        await raising_client.get("/down"),
        503,
        refused("The database is unavailable; try again later", "service_unavailable"),
    )


# --- form limits -----------------------------------------------------------------------


def _cert_form(env: str, *, description: str, pem: bytes) -> tuple[bytes, dict[str, str]]:
    return multipart(
        certificate_parts(name=unique("cert"), environments=[env], description=description, pem=pem)
    )


async def test_a_big_text_field_is_not_a_big_file(
    client: httpx.AsyncClient, admin_token: str, env_name: str, settings: Settings
) -> None:
    # Between the upload limit (64 KiB in tests) and the request limit (256 KiB).
    description = "d" * (settings.max_upload_bytes * 2 + 1)
    body, headers = _cert_form(env_name, description=description, pem=certs.self_signed("p256").pem)
    assert settings.max_upload_bytes < len(body) < settings.max_request_bytes
    r = await client.post(
        CERT_PATH.format(project="admin"), content=body, headers={**headers, **bearer(admin_token)}
    )
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True


async def test_a_big_text_field_meets_its_real_validation(
    client: httpx.AsyncClient, admin_token: str, env_name: str, settings: Settings
) -> None:
    description = "d" * (settings.max_upload_bytes * 2 + 1)
    body, headers = _cert_form(env_name, description=description, pem=b"not a certificate")
    r = await client.post(
        CERT_PATH.format(project="admin"), content=body, headers={**headers, **bearer(admin_token)}
    )
    assert r.status_code == 400, r.text
    assert "larger than the limit" not in r.json()["error_description"]


async def test_a_big_file_is_refused_with_the_file_text(
    client: httpx.AsyncClient, admin_token: str, env_name: str, settings: Settings
) -> None:
    pem = b"x" * (settings.max_upload_bytes + 1)
    body, headers = _cert_form(env_name, description="small", pem=pem)
    assert len(body) < settings.max_request_bytes
    r = await client.post(
        CERT_PATH.format(project="admin"), content=body, headers={**headers, **bearer(admin_token)}
    )
    limit = settings.max_upload_bytes
    text = f"pemEncodedFile is larger than the limit of {limit} bytes!"
    assert_answer(r, 413, refused(text, "payload_too_large"))


async def test_a_body_over_the_request_limit_is_refused_with_the_request_text(
    client: httpx.AsyncClient, admin_token: str, env_name: str, settings: Settings
) -> None:
    description = "d" * settings.max_request_bytes
    body, headers = _cert_form(env_name, description=description, pem=certs.self_signed("p256").pem)
    r = await client.post(
        CERT_PATH.format(project="admin"), content=body, headers={**headers, **bearer(admin_token)}
    )
    text = f"Request body is larger than the limit of {settings.max_request_bytes} bytes!"
    assert_answer(r, 413, refused(text, "payload_too_large"))


async def test_a_text_part_over_starlettes_own_cap_is_handled(settings: Settings) -> None:
    # Starlette caps a text part at 1 MiB by default; with a larger request limit, a
    # longer field must still reach keyops' own validation.
    big = settings.model_copy(update={"max_request_bytes": 3 * 1024 * 1024})
    app = create_app(big)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://keyops.test") as c:
            r = await c.post(
                "/apiops/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "admin",
                    "client_secret": "admin-test-password-1",
                },
            )
            token = r.json()["access_token"]
            body, headers = _cert_form(
                "no-such-env", description="d" * (2 * 1024 * 1024), pem=b"garbage"
            )
            r = await c.post(
                CERT_PATH.format(project="admin"),
                content=body,
                headers={**headers, **bearer(token)},
            )
    assert r.status_code == 400, r.text
    assert "Part exceeded" not in r.json()["error_description"]
    assert "larger than the limit" not in r.json()["error_description"]


# --- gateway endpoints: the credential before the request ------------------------------

INVALID_TOKEN = refused("Invalid token", "unauthorized_client")


@pytest.mark.parametrize(
    ("method", "path", "content", "headers"),
    [
        ("POST", "/apiops/gateway/ack/", "not json", {}),
        ("POST", "/apiops/gateway/ack/", "{}", {"Authorization": "Bearer kgw_bogus"}),
        ("POST", "/apiops/gateway/ack", '{"node": 1}', {"Authorization": "Basic eDp5"}),
        ("GET", "/apiops/gateway/sync/", None, {}),
        ("GET", "/apiops/gateway/sync/?node=n&since=abc", None, {"Authorization": "Bearer x"}),
        ("GET", "/apiops/gateway/sync/?node=n&wait=-1", None, {}),
        ("DELETE", "/apiops/gateway/sync/", None, {"Authorization": "Bearer kgw_bogus"}),
    ],
)
async def test_gateway_checks_the_credential_first(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    content: str | None,
    headers: dict[str, str],
) -> None:
    if content is not None:
        headers = {**headers, "Content-Type": "application/json"}
    r = await client.request(method, path, content=content, headers=headers)
    assert_answer(r, 401, INVALID_TOKEN)
    assert r.headers["www-authenticate"] == 'Bearer realm="keyops"'


@pytest_asyncio.fixture
async def node_token(client: httpx.AsyncClient, admin_token: str, env_name: str) -> str:
    r = await client.post(
        f"/apiops/admin/environments/{env_name}/node-tokens/",
        json={"name": "node-1"},
        headers=bearer(admin_token),
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["result"]["token"]
    return token


async def test_ack_with_a_valid_credential_validates_its_body(
    client: httpx.AsyncClient, node_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    r = await client.post("/apiops/gateway/ack/", content="not json", headers=bearer(node_token))
    assert r.status_code == 400, r.text
    assert r.json()["error_description"] == "Validation failed: body is not valid JSON"
    r = await client.post("/apiops/gateway/ack/", json={"revision": 1}, headers=bearer(node_token))
    assert r.status_code == 400, r.text
    assert r.json()["error_description"] == "Validation failed: node is required"
    r = await client.post(
        "/apiops/gateway/ack/",
        json={"node": "node-1", "revision": 2**70},
        headers=bearer(node_token),
    )
    assert r.status_code == 400, r.text
    assert r.json()["error_description"] == (
        "Validation failed: revision: Input should be less than or equal to 9223372036854775807"
    )
    r = await client.post(
        "/apiops/gateway/ack/", json={"node": "node-1", "revision": 0}, headers=bearer(node_token)
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True}
    r = await client.get("/apiops/gateway/sync/?since=x", headers=bearer(node_token))
    assert r.status_code == 400, r.text
    no_traceback(caplog)
