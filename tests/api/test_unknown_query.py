"""Unknown query parameters are refused with 400 naming them and the known ones (issue
15, item 11), the way unknown form fields are; exempt endpoints keep taking anything."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import ADMIN_PASSWORD, Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import Setting, new_setting

LIST_PARAMS = "page, size, sort, name, environment, expiringWithinDays"
JWK_UPDATE_PARAMS = "updateReferencedJwks, jwkUpdateAction, updateScope"


def bad_request(description: str) -> dict[str, str]:
    return {"error": "bad_request", "error_description": description}


def unknown(names: str, expected: str) -> dict[str, str]:
    return bad_request(f"Unknown query parameter(s): {names}. Expected: {expected}")


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory, envs=1)


@pytest.mark.parametrize("kind", ["certificates", "keys", "keystores", "jwks"])
@pytest.mark.parametrize("slash", ["/", ""])
async def test_an_unknown_parameter_on_a_resource_list_is_refused(
    s: Setting, kind: str, slash: str
) -> None:
    base = f"/apiops/projects/{s.project}/{kind}{slash}"
    r = await s.client.get(f"{base}?expiresWithinDays=30", headers=s.api.headers)
    assert r.status_code == 400
    assert r.json() == unknown("expiresWithinDays", LIST_PARAMS)

    # The known spelling still works, and so does the list without any parameter.
    r = await s.client.get(f"{base}?expiringWithinDays=30&size=5", headers=s.api.headers)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True
    r = await s.client.get(base, headers=s.api.headers)
    assert r.status_code == 200, r.text


async def test_every_unknown_parameter_is_named_once_in_request_order(s: Setting) -> None:
    r = await s.client.get(f"{s.api.base}?zeta=1&size=2&alpha&zeta=2&Size=3", headers=s.api.headers)
    assert r.status_code == 400
    # Names are case-sensitive: Size is not size.
    assert r.json() == unknown("zeta, alpha, Size", LIST_PARAMS)


async def test_an_empty_parameter_name_is_refused(s: Setting) -> None:
    r = await s.client.get(f"{s.api.base}?=1", headers=s.api.headers)
    assert r.status_code == 400
    assert r.json() == unknown("(empty name)", LIST_PARAMS)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/apiops/expiring/", "withinDays"),
        ("/apiops/admin/audit/", "user, project, kind, name, from, to, page, size"),
        ("/apiops/environments/", "none"),
        ("/apiops/admin/users/", "none"),
    ],
)
async def test_other_lists_refuse_unknown_parameters(
    client: httpx.AsyncClient, admin_token: str, path: str, expected: str
) -> None:
    r = await client.get(f"{path}?expiresWithinDays=30", headers=bearer(admin_token))
    assert r.status_code == 400
    assert r.json() == unknown("expiresWithinDays", expected)


async def test_known_parameters_of_other_lists_still_work(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    r = await client.get("/apiops/expiring/?withinDays=7", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert r.json()["withinDays"] == 7
    r = await client.get("/apiops/admin/audit/?size=1&page=0", headers=bearer(admin_token))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/apiops/projects/", "/apiops/environments/"])
async def test_the_contracts_common_parameters_are_taken_by_lists_that_do_not_page(
    client: httpx.AsyncClient, admin_token: str, path: str
) -> None:
    # base-url.md shows /apiops/projects/?page=1&size=10: these lists answer everything.
    whole = await client.get(path, headers=bearer(admin_token))
    r = await client.get(f"{path}?page=1&size=10&sort=name,asc", headers=bearer(admin_token))
    assert r.status_code == whole.status_code == 200, r.text
    assert r.json() == whole.json()
    r = await client.get(f"{path}?page=1&limit=10", headers=bearer(admin_token))
    assert r.status_code == 400
    assert r.json() == unknown("limit", "none")


async def test_an_endpoint_that_pages_takes_only_what_it_declares(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    r = await client.get("/apiops/admin/audit/?size=1&sort=name", headers=bearer(admin_token))
    assert r.status_code == 400
    assert r.json() == unknown("sort", "user, project, kind, name, from, to, page, size")
    # Not a GET: the common parameters are no exception.
    r = await client.post("/apiops/admin/users/?page=1", json={}, headers=bearer(admin_token))
    assert r.status_code == 400
    assert r.json() == unknown("page", "none")


async def test_an_unknown_parameter_on_an_update_changes_nothing(s: Setting) -> None:
    name = unique("cert")
    old, new = certs.self_signed("rsa2048", "old.example"), certs.self_signed("p256", "new.ex")
    await s.api.create_ok(name, old.pem, s.envs)
    before = await s.api.get_one(name)

    # A typo of updateReferencedJwks: the JWKs would silently have been detached.
    r = await s.api.update(name, new.pem, s.envs, query="updateReferencedJwk=true")
    assert r.status_code == 400
    assert r.json() == unknown("updateReferencedJwk", JWK_UPDATE_PARAMS)
    assert await s.api.get_one(name) == before

    r = await s.api.update(
        name, new.pem, s.envs, query="jwkUpdateAction=UPDATE&updateScope=SAME_PROJECT"
    )
    assert r.status_code == 200, r.text
    assert (await s.api.get_one(name)) != before


async def test_endpoints_without_query_parameters_refuse_any(s: Setting) -> None:
    name = unique("cert")
    await s.api.create_ok(name, certs.self_signed("rsa2048", "get.example").pem, s.envs)
    r = await s.client.get(f"{s.api.base}{name}/?verbose=true", headers=s.api.headers)
    assert r.status_code == 400
    assert r.json() == unknown("verbose", "none")

    # A create with an unknown parameter creates nothing.
    jwk = unique("jwk")
    body: dict[str, Any] = {
        "name": jwk,
        "description": "d",
        "sourceType": "CERTIFICATE",
        "certificateName": name,
        "environmentName": s.envs[0],
        "useType": "SIGNATURE",
        "algorithm": "RS256",
    }
    r = await s.client.post(f"{s.api.jwk_base}?dryRun=1", json=body, headers=s.api.headers)
    assert r.status_code == 400
    assert r.json() == unknown("dryRun", "none")
    r = await s.client.get(f"{s.api.jwk_base}{jwk}/", headers=s.api.headers)
    assert r.status_code == 400  # JWK (name: ...) is not found!
    r = await s.client.post(s.api.jwk_base, json=body, headers=s.api.headers)
    assert r.status_code == 200, r.text


async def test_a_method_or_path_error_keeps_its_own_answer(s: Setting) -> None:
    r = await s.client.patch(f"{s.api.base}?bogus=1", headers=s.api.headers)
    assert r.status_code == 405
    r = await s.client.get("/apiops/no-such-thing/?bogus=1", headers=s.api.headers)
    assert r.status_code == 404


async def test_the_token_endpoint_ignores_unknown_parameters(client: httpx.AsyncClient) -> None:
    # RFC 6749 section 3.2: unrecognized request parameters MUST be ignored.
    r = await client.post(
        "/apiops/auth/token?audience=x",
        data={"grant_type": "client_credentials", "client_id": "admin", "client_secret": "x"},
    )
    assert r.status_code == 401  # the credentials decide, not the parameter
    r = await client.post(
        "/apiops/auth/token?audience=x",
        data={
            "grant_type": "client_credentials",
            "client_id": "admin",
            "client_secret": ADMIN_PASSWORD,
        },
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "path",
    [
        "/apiops/openapi.json?v=1",
        "/apiops/openapi.yaml?v=1",
        "/apiops/openapi?urls.primaryName=keyops",
    ],
)
async def test_the_openapi_document_and_page_take_any_parameter(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(path)
    assert r.status_code == 200, r.text


async def test_metrics_take_any_parameter(client: httpx.AsyncClient, admin_token: str) -> None:
    plain = await client.get("/metrics", headers=bearer(admin_token))
    with_params = await client.get("/metrics?name[]=up&format=x", headers=bearer(admin_token))
    assert with_params.status_code == plain.status_code != 400


async def test_the_gateway_sync_keeps_working_with_what_nodes_send(s: Setting) -> None:
    r = await s.client.post(
        f"/apiops/admin/environments/{s.envs[0]}/node-tokens/",
        json={"name": "gw"},
        headers=bearer(s.admin_token),
    )
    assert r.status_code == 200, r.text
    node = bearer(r.json()["result"]["token"])
    # What gateway/node.py sends: wait, node and (after its first snapshot) since.
    r = await s.client.get("/apiops/gateway/sync/?wait=0&node=n1", headers=node)
    assert r.status_code == 200, r.text
    r = await s.client.get("/apiops/gateway/sync/?wait=0&node=n1&since=-1", headers=node)
    assert r.status_code == 200, r.text
    r = await s.client.get("/apiops/gateway/sync/?wait=0&node=n1&since=-1&x=1", headers=node)
    assert r.status_code == 400
    assert r.json() == unknown("x", "node, since, wait")
    r = await s.client.delete("/apiops/gateway/sync/?node=n1", headers=node)
    assert r.status_code == 200, r.text


async def test_parameters_are_checked_before_the_credentials(client: httpx.AsyncClient) -> None:
    # Which parameters an endpoint takes is public (the OpenAPI document); the check
    # runs before any database work, authentication included.
    r = await client.get("/apiops/projects/p/certificates/?expiresWithinDays=30")
    assert r.status_code == 400
    assert r.json() == unknown("expiresWithinDays", LIST_PARAMS)
    r = await client.get("/apiops/projects/p/certificates/?expiringWithinDays=30")
    assert r.status_code == 401
