"""PUT /apiops/projects/{projectName}/certificates/{certificateName}/: the seed update.

SEED-update-certificate.md and update-certificate.md; decisions 4 (JWK handling), 5
(whole, atomic replacement), 6 (dropped environments are undeployed) and 11.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import Factory, unique
from tests.crypto import certs
from tests.support.certificates import (
    CertificateClient,
    Setting,
    b64url_uint,
    certificate_parts,
    deployed,
    deployments,
    der_of,
    member,
    new_setting,
    rfc7638_thumbprint,
    sha256_hex,
    state_of,
)
from tests.support.messages import DEPLOYED, UNDEPLOYED


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory)


def bad_request(description: str) -> dict[str, str]:
    return {"error": "bad_request", "error_description": description}


def results_by_env(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["environmentName"]: r for r in body["deploymentResult"]["environmentResults"]}


def rsa_cert(cn: str) -> certs.Issued:
    """An RSA certificate on another key than the last one made, so re-derivation shows."""
    subject = certs.name(("COUNTRY_NAME", "US"), ("COMMON_NAME", cn))
    return certs.make_cert(subject, certs.new_key("rsa2048"))


def modulus(issued: certs.Issued) -> str:
    public = issued.cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    return b64url_uint(public.public_numbers().n)


def assert_derived_from(jwk: dict[str, Any], issued: certs.Issued, certificate: str) -> None:
    """The JWK is the RSA public key of ``issued`` and still points at ``certificate``."""
    assert jwk["sourceType"] == "CERTIFICATE"
    assert jwk["sourceId"] == certificate
    assert jwk["type"] == "RSA"
    assert jwk["rsa"]["n"] == modulus(issued)
    assert jwk["rsa"]["e"] == "AQAB"
    assert jwk["kid"] == rfc7638_thumbprint({"kty": "RSA", "n": modulus(issued), "e": "AQAB"})
    assert jwk["jwk"]["kid"] == jwk["kid"]
    assert jwk["jwk"]["x5c"] == [base64.b64encode(issued.der).decode()]
    digest = base64.urlsafe_b64encode(hashlib.sha256(issued.der).digest())
    assert jwk["jwk"]["x5t#S256"] == digest.rstrip(b"=").decode()


def detached(before: dict[str, Any]) -> dict[str, Any]:
    """What NULLIFY makes of a JWK: the same, without its source."""
    return {**before, "sourceId": None}


# --- the replacement -------------------------------------------------------------------


@pytest.mark.parametrize("slash", [True, False])
async def test_update_replaces_everything_and_undeploys_dropped_environments(
    s: Setting, slash: bool
) -> None:
    name = unique("cert")
    old, new = rsa_cert("old.example"), rsa_cert("new.example")
    e0, e1, e2 = s.envs
    await s.api.create_ok(name, old.pem, [e0, e1], alias="old-alias", description="old text")
    before_e1 = (await deployed(s.client, s.admin_token, e1))[(s.project, name)]

    path = f"{s.api.base}{name}" + ("/" if slash else "")
    r = await s.api.post_parts(
        certificate_parts(
            name=None,
            alias="new-alias",
            description="new text",
            environments=[e1, e2],
            pem=new.pem,
        ),
        path=path,
        method="PUT",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert body["deploymentResult"]["success"] is True
    assert body["deploymentResult"]["message"] == "Deployment completed successfully"
    results = results_by_env(body)
    assert set(results) == {e0, e1, e2}
    assert results[e1] == {
        "environmentName": e1,
        "success": True,
        "message": DEPLOYED,
    }
    assert results[e2] == {
        "environmentName": e2,
        "success": True,
        "message": DEPLOYED,
    }
    assert results[e0] == {
        "environmentName": e0,
        "success": True,
        "message": UNDEPLOYED,
    }

    item = await s.api.get_one(name)
    assert item["name"] == name and item["description"] == "new text"
    rows = item["certificateEnvironmentList"]
    assert [row["environmentName"] for row in rows] == [e1, e2]
    for row in rows:
        assert row["alias"] == "new-alias"
        assert der_of(row) == new.der
        assert row["subjectDn"] == "CN=new.example, C=US"

    assert (s.project, name) not in await deployed(s.client, s.admin_token, e0)
    attempts = (await deployments(s.client, s.admin_token, e0))["recentAttempts"]
    assert attempts[0]["action"] == "UNDEPLOY" and attempts[0]["success"] is True
    assert attempts[0]["name"] == name and attempts[0]["projectName"] == s.project
    for env in (e1, e2):
        row = (await deployed(s.client, s.admin_token, env))[(s.project, name)]
        assert row["contentHash"] == sha256_hex(new.der)
        assert row["alias"] == "new-alias"
        assert row["revision"] > before_e1["revision"]


async def test_update_exactly_as_the_page_shows(s: Setting) -> None:
    """Example 1: no certificateName in the form; it comes from the path."""
    name = unique("cert")
    await s.api.create_ok(name, rsa_cert("a.example").pem, s.envs)
    replacement = rsa_cert("b.example")
    r = await s.api.update(
        name,
        replacement.pem,
        s.envs[:2],
        alias="updated-cert-alias",
        description="Updated SSL certificate",
    )
    assert r.status_code == 200, r.text
    item = await s.api.get_one(name)
    assert item["description"] == "Updated SSL certificate"
    assert {row["alias"] for row in item["certificateEnvironmentList"]} == {"updated-cert-alias"}

    # certificateName may be sent too, if it is the name in the path.
    r = await s.api.update(name, replacement.pem, s.envs[:1], form_name=name)
    assert r.status_code == 200, r.text


async def test_update_may_keep_alias_environments_and_content(s: Setting) -> None:
    name = unique("cert")
    issued = rsa_cert("same.example")
    await s.api.create_ok(name, issued.pem, s.envs, alias="same")
    before = await s.api.get_one(name)
    r = await s.api.update(name, issued.pem, s.envs, alias="same")
    assert r.status_code == 200, r.text
    assert r.json()["deploymentResult"]["success"] is True
    assert await s.api.get_one(name) == before


async def test_alias_of_another_certificate(s: Setting) -> None:
    mine, theirs = unique("mine"), unique("theirs")
    await s.api.create_ok(mine, rsa_cert("m.example").pem, s.envs[:1], alias="mine")
    await s.api.create_ok(theirs, rsa_cert("t.example").pem, s.envs[1:2], alias="taken")
    before = await s.state()
    r = await s.api.update(mine, rsa_cert("m2.example").pem, s.envs[:2], alias="taken")
    assert r.status_code == 400
    assert r.json() == bad_request(
        "Alias (taken) is already used for another certificate, try changing this value!"
    )
    assert await s.state() == before
    # The same alias where the other certificate is not: fine.
    r = await s.api.update(mine, rsa_cert("m3.example").pem, [s.envs[0], s.envs[2]], alias="taken")
    assert r.status_code == 200, r.text


# --- a refused update changes nothing ----------------------------------------------------

REFUSED: dict[str, tuple[dict[str, Any], str | None]] = {
    "unknown-environment": (
        {"environments": ["ENV0", "no-such-env-u1"]},
        "Environment (no-such-env-u1) is not found or user does not have privilege to access it!",
    ),
    "empty-file": ({"pem": b""}, "pemEncodedFile value can not be empty!"),
    "garbage": (
        {"pem": b"garbage"},
        "pemEncodedFile is not a valid PEM or DER encoded X.509 certificate!",
    ),
    "private-key": (
        {"pem": certs.key_pem(certs.key("p256"))},
        "pemEncodedFile holds a private key, not a certificate!",
    ),
    "two-certificates": (
        {"pem": certs.self_signed("p256", "x").pem + certs.self_signed("p256", "y").pem},
        "pemEncodedFile must hold exactly one certificate, found 2!",
    ),
    "missing-alias": ({"alias": None}, "alias value can not be empty!"),
    "missing-description": (
        {"description": None},
        "certificateDescription value can not be empty!",
    ),
    "missing-environmentList": ({"environments": None}, "environmentList value can not be empty!"),
    "missing-pemEncodedFile": ({"pem": None}, "pemEncodedFile value can not be empty!"),
    "other-certificateName": ({"form_name": "another-name"}, None),
    "update-without-scope": (
        {"query": "updateReferencedJwks=true"},
        "updateScope value can not be empty!",
    ),
    "jwkUpdateAction-without-scope": (
        {"query": "jwkUpdateAction=UPDATE"},
        "updateScope value can not be empty!",
    ),
    "update-with-empty-scope": (
        {"query": "jwkUpdateAction=UPDATE&updateScope="},
        "updateScope value can not be empty!",
    ),
    "contradiction-true-nullify": (
        {"query": "updateReferencedJwks=true&jwkUpdateAction=NULLIFY&updateScope=SAME_PROJECT"},
        None,
    ),
    "contradiction-false-update": (
        {"query": "updateReferencedJwks=false&jwkUpdateAction=UPDATE&updateScope=ALL_PROJECTS"},
        None,
    ),
    "bad-scope": ({"query": "jwkUpdateAction=UPDATE&updateScope=EVERYWHERE"}, None),
    "bad-action": ({"query": "jwkUpdateAction=DELETE&updateScope=SAME_PROJECT"}, None),
    "bad-flag": ({"query": "updateReferencedJwks=maybe&updateScope=SAME_PROJECT"}, None),
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def refusing(client: httpx.AsyncClient, admin_token: str) -> tuple[Setting, str]:
    """One certificate, with a JWK made from it, for all the refused updates."""
    s = await new_setting(client, admin_token, Factory(client, admin_token))
    name = unique("cert")
    await s.api.create_ok(name, rsa_cert("orig.example").pem, s.envs[:2], alias="orig")
    await s.api.jwk_from_certificate(unique("jwk"), name, s.envs[0])
    return s, name


@pytest.mark.parametrize("case", list(REFUSED))
async def test_refused_update_changes_nothing(refusing: tuple[Setting, str], case: str) -> None:
    s, name = refusing
    before = await s.state()

    overrides, description = REFUSED[case]
    fields: dict[str, Any] = {
        "pem": rsa_cert("next.example").pem,
        "environments": s.envs[1:],
        "alias": "next",
        "description": "next",
        **overrides,
    }
    if fields["environments"] is not None:
        fields["environments"] = [e.replace("ENV0", s.envs[0]) for e in fields["environments"]]
    r = await s.api.update(name, **fields)
    assert r.status_code == 400, r.text
    if description is None:
        assert r.json()["error"] == "bad_request"
    else:
        assert r.json() == bad_request(description)
    assert await s.state() == before


# --- JWKs derived from the certificate (decision 4) --------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "",
        "updateReferencedJwks=false",
        "jwkUpdateAction=NULLIFY",
        "updateReferencedJwks=false&jwkUpdateAction=NULLIFY&updateScope=ALL_PROJECTS",
    ],
    ids=["default", "updateReferencedJwks-false", "NULLIFY", "false-and-NULLIFY"],
)
async def test_nullify_detaches_and_keeps_material(s: Setting, query: str) -> None:
    name, jwk_name = unique("cert"), unique("jwk")
    await s.api.create_ok(name, rsa_cert("one.example").pem, s.envs[:1])
    await s.api.jwk_from_certificate(jwk_name, name, s.envs[0])
    before = await s.api.get_jwk(jwk_name)
    assert before["sourceId"] == name

    r = await s.api.update(name, rsa_cert("two.example").pem, s.envs[:1], query=query)
    assert r.status_code == 200, r.text
    assert await s.api.get_jwk(jwk_name) == detached(before)
    listed = {j["name"]: j for j in (await s.api.list_jwks()).json()["resultList"]}
    assert listed[jwk_name]["sourceId"] is None

    # Detached for good: a later UPDATE does not reach it any more.
    r = await s.api.update(
        name,
        rsa_cert("three.example").pem,
        s.envs[:1],
        query="jwkUpdateAction=UPDATE&updateScope=SAME_PROJECT",
    )
    assert r.status_code == 200, r.text
    assert await s.api.get_jwk(jwk_name) == detached(before)


@pytest.mark.parametrize(
    "query",
    [
        "updateReferencedJwks=true&updateScope=SAME_PROJECT",
        "jwkUpdateAction=UPDATE&updateScope=SAME_PROJECT",
        "updateReferencedJwks=true&jwkUpdateAction=UPDATE&updateScope=ALL_PROJECTS",
    ],
    ids=["seed-form", "later-form", "both-forms-agreeing"],
)
async def test_update_re_derives_from_the_new_certificate(s: Setting, query: str) -> None:
    name, jwk_name, named_kid = unique("cert"), unique("jwk"), unique("jwk")
    my_kid = unique("my-kid")
    old, new = rsa_cert("old.example"), rsa_cert("new.example")
    await s.api.create_ok(name, old.pem, s.envs[:2])
    await s.api.jwk_from_certificate(jwk_name, name, s.envs[0], algorithm="PS384")
    await s.api.jwk_from_certificate(named_kid, name, s.envs[1], kid=my_kid)
    before = await s.api.get_jwk(jwk_name)
    assert_derived_from(before, old, name)
    hash_before = (await deployed(s.client, s.admin_token, s.envs[0], kind="jwk"))[
        (s.project, jwk_name)
    ]["contentHash"]

    r = await s.api.update(name, new.pem, s.envs[1:], query=query)
    assert r.status_code == 200, r.text

    after = await s.api.get_jwk(jwk_name)
    assert_derived_from(after, new, name)
    assert after["kid"] != before["kid"]
    assert after["algorithm"] == "PS384" and after["jwk"]["alg"] == "PS384"
    assert after["useType"] == "SIGNATURE" and after["jwk"]["use"] == "sig"
    # A kid its creator chose is kept.
    kept = await s.api.get_jwk(named_kid)
    assert kept["kid"] == my_kid and kept["rsa"]["n"] == modulus(new)
    # The re-derived JWK is rolled out again.
    held = (await deployed(s.client, s.admin_token, s.envs[0], kind="jwk"))[(s.project, jwk_name)]
    assert held["contentHash"] != hash_before


@pytest_asyncio.fixture
async def shared(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> dict[str, Any]:
    """An admin-project certificate with a JWK in the admin project and one in another."""
    other = await factory.project("admin")
    user = await member(
        factory, "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES", projects=(other,)
    )
    env = await factory.environment(projects=("admin", other))
    admin = CertificateClient(client, admin_token, "admin")
    theirs = CertificateClient(client, user.token, other)
    cert, admin_jwk, other_jwk = unique("shared"), unique("jwk"), unique("jwk")
    old = rsa_cert("shared.example")
    await admin.create_ok(cert, old.pem, [env])
    await admin.jwk_from_certificate(admin_jwk, cert, env)
    # Decision 11: a non-admin member of another project may use the admin certificate.
    await theirs.jwk_from_certificate(other_jwk, cert, env)
    assert_derived_from(await theirs.get_jwk(other_jwk), old, cert)
    return {
        "admin": admin,
        "theirs": theirs,
        "project": other,
        "env": env,
        "cert": cert,
        "admin_jwk": admin_jwk,
        "other_jwk": other_jwk,
        "old": old,
    }


async def test_all_projects_reaches_jwks_of_other_projects(
    shared: dict[str, Any], client: httpx.AsyncClient, admin_token: str
) -> None:
    admin, theirs, cert, env = shared["admin"], shared["theirs"], shared["cert"], shared["env"]
    other = (shared["project"], shared["other_jwk"])
    hash_before = (await deployed(client, admin_token, env, kind="jwk"))[other]["contentHash"]
    new = rsa_cert("shared-next.example")
    r = await admin.update(
        cert, new.pem, [env], query="jwkUpdateAction=UPDATE&updateScope=ALL_PROJECTS"
    )
    assert r.status_code == 200, r.text
    assert_derived_from(await admin.get_jwk(shared["admin_jwk"]), new, cert)
    assert_derived_from(await theirs.get_jwk(shared["other_jwk"]), new, cert)
    # The other project's JWK is rolled out again, where that project deploys.
    assert (await deployed(client, admin_token, env, kind="jwk"))[other]["contentHash"] != (
        hash_before
    )


@pytest.mark.parametrize(
    ("query", "admin_follows"),
    [
        ("updateReferencedJwks=true&updateScope=SAME_PROJECT", True),
        ("jwkUpdateAction=UPDATE&updateScope=SAME_PROJECT", True),
        ("", False),
        ("jwkUpdateAction=NULLIFY&updateScope=ALL_PROJECTS", False),
    ],
    ids=["seed-SAME_PROJECT", "UPDATE-SAME_PROJECT", "default", "NULLIFY"],
)
async def test_other_projects_jwks_are_detached_unless_all_projects(
    shared: dict[str, Any], query: str, admin_follows: bool
) -> None:
    admin, theirs, cert = shared["admin"], shared["theirs"], shared["cert"]
    admin_before = await admin.get_jwk(shared["admin_jwk"])
    other_before = await theirs.get_jwk(shared["other_jwk"])
    new = rsa_cert("shared-next.example")
    r = await admin.update(cert, new.pem, [shared["env"]], query=query)
    assert r.status_code == 200, r.text
    if admin_follows:
        assert_derived_from(await admin.get_jwk(shared["admin_jwk"]), new, cert)
    else:
        assert await admin.get_jwk(shared["admin_jwk"]) == detached(admin_before)
    assert await theirs.get_jwk(shared["other_jwk"]) == detached(other_before)


async def test_misfit_in_another_project_refuses_only_under_all_projects(
    shared: dict[str, Any], client: httpx.AsyncClient, admin_token: str
) -> None:
    admin, theirs, cert = shared["admin"], shared["theirs"], shared["cert"]
    ec = certs.self_signed("p256", "shared-ec.example")
    projects, envs = ["admin", shared["project"]], [shared["env"]]
    # The admin project's JWK goes first, so only the other project's one is a misfit.
    r = await admin.delete_jwk(shared["admin_jwk"])
    assert r.status_code == 200, r.text
    other_before = await theirs.get_jwk(shared["other_jwk"])
    before = await state_of(client, admin_token, projects[:1], envs)
    before_theirs = await theirs.get_jwk(shared["other_jwk"])

    r = await admin.update(
        cert, ec.pem, envs, query="jwkUpdateAction=UPDATE&updateScope=ALL_PROJECTS"
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_request"
    assert shared["other_jwk"] in r.json()["error_description"]
    assert await state_of(client, admin_token, projects[:1], envs) == before
    assert await theirs.get_jwk(shared["other_jwk"]) == before_theirs

    # Under SAME_PROJECT the other project's JWK is out of scope: detached, not refused.
    r = await admin.update(
        cert, ec.pem, envs, query="jwkUpdateAction=UPDATE&updateScope=SAME_PROJECT"
    )
    assert r.status_code == 200, r.text
    assert await theirs.get_jwk(shared["other_jwk"]) == detached(other_before)


@pytest.mark.parametrize(
    ("kind", "algorithm", "replacement"),
    [
        ("rsa2048", "RS256", "p256"),
        ("rsa2048", "RSA-OAEP-256", "ed25519"),
        ("p256", "ES256", "p384"),
        ("p256", "ES256", "rsa2048"),
        ("ed25519", "EdDSA", "p256"),
    ],
    ids=["rsa-to-ec", "rsa-enc-to-okp", "p256-to-p384", "ec-to-rsa", "okp-to-ec"],
)
async def test_update_whose_new_key_does_not_fit_changes_nothing(
    s: Setting, kind: str, algorithm: str, replacement: str
) -> None:
    name, jwk_name = unique("cert"), unique("jwk")
    await s.api.create_ok(name, certs.self_signed(kind, "fit.example").pem, s.envs[:2])
    use = "ENCRYPTION" if algorithm.startswith("RSA-") else "SIGNATURE"
    await s.api.jwk_from_certificate(jwk_name, name, s.envs[0], algorithm=algorithm, use_type=use)
    before = await s.state()
    jwk_before = await s.api.get_jwk(jwk_name)

    new = certs.self_signed(replacement, "misfit.example").pem
    for query in (
        "jwkUpdateAction=UPDATE&updateScope=SAME_PROJECT",
        "updateReferencedJwks=true&updateScope=ALL_PROJECTS",
    ):
        r = await s.api.update(name, new, s.envs[1:], alias="changed", query=query)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "bad_request"
        assert jwk_name in r.json()["error_description"]
        assert await s.state() == before

    # NULLIFY does not need the key to fit: the JWK keeps its old material.
    r = await s.api.update(name, new, s.envs[1:], alias="changed")
    assert r.status_code == 200, r.text
    assert await s.api.get_jwk(jwk_name) == detached(jwk_before)


async def test_update_keeps_jwks_of_a_deleted_certificate_detached(s: Setting) -> None:
    name, jwk_name = unique("cert"), unique("jwk")
    await s.api.create_ok(name, rsa_cert("gone.example").pem, s.envs[:1])
    await s.api.jwk_from_certificate(jwk_name, name, s.envs[0])
    before = await s.api.get_jwk(jwk_name)
    assert (await s.api.delete(name)).status_code == 200
    assert await s.api.get_jwk(jwk_name) == detached(before)
