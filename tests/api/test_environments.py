"""GET /apiops/environments/ (admin only) and GET /apiops/environments/{projectName}."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import Factory, bearer, unique

TYPES = {"PRODUCTION", "SANDBOX", "TEST"}
STATUSES = {"PUBLISHED", "UNPUBLISHED", "REPUBLISH_REQUIRED"}
REQUIRED_FIELDS = {"name", "description", "type", "status", "accessUrl"}
OPTIONAL_FIELDS = {"deployed", "redeployRequired"}
LIST_DENIED = {
    "error": "unauthorized_client",
    "error_description": "Invalid token or insufficient permissions",
}
INVALID_TOKEN = {"error": "unauthorized_client", "error_description": "Invalid token"}


def not_found(project: str) -> dict[str, str]:
    return {
        "error": "bad_request",
        "error_description": (
            f"Project not found for name: ({project}) or user has not privilege to access it!"
        ),
    }


def assert_envelope(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Check the list envelope and every item; the items by name."""
    assert set(body) == {"success", "resultList", "resultCount"}
    assert body["success"] is True
    assert body["resultCount"] == len(body["resultList"])
    for env in body["resultList"]:
        assert REQUIRED_FIELDS <= set(env) <= REQUIRED_FIELDS | OPTIONAL_FIELDS
        assert env["type"] in TYPES
        assert env["status"] in STATUSES
        for field in ("name", "description", "accessUrl"):
            assert isinstance(env[field], str)
        for field in OPTIONAL_FIELDS & set(env):
            assert env[field] is None or isinstance(env[field], bool)
    by_name = {e["name"]: e for e in body["resultList"]}
    assert len(by_name) == len(body["resultList"])
    return by_name


async def env_names(client: httpx.AsyncClient, project: str, headers: dict[str, str]) -> set[str]:
    r = await client.get(f"/apiops/environments/{project}", headers=headers)
    assert r.status_code == 200, r.text
    return set(assert_envelope(r.json()))


# --- list (admin) ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/apiops/environments/", "/apiops/environments"])
async def test_admin_lists_every_environment(
    client: httpx.AsyncClient, admin_token: str, factory: Factory, path: str
) -> None:
    project = await factory.project()
    limited = await factory.environment(projects=(project,), type="SANDBOX")
    r = await client.get(path, headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    envs = assert_envelope(r.json())
    # Every environment in the system, whatever project it is limited to.
    assert envs[limited]["type"] == "SANDBOX"
    assert envs[limited]["status"] == "PUBLISHED"


async def test_demo_environments_exist(client: httpx.AsyncClient, admin_token: str) -> None:
    r = await client.get("/apiops/environments/", headers=bearer(admin_token))
    envs = assert_envelope(r.json())
    expected = {
        "production": ("PRODUCTION", "Production environment"),
        "staging": ("SANDBOX", "Staging environment"),
        "development": ("TEST", "Development environment"),
    }
    for name, (env_type, description) in expected.items():
        assert envs[name]["type"] == env_type
        assert envs[name]["description"] == description
        assert envs[name]["status"] == "PUBLISHED"


async def test_created_environment_fields_round_trip(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    name = unique("env")
    r = await client.post(
        "/apiops/admin/environments/",
        json={
            "name": name,
            "description": "Round trip",
            "type": "PRODUCTION",
            "accessUrl": "https://gw.example.com",
        },
        headers=bearer(admin_token),
    )
    assert r.status_code == 200, r.text
    r = await client.get("/apiops/environments/", headers=bearer(admin_token))
    env = assert_envelope(r.json())[name]
    assert {k: env[k] for k in REQUIRED_FIELDS} == {
        "name": name,
        "description": "Round trip",
        "type": "PRODUCTION",
        "status": "PUBLISHED",
        "accessUrl": "https://gw.example.com",
    }


@pytest.mark.parametrize(
    "roles",
    [(), ("ROLE_API_SECURITY",), ("ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES")],
    ids=["no-role", "api-security", "api-security+deploy"],
)
async def test_non_admin_gets_401_with_page_text(
    client: httpx.AsyncClient, factory: Factory, roles: tuple[str, ...]
) -> None:
    user = await factory.user(*roles, projects=("MyProject",))
    for path in ("/apiops/environments/", "/apiops/environments"):
        r = await client.get(path, headers=user.headers)
        assert r.status_code == 401
        assert r.json() == LIST_DENIED
        assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer garbage"}, {"Authorization": "Basic YWRtaW46eA=="}],
    ids=["missing", "garbage", "basic"],
)
async def test_list_bad_token_gets_page_text(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    r = await client.get("/apiops/environments/", headers=headers)
    assert r.status_code == 401
    assert r.json() == LIST_DENIED


# --- by project ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/"])
async def test_member_gets_environments_of_project(
    client: httpx.AsyncClient, factory: Factory, suffix: str
) -> None:
    user = await factory.user(projects=("MyProject",))
    r = await client.get(f"/apiops/environments/MyProject{suffix}", headers=user.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    envs = assert_envelope(r.json())
    assert {"production", "staging", "development"} <= set(envs)


async def test_limited_environment_is_listed_only_for_its_projects(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    mine = await factory.project(user.username)
    theirs = await factory.project(user.username)
    for_mine = await factory.environment(projects=(mine,))
    for_theirs = await factory.environment(projects=(theirs,))
    for_both = await factory.environment(projects=(mine, theirs))
    for_all = await factory.environment()

    in_mine = await env_names(client, mine, user.headers)
    assert {for_mine, for_both, for_all} <= in_mine
    assert for_theirs not in in_mine
    in_theirs = await env_names(client, theirs, user.headers)
    assert {for_theirs, for_both, for_all} <= in_theirs
    assert for_mine not in in_theirs


async def test_member_only_endpoint_needs_no_role(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    project = await factory.project(user.username)
    env = await factory.environment(projects=(project,))
    assert env in await env_names(client, project, user.headers)


async def test_non_member_gets_400(client: httpx.AsyncClient, factory: Factory) -> None:
    user = await factory.user("ROLE_API_SECURITY")
    project = await factory.project()
    r = await client.get(f"/apiops/environments/{project}", headers=user.headers)
    assert r.status_code == 400
    assert r.json() == not_found(project)


async def test_unknown_project_gets_400(client: httpx.AsyncClient, admin_token: str) -> None:
    r = await client.get("/apiops/environments/NoSuchProject", headers=bearer(admin_token))
    assert r.status_code == 400
    assert r.json() == not_found("NoSuchProject")


async def test_non_member_and_unknown_are_indistinguishable(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    existing = await factory.project()
    a = await client.get(f"/apiops/environments/{existing}", headers=user.headers)
    b = await client.get(f"/apiops/environments/{existing}x", headers=user.headers)
    assert a.status_code == b.status_code == 400
    assert a.json()["error_description"].replace(existing, "X") == b.json()[
        "error_description"
    ].replace(existing + "x", "X")


async def test_project_name_is_case_sensitive(client: httpx.AsyncClient, admin_token: str) -> None:
    r = await client.get("/apiops/environments/myproject", headers=bearer(admin_token))
    assert r.status_code == 400
    assert r.json() == not_found("myproject")


async def test_url_encoded_project_name_is_decoded(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    r = await client.get(f"/apiops/environments/{quote('My Project')}", headers=bearer(admin_token))
    assert r.status_code == 400
    assert r.json() == not_found("My Project")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer garbage"}],
    ids=["missing", "garbage"],
)
async def test_by_project_without_valid_token(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    r = await client.get("/apiops/environments/MyProject", headers=headers)
    assert r.status_code == 401
    assert r.json() == INVALID_TOKEN
