"""Crypto keys: create, list, get, update, delete, and the JWKs derived from them.

Pages: create-key.md, list-keys.md, get-key.md, update-key.md, delete-key.md; decisions
4 (JWK update actions), 5 (a refused update changes nothing), 6 (environments), 10
(roles, other projects) and 11 (the admin project's keys). Key material goes in as
base64 DER (SubjectPublicKeyInfo / PKCS#8) or PEM text and always comes back as base64
DER; the expected values are computed with pyca/cryptography and jwcrypto.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from tests.conftest import Factory, unique
from tests.crypto import certs
from tests.support.certificates import Setting, member, new_setting, pooled_key
from tests.support.keysecrets import (
    SecretsApi,
    b64,
    bad_request,
    env_results,
    held,
    jwcrypto_private,
    jwcrypto_public,
    jwcrypto_verifies,
    key_body,
    key_entry,
    pkcs8_der,
    project_not_found,
    sign_with,
    sign_with_pem,
    snapshot,
    spki_der,
    thumbprint,
)
from tests.support.messages import DEPLOYED, UNDEPLOYED

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated:joserfc.errors.SecurityWarning")

KEYS = "keys"
FORBIDDEN = {
    "error": "forbidden",
    "error_description": "You do not have permission to perform this action:"
    " it needs the role ROLE_DEPLOY_UNDEPLOY_PROXIES",
}
NOT_SECURITY = {
    "error": "forbidden",
    "error_description": "You do not have permission to perform this action:"
    " it needs the role ROLE_API_SECURITY",
}


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory, envs=2)


def api_of(s: Setting, token: str | None = None, project: str | None = None) -> SecretsApi:
    return SecretsApi(s.client, token or s.admin_token, project or s.project)


async def state(s: Setting, *projects: str) -> dict[str, Any]:
    return await snapshot(api_of(s), s.admin_token, s.envs, projects)


def secret(size: int = 32) -> bytes:
    return os.urandom(size)


# --- the documented example -----------------------------------------------------------------


async def test_create_key_curl_example(client: httpx.AsyncClient, admin_token: str) -> None:
    """create-key.md's cURL example, word for word but with real key material, on the demo
    project and environment; then the duplicate, list, get and delete of that key."""
    key = pooled_key("rsa2048")
    api = SecretsApi(client, admin_token, "MyProject")
    body = {
        "name": "my-key",
        "description": "Key for API encryption",
        "keyType": "RSA",
        "cryptoKeyInfoEnvironmentList": [
            {
                "environmentName": "production",
                "publicKey": b64(spki_der(key)),
                "privateKey": b64(pkcs8_der(key)),
            }
        ],
    }
    r = await client.post(
        "/apiops/projects/MyProject/keys/",
        json=body,
        headers={**api.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "deploymentResult": {
            "success": True,
            "message": "Deployment completed successfully",
            "environmentResults": [
                {
                    "environmentName": "production",
                    "success": True,
                    "message": DEPLOYED,
                }
            ],
        },
    }
    try:
        assert ("MyProject", "my-key") in await held(client, admin_token, "production", "key")

        again = await api.post(KEYS, body)
        assert again.status_code == 400
        assert again.json() == bad_request(
            "Key (name: my-key) is already exist! Try update operation if want to change its value."
        )

        item = await api.one(KEYS, "my-key")
        assert item["name"] == "my-key"
        assert item["description"] == "Key for API encryption"
        assert item["projectId"] == "MyProject"
        assert item["keyType"] == "RSA"
        (env,) = item["cryptoKeyInfoEnvironmentList"]
        assert env["environmentName"] == "production"
        assert env["publicKey"] == b64(spki_der(key))
        assert env["privateKey"] == b64(pkcs8_der(key))
        listed = [k for k in await api.list_ok(KEYS) if k["name"] == "my-key"]
        assert listed == [item]
    finally:
        r = await api.delete(KEYS, "my-key")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "deploymentResult": {
            "success": True,
            "message": "Undeployment completed successfully",
            "environmentResults": [
                {
                    "environmentName": "production",
                    "success": True,
                    "message": UNDEPLOYED,
                }
            ],
        },
    }
    assert ("MyProject", "my-key") not in await held(client, admin_token, "production", "key")


# --- every key type, both encodings ------------------------------------------------------------

# kind: (keyType sent, keyType stored, curve, keySize)
KINDS: dict[str, tuple[str, str, str | None, int | None]] = {
    "rsa2048": ("RSA", "RSA", None, 2048),
    "p256": ("EC", "EC", "P-256", 256),
    "p384": ("ec", "EC", "P-384", 384),
    "p521": ("EC", "EC", "P-521", 521),
    "ed25519": ("ED25519", "ED25519", "Ed25519", None),
    "x25519": ("X25519", "X25519", "X25519", None),
    "okp-ed25519": ("OKP", "ED25519", "Ed25519", None),
}


def _key(kind: str) -> PrivateKeyTypes:
    key: PrivateKeyTypes = pooled_key(kind.removeprefix("okp-"))
    return key


@pytest.mark.parametrize("form", ["der", "pem"])
@pytest.mark.parametrize("kind", list(KINDS))
async def test_key_round_trip(s: Setting, kind: str, form: str) -> None:
    sent_type, stored_type, curve, size = KINDS[kind]
    api = api_of(s)
    # A different key in each environment.
    keys = [_key(kind), _key(kind)]
    name = unique("key")
    answer = await api.post_ok(
        KEYS,
        key_body(
            name, sent_type, [key_entry(e, k, form=form) for e, k in zip(s.envs, keys, strict=True)]
        ),
    )
    assert answer["deploymentResult"]["success"] is True
    assert answer["deploymentResult"]["message"] == "Deployment completed successfully"
    assert set(env_results(answer)) == set(s.envs)

    item = await api.one(KEYS, name)
    assert item["keyType"] == stored_type and item["projectId"] == s.project
    envs = item["cryptoKeyInfoEnvironmentList"]
    assert [e["environmentName"] for e in envs] == s.envs
    for env, key in zip(envs, keys, strict=True):
        # Whatever went in, base64 DER comes out: SPKI and unencrypted PKCS#8.
        assert env["publicKey"] == b64(spki_der(key))
        assert env["privateKey"] == b64(pkcs8_der(key))
        assert env["curve"] == curve and env["keySize"] == size
        loaded = serialization.load_der_private_key(base64.b64decode(env["privateKey"]), None)
        assert pkcs8_der(loaded) == pkcs8_der(key)
    assert [k for k in await api.list_ok(KEYS) if k["name"] == name] == [item]
    for env in s.envs:
        assert (s.project, name) in await held(s.client, s.admin_token, env, "key")


@pytest.mark.parametrize("size", [16, 32, 64])
async def test_symmetric_key(s: Setting, size: int) -> None:
    api = api_of(s)
    values = [secret(size), secret(size)]
    name = unique("sym")
    await api.post_ok(
        KEYS,
        key_body(name, "SYMMETRIC", [key_entry(e, v) for e, v in zip(s.envs, values, strict=True)]),
    )
    item = await api.one(KEYS, name)
    assert item["keyType"] == "SYMMETRIC"
    for env, value in zip(item["cryptoKeyInfoEnvironmentList"], values, strict=True):
        assert env["publicKey"] is None
        assert base64.b64decode(env["privateKey"]) == value
        assert env["keySize"] == size * 8


async def test_public_only_and_private_only(s: Setting) -> None:
    api = api_of(s)
    key = pooled_key("p256")
    name = unique("key")
    await api.post_ok(
        KEYS,
        key_body(
            name,
            "EC",
            [
                key_entry(s.envs[0], key, private=False),
                key_entry(s.envs[1], key, form="pem", public=False),
            ],
        ),
    )
    public_only, private_only = (await api.one(KEYS, name))["cryptoKeyInfoEnvironmentList"]
    assert public_only["publicKey"] == b64(spki_der(key))
    assert public_only["privateKey"] is None
    # The public half is derived from the private key.
    assert private_only["publicKey"] == b64(spki_der(key))
    assert private_only["privateKey"] == b64(pkcs8_der(key))


# --- refusals -----------------------------------------------------------------------------------


def _refusals() -> dict[str, tuple[Any, str]]:
    """Bodies that must be refused with 400, and (a part of) the reason."""
    rsa, other, ec = pooled_key("rsa2048"), pooled_key("rsa2048"), pooled_key("p256")
    enc_pem = rsa.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    ).decode()

    def one(key_type: Any, entry: dict[str, Any]) -> Any:
        return lambda n, e: key_body(n, key_type, [{**entry, "environmentName": e[0]}])

    return {
        "garbage-public": (
            one("RSA", {"publicKey": "bm90IGEga2V5"}),
            "publicKey is not a valid base64 DER or PEM encoded public key! (environment: {e0})",
        ),
        "not-base64": (
            one("RSA", {"privateKey": "%%% not base64 %%%"}),
            "privateKey is not a valid base64 DER or PEM encoded private key! (environment: {e0})",
        ),
        "pem-garbage": (
            one("RSA", {"publicKey": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}),
            "publicKey is not a valid base64 DER or PEM encoded public key! (environment: {e0})",
        ),
        "private-not-matching-public": (
            one("RSA", {"publicKey": b64(spki_der(other)), "privateKey": b64(pkcs8_der(rsa))}),
            "privateKey does not match publicKey! (environment: {e0})",
        ),
        "keytype-not-matching": (
            one("EC", key_entry("x", rsa)),
            "keyType (EC) does not match the key material (RSA)! (environment: {e0})",
        ),
        "keytype-ed25519-for-ec": (
            one("ED25519", key_entry("x", ec)),
            "keyType (ED25519) does not match the key material (EC)! (environment: {e0})",
        ),
        "empty-keytype": (one("", key_entry("x", rsa)), "keyType value can not be empty!"),
        "blank-keytype": (one("  ", key_entry("x", rsa)), "keyType value can not be empty!"),
        "missing-keytype": (one(None, key_entry("x", rsa)), "keyType value can not be empty!"),
        "unknown-keytype": (one("DSA", key_entry("x", rsa)), "keyType (DSA) is not valid!"),
        "no-material": (one("RSA", {}), "publicKey and privateKey can not both be empty!"),
        "encrypted-private-key": (
            one("RSA", {"privateKey": enc_pem}),
            "privateKey is an encrypted private key!",
        ),
        "certificate-as-public-key": (
            one("RSA", {"publicKey": b64(certs.self_signed("rsa2048").der)}),
            "publicKey holds a certificate, not a public key! (environment: {e0})",
        ),
        "private-key-as-public-key": (
            one("RSA", {"publicKey": b64(pkcs8_der(rsa))}),
            "publicKey holds a private key, not a public key! (environment: {e0})",
        ),
        "public-key-as-private-key": (
            one("RSA", {"privateKey": b64(spki_der(rsa))}),
            "privateKey holds a public key, not a private key! (environment: {e0})",
        ),
        "symmetric-with-public-key": (
            one("SYMMETRIC", {"publicKey": b64(spki_der(rsa)), "privateKey": b64(secret())}),
            "publicKey must be empty for SYMMETRIC keys! (environment: {e0})",
        ),
        "symmetric-too-short": (
            one("SYMMETRIC", {"privateKey": b64(secret(8))}),
            "privateKey must hold 16 to 512 bytes for SYMMETRIC keys, found 8!",
        ),
        "unknown-environment": (
            lambda n, e: key_body(n, "RSA", [key_entry("no-such-env", rsa)]),
            "Environment (no-such-env) is not found or user does not have privilege to access it!",
        ),
        "duplicate-environment": (
            lambda n, e: key_body(n, "RSA", [key_entry(e[0], rsa), key_entry(e[0], other)]),
            "Environment ({e0}) is listed more than once in cryptoKeyInfoEnvironmentList!",
        ),
        "blank-environment": (
            lambda n, e: key_body(n, "RSA", [key_entry(" ", rsa)]),
            "environmentName value can not be empty!",
        ),
        "no-environments": (
            lambda n, e: key_body(n, "RSA", []),
            "cryptoKeyInfoEnvironmentList value can not be empty!",
        ),
        "second-environment-bad": (
            lambda n, e: key_body(
                n, "RSA", [key_entry(e[0], rsa), {"environmentName": e[1], "publicKey": "AAAA"}]
            ),
            "publicKey is not a valid base64 DER or PEM encoded public key! (environment: {e1})",
        ),
        "empty-name": (
            lambda n, e: key_body("", "RSA", [key_entry(e[0], rsa)]),
            "Key name can not be empty!",
        ),
        "missing-name": (
            lambda n, e: key_body(None, "RSA", [key_entry(e[0], rsa)]),
            "Key name can not be empty!",
        ),
    }


REFUSALS = _refusals()


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_create_refused_changes_nothing(s: Setting, case: str) -> None:
    make, reason = REFUSALS[case]
    api = api_of(s)
    await api.post_ok(
        KEYS, key_body("existing", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))])
    )
    before = await state(s)
    r = await api.post(KEYS, make(unique("key"), s.envs))
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"error", "error_description"} and body["error"] == "bad_request"
    assert reason.format(e0=s.envs[0], e1=s.envs[1]) in body["error_description"]
    assert await state(s) == before


async def test_duplicate_name_in_project(s: Setting) -> None:
    api = api_of(s)
    body = key_body("dup", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))])
    await api.post_ok(KEYS, body)
    before = await state(s)
    r = await api.post(KEYS, key_body("dup", "EC", [key_entry(s.envs[1], pooled_key("p256"))]))
    assert r.status_code == 400
    assert r.json() == bad_request(
        "Key (name: dup) is already exist! Try update operation if want to change its value."
    )
    assert await state(s) == before


async def test_environment_of_another_project_is_refused(s: Setting, factory: Factory) -> None:
    other = await factory.project("admin")
    foreign = await factory.environment(projects=(other,))
    before = await state(s)
    r = await api_of(s).post(
        KEYS, key_body("k", "RSA", [key_entry(foreign, pooled_key("rsa2048"))])
    )
    assert r.status_code == 400
    assert r.json() == bad_request(
        f"Environment ({foreign}) is not found or user does not have privilege to access it!"
    )
    assert await state(s) == before


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_not_found(s: Setting, method: str) -> None:
    api = api_of(s)
    await api.post_ok(
        KEYS, key_body("present", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))])
    )
    before = await state(s)
    body = key_body("absent", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))])
    r = await s.client.request(
        method,
        api.path(KEYS, "absent"),
        headers=api.headers,
        json=body if method == "PUT" else None,
    )
    assert r.status_code == 400
    assert r.json() == bad_request("Key (name: absent) is not found!")
    assert await state(s) == before


async def test_someone_elses_project(s: Setting, factory: Factory) -> None:
    """A project the caller is not a member of does not exist for them (decision 10)."""
    user = await member(factory, "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES")
    api = api_of(s)
    await api.post_ok(
        KEYS, key_body("theirs", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))])
    )
    before = await state(s)
    stranger = api_of(s, user.token)
    body = key_body("mine", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))])
    calls = [
        await stranger.list_response(KEYS),
        await stranger.get(KEYS, "theirs"),
        await stranger.post(KEYS, body),
        await stranger.put(KEYS, "theirs", body),
        await stranger.delete(KEYS, "theirs"),
    ]
    for r in calls:
        assert r.status_code == 404, r.text
        assert r.json() == project_not_found(s.project)
    assert await state(s) == before


async def test_roles(s: Setting, factory: Factory) -> None:
    """ROLE_API_SECURITY reads; changing also needs ROLE_DEPLOY_UNDEPLOY_PROXIES (decision 10)."""
    api = api_of(s)
    await api.post_ok(KEYS, key_body("k", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))]))
    reader = await member(factory, "ROLE_API_SECURITY", projects=(s.project,))
    deployer = await member(factory, "ROLE_DEPLOY_UNDEPLOY_PROXIES", projects=(s.project,))
    before = await state(s)
    body = key_body("k2", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))])

    as_reader = api_of(s, reader.token)
    assert (await as_reader.list_response(KEYS)).status_code == 200
    assert (await as_reader.get(KEYS, "k")).status_code == 200
    for r in (
        await as_reader.post(KEYS, body),
        await as_reader.put(KEYS, "k", body),
        await as_reader.delete(KEYS, "k"),
    ):
        assert r.status_code == 403, r.text
        assert r.json() == FORBIDDEN

    as_deployer = api_of(s, deployer.token)
    for r in (
        await as_deployer.list_response(KEYS),
        await as_deployer.get(KEYS, "k"),
        await as_deployer.post(KEYS, body),
        await as_deployer.put(KEYS, "k", body),
        await as_deployer.delete(KEYS, "k"),
    ):
        assert r.status_code == 403, r.text
        assert r.json() == NOT_SECURITY
    assert await state(s) == before

    both = await member(
        factory, "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES", projects=(s.project,)
    )
    await api_of(s, both.token).post_ok(KEYS, body)


# --- update ----------------------------------------------------------------------------------


async def test_update_replaces_material_and_environments(s: Setting) -> None:
    api = api_of(s)
    old, new = pooled_key("rsa2048"), pooled_key("rsa2048")
    await api.post_ok(
        KEYS, key_body("k", "RSA", [key_entry(s.envs[0], old), key_entry(s.envs[1], old)])
    )
    hashes = {e: (await held(s.client, s.admin_token, e, "key"))[(s.project, "k")] for e in s.envs}
    answer = await api.put_ok(
        KEYS, "k", key_body("k", "RSA", [key_entry(s.envs[1], new, form="pem")], "new text")
    )
    results = env_results(answer)
    assert results[s.envs[1]]["message"] == DEPLOYED
    assert results[s.envs[0]]["message"] == UNDEPLOYED
    item = await api.one(KEYS, "k")
    assert item["description"] == "new text"
    (env,) = item["cryptoKeyInfoEnvironmentList"]
    assert env["environmentName"] == s.envs[1]
    assert env["publicKey"] == b64(spki_der(new)) and env["privateKey"] == b64(pkcs8_der(new))
    assert (s.project, "k") not in await held(s.client, s.admin_token, s.envs[0], "key")
    now = (await held(s.client, s.admin_token, s.envs[1], "key"))[(s.project, "k")]
    assert now["contentHash"] != hashes[s.envs[1]]["contentHash"]


async def test_update_key_example_renames(s: Setting) -> None:
    """update-key.md's example renames my-key to updated-key."""
    api = api_of(s)
    old, new = pooled_key("rsa2048"), pooled_key("rsa2048")
    await api.post_ok(KEYS, key_body("my-key", "RSA", [key_entry(s.envs[0], old)]))
    answer = await api.put_ok(
        KEYS,
        "my-key",
        {
            "name": "updated-key",
            "description": "Updated key",
            "keyType": "RSA",
            "cryptoKeyInfoEnvironmentList": [key_entry(s.envs[0], new)],
        },
        query="updateReferencedJwks=true&updateScope=SAME_PROJECT",
    )
    assert answer["deploymentResult"]["success"] is True
    r = await api.get(KEYS, "my-key")
    assert r.status_code == 400
    assert r.json() == bad_request("Key (name: my-key) is not found!")
    item = await api.one(KEYS, "updated-key")
    assert item["description"] == "Updated key"
    assert item["cryptoKeyInfoEnvironmentList"][0]["privateKey"] == b64(pkcs8_der(new))
    assert [k["name"] for k in await api.list_ok(KEYS)] == ["updated-key"]
    in_env = await held(s.client, s.admin_token, s.envs[0], "key")
    assert (s.project, "updated-key") in in_env and (s.project, "my-key") not in in_env


async def test_rename_onto_an_existing_key_is_refused(s: Setting) -> None:
    api = api_of(s)
    await api.post_ok(KEYS, key_body("a", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))]))
    await api.post_ok(KEYS, key_body("b", "EC", [key_entry(s.envs[0], pooled_key("p256"))]))
    before = await state(s)
    r = await api.put(
        KEYS, "a", key_body("b", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))])
    )
    assert r.status_code == 400
    assert r.json() == bad_request("Key (name: b) is already exist!")
    assert await state(s) == before


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("updateReferencedJwks=true", "updateScope value can not be empty!"),
        ("jwkUpdateAction=UPDATE", "updateScope value can not be empty!"),
        ("updateReferencedJwks=maybe", "updateReferencedJwks (maybe) must be true or false!"),
        (
            "updateReferencedJwks=true&updateScope=EVERYWHERE",
            "updateScope (EVERYWHERE) is not valid! Valid values: SAME_PROJECT, ALL_PROJECTS",
        ),
        (
            "updateReferencedJwks=false&jwkUpdateAction=UPDATE&updateScope=SAME_PROJECT",
            "updateReferencedJwks=false contradicts jwkUpdateAction=UPDATE!",
        ),
    ],
)
async def test_update_query_refused(s: Setting, query: str, reason: str) -> None:
    api = api_of(s)
    await api.post_ok(KEYS, key_body("k", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))]))
    before = await state(s)
    r = await api.put(
        KEYS, "k", key_body("k", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))]), query
    )
    assert r.status_code == 400
    assert r.json() == bad_request(reason)
    assert await state(s) == before


async def test_refused_update_changes_nothing(s: Setting) -> None:
    api = api_of(s)
    key = pooled_key("rsa2048")
    await api.post_ok(KEYS, key_body("k", "RSA", [key_entry(s.envs[0], key)]))
    before = await state(s)
    for body in (
        key_body(
            "k",
            "RSA",
            [
                key_entry(s.envs[1], pooled_key("rsa2048")),
                {"environmentName": s.envs[0], "publicKey": "x"},
            ],
        ),
        key_body("k", "EC", [key_entry(s.envs[0], pooled_key("rsa2048"))]),
        key_body("k", "RSA", [key_entry("nowhere", pooled_key("rsa2048"))]),
        key_body("k", "", [key_entry(s.envs[0], pooled_key("rsa2048"))]),
    ):
        r = await api.put(KEYS, "k", body)
        assert r.status_code == 400, r.text
    assert await state(s) == before


# --- JWKs derived from a key ---------------------------------------------------------------------


async def _derive(
    api: SecretsApi, name: str, key: str, env: str, source: str, **extra: Any
) -> None:
    body = {
        "name": name,
        "description": f"{source} of {key}",
        "keyName": key,
        "environmentName": env,
        "useType": "SIGNATURE",
        "algorithm": "RS256",
        **extra,
    }
    if source == "PUBLIC_KEY":
        await api.post_ok("jwks", body, sub="parse-from-key")
    else:
        await api.post_ok("jwks", {**body, "sourceType": source})


@pytest.mark.parametrize(
    "query",
    [
        "updateReferencedJwks=true&updateScope=SAME_PROJECT",
        "jwkUpdateAction=UPDATE&updateScope=SAME_PROJECT",
        "updateReferencedJwks=true&updateScope=ALL_PROJECTS",
    ],
)
async def test_update_rederives_jwks(s: Setting, query: str) -> None:
    api = api_of(s)
    fixed_kid = unique("fixed-kid")
    old, new = certs.new_key("rsa2048"), certs.new_key("rsa2048")
    await api.post_ok(KEYS, key_body("k", "RSA", [key_entry(s.envs[0], old)]))
    await _derive(api, "pub", "k", s.envs[0], "PUBLIC_KEY")
    await _derive(api, "priv", "k", s.envs[0], "PRIVATE_KEY", kid=fixed_kid)
    before = {n: await api.jwk(n) for n in ("pub", "priv")}
    assert before["pub"]["jwk"]["n"] == jwcrypto_public(old)["n"]
    hashes = await held(s.client, s.admin_token, s.envs[0], "jwk")

    await api.put_ok(KEYS, "k", key_body("k", "RSA", [key_entry(s.envs[0], new)]), query)

    pub, priv = await api.jwk("pub"), await api.jwk("priv")
    expected_public = jwcrypto_public(new)
    assert {m: pub["jwk"][m] for m in ("n", "e")} == {m: expected_public[m] for m in ("n", "e")}
    assert not {"d", "p", "q"} & set(pub["jwk"])
    assert pub["kid"] == pub["jwk"]["kid"] == thumbprint(expected_public)  # a fresh thumbprint
    expected_private = jwcrypto_private(new)
    for m in ("n", "e", "d", "p", "q", "dp", "dq", "qi"):
        assert priv["jwk"][m] == expected_private[m]
    assert priv["kid"] == fixed_kid  # a kid its creator chose is kept
    for jwk in (pub, priv):
        assert jwk["sourceId"] == "k" and jwk["sourceType"] in ("PUBLIC_KEY", "PRIVATE_KEY")
        assert jwk["algorithm"] == "RS256" and jwk["useType"] == "SIGNATURE"
    # The new key signs for both; the old one no longer verifies.
    assert jwcrypto_verifies(sign_with_pem(new, "RS256"), pub["jwk"], "RS256")
    assert not jwcrypto_verifies(sign_with_pem(old, "RS256"), pub["jwk"], "RS256")
    assert jwcrypto_verifies(sign_with(priv["jwk"]), pub["jwk"], "RS256")
    # ... and the environment got the re-derived JWKs.
    now = await held(s.client, s.admin_token, s.envs[0], "jwk")
    for name in ("pub", "priv"):
        assert now[(s.project, name)]["contentHash"] != hashes[(s.project, name)]["contentHash"]


@pytest.mark.parametrize("query", ["", "updateReferencedJwks=false", "jwkUpdateAction=NULLIFY"])
async def test_update_nullify_detaches_jwks(s: Setting, query: str) -> None:
    api = api_of(s)
    old, new = pooled_key("rsa2048"), pooled_key("rsa2048")
    await api.post_ok(KEYS, key_body("k", "RSA", [key_entry(s.envs[0], old)]))
    await _derive(api, "pub", "k", s.envs[0], "PUBLIC_KEY")
    await _derive(api, "priv", "k", s.envs[0], "PRIVATE_KEY")
    before = {n: await api.jwk(n) for n in ("pub", "priv")}

    await api.put_ok(KEYS, "k", key_body("k", "RSA", [key_entry(s.envs[0], new)]), query)

    for name in ("pub", "priv"):
        after = await api.jwk(name)
        assert after["sourceId"] is None  # detached ...
        assert after["jwk"] == before[name]["jwk"]  # ... keeping its material
    assert (await api.jwk("priv"))["jwk"]["d"] == jwcrypto_private(old)["d"]

    # Detached means detached: a later UPDATE does not touch them.
    await api.put_ok(
        KEYS,
        "k",
        key_body("k", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))]),
        "updateReferencedJwks=true&updateScope=SAME_PROJECT",
    )
    for name in ("pub", "priv"):
        assert (await api.jwk(name))["jwk"] == before[name]["jwk"]


async def test_update_with_a_rename_keeps_jwks_attached(s: Setting) -> None:
    api = api_of(s)
    await api.post_ok(
        KEYS, key_body("my-key", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))])
    )
    await _derive(api, "pub", "my-key", s.envs[0], "PUBLIC_KEY")
    new = pooled_key("rsa2048")
    await api.put_ok(
        KEYS,
        "my-key",
        key_body("updated-key", "RSA", [key_entry(s.envs[0], new)]),
        "updateReferencedJwks=true&updateScope=SAME_PROJECT",
    )
    pub = await api.jwk("pub")
    assert pub["sourceId"] == "updated-key"
    assert pub["jwk"]["n"] == jwcrypto_public(new)["n"]


async def test_update_dropping_the_jwks_environment_detaches_it(s: Setting) -> None:
    api = api_of(s)
    key = pooled_key("rsa2048")
    await api.post_ok(KEYS, key_body("k", "RSA", [key_entry(e, key) for e in s.envs]))
    await _derive(api, "pub", "k", s.envs[0], "PUBLIC_KEY")
    before = await api.jwk("pub")
    await api.put_ok(
        KEYS,
        "k",
        key_body("k", "RSA", [key_entry(s.envs[1], pooled_key("rsa2048"))]),
        "updateReferencedJwks=true&updateScope=SAME_PROJECT",
    )
    after = await api.jwk("pub")
    assert after["sourceId"] is None and after["jwk"] == before["jwk"]


async def test_update_a_jwk_can_not_follow_is_refused(s: Setting) -> None:
    """An RS256 JWK can not be re-derived from an EC key: the whole update is refused."""
    api = api_of(s)
    await api.post_ok(KEYS, key_body("k", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))]))
    await _derive(api, "pub", "k", s.envs[0], "PUBLIC_KEY")
    before = await state(s)
    r = await api.put(
        KEYS,
        "k",
        key_body("k", "EC", [key_entry(s.envs[0], pooled_key("p256"))]),
        "updateReferencedJwks=true&updateScope=SAME_PROJECT",
    )
    assert r.status_code == 400, r.text
    description = r.json()["error_description"]
    assert description.startswith(f"JWK (name: pub, project: {s.project}) can not be re-derived")
    assert await state(s) == before
    # NULLIFY lets the same update through and detaches the JWK.
    await api.put_ok(KEYS, "k", key_body("k", "EC", [key_entry(s.envs[0], pooled_key("p256"))]))
    assert (await api.jwk("pub"))["sourceId"] is None


async def test_update_scope_across_projects(
    s: Setting, factory: Factory, client: httpx.AsyncClient, admin_token: str
) -> None:
    """A key of the admin project, used by a JWK there and by one in another project
    (decision 11): SAME_PROJECT re-derives the first and detaches the second,
    ALL_PROJECTS re-derives both."""
    env = await factory.environment(projects=("admin", s.project))
    admin = SecretsApi(client, admin_token, "admin")
    mine = api_of(s)
    key = unique("shared-key")
    first, second, third = (pooled_key("rsa2048") for _ in range(3))
    admin_jwk, other_jwk, other_again = unique("admin-jwk"), unique("other-jwk"), unique("o-jwk")
    await admin.post_ok(KEYS, key_body(key, "RSA", [key_entry(env, first)]))
    try:
        await _derive(admin, admin_jwk, key, env, "PUBLIC_KEY")
        await _derive(mine, other_jwk, key, env, "PUBLIC_KEY")
        assert (await mine.jwk(other_jwk))["sourceId"] == key

        await admin.put_ok(
            KEYS,
            key,
            key_body(key, "RSA", [key_entry(env, second)]),
            "updateReferencedJwks=true&updateScope=SAME_PROJECT",
        )
        assert (await admin.jwk(admin_jwk))["jwk"]["n"] == jwcrypto_public(second)["n"]
        other = await mine.jwk(other_jwk)
        assert other["sourceId"] is None and other["jwk"]["n"] == jwcrypto_public(first)["n"]

        await _derive(mine, other_again, key, env, "PUBLIC_KEY")
        await admin.put_ok(
            KEYS,
            key,
            key_body(key, "RSA", [key_entry(env, third)]),
            "updateReferencedJwks=true&updateScope=ALL_PROJECTS",
        )
        assert (await admin.jwk(admin_jwk))["jwk"]["n"] == jwcrypto_public(third)["n"]
        followed = await mine.jwk(other_again)
        assert followed["sourceId"] == key and followed["jwk"]["n"] == jwcrypto_public(third)["n"]
    finally:
        # The admin project is shared by every test: leave it as it was.
        await admin.delete(KEYS, key)
        await admin.delete("jwks", admin_jwk)


# --- delete ------------------------------------------------------------------------------------


async def test_delete_undeploys_and_detaches_jwks(s: Setting) -> None:
    api = api_of(s)
    key = pooled_key("ed25519")
    await api.post_ok(KEYS, key_body("k", "ED25519", [key_entry(e, key) for e in s.envs]))
    await api.post_ok(
        KEYS, key_body("keep", "X25519", [key_entry(s.envs[0], pooled_key("x25519"))])
    )
    await _derive(api, "sig", "k", s.envs[0], "PRIVATE_KEY", algorithm="EdDSA")
    before = await api.jwk("sig")

    r = await api.delete(KEYS, "k")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["deploymentResult"]["message"] == "Undeployment completed successfully"
    for env in s.envs:
        assert env_results(answer)[env] == {
            "environmentName": env,
            "success": True,
            "message": UNDEPLOYED,
        }
        assert (s.project, "k") not in await held(s.client, s.admin_token, env, "key")
    assert (s.project, "keep") in await held(s.client, s.admin_token, s.envs[0], "key")
    assert [k["name"] for k in await api.list_ok(KEYS)] == ["keep"]
    for method in ("GET", "DELETE"):
        r = await s.client.request(method, api.path(KEYS, "k"), headers=api.headers)
        assert r.status_code == 400
        assert r.json() == bad_request("Key (name: k) is not found!")
    after = await api.jwk("sig")
    assert after["sourceId"] is None and after["jwk"] == before["jwk"]
    assert after["jwk"]["d"] == jwcrypto_private(key)["d"]


async def test_trailing_slash_is_optional(s: Setting) -> None:
    api = api_of(s)
    body = key_body("k", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))])
    base = f"/apiops/projects/{s.project}/keys"
    r = await s.client.post(base, json=body, headers=api.headers)
    assert r.status_code == 200, r.text
    r = await s.client.get(f"{base}/k", headers=api.headers)
    assert r.status_code == 200 and r.json()["resultList"][0]["name"] == "k"
    r = await s.client.put(f"{base}/k", json=body, headers=api.headers)
    assert r.status_code == 200, r.text
    r = await s.client.delete(f"{base}/k", headers=api.headers)
    assert r.status_code == 200, r.text
