"""Keystores: create, list, get, update, delete, and the JWKs derived from their aliases.

Pages: create-keystore.md, list-keystores.md, get-keystore.md, update-keystore.md,
delete-keystore.md; decisions 4, 5, 6 and 10. The keystores are made at test time by
Java's keytool (JKS and PKCS12) and by ``openssl pkcs12 -export``; what they hold is
read back independently (keytool's PKCS#12 export, read by pyca/cryptography).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from tests.conftest import Factory, unique
from tests.crypto import certs
from tests.support.certificates import Setting, member, new_setting
from tests.support.java_dn import java_dns
from tests.support.keysecrets import (
    SecretsApi,
    b64,
    bad_request,
    env_results,
    held,
    jwcrypto_private,
    jwcrypto_public,
    project_not_found,
    snapshot,
)
from tests.support.keystores import BuiltStore, Stores, keystores
from tests.support.messages import DEPLOYED, UNDEPLOYED

KEYSTORES = "keystores"
FORBIDDEN = {
    "error": "forbidden",
    "error_description": "You do not have permission to perform this action:"
    " it needs the role ROLE_DEPLOY_UNDEPLOY_PROXIES",
}
PASSWORD_REASON = "Keystore password is incorrect or the file is corrupt! (environment: {e})"


@pytest.fixture(scope="module")
def stores() -> Stores:
    return keystores()


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory, envs=2)


def api_of(s: Setting, token: str | None = None) -> SecretsApi:
    return SecretsApi(s.client, token or s.admin_token, s.project)


async def state(s: Setting) -> dict[str, Any]:
    return await snapshot(api_of(s), s.admin_token, s.envs)


def store_entry(env: str, store: BuiltStore, **override: Any) -> dict[str, Any]:
    entry = {
        "environmentName": env,
        "type": store.type,
        "file": b64(store.data),
        "password": store.password,
    }
    entry.update(override)
    return {k: v for k, v in entry.items() if v is not None}


def store_body(
    name: str | None, entries: list[dict[str, Any]], description: str = "a keystore"
) -> dict[str, Any]:
    return {"name": name, "description": description, "keyStoreEnvironmentList": entries}


def check_entries(shown: list[dict[str, Any]], store: BuiltStore) -> None:
    """The entries a keystore environment shows: alias, kind and certificate summary."""
    assert [e["alias"] for e in shown] == sorted(store.entries)
    for item in shown:
        expected = store.entries[item["alias"]]
        assert item["kind"] == expected.kind
        assert item["sha1Thumbprint"] == expected.sha1
        assert item["chainLength"] == expected.chain_length
        cn = expected.cert.subject.rfc4514_string().split(",")[0]
        assert cn in item["subjectDn"]
        assert item["startDate"] == expected.cert.not_valid_before_utc.strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
        assert item["endDate"] == expected.cert.not_valid_after_utc.strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
        # Public facts only: nothing here could open or rebuild a key.
        assert not {"privateKey", "password", "file", "key", "d"} & set(item)


def never_shows_password(text: str, *stores: BuiltStore) -> None:
    for store in stores:
        assert store.password not in text


# --- the documented example -------------------------------------------------------------------


async def test_create_keystore_curl_example(s: Setting, stores: Stores) -> None:
    api = api_of(s)
    body = {
        "name": "my-keystore",
        "description": "Keystore for API security",
        "keyStoreEnvironmentList": [
            {
                "environmentName": s.envs[0],
                "type": "JKS",
                "file": b64(stores.jks_a.data),
                "password": stores.jks_a.password,
            }
        ],
    }
    r = await api.post(KEYSTORES, body)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "deploymentResult": {
            "success": True,
            "message": "Deployment completed successfully",
            "environmentResults": [
                {"environmentName": s.envs[0], "success": True, "message": DEPLOYED}
            ],
        },
    }
    assert (s.project, "my-keystore") in await held(s.client, s.admin_token, s.envs[0], "keystore")
    before = await state(s)
    again = await api.post(KEYSTORES, body)
    assert again.status_code == 400
    assert again.json() == bad_request(
        "Keystore (name: my-keystore) is already exist! Try update operation if want to change"
        " its value."
    )
    assert await state(s) == before


# --- what list and get show ---------------------------------------------------------------------


async def test_entry_dns_are_what_java_prints(s: Setting) -> None:
    ca = certs.make_cert(
        certs.name(
            ("ORGANIZATION_NAME", 'Root; "Quoted" CA'), [("COMMON_NAME", "r"), ("USER_ID", "1")]
        ),
        certs.key("p384"),
        ca=True,
    )
    leaf = certs.make_cert(
        certs.name(("DOMAIN_COMPONENT", "org"), ("COMMON_NAME", "a  b = c")),
        certs.key("p256"),
        issuer=ca,
    )
    password = "dn-pass-" + os.urandom(4).hex()
    data = pkcs12.serialize_key_and_certificates(
        b"leaf",
        leaf.key,  # type: ignore[arg-type]
        leaf.cert,
        [ca.cert],
        BestAvailableEncryption(password.encode()),
    )
    store = BuiltStore("PKCS12", data, password)
    name = unique("ks")
    await api_of(s).post_ok(KEYSTORES, store_body(name, [store_entry(s.envs[0], store)]))
    r = await api_of(s).get(KEYSTORES, name)
    assert r.status_code == 200, r.text
    (shown,) = r.json()["resultList"][0]["keyStoreEnvironmentList"]
    (entry,) = shown["entries"]
    (java,) = java_dns([leaf.der])
    assert not isinstance(java, str), java
    assert java[:2] == ('CN="a  b = c", DC=org', 'CN=r + UID=1, O="Root; \\"Quoted\\" CA"')
    assert (entry["subjectDn"], entry["issuerDn"]) == java[:2]


@pytest.mark.parametrize(
    ("which", "sent_type"),
    [("jks_a", "JKS"), ("keytool_p12", "PKCS12"), ("openssl_p12", "pkcs12")],
)
async def test_list_and_get(s: Setting, stores: Stores, which: str, sent_type: str) -> None:
    store: BuiltStore = getattr(stores, which)
    other = stores.openssl_p12 if which != "openssl_p12" else stores.jks_b
    api = api_of(s)
    name = unique("ks")
    answer = await api.post_ok(
        KEYSTORES,
        store_body(
            name,
            [store_entry(s.envs[0], store, type=sent_type), store_entry(s.envs[1], other)],
        ),
    )
    assert answer["deploymentResult"]["success"] is True
    assert set(env_results(answer)) == set(s.envs)

    r = await api.get(KEYSTORES, name)
    assert r.status_code == 200, r.text
    never_shows_password(r.text, store, other)
    (item,) = r.json()["resultList"]
    assert item["name"] == name and item["projectId"] == s.project
    assert item["description"] == "a keystore"
    first, second = item["keyStoreEnvironmentList"]
    for shown, env, built in ((first, s.envs[0], store), (second, s.envs[1], other)):
        assert shown["environmentName"] == env
        assert shown["type"] == built.type
        assert base64.b64decode(shown["file"]) == built.data
        assert "password" not in shown
        check_entries(shown["entries"], built)

    listed = await api.list_response(KEYSTORES)
    assert listed.status_code == 200
    never_shows_password(listed.text, store, other)
    assert [k for k in listed.json()["resultList"] if k["name"] == name] == [item]
    for env in s.envs:
        assert (s.project, name) in await held(s.client, s.admin_token, env, "keystore")


# --- refusals -------------------------------------------------------------------------------------


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


REFUSALS: dict[str, tuple[Any, str]] = {
    "wrong-password-jks": (
        lambda st, e: [store_entry(e[0], st.jks_a, password="not-the-password")],
        PASSWORD_REASON,
    ),
    "wrong-password-pkcs12": (
        lambda st, e: [store_entry(e[0], st.openssl_p12, password="not-the-password")],
        PASSWORD_REASON,
    ),
    "wrong-password-keytool-pkcs12": (
        lambda st, e: [store_entry(e[0], st.keytool_p12, password=st.jks_a.password)],
        PASSWORD_REASON,
    ),
    "corrupt-jks": (
        lambda st, e: [store_entry(e[0], st.jks_a, file=b64(_flip_middle(st.jks_a.data)))],
        PASSWORD_REASON,
    ),
    "truncated-jks": (
        lambda st, e: [store_entry(e[0], st.jks_a, file=b64(st.jks_a.data[:100]))],
        "Keystore file is not a valid JKS keystore! (environment: {e})",
    ),
    "garbage-as-pkcs12": (
        lambda st, e: [store_entry(e[0], st.openssl_p12, file=b64(os.urandom(600)))],
        "Keystore file is not a valid PKCS12 keystore! (environment: {e})",
    ),
    "truncated-pkcs12": (
        lambda st, e: [store_entry(e[0], st.openssl_p12, file=b64(st.openssl_p12.data[:-40]))],
        "Keystore file is not a valid PKCS12 keystore! (environment: {e})",
    ),
    "jks-said-pkcs12": (
        lambda st, e: [store_entry(e[0], st.jks_a, type="PKCS12")],
        "Keystore file is a JKS keystore, but type is PKCS12! (environment: {e})",
    ),
    "pkcs12-said-jks": (
        lambda st, e: [store_entry(e[0], st.keytool_p12, type="JKS")],
        "Keystore file is a PKCS12 keystore, but type is JKS! (environment: {e})",
    ),
    "unknown-type": (
        lambda st, e: [store_entry(e[0], st.jks_a, type="BKS")],
        "type (BKS) is not valid! Valid values: JKS, JCEKS, PKCS12, PEM (environment: {e})",
    ),
    "jks-said-jceks": (
        lambda st, e: [store_entry(e[0], st.jks_a, type="JCEKS")],
        "Keystore file is a JKS keystore, but type is JCEKS! (environment: {e})",
    ),
    "no-type": (
        lambda st, e: [store_entry(e[0], st.jks_a, type="")],
        "type value can not be empty! (environment: {e})",
    ),
    "empty-file": (
        lambda st, e: [store_entry(e[0], st.jks_a, file="")],
        "file value can not be empty! (environment: {e})",
    ),
    "file-not-base64": (
        lambda st, e: [store_entry(e[0], st.jks_a, file="this is not base64!")],
        "file is not valid base64! (environment: {e})",
    ),
    "no-password": (
        lambda st, e: [{k: v for k, v in store_entry(e[0], st.jks_a).items() if k != "password"}],
        "password value can not be empty: the keystore holds private or secret keys!"
        " (environment: {e})",
    ),
    "no-password-pkcs12-keys": (
        lambda st, e: [store_entry(e[0], st.keytool_p12, password=None)],
        "password value can not be empty: the keystore file has encrypted content!"
        " (environment: {e})",
    ),
    "key-password-without-password": (
        lambda st, e: [store_entry(e[0], st.jks_a, password=None, keyPassword="k")],
        "password value can not be empty! (environment: {e})",
    ),
    "unknown-environment": (
        lambda st, e: [store_entry("no-such-env", st.jks_a)],
        "Environment (no-such-env) is not found or user does not have privilege to access it!",
    ),
    "duplicate-environment": (
        lambda st, e: [store_entry(e[0], st.jks_a), store_entry(e[0], st.jks_b)],
        "Environment ({e}) is listed more than once in keyStoreEnvironmentList!",
    ),
    "no-environments": (lambda st, e: [], "keyStoreEnvironmentList value can not be empty!"),
    "second-environment-bad": (
        lambda st, e: [
            store_entry(e[1], st.jks_a),
            store_entry(e[0], st.jks_b, password="wrong"),
        ],
        PASSWORD_REASON,
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_create_refused_changes_nothing(s: Setting, stores: Stores, case: str) -> None:
    make, reason = REFUSALS[case]
    api = api_of(s)
    await api.post_ok(KEYSTORES, store_body("existing", [store_entry(s.envs[0], stores.jks_b)]))
    before = await state(s)
    r = await api.post(KEYSTORES, store_body(unique("ks"), make(stores, s.envs)))
    assert r.status_code == 400, r.text
    assert r.json() == bad_request(reason.format(e=s.envs[0]))
    never_shows_password(r.text, stores.jks_a, stores.jks_b, stores.openssl_p12)
    assert await state(s) == before


@pytest.mark.parametrize("name", ["", "  ", None])
async def test_name_is_required(s: Setting, stores: Stores, name: str | None) -> None:
    before = await state(s)
    r = await api_of(s).post(KEYSTORES, store_body(name, [store_entry(s.envs[0], stores.jks_a)]))
    assert r.status_code == 400
    assert r.json() == bad_request("Keystore name can not be empty!")
    assert await state(s) == before


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_not_found(s: Setting, stores: Stores, method: str) -> None:
    api = api_of(s)
    await api.post_ok(KEYSTORES, store_body("present", [store_entry(s.envs[0], stores.jks_b)]))
    before = await state(s)
    r = await s.client.request(
        method,
        api.path(KEYSTORES, "absent"),
        headers=api.headers,
        json=store_body("absent", [store_entry(s.envs[0], stores.jks_a)])
        if method == "PUT"
        else None,
    )
    assert r.status_code == 400
    assert r.json() == bad_request("Keystore (name: absent) is not found!")
    assert await state(s) == before


async def test_other_projects_and_roles(s: Setting, stores: Stores, factory: Factory) -> None:
    api = api_of(s)
    await api.post_ok(KEYSTORES, store_body("ks", [store_entry(s.envs[0], stores.jks_b)]))
    before = await state(s)
    body = store_body("ks2", [store_entry(s.envs[0], stores.jks_a)])
    stranger = api_of(s, (await member(factory, "ROLE_API_SECURITY")).token)
    # ROLE_API_SECURITY alone may read, but a project it is not in does not exist ...
    for r in (await stranger.list_response(KEYSTORES), await stranger.get(KEYSTORES, "ks")):
        assert r.status_code == 404, r.text
        assert r.json() == project_not_found(s.project)
    # ... and changing needs ROLE_DEPLOY_UNDEPLOY_PROXIES as well.
    for r in (
        await stranger.post(KEYSTORES, body),
        await stranger.put(KEYSTORES, "ks", body),
        await stranger.delete(KEYSTORES, "ks"),
    ):
        assert r.status_code == 403 and r.json() == FORBIDDEN
    deployer = await member(factory, "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES")
    outsider = api_of(s, deployer.token)
    for r in (
        await outsider.post(KEYSTORES, body),
        await outsider.put(KEYSTORES, "ks", body),
        await outsider.delete(KEYSTORES, "ks"),
    ):
        assert r.status_code == 404 and r.json() == project_not_found(s.project)
    reader = api_of(s, (await member(factory, "ROLE_API_SECURITY", projects=(s.project,))).token)
    r = await reader.get(KEYSTORES, "ks")
    assert r.status_code == 200
    never_shows_password(r.text, stores.jks_b)
    for r in (
        await reader.post(KEYSTORES, body),
        await reader.put(KEYSTORES, "ks", body),
        await reader.delete(KEYSTORES, "ks"),
    ):
        assert r.status_code == 403 and r.json() == FORBIDDEN
    assert await state(s) == before


# --- JWKs from keystore aliases, and updates ------------------------------------------------------


async def _jwk_from_alias(
    api: SecretsApi, name: str, keystore: str, env: str, alias: str, algorithm: str
) -> None:
    await api.post_ok(
        "jwks",
        {
            "name": name,
            "description": f"alias {alias} of {keystore}",
            "keyStoreName": keystore,
            "environmentName": env,
            "aliasName": alias,
            "useType": "SIGNATURE",
            "algorithm": algorithm,
        },
        sub="parse-from-keystore",
    )


@pytest.mark.parametrize(
    "query",
    [
        "updateReferencedJwks=true&updateScope=SAME_PROJECT",
        "jwkUpdateAction=UPDATE&updateScope=ALL_PROJECTS",
    ],
)
async def test_update_rederives_keystore_jwks(s: Setting, stores: Stores, query: str) -> None:
    api = api_of(s)
    await api.post_ok(KEYSTORES, store_body("ks", [store_entry(s.envs[0], stores.jks_a)]))
    # The alias as it was given to keytool; Java keystores match aliases case-insensitively.
    await _jwk_from_alias(api, "signer-jwk", "ks", s.envs[0], "Signer", "RS256")
    await _jwk_from_alias(api, "trusted-jwk", "ks", s.envs[0], "trusted-ca", "ES384")
    a_key = stores.jks_a.entries["signer"].key
    b_key = stores.jks_b.entries["signer"].key
    assert a_key is not None and b_key is not None
    signer = await api.jwk("signer-jwk")
    assert signer["jwk"]["d"] == jwcrypto_private(a_key)["d"]
    trusted_before = await api.jwk("trusted-jwk")

    answer = await api.put_ok(
        KEYSTORES, "ks", store_body("ks", [store_entry(s.envs[0], stores.jks_b)]), query
    )
    assert env_results(answer)[s.envs[0]]["success"] is True

    signer = await api.jwk("signer-jwk")
    assert signer["sourceId"] == "ks" and signer["sourceType"] == "KEYSTORE"
    expected = jwcrypto_private(b_key)
    for member_name in ("n", "e", "d", "p", "q"):
        assert signer["jwk"][member_name] == expected[member_name]
    assert signer["jwk"]["x5c"] == [b64(stores.jks_b.entries["signer"].cert_der)]
    # The new keystore has no trusted-ca alias: that JWK is detached, material kept.
    trusted = await api.jwk("trusted-jwk")
    assert trusted["sourceId"] is None and trusted["jwk"] == trusted_before["jwk"]
    item = await api.one(KEYSTORES, "ks")
    check_entries(item["keyStoreEnvironmentList"][0]["entries"], stores.jks_b)


async def test_update_nullify_detaches_keystore_jwks(s: Setting, stores: Stores) -> None:
    api = api_of(s)
    await api.post_ok(KEYSTORES, store_body("ks", [store_entry(s.envs[0], stores.jks_a)]))
    await _jwk_from_alias(api, "signer-jwk", "ks", s.envs[0], "signer", "PS256")
    before = await api.jwk("signer-jwk")
    assert before["sourceId"] == "ks"
    await api.put_ok(KEYSTORES, "ks", store_body("ks", [store_entry(s.envs[0], stores.jks_b)]))
    after = await api.jwk("signer-jwk")
    assert after["sourceId"] is None and after["jwk"] == before["jwk"]


async def test_update_replaces_and_renames(s: Setting, stores: Stores) -> None:
    api = api_of(s)
    await api.post_ok(
        KEYSTORES,
        store_body(
            "my-keystore",
            [store_entry(s.envs[0], stores.jks_a), store_entry(s.envs[1], stores.jks_a)],
        ),
    )
    answer = await api.put_ok(
        KEYSTORES,
        "my-keystore",
        store_body(
            "updated-keystore", [store_entry(s.envs[1], stores.openssl_p12)], "Updated keystore"
        ),
        "updateReferencedJwks=true&updateScope=SAME_PROJECT",
    )
    assert answer["deploymentResult"]["success"] is True
    r = await api.get(KEYSTORES, "my-keystore")
    assert r.status_code == 400
    assert r.json() == bad_request("Keystore (name: my-keystore) is not found!")
    item = await api.one(KEYSTORES, "updated-keystore")
    assert item["description"] == "Updated keystore"
    (env,) = item["keyStoreEnvironmentList"]
    assert env["environmentName"] == s.envs[1] and env["type"] == "PKCS12"
    assert base64.b64decode(env["file"]) == stores.openssl_p12.data
    check_entries(env["entries"], stores.openssl_p12)
    assert await held(s.client, s.admin_token, s.envs[0], "keystore") == {}
    assert set(await held(s.client, s.admin_token, s.envs[1], "keystore")) == {
        (s.project, "updated-keystore")
    }


async def test_refused_update_changes_nothing(s: Setting, stores: Stores) -> None:
    api = api_of(s)
    await api.post_ok(KEYSTORES, store_body("ks", [store_entry(s.envs[0], stores.jks_a)]))
    await api.post_ok(KEYSTORES, store_body("other", [store_entry(s.envs[0], stores.jks_b)]))
    await _jwk_from_alias(api, "j", "ks", s.envs[0], "signer", "RS256")
    before = await state(s)
    for body, query, reason in (
        (
            store_body("ks", [store_entry(s.envs[0], stores.jks_b, password="wrong")]),
            "",
            PASSWORD_REASON.format(e=s.envs[0]),
        ),
        (
            store_body("other", [store_entry(s.envs[0], stores.jks_b)]),
            "",
            "Keystore (name: other) is already exist!",
        ),
        (
            # The alias now holds an EC key: an RS256 JWK can not follow.
            store_body("ks", [store_entry(s.envs[0], stores.jks_ec)]),
            "updateReferencedJwks=true&updateScope=SAME_PROJECT",
            None,
        ),
    ):
        r = await api.put(KEYSTORES, "ks", body, query)
        assert r.status_code == 400, r.text
        if reason is not None:
            assert r.json() == bad_request(reason)
        else:
            assert r.json()["error_description"].startswith(
                f"JWK (name: j, project: {s.project}) can not be re-derived from the new material"
            )
        never_shows_password(r.text, stores.jks_a, stores.jks_b)
    assert await state(s) == before


async def test_jwk_from_a_keytool_pkcs12_alias(s: Setting, stores: Stores) -> None:
    """The EC key keytool generated into a PKCS12 store becomes a private EC JWK."""
    api = api_of(s)
    await api.post_ok(KEYSTORES, store_body("ks", [store_entry(s.envs[0], stores.keytool_p12)]))
    await _jwk_from_alias(api, "ec", "ks", s.envs[0], "EC-Signer", "ES256")
    ec_key = stores.keytool_p12.entries["ec-signer"].key
    assert ec_key is not None
    got = await api.jwk("ec")
    assert {k: got["jwk"][k] for k in ("crv", "x", "y", "d")} == {
        k: jwcrypto_private(ec_key)[k] for k in ("crv", "x", "y", "d")
    }
    assert {k: got["ec"][k] for k in ("x", "y")} == {
        k: jwcrypto_public(ec_key)[k] for k in ("x", "y")
    }


# --- delete ---------------------------------------------------------------------------------------


async def test_delete_undeploys_and_detaches_jwks(s: Setting, stores: Stores) -> None:
    api = api_of(s)
    await api.post_ok(
        KEYSTORES,
        store_body(
            "ks", [store_entry(s.envs[0], stores.jks_a), store_entry(s.envs[1], stores.jks_b)]
        ),
    )
    await api.post_ok(KEYSTORES, store_body("keep", [store_entry(s.envs[0], stores.openssl_p12)]))
    await _jwk_from_alias(api, "j", "ks", s.envs[1], "signer", "RS256")
    before = await api.jwk("j")

    r = await api.delete(KEYSTORES, "ks")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["success"] is True
    assert answer["deploymentResult"]["message"] == "Undeployment completed successfully"
    for env in s.envs:
        assert env_results(answer)[env] == {
            "environmentName": env,
            "success": True,
            "message": UNDEPLOYED,
        }
        assert (s.project, "ks") not in await held(s.client, s.admin_token, env, "keystore")
    assert (s.project, "keep") in await held(s.client, s.admin_token, s.envs[0], "keystore")
    assert [k["name"] for k in await api.list_ok(KEYSTORES)] == ["keep"]
    r = await api.get(KEYSTORES, "ks")
    assert r.status_code == 400
    assert r.json() == bad_request("Keystore (name: ks) is not found!")
    after = await api.jwk("j")
    assert after["sourceId"] is None and after["jwk"] == before["jwk"]
