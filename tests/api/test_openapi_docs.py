"""The OpenAPI document's enums, descriptions and examples, and its offline page."""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from pydantic import BaseModel

from keyops.api.app import create_app
from keyops.api.openapi_docs import (
    ENUMS,
    FORM_EXAMPLES,
    MEDIA_EXAMPLES,
    OPERATION_DESCRIPTIONS,
    SCHEMA_EXAMPLES,
    SOURCE_TYPE_ENUMS,
    SWAGGER_ASSETS,
    TYPE_ENUMS,
    request_schemas,
)
from keyops.api.schemas.common import DeploymentRead
from keyops.api.schemas.jwks import (
    JwkCreate,
    JwkFromCertificate,
    JwkFromClipboard,
    JwkFromKey,
    JwkFromKeystore,
    JwkFromUrl,
    JwkGenerate,
)
from keyops.api.schemas.keys import KeyBody, KeystoreBody
from keyops.api.schemas.projects import ProjectListRead
from keyops.config import Settings
from keyops.crypto.jwk import ALGORITHMS, USE_TYPES, JwkError, validate_use_and_algorithm
from keyops.crypto.keys import KEY_TYPES, KeyMaterialError, canonical_key_type
from keyops.crypto.keystores import UPLOAD_TYPES, KeystoreError, parse_keystore
from keyops.domain.jwks.model import SOURCE_TYPES, jwk_update_from_query
from keyops.errors import BadRequest
from tests.conftest import Factory, bearer, unique

HTTP_METHODS = {"get", "head", "post", "put", "patch", "delete", "options"}
PROJECT_JWKS = "/apiops/projects/{projectName}/jwks"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(Settings(database_url="sqlite://", data_dir=Path("/nonexistent")))
    return app.openapi()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def _enum(schema: dict[str, Any]) -> list[str] | None:
    """The enum of a string schema, or of the string branch of ``str | None``."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string" and "enum" in branch:
            return list(branch["enum"])
    return None


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


# --- enums -----------------------------------------------------------------------------------


def test_enums_are_the_constants_validation_reads() -> None:
    assert ENUMS["updateScope"] == ("SAME_PROJECT", "ALL_PROJECTS")
    assert ENUMS["jwkUpdateAction"] == ("UPDATE", "NULLIFY")
    assert ENUMS["useType"] == tuple(USE_TYPES) == ("SIGNATURE", "ENCRYPTION")
    assert set(ENUMS["algorithm"]) == set().union(*ALGORITHMS.values())
    assert len(ENUMS["algorithm"]) == len(set(ENUMS["algorithm"]))
    assert ENUMS["sourceType"] == SOURCE_TYPES
    assert ENUMS["keyType"] == KEY_TYPES
    assert TYPE_ENUMS["KeystoreEnvironmentBody"] == UPLOAD_TYPES
    assert "PEM" in UPLOAD_TYPES
    assert TYPE_ENUMS["JwkGenerate"] == ("RSA", "EC", "OCT", "OKP")
    assert TYPE_ENUMS["EnvironmentCreate"] == ("PRODUCTION", "SANDBOX", "TEST")
    assert SOURCE_TYPE_ENUMS == {
        "JwkFromUrl": ("URL",),
        "JwkFromClipboard": ("COPY_PASTE",),
        "JwkFromCertificate": ("CERTIFICATE",),
        "JwkFromKey": ("PUBLIC_KEY", "PRIVATE_KEY"),
        "JwkFromKeystore": ("KEYSTORE",),
    }
    # Plain strings: YAML and JSON both render them (a StrEnum member breaks safe_dump).
    for values in (*ENUMS.values(), *TYPE_ENUMS.values()):
        assert all(type(v) is str for v in values), values


def test_every_query_parameter_of_an_enum_name_lists_it(document: dict[str, Any]) -> None:
    seen: dict[str, int] = {}
    for method, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            name = parameter["name"]
            if parameter["in"] == "query" and name in ENUMS:
                assert _enum(parameter["schema"]) == list(ENUMS[name]), (method, path, name)
                seen[name] = seen.get(name, 0) + 1
    # PUT and rollback of certificates, keys and keystores.
    assert seen == {"updateScope": 6, "jwkUpdateAction": 6}


def test_every_request_field_of_an_enum_name_lists_it(document: dict[str, Any]) -> None:
    names = request_schemas(document)
    assert {"KeyBody", "KeystoreEnvironmentBody", "JwkCreate", "JwkGenerate"} <= names
    found: set[tuple[str, str]] = set()
    for name in names:
        for field, prop in _schema(document, name).get("properties", {}).items():
            if field == "type":
                # Every `type` in a request body is one decided on here.
                assert name in TYPE_ENUMS, name
                assert _enum(prop) == list(TYPE_ENUMS[name]), name
            elif field == "sourceType" and name in SOURCE_TYPE_ENUMS:
                assert _enum(prop) == list(SOURCE_TYPE_ENUMS[name]), name
            elif field in ENUMS:
                assert _enum(prop) == list(ENUMS[field]), (name, field)
            else:
                continue
            found.add((name, field))
    assert {
        ("KeyBody", "keyType"),
        ("KeystoreEnvironmentBody", "type"),
        ("JwkGenerate", "type"),
        ("EnvironmentCreate", "type"),
        ("JwkCreate", "sourceType"),
        ("JwkCreate", "useType"),
        ("JwkCreate", "algorithm"),
        ("JwkFromKey", "sourceType"),
        ("JwkFromKeystore", "algorithm"),
    } <= found
    # The inline certificate forms have no enum field; the token form keeps its own.
    token = document["paths"]["/apiops/auth/token"]["post"]["requestBody"]["content"]
    form = token["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert form["grant_type"]["enum"] == ["client_credentials"]


def test_answers_carry_no_enum_of_these_names(document: dict[str, Any]) -> None:
    # Answers show what is stored; only request bodies are constrained.
    for name in set(document["components"]["schemas"]) - request_schemas(document):
        for field, prop in _schema(document, name).get("properties", {}).items():
            if field in ENUMS or field == "type":
                assert _enum(prop) is None, (name, field)


def test_validation_accepts_each_enum_value_and_refuses_others() -> None:
    for action in ENUMS["jwkUpdateAction"]:
        for scope in ENUMS["updateScope"]:
            update = jwk_update_from_query(None, action, scope)
            assert (update.action, update.scope) == (action, scope)
    with pytest.raises(BadRequest, match=r"Valid values: UPDATE, NULLIFY"):
        jwk_update_from_query(None, "REPLACE", "SAME_PROJECT")
    with pytest.raises(BadRequest, match=r"Valid values: SAME_PROJECT, ALL_PROJECTS"):
        jwk_update_from_query(None, "UPDATE", "ONE_PROJECT")

    for key_type in ENUMS["keyType"]:
        canonical_key_type(key_type)
    with pytest.raises(KeyMaterialError) as refused:
        canonical_key_type("DSA")
    assert refused.value.reason.endswith("Valid values: " + ", ".join(ENUMS["keyType"]))

    with pytest.raises(KeystoreError) as bad_type:
        parse_keystore(b"x", "BKS", "pw")
    assert bad_type.value.reason.endswith(
        "Valid values: " + ", ".join(TYPE_ENUMS["KeystoreEnvironmentBody"])
    )
    for store_type in TYPE_ENUMS["KeystoreEnvironmentBody"]:
        with pytest.raises(KeystoreError) as other:
            parse_keystore(b"not a keystore", store_type, "pw")
        assert "is not valid! Valid values" not in other.value.reason, store_type

    for algorithm in ENUMS["algorithm"]:
        valid_for = [
            (kty, use)
            for (kty, use), values in ALGORITHMS.items()
            if algorithm in values and validate_use_and_algorithm(kty, use, algorithm)
        ]
        assert valid_for, algorithm
    for use_type in ENUMS["useType"]:
        validate_use_and_algorithm(
            "oct", use_type, "HS256" if use_type == "SIGNATURE" else "A128KW"
        )
    with pytest.raises(JwkError, match="useType must be SIGNATURE or ENCRYPTION"):
        validate_use_and_algorithm("RSA", "SIGN", "RS256")
    with pytest.raises(JwkError, match="is not valid for RSA keys"):
        validate_use_and_algorithm("RSA", "SIGNATURE", "RSA")

    models: dict[str, type[BaseModel]] = {
        "JwkFromUrl": JwkFromUrl,
        "JwkFromClipboard": JwkFromClipboard,
        "JwkFromCertificate": JwkFromCertificate,
        "JwkFromKey": JwkFromKey,
        "JwkFromKeystore": JwkFromKeystore,
    }
    for name, model in models.items():
        for source_type in SOURCE_TYPE_ENUMS[name]:
            model.model_validate({"sourceType": source_type})
        for source_type in set(SOURCE_TYPES) - set(SOURCE_TYPE_ENUMS[name]):
            with pytest.raises(BadRequest, match="contradicts"):
                model.model_validate({"sourceType": source_type})


async def test_api_refusals_list_exactly_the_documented_values(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    project = await factory.project()
    headers = bearer(admin_token)

    def valid_values(response: httpx.Response) -> list[str]:
        assert response.status_code == 400, response.text
        text = response.json()["error_description"]
        return text.split("Valid values: ", 1)[1].rstrip("!").split(", ")

    r = await client.post(
        f"/apiops/projects/{project}/jwks/",
        json={"name": "bad-source", "sourceType": "FILE"},
        headers=headers,
    )
    assert valid_values(r) == list(ENUMS["sourceType"])
    r = await client.post(
        f"/apiops/projects/{project}/jwks/generate",
        json={"name": "bad-type", "type": "DSA"},
        headers=headers,
    )
    assert valid_values(r) == list(TYPE_ENUMS["JwkGenerate"])
    r = await client.post(
        "/apiops/admin/environments/",
        json={"name": "enum-check-env", "type": "STAGING"},
        headers=headers,
    )
    assert valid_values(r) == list(TYPE_ENUMS["EnvironmentCreate"])


# --- descriptions ----------------------------------------------------------------------------


def test_every_operation_has_its_one_line_description(document: dict[str, Any]) -> None:
    operations = {(m, p): op for m, p, op in _operations(document)}
    assert set(OPERATION_DESCRIPTIONS) == set(operations), set(operations) ^ set(
        OPERATION_DESCRIPTIONS
    )
    for key, operation in operations.items():
        description = operation["description"]
        assert description == OPERATION_DESCRIPTIONS[key]
        assert description.strip() and "\n" not in description, key
        assert 20 <= len(description) <= 240, key
        assert operation["summary"], key


# --- examples --------------------------------------------------------------------------------


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    return jsonschema_rs.validator_for({**schema, "components": document["components"]})


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def test_examples_validate_against_their_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert {"DeploymentRead", "Error", "KeyBody", "KeystoreBody", "ProjectListRead"} <= set(
        SCHEMA_EXAMPLES
    )
    for name, example in SCHEMA_EXAMPLES.items():
        assert schemas[name]["example"] == example, name
        errors = [e.message for e in _validator(document, _ref(name)).iter_errors(example)]
        assert not errors, (name, errors)
    count = 0
    for method, path, operation in _operations(document):
        for content in operation.get("requestBody", {}).get("content", {}).values():
            ref = content["schema"].get("$ref", "")
            name = ref.rsplit("/", 1)[-1]
            if name in MEDIA_EXAMPLES:
                assert content["examples"] == MEDIA_EXAMPLES[name], (method, path)
                validator = _validator(document, _ref(name))
                for label, example in content["examples"].items():
                    errors = [e.message for e in validator.iter_errors(example["value"])]
                    assert not errors, (method, path, label, errors)
                    count += 1
    # Create (6 sources but GENERATE), generate (4 types), one per parse-from-* source.
    assert count == 5 + 4 + 5


def test_the_validator_refuses_a_wrong_example(document: dict[str, Any]) -> None:
    """The check above can fail: an unknown field or a value outside an enum is caught."""
    key = _validator(document, _ref("KeyBody"))
    assert not key.is_valid({**SCHEMA_EXAMPLES["KeyBody"], "keyType": "DSA"})
    assert not key.is_valid({**SCHEMA_EXAMPLES["KeyBody"], "secret": "x"})
    error = _validator(document, _ref("Error"))
    assert not error.is_valid({"error": "bad_request"})


def test_examples_are_what_the_models_accept() -> None:
    KeyBody.model_validate(SCHEMA_EXAMPLES["KeyBody"])
    KeystoreBody.model_validate(SCHEMA_EXAMPLES["KeystoreBody"])
    DeploymentRead.model_validate(SCHEMA_EXAMPLES["DeploymentRead"])
    ProjectListRead.model_validate(SCHEMA_EXAMPLES["ProjectListRead"])
    models: dict[str, type[BaseModel]] = {
        "JwkCreate": JwkCreate,
        "JwkGenerate": JwkGenerate,
        "JwkFromUrl": JwkFromUrl,
        "JwkFromClipboard": JwkFromClipboard,
        "JwkFromCertificate": JwkFromCertificate,
        "JwkFromKey": JwkFromKey,
        "JwkFromKeystore": JwkFromKeystore,
    }
    assert set(MEDIA_EXAMPLES) == set(models)
    for name, examples in MEDIA_EXAMPLES.items():
        assert examples, name
        for example in examples.values():
            models[name].model_validate(example["value"])


def test_certificate_forms_carry_examples_and_update_needs_no_name(
    document: dict[str, Any],
) -> None:
    create = document["paths"]["/apiops/projects/{projectName}/certificates/"]["post"]
    update = document["paths"]["/apiops/projects/{projectName}/certificates/{certificateName}/"][
        "put"
    ]
    forms = {
        "create": create["requestBody"]["content"]["multipart/form-data"]["schema"],
        "update": update["requestBody"]["content"]["multipart/form-data"]["schema"],
    }
    for form in forms.values():
        for field, example in FORM_EXAMPLES.items():
            assert form["properties"][field]["example"] == example, field
        assert "example" not in form["properties"]["pemEncodedFile"]
    assert "certificateName" in forms["create"]["required"]
    # The path names the certificate: the update form may leave it out.
    assert "certificateName" in forms["update"]["properties"]
    assert "certificateName" not in forms["update"]["required"]
    assert {"alias", "pemEncodedFile", "environmentList"} <= set(forms["update"]["required"])


async def test_the_generate_examples_work_as_sent(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    project = await factory.project()

    def fresh_kids(value: Any) -> Any:
        # The contract's kids as they are, but unique to this run: a kid is unique in an
        # environment's JWK Set, and the demo environments serve every test's project.
        if isinstance(value, dict):
            return {
                k: f"{v}-{unique('run')}" if k == "kid" and isinstance(v, str) else fresh_kids(v)
                for k, v in value.items()
            }
        return value

    for label, example in MEDIA_EXAMPLES["JwkGenerate"].items():
        r = await client.post(
            f"/apiops/projects/{project}/jwks/generate",
            json=fresh_kids(example["value"]),
            headers=bearer(admin_token),
        )
        assert r.status_code == 200, (label, r.text)
        DeploymentRead.model_validate(r.json())
        got = await client.get(
            f"/apiops/projects/{project}/jwks/{example['value']['name']}/",
            headers=bearer(admin_token),
        )
        assert got.json()["resultList"][0]["type"] == label


def test_the_document_is_a_valid_openapi_document(document: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)


# --- the interactive page, offline -----------------------------------------------------------


def _asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


async def test_the_page_loads_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    r = await client.get("/apiops/openapi")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "http://" not in html and "https://" not in html
    assert "cdn" not in html.lower()
    urls = _asset_urls(html)
    assert len(urls) == 3, urls
    assert all(u.startswith("/apiops/openapi/assets/") for u in urls), urls
    assert "url: '/apiops/openapi.json'" in html
    # Swagger UI's default would fetch a badge from validator.swagger.io.
    assert '"validatorUrl": null' in html
    # The bearer token is not written to the browser's localStorage.
    assert '"persistAuthorization": false' in html


async def test_each_asset_is_served_from_the_package(client: httpx.AsyncClient) -> None:
    page = (await client.get("/apiops/openapi")).text
    static = importlib.resources.files("swagger_ui") / "static"
    served: dict[str, str] = {}
    for url in _asset_urls(page):
        r = await client.get(url)
        assert r.status_code == 200, url
        assert r.content, url
        name = url.rsplit("/", 1)[-1]
        filename, media_type = SWAGGER_ASSETS[name]
        assert r.content == (static / filename).read_bytes(), url
        assert r.headers["content-type"] == media_type
        assert "max-age=31536000" in r.headers["cache-control"]
        assert r.headers["etag"]
        served[name] = r.headers["content-type"].split(";")[0]
    assert served == {
        "swagger-ui-bundle.js": "text/javascript",
        "swagger-ui.css": "text/css",
        "favicon.png": "image/png",
    }


@pytest.mark.parametrize(
    "tail",
    [
        "index.css",  # in the package, but not one the page needs
        "swagger-editor-bundle.js",
        "LICENSE",
        "..%2F..%2F__init__.py",
        "%2E%2E%2Fstatic%2Fswagger-ui.css",
        "SWAGGER-UI.CSS",
        "swagger-ui.css.map",
    ],
)
async def test_other_names_are_not_found(client: httpx.AsyncClient, tail: str) -> None:
    page = (await client.get("/apiops/openapi")).text
    base = _asset_urls(page)[0].rsplit("/", 1)[0]
    r = await client.get(f"{base}/{tail}")
    assert r.status_code == 404, r.text
    body = r.json()
    assert body["error"] == "not_found"
    # A name with a slash in it is no route at all; either way, no file path is named.
    assert body["error_description"].startswith(("Asset (", "No endpoint GET "))
    assert "site-packages" not in body["error_description"]
    if "%2F" not in tail:
        assert body["error_description"] == f"Asset ({unquote(tail)}) is not found!"


async def test_a_control_character_in_the_name_is_refused(client: httpx.AsyncClient) -> None:
    page = (await client.get("/apiops/openapi")).text
    r = await client.get(_asset_urls(page)[0] + "%00")
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_request"


async def test_another_version_or_path_shape_is_not_served(client: httpx.AsyncClient) -> None:
    r = await client.get("/apiops/openapi/assets/0.0.1/swagger-ui.css")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    r = await client.get("/apiops/openapi/assets/swagger-ui.css")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


async def test_assets_take_no_query_parameters(client: httpx.AsyncClient) -> None:
    page = (await client.get("/apiops/openapi")).text
    url = _asset_urls(page)[0]
    assert (await client.get(url)).status_code == 200
    r = await client.get(url, params={"v": "1"})
    assert r.status_code == 400, r.text
    assert "v" in r.json()["error_description"]


def test_asset_routes_are_not_in_the_document(document: dict[str, Any]) -> None:
    assert not [p for p in document["paths"] if "openapi" in p]


async def test_the_yaml_document_has_no_aliases(client: httpx.AsyncClient) -> None:
    # Shared objects in the document would come out as &id001 / *id001 in the YAML.
    text = (await client.get("/apiops/openapi.yaml")).text
    assert "examples:" in text
    assert not re.search(r"[&*]id\d{3}", text)
