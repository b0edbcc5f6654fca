"""Keystores as Java's tools make them, and what one keystore request may cost (issue 8).

keytool's -keypass apart from -storepass, JCEKS stores, trust stores sent without a
password (items 9); environments resolved before parsing, one parse per distinct file
(item 2). The stall itself is measured against a real server in tests/e2e.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio

from keyops.domain import keystore_parsing
from tests.api.test_keystores import KEYSTORES, PASSWORD_REASON, api_of, store_body, store_entry
from tests.conftest import Factory, unique
from tests.support.certificates import Setting, new_setting
from tests.support.keysecrets import b64, bad_request
from tests.support.keystores import JavaStores, java_stores

JWKS = "jwks"


@pytest.fixture(scope="module")
def java() -> JavaStores:
    return java_stores()


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory, envs=2)


def jwk_body(name: str, keystore: str, env: str, alias: str, alg: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"alias {alias}",
        "keyStoreName": keystore,
        "environmentName": env,
        "aliasName": alias,
        "useType": "SIGNATURE",
        "algorithm": alg,
    }


async def shown_entries(s: Setting, name: str) -> list[tuple[str, str]]:
    r = await api_of(s).get(KEYSTORES, name)
    assert r.status_code == 200, r.text
    (row,) = r.json()["resultList"][0]["keyStoreEnvironmentList"]
    return [(e["alias"], e["kind"]) for e in row["entries"]]


async def test_key_password_apart_from_the_store_password(s: Setting, java: JavaStores) -> None:
    api = api_of(s)
    store = java.jks_keypass
    name = unique("ks")
    r = await api.post(KEYSTORES, store_body(name, [store_entry(s.envs[0], store)]))
    assert r.status_code == 400
    assert r.json() == bad_request(
        f"Key password is incorrect for alias (signer)! (environment: {s.envs[0]})"
    )
    entry = store_entry(s.envs[0], store, keyPassword=java.key_password)
    await api.post_ok(KEYSTORES, store_body(name, [entry]))
    assert await shown_entries(s, name) == [("signer", "PRIVATE_KEY")]
    listed = await api.list_response(KEYSTORES)
    got = await api.get(KEYSTORES, name)
    for text in (listed.text, got.text):
        assert java.key_password not in text and store.password not in text
        assert "keyPassword" not in text
    # The stored key password opens the key again when a JWK is derived from it.
    await api.post_ok(
        JWKS, jwk_body("kp", name, s.envs[0], "signer", "ES256"), sub="parse-from-keystore"
    )
    jwk = await api.jwk("kp")
    assert jwk["jwk"]["kty"] == "EC" and "d" in jwk["jwk"]
    # A wrong key password on update is refused naming the alias.
    wrong = store_entry(s.envs[0], store, keyPassword="not-it")
    r = await api.put(KEYSTORES, name, store_body(name, [wrong]))
    assert r.status_code == 400
    assert r.json() == bad_request(
        f"Key password is incorrect for alias (signer)! (environment: {s.envs[0]})"
    )


async def test_jceks_stores(s: Setting, java: JavaStores) -> None:
    api = api_of(s)
    name = unique("ks")
    await api.post_ok(KEYSTORES, store_body(name, [store_entry(s.envs[0], java.jceks)]))
    assert await shown_entries(s, name) == [
        ("aes-key", "SECRET_KEY"),
        ("signer", "PRIVATE_KEY"),
        ("trusted-ca", "TRUSTED_CERTIFICATE"),
    ]
    got = await api.get(KEYSTORES, name)
    assert got.json()["resultList"][0]["keyStoreEnvironmentList"][0]["type"] == "JCEKS"
    await api.post_ok(
        JWKS, jwk_body("jceks-ec", name, s.envs[0], "signer", "ES256"), sub="parse-from-keystore"
    )
    assert (await api.jwk("jceks-ec"))["jwk"]["crv"] == "P-256"
    r = await api.post(
        KEYSTORES, store_body(unique("ks"), [store_entry(s.envs[0], java.jceks, password="no")])
    )
    assert r.json() == bad_request(PASSWORD_REASON.format(e=s.envs[0]))


async def test_a_trust_store_may_come_without_a_password(s: Setting, java: JavaStores) -> None:
    api = api_of(s)
    name = unique("ks")
    entries = [
        store_entry(s.envs[0], java.jks_trust, password=None),
        store_entry(s.envs[1], java.p12_trust_clear, password=None),
    ]
    await api.post_ok(KEYSTORES, store_body(name, entries))
    r = await api.get(KEYSTORES, name)
    rows = r.json()["resultList"][0]["keyStoreEnvironmentList"]
    assert [[e["kind"] for e in row["entries"]] for row in rows] == [
        ["TRUSTED_CERTIFICATE"],
        ["TRUSTED_CERTIFICATE"],
    ]
    await api.post_ok(
        JWKS, jwk_body("trust", name, s.envs[1], "trusted-ca", "ES256"), sub="parse-from-keystore"
    )
    assert "d" not in (await api.jwk("trust"))["jwk"]
    r = await api.post(
        KEYSTORES,
        store_body(unique("ks"), [store_entry(s.envs[0], java.p12_trust, password=None)]),
    )
    assert r.json() == bad_request(
        "password value can not be empty: the keystore file has encrypted content!"
        f" (environment: {s.envs[0]})"
    )


async def test_environments_are_resolved_before_any_parsing(
    s: Setting, java: JavaStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed a keystore before resolving the environments")

    monkeypatch.setattr(keystore_parsing, "parse_keystore", no_parsing)
    made_up = [f"no-such-env-{i}" for i in range(20)]
    file = b64(java.jceks.data)
    body = store_body(
        unique("ks"),
        [store_entry(s.envs[0], java.jceks)]
        + [store_entry(env, java.jceks, file=file, password="wrong") for env in made_up],
    )
    r = await api_of(s).post(KEYSTORES, body)
    assert r.status_code == 400
    assert r.json() == bad_request(
        f"Environment ({', '.join(made_up)}) is not found or user does not have privilege"
        " to access it!"
    )


async def test_the_same_file_is_parsed_once_per_request(
    s: Setting, java: JavaStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = keystore_parsing.parse_keystore

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(keystore_parsing, "parse_keystore", counting)
    name = unique("ks")
    same = [store_entry(env, java.jceks) for env in s.envs]
    await api_of(s).post_ok(KEYSTORES, store_body(name, same))
    assert calls == ["JCEKS"]
    calls.clear()
    other = [store_entry(s.envs[0], java.jceks), store_entry(s.envs[1], java.jks_trust)]
    await api_of(s).put_ok(KEYSTORES, name, store_body(name, other))
    assert calls == ["JCEKS", "JKS"]
