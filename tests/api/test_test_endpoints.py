"""GET /apiops/test/healthcheck (no auth) and GET /apiops/test/hello/{name}."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from tests.conftest import Factory, bearer


@pytest.mark.parametrize("path", ["/apiops/test/healthcheck", "/apiops/test/healthcheck/"])
async def test_healthcheck_without_auth(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 200
    assert r.text == "OK"
    assert r.headers["content-type"].startswith("text/plain")


async def test_healthcheck_ignores_a_bad_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/apiops/test/healthcheck", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 200
    assert r.text == "OK"


@pytest.mark.parametrize("path", ["/apiops/test/hello/John", "/apiops/test/hello/John/"])
async def test_hello(client: httpx.AsyncClient, admin_token: str, path: str) -> None:
    r = await client.get(path, headers=bearer(admin_token))
    assert r.status_code == 200
    assert r.text == "Hello John"
    assert r.headers["content-type"].startswith("text/plain")


async def test_hello_needs_no_role(client: httpx.AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    r = await client.get("/apiops/test/hello/John", headers=user.headers)
    assert r.status_code == 200
    assert r.text == "Hello John"


@pytest.mark.parametrize("name", ["John Doe", "Jöhn", "a.b-c_d"])
async def test_hello_echoes_decoded_name(
    client: httpx.AsyncClient, admin_token: str, name: str
) -> None:
    r = await client.get(f"/apiops/test/hello/{quote(name)}", headers=bearer(admin_token))
    assert r.status_code == 200
    assert r.text == f"Hello {name}"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YWRtaW46eA=="}],
    ids=["missing", "garbage", "basic"],
)
async def test_hello_without_valid_token(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    r = await client.get("/apiops/test/hello/John", headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    assert r.json() == {"error": "unauthorized_client", "error_description": "Invalid token"}
    assert "Hello" not in r.text


async def test_hello_without_name_is_not_found(client: httpx.AsyncClient, admin_token: str) -> None:
    r = await client.get("/apiops/test/hello/", headers=bearer(admin_token))
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
