"""Every failure answers in the contract's error body; the OpenAPI document is served."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml

from keyops.api.app import create_app
from keyops.config import Settings
from tests.conftest import bearer

JSON = "application/json;charset=UTF-8"
INTERNAL = {
    "error": "internal_error",
    "error_description": "An unexpected error occurred. Please try again later.",
}


def assert_contract_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON
    body: dict[str, Any] = response.json()
    assert "detail" not in body
    assert body["error"] == error
    assert isinstance(body["error_description"], str) and body["error_description"]
    return body


# --- 404 and 405 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/apiops/nothing-here",
        "/apiops/projects/MyProject/apiProxies/",
        "/apiops/admin/",
        "/",
        "/docs",
        "/redoc",
        "/apiops/test/",
    ],
)
async def test_unknown_route_is_404(client: httpx.AsyncClient, path: str) -> None:
    body = assert_contract_error(await client.get(path), 404, "not_found")
    assert set(body) == {"error", "error_description"}
    assert path in body["error_description"]


async def test_unknown_route_is_404_even_with_a_bad_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/apiops/nothing-here", headers={"Authorization": "Bearer x"})
    assert_contract_error(r, 404, "not_found")


async def test_unknown_route_is_404_for_any_method(client: httpx.AsyncClient) -> None:
    r = await client.post("/apiops/nothing-here", json={"a": 1})
    assert_contract_error(r, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/apiops/projects/", {"GET"}),
        ("DELETE", "/apiops/projects", {"GET"}),
        ("PUT", "/apiops/test/healthcheck", {"GET"}),
        ("POST", "/apiops/environments/", {"GET"}),
        ("GET", "/apiops/auth/token", {"POST"}),
        ("PUT", "/apiops/admin/users/", {"GET", "POST"}),
        ("DELETE", "/apiops/admin/users/", {"GET", "POST"}),
        ("POST", "/apiops/admin/users/someone/", {"GET", "PATCH", "DELETE"}),
        ("GET", "/apiops/admin/tokens/1/", {"DELETE"}),
    ],
)
async def test_wrong_method_is_405(
    client: httpx.AsyncClient, admin_token: str, method: str, path: str, allowed: set[str]
) -> None:
    r = await client.request(method, path, headers=bearer(admin_token))
    body = assert_contract_error(r, 405, "method_not_allowed")
    assert set(body) == {"error", "error_description"}
    assert method in body["error_description"]
    # Allow names every method the path answers, not only the first route's.
    assert {m.strip() for m in r.headers["allow"].split(",")} >= allowed


async def test_wrong_method_is_405_without_a_token(client: httpx.AsyncClient) -> None:
    assert_contract_error(await client.delete("/apiops/projects/"), 405, "method_not_allowed")


# --- bad bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"username": "x",}', b"\xff\xfe\xfd", b'{"username": "x"', b"[1, 2"],
)
async def test_malformed_json_is_400(
    client: httpx.AsyncClient, admin_token: str, content: bytes
) -> None:
    r = await client.post(
        "/apiops/admin/users/",
        content=content,
        headers={**bearer(admin_token), "content-type": "application/json"},
    )
    assert_contract_error(r, 400, "bad_request")


async def test_json_body_of_wrong_shape_is_400(client: httpx.AsyncClient, admin_token: str) -> None:
    r = await client.post("/apiops/admin/projects/", json=[1, 2], headers=bearer(admin_token))
    body = assert_contract_error(r, 400, "bad_request")
    assert body["error_description"].startswith("Validation failed")


async def test_wrong_content_type_is_400(client: httpx.AsyncClient, admin_token: str) -> None:
    r = await client.post(
        "/apiops/admin/projects/",
        content=b'{"name": "via-text-plain"}',
        headers={**bearer(admin_token), "content-type": "text/plain"},
    )
    assert_contract_error(r, 400, "bad_request")


async def test_empty_body_is_400(client: httpx.AsyncClient, admin_token: str) -> None:
    r = await client.post(
        "/apiops/admin/projects/",
        headers={**bearer(admin_token), "content-type": "application/json"},
    )
    body = assert_contract_error(r, 400, "bad_request")
    assert "required" in body["error_description"]


# --- oversize bodies -------------------------------------------------------------------


async def chunks(total: int, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        yield b"x" * part
        sent += part


def assert_too_large(response: httpx.Response, settings: Settings) -> None:
    body = assert_contract_error(response, 413, "payload_too_large")
    assert set(body) == {"error", "error_description"}
    assert str(settings.max_request_bytes) in body["error_description"]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/apiops/admin/users/", "application/json"),
        ("/apiops/auth/token", "application/x-www-form-urlencoded"),
        ("/apiops/nothing-here", "application/json"),
    ],
)
async def test_oversize_body_with_content_length_is_413(
    client: httpx.AsyncClient, admin_token: str, settings: Settings, path: str, content_type: str
) -> None:
    r = await client.post(
        path,
        content=b"x" * (settings.max_request_bytes + 1),
        headers={**bearer(admin_token), "content-type": content_type},
    )
    assert "content-length" in r.request.headers
    assert_too_large(r, settings)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/apiops/admin/users/", "application/json"),
        ("/apiops/auth/token", "application/x-www-form-urlencoded"),
    ],
)
async def test_oversize_chunked_body_is_413(
    client: httpx.AsyncClient, admin_token: str, settings: Settings, path: str, content_type: str
) -> None:
    r = await client.post(
        path,
        content=chunks(settings.max_request_bytes * 2),
        headers={**bearer(admin_token), "content-type": content_type},
    )
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert_too_large(r, settings)


async def test_oversize_chunked_body_changes_nothing(
    client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    async def padded_user() -> AsyncIterator[bytes]:
        yield b'{"username": "oversize-user", "password": "password-123", "roles": []'
        yield b" " * settings.max_request_bytes
        yield b"}"

    r = await client.post(
        "/apiops/admin/users/",
        content=padded_user(),
        headers={**bearer(admin_token), "content-type": "application/json"},
    )
    assert_too_large(r, settings)
    r = await client.get("/apiops/admin/users/oversize-user/", headers=bearer(admin_token))
    assert r.status_code == 404


async def test_body_at_the_limit_is_read(
    client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    # Exactly at the limit passes the size check and reaches validation.
    for content in (b" " * settings.max_request_bytes, chunks(settings.max_request_bytes)):
        r = await client.post(
            "/apiops/admin/users/",
            content=content,
            headers={**bearer(admin_token), "content-type": "application/json"},
        )
        assert_contract_error(r, 400, "bad_request")


async def test_lying_content_length_is_not_trusted(
    client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    # A small declared length does not let a larger chunked stream through unread.
    r = await client.post(
        "/apiops/admin/users/",
        content=chunks(settings.max_request_bytes + 1024),
        headers={
            **bearer(admin_token),
            "content-type": "application/json",
            "content-length": "10",
        },
    )
    assert r.request.headers["content-length"] == "10"
    assert_too_large(r, settings)


# --- 500 -------------------------------------------------------------------------------


@pytest.fixture
def failing_app(settings: Settings) -> Any:
    """A keyops app with one extra route that fails the way a bug would."""
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2 at /srv/keyops/db.py")

    async def boom_with_key_error() -> None:
        raise KeyError("private-key-material")

    app.add_api_route("/apiops/test/boom", boom, methods=["GET", "POST"])
    app.add_api_route("/apiops/test/boom-key", boom_with_key_error, methods=["GET"])
    return app


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/apiops/test/boom"), ("POST", "/apiops/test/boom"), ("GET", "/apiops/test/boom-key")],
)
async def test_unexpected_exception_is_500_without_internals(
    failing_app: Any, method: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    transport = httpx.ASGITransport(app=failing_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://keyops.test") as c:
        r = await c.request(method, path)
    assert r.status_code == 500
    assert r.headers["content-type"] == JSON
    assert r.json() == INTERNAL
    for leak in ("Traceback", "RuntimeError", "KeyError", "hunter2", "secret", "private-key"):
        assert leak not in r.text
    # The details go to the server log instead.
    assert any("unexpected error" in rec.getMessage() for rec in caplog.records)


# --- no framework bodies anywhere ------------------------------------------------------


async def test_no_framework_detail_body_anywhere(
    client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    admin = bearer(admin_token)
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/nope", {}),
        ("PATCH", "/apiops/projects/", {}),
        ("GET", "/apiops/projects/", {}),
        ("GET", "/apiops/environments/", {}),
        ("GET", "/apiops/environments/ghost", {"headers": admin}),
        ("POST", "/apiops/auth/token", {"json": {}}),
        ("POST", "/apiops/auth/token", {"data": {"grant_type": "x"}}),
        ("POST", "/apiops/admin/users/", {"headers": admin, "json": {"username": 1}}),
        ("POST", "/apiops/admin/users/", {"headers": admin, "content": b"{"}),
        ("DELETE", "/apiops/admin/tokens/x/", {"headers": admin}),
        ("GET", "/apiops/admin/users/ghost/", {"headers": admin}),
        ("POST", "/apiops/admin/projects/", {"headers": admin, "json": {"name": "admin"}}),
        (
            "POST",
            "/apiops/admin/users/",
            {"headers": admin, "content": b"x" * (settings.max_request_bytes + 1)},
        ),
    ]
    for method, path, kwargs in requests:
        r = await client.request(method, path, **kwargs)
        assert r.status_code >= 400, (method, path)
        assert r.headers["content-type"] == JSON, (method, path)
        body = r.json()
        assert "detail" not in body, (method, path, body)
        assert {"error", "error_description"} <= set(body), (method, path, body)


# --- OpenAPI ---------------------------------------------------------------------------


async def test_openapi_yaml(client: httpx.AsyncClient) -> None:
    r = await client.get("/apiops/openapi.yaml")
    assert r.status_code == 200
    assert "yaml" in r.headers["content-type"]
    document = yaml.safe_load(r.text)
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path, method in [
        ("/apiops/auth/token", "post"),
        ("/apiops/projects/", "get"),
        ("/apiops/environments/", "get"),
        ("/apiops/environments/{projectName}", "get"),
        ("/apiops/test/healthcheck", "get"),
        ("/apiops/test/hello/{name}", "get"),
        ("/apiops/admin/users/", "post"),
        ("/apiops/admin/tokens/{tokenId}/", "delete"),
    ]:
        assert method in paths[path], path
    # Only the documented form of each path is listed, not its slash twin.
    assert "/apiops/projects" not in paths
    assert "/apiops/auth/token/" not in paths
    # The token endpoint documents its form body.
    token_body = paths["/apiops/auth/token"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in token_body


async def test_openapi_yaml_and_json_agree(client: httpx.AsyncClient) -> None:
    as_yaml = yaml.safe_load((await client.get("/apiops/openapi.yaml")).text)
    as_json = (await client.get("/apiops/openapi.json")).json()
    assert as_yaml == as_json


async def test_openapi_page_is_html(client: httpx.AsyncClient) -> None:
    r = await client.get("/apiops/openapi")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/apiops/openapi.json" in r.text
