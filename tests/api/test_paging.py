"""Paging, sort and filters on the four lists (certificates, keys, keystores, JWKs), on
both databases: ``page`` (0-based), ``size`` (1 to 1,000), ``sort``, ``name`` prefix,
``environment``; a paged answer adds ``page``, ``size`` and ``totalCount``. Paging is SQL:
a page's statement count is the same at 10 rows as at 1,000."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from keyops.config import Settings
from tests.api.test_expiry import cert_expiring
from tests.api.test_list_queries import (
    KINDS as LIST_KINDS,
)
from tests.api.test_list_queries import (
    LARGE,
    SMALL,
    Material,
    Resources,
    constant_problem,
    in_database,
    measure,
    statement_log,
)
from tests.api.test_list_queries import (
    material as material,  # the fixture, for the statement counts
)
from tests.conftest import Factory, bearer
from tests.crypto import certs
from tests.support.certificates import CertificateClient, new_setting
from tests.support.keysecrets import bad_request, jwcrypto_public, key_body, key_entry

# name -> (days to notAfter, in the second environment too)
CERTIFICATES = {
    "b1": (30, True),
    "a2": (10, False),
    "c1": (5, True),
    "a1": (50, False),
    "b2": (20, True),
    "a_x": (40, False),
}
NAMES = sorted(CERTIFICATES)  # a1, a2, a_x, b1, b2, c1
BY_NOT_AFTER = sorted(CERTIFICATES, key=lambda n: CERTIFICATES[n][0])


@dataclass
class World:
    project: str
    e1: str
    e2: str
    token: str
    # kind -> name -> the item as the whole list shows it
    items: dict[str, dict[str, dict[str, Any]]]

    def path(self, kind: str, query: str = "") -> str:
        return f"/apiops/projects/{self.project}/{kind}/" + (f"?{query}" if query else "")


async def _post(client: httpx.AsyncClient, token: str, path: str, body: dict[str, Any]) -> None:
    r = await client.post(path, json=body, headers=bearer(token))
    assert r.status_code == 200, r.text


@pytest.fixture
async def world(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> World:
    s = await new_setting(client, admin_token, factory, envs=2)
    e1, e2 = sorted(s.envs)
    api = CertificateClient(client, admin_token, s.project)
    for name, (days, both) in CERTIFICATES.items():
        pem = cert_expiring(days, f"{name}.example").pem
        await api.create_ok(name, pem, [e1, e2] if both else [e1], alias=f"{name}-alias")
    base = f"/apiops/projects/{s.project}"
    for name in ("k-b", "k-a", "other"):
        entries = [key_entry(e1, certs.key("p256"))]
        await _post(client, admin_token, f"{base}/keys/", key_body(name, "EC", entries))
    for name in ("j-b", "j-a", "x"):
        await _post(
            client,
            admin_token,
            f"{base}/jwks/parse-from-clipboard",
            {"name": name, "sourceType": "COPY_PASTE", "jwkStr": _jwk_text()},
        )
    world = World(s.project, e1, e2, admin_token, {})
    for kind in ("certificates", "keys", "jwks"):
        r = await client.get(world.path(kind), headers=bearer(admin_token))
        assert r.status_code == 200, r.text
        world.items[kind] = {i["name"]: i for i in r.json()["resultList"]}
    return world


def _jwk_text() -> str:
    return json.dumps(jwcrypto_public(certs.key("p256")))


async def get(client: httpx.AsyncClient, w: World, kind: str, query: str) -> dict[str, Any]:
    r = await client.get(w.path(kind, query.format(e1=w.e1, e2=w.e2)), headers=bearer(w.token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def whole(w: World, kind: str, names: list[str]) -> dict[str, Any]:
    return {
        "success": True,
        "resultList": [w.items[kind][n] for n in names],
        "resultCount": len(names),
    }


def paged(
    w: World, kind: str, names: list[str], page: int, size: int, total: int
) -> dict[str, Any]:
    return {**whole(w, kind, names), "page": page, "size": size, "totalCount": total}


async def test_no_parameters_is_the_whole_list(client: httpx.AsyncClient, world: World) -> None:
    assert await get(client, world, "certificates", "") == whole(world, "certificates", NAMES)
    assert list(world.items["certificates"]) == NAMES


@pytest.mark.parametrize(
    ("query", "names", "page", "size", "total"),
    [
        ("size=2", ["a1", "a2"], 0, 2, 6),
        ("page=0&size=2", ["a1", "a2"], 0, 2, 6),
        ("page=1&size=4", ["b2", "c1"], 1, 4, 6),
        ("page=2&size=2", ["b2", "c1"], 2, 2, 6),
        ("page=3&size=2", [], 3, 2, 6),
        ("page=0", NAMES, 0, 20, 6),
        ("size=1000", NAMES, 0, 1000, 6),
        ("size=2&sort=-name", ["c1", "b2"], 0, 2, 6),
        ("size=2&sort=name,desc", ["c1", "b2"], 0, 2, 6),
        ("size=3&sort=notAfter", BY_NOT_AFTER[:3], 0, 3, 6),
        ("page=1&size=3&sort=notAfter,asc", BY_NOT_AFTER[3:], 1, 3, 6),
        ("size=2&sort=-notAfter", BY_NOT_AFTER[::-1][:2], 0, 2, 6),
        ("size=5&name=a", ["a1", "a2", "a_x"], 0, 5, 3),
        ("page=1&size=1&name=b", ["b2"], 1, 1, 2),
        ("size=10&environment={e2}", ["b1", "b2", "c1"], 0, 10, 3),
        ("size=1&environment={e2}&sort=notAfter", ["c1"], 0, 1, 3),
    ],
)
async def test_certificate_pages(
    client: httpx.AsyncClient,
    world: World,
    query: str,
    names: list[str],
    page: int,
    size: int,
    total: int,
) -> None:
    body = await get(client, world, "certificates", query)
    assert body == paged(world, "certificates", names, page, size, total)


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("sort=name", NAMES),
        ("sort=-name", NAMES[::-1]),
        ("sort=notAfter", BY_NOT_AFTER),
        ("sort=-notAfter", BY_NOT_AFTER[::-1]),
        ("name=a", ["a1", "a2", "a_x"]),
        ("name=a_", ["a_x"]),
        # A prefix, not a pattern, and case-sensitive on both databases.
        ("name=A", []),
        ("name=%25", []),
        ("name=_", []),
        ("name=a1", ["a1"]),
        ("environment={e2}", ["b1", "b2", "c1"]),
        ("environment=no-such-environment", []),
        ("environment={e2}&name=b&sort=-name", ["b2", "b1"]),
    ],
)
async def test_certificate_filters_without_paging(
    client: httpx.AsyncClient, world: World, query: str, names: list[str]
) -> None:
    """Filters and sort alone: the whole filtered list, no paging fields."""
    assert await get(client, world, "certificates", query) == whole(world, "certificates", names)


@pytest.mark.parametrize(
    ("kind", "query", "names", "total"),
    [
        ("keys", "size=2", ["k-a", "k-b"], 3),
        ("keys", "page=1&size=2", ["other"], 3),
        ("keys", "size=5&name=k-&sort=-name", ["k-b", "k-a"], 2),
        ("keys", "size=5&environment={e2}", [], 0),
        ("keys", "size=5&environment={e1}", ["k-a", "k-b", "other"], 3),
        ("jwks", "size=2", ["j-a", "j-b"], 3),
        ("jwks", "page=1&size=2&sort=name,asc", ["x"], 3),
        ("jwks", "size=2&sort=-name", ["x", "j-b"], 3),
        ("jwks", "size=5&name=j-", ["j-a", "j-b"], 2),
        # A JWK is deployed to every environment its project may use.
        ("jwks", "size=5&environment={e2}", ["j-a", "j-b", "x"], 3),
        ("jwks", "size=5&environment=no-such-environment", [], 0),
    ],
)
async def test_key_and_jwk_pages(
    client: httpx.AsyncClient, world: World, kind: str, query: str, names: list[str], total: int
) -> None:
    size = int(query.split("size=")[1].split("&")[0])
    page = int(query.split("page=")[1].split("&")[0]) if "page=" in query else 0
    assert await get(client, world, kind, query) == paged(world, kind, names, page, size, total)


ALL_KINDS = ("certificates", "keys", "keystores", "jwks")


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize(
    ("query", "description"),
    [
        ("page=-1", "page (-1) must be an integer between 0 and 1000000000!"),
        ("page=first", "page (first) must be an integer between 0 and 1000000000!"),
        ("page=", "page value can not be empty!"),
        ("page=1&page=2", "page may be given only once!"),
        ("size=0", "size (0) must be an integer between 1 and 1000!"),
        ("size=1001", "size (1001) must be an integer between 1 and 1000!"),
        ("size=ten", "size (ten) must be an integer between 1 and 1000!"),
        ("size=", "size value can not be empty!"),
        ("sort=", "sort value can not be empty!"),
        ("name=", "name value can not be empty!"),
        ("environment=", "environment value can not be empty!"),
        ("environment=a&environment=b", "environment may be given only once!"),
    ],
)
async def test_bad_paging_parameters(
    client: httpx.AsyncClient, admin_token: str, kind: str, query: str, description: str
) -> None:
    r = await client.get(f"/apiops/projects/admin/{kind}/?{query}", headers=bearer(admin_token))
    assert r.status_code == 400
    assert r.json() == bad_request(description)


@pytest.mark.parametrize(
    ("kind", "query", "description"),
    [
        (
            "certificates",
            "sort=subject",
            "sort (subject) is not supported! Use one of: name, -name, notAfter, -notAfter",
        ),
        (
            "certificates",
            "sort=name,sideways",
            "sort (name,sideways) is not supported! Use one of: name, -name, notAfter, -notAfter",
        ),
        ("keys", "sort=notAfter", "sort (notAfter) is not supported! Use one of: name, -name"),
        (
            "keystores",
            "sort=-notAfter",
            "sort (-notAfter) is not supported! Use one of: name, -name",
        ),
        ("jwks", "sort=kid", "sort (kid) is not supported! Use one of: name, -name"),
    ],
)
async def test_bad_sort(
    client: httpx.AsyncClient, admin_token: str, kind: str, query: str, description: str
) -> None:
    r = await client.get(f"/apiops/projects/admin/{kind}/?{query}", headers=bearer(admin_token))
    assert r.status_code == 400
    assert r.json() == bad_request(description)


async def test_cached_pages_follow_changes(
    client: httpx.AsyncClient, admin_token: str, world: World
) -> None:
    """Each query's answer is kept on its own and dropped when the project changes."""
    w = world
    first = await get(client, w, "certificates", "size=2")
    assert [i["name"] for i in first["resultList"]] == ["a1", "a2"]
    assert await get(client, w, "certificates", "size=2") == first
    assert await get(client, w, "certificates", "") == whole(w, "certificates", NAMES)
    api = CertificateClient(client, admin_token, w.project)
    await api.create_ok("a0", cert_expiring(3, "a0.example").pem, [w.e1], alias="a0-alias")
    again = await get(client, w, "certificates", "size=2")
    assert [i["name"] for i in again["resultList"]] == ["a0", "a1"]
    assert again["totalCount"] == 7
    assert (await get(client, w, "certificates", ""))["resultCount"] == 7
    # An expiry filter is never kept: it moves with the clock.
    soon = await get(client, w, "certificates", "size=10&expiringWithinDays=6&sort=notAfter")
    assert [i["name"] for i in soon["resultList"]] == ["a0", "c1"]
    assert soon["totalCount"] == 2


@pytest.mark.parametrize("kind", list(LIST_KINDS))
async def test_pages_read_in_constant_statements(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_token: str,
    factory: Factory,
    settings: Settings,
    material: Material,
    kind: str,
) -> None:
    """A page, filtered, sorted and counted, costs the same statements at 10 rows as at
    1,000, and its total counts all of them."""
    spec = LIST_KINDS[kind]
    s = await new_setting(client, admin_token, factory, envs=2)
    resources = Resources(s, material)
    for i in range(SMALL):
        await spec.make(resources, f"{kind}-{i}", i)
    queries = [
        resources.path(spec.path) + "?page=1&size=3&sort=-name",
        resources.path(spec.path) + f"?size=5&name={kind}-&environment={s.envs[1]}",
    ]
    if kind in ("certificates", "keystores", "jwks"):
        queries.append(resources.path(spec.path) + "?size=4&expiringWithinDays=100000")
    with statement_log(app) as log:
        small = {}
        for q in queries:
            await measure(client, log, q, admin_token)  # warm-up
            small[q] = await measure(client, log, q, admin_token)
        await in_database(settings, lambda session: spec.bulk(session, s.project, LARGE - SMALL))
        large = {q: await measure(client, log, q, admin_token) for q in queries}
    problems = [p for q in queries for p in constant_problem(q, small[q], large[q])]
    assert not problems, "\n\n".join(problems)
    first = queries[0]
    assert small[first].body["totalCount"] == SMALL
    assert large[first].body["totalCount"] == LARGE
    assert large[first].body["resultCount"] == 3
    names = [i["name"] for i in large[first].body["resultList"]]
    assert names == sorted(names, reverse=True)
