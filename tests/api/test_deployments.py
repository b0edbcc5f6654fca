"""One deployment interface for every environment: failures, timeouts, the record of what
each environment holds, and republishing (decision 13).

The "failing" and "hanging" targets of tests/support/targets.py stand for a gateway that
refuses every change and one that never answers.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import pytest_asyncio

from keyops.config import Settings
from tests.conftest import Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import (
    Setting,
    delete_environment,
    deployed,
    deployments,
    der_of,
    environment_status,
    member,
    set_environment_target,
    sha256_hex,
)
from tests.support.messages import DEPLOYED, UNDEPLOYED

REASON = "refused the connection"


def results_by_env(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["environmentName"]: r for r in body["deploymentResult"]["environmentResults"]}


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    """A project with two healthy environments and, last, one whose gateway is down."""
    project = await factory.project("admin")
    ok1 = await factory.environment(projects=(project,))
    bad = await factory.environment(projects=(project,), target="failing")
    ok2 = await factory.environment(projects=(project,))
    return Setting(client, admin_token, project, [ok1, ok2, bad])


async def test_failing_environment_reports_and_others_still_deploy(s: Setting) -> None:
    ok1, ok2, bad = s.envs
    name = unique("cert")
    issued = certs.self_signed("rsa2048", "partial.example")
    r = await s.api.create(name, issued.pem, [ok1, bad, ok2])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    result = body["deploymentResult"]
    assert result["success"] is False
    assert result["message"] != "Deployment completed successfully"
    results = results_by_env(body)
    assert [e["environmentName"] for e in result["environmentResults"]] == [ok1, bad, ok2]
    for env in (ok1, ok2):
        assert results[env] == {
            "environmentName": env,
            "success": True,
            "message": DEPLOYED,
        }
    assert results[bad]["success"] is False
    assert REASON in results[bad]["message"]

    # The stored certificate stays, in every environment named.
    item = await s.api.get_one(name)
    assert [row["environmentName"] for row in item["certificateEnvironmentList"]] == [
        ok1,
        bad,
        ok2,
    ]
    for row in item["certificateEnvironmentList"]:
        assert der_of(row) == issued.der

    assert await environment_status(s.client, s.admin_token, bad) == "REPUBLISH_REQUIRED"
    for env in (ok1, ok2):
        assert await environment_status(s.client, s.admin_token, env) == "PUBLISHED"
        held = await deployed(s.client, s.admin_token, env)
        assert held[(s.project, name)]["contentHash"] == sha256_hex(issued.der)
    state = await deployments(s.client, s.admin_token, bad)
    assert state["status"] == "REPUBLISH_REQUIRED"
    assert state["resultList"] == []
    (attempt,) = state["recentAttempts"]
    assert attempt["action"] == "DEPLOY" and attempt["success"] is False
    assert attempt["name"] == name and attempt["projectName"] == s.project
    assert attempt["contentHash"] == sha256_hex(issued.der)
    assert attempt["message"] == results[bad]["message"]


async def test_failing_environment_on_update_and_delete(s: Setting) -> None:
    ok1, ok2, bad = s.envs
    name = unique("cert")
    await s.api.create_ok(name, certs.self_signed("p256", "one.example").pem, [ok1, bad])
    replacement = certs.self_signed("p256", "two.example")

    r = await s.api.update(name, replacement.pem, [ok2, bad], alias="new")
    assert r.status_code == 200, r.text
    result = r.json()["deploymentResult"]
    results = results_by_env(r.json())
    assert result["success"] is False
    assert results[ok1]["success"] is True and results[ok2]["success"] is True
    assert results[bad]["success"] is False and REASON in results[bad]["message"]
    item = await s.api.get_one(name)
    assert [row["environmentName"] for row in item["certificateEnvironmentList"]] == [ok2, bad]
    assert {der_of(row) for row in item["certificateEnvironmentList"]} == {replacement.der}

    r = await s.api.delete(name)
    assert r.status_code == 200, r.text
    result = r.json()["deploymentResult"]
    results = results_by_env(r.json())
    assert result["success"] is False
    assert results[ok2] == {
        "environmentName": ok2,
        "success": True,
        "message": UNDEPLOYED,
    }
    assert results[bad]["success"] is False and REASON in results[bad]["message"]
    assert results[bad]["message"].startswith("Undeployment")
    # Deleted all the same: the stored change stands.
    assert (await s.api.get(name)).status_code == 400
    assert (s.project, name) not in await deployed(s.client, s.admin_token, ok2)


async def test_jwk_roll_out_to_a_failing_environment(s: Setting) -> None:
    ok1, _, bad = s.envs
    cert = unique("cert")
    await s.api.create_ok(cert, certs.self_signed("rsa2048", "jwk.example").pem, [ok1])
    assert await environment_status(s.client, s.admin_token, bad) == "PUBLISHED"
    body = await s.api.jwk_from_certificate(unique("jwk"), cert, ok1)
    results = results_by_env(body)
    assert body["deploymentResult"]["success"] is False
    assert results[ok1]["success"] is True
    assert results[bad]["success"] is False and REASON in results[bad]["message"]
    assert await environment_status(s.client, s.admin_token, bad) == "REPUBLISH_REQUIRED"


async def test_hanging_environment_fails_after_the_timeout(
    client: httpx.AsyncClient, admin_token: str, factory: Factory, settings: Settings
) -> None:
    project = await factory.project("admin")
    ok = await factory.environment(projects=(project,))
    hanging = await factory.environment(projects=(project,), target="hanging")
    s = Setting(client, admin_token, project, [ok, hanging])
    name = unique("cert")
    started = time.monotonic()
    r = await s.api.create(name, certs.self_signed("ed25519", "hang.example").pem, [ok, hanging])
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    # Failed after about deploy_timeout_seconds (plus at most a small margin), not never.
    timeout = settings.deploy_timeout_seconds
    assert timeout * 0.9 <= elapsed < timeout + 5
    results = results_by_env(r.json())
    assert r.json()["deploymentResult"]["success"] is False
    assert results[ok]["success"] is True
    assert results[hanging]["success"] is False
    assert "no answer within" in results[hanging]["message"]
    assert await environment_status(client, admin_token, hanging) == "REPUBLISH_REQUIRED"
    assert (await s.api.get(name)).status_code == 200


# --- what an environment holds ------------------------------------------------------------


@pytest.mark.parametrize("slash", [True, False])
async def test_deployments_show_exactly_what_is_deployed(
    client: httpx.AsyncClient, admin_token: str, factory: Factory, slash: bool
) -> None:
    project = await factory.project("admin")
    env = await factory.environment(projects=(project,))
    s = Setting(client, admin_token, project, [env])
    path = f"/apiops/environments/{env}/deployments" + ("/" if slash else "")

    r = await client.get(path, headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["environmentName"] == env
    assert body["status"] == "PUBLISHED"
    assert body["resultList"] == [] and body["resultCount"] == 0
    assert body["recentAttempts"] == []

    name, jwk = unique("cert"), unique("jwk")
    first = certs.self_signed("rsa2048", "first.example")
    await s.api.create_ok(name, first.pem, [env], alias="first-alias")
    await s.api.jwk_from_certificate(jwk, name, env)
    body = (await client.get(path, headers=bearer(admin_token))).json()
    rows = {(row["kind"], row["name"]): row for row in body["resultList"]}
    assert set(rows) == {("certificate", name), ("jwk", jwk)}
    assert body["resultCount"] == 2
    cert_row = rows[("certificate", name)]
    assert cert_row["projectName"] == project
    assert cert_row["alias"] == "first-alias"
    assert cert_row["contentHash"] == sha256_hex(first.der)
    assert isinstance(cert_row["revision"], int)
    assert rows[("jwk", jwk)]["projectName"] == project
    assert rows[("jwk", jwk)]["revision"] > cert_row["revision"]
    attempts = body["recentAttempts"]
    assert [(a["action"], a["kind"], a["name"], a["success"]) for a in attempts] == [
        ("DEPLOY", "jwk", jwk, True),
        ("DEPLOY", "certificate", name, True),
    ]
    assert attempts[1]["contentHash"] == cert_row["contentHash"]
    assert attempts[1]["revision"] == cert_row["revision"]

    second = certs.self_signed("rsa2048", "second.example")
    r = await s.api.update(name, second.pem, [env], alias="second-alias")
    assert r.status_code == 200, r.text
    body = (await client.get(path, headers=bearer(admin_token))).json()
    rows = {(row["kind"], row["name"]): row for row in body["resultList"]}
    assert rows[("certificate", name)]["contentHash"] == sha256_hex(second.der)
    assert rows[("certificate", name)]["alias"] == "second-alias"
    assert rows[("certificate", name)]["revision"] > cert_row["revision"]
    latest = body["recentAttempts"][0]
    assert (latest["action"], latest["name"], latest["success"]) == ("DEPLOY", name, True)
    assert latest["contentHash"] == sha256_hex(second.der)

    assert (await s.api.delete(name)).status_code == 200
    body = (await client.get(path, headers=bearer(admin_token))).json()
    assert [(row["kind"], row["name"]) for row in body["resultList"]] == [("jwk", jwk)]
    latest = body["recentAttempts"][0]
    assert (latest["action"], latest["kind"], latest["name"], latest["success"]) == (
        "UNDEPLOY",
        "certificate",
        name,
        True,
    )


async def test_deployments_and_republish_are_for_admins(
    client: httpx.AsyncClient, factory: Factory, admin_token: str
) -> None:
    project = await factory.project("admin")
    env = await factory.environment(projects=(project,))
    user = await member(
        factory, "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES", projects=(project,)
    )
    for r in (
        await client.get(f"/apiops/environments/{env}/deployments/", headers=user.headers),
        await client.get(f"/apiops/environments/{env}/deployments", headers=user.headers),
        await client.post(f"/apiops/environments/{env}/republish/", headers=user.headers),
        await client.post(f"/apiops/environments/{env}/republish", headers=user.headers),
    ):
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "forbidden"
    for r in (
        await client.get(
            "/apiops/environments/no-such-env-d1/deployments/", headers=bearer(admin_token)
        ),
        await client.post(
            "/apiops/environments/no-such-env-d1/republish/", headers=bearer(admin_token)
        ),
    ):
        assert r.status_code == 404, r.text
        assert r.json()["error"] == "not_found"


# --- republish -----------------------------------------------------------------------------


async def test_republish_brings_a_repaired_environment_back(s: Setting, settings: Settings) -> None:
    ok1, _, bad = s.envs
    name = unique("cert")
    issued = certs.self_signed("p384", "republish.example")
    await s.api.create(name, issued.pem, [ok1, bad])
    assert await environment_status(s.client, s.admin_token, bad) == "REPUBLISH_REQUIRED"
    republish = f"/apiops/environments/{bad}/republish/"

    # Still down: the republish fails and says so; the mark stays.
    r = await s.client.post(republish, headers=bearer(s.admin_token))
    assert r.status_code == 200, r.text
    assert r.json()["deploymentResult"]["success"] is False
    (result,) = r.json()["deploymentResult"]["environmentResults"]
    assert result["environmentName"] == bad and result["success"] is False
    assert REASON in result["message"]
    assert await environment_status(s.client, s.admin_token, bad) == "REPUBLISH_REQUIRED"

    await set_environment_target(settings, bad, "local")
    r = await s.client.post(republish.rstrip("/"), headers=bearer(s.admin_token))
    assert r.status_code == 200, r.text
    assert r.json()["deploymentResult"]["success"] is True
    assert r.json()["deploymentResult"]["environmentResults"] == [
        {"environmentName": bad, "success": True, "message": DEPLOYED}
    ]
    assert await environment_status(s.client, s.admin_token, bad) == "PUBLISHED"
    held = await deployed(s.client, s.admin_token, bad)
    assert held[(s.project, name)]["contentHash"] == sha256_hex(issued.der)


async def test_republish_of_a_healthy_environment(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    project = await factory.project("admin")
    env = await factory.environment(projects=(project,))
    s = Setting(client, admin_token, project, [env])
    name = unique("cert")
    issued = certs.self_signed("rsa2048", "healthy.example")
    await s.api.create_ok(name, issued.pem, [env])
    before = (await deployed(client, admin_token, env))[(project, name)]
    r = await client.post(f"/apiops/environments/{env}/republish/", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert r.json()["deploymentResult"]["success"] is True
    assert await environment_status(client, admin_token, env) == "PUBLISHED"
    after = (await deployed(client, admin_token, env))[(project, name)]
    assert after["contentHash"] == before["contentHash"] == sha256_hex(issued.der)
    assert after["revision"] > before["revision"]


async def test_truststore_tells_the_truth_about_a_failed_deployment(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    ok = await factory.environment(projects=("admin",))
    bad = await factory.environment(projects=("admin",), target="failing")
    try:
        admin = Setting(client, admin_token, "admin", [ok, bad])
        name = unique("ca")
        r = await admin.api.create(name, certs.self_signed("rsa2048", "ca.example").pem, [ok, bad])
        assert r.status_code == 200, r.text
        for env, expected in ((ok, [name]), (bad, [])):
            r = await client.get(
                f"/apiops/projects/admin/certificates/truststore/{env}/",
                headers=bearer(admin_token),
            )
            assert r.status_code == 200, r.text
            assert [c["name"] for c in r.json()["resultList"]] == expected
        assert (await admin.api.delete(name)).status_code == 200
    finally:
        # Admin-project JWKs of other tests deploy to every admin environment.
        await delete_environment(client, admin_token, bad)
