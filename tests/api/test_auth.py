"""POST /apiops/auth/token and the Bearer check every protected endpoint makes."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest

from keyops.config import Settings
from keyops.domain.tokens import hash_token
from keyops.storage.models.base import utcnow
from tests.conftest import ADMIN_PASSWORD, Factory, bearer, issue_token, unique
from tests.support.storage import set_token_expiry, token_rows, user_rows

TOKEN_URL = "/apiops/auth/token"
FORM = {"content-type": "application/x-www-form-urlencoded"}
BAD_CREDENTIALS = {"error": "unauthorized_client", "error_description": "Bad credentials"}
BAD_GRANT = {
    "error": "unsupported_grant_type",
    "error_description": "GrantType value must be client_credentials!",
}
INVALID_TOKEN = {"error": "unauthorized_client", "error_description": "Invalid token"}


def credentials(username: str, password: str, **overrides: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": username,
        "client_secret": password,
        **overrides,
    }


async def personal_token(client: httpx.AsyncClient, admin_token: str, username: str) -> dict:
    r = await client.post(
        f"/apiops/admin/users/{username}/tokens/",
        json={"name": "ci"},
        headers=bearer(admin_token),
    )
    assert r.status_code == 200, r.text
    created: dict = r.json()["result"]
    return created


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == INVALID_TOKEN
    assert response.headers["www-authenticate"].startswith("Bearer")


# --- issuing ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [TOKEN_URL, TOKEN_URL + "/"])
async def test_token_success_shape(
    client: httpx.AsyncClient, settings: Settings, path: str
) -> None:
    r = await client.post(path, data=credentials("admin", ADMIN_PASSWORD))
    assert r.status_code == 200, r.text  # no redirect on either form of the path
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.token_ttl_seconds
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 32
    hello = await client.get("/apiops/test/hello/John", headers=bearer(body["access_token"]))
    assert hello.status_code == 200
    assert hello.text == "Hello John"


async def test_each_request_issues_a_new_token(client: httpx.AsyncClient) -> None:
    first = await issue_token(client, "admin", ADMIN_PASSWORD)
    second = await issue_token(client, "admin", ADMIN_PASSWORD)
    assert first != second


async def test_form_content_type_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    r = await client.post(
        TOKEN_URL,
        content=urlencode(credentials("admin", ADMIN_PASSWORD)).encode(),
        headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    assert r.status_code == 200, r.text


async def test_token_endpoint_needs_no_bearer_and_ignores_a_bad_one(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        TOKEN_URL,
        data=credentials("admin", ADMIN_PASSWORD),
        headers={"Authorization": "Bearer not-a-token"},
    )
    assert r.status_code == 200, r.text


async def test_password_with_form_special_characters(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    username, password = unique("user"), "p&ss=w+rd %25 ä/?#"
    r = await client.post(
        "/apiops/admin/users/",
        json={"username": username, "password": password},
        headers=bearer(admin_token),
    )
    assert r.status_code == 200, r.text
    await issue_token(client, username, password)
    r = await client.post(TOKEN_URL, data=credentials(username, "p&ss=w rd %25 ä/?#"))
    assert r.status_code == 401


async def test_wrong_password(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN_URL, data=credentials("admin", ADMIN_PASSWORD + "x"))
    assert r.status_code == 401
    assert r.json() == BAD_CREDENTIALS


async def test_unknown_user(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN_URL, data=credentials("nobody-at-all", ADMIN_PASSWORD))
    assert r.status_code == 401
    assert r.json() == BAD_CREDENTIALS


async def test_username_is_case_sensitive(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN_URL, data=credentials("ADMIN", ADMIN_PASSWORD))
    assert r.status_code == 401
    assert r.json() == BAD_CREDENTIALS


async def test_disabled_user_gets_bad_credentials(
    client: httpx.AsyncClient, factory: Factory, admin_token: str
) -> None:
    user = await factory.user()
    r = await client.patch(
        f"/apiops/admin/users/{user.username}/",
        json={"enabled": False},
        headers=bearer(admin_token),
    )
    assert r.status_code == 200, r.text
    r = await client.post(TOKEN_URL, data=credentials(user.username, user.password))
    assert r.status_code == 401
    assert r.json() == BAD_CREDENTIALS
    # The token issued while enabled stops working too.
    assert_invalid_token(await client.get("/apiops/projects/", headers=user.headers))


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "", "CLIENT_CREDENTIALS"])
async def test_wrong_grant_type(client: httpx.AsyncClient, grant_type: str) -> None:
    r = await client.post(
        TOKEN_URL, data=credentials("admin", ADMIN_PASSWORD, grant_type=grant_type)
    )
    assert r.status_code == 400
    assert r.json() == BAD_GRANT


async def test_missing_grant_type(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN_URL, data={"client_id": "admin", "client_secret": ADMIN_PASSWORD})
    assert r.status_code == 400
    assert r.json() == BAD_GRANT


async def test_grant_type_is_checked_before_credentials(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN_URL, data=credentials("nobody", "wrong", grant_type="password"))
    assert r.status_code == 400
    assert r.json() == BAD_GRANT


async def test_empty_form_is_a_bad_grant(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN_URL, content=b"", headers=FORM)
    assert r.status_code == 400
    assert r.json() == BAD_GRANT


async def test_json_body_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN_URL, json=credentials("admin", ADMIN_PASSWORD))
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in body["error_description"]


async def test_multipart_body_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN_URL, files={"grant_type": (None, "client_credentials")})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


async def test_no_body_and_no_content_type_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN_URL)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


@pytest.mark.parametrize("missing", ["client_secret", "client_id"])
async def test_missing_credential(client: httpx.AsyncClient, missing: str) -> None:
    data = credentials("admin", ADMIN_PASSWORD)
    del data[missing]
    r = await client.post(TOKEN_URL, data=data)
    assert r.status_code == 401
    assert r.json() == BAD_CREDENTIALS


@pytest.mark.parametrize("empty", ["client_secret", "client_id"])
async def test_empty_credential(client: httpx.AsyncClient, empty: str) -> None:
    r = await client.post(TOKEN_URL, data=credentials("admin", ADMIN_PASSWORD, **{empty: ""}))
    assert r.status_code == 401
    assert r.json() == BAD_CREDENTIALS


@pytest.mark.parametrize(
    "raw",
    [
        f"grant_type=client_credentials&client_id=admin&client_secret={ADMIN_PASSWORD}"
        "&client_id=someone-else",
        f"grant_type=client_credentials&client_id=admin&client_secret={ADMIN_PASSWORD}"
        "&client_secret=other",
        f"grant_type=client_credentials&grant_type=client_credentials&client_id=admin"
        f"&client_secret={ADMIN_PASSWORD}",
    ],
)
async def test_repeated_field_is_refused(client: httpx.AsyncClient, raw: str) -> None:
    r = await client.post(TOKEN_URL, content=raw.encode(), headers=FORM)
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == "invalid_request"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_token_endpoint_other_methods(client: httpx.AsyncClient, method: str) -> None:
    r = await client.request(method, TOKEN_URL)
    assert r.status_code == 405
    assert r.json()["error"] == "method_not_allowed"
    assert "POST" in r.headers["allow"]


# --- using a token ---------------------------------------------------------------------

PROTECTED = ["/apiops/projects/", "/apiops/test/hello/John", "/apiops/environments/MyProject"]


@pytest.mark.parametrize("path", PROTECTED)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-real-token"},
        {"Authorization": "Bearer kops_" + "A" * 43},
        {"Authorization": "Token abc"},
        {"Authorization": "Bearer two parts"},
    ],
    ids=[
        "missing",
        "empty",
        "basic",
        "bearer-no-token",
        "bearer-blank",
        "garbage",
        "well-formed-unknown",
        "other-scheme",
        "two-tokens",
    ],
)
async def test_bad_bearer_is_refused(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    assert_invalid_token(await client.get(path, headers=headers))


async def test_scheme_is_case_insensitive(client: httpx.AsyncClient, admin_token: str) -> None:
    r = await client.get("/apiops/projects/", headers={"Authorization": f"bearer {admin_token}"})
    assert r.status_code == 200, r.text


async def test_token_is_case_sensitive(client: httpx.AsyncClient, admin_token: str) -> None:
    assert_invalid_token(await client.get("/apiops/projects/", headers=bearer(admin_token.upper())))


async def test_basic_with_valid_credentials_is_still_refused(client: httpx.AsyncClient) -> None:
    r = await client.get("/apiops/projects/", auth=("admin", ADMIN_PASSWORD))
    assert_invalid_token(r)


async def test_revoked_personal_token(
    client: httpx.AsyncClient, factory: Factory, admin_token: str
) -> None:
    user = await factory.user()
    created = await personal_token(client, admin_token, user.username)
    headers = bearer(created["token"])
    assert (await client.get("/apiops/projects/", headers=headers)).status_code == 200
    r = await client.delete(f"/apiops/admin/tokens/{created['id']}/", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    for path in PROTECTED:
        assert_invalid_token(await client.get(path, headers=headers))
    # Other tokens of the same user are untouched.
    assert (await client.get("/apiops/projects/", headers=user.headers)).status_code == 200


async def test_expired_oauth_token(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    user = await factory.user()
    assert (await client.get("/apiops/projects/", headers=user.headers)).status_code == 200
    await set_token_expiry(settings, user.token, utcnow() - timedelta(seconds=1))
    for path in PROTECTED:
        assert_invalid_token(await client.get(path, headers=user.headers))


async def test_expired_personal_token(
    client: httpx.AsyncClient, factory: Factory, admin_token: str, settings: Settings
) -> None:
    user = await factory.user()
    created = await personal_token(client, admin_token, user.username)
    headers = bearer(created["token"])
    await set_token_expiry(settings, created["token"], utcnow() + timedelta(minutes=5))
    assert (await client.get("/apiops/projects/", headers=headers)).status_code == 200
    await set_token_expiry(settings, created["token"], utcnow() - timedelta(minutes=5))
    assert_invalid_token(await client.get("/apiops/projects/", headers=headers))
    r = await client.get(
        f"/apiops/admin/users/{user.username}/tokens/", headers=bearer(admin_token)
    )
    assert [t["active"] for t in r.json()["resultList"]] == [False]


async def test_token_of_deleted_user_is_refused(
    client: httpx.AsyncClient, factory: Factory, admin_token: str
) -> None:
    user = await factory.user()
    r = await client.delete(f"/apiops/admin/users/{user.username}/", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert_invalid_token(await client.get("/apiops/projects/", headers=user.headers))


async def test_tokens_are_stored_only_as_hashes(
    client: httpx.AsyncClient, factory: Factory, admin_token: str, settings: Settings
) -> None:
    user = await factory.user()
    personal = (await personal_token(client, admin_token, user.username))["token"]
    before = utcnow()
    oauth = await issue_token(client, user.username, user.password)
    rows = await token_rows(settings)
    by_hash = {row["token_hash"]: row for row in rows}
    for token in (user.token, personal, oauth):
        assert hash_token(token) in by_hash
        for row in rows:
            for column, value in row.items():
                assert token not in str(value), f"clear token found in access_tokens.{column}"
    # The OAuth token lives for the configured time, no longer.
    expires_at = by_hash[hash_token(oauth)]["expires_at"]
    if expires_at.tzinfo is None:  # SQLite keeps no zone; keyops stores UTC
        expires_at = expires_at.replace(tzinfo=before.tzinfo)
    lifetime = (expires_at - before).total_seconds()
    assert settings.token_ttl_seconds - 5 <= lifetime <= settings.token_ttl_seconds + 5
    assert by_hash[hash_token(personal)]["expires_at"] is None


async def test_passwords_are_stored_only_as_hashes(factory: Factory, settings: Settings) -> None:
    user = await factory.user()
    rows = await user_rows(settings)
    mine = [row for row in rows if row["username"] == user.username]
    assert len(mine) == 1
    for row in rows:
        for value in row.values():
            assert user.password not in str(value)
    assert mine[0]["password_hash"].startswith("$argon2id$")


async def test_role_change_applies_to_existing_token_at_once(
    client: httpx.AsyncClient, factory: Factory, admin_token: str
) -> None:
    user = await factory.user()

    async def set_roles(*roles: str) -> None:
        r = await client.patch(
            f"/apiops/admin/users/{user.username}/",
            json={"roles": list(roles)},
            headers=bearer(admin_token),
        )
        assert r.status_code == 200, r.text

    assert (await client.get("/apiops/admin/users/", headers=user.headers)).status_code == 403
    assert (await client.get("/apiops/environments/", headers=user.headers)).status_code == 401
    await set_roles("ROLE_ADMIN")
    assert (await client.get("/apiops/admin/users/", headers=user.headers)).status_code == 200
    assert (await client.get("/apiops/environments/", headers=user.headers)).status_code == 200
    await set_roles("ROLE_API_SECURITY")
    assert (await client.get("/apiops/admin/users/", headers=user.headers)).status_code == 403
    assert (await client.get("/apiops/environments/", headers=user.headers)).status_code == 401


async def test_reenabled_user_can_log_in_again(
    client: httpx.AsyncClient, factory: Factory, admin_token: str
) -> None:
    user = await factory.user()
    url = f"/apiops/admin/users/{user.username}/"
    for enabled in (False, True):
        r = await client.patch(url, json={"enabled": enabled}, headers=bearer(admin_token))
        assert r.status_code == 200, r.text
    await issue_token(client, user.username, user.password)


# --- revoking (RFC 7009) -------------------------------------------------------------------


async def test_revoke_ends_the_presented_token(client: httpx.AsyncClient) -> None:
    token = await issue_token(client, "admin", ADMIN_PASSWORD)
    assert (await client.get("/apiops/projects/", headers=bearer(token))).status_code == 200
    r = await client.post("/apiops/auth/revoke", data={"token": token})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True}
    assert r.headers["cache-control"] == "no-store"
    assert_invalid_token(await client.get("/apiops/projects/", headers=bearer(token)))
    # Revoking again, or a token that never existed, is not an error (RFC 7009 2.2).
    assert (await client.post("/apiops/auth/revoke", data={"token": token})).status_code == 200
    r = await client.post("/apiops/auth/revoke", data={"token": "no-such-token"})
    assert r.status_code == 200


async def test_revoke_ends_a_personal_token_too(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    created = await personal_token(client, admin_token, "admin")
    r = await client.post("/apiops/auth/revoke/", data={"token": created["token"]})
    assert r.status_code == 200, r.text
    assert_invalid_token(await client.get("/apiops/projects/", headers=bearer(created["token"])))


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        ("", FORM, "token is required!"),
        ("token=", FORM, "token is required!"),
        ("token=a&token=b", FORM, "Each parameter may be given only once!"),
        ("token=a%00b", FORM, None),
        (
            '{"token": "a"}',
            {"content-type": "application/json"},
            "Request body must be application/x-www-form-urlencoded, not application/json!",
        ),
    ],
)
async def test_revoke_refuses_bad_bodies(
    client: httpx.AsyncClient, body: str, headers: dict[str, str], message: str | None
) -> None:
    r = await client.post("/apiops/auth/revoke", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request"
    if message is not None:
        assert r.json()["error_description"] == message
