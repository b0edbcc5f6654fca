"""History and rollback (issue 12): versions of certificates on update and delete, rollback,
its refusals, who may do it, and what the environments and gateway nodes then hold.

Helpers shared with ``test_versions_keys.py`` and ``test_versions_retention.py`` live here:
the versions and rollback calls, and ``gateway_holds``, which asks an environment's gateway
protocol for its snapshot as a node would (the bytes a gateway receives).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

import httpx
import pytest
import pytest_asyncio

from keyops.crypto.x509 import format_instant
from tests.conftest import Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import (
    Setting,
    delete_environment,
    deployed,
    member,
    new_setting,
    pooled_key,
    sha256_hex,
)
from tests.support.keysecrets import bad_request, jwcrypto_public, project_not_found

FORBIDDEN = "You do not have permission to perform this action: it needs the role "
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SAME_PROJECT = "updateReferencedJwks=true&updateScope=SAME_PROJECT"


# --- helpers shared by the history tests ----------------------------------------------------


def history_path(project: str, kind: str, name: str, op: str, query: str = "") -> str:
    return f"/apiops/projects/{project}/{kind}/{name}/{op}/" + (f"?{query}" if query else "")


async def list_versions(
    client: httpx.AsyncClient, token: str, project: str, kind: str, name: str
) -> httpx.Response:
    return await client.get(history_path(project, kind, name, "versions"), headers=bearer(token))


async def versions_ok(
    client: httpx.AsyncClient, token: str, project: str, kind: str, name: str
) -> list[dict[str, Any]]:
    r = await list_versions(client, token, project, kind, name)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"success", "resultList", "resultCount"}
    assert body["success"] is True and body["resultCount"] == len(body["resultList"])
    items: list[dict[str, Any]] = body["resultList"]
    return items


async def rollback(
    client: httpx.AsyncClient, token: str, project: str, kind: str, name: str, query: str
) -> httpx.Response:
    return await client.post(
        history_path(project, kind, name, "rollback", query), headers=bearer(token)
    )


def served_instant(item: dict[str, Any], earliest: dt.datetime, latest: dt.datetime) -> str:
    """A version's createdAt, checked to be an instant of the contract's format taken
    while the change ran."""
    text = item["createdAt"]
    assert INSTANT.fullmatch(text), text
    assert format_instant(earliest) <= text <= format_instant(latest)
    return str(text)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_NODE_TOKENS: dict[tuple[int, str], str] = {}


async def gateway_holds(
    client: httpx.AsyncClient, admin_token: str, env: str
) -> dict[tuple[str, str, str], bytes]:
    """What a gateway node of ``env`` receives, by (kind, project, name): the environment's
    snapshot through the node protocol, secrets opened as a node gets them. The node says
    goodbye afterwards, so later changes do not wait for it."""
    key = (id(client), env)
    if key not in _NODE_TOKENS:
        r = await client.post(
            f"/apiops/admin/environments/{env}/node-tokens/",
            json={"name": "history-check"},
            headers=bearer(admin_token),
        )
        assert r.status_code == 200, r.text
        _NODE_TOKENS[key] = r.json()["result"]["token"]
    node = bearer(_NODE_TOKENS[key])
    params: dict[str, str | int] = {"node": "history-check", "since": -1, "wait": 0}
    r = await client.get("/apiops/gateway/sync/", params=params, headers=node)
    assert r.status_code == 200, r.text
    bye = await client.delete(
        "/apiops/gateway/sync/", params={"node": "history-check"}, headers=node
    )
    assert bye.status_code == 200, bye.text
    return {
        (a["kind"], a["projectName"], a["name"]): base64.b64decode(a["content"])
        for a in r.json()["artifacts"]
    }


# --- certificates ---------------------------------------------------------------------------

CERTS = "certificates"


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory)


def rsa_cert(cn: str) -> certs.Issued:
    return certs.make_cert(certs.name(("COMMON_NAME", cn)), pooled_key("rsa2048"))


def cert_env(env: str | None, issued: certs.Issued, alias: str = "alias-1") -> dict[str, Any]:
    return {
        "environmentName": env,
        "sha256Fingerprint": sha256_hex(issued.der),
        "alias": alias,
        "subjectDn": issued.cert.subject.rfc4514_string(),
        "notAfter": format_instant(issued.cert.not_valid_after_utc),
    }


async def served_der(s: Setting, name: str) -> dict[str, bytes]:
    item = await s.api.get_one(name)
    return {
        e["environmentName"]: base64.b64decode(e["base64EncodedContent"])
        for e in item["certificateEnvironmentList"]
    }


async def test_update_keeps_version_and_rollback_restores(s: Setting) -> None:
    name = unique("cert")
    old, new = rsa_cert("old.example"), rsa_cert("new.example")
    await s.api.create_ok(name, old.pem, s.envs[:2], description="the old one")
    started = now()
    r = await s.api.update(name, new.pem, s.envs[1:], description="the new one")
    assert r.status_code == 200, r.text
    finished = now()

    r = await list_versions(s.client, s.admin_token, s.project, CERTS, name)
    assert r.status_code == 200, r.text
    (v1,) = r.json()["resultList"]
    assert r.json() == {
        "success": True,
        "resultList": [
            {
                "version": 1,
                "createdAt": served_instant(v1, started, finished),
                "createdBy": "admin",
                "reason": "REPLACED",
                "description": "the old one",
                "environmentList": [cert_env(s.envs[0], old), cert_env(s.envs[1], old)],
            }
        ],
        "resultCount": 1,
    }

    r = await rollback(s.client, s.admin_token, s.project, CERTS, name, "version=1")
    assert r.status_code == 200, r.text
    results = r.json()["deploymentResult"]["environmentResults"]
    assert {e["environmentName"]: e["success"] for e in results} == dict.fromkeys(s.envs, True)

    assert await served_der(s, name) == {s.envs[0]: old.der, s.envs[1]: old.der}
    assert (await s.api.get_one(name))["description"] == "the old one"
    for env in s.envs[:2]:
        row = (await deployed(s.client, s.admin_token, env))[(s.project, name)]
        assert row["contentHash"] == sha256_hex(old.der)
        held = await gateway_holds(s.client, s.admin_token, env)
        assert held[("certificate", s.project, name)] == old.der
    # The environment only the newer version used gave it up.
    assert (s.project, name) not in await deployed(s.client, s.admin_token, s.envs[2])
    assert ("certificate", s.project, name) not in await gateway_holds(
        s.client, s.admin_token, s.envs[2]
    )


async def test_a_rollback_is_itself_a_new_version(s: Setting) -> None:
    name = unique("cert")
    a, b, c = rsa_cert("a.example"), rsa_cert("b.example"), rsa_cert("c.example")
    await s.api.create_ok(name, a.pem, s.envs[:1])
    for cert in (b, c):
        assert (await s.api.update(name, cert.pem, s.envs[:1])).status_code == 200

    async def kept() -> list[tuple[int, str, list[dict[str, Any]]]]:
        listed = await versions_ok(s.client, s.admin_token, s.project, CERTS, name)
        return [(v["version"], v["reason"], v["environmentList"]) for v in listed]

    assert await kept() == [
        (2, "REPLACED", [cert_env(s.envs[0], b)]),
        (1, "REPLACED", [cert_env(s.envs[0], a)]),
    ]
    r = await rollback(s.client, s.admin_token, s.project, CERTS, name, "version=1")
    assert r.status_code == 200, r.text
    assert await served_der(s, name) == {s.envs[0]: a.der}
    # What the rollback replaced (c) is the newest version.
    assert await kept() == [
        (3, "REPLACED", [cert_env(s.envs[0], c)]),
        (2, "REPLACED", [cert_env(s.envs[0], b)]),
        (1, "REPLACED", [cert_env(s.envs[0], a)]),
    ]

    r = await rollback(s.client, s.admin_token, s.project, CERTS, name, "version=2")
    assert r.status_code == 200, r.text
    assert await served_der(s, name) == {s.envs[0]: b.der}
    assert (await gateway_holds(s.client, s.admin_token, s.envs[0]))[
        ("certificate", s.project, name)
    ] == b.der
    assert await kept() == [
        (4, "REPLACED", [cert_env(s.envs[0], a)]),
        (3, "REPLACED", [cert_env(s.envs[0], c)]),
        (2, "REPLACED", [cert_env(s.envs[0], b)]),
        (1, "REPLACED", [cert_env(s.envs[0], a)]),
    ]


@pytest.mark.parametrize("follow", [True, False])
async def test_rollback_and_the_jwks_made_from_the_certificate(s: Setting, follow: bool) -> None:
    name, jwk = unique("cert"), unique("jwk")
    old, new = rsa_cert("old.example"), rsa_cert("new.example")
    await s.api.create_ok(name, old.pem, s.envs[:1])
    await s.api.jwk_from_certificate(jwk, name, s.envs[0])
    # The forward update re-derives the JWK, so it follows the certificate until the rollback.
    r = await s.api.update(name, new.pem, s.envs[:1], query=SAME_PROJECT)
    assert r.status_code == 200, r.text
    newer = await s.api.get_jwk(jwk)
    assert newer["sourceId"] == name
    assert newer["jwk"]["n"] == jwcrypto_public(new.key)["n"]

    query = "version=1" + (f"&{SAME_PROJECT}" if follow else "")
    r = await rollback(s.client, s.admin_token, s.project, CERTS, name, query)
    assert r.status_code == 200, r.text
    assert r.json()["deploymentResult"]["success"] is True
    # The rollback's answer says what it did to the JWK, as the update's does.
    (result,) = r.json()["jwkResults"]
    assert (result["projectName"], result["name"]) == (s.project, jwk)
    assert result["action"] == ("UPDATED" if follow else "DETACHED")
    assert result["oldKid"] == newer["kid"]

    after = await s.api.get_jwk(jwk)
    held = await gateway_holds(s.client, s.admin_token, s.envs[0])
    if follow:
        assert after["sourceId"] == name
        assert after["jwk"]["n"] == jwcrypto_public(old.key)["n"]
        assert after["jwk"]["x5c"] == [base64.b64encode(old.der).decode()]
    else:
        # NULLIFY (the default): detached, keeping the newer material.
        assert after["sourceId"] is None
        assert after["jwk"] == newer["jwk"]
    assert (
        jwcrypto_public(old.key if follow else new.key)["n"].encode()
        in held[("jwk", s.project, jwk)]
    )


async def test_rollback_of_a_deleted_certificate_recreates_it(s: Setting) -> None:
    name = unique("cert")
    old = rsa_cert("gone.example")
    await s.api.create_ok(name, old.pem, s.envs[:2], description="gone")
    started = now()
    assert (await s.api.delete(name)).status_code == 200
    finished = now()
    assert ("certificate", s.project, name) not in await gateway_holds(
        s.client, s.admin_token, s.envs[0]
    )
    listed = await versions_ok(s.client, s.admin_token, s.project, CERTS, name)
    assert listed == [
        {
            "version": 1,
            "createdAt": served_instant(listed[0], started, finished),
            "createdBy": "admin",
            "reason": "DELETED",
            "description": "gone",
            "environmentList": [cert_env(s.envs[0], old), cert_env(s.envs[1], old)],
        }
    ]

    r = await rollback(s.client, s.admin_token, s.project, CERTS, name, "version=1")
    assert r.status_code == 200, r.text
    assert await served_der(s, name) == {s.envs[0]: old.der, s.envs[1]: old.der}
    for env in s.envs[:2]:
        row = (await deployed(s.client, s.admin_token, env))[(s.project, name)]
        assert row["contentHash"] == sha256_hex(old.der)
        assert (await gateway_holds(s.client, s.admin_token, env))[
            ("certificate", s.project, name)
        ] == old.der
    # Re-creating replaced nothing: the history is as it was, and numbering goes on.
    assert await versions_ok(s.client, s.admin_token, s.project, CERTS, name) == listed
    assert (await s.api.update(name, rsa_cert("next.example").pem, s.envs[:1])).status_code == 200
    again = await versions_ok(s.client, s.admin_token, s.project, CERTS, name)
    assert [(v["version"], v["reason"]) for v in again] == [(2, "REPLACED"), (1, "DELETED")]


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "description"),
    [
        ("", "version value can not be empty!"),
        ("version=", "version value can not be empty!"),
        ("version=%20", "version value can not be empty!"),
        ("version=1&version=1", "version may be given only once!"),
        ("version=0", "version (0) must be a positive integer!"),
        ("version=-1", "version (-1) must be a positive integer!"),
        ("version=abc", "version (abc) must be a positive integer!"),
        ("version=1.5", "version (1.5) must be a positive integer!"),
        ("version=%2B1", "version (+1) must be a positive integer!"),
        # str.isdigit() holds for both; int() refuses the first and reads the second as 1.
        ("version=%C2%B2", "version (\u00b2) must be a positive integer!"),
        ("version=%D9%A1", "version (\u0661) must be a positive integer!"),
        ("version=2", "Version (2) of Certificate (name: {name}) is not found!"),
        ("version=2147483648", "Version (2147483648) of Certificate (name: {name}) is not found!"),
        (
            "version=99999999999999999999999",
            "Version (99999999999999999999999) of Certificate (name: {name}) is not found!",
        ),
    ],
)
async def test_bad_versions_are_refused(s: Setting, query: str, description: str) -> None:
    name = unique("cert")
    await s.api.create_ok(name, rsa_cert("a.example").pem, s.envs[:1])
    assert (await s.api.update(name, rsa_cert("b.example").pem, s.envs[:1])).status_code == 200
    before = await s.state()
    listed = await versions_ok(s.client, s.admin_token, s.project, CERTS, name)

    r = await rollback(s.client, s.admin_token, s.project, CERTS, name, query)
    assert r.status_code == 400, r.text
    assert r.json() == bad_request(description.format(name=name))
    assert await s.state() == before
    assert await versions_ok(s.client, s.admin_token, s.project, CERTS, name) == listed


async def test_unknown_names(s: Setting) -> None:
    name = unique("nope")
    expected = bad_request(f"Certificate (name: {name}) is not found!")
    r = await list_versions(s.client, s.admin_token, s.project, CERTS, name)
    assert r.status_code == 400 and r.json() == expected
    r = await rollback(s.client, s.admin_token, s.project, CERTS, name, "version=1")
    assert r.status_code == 400 and r.json() == expected
    # A certificate that exists but was never replaced has an empty history.
    fresh = unique("cert")
    await s.api.create_ok(fresh, rsa_cert("fresh.example").pem, s.envs[:1])
    assert await versions_ok(s.client, s.admin_token, s.project, CERTS, fresh) == []
    r = await rollback(s.client, s.admin_token, s.project, CERTS, fresh, "version=1")
    assert r.status_code == 400
    assert r.json() == bad_request(f"Version (1) of Certificate (name: {fresh}) is not found!")


async def test_a_version_whose_environment_was_deleted(s: Setting, factory: Factory) -> None:
    name = unique("cert")
    extra = await factory.environment(projects=(s.project,))
    old = rsa_cert("old.example")
    await s.api.create_ok(name, old.pem, [s.envs[0], extra])
    assert (await s.api.update(name, rsa_cert("b.example").pem, s.envs[:1])).status_code == 200
    await delete_environment(s.client, s.admin_token, extra)

    (v1,) = await versions_ok(s.client, s.admin_token, s.project, CERTS, name)
    assert v1["environmentList"] == [cert_env(s.envs[0], old), cert_env(None, old)]
    before = await s.state()
    r = await rollback(s.client, s.admin_token, s.project, CERTS, name, "version=1")
    assert r.status_code == 400
    assert r.json() == bad_request(
        f"Version (1) of Certificate (name: {name}) was deployed to an environment that no"
        " longer exists!"
    )
    assert await s.state() == before


async def test_another_projects_member_sees_nothing(s: Setting, factory: Factory) -> None:
    """A project the caller is not a member of does not exist for them (decision 10)."""
    name = unique("cert")
    await s.api.create_ok(name, rsa_cert("a.example").pem, s.envs[:1])
    assert (await s.api.update(name, rsa_cert("b.example").pem, s.envs[:1])).status_code == 200
    stranger = await member(factory, "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES")
    await factory.project(stranger.username)
    before = await s.state()
    listed = await versions_ok(s.client, s.admin_token, s.project, CERTS, name)
    for r in (
        await list_versions(s.client, stranger.token, s.project, CERTS, name),
        await rollback(s.client, stranger.token, s.project, CERTS, name, "version=1"),
        await rollback(s.client, stranger.token, s.project, CERTS, name, "version=abc"),
        await list_versions(s.client, stranger.token, s.project, CERTS, "absent"),
    ):
        assert r.status_code == 404, r.text
        assert r.json() == project_not_found(s.project)
    assert await s.state() == before
    assert await versions_ok(s.client, s.admin_token, s.project, CERTS, name) == listed


async def test_roles(s: Setting, factory: Factory) -> None:
    """Reading history takes ROLE_API_SECURITY; a rollback deploys, so it also takes
    ROLE_DEPLOY_UNDEPLOY_PROXIES (decision 10)."""
    name = unique("cert")
    await s.api.create_ok(name, rsa_cert("a.example").pem, s.envs[:1])
    assert (await s.api.update(name, rsa_cert("b.example").pem, s.envs[:1])).status_code == 200
    reader = await member(factory, "ROLE_API_SECURITY", projects=(s.project,))
    deployer = await member(factory, "ROLE_DEPLOY_UNDEPLOY_PROXIES", projects=(s.project,))
    before = await s.state()
    listed = await versions_ok(s.client, s.admin_token, s.project, CERTS, name)

    assert await versions_ok(s.client, reader.token, s.project, CERTS, name) == listed
    for r, missing in (
        (
            await rollback(s.client, reader.token, s.project, CERTS, name, "version=1"),
            "ROLE_DEPLOY_UNDEPLOY_PROXIES",
        ),
        (
            await rollback(s.client, deployer.token, s.project, CERTS, name, "version=1"),
            "ROLE_API_SECURITY",
        ),
        (
            await list_versions(s.client, deployer.token, s.project, CERTS, name),
            "ROLE_API_SECURITY",
        ),
    ):
        assert r.status_code == 403, r.text
        assert r.json() == {"error": "forbidden", "error_description": FORBIDDEN + missing}
    assert await s.state() == before
    assert await versions_ok(s.client, s.admin_token, s.project, CERTS, name) == listed

    both = await member(
        factory, "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES", projects=(s.project,)
    )
    r = await rollback(s.client, both.token, s.project, CERTS, name, "version=1")
    assert r.status_code == 200, r.text
    newest = (await versions_ok(s.client, s.admin_token, s.project, CERTS, name))[0]
    assert newest["version"] == 2 and newest["createdBy"] == both.username


async def test_trailing_slash_is_optional(s: Setting) -> None:
    name = unique("cert")
    await s.api.create_ok(name, rsa_cert("a.example").pem, s.envs[:1])
    assert (await s.api.update(name, rsa_cert("b.example").pem, s.envs[:1])).status_code == 200
    base = f"/apiops/projects/{s.project}/certificates/{name}"
    with_slash = await s.client.get(f"{base}/versions/", headers=s.api.headers)
    without = await s.client.get(f"{base}/versions", headers=s.api.headers)
    assert with_slash.status_code == without.status_code == 200
    assert with_slash.json() == without.json()
    r = await s.client.post(f"{base}/rollback?version=1", headers=s.api.headers)
    assert r.status_code == 200, r.text
