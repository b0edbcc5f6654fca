"""JWKs from certificates: create (sourceType CERTIFICATE), parse-from-certificate, list,
get and delete.

Pages: create-jwk.md, parse-jwk-from-certificate.md, list-jwks.md, get-jwk.md,
delete-jwk.md; decisions 9 (list without key material) and 11 (admin certificates).
The JWKs are checked against jwcrypto, an implementation keyops does not use.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from jwcrypto import jwk as jwc_jwk
from jwcrypto import jws as jwc_jws
from jwcrypto.common import JWException

from tests.conftest import Factory, unique
from tests.crypto import certs
from tests.support.certificates import (
    CertificateClient,
    Setting,
    deployed,
    member,
    new_setting,
    pooled_key,
    rfc7638_thumbprint,
)
from tests.support.messages import DEPLOYED, UNDEPLOYED

# The JWK management object of list-jwks.md, plus useType and algorithm (docs/decisions.md).
# Further additions are allowed; key material in a list item is not (decision 9).
SUMMARY_FIELDS = {
    "name",
    "description",
    "projectId",
    "sourceType",
    "sourceId",
    "sourceUrl",
    "type",
    "kid",
    "useType",
    "algorithm",
}
MATERIAL_FIELDS = {"rsa", "ec", "oct", "okp", "jwk"}
MATERIAL = {"RSA": "rsa", "EC": "ec", "OKP": "okp"}
KEY_PARAMS = {"RSA": {"n", "e"}, "EC": {"crv", "x", "y"}, "OKP": {"crv", "x"}}


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory, envs=2)


def bad_request(description: str) -> dict[str, str]:
    return {"error": "bad_request", "error_description": description}


def jwk_body(name: str | None, certificate: str, env: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "description": "JWK from certificate",
        "sourceType": "CERTIFICATE",
        "certificateName": certificate,
        "environmentName": env,
        "useType": "SIGNATURE",
        "algorithm": "RS256",
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def sign(issued: certs.Issued, alg: str, payload: bytes) -> str:
    """A compact JWS over ``payload``, signed with the certificate's private key."""
    key = jwc_jwk.JWK.from_pem(issued.key_pem)
    token = jwc_jws.JWS(payload)
    token.add_signature(key, alg=alg, protected=json.dumps({"alg": alg}))
    result: str = token.serialize(compact=True)
    return result


def verifies(jwk: dict[str, Any], compact: str) -> bool:
    token = jwc_jws.JWS()
    token.deserialize(compact)
    try:
        token.verify(jwc_jwk.JWK(**jwk))
    except JWException:
        return False
    return True


async def jwk_state(api: CertificateClient) -> dict[str, Any]:
    listed = await api.list_jwks()
    assert listed.status_code == 200, listed.text
    return {
        "list": listed.json(),
        "full": {j["name"]: await api.get_jwk(j["name"]) for j in listed.json()["resultList"]},
    }


# --- create and get ----------------------------------------------------------------------

SIGNERS = {
    "rsa2048": ("RS256", "RSA"),
    "p256": ("ES256", "EC"),
    "p384": ("ES384", "EC"),
    "ed25519": ("EdDSA", "OKP"),
}


@pytest.mark.parametrize("kind", list(SIGNERS))
@pytest.mark.parametrize("endpoint", ["jwks", "jwks/parse-from-certificate"])
async def test_jwk_from_a_certificate_verifies_its_signatures(
    s: Setting, kind: str, endpoint: str
) -> None:
    alg, kty = SIGNERS[kind]
    issued = certs.make_cert(certs.name(("COMMON_NAME", f"{kind}.jwk.example")), pooled_key(kind))
    cert, name = unique("cert"), unique("jwk")
    await s.api.create_ok(cert, issued.pem, s.envs[:1])
    body = jwk_body(name, cert, s.envs[0], algorithm=alg)
    # Both forms of the path (decision 3), taking turns over the key kinds.
    slash = "/" if kind in ("rsa2048", "p384") else ""
    path = f"/apiops/projects/{s.project}/{endpoint}{slash}"
    if "parse" in endpoint:
        del body["sourceType"]
    r = await s.client.post(path, json=body, headers=s.api.headers)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["success"] is True
    results = {e["environmentName"]: e for e in answer["deploymentResult"]["environmentResults"]}
    # Deployed to the project's environments (the two limited to it, and any global one).
    for env in s.envs:
        assert results[env] == {
            "environmentName": env,
            "success": True,
            "message": DEPLOYED,
        }
        assert (s.project, name) in await deployed(s.client, s.admin_token, env, kind="jwk")

    got = await s.api.get_jwk(name)
    # The documented fields, the key material of its type and no other type's.
    assert SUMMARY_FIELDS | {MATERIAL[kty], "jwk"} <= set(got)
    assert MATERIAL_FIELDS & set(got) == {MATERIAL[kty], "jwk"}
    assert got["name"] == name and got["description"] == "JWK from certificate"
    assert got["projectId"] == s.project
    assert got["sourceType"] == "CERTIFICATE" and got["sourceId"] == cert
    assert got["sourceUrl"] is None
    assert got["type"] == kty
    assert got["algorithm"] == alg and got["useType"] == "SIGNATURE"

    jwk = got["jwk"]
    material = got[MATERIAL[kty]]
    assert KEY_PARAMS[kty] <= set(material)
    assert {k: jwk[k] for k in KEY_PARAMS[kty]} == {k: material[k] for k in KEY_PARAMS[kty]}
    assert jwk["kty"] == kty and jwk["alg"] == alg and jwk["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)  # a certificate has no private key
    assert jwk["x5c"] == [base64.b64encode(issued.der).decode()]
    assert jwk["x5t#S256"] == base64.urlsafe_b64encode(hashlib.sha256(issued.der).digest()).rstrip(
        b"="
    ).decode("ascii")
    assert got["kid"] == jwk["kid"] == rfc7638_thumbprint(jwk)
    reference = jwc_jwk.JWK.from_pem(
        issued.cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert got["kid"] == reference.thumbprint()

    payload = b'{"sub":"keyops"}'
    token = sign(issued, alg, payload)
    assert verifies(jwk, token)
    assert verifies({"kty": kty, **material}, token)
    other = certs.make_cert(certs.name(("COMMON_NAME", "other")), pooled_key(kind))
    assert not verifies(jwk, sign(other, alg, payload))


async def test_kid_given_is_kept(s: Setting) -> None:
    cert, name = unique("cert"), unique("jwk")
    await s.api.create_ok(cert, certs.self_signed("rsa2048", "kid.example").pem, s.envs[:1])
    await s.api.jwk_from_certificate(name, cert, s.envs[0], kid="key-id-1")
    got = await s.api.get_jwk(name)
    assert got["kid"] == got["jwk"]["kid"] == "key-id-1"


async def test_environment_must_be_one_of_the_certificates(s: Setting) -> None:
    cert = unique("cert")
    await s.api.create_ok(cert, certs.self_signed("rsa2048", "e.example").pem, s.envs[:1])
    before = await jwk_state(s.api)
    r = await s.api.create_jwk(jwk_body(unique("jwk"), cert, s.envs[1]))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_request"
    assert await jwk_state(s.api) == before


# --- list and delete ---------------------------------------------------------------------


@pytest.mark.parametrize("slash", [True, False])
async def test_list_leaves_key_material_out(s: Setting, slash: bool) -> None:
    cert, a, b = unique("cert"), unique("a-jwk"), unique("b-jwk")
    await s.api.create_ok(cert, certs.self_signed("p256", "list.example").pem, s.envs[:1])
    await s.api.jwk_from_certificate(a, cert, s.envs[0], algorithm="ES256")
    await s.api.jwk_from_certificate(
        b, cert, s.envs[0], algorithm="ECDH-ES+A128KW", use_type="ENCRYPTION"
    )
    path = s.api.jwk_base if slash else s.api.jwk_base.rstrip("/")
    r = await s.client.get(path, headers=s.api.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"success", "resultList", "resultCount"}
    assert body["success"] is True and body["resultCount"] == 2
    by_name = {j["name"]: j for j in body["resultList"]}
    assert sorted(by_name) == sorted([a, b])
    for name, item in by_name.items():
        assert SUMMARY_FIELDS <= set(item)
        assert not MATERIAL_FIELDS & set(item)  # decision 9
        assert not MATERIAL_FIELDS & set(item)
        full = await s.api.get_jwk(name)
        assert {k: full[k] for k in item} == item
    assert by_name[b]["useType"] == "ENCRYPTION" and by_name[b]["algorithm"] == "ECDH-ES+A128KW"


@pytest.mark.parametrize("slash", [True, False])
async def test_delete_undeploys(s: Setting, slash: bool) -> None:
    cert, name, keep = unique("cert"), unique("jwk"), unique("keep")
    await s.api.create_ok(cert, certs.self_signed("rsa2048", "del.example").pem, s.envs[:1])
    await s.api.jwk_from_certificate(name, cert, s.envs[0])
    await s.api.jwk_from_certificate(keep, cert, s.envs[0])
    path = f"{s.api.jwk_base}{name}" + ("/" if slash else "")
    r = await s.client.delete(path, headers=s.api.headers)
    assert r.status_code == 200, r.text
    result = r.json()["deploymentResult"]
    assert r.json()["success"] is True
    results = {e["environmentName"]: e for e in result["environmentResults"]}
    for env in s.envs:
        assert results[env] == {
            "environmentName": env,
            "success": True,
            "message": UNDEPLOYED,
        }
        held = await deployed(s.client, s.admin_token, env, kind="jwk")
        assert (s.project, name) not in held and (s.project, keep) in held
    if result["success"]:
        assert result["message"] == "Undeployment completed successfully"

    for method in ("GET", "DELETE"):
        r = await s.client.request(method, f"{s.api.jwk_base}{name}/", headers=s.api.headers)
        assert r.status_code == 400
        assert r.json() == bad_request(f"JWK (name: {name}) is not found!")
    assert [j["name"] for j in (await s.api.list_jwks()).json()["resultList"]] == [keep]
    # The certificate is untouched.
    assert (await s.api.get(cert)).status_code == 200


# --- the admin project's certificates (decision 11) ---------------------------------------


async def test_any_project_may_use_an_admin_certificate(
    s: Setting, factory: Factory, client: httpx.AsyncClient, admin_token: str
) -> None:
    env = await factory.environment(projects=("admin", s.project))
    admin = CertificateClient(client, admin_token, "admin")
    shared = unique("shared")
    admin_cert = certs.self_signed("rsa2048", "admin.example")
    await admin.create_ok(shared, admin_cert.pem, [env])
    user = await member(
        factory, "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES", projects=(s.project,)
    )
    api = s.as_user(user.token)
    name = unique("jwk")
    await api.jwk_from_certificate(name, shared, env)
    got = await api.get_jwk(name)
    assert got["sourceId"] == shared
    assert got["jwk"]["x5c"] == [base64.b64encode(admin_cert.der).decode()]

    # The project's own certificate of the same name wins.
    own = certs.self_signed("rsa2048", "own.example")
    await s.api.create_ok(shared, own.pem, [env])
    name2 = unique("jwk")
    await api.jwk_from_certificate(name2, shared, env)
    assert (await api.get_jwk(name2))["jwk"]["x5c"] == [base64.b64encode(own.der).decode()]


async def test_another_ordinary_projects_certificate_is_not_found(
    s: Setting, factory: Factory
) -> None:
    other = await factory.project("admin")
    env = await factory.environment(projects=(s.project, other))
    cert = unique("cert")
    await s.as_user(s.admin_token, other).create_ok(
        cert, certs.self_signed("rsa2048", "o.example").pem, [env]
    )
    before = await jwk_state(s.api)
    r = await s.api.create_jwk(jwk_body(unique("jwk"), cert, env))
    assert r.status_code == 400
    assert r.json() == bad_request(f"Certificate (name: {cert}) is not found!")
    assert await jwk_state(s.api) == before


# --- refused requests ----------------------------------------------------------------------


async def _with_cert(s: Setting) -> tuple[Setting, str, str]:
    cert, existing = unique("cert"), unique("jwk")
    await s.api.create_ok(cert, certs.self_signed("rsa2048", "r.example").pem, s.envs[:1])
    await s.api.jwk_from_certificate(existing, cert, s.envs[0])
    return s, cert, existing


@pytest_asyncio.fixture
async def with_cert(s: Setting) -> tuple[Setting, str, str]:
    """A project with an RSA certificate and one JWK made from it."""
    return await _with_cert(s)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def refusing(client: httpx.AsyncClient, admin_token: str) -> tuple[Setting, str, str]:
    """The same, shared by the refused requests: none of them may change it."""
    factory = Factory(client, admin_token)
    return await _with_cert(await new_setting(client, admin_token, factory, envs=2))


REFUSED: dict[str, tuple[Any, str | None]] = {
    "no-name": (lambda c, e, x: jwk_body(None, c, e), "JWK name can not be empty!"),
    "blank-name": (lambda c, e, x: jwk_body("  ", c, e), "JWK name can not be empty!"),
    "duplicate": (
        lambda c, e, x: jwk_body(x, c, e),
        "JWK (name: {existing}) is already exist! Try update operation if want to change its"
        " value.",
    ),
    "no-source-type": (
        lambda c, e, x: jwk_body("fresh", c, e, sourceType=None),
        "Source type is required!",
    ),
    "blank-source-type": (
        lambda c, e, x: jwk_body("fresh", c, e, sourceType=""),
        "Source type is required!",
    ),
    "url-without-url": (
        lambda c, e, x: {"name": "fresh", "sourceType": "URL"},
        "URL is required for URL source type!",
    ),
    "unknown-certificate": (
        lambda c, e, x: jwk_body("fresh", "no-such-cert", e),
        "Certificate (name: no-such-cert) is not found!",
    ),
    "unknown-source-type": (lambda c, e, x: jwk_body("fresh", c, e, sourceType="FILE"), None),
    "generate": (lambda c, e, x: jwk_body("fresh", c, e, sourceType="GENERATE"), None),
    "unknown-field": (lambda c, e, x: jwk_body("fresh", c, e, certificateId=c), None),
    "no-environment": (lambda c, e, x: jwk_body("fresh", c, e, environmentName=None), None),
    "unknown-environment": (lambda c, e, x: jwk_body("fresh", c, "no-such-env"), None),
    "not-json": ("name=fresh", None),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_refused_create(refusing: tuple[Setting, str, str], case: str) -> None:
    s, cert, existing = refusing
    build, description = REFUSED[case]
    before = await jwk_state(s.api)
    if isinstance(build, str):
        r = await s.client.post(
            s.api.jwk_base,
            content=build,
            headers={**s.api.headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        r = await s.api.create_jwk(build(cert, s.envs[0], existing))
    assert r.status_code == 400, r.text
    if description is None:
        assert r.json()["error"] == "bad_request"
    else:
        assert r.json() == bad_request(description.format(existing=existing))
    assert await jwk_state(s.api) == before


async def test_refused_parse_from_certificate(refusing: tuple[Setting, str, str]) -> None:
    s, cert, existing = refusing
    path = f"{s.api.jwk_base}parse-from-certificate"
    before = await jwk_state(s.api)
    for body, description in (
        (
            jwk_body("fresh", "no-such-cert", s.envs[0], sourceType=None),
            "Certificate (name: no-such-cert) is not found!",
        ),
        (jwk_body(None, cert, s.envs[0], sourceType=None), "JWK name can not be empty!"),
        (
            jwk_body(existing, cert, s.envs[0], sourceType=None),
            f"JWK (name: {existing}) is already exist! Try update operation if want to change"
            " its value.",
        ),
    ):
        r = await s.client.post(path, json=body, headers=s.api.headers)
        assert r.status_code == 400, r.text
        assert r.json() == bad_request(description)
    assert await jwk_state(s.api) == before


# The algorithm table of create-jwk.md, per key type: (useType, algorithm, accepted).
TABLE: dict[str, list[tuple[str | None, str | None, bool]]] = {
    "rsa2048": [
        *[("SIGNATURE", a, True) for a in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")],
        *[
            ("ENCRYPTION", a, True)
            for a in ("RSA1_5", "RSA-OAEP", "RSA-OAEP-256", "RSA-OAEP-384", "RSA-OAEP-512")
        ],
        ("SIGNATURE", "RSA-OAEP-256", False),
        ("ENCRYPTION", "RS256", False),
        ("SIGNATURE", "ES256", False),
        ("SIGNATURE", "HS256", False),
        ("SIGNATURE", "EdDSA", False),
        ("SIGNATURE", "RSA", False),  # a key type, not an algorithm
        ("SIGNATURE", "rs256", False),
        ("SIG", "RS256", False),
        (None, "RS256", False),
        ("SIGNATURE", None, False),
    ],
    "p256": [
        ("SIGNATURE", "ES256", True),
        *[
            ("ENCRYPTION", a, True)
            for a in ("ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW")
        ],
        ("SIGNATURE", "ES384", False),  # the curve is P-256
        ("SIGNATURE", "ES512", False),
        ("SIGNATURE", "RS256", False),
        ("SIGNATURE", "EdDSA", False),
        ("ENCRYPTION", "RSA-OAEP-256", False),
        ("SIGNATURE", "EC", False),
    ],
    "p384": [("SIGNATURE", "ES384", True), ("SIGNATURE", "ES256", False)],
    "secp256k1": [("SIGNATURE", "ES256K", True), ("SIGNATURE", "ES256", False)],
    "ed25519": [
        ("SIGNATURE", "EdDSA", True),
        ("SIGNATURE", "ES256", False),
        ("SIGNATURE", "RS256", False),
        ("ENCRYPTION", "ECDH-ES", False),  # Ed25519 signs; X25519 agrees keys
    ],
    "x25519": [("ENCRYPTION", "ECDH-ES", True), ("SIGNATURE", "EdDSA", False)],
}


@pytest.mark.parametrize("kind", list(TABLE))
async def test_use_type_and_algorithm_must_fit_the_key(s: Setting, kind: str) -> None:
    cert = unique("cert")
    await s.api.create_ok(cert, certs.self_signed(kind, f"{kind}.table.example").pem, s.envs[:1])
    for use_type, algorithm, accepted in TABLE[kind]:
        before = await s.api.list_jwks()
        name = unique("jwk")
        body = jwk_body(name, cert, s.envs[0], useType=use_type, algorithm=algorithm)
        r = await s.api.create_jwk(body)
        case = (kind, use_type, algorithm)
        if accepted:
            assert r.status_code == 200, (case, r.text)
            got = await s.api.get_jwk(name)
            assert got["algorithm"] == algorithm and got["useType"] == use_type, case
            assert got["jwk"]["use"] == {"SIGNATURE": "sig", "ENCRYPTION": "enc"}[use_type]
        else:
            assert r.status_code == 400, (case, r.text)
            assert r.json()["error"] == "bad_request", case
            assert (await s.api.list_jwks()).json() == before.json(), case


# --- who may do what ---------------------------------------------------------------------


async def test_roles(with_cert: tuple[Setting, str, str], factory: Factory) -> None:
    s, cert, existing = with_cert
    reader = await member(factory, "ROLE_API_SECURITY", projects=(s.project,))
    nobody = await member(factory, "ROLE_DEPLOY_UNDEPLOY_PROXIES", projects=(s.project,))
    outsider = await member(factory, "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES")
    before = await jwk_state(s.api)

    api = s.as_user(reader.token)
    assert (await api.list_jwks()).json() == before["list"]
    assert await api.get_jwk(existing) == before["full"][existing]
    for r in (
        await api.create_jwk(jwk_body("fresh", cert, s.envs[0])),
        await api.delete_jwk(existing),
    ):
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "forbidden"

    api = s.as_user(nobody.token)
    for r in (
        await api.list_jwks(),
        await api.client.get(f"{api.jwk_base}{existing}/", headers=api.headers),
        await api.create_jwk(jwk_body("fresh", cert, s.envs[0])),
        await api.delete_jwk(existing),
    ):
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "forbidden"

    api = s.as_user(outsider.token)
    for r in (
        await api.list_jwks(),
        await api.client.get(f"{api.jwk_base}{existing}/", headers=api.headers),
        await api.create_jwk(jwk_body("fresh", cert, s.envs[0])),
        await api.delete_jwk(existing),
    ):
        assert r.status_code == 404, r.text
        assert r.json() == {
            "error": "not_found",
            "error_description": (
                f"Project({s.project}) was not found or user does not have privilege to access it!"
            ),
        }
    assert await jwk_state(s.api) == before
