"""History and rollback of keys and keystores (issue 12): the old material is back as the
API serves it and as a gateway node receives it, JWKs follow when asked, a deleted one
comes back, and no secret shows in a listing, an answer or a log line.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from keyops.crypto.x509 import format_instant
from tests.api.test_versions import (
    SAME_PROJECT,
    gateway_holds,
    list_versions,
    now,
    rollback,
    served_instant,
    versions_ok,
)
from tests.conftest import Factory, unique
from tests.crypto import certs
from tests.support.certificates import Setting, new_setting, pooled_key, sha256_hex
from tests.support.keysecrets import (
    SecretsApi,
    b64,
    bad_request,
    jwcrypto_private,
    jwcrypto_public,
    key_body,
    key_entry,
    key_kind,
    pkcs8_der,
    pkcs8_pem,
    snapshot,
    spki_der,
)
from tests.support.keystores import java_stores

KEYS, KEYSTORES = "keys", "keystores"


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory, envs=2)


def api_of(s: Setting) -> SecretsApi:
    return SecretsApi(s.client, s.admin_token, s.project)


async def state(s: Setting) -> dict[str, Any]:
    return await snapshot(api_of(s), s.admin_token, s.envs)


# --- keys -----------------------------------------------------------------------------------

Key = PrivateKeyTypes | bytes


def new_key(kind: str) -> Key:
    return os.urandom(32) if kind == "symmetric" else pooled_key(kind)


def key_material(key: Key) -> tuple[str | None, str]:
    """(publicKey, privateKey) as keyops serves them: base64 DER."""
    if isinstance(key, bytes):
        return None, b64(key)
    return b64(spki_der(key)), b64(pkcs8_der(key))


def key_artifact(key: Key) -> bytes:
    """What an environment receives of a key, computed here from the key itself."""
    public, private = key_material(key)
    doc = {"keyType": key_kind(key), "publicKey": public, "privateKey": private}
    return json.dumps(doc, sort_keys=True).encode("utf-8")


def key_version_env(env: str, key: Key, curve: str | None, size: int | None) -> dict[str, Any]:
    fingerprinted = key if isinstance(key, bytes) else spki_der(key)
    return {
        "environmentName": env,
        "sha256Fingerprint": sha256_hex(fingerprinted),
        "curve": curve,
        "keySize": size,
    }


async def served_keys(api: SecretsApi, name: str) -> dict[str, tuple[str | None, str | None]]:
    item = await api.one(KEYS, name)
    return {
        e["environmentName"]: (e["publicKey"], e["privateKey"])
        for e in item["cryptoKeyInfoEnvironmentList"]
    }


@pytest.mark.parametrize(
    ("kind", "curve", "size"),
    [("rsa2048", None, 2048), ("p256", "P-256", 256), ("symmetric", None, 256)],
)
async def test_key_rollback_restores_the_old_material(
    s: Setting, kind: str, curve: str | None, size: int | None
) -> None:
    api = api_of(s)
    name = unique("key")
    old_a, old_b, new = new_key(kind), new_key(kind), new_key(kind)
    key_type = key_kind(new)
    await api.post_ok(
        KEYS,
        key_body(name, key_type, [key_entry(s.envs[0], old_a), key_entry(s.envs[1], old_b)], "v1"),
    )
    started = now()
    await api.put_ok(KEYS, name, key_body(name, key_type, [key_entry(s.envs[0], new)], "v2"))
    finished = now()
    assert ("key", s.project, name) not in await gateway_holds(s.client, s.admin_token, s.envs[1])

    r = await list_versions(s.client, s.admin_token, s.project, KEYS, name)
    assert r.status_code == 200, r.text
    listed = r.json()["resultList"]
    assert r.json() == {
        "success": True,
        "resultList": [
            {
                "version": 1,
                "createdAt": served_instant(listed[0], started, finished),
                "createdBy": "admin",
                "reason": "REPLACED",
                "description": "v1",
                "environmentList": [
                    key_version_env(s.envs[0], old_a, curve, size),
                    key_version_env(s.envs[1], old_b, curve, size),
                ],
            }
        ],
        "resultCount": 1,
    }

    newest = new_key(kind)
    await api.put_ok(KEYS, name, key_body(name, key_type, [key_entry(s.envs[1], newest)], "v3"))

    r = await rollback(s.client, s.admin_token, s.project, KEYS, name, "version=1")
    assert r.status_code == 200, r.text
    assert r.json()["deploymentResult"]["success"] is True
    item = await api.one(KEYS, name)
    assert item["description"] == "v1" and item["keyType"] == key_type
    assert await served_keys(api, name) == {
        s.envs[0]: key_material(old_a),
        s.envs[1]: key_material(old_b),
    }
    for env, key in ((s.envs[0], old_a), (s.envs[1], old_b)):
        held = await gateway_holds(s.client, s.admin_token, env)
        assert held[("key", s.project, name)] == key_artifact(key)
    # What the rollback replaced is the newest version.
    listed = await versions_ok(s.client, s.admin_token, s.project, KEYS, name)
    assert [(v["version"], v["description"], v["environmentList"]) for v in listed] == [
        (3, "v3", [key_version_env(s.envs[1], newest, curve, size)]),
        (2, "v2", [key_version_env(s.envs[0], new, curve, size)]),
        (1, "v1", listed[-1]["environmentList"]),
    ]


async def test_a_renamed_key_takes_its_history_along(s: Setting) -> None:
    api = api_of(s)
    old_name, new_name = unique("key"), unique("key")
    old, new = pooled_key("rsa2048"), pooled_key("rsa2048")
    await api.post_ok(KEYS, key_body(old_name, "RSA", [key_entry(s.envs[0], old)], "first"))
    await api.put_ok(KEYS, old_name, key_body(new_name, "RSA", [key_entry(s.envs[0], new)], "2nd"))

    r = await list_versions(s.client, s.admin_token, s.project, KEYS, old_name)
    assert r.status_code == 400
    assert r.json() == bad_request(f"Key (name: {old_name}) is not found!")
    (v1,) = await versions_ok(s.client, s.admin_token, s.project, KEYS, new_name)
    assert v1["environmentList"] == [key_version_env(s.envs[0], old, None, 2048)]

    # The rollback restores the material under the current name; it does not rename back.
    r = await rollback(s.client, s.admin_token, s.project, KEYS, new_name, "version=1")
    assert r.status_code == 200, r.text
    assert await served_keys(api, new_name) == {s.envs[0]: key_material(old)}
    assert (await api.get(KEYS, old_name)).status_code == 400
    held = await gateway_holds(s.client, s.admin_token, s.envs[0])
    assert held[("key", s.project, new_name)] == key_artifact(old)
    assert ("key", s.project, old_name) not in held


async def _derive_from_key(api: SecretsApi, name: str, key: str, env: str) -> None:
    await api.post_ok(
        "jwks",
        {
            "name": name,
            "description": f"private JWK of {key}",
            "sourceType": "PRIVATE_KEY",
            "keyName": key,
            "environmentName": env,
            "useType": "SIGNATURE",
            "algorithm": "RS256",
        },
    )


@pytest.mark.parametrize("follow", [True, False])
async def test_key_rollback_and_the_jwks_made_from_it(s: Setting, follow: bool) -> None:
    api = api_of(s)
    name, jwk = unique("key"), unique("jwk")
    old, new = pooled_key("rsa2048"), pooled_key("rsa2048")
    await api.post_ok(KEYS, key_body(name, "RSA", [key_entry(s.envs[0], old)]))
    await _derive_from_key(api, jwk, name, s.envs[0])
    await api.put_ok(KEYS, name, key_body(name, "RSA", [key_entry(s.envs[0], new)]), SAME_PROJECT)
    newer = await api.jwk(jwk)
    assert newer["sourceId"] == name and newer["jwk"]["d"] == jwcrypto_private(new)["d"]

    query = "version=1" + (f"&{SAME_PROJECT}" if follow else "")
    r = await rollback(s.client, s.admin_token, s.project, KEYS, name, query)
    assert r.status_code == 200, r.text

    after = await api.jwk(jwk)
    expected = jwcrypto_private(old if follow else new)
    for m in ("n", "e", "d", "p", "q"):
        assert after["jwk"][m] == expected[m]
    assert after["sourceId"] == (name if follow else None)
    if not follow:
        assert after["jwk"] == newer["jwk"]
    held = json.loads(
        (await gateway_holds(s.client, s.admin_token, s.envs[0]))[("jwk", s.project, jwk)]
    )
    assert held["n"] == expected["n"] and held["d"] == expected["d"]


@pytest.mark.parametrize("scope", ["SAME_PROJECT", "ALL_PROJECTS"])
async def test_key_rollback_honours_the_update_scope(
    s: Setting, factory: Factory, client: httpx.AsyncClient, admin_token: str, scope: str
) -> None:
    """A key of the admin project with a public JWK in another project (decision 11): a
    rollback with SAME_PROJECT detaches that JWK, one with ALL_PROJECTS re-derives it."""
    env = await factory.environment(projects=("admin", s.project))
    admin, mine = SecretsApi(client, admin_token, "admin"), api_of(s)
    key, jwk = unique("shared-key"), unique("other-jwk")
    old, new = pooled_key("rsa2048"), pooled_key("rsa2048")
    await admin.post_ok(KEYS, key_body(key, "RSA", [key_entry(env, old)]))
    try:
        await mine.post_ok(
            "jwks",
            {
                "name": jwk,
                "description": "public JWK of an admin key",
                "keyName": key,
                "environmentName": env,
                "useType": "SIGNATURE",
                "algorithm": "RS256",
            },
            sub="parse-from-key",
        )
        everywhere = "updateReferencedJwks=true&updateScope=ALL_PROJECTS"
        await admin.put_ok(KEYS, key, key_body(key, "RSA", [key_entry(env, new)]), everywhere)
        assert (await mine.jwk(jwk))["jwk"]["n"] == jwcrypto_public(new)["n"]

        query = f"version=1&updateReferencedJwks=true&updateScope={scope}"
        r = await rollback(client, admin_token, "admin", KEYS, key, query)
        assert r.status_code == 200, r.text
        after = await mine.jwk(jwk)
        if scope == "ALL_PROJECTS":
            assert after["sourceId"] == key
            assert after["jwk"]["n"] == jwcrypto_public(old)["n"]
        else:
            assert after["sourceId"] is None
            assert after["jwk"]["n"] == jwcrypto_public(new)["n"]
        held = json.loads((await gateway_holds(client, admin_token, env))[("jwk", s.project, jwk)])
        assert held["n"] == after["jwk"]["n"]
    finally:
        # The admin project is shared by every test: leave it as it was.
        await admin.delete(KEYS, key)


# --- keystores ------------------------------------------------------------------------------


def p12(cn: str, password: str) -> tuple[bytes, certs.Issued]:
    issued = certs.make_cert(certs.name(("COMMON_NAME", cn)), pooled_key("rsa2048"))
    data = pkcs12.serialize_key_and_certificates(
        b"signer",
        issued.key,  # type: ignore[arg-type]
        issued.cert,
        None,
        BestAvailableEncryption(password.encode()),
    )
    return data, issued


def store_entry(env: str, data: bytes, password: str) -> dict[str, Any]:
    return {"environmentName": env, "type": "PKCS12", "file": b64(data), "password": password}


def store_body(name: str, entries: list[dict[str, Any]], description: str) -> dict[str, Any]:
    return {"name": name, "description": description, "keyStoreEnvironmentList": entries}


def store_artifact(data: bytes, password: str) -> bytes:
    doc = {"type": "PKCS12", "file": b64(data), "password": password}
    return json.dumps(doc, sort_keys=True).encode("utf-8")


def password() -> str:
    return "pw-" + os.urandom(6).hex()


async def test_keystore_rollback_restores_the_old_store(s: Setting) -> None:
    api = api_of(s)
    name = unique("ks")
    old_pw, new_pw = password(), password()
    (old, old_cert), (new, _) = p12("old.example", old_pw), p12("new.example", new_pw)
    await api.post_ok(
        KEYSTORES,
        store_body(
            name, [store_entry(s.envs[0], old, old_pw), store_entry(s.envs[1], old, old_pw)], "v1"
        ),
    )
    started = now()
    await api.put_ok(KEYSTORES, name, store_body(name, [store_entry(s.envs[0], new, new_pw)], "v2"))
    finished = now()

    r = await list_versions(s.client, s.admin_token, s.project, KEYSTORES, name)
    assert r.status_code == 200, r.text
    listed = r.json()["resultList"]
    version_env = {
        "sha256Fingerprint": sha256_hex(old),
        "type": "PKCS12",
        "subjectDn": "CN=old.example",
        "notAfter": format_instant(old_cert.cert.not_valid_after_utc),
    }
    assert r.json() == {
        "success": True,
        "resultList": [
            {
                "version": 1,
                "createdAt": served_instant(listed[0], started, finished),
                "createdBy": "admin",
                "reason": "REPLACED",
                "description": "v1",
                "environmentList": [
                    {"environmentName": s.envs[0], **version_env},
                    {"environmentName": s.envs[1], **version_env},
                ],
            }
        ],
        "resultCount": 1,
    }

    r = await rollback(s.client, s.admin_token, s.project, KEYSTORES, name, "version=1")
    assert r.status_code == 200, r.text
    assert r.json()["deploymentResult"]["success"] is True
    item = await api.one(KEYSTORES, name)
    assert item["description"] == "v1"
    shown = item["keyStoreEnvironmentList"]
    assert [(e["environmentName"], e["type"], e["file"]) for e in shown] == [
        (s.envs[0], "PKCS12", b64(old)),
        (s.envs[1], "PKCS12", b64(old)),
    ]
    assert [e["alias"] for e in shown[0]["entries"]] == ["signer"]
    for env in s.envs:
        held = await gateway_holds(s.client, s.admin_token, env)
        assert held[("keystore", s.project, name)] == store_artifact(old, old_pw)


@pytest.mark.parametrize("follow", [True, False])
async def test_keystore_rollback_and_the_jwks_made_from_it(s: Setting, follow: bool) -> None:
    api = api_of(s)
    name, jwk = unique("ks"), unique("jwk")
    old_pw, new_pw = password(), password()
    (old, old_issued), (new, new_issued) = p12("old.example", old_pw), p12("new.example", new_pw)
    await api.post_ok(KEYSTORES, store_body(name, [store_entry(s.envs[0], old, old_pw)], "v1"))
    await api.post_ok(
        "jwks",
        {
            "name": jwk,
            "description": "signer",
            "keyStoreName": name,
            "environmentName": s.envs[0],
            "aliasName": "signer",
            "useType": "SIGNATURE",
            "algorithm": "RS256",
        },
        sub="parse-from-keystore",
    )
    await api.put_ok(
        KEYSTORES, name, store_body(name, [store_entry(s.envs[0], new, new_pw)], "v2"), SAME_PROJECT
    )
    newer = await api.jwk(jwk)
    assert newer["jwk"]["d"] == jwcrypto_private(new_issued.key)["d"]

    query = "version=1" + (f"&{SAME_PROJECT}" if follow else "")
    r = await rollback(s.client, s.admin_token, s.project, KEYSTORES, name, query)
    assert r.status_code == 200, r.text
    after = await api.jwk(jwk)
    issued = old_issued if follow else new_issued
    assert after["jwk"]["d"] == jwcrypto_private(issued.key)["d"]
    assert after["jwk"]["x5c"] == [b64(issued.der)]
    assert after["sourceId"] == (name if follow else None)
    held = json.loads(
        (await gateway_holds(s.client, s.admin_token, s.envs[0]))[("jwk", s.project, jwk)]
    )
    assert held["d"] == jwcrypto_private(issued.key)["d"]


async def test_keystore_rollback_keeps_the_key_password_and_a_passwordless_store(
    s: Setting,
) -> None:
    """keytool's -keypass apart from -storepass, and a trust store sent without a password:
    both come back exactly, deployed as they were, and neither password is ever shown."""
    java = java_stores()
    api = api_of(s)
    name = unique("ks")
    keypass = {**store_entry(s.envs[0], java.jks_keypass.data, java.jks_keypass.password)}
    keypass |= {"type": "JKS", "keyPassword": java.key_password}
    trust = {"environmentName": s.envs[1], "type": "JKS", "file": b64(java.jks_trust.data)}
    await api.post_ok(KEYSTORES, store_body(name, [keypass, trust], "java"))
    pw = password()
    other, _ = p12("other.example", pw)
    await api.put_ok(KEYSTORES, name, store_body(name, [store_entry(s.envs[0], other, pw)], "x"))

    listed = await list_versions(s.client, s.admin_token, s.project, KEYSTORES, name)
    r = await rollback(s.client, s.admin_token, s.project, KEYSTORES, name, "version=1")
    assert r.status_code == 200, r.text
    got = await api.get(KEYSTORES, name)
    for text in (listed.text, r.text, got.text):
        assert java.key_password not in text and java.jks_keypass.password not in text
        assert "keyPassword" not in text and "password" not in text.lower()
    shown = got.json()["resultList"][0]["keyStoreEnvironmentList"]
    assert [(e["environmentName"], e["file"]) for e in shown] == [
        (s.envs[0], b64(java.jks_keypass.data)),
        (s.envs[1], b64(java.jks_trust.data)),
    ]
    held = (await gateway_holds(s.client, s.admin_token, s.envs[0]))[("keystore", s.project, name)]
    assert json.loads(held) == {
        "type": "JKS",
        "file": b64(java.jks_keypass.data),
        "password": java.jks_keypass.password,
        "keyPassword": java.key_password,
    }
    held = (await gateway_holds(s.client, s.admin_token, s.envs[1]))[("keystore", s.project, name)]
    assert json.loads(held) == {"type": "JKS", "file": b64(java.jks_trust.data), "password": None}
    # The restored key password still opens the key.
    await api.post_ok(
        "jwks",
        {
            "name": unique("jwk"),
            "description": "signer",
            "keyStoreName": name,
            "environmentName": s.envs[0],
            "aliasName": "signer",
            "useType": "SIGNATURE",
            "algorithm": "ES256",
        },
        sub="parse-from-keystore",
    )


# --- delete and re-create -------------------------------------------------------------------


async def test_rollback_of_deleted_keys_and_keystores_recreates_them(s: Setting) -> None:
    api = api_of(s)
    key_name, store_name = unique("key"), unique("ks")
    key = pooled_key("p256")
    pw = password()
    data, _ = p12("gone.example", pw)
    await api.post_ok(KEYS, key_body(key_name, "EC", [key_entry(s.envs[0], key)], "gone key"))
    await api.post_ok(
        KEYSTORES, store_body(store_name, [store_entry(s.envs[1], data, pw)], "gone store")
    )
    for kind, name in ((KEYS, key_name), (KEYSTORES, store_name)):
        assert (await api.delete(kind, name)).status_code == 200
    assert ("key", s.project, key_name) not in await gateway_holds(
        s.client, s.admin_token, s.envs[0]
    )
    for kind, name, label in ((KEYS, key_name, "Key"), (KEYSTORES, store_name, "Keystore")):
        (v1,) = await versions_ok(s.client, s.admin_token, s.project, kind, name)
        assert (v1["version"], v1["reason"]) == (1, "DELETED")
        r = await api.get(kind, name)
        assert r.status_code == 400
        assert r.json() == bad_request(f"{label} (name: {name}) is not found!")
        r = await rollback(s.client, s.admin_token, s.project, kind, name, "version=1")
        assert r.status_code == 200, r.text

    assert await served_keys(api, key_name) == {s.envs[0]: key_material(key)}
    assert (await api.one(KEYS, key_name))["description"] == "gone key"
    store = await api.one(KEYSTORES, store_name)
    assert store["description"] == "gone store"
    assert [e["file"] for e in store["keyStoreEnvironmentList"]] == [b64(data)]
    held_key = await gateway_holds(s.client, s.admin_token, s.envs[0])
    assert held_key[("key", s.project, key_name)] == key_artifact(key)
    held_store = await gateway_holds(s.client, s.admin_token, s.envs[1])
    assert held_store[("keystore", s.project, store_name)] == store_artifact(data, pw)


# --- secrets --------------------------------------------------------------------------------


def _pem_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


async def test_no_secret_in_listings_answers_or_logs(
    s: Setting, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = api_of(s)
    key_name, secret_name, store_name = unique("key"), unique("sec"), unique("ks")
    key, secret = pooled_key("rsa2048"), os.urandom(32)
    pw = password()
    data, _ = p12("secret.example", pw)
    await api.post_ok(KEYS, key_body(key_name, "RSA", [key_entry(s.envs[0], key, form="pem")]))
    await api.post_ok(KEYS, key_body(secret_name, "SYMMETRIC", [key_entry(s.envs[0], secret)]))
    await api.post_ok(KEYSTORES, store_body(store_name, [store_entry(s.envs[0], data, pw)], "s"))
    await api.put_ok(
        KEYS, key_name, key_body(key_name, "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))])
    )
    await api.delete(KEYS, secret_name)
    await api.put_ok(
        KEYSTORES,
        store_name,
        store_body(store_name, [store_entry(s.envs[0], *_other_store())], "t"),
    )

    private = jwcrypto_private(key)
    secrets = [
        *_pem_lines(pkcs8_pem(key)),
        b64(pkcs8_der(key)),
        private["d"],
        private["p"],
        b64(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"=").decode(),
        secret.hex(),
        b64(data),
        b64(data)[100:160],
        pw,
    ]
    texts = []
    for kind, name in ((KEYS, key_name), (KEYS, secret_name), (KEYSTORES, store_name)):
        r = await list_versions(s.client, s.admin_token, s.project, kind, name)
        assert r.status_code == 200, r.text
        texts.append(r.text)
        for query in ("version=9", "version=abc", "version="):
            refused = await rollback(s.client, s.admin_token, s.project, kind, name, query)
            assert refused.status_code == 400, refused.text
            texts.append(refused.text)
        done = await rollback(s.client, s.admin_token, s.project, kind, name, "version=1")
        assert done.status_code == 200, done.text
        texts.append(done.text)
        texts.append((await list_versions(s.client, s.admin_token, s.project, kind, name)).text)
    texts.append(caplog.text)
    for text in texts:
        for value in secrets:
            assert value not in text
    # ... and yet the rollbacks did bring the secrets back.
    assert await served_keys(api, secret_name) == {s.envs[0]: (None, b64(secret))}
    shown = (await api.one(KEYSTORES, store_name))["keyStoreEnvironmentList"]
    assert [e["file"] for e in shown] == [b64(data)]


def _other_store() -> tuple[bytes, str]:
    pw = password()
    return p12("other.example", pw)[0], pw
