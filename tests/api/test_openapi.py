"""The OpenAPI document tells the truth: the errors each operation sends, and Allow."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.routing import APIRoute, iter_route_contexts

from keyops.api.app import create_app
from keyops.api.openapi import ERROR_REF, MEDIA_TYPE, OVERRIDES
from keyops.config import Settings

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
HTTP_METHODS = {m.lower() for m in METHODS}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(Settings(database_url="sqlite://", data_dir=Path("/nonexistent")))
    return app.openapi()


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def test_no_framework_422_or_detail_anywhere(document: dict[str, Any]) -> None:
    for key, value in _walk(document):
        assert key not in ("422", "detail"), key
        if key == "$ref":
            assert "ValidationError" not in value, value
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas


def test_every_error_response_is_the_contract_error_body(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "error_description"]
    for method, path, operation in _operations(document):
        errors = {code: r for code, r in operation["responses"].items() if code[0] not in "12"}
        assert "500" in errors, (method, path)
        for code, response in errors.items():
            assert response["content"] == {MEDIA_TYPE: {"schema": {"$ref": ERROR_REF}}}, (
                method,
                path,
                code,
            )


def _codes(document: dict[str, Any], method: str, path: str) -> set[int]:
    operation = document["paths"][path][method.lower()]
    return {int(code) for code in operation["responses"]}


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        # No input, no token: only the database and the generic failure.
        ("GET", "/apiops/test/healthcheck", {200, 500, 503}),
        # Authenticated, no role check, nothing named in the path.
        ("GET", "/apiops/projects/", {200, 401, 500, 503}),
        # Roles, a project in the path, a body, a write.
        (
            "POST",
            "/apiops/projects/{projectName}/keys/",
            {200, 400, 401, 403, 404, 409, 413, 500, 503},
        ),
        (
            "GET",
            "/apiops/projects/{projectName}/keys/{keyName}/",
            {200, 400, 401, 403, 404, 500, 503},
        ),
        (
            "DELETE",
            "/apiops/projects/{projectName}/jwks/{jwkName}/",
            {200, 400, 401, 403, 404, 409, 500, 503},
        ),
        ("POST", "/apiops/auth/token", {200, 400, 401, 409, 413, 500, 503}),
        # Its page answers an unknown project with 400, and a non-admin with 401.
        ("GET", "/apiops/environments/{projectName}", {200, 400, 401, 500, 503}),
        ("GET", "/apiops/environments/", {200, 401, 500, 503}),
        ("GET", "/apiops/gateway/sync/", {200, 204, 400, 401, 500, 503}),
    ],
)
def test_statuses_follow_from_the_route(
    document: dict[str, Any], method: str, path: str, codes: set[int]
) -> None:
    assert _codes(document, method, path) == codes


def test_authenticated_operations_name_the_bearer_scheme(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for method, path, operation in _operations(document):
        has_401 = "401" in operation["responses"]
        if path == "/apiops/auth/token":
            assert "security" not in operation
            continue
        assert ("security" in operation) == has_401, (method, path)
        if has_401:
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


def test_every_override_names_a_real_operation(document: dict[str, Any]) -> None:
    operations = {(m, p) for m, p, _ in _operations(document)}
    assert set(OVERRIDES) <= operations, set(OVERRIDES) - operations
    for override in OVERRIDES.values():
        assert override.reason


def test_request_bodies_are_documented_as_the_service_reads_them(
    document: dict[str, Any],
) -> None:
    certs = document["paths"]["/apiops/projects/{projectName}/certificates/"]["post"]
    assert list(certs["requestBody"]["content"]) == ["multipart/form-data"]
    update = document["paths"]["/apiops/projects/{projectName}/certificates/{certificateName}/"]
    schema = update["put"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "certificateName" not in schema["required"]
    token = document["paths"]["/apiops/auth/token"]["post"]
    assert list(token["requestBody"]["content"]) == ["application/x-www-form-urlencoded"]


async def test_yaml_and_json_are_one_document(client: httpx.AsyncClient) -> None:
    as_json = (await client.get("/apiops/openapi.json")).json()
    as_yaml = yaml.safe_load((await client.get("/apiops/openapi.yaml")).text)
    assert as_json == as_yaml
    assert "422" not in str(as_json["paths"])


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def _route_paths(app: Any) -> set[str]:
    return {
        context.path_format
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    }


def _allow(response: httpx.Response) -> set[str]:
    return {m.strip() for m in response.headers["allow"].split(",") if m.strip()}


async def test_allow_lists_exactly_the_methods_each_path_answers(
    app: Any, client: httpx.AsyncClient
) -> None:
    """Every route, both slash forms: a 405's Allow is what the path answers, no more."""
    documented: dict[str, set[str]] = {}
    for method, path, _ in _operations(app.openapi()):
        documented.setdefault(_concrete(path), set()).add(method)
    for path in sorted(_concrete(p) for p in _route_paths(app)):
        # No token: routing decides 405 before any dependency runs, and 401 is quick.
        answers = {m: (await client.request(m, path)).status_code for m in METHODS}
        answered = {m for m, status in answers.items() if status != 405}
        refused = [m for m, status in answers.items() if status == 405]
        assert refused, path
        response = await client.request(refused[0], path)
        assert _allow(response) == answered, (path, answers)
        twin = path[:-1] if path.endswith("/") else path + "/"
        doc_methods = documented.get(path, documented.get(twin))
        if doc_methods is not None:
            # HEAD is answered (healthcheck) but not documented as its own operation.
            assert answered - {"HEAD"} == doc_methods, (path, answered, doc_methods)


@pytest.mark.parametrize(
    "path",
    [
        "/apiops/projects/MyProject/jwks/generate",
        "/apiops/projects/MyProject/jwks/generate/",
        "/apiops/projects/MyProject/jwks/parse-from-url",
        "/apiops/projects/MyProject/jwks/parse-from-keystore/",
    ],
)
async def test_a_literal_segment_is_its_operation_only(
    client: httpx.AsyncClient, admin_token: str, path: str
) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        r = await client.request(method, path, headers=headers)
        assert r.status_code == 405, (method, r.text)
        assert _allow(r) == {"POST"}
        assert r.json()["error"] == "method_not_allowed"


async def test_a_parameter_still_answers_beside_a_literal(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    # /certificates/truststore/{env}/ does not claim the one-segment path /truststore/.
    r = await client.get(
        "/apiops/projects/MyProject/certificates/truststore/",
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert r.status_code == 400, r.text
    assert "truststore" in r.json()["error_description"]
