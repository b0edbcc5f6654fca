"""GET /apiops/projects/: the caller's projects, by membership."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Factory, bearer

PATHS = ["/apiops/projects/", "/apiops/projects"]


def assert_envelope(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert set(body) == {"status", "resultList", "resultCount"}
    assert body["status"] == "SUCCESS"
    assert isinstance(body["resultList"], list)
    assert body["resultCount"] == len(body["resultList"])
    for item in body["resultList"]:
        assert set(item) == {"name", "description"}
        assert isinstance(item["name"], str) and isinstance(item["description"], str)
    rows: list[dict[str, Any]] = body["resultList"]
    return rows


async def names(client: httpx.AsyncClient, headers: dict[str, str]) -> set[str]:
    r = await client.get("/apiops/projects/", headers=headers)
    assert r.status_code == 200, r.text
    return {p["name"] for p in assert_envelope(r.json())}


@pytest.mark.parametrize("path", PATHS)
async def test_admin_sees_bootstrap_and_demo_projects(
    client: httpx.AsyncClient, admin_token: str, path: str
) -> None:
    r = await client.get(path, headers=bearer(admin_token))
    assert r.status_code == 200, r.text  # both forms answer directly, no redirect
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    rows = assert_envelope(r.json())
    by_name = {p["name"]: p for p in rows}
    assert by_name["MyProject"] == {"name": "MyProject", "description": "Demo project"}
    assert "admin" in by_name


async def test_both_path_forms_answer_the_same(client: httpx.AsyncClient, admin_token: str) -> None:
    with_slash, without = [(await client.get(p, headers=bearer(admin_token))).json() for p in PATHS]
    assert with_slash == without


async def test_new_user_without_membership_gets_empty_list(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = await factory.user("ROLE_API_SECURITY")
    r = await client.get("/apiops/projects/", headers=user.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "SUCCESS", "resultList": [], "resultCount": 0}


async def test_member_sees_project_after_being_added(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    mine, other = await factory.project(), await factory.project()
    assert await names(client, user.headers) == set()
    await factory.add_member(mine, user.username)
    r = await client.get("/apiops/projects/", headers=user.headers)
    assert r.json() == {
        "status": "SUCCESS",
        "resultList": [{"name": mine, "description": f"{mine} description"}],
        "resultCount": 1,
    }
    assert other not in await names(client, user.headers)


async def test_project_created_with_members_is_listed_for_them(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    alice, bob = await factory.user(), await factory.user()
    shared = await factory.project(alice.username, bob.username)
    only_alice = await factory.project(alice.username)
    assert await names(client, alice.headers) == {shared, only_alice}
    assert await names(client, bob.headers) == {shared}


async def test_removed_member_no_longer_sees_project(
    client: httpx.AsyncClient, factory: Factory, admin_token: str
) -> None:
    user = await factory.user()
    project = await factory.project(user.username)
    assert await names(client, user.headers) == {project}
    r = await client.delete(
        f"/apiops/admin/projects/{project}/members/{user.username}/", headers=bearer(admin_token)
    )
    assert r.status_code == 200, r.text
    assert await names(client, user.headers) == set()


async def test_deleted_project_disappears(
    client: httpx.AsyncClient, factory: Factory, admin_token: str
) -> None:
    user = await factory.user()
    project = await factory.project(user.username)
    r = await client.delete(f"/apiops/admin/projects/{project}/", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert await names(client, user.headers) == set()


async def test_roles_do_not_widen_the_list(client: httpx.AsyncClient, factory: Factory) -> None:
    # Membership, not role, decides: even ROLE_ADMIN lists only its own projects.
    other_admin = await factory.user("ROLE_ADMIN")
    await factory.project()
    assert await names(client, other_admin.headers) == set()


async def test_unknown_query_parameters_are_harmless(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    r = await client.get("/apiops/projects/?page=1&size=10", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert_envelope(r.json())


@pytest.mark.parametrize("path", PATHS)
async def test_without_token(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized_client", "error_description": "Invalid token"}
