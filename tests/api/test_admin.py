"""/apiops/admin/: users, personal tokens, projects, members and environments."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import ADMIN_PASSWORD, Actor, Factory, bearer, issue_token, unique

ADMIN = "/apiops/admin"
FORBIDDEN = {
    "error": "forbidden",
    "error_description": "You do not have permission to perform this action:"
    " it needs the role ROLE_ADMIN",
}
INVALID_TOKEN = {"error": "unauthorized_client", "error_description": "Invalid token"}
SUCCESS = {"success": True}

# Names every kind of name (user, project, environment) refuses.
BAD_NAMES = [
    "has space",
    " leading",
    "trailing ",
    "-dash-first",
    ".dot-first",
    "slash/inside",
    "quote'inside",
    "ünïcode",
    "tab\tinside",
    "new\nline",
    "a" * 101,
]


def assert_error(response: httpx.Response, status: int, error: str, error_description: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": error, "error_description": error_description}


def assert_bad_request(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == "bad_request"
    assert isinstance(body["error_description"], str) and body["error_description"]
    assert "detail" not in body
    return body


def assert_validation_failed(response: httpx.Response) -> None:
    body = assert_bad_request(response)
    assert body["error_description"].startswith("Validation failed")


def assert_list(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert set(body) == {"success", "resultList", "resultCount"}
    assert body["success"] is True
    assert body["resultCount"] == len(body["resultList"])
    rows: list[dict[str, Any]] = body["resultList"]
    return rows


def assert_result(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"success", "result"}
    assert body["success"] is True
    result: dict[str, Any] = body["result"]
    return result


class Admin:
    """The admin API, called with the bootstrap admin's token."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = bearer(token)

    async def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, ADMIN + path, headers=self.headers, **kwargs)


@pytest.fixture
def admin(client: httpx.AsyncClient, admin_token: str) -> Admin:
    return Admin(client, admin_token)


async def can_log_in(client: httpx.AsyncClient, username: str, password: str) -> bool:
    r = await client.post(
        "/apiops/auth/token",
        data={"grant_type": "client_credentials", "client_id": username, "client_secret": password},
    )
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


async def project_names(client: httpx.AsyncClient, headers: dict[str, str]) -> set[str]:
    r = await client.get("/apiops/projects/", headers=headers)
    assert r.status_code == 200, r.text
    return {p["name"] for p in r.json()["resultList"]}


# --- who may call ----------------------------------------------------------------------

ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/users/", None),
    ("POST", "/users/", {"username": "never-made", "password": "password-123"}),
    ("GET", "/users/admin/", None),
    ("PATCH", "/users/admin/", {"enabled": False}),
    ("DELETE", "/users/admin/", None),
    ("GET", "/users/admin/tokens/", None),
    ("POST", "/users/admin/tokens/", {"name": "stolen"}),
    ("DELETE", "/tokens/1/", None),
    ("GET", "/projects/", None),
    ("POST", "/projects/", {"name": "never-made"}),
    ("DELETE", "/projects/MyProject/", None),
    ("GET", "/projects/MyProject/members/", None),
    ("POST", "/projects/MyProject/members/", {"username": "admin"}),
    ("DELETE", "/projects/MyProject/members/admin/", None),
    ("POST", "/environments/", {"name": "never-made"}),
    ("GET", "/environments/production/", None),
    ("DELETE", "/environments/production/", None),
]
ENDPOINT_IDS = [f"{m} {p}" for m, p, _ in ENDPOINTS]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def non_admin(client: httpx.AsyncClient, admin_token: str) -> Actor:
    # Every role but ROLE_ADMIN, and a member of the demo project; one per module and
    # backend, since making a user costs two Argon2 hashes.
    return await Factory(client, admin_token).user(
        "ROLE_API_SECURITY",
        "ROLE_DEPLOY_UNDEPLOY_PROXIES",
        "ROLE_MANAGE_PROXIES",
        projects=("MyProject",),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def bystander(client: httpx.AsyncClient, admin_token: str) -> Actor:
    """A user that requests refused by validation are aimed at; it never changes."""
    return await Factory(client, admin_token).user()


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
async def test_non_admin_is_forbidden(
    client: httpx.AsyncClient,
    non_admin: Actor,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    for variant in (path, path.rstrip("/")):
        r = await client.request(method, ADMIN + variant, json=body, headers=non_admin.headers)
        assert_error(r, 403, **FORBIDDEN)


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in ENDPOINTS], ids=ENDPOINT_IDS)
async def test_non_admin_learns_nothing_from_a_bad_body(
    client: httpx.AsyncClient, non_admin: Actor, method: str, path: str
) -> None:
    r = await client.request(method, ADMIN + path, content=b"{not json", headers=non_admin.headers)
    assert_error(r, 403, **FORBIDDEN)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
async def test_unauthenticated_is_401(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    r = await client.request(method, ADMIN + path, json=body)
    assert_error(r, 401, **INVALID_TOKEN)
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_forbidden_calls_change_nothing(
    client: httpx.AsyncClient, admin: Admin, non_admin: Actor
) -> None:
    for method, path, body in ENDPOINTS:
        await client.request(method, ADMIN + path, json=body, headers=non_admin.headers)
    assert (await admin("GET", "/users/never-made/")).status_code == 404
    admin_user = assert_result(await admin("GET", "/users/admin/"))
    assert admin_user["enabled"] is True
    assert "MyProject" in await project_names(client, admin.headers)
    members = assert_list((await admin("GET", "/projects/MyProject/members/")).json())
    assert "admin" in {m["username"] for m in members}
    assert (await admin("GET", "/environments/production/")).status_code == 200
    assert await can_log_in(client, "admin", ADMIN_PASSWORD)


async def test_a_new_admin_may_administer(client: httpx.AsyncClient, factory: Factory) -> None:
    other = await factory.user("ROLE_ADMIN")
    r = await client.get(f"{ADMIN}/users/", headers=other.headers)
    assert r.status_code == 200, r.text


# --- users -----------------------------------------------------------------------------


async def test_user_lifecycle(client: httpx.AsyncClient, admin: Admin) -> None:
    name = unique("user")
    created = assert_result(
        await admin(
            "POST",
            "/users/",
            json={
                "username": name,
                "password": "first-password",
                "roles": ["ROLE_DEPLOY_UNDEPLOY_PROXIES", "ROLE_API_SECURITY"],
            },
        )
    )
    assert set(created) == {"username", "roles", "enabled", "createdAt"}
    assert created["username"] == name
    assert created["roles"] == ["ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES"]
    assert created["enabled"] is True

    for path in (f"/users/{name}/", f"/users/{name}"):
        assert assert_result(await admin("GET", path)) == created

    listed = assert_list((await admin("GET", "/users/")).json())
    assert created in listed
    assert "admin" in {u["username"] for u in listed}
    for row in listed:
        assert set(row) == {"username", "roles", "enabled", "createdAt"}

    assert await can_log_in(client, name, "first-password")
    r = await admin("DELETE", f"/users/{name}/")
    assert r.status_code == 200, r.text
    assert r.json() == SUCCESS
    assert_error(
        await admin("GET", f"/users/{name}/"),
        404,
        "not_found",
        f"User (username: {name}) is not found!",
    )
    assert_error(
        await admin("DELETE", f"/users/{name}/"),
        404,
        "not_found",
        f"User (username: {name}) is not found!",
    )
    assert not await can_log_in(client, name, "first-password")


async def test_user_without_roles(admin: Admin) -> None:
    name = unique("user")
    created = assert_result(
        await admin("POST", "/users/", json={"username": name, "password": "password-123"})
    )
    assert created["roles"] == []


async def test_duplicate_user_is_409(admin: Admin, factory: Factory) -> None:
    user = await factory.user()
    r = await admin("POST", "/users/", json={"username": user.username, "password": "other-pass-1"})
    assert_error(r, 409, "conflict", f"User (username: {user.username}) is already exist!")


async def test_usernames_are_case_sensitive(admin: Admin) -> None:
    name = unique("Case")
    for variant in (name, name.lower()):
        r = await admin("POST", "/users/", json={"username": variant, "password": "password-123"})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("roles", [["ROLE_NOPE"], ["role_admin"], ["ROLE_ADMIN", "ADMIN"], [""]])
async def test_unknown_role_is_400(admin: Admin, roles: list[str]) -> None:
    name = unique("user")
    r = await admin(
        "POST", "/users/", json={"username": name, "password": "pw-12345678", "roles": roles}
    )
    body = assert_bad_request(r)
    assert body["error_description"].startswith("Unknown role(s): ")
    assert "ROLE_API_SECURITY" in body["error_description"]  # the valid ones are named
    assert (await admin("GET", f"/users/{name}/")).status_code == 404


async def test_short_password_is_400(admin: Admin) -> None:
    name = unique("user")
    r = await admin("POST", "/users/", json={"username": name, "password": "short"})
    assert_error(r, 400, "bad_request", "password must be at least 8 characters!")


@pytest.mark.parametrize("username", ["", "   "])
async def test_empty_username_is_400(admin: Admin, username: str) -> None:
    r = await admin("POST", "/users/", json={"username": username, "password": "password-123"})
    assert_error(r, 400, "bad_request", "username value can not be empty!")


@pytest.mark.parametrize("username", BAD_NAMES)
async def test_invalid_username_is_400(admin: Admin, username: str) -> None:
    r = await admin("POST", "/users/", json={"username": username, "password": "password-123"})
    assert_bad_request(r)


async def test_longest_username_is_accepted(admin: Admin) -> None:
    name = unique("u") + "x" * 90
    name = name[:100]
    r = await admin("POST", "/users/", json={"username": name, "password": "password-123"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "body",
    [
        {"username": 123, "password": "password-123"},
        {"username": None, "password": "password-123"},
        {"username": ["a"], "password": "password-123"},
        {"username": "typed-user", "password": 12345678},
        {"username": "typed-user", "password": "password-123", "roles": "ROLE_ADMIN"},
        {"username": "typed-user", "password": "password-123", "roles": [1]},
        {"username": "typed-user", "password": "password-123", "roles": None},
        {"username": "typed-user", "password": "password-123", "enabled": True},
        {"username": "typed-user", "password": "password-123", "isAdmin": True},
        {"password": "password-123"},
        {"username": "typed-user"},
        {"username": "typed-user", "password": ""},
        {},
        [],
        ["typed-user", "password-123"],
        "typed-user",
        None,
    ],
)
async def test_user_create_wrong_json_types(admin: Admin, body: Any) -> None:
    assert_validation_failed(await admin("POST", "/users/", json=body))
    assert (await admin("GET", "/users/typed-user/")).status_code == 404


async def test_missing_field_is_named(admin: Admin) -> None:
    r = await admin("POST", "/users/", json={"password": "password-123"})
    body = assert_bad_request(r)
    assert body["error_description"] == "Validation failed: username is required"


async def test_patch_roles(client: httpx.AsyncClient, admin: Admin, factory: Factory) -> None:
    user = await factory.user("ROLE_API_SECURITY")
    updated = assert_result(
        await admin("PATCH", f"/users/{user.username}/", json={"roles": ["ROLE_ADMIN"]})
    )
    assert updated["roles"] == ["ROLE_ADMIN"]
    assert assert_result(await admin("GET", f"/users/{user.username}/"))["roles"] == ["ROLE_ADMIN"]
    cleared = assert_result(await admin("PATCH", f"/users/{user.username}", json={"roles": []}))
    assert cleared["roles"] == []


async def test_patch_password(client: httpx.AsyncClient, admin: Admin, factory: Factory) -> None:
    user = await factory.user()
    r = await admin("PATCH", f"/users/{user.username}/", json={"password": "a-new-password"})
    assert r.status_code == 200, r.text
    assert not await can_log_in(client, user.username, user.password)
    assert await can_log_in(client, user.username, "a-new-password")


async def test_patch_enabled(client: httpx.AsyncClient, admin: Admin, factory: Factory) -> None:
    user = await factory.user()
    disabled = assert_result(
        await admin("PATCH", f"/users/{user.username}/", json={"enabled": False})
    )
    assert disabled["enabled"] is False
    assert not await can_log_in(client, user.username, user.password)
    r = await client.get("/apiops/projects/", headers=user.headers)
    assert_error(r, 401, **INVALID_TOKEN)
    enabled = assert_result(
        await admin("PATCH", f"/users/{user.username}/", json={"enabled": True})
    )
    assert enabled["enabled"] is True
    assert await can_log_in(client, user.username, user.password)


async def test_patch_nothing_changes_nothing(admin: Admin, factory: Factory) -> None:
    user = await factory.user("ROLE_API_SECURITY")
    before = assert_result(await admin("GET", f"/users/{user.username}/"))
    assert assert_result(await admin("PATCH", f"/users/{user.username}/", json={})) == before
    nulls = {"password": None, "roles": None, "enabled": None}
    assert assert_result(await admin("PATCH", f"/users/{user.username}/", json=nulls)) == before


async def test_patch_unknown_role_changes_nothing(
    client: httpx.AsyncClient, admin: Admin, factory: Factory
) -> None:
    user = await factory.user("ROLE_API_SECURITY")
    r = await admin(
        "PATCH",
        f"/users/{user.username}/",
        json={"password": "changed-password", "enabled": False, "roles": ["ROLE_NOPE"]},
    )
    body = assert_bad_request(r)
    assert body["error_description"].startswith("Unknown role(s): ROLE_NOPE")
    # The whole request was refused: the password and state stay as they were.
    assert await can_log_in(client, user.username, user.password)
    current = assert_result(await admin("GET", f"/users/{user.username}/"))
    assert current["roles"] == ["ROLE_API_SECURITY"] and current["enabled"] is True


async def test_patch_short_password_is_400(
    client: httpx.AsyncClient, admin: Admin, factory: Factory
) -> None:
    user = await factory.user()
    for password in ("", "short"):
        r = await admin("PATCH", f"/users/{user.username}/", json={"password": password})
        assert_error(r, 400, "bad_request", "password must be at least 8 characters!")
    assert await can_log_in(client, user.username, user.password)


@pytest.mark.parametrize(
    "body",
    [
        {"enabled": "maybe"},
        {"enabled": [True]},
        {"roles": "ROLE_ADMIN"},
        {"roles": [None]},
        {"password": 12345678},
        {"username": "renamed"},
        [],
        "x",
    ],
)
async def test_patch_wrong_json_types(admin: Admin, bystander: Actor, body: Any) -> None:
    user = bystander
    assert_validation_failed(await admin("PATCH", f"/users/{user.username}/", json=body))


async def test_patch_unknown_user_is_404(admin: Admin) -> None:
    r = await admin("PATCH", "/users/ghost-user/", json={"enabled": False})
    assert_error(r, 404, "not_found", "User (username: ghost-user) is not found!")


async def test_admin_can_not_delete_self(admin: Admin) -> None:
    r = await admin("DELETE", "/users/admin/")
    assert_error(r, 400, "bad_request", "You can not delete your own user!")
    assert (await admin("GET", "/users/admin/")).status_code == 200


async def test_admin_can_not_lock_self_out(client: httpx.AsyncClient, factory: Factory) -> None:
    me = await factory.user("ROLE_ADMIN")
    url = f"{ADMIN}/users/{me.username}/"
    r = await client.patch(url, json={"enabled": False}, headers=me.headers)
    assert_error(r, 400, "bad_request", "You can not disable your own user!")
    for roles in ([], ["ROLE_API_SECURITY"]):
        r = await client.patch(url, json={"roles": roles}, headers=me.headers)
        assert_error(r, 400, "bad_request", "You can not remove ROLE_ADMIN from your own user!")
    r = await client.delete(url, headers=me.headers)
    assert_error(r, 400, "bad_request", "You can not delete your own user!")
    # Still an enabled admin; changes that keep it so are fine.
    r = await client.patch(
        url,
        json={"roles": ["ROLE_ADMIN", "ROLE_API_SECURITY"], "enabled": True},
        headers=me.headers,
    )
    assert assert_result(r)["roles"] == ["ROLE_ADMIN", "ROLE_API_SECURITY"]
    assert (await client.get(f"{ADMIN}/users/", headers=me.headers)).status_code == 200


async def test_admin_may_disable_another_admin(
    client: httpx.AsyncClient, admin: Admin, factory: Factory
) -> None:
    other = await factory.user("ROLE_ADMIN")
    assert_result(await admin("PATCH", f"/users/{other.username}/", json={"enabled": False}))
    assert_error(await client.get(f"{ADMIN}/users/", headers=other.headers), 401, **INVALID_TOKEN)


async def test_deleted_username_reused_inherits_nothing(
    client: httpx.AsyncClient, admin: Admin, factory: Factory
) -> None:
    user = await factory.user("ROLE_ADMIN")
    project = await factory.project(user.username)
    token = assert_result(
        await admin("POST", f"/users/{user.username}/tokens/", json={"name": "t"})
    )
    assert (await admin("DELETE", f"/users/{user.username}/")).status_code == 200

    # A new user of the same name must not inherit membership, roles or tokens.
    r = await admin(
        "POST", "/users/", json={"username": user.username, "password": "brand-new-pass"}
    )
    assert r.status_code == 200, r.text
    fresh = await issue_token(client, user.username, "brand-new-pass")
    assert await project_names(client, bearer(fresh)) == set()
    assert (await client.get(f"{ADMIN}/users/", headers=bearer(fresh))).status_code == 403
    for old in (user.token, token["token"]):
        assert_error(
            await client.get("/apiops/projects/", headers=bearer(old)), 401, **INVALID_TOKEN
        )
    tokens = assert_list((await admin("GET", f"/users/{user.username}/tokens/")).json())
    assert tokens == []
    members = assert_list((await admin("GET", f"/projects/{project}/members/")).json())
    assert user.username not in {m["username"] for m in members}


async def test_concurrent_creates_of_one_name_give_one_winner(admin: Admin) -> None:
    cases = [
        (
            "/users/",
            {"username": unique("race"), "password": "password-123"},
            "User (username: {})",
        ),
        ("/projects/", {"name": unique("race")}, "Project (name: {})"),
        ("/environments/", {"name": unique("race")}, "Environment (name: {})"),
    ]
    for path, body, text in cases:
        responses = await asyncio.gather(*(admin("POST", path, json=body) for _ in range(6)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 409, 409, 409, 409, 409], [r.text for r in responses]
        name = body.get("username") or body["name"]
        for r in responses:
            if r.status_code == 409:
                assert r.json() == {
                    "error": "conflict",
                    "error_description": text.format(name) + " is already exist!",
                }


async def test_concurrent_adds_of_one_member_never_fail_hard(
    admin: Admin, factory: Factory
) -> None:
    project = await factory.project()
    user = await factory.user()
    responses = await asyncio.gather(
        *(
            admin("POST", f"/projects/{project}/members/", json={"username": user.username})
            for _ in range(6)
        )
    )
    assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]
    assert 200 in {r.status_code for r in responses}
    for r in responses:
        assert r.json()["error" if r.status_code == 409 else "success"] in ("conflict", True)
    members = assert_list((await admin("GET", f"/projects/{project}/members/")).json())
    assert [m["username"] for m in members].count(user.username) == 1


# --- personal access tokens ------------------------------------------------------------

TOKEN_FIELDS = {"id", "name", "username", "prefix", "createdAt", "expiresAt", "revokedAt", "active"}


async def test_personal_token_is_shown_once(
    client: httpx.AsyncClient, admin: Admin, factory: Factory
) -> None:
    user = await factory.user(projects=("MyProject",))
    created = assert_result(
        await admin("POST", f"/users/{user.username}/tokens/", json={"name": "pipeline"})
    )
    assert set(created) == TOKEN_FIELDS | {"token"}
    assert created["name"] == "pipeline"
    assert created["username"] == user.username
    assert created["token"].startswith(created["prefix"])
    assert len(created["prefix"]) < len(created["token"]) // 2
    assert created["expiresAt"] is None and created["revokedAt"] is None
    assert created["active"] is True

    # It works like any token.
    assert "MyProject" in await project_names(client, bearer(created["token"]))

    for path in (f"/users/{user.username}/tokens/", f"/users/{user.username}/tokens"):
        r = await admin("GET", path)
        assert r.status_code == 200, r.text
        assert created["token"] not in r.text
        assert created["token"][len(created["prefix"]) :] not in r.text
        rows = assert_list(r.json())
        assert len(rows) == 1
        assert rows[0] == {k: v for k, v in created.items() if k != "token"}


async def test_token_list_shows_only_that_users_personal_tokens(
    admin: Admin, factory: Factory
) -> None:
    alice, bob = await factory.user(), await factory.user()
    for name in ("one", "two"):
        await admin("POST", f"/users/{alice.username}/tokens/", json={"name": name})
    await admin("POST", f"/users/{bob.username}/tokens/", json={"name": "bobs"})
    # factory.user() also obtained an OAuth token for each: those are not listed.
    rows = assert_list((await admin("GET", f"/users/{alice.username}/tokens/")).json())
    assert [r["name"] for r in rows] == ["one", "two"]
    assert {r["username"] for r in rows} == {alice.username}


async def test_revoked_token_stops_working_immediately(
    client: httpx.AsyncClient, admin: Admin, factory: Factory
) -> None:
    user = await factory.user(projects=("MyProject",))
    created = assert_result(
        await admin("POST", f"/users/{user.username}/tokens/", json={"name": "short-lived"})
    )
    headers = bearer(created["token"])
    assert (await client.get("/apiops/projects/", headers=headers)).status_code == 200

    for path in (f"/tokens/{created['id']}/", f"/tokens/{created['id']}"):
        revoked = assert_result(await admin("DELETE", path))
        assert revoked["id"] == created["id"]
        assert revoked["active"] is False
        assert revoked["revokedAt"] is not None
        assert "token" not in revoked
    assert_error(await client.get("/apiops/projects/", headers=headers), 401, **INVALID_TOKEN)
    assert_error(await client.get("/apiops/test/hello/x", headers=headers), 401, **INVALID_TOKEN)

    rows = assert_list((await admin("GET", f"/users/{user.username}/tokens/")).json())
    assert rows[0]["active"] is False
    # Revoking twice is harmless and keeps the first revocation time.
    again = assert_result(await admin("DELETE", f"/tokens/{created['id']}/"))
    assert again["revokedAt"] == rows[0]["revokedAt"]


async def test_token_with_expiry_date(admin: Admin, factory: Factory) -> None:
    user = await factory.user()
    created = assert_result(
        await admin(
            "POST",
            f"/users/{user.username}/tokens/",
            json={"name": "dated", "expires": "2999-12-31"},
        )
    )
    # Valid through that whole day, UTC.
    assert created["expiresAt"].startswith("3000-01-01T00:00:00")
    assert created["active"] is True


@pytest.mark.parametrize("expires", ["never", "NEVER", ""])
async def test_token_that_never_expires(admin: Admin, bystander: Actor, expires: str) -> None:
    user = bystander
    created = assert_result(
        await admin(
            "POST", f"/users/{user.username}/tokens/", json={"name": "n", "expires": expires}
        )
    )
    assert created["expiresAt"] is None


async def test_token_expiry_in_the_past_is_400(admin: Admin, factory: Factory) -> None:
    user = await factory.user()
    r = await admin(
        "POST", f"/users/{user.username}/tokens/", json={"name": "old", "expires": "2000-01-01"}
    )
    assert_error(r, 400, "bad_request", "Token expiration must be in the future!")
    assert assert_list((await admin("GET", f"/users/{user.username}/tokens/")).json()) == []


@pytest.mark.parametrize("expires", ["tomorrow", "2030-13-01", "2030-02-30", "31.12.2030", "2030"])
async def test_token_expiry_not_a_date_is_400(admin: Admin, bystander: Actor, expires: str) -> None:
    user = bystander
    r = await admin(
        "POST", f"/users/{user.username}/tokens/", json={"name": "x", "expires": expires}
    )
    assert_error(
        r,
        400,
        "bad_request",
        f"Token expiration ({expires}) is not valid: use YYYY-MM-DD or never!",
    )


@pytest.mark.parametrize("name", ["", "   "])
async def test_token_empty_name_is_400(admin: Admin, bystander: Actor, name: str) -> None:
    user = bystander
    r = await admin("POST", f"/users/{user.username}/tokens/", json={"name": name})
    assert_error(r, 400, "bad_request", "Token name can not be empty!")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": 5},
        {"name": None},
        {"name": "x" * 101},
        {"name": "x", "expires": 20301231},
        {"name": "x", "scope": "all"},
        ["x"],
    ],
)
async def test_token_create_wrong_json(admin: Admin, bystander: Actor, body: Any) -> None:
    user = bystander
    assert_validation_failed(await admin("POST", f"/users/{user.username}/tokens/", json=body))


async def test_token_for_unknown_user_is_404(admin: Admin) -> None:
    description = "User (username: ghost-user) is not found!"
    r = await admin("POST", "/users/ghost-user/tokens/", json={"name": "x"})
    assert_error(r, 404, "not_found", description)
    assert_error(await admin("GET", "/users/ghost-user/tokens/"), 404, "not_found", description)


@pytest.mark.parametrize(
    "token_id", ["987654321", "0", "-1", "2147483648", "99999999999999999999999"]
)
async def test_revoke_unknown_token_is_404(admin: Admin, token_id: str) -> None:
    # Also ids beyond what the database's integer column holds.
    r = await admin("DELETE", f"/tokens/{token_id}/")
    assert_error(r, 404, "not_found", f"Token (id: {int(token_id)}) is not found!")


@pytest.mark.parametrize("token_id", ["abc", "1.5", "%20"])
async def test_revoke_non_numeric_id_is_400(admin: Admin, token_id: str) -> None:
    assert_validation_failed(await admin("DELETE", f"/tokens/{token_id}/"))


# --- projects and members --------------------------------------------------------------


async def test_project_lifecycle(client: httpx.AsyncClient, admin: Admin, factory: Factory) -> None:
    member = await factory.user()
    name = unique("proj")
    created = assert_result(
        await admin(
            "POST",
            "/projects/",
            json={"name": name, "description": "A project", "members": [member.username]},
        )
    )
    assert created == {
        "name": name,
        "description": "A project",
        "members": sorted(["admin", member.username]),
    }
    everything = assert_list((await admin("GET", "/projects/")).json())
    assert {"name": name, "description": "A project"} in everything
    assert {"admin", "MyProject"} <= {p["name"] for p in everything}
    assert name in await project_names(client, member.headers)

    r = await admin("DELETE", f"/projects/{name}/")
    assert r.status_code == 200, r.text
    assert r.json() == SUCCESS
    assert name not in {p["name"] for p in assert_list((await admin("GET", "/projects/")).json())}
    description = f"Project ({name}) is not found!"
    assert_error(await admin("DELETE", f"/projects/{name}/"), 404, "not_found", description)
    assert_error(await admin("GET", f"/projects/{name}/members/"), 404, "not_found", description)


async def test_project_description_defaults_to_empty(admin: Admin) -> None:
    name = unique("proj")
    created = assert_result(await admin("POST", "/projects", json={"name": name}))
    assert created == {"name": name, "description": "", "members": ["admin"]}


async def test_duplicate_project_is_409(admin: Admin, factory: Factory) -> None:
    name = await factory.project()
    r = await admin("POST", "/projects/", json={"name": name})
    assert_error(r, 409, "conflict", f"Project (name: {name}) is already exist!")
    r = await admin("POST", "/projects/", json={"name": "MyProject"})
    assert_error(r, 409, "conflict", "Project (name: MyProject) is already exist!")


async def test_project_names_are_case_sensitive(admin: Admin) -> None:
    name = unique("Proj")
    for variant in (name, name.lower()):
        r = await admin("POST", "/projects/", json={"name": variant})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("name", ["", "  "])
async def test_empty_project_name_is_400(admin: Admin, name: str) -> None:
    r = await admin("POST", "/projects/", json={"name": name})
    assert_error(r, 400, "bad_request", "projectName value can not be empty!")


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_invalid_project_name_is_400(admin: Admin, name: str) -> None:
    assert_bad_request(await admin("POST", "/projects/", json={"name": name}))


async def test_longest_project_name_is_accepted(admin: Admin) -> None:
    name = (unique("p") + "x" * 100)[:100]
    assert (await admin("POST", "/projects/", json={"name": name})).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": 5},
        {"name": None},
        {"name": "typed-proj", "description": 5},
        {"name": "typed-proj", "members": "admin"},
        {"name": "typed-proj", "members": [1]},
        {"name": "typed-proj", "owner": "admin"},
        ["typed-proj"],
    ],
)
async def test_project_create_wrong_json(admin: Admin, body: Any) -> None:
    assert_validation_failed(await admin("POST", "/projects/", json=body))
    everything = assert_list((await admin("GET", "/projects/")).json())
    assert "typed-proj" not in {p["name"] for p in everything}


async def test_project_with_unknown_member_is_refused_whole(admin: Admin) -> None:
    name = unique("proj")
    r = await admin("POST", "/projects/", json={"name": name, "members": ["ghost-user"]})
    assert_error(r, 404, "not_found", "User (username: ghost-user) is not found!")
    everything = assert_list((await admin("GET", "/projects/")).json())
    assert name not in {p["name"] for p in everything}


async def test_admin_project_can_not_be_deleted(admin: Admin) -> None:
    for path in ("/projects/admin/", "/projects/admin"):
        r = await admin("DELETE", path)
        assert_error(r, 400, "bad_request", "The admin project can not be deleted!")
    everything = assert_list((await admin("GET", "/projects/")).json())
    assert "admin" in {p["name"] for p in everything}


async def test_members(client: httpx.AsyncClient, admin: Admin, factory: Factory) -> None:
    project = await factory.project()
    user = await factory.user("ROLE_API_SECURITY")
    added = assert_result(
        await admin("POST", f"/projects/{project}/members/", json={"username": user.username})
    )
    assert added["username"] == user.username and added["roles"] == ["ROLE_API_SECURITY"]
    # Adding twice is harmless.
    again = await admin("POST", f"/projects/{project}/members", json={"username": user.username})
    assert again.status_code == 200, again.text
    members = assert_list((await admin("GET", f"/projects/{project}/members/")).json())
    assert [m["username"] for m in members] == sorted(["admin", user.username])
    assert project in await project_names(client, user.headers)

    r = await admin("DELETE", f"/projects/{project}/members/{user.username}/")
    assert r.status_code == 200, r.text
    assert r.json() == SUCCESS
    assert project not in await project_names(client, user.headers)
    assert_error(
        await admin("DELETE", f"/projects/{project}/members/{user.username}"),
        404,
        "not_found",
        f"User ({user.username}) is not a member of project ({project})!",
    )


async def test_member_errors(admin: Admin, factory: Factory) -> None:
    project = await factory.project()
    user = await factory.user()
    assert_error(
        await admin("POST", f"/projects/{project}/members/", json={"username": "ghost-user"}),
        404,
        "not_found",
        "User (username: ghost-user) is not found!",
    )
    assert_error(
        await admin("POST", "/projects/ghost-proj/members/", json={"username": user.username}),
        404,
        "not_found",
        "Project (ghost-proj) is not found!",
    )
    assert_error(
        await admin("DELETE", f"/projects/ghost-proj/members/{user.username}/"),
        404,
        "not_found",
        "Project (ghost-proj) is not found!",
    )
    assert_error(
        await admin("DELETE", f"/projects/{project}/members/ghost-user/"),
        404,
        "not_found",
        "User (username: ghost-user) is not found!",
    )
    for body in ({}, {"username": 5}, {"username": None}, {"username": "x" * 101}, ["x"]):
        assert_validation_failed(await admin("POST", f"/projects/{project}/members/", json=body))


# --- environments ----------------------------------------------------------------------

ENV_FIELDS = {
    "name",
    "description",
    "type",
    "status",
    "accessUrl",
    "deployed",
    "redeployRequired",
    "projects",
    "target",
    "tlsIdentity",
}


async def test_environment_lifecycle(admin: Admin, factory: Factory) -> None:
    project = await factory.project()
    name = unique("env")
    created = assert_result(
        await admin(
            "POST",
            "/environments/",
            json={
                "name": name,
                "description": "Gateway A",
                "type": "PRODUCTION",
                "accessUrl": "https://a.example.com",
                "projects": [project],
            },
        )
    )
    assert created == {
        "name": name,
        "description": "Gateway A",
        "type": "PRODUCTION",
        "status": "PUBLISHED",
        "accessUrl": "https://a.example.com",
        "deployed": None,
        "redeployRequired": False,
        "projects": [project],
        "target": "local",
        "tlsIdentity": None,
    }
    for path in (f"/environments/{name}/", f"/environments/{name}"):
        assert assert_result(await admin("GET", path)) == created

    r = await admin("DELETE", f"/environments/{name}/")
    assert r.status_code == 200, r.text
    assert r.json() == SUCCESS
    description = f"Environment ({name}) is not found!"
    assert_error(await admin("GET", f"/environments/{name}/"), 404, "not_found", description)
    assert_error(await admin("DELETE", f"/environments/{name}/"), 404, "not_found", description)


async def test_environment_defaults(admin: Admin) -> None:
    name = unique("env")
    created = assert_result(await admin("POST", "/environments", json={"name": name}))
    assert set(created) == ENV_FIELDS
    assert created["type"] == "TEST"
    assert created["status"] == "PUBLISHED"
    assert created["description"] == "" and created["accessUrl"] == ""
    assert created["projects"] == [] and created["target"] == "local"


@pytest.mark.parametrize("env_type", ["PRODUCTION", "SANDBOX", "TEST"])
async def test_environment_types(admin: Admin, env_type: str) -> None:
    created = assert_result(
        await admin("POST", "/environments/", json={"name": unique("env"), "type": env_type})
    )
    assert created["type"] == env_type


@pytest.mark.parametrize("env_type", ["KUBERNETES", "production", "", "DOCKER"])
async def test_bad_environment_type_is_400(admin: Admin, env_type: str) -> None:
    name = unique("env")
    r = await admin("POST", "/environments/", json={"name": name, "type": env_type})
    assert_error(
        r,
        400,
        "bad_request",
        f"type ({env_type}) is not valid! Valid values: PRODUCTION, SANDBOX, TEST",
    )
    assert (await admin("GET", f"/environments/{name}/")).status_code == 404


@pytest.mark.parametrize("target", ["k8s", "", "LOCAL"])
async def test_unknown_target_is_400(admin: Admin, target: str) -> None:
    name = unique("env")
    r = await admin("POST", "/environments/", json={"name": name, "target": target})
    body = assert_bad_request(r)
    assert body["error_description"].startswith(f"target ({target}) is not valid! Valid values: ")
    assert "local" in body["error_description"]
    assert (await admin("GET", f"/environments/{name}/")).status_code == 404


async def test_duplicate_environment_is_409(admin: Admin, factory: Factory) -> None:
    name = await factory.environment()
    r = await admin("POST", "/environments/", json={"name": name, "type": "PRODUCTION"})
    assert_error(r, 409, "conflict", f"Environment (name: {name}) is already exist!")
    r = await admin("POST", "/environments/", json={"name": "production"})
    assert_error(r, 409, "conflict", "Environment (name: production) is already exist!")


@pytest.mark.parametrize("name", ["", "   "])
async def test_empty_environment_name_is_400(admin: Admin, name: str) -> None:
    r = await admin("POST", "/environments/", json={"name": name})
    assert_error(r, 400, "bad_request", "environmentName value can not be empty!")


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_invalid_environment_name_is_400(admin: Admin, name: str) -> None:
    assert_bad_request(await admin("POST", "/environments/", json={"name": name}))


async def test_environment_for_unknown_project_is_refused_whole(admin: Admin) -> None:
    name = unique("env")
    r = await admin("POST", "/environments/", json={"name": name, "projects": ["ghost-proj"]})
    assert_error(r, 404, "not_found", "Project (ghost-proj) is not found!")
    assert (await admin("GET", f"/environments/{name}/")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": 5},
        {"name": None},
        {"name": "typed-env", "type": 1},
        {"name": "typed-env", "projects": "MyProject"},
        {"name": "typed-env", "projects": [None]},
        {"name": "typed-env", "accessUrl": ["x"]},
        {"name": "typed-env", "status": "UNPUBLISHED"},
        {"name": "typed-env", "accessUrl": "x" * 2049},
        ["typed-env"],
    ],
)
async def test_environment_create_wrong_json(admin: Admin, body: Any) -> None:
    assert_validation_failed(await admin("POST", "/environments/", json=body))
    assert (await admin("GET", "/environments/typed-env/")).status_code == 404


async def test_deleting_a_project_never_widens_its_environments(
    client: httpx.AsyncClient, admin: Admin, factory: Factory
) -> None:
    outsider = await factory.user()
    other = await factory.project(outsider.username)
    doomed = await factory.project()
    only_doomed = await factory.environment(projects=(doomed,))
    doomed_and_other = await factory.environment(projects=(doomed, other))

    r = await admin("DELETE", f"/projects/{doomed}/")
    assert_error(
        r,
        409,
        "conflict",
        f"Project ({doomed}) can not be deleted: environment(s) ({only_doomed}) are limited"
        " to it alone. Delete them first!",
    )
    envs = await client.get(f"/apiops/environments/{other}", headers=outsider.headers)
    assert only_doomed not in {e["name"] for e in envs.json()["resultList"]}

    assert (await admin("DELETE", f"/environments/{only_doomed}/")).status_code == 200
    assert (await admin("DELETE", f"/projects/{doomed}/")).status_code == 200
    # Still limited to the project that remains.
    kept = assert_result(await admin("GET", f"/environments/{doomed_and_other}/"))
    assert kept["projects"] == [other]


async def test_deleted_environment_leaves_project_lists(
    client: httpx.AsyncClient, admin: Admin, factory: Factory
) -> None:
    user = await factory.user()
    project = await factory.project(user.username)
    env = await factory.environment(projects=(project,))
    assert (await admin("DELETE", f"/environments/{env}/")).status_code == 200
    r = await client.get(f"/apiops/environments/{project}", headers=user.headers)
    assert env not in {e["name"] for e in r.json()["resultList"]}
