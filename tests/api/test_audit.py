"""The audit log (issue 12): every change appended with its transaction, every failed
authorisation on its own, hash-chained, read-only, on both databases."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from typer.testing import CliRunner

from keyops.cli.main import app as cli
from keyops.config import Settings
from tests.conftest import Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import (
    Setting,
    certificate_parts,
    multipart,
    new_setting,
    pooled_key,
)
from tests.support.storage import open_database

AUDIT = "/apiops/admin/audit/"


def cert(cn: str) -> certs.Issued:
    subject = certs.name(("COMMON_NAME", cn))
    return certs.make_cert(subject, pooled_key("rsa2048"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory, envs=2)


async def entries(client: httpx.AsyncClient, admin_token: str, **params: Any) -> list[Any]:
    r = await client.get(AUDIT, params={"size": 1000, **params}, headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    result: list[Any] = body["resultList"]
    assert body["resultCount"] == len(result)
    return result


def essentials(e: dict[str, Any]) -> dict[str, Any]:
    keep = ("username", "operation", "project", "kind", "name", "environments", "outcome")
    return {k: e[k] for k in keep} | {"before": e["beforeSha256"], "after": e["afterSha256"]}


async def test_certificate_changes_are_audited_with_fingerprints(s: Setting) -> None:
    name = unique("cert")
    old, new = cert("old.example"), cert("new.example")
    e0, e1 = s.envs
    await s.api.create_ok(name, old.pem, [e0])
    r = await s.api.post_parts(
        certificate_parts(
            name=None,
            alias="alias-1",
            description="a test certificate",
            environments=[e0, e1],
            pem=new.pem,
        ),
        path=f"{s.api.base}{name}/",
        method="PUT",
    )
    assert r.status_code == 200, r.text
    r = await s.api.delete(name)
    assert r.status_code == 200, r.text

    found = await entries(s.client, s.admin_token, project=s.project, name=name)
    assert [essentials(e) for e in found] == [
        {
            "username": "admin",
            "operation": "DELETE",
            "project": s.project,
            "kind": "certificate",
            "name": name,
            "environments": [e0, e1],
            "outcome": "SUCCESS",
            "before": sha(new.der),
            "after": None,
        },
        {
            "username": "admin",
            "operation": "UPDATE",
            "project": s.project,
            "kind": "certificate",
            "name": name,
            "environments": [e0, e1],
            "outcome": "SUCCESS",
            "before": sha(old.der),
            "after": sha(new.der),
        },
        {
            "username": "admin",
            "operation": "CREATE",
            "project": s.project,
            "kind": "certificate",
            "name": name,
            "environments": [e0],
            "outcome": "SUCCESS",
            "before": None,
            "after": sha(old.der),
        },
    ]
    # Newest first, consecutive positions, each linked to the one before.
    assert found[0]["id"] > found[1]["id"] > found[2]["id"]
    assert all(e["tokenId"] is not None for e in found)
    # Made with a token from /auth/token: the token's name says so.
    assert all(e["tokenName"] == "client_credentials" for e in found)
    assert all(e["sourceAddress"] == "127.0.0.1" for e in found)


async def test_request_id_is_taken_echoed_and_recorded(s: Setting) -> None:
    name = unique("cert")
    issued = cert("rid.example")
    body, content_type = multipart(
        certificate_parts(
            name=name,
            alias="a",
            description="d",
            environments=[s.envs[0]],
            pem=issued.pem,
        )
    )
    r = await s.client.post(
        s.api.base,
        content=body,
        headers={**s.api.headers, **content_type, "X-Request-ID": "client-req-42"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "client-req-42"
    (entry,) = await entries(s.client, s.admin_token, project=s.project, name=name)
    assert entry["requestId"] == "client-req-42"

    # Without one (or with an unusable one), one is made and echoed.
    r = await s.client.get(s.api.base, headers={**s.api.headers, "X-Request-ID": "bad id!"})
    assert r.status_code == 200
    assert len(r.headers["x-request-id"]) == 32
    assert r.headers["x-request-id"] != "bad id!"


async def test_failed_authorisations_are_audited(
    client: httpx.AsyncClient, admin_token: str, factory: Factory, s: Setting
) -> None:
    path = f"/apiops/projects/{s.project}/certificates/"
    r = await client.get(path, headers=bearer("not-a-token"))
    assert r.status_code == 401
    nobody = await factory.user()  # no roles at all
    r = await client.get(path, headers=nobody.headers)
    assert r.status_code == 403
    outsider = await factory.user("ROLE_API_SECURITY")  # not a member of the project
    r = await client.get(path, headers=outsider.headers)
    assert r.status_code == 404
    r = await client.get(AUDIT, headers=outsider.headers)
    assert r.status_code == 403

    failed = [
        e
        for e in await entries(client, admin_token)
        if e["operation"] == "AUTH_FAILED" and e["id"] and e["description"].startswith("GET")
    ][:4]
    assert [(e["username"], e["outcome"], e["project"], e["description"]) for e in failed] == [
        (outsider.username, "FORBIDDEN", None, f"GET {AUDIT}: HTTP 403"),
        (outsider.username, "NOT_FOUND", s.project, f"GET {path}: HTTP 404"),
        (nobody.username, "FORBIDDEN", s.project, f"GET {path}: HTTP 403"),
        (None, "UNAUTHORIZED", s.project, f"GET {path}: HTTP 401"),
    ]


async def test_a_failed_roll_out_is_still_one_entry(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    project = await factory.project("admin")
    env = await factory.environment(projects=(project,), target="failing")
    api = Setting(client, admin_token, project, [env]).api
    name = unique("cert")
    await api.create_ok(name, cert("f1.example").pem, [env])
    r = await api.update(name, cert("f2.example").pem, [env])
    assert r.status_code == 200, r.text
    assert r.json()["deploymentResult"]["success"] is False
    found = await entries(client, admin_token, project=project, name=name)
    assert [(e["operation"], e["outcome"], e["environments"]) for e in found] == [
        ("UPDATE", "SUCCESS", [env]),
        ("CREATE", "SUCCESS", [env]),
    ]


async def test_a_refused_update_leaves_no_success_entry(s: Setting) -> None:
    name = unique("cert")
    await s.api.create_ok(name, cert("keep.example").pem, [s.envs[0]])
    r = await s.api.update(name, b"not a certificate", [s.envs[0]])
    assert r.status_code == 400, r.text
    found = await entries(s.client, s.admin_token, project=s.project, name=name)
    assert [(e["operation"], e["outcome"]) for e in found] == [
        ("UPDATE", "REFUSED"),
        ("CREATE", "SUCCESS"),
    ]
    assert found[0]["description"] == f"PUT {s.api.base}{name}/: HTTP 400"
    assert found[0]["beforeSha256"] is None and found[0]["afterSha256"] is None


async def test_admin_changes_are_audited(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    user = await factory.user("ROLE_API_SECURITY")  # create, then login (issue_token)
    project = await factory.project(user.username)
    env = await factory.environment(projects=(project,))
    r = await client.delete(f"/apiops/admin/environments/{env}/", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    recent = await entries(client, admin_token, size=50)
    seen = [(e["operation"], e["kind"], e["name"], e["project"], e["username"]) for e in recent]
    assert ("ENVIRONMENT_DELETE", "environment", env, None, "admin") in seen
    assert ("ENVIRONMENT_CREATE", "environment", None, None, "admin") in seen
    assert ("PROJECT_CREATE", "project", None, None, "admin") in seen
    assert ("USER_CREATE", "user", None, None, "admin") in seen
    # A login names the user who logged in, and the token it issued.
    assert ("LOGIN", "token", None, None, user.username) in seen
    login = next(e for e in recent if e["operation"] == "LOGIN" and e["username"] == user.username)
    assert login["tokenId"] is not None and login["outcome"] == "SUCCESS"
    assert login["tokenName"] == "client_credentials"
    by_user = await entries(client, admin_token, user="admin", kind="environment")
    assert {e["operation"] for e in by_user} >= {"ENVIRONMENT_CREATE", "ENVIRONMENT_DELETE"}


async def test_no_material_is_ever_in_an_entry(
    s: Setting, settings: Settings, client: httpx.AsyncClient, admin_token: str
) -> None:
    name = unique("cert")
    issued = cert("secret.example")
    await s.api.create_ok(name, issued.pem, s.envs)
    found = await entries(client, admin_token)
    answer = json.dumps(found)
    assert "BEGIN" not in answer
    assert issued.der.hex() not in answer
    # Nor in the table itself: every stored value of every row.
    with open_database(settings) as db, db.transaction() as session:
        rows = session.execute(text("SELECT * FROM audit_entries")).all()
    stored = "\n".join(str(v) for row in rows for v in row)
    assert sha(issued.der) in stored
    assert "BEGIN" not in stored
    assert issued.der.hex() not in stored
    assert base64.b64encode(issued.der).decode()[:64] not in stored


async def test_parallel_updates_keep_one_chain(s: Setting, settings: Settings) -> None:
    name = unique("cert")
    await s.api.create_ok(name, cert("p0.example").pem, [s.envs[0]])
    issued = [cert(f"p{i}.example") for i in range(1, 21)]
    results = await asyncio.gather(*(s.api.update(name, c.pem, [s.envs[0]]) for c in issued))
    assert [r.status_code for r in results] == [200] * 20
    found = await entries(s.client, s.admin_token, project=s.project, name=name)
    updates = [e for e in found if e["operation"] == "UPDATE"]
    assert len(updates) == 20
    # Each update's before is the previous one's after: one order, as committed.
    ordered = sorted(updates, key=lambda e: e["id"])
    for prev, cur in itertools.pairwise(ordered):
        assert cur["beforeSha256"] == prev["afterSha256"]
    result = CliRunner().invoke(cli, ["audit", "verify", "--database-url", settings.database_url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok, ")


async def test_audit_search_is_admin_only_paged_and_read_only(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    r = await client.get(AUDIT, params={"page": 0, "size": 2}, headers=bearer(admin_token))
    assert r.status_code == 200
    body = r.json()
    assert (body["page"], body["size"], body["resultCount"]) == (0, 2, 2)
    assert body["totalCount"] >= 2
    assert body["resultList"][0]["id"] > body["resultList"][1]["id"]
    r2 = await client.get(AUDIT, params={"page": 1, "size": 1}, headers=bearer(admin_token))
    assert r2.json()["resultList"][0]["id"] == body["resultList"][1]["id"]
    r = await client.get(AUDIT, params={"size": 1001}, headers=bearer(admin_token))
    assert r.status_code == 400, r.text
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        r = await client.request(method, AUDIT, headers=bearer(admin_token))
        assert r.status_code == 405, (method, r.status_code)
    r = await client.get(AUDIT, headers=bearer("nope"))
    assert r.status_code == 401


@pytest.mark.parametrize("window", ["future", "past"])
async def test_time_filters(client: httpx.AsyncClient, admin_token: str, window: str) -> None:
    if window == "future":
        assert await entries(client, admin_token, **{"from": "2999-01-01T00:00:00Z"}) == []
    else:
        assert await entries(client, admin_token, to="2000-01-01T00:00:00Z") == []


async def test_a_rollback_is_audited_as_rollback(s: Setting) -> None:
    name = unique("cert")
    old, new = cert("r1.example"), cert("r2.example")
    await s.api.create_ok(name, old.pem, [s.envs[0]])
    r = await s.api.update(name, new.pem, [s.envs[0]])
    assert r.status_code == 200, r.text
    r = await s.client.post(f"{s.api.base}{name}/rollback?version=1", headers=s.api.headers)
    assert r.status_code == 200, r.text
    (latest, *_) = await entries(s.client, s.admin_token, project=s.project, name=name)
    assert essentials(latest) == {
        "username": "admin",
        "operation": "ROLLBACK",
        "project": s.project,
        "kind": "certificate",
        "name": name,
        "environments": [s.envs[0]],
        "outcome": "SUCCESS",
        "before": sha(new.der),
        "after": sha(old.der),
    }


async def test_entries_name_the_personal_token_that_made_them(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    label = unique("ci-pipeline")
    r = await client.post(
        "/apiops/admin/users/admin/tokens/",
        json={"name": label},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert r.status_code == 200, r.text
    pat = r.json()["result"]
    r = await client.post(
        "/apiops/admin/projects/",
        json={"name": unique("pat-proj"), "description": "made with a personal token"},
        headers={"Authorization": f"Bearer {pat['token']}"},
    )
    assert r.status_code == 200, r.text
    recent = await entries(client, admin_token, size=20)
    made = next(e for e in recent if e["operation"] == "PROJECT_CREATE")
    assert made["tokenId"] == pat["id"]
    assert made["tokenName"] == label
