"""JWKs from every source but certificates: COPY_PASTE, PUBLIC_KEY/PRIVATE_KEY, KEYSTORE,
URL and GENERATE; list, get and update JWK.

Pages: create-jwk.md, parse-jwk-from-clipboard.md, parse-jwk-from-key.md,
parse-jwk-from-keystore.md, parse-jwk-from-url.md, generate-jwk.md, get-jwk.md,
list-jwks.md, update-jwk.md; decision 9 (list without key material). URL sources are
served by a real HTTP server on loopback (the test Settings allow 127.0.0.0/8; a second
app without that allow list shows the refusal). Every JWK is put to work: joserfc signs
or encrypts with what GET returns, jwcrypto (an implementation keyops does not use)
verifies or decrypts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from keyops.api.app import create_app
from keyops.config import Settings
from tests.conftest import Factory, unique
from tests.crypto import certs
from tests.support.certificates import Setting, new_setting, pooled_key
from tests.support.jwks_server import JwksServer, jwks_server
from tests.support.keysecrets import (
    MATERIAL_FIELDS,
    PAYLOAD,
    PRIVATE_MEMBERS,
    SecretsApi,
    b64url,
    bad_request,
    encrypt_to,
    held,
    jwcrypto_decrypts,
    jwcrypto_private,
    jwcrypto_public,
    jwcrypto_verifies,
    key_body,
    key_entry,
    public_part,
    rfc_key,
    sign_with,
    sign_with_pem,
    snapshot,
    thumbprint,
    use_the_jwk,
)
from tests.support.keystores import Stores, keystores
from tests.support.messages import DEPLOYED
from tests.support.rfc_examples import (
    RFC7517_A1,
    RFC7517_A2,
    RFC7517_A3,
    RFC7517_A3_HMAC_KID,
    RFC7638_THUMBPRINT,
)

pytestmark = pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")

JWKS = "jwks"
MATERIAL = {"RSA": "rsa", "EC": "ec", "OCT": "oct", "OKP": "okp"}
# RFC 7638 section 3.1: the thumbprint of the RSA key of RFC 7517 appendix A.1.
# RFC 7515 appendix A.1: a JWS made with the HMAC key of RFC 7517 appendix A.3.
RFC7515_A1_JWS = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory, envs=1)


@pytest.fixture
def api(s: Setting) -> SecretsApi:
    return SecretsApi(s.client, s.admin_token, s.project)


@pytest.fixture(scope="module")
def server() -> Iterator[JwksServer]:
    with jwks_server() as running:
        yield running


@pytest.fixture(scope="module")
def stores() -> Stores:
    return keystores()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def strict_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on the same database whose settings allow no private addresses."""
    strict = settings.model_copy(update={"url_allow_list": ""})
    app: FastAPI = create_app(strict, demo=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://strict.test") as c:
            yield c


async def state(s: Setting) -> dict[str, Any]:
    return await snapshot(SecretsApi(s.client, s.admin_token, s.project), s.admin_token, s.envs)


def check_shape(got: dict[str, Any], name: str, project: str, source_type: str) -> None:
    """The JWK object of get-jwk.md; its material under rsa/ec/oct/okp and in ``jwk``."""
    assert got["name"] == name and got["projectId"] == project
    assert got["sourceType"] == source_type
    jwk = got["jwk"]
    label = {"RSA": "RSA", "EC": "EC", "oct": "OCT", "OKP": "OKP"}[jwk["kty"]]
    assert got["type"] == label
    assert got["kid"] == jwk.get("kid")
    material = got[MATERIAL[label]]
    assert {"kty": jwk["kty"], **material} | ({"kid": jwk["kid"]} if "kid" in jwk else {}) == jwk
    assert not (MATERIAL_FIELDS - {MATERIAL[label], "jwk"}) & set(got)


def check_listed_without_material(
    listed_text: str, listed: list[dict[str, Any]], full: Any
) -> None:
    """List JWKs leaves the key material out (list-jwks.md, decision 9)."""
    for item in listed:
        assert not MATERIAL_FIELDS & set(item), item
    for jwk in full:
        for member, value in jwk.items():
            if member in PRIVATE_MEMBERS or (jwk["kty"] == "oct" and member == "k"):
                assert str(value) not in listed_text


# --- COPY_PASTE ----------------------------------------------------------------------------------


def paste_body(name: str, text: str, kid: str | None, *, create: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "description": "pasted", "jwkStr": text}
    if kid is not None:
        body["kid"] = kid
    if create:
        body["sourceType"] = "COPY_PASTE"
    return body


async def paste(api: SecretsApi, name: str, text: str, kid: str | None, *, create: bool) -> Any:
    if create:
        return await api.post(JWKS, paste_body(name, text, kid, create=True))
    return await api.post(
        JWKS, paste_body(name, text, kid, create=False), sub="parse-from-clipboard"
    )


@pytest.mark.parametrize("create", [True, False], ids=["create-jwk", "parse-from-clipboard"])
@pytest.mark.parametrize(
    ("text", "kid"),
    [
        (RFC7517_A1, "1"),
        (RFC7517_A1, "2011-04-29"),
        (RFC7517_A2, "1"),
        (RFC7517_A2, "2011-04-29"),
        (RFC7517_A3, RFC7517_A3_HMAC_KID),
    ],
    ids=["A1-ec", "A1-rsa", "A2-ec", "A2-rsa", "A3-hmac"],
)
async def test_copy_paste_rfc7517_examples(
    s: Setting, api: SecretsApi, text: str, kid: str, create: bool
) -> None:
    name = unique("pasted")
    r = await paste(api, name, text, kid, create=create)
    assert r.status_code == 200, r.text
    results = {e["environmentName"]: e for e in r.json()["deploymentResult"]["environmentResults"]}
    assert results[s.envs[0]]["success"] is True
    expected = rfc_key(text, kid)
    got = await api.jwk(name)
    check_shape(got, name, s.project, "COPY_PASTE")
    assert got["jwk"] == expected  # exactly as pasted, private members included
    assert got["kid"] == kid and got["sourceId"] is None and got["sourceUrl"] is None
    assert (s.project, name) in await held(s.client, s.admin_token, s.envs[0], "jwk")

    jwk = got["jwk"]
    if kid == RFC7517_A3_HMAC_KID:
        # The JWS of RFC 7515 appendix A.1 verifies with the key GET returns.
        token = jwcrypto_jws.JWS()
        token.deserialize(RFC7515_A1_JWS)
        token.verify(jwcrypto_jwk.JWK(**jwk), alg="HS256")
        assert jwcrypto_verifies(sign_with(jwk, "HS256"), jwk, "HS256")
    elif "d" in jwk and jwk["kty"] == "RSA":
        # The private key signs; the public key of appendix A.1 verifies.
        assert jwcrypto_verifies(sign_with(jwk), rfc_key(RFC7517_A1, kid), "RS256")
    elif "d" in jwk:
        # Encrypted to the public key of appendix A.1, decrypted with what GET returned.
        token = encrypt_to({**rfc_key(RFC7517_A1, kid), "alg": "ECDH-ES+A128KW"})
        assert jwcrypto_decrypts(token, jwk) == PAYLOAD
    else:
        assert not PRIVATE_MEMBERS & set(jwk)


async def test_copy_paste_single_jwk_without_kid_gets_its_thumbprint(api: SecretsApi) -> None:
    single = {k: v for k, v in rfc_key(RFC7517_A1, "2011-04-29").items() if k != "kid"}
    await api.post_ok(
        JWKS,
        paste_body("single", json.dumps(single), None, create=False),
        sub="parse-from-clipboard",
    )
    got = await api.jwk("single")
    assert got["kid"] == got["jwk"]["kid"] == RFC7638_THUMBPRINT
    assert got["jwk"]["n"] == single["n"]


TWO_KEYS_NO_KID = json.dumps(
    {
        "keys": [
            {"kty": "oct", "k": b64url(b"0123456789abcdef0123456789abcdef")},
            {"kty": "oct", "k": b64url(b"fedcba9876543210fedcba9876543210")},
        ]
    }
)

PASTE_REFUSALS: dict[str, tuple[str, str | None, str]] = {
    "set-without-kid": (
        RFC7517_A1,
        None,
        "kid value can not be empty when the JWK Set holds several keys!",
    ),
    "keys-without-kids": (
        TWO_KEYS_NO_KID,
        None,
        "kid value can not be empty when the JWK Set holds several keys!",
    ),
    "kid-not-in-set": (RFC7517_A2, "nope", "No key with kid (nope) in the JWK Set!"),
    "kid-of-no-key": (TWO_KEYS_NO_KID, "1", "No key with kid (1) in the JWK Set!"),
    "empty": ("", None, "jwkStr value can not be empty!"),
    "not-json": ("{kty: RSA", None, "jwkStr is not valid JSON!"),
    "not-an-object": ("[1, 2]", None, "jwkStr must be a JWK or a JWK Set JSON object!"),
    "no-kty": ('{"n": "AQAB"}', None, "The JWK has no kty member!"),
    "bad-key": (
        '{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}',
        None,
        "The JWK is not a valid JSON Web Key!",
    ),
    "empty-set": ('{"keys": []}', None, "The JWK Set holds no keys!"),
}


@pytest.mark.parametrize("create", [True, False], ids=["create-jwk", "parse-from-clipboard"])
@pytest.mark.parametrize("case", list(PASTE_REFUSALS))
async def test_copy_paste_refused(s: Setting, api: SecretsApi, case: str, create: bool) -> None:
    text, kid, reason = PASTE_REFUSALS[case]
    before = await state(s)
    r = await paste(api, unique("pasted"), text, kid, create=create)
    assert r.status_code == 400, r.text
    assert r.json() == bad_request(reason)
    assert await state(s) == before


# --- names and source types, for every kind of create --------------------------------------------


async def test_create_refusals(s: Setting, api: SecretsApi) -> None:
    await api.post_ok(JWKS, paste_body("taken", RFC7517_A1, "1", create=True))
    before = await state(s)
    good = paste_body("x", RFC7517_A1, "1", create=True)
    cases: list[tuple[str, dict[str, Any], str]] = [
        (JWKS, {**good, "name": ""}, "JWK name can not be empty!"),
        (JWKS, {**good, "name": "   "}, "JWK name can not be empty!"),
        (
            "parse-from-clipboard",
            {k: v for k, v in good.items() if k not in ("name", "sourceType")},
            "JWK name can not be empty!",
        ),
        (
            JWKS,
            {**good, "name": "taken"},
            "JWK (name: taken) is already exist! Try update operation if want to change its value.",
        ),
        (
            "parse-from-clipboard",
            {"name": "taken", "jwkStr": RFC7517_A1, "kid": "1"},
            "JWK (name: taken) is already exist! Try update operation if want to change its value.",
        ),
        (JWKS, {k: v for k, v in good.items() if k != "sourceType"}, "Source type is required!"),
        (
            JWKS,
            {**good, "sourceType": "URL", "jwkStr": None},
            "URL is required for URL source type!",
        ),
        (
            JWKS,
            {"name": "u", "sourceType": "URL", "url": "  "},
            "URL is required for URL source type!",
        ),
        ("parse-from-url", {"name": "u"}, "URL is required for URL source type!"),
        ("parse-from-url", {"name": "u", "url": ""}, "URL is required for URL source type!"),
    ]
    for where, body, reason in cases:
        sub = "" if where == JWKS else where
        r = await api.post(JWKS, {k: v for k, v in body.items() if v is not None}, sub=sub)
        assert r.status_code == 400, (where, body, r.text)
        assert r.json() == bad_request(reason), (where, body)
    assert await state(s) == before


# --- PUBLIC_KEY / PRIVATE_KEY --------------------------------------------------------------------

# (kind, keyType, useType, algorithm)
KEY_CASES: list[tuple[str, str, str, str]] = [
    ("rsa2048", "RSA", "SIGNATURE", "RS256"),
    ("rsa2048", "RSA", "ENCRYPTION", "RSA-OAEP-256"),
    ("p256", "EC", "SIGNATURE", "ES256"),
    ("p256", "EC", "ENCRYPTION", "ECDH-ES+A128KW"),
    ("p384", "EC", "SIGNATURE", "ES384"),
    ("p384", "EC", "ENCRYPTION", "ECDH-ES"),
    ("ed25519", "ED25519", "SIGNATURE", "EdDSA"),
    ("x25519", "X25519", "ENCRYPTION", "ECDH-ES+A256KW"),
]


def key_jwk_body(name: str, key: str, env: str, use: str, alg: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"from key {key}",
        "keyName": key,
        "environmentName": env,
        "useType": use,
        "algorithm": alg,
        **extra,
    }


@pytest.mark.parametrize(("kind", "key_type", "use", "alg"), KEY_CASES)
async def test_public_and_private_key_sources(
    s: Setting, api: SecretsApi, kind: str, key_type: str, use: str, alg: str
) -> None:
    key = certs.new_key(kind)  # a key no other test derives JWKs from
    await api.post_ok("keys", key_body("k", key_type, [key_entry(s.envs[0], key)]))

    # PUBLIC_KEY through parse-from-key (sourceType defaults to PUBLIC_KEY).
    await api.post_ok(JWKS, key_jwk_body("pub", "k", s.envs[0], use, alg), sub="parse-from-key")
    # PRIVATE_KEY through create JWK.
    await api.post_ok(
        JWKS, {**key_jwk_body("priv", "k", s.envs[0], use, alg), "sourceType": "PRIVATE_KEY"}
    )

    pub, priv = await api.jwk("pub"), await api.jwk("priv")
    check_shape(pub, "pub", s.project, "PUBLIC_KEY")
    check_shape(priv, "priv", s.project, "PRIVATE_KEY")
    for got in (pub, priv):
        assert got["sourceId"] == "k"
        assert got["useType"] == use and got["algorithm"] == alg
        assert got["jwk"]["alg"] == alg and got["jwk"]["use"] == (
            "sig" if use == "SIGNATURE" else "enc"
        )
    expected_public = jwcrypto_public(key)
    expected_private = jwcrypto_private(key)
    assert {k: pub["jwk"][k] for k in expected_public} == expected_public
    assert not PRIVATE_MEMBERS & set(pub["jwk"])
    assert {k: priv["jwk"][k] for k in expected_private} == expected_private
    assert pub["kid"] == priv["kid"] == thumbprint(expected_public)

    if use == "SIGNATURE":
        # A token signed by the original key verifies with the public JWK ...
        assert jwcrypto_verifies(sign_with_pem(key, alg), pub["jwk"], alg)
        assert not jwcrypto_verifies(sign_with_pem(pooled_key(kind), alg), pub["jwk"], alg)
    else:
        # ... a token encrypted to the public JWK opens with the original key.
        token = encrypt_to(pub["jwk"])
        original = jwcrypto_jwk.JWK.from_pem(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        assert jwcrypto_decrypts(token, json.loads(original.export_private())) == PAYLOAD
    use_the_jwk(priv["jwk"])


async def test_symmetric_key_source(s: Setting, api: SecretsApi) -> None:
    secret = bytes(range(32))
    await api.post_ok("keys", key_body("sym", "SYMMETRIC", [key_entry(s.envs[0], secret)]))
    await api.post_ok(
        JWKS,
        key_jwk_body("hmac", "sym", s.envs[0], "SIGNATURE", "HS256", sourceType="PRIVATE_KEY"),
        sub="parse-from-key",
    )
    await api.post_ok(
        JWKS,
        {
            **key_jwk_body("wrap", "sym", s.envs[0], "ENCRYPTION", "A256KW"),
            "sourceType": "PRIVATE_KEY",
        },
    )
    for name in ("hmac", "wrap"):
        got = await api.jwk(name)
        check_shape(got, name, s.project, "PRIVATE_KEY")
        assert got["type"] == "OCT" and got["jwk"]["k"] == b64url(secret)
        assert got["kid"] == thumbprint(got["jwk"])
        use_the_jwk(got["jwk"])
    before = await state(s)
    r = await api.post(
        JWKS, key_jwk_body("pub", "sym", s.envs[0], "SIGNATURE", "HS256"), sub="parse-from-key"
    )
    assert r.status_code == 400
    assert r.json() == bad_request("OCT keys are secret and have no public part!")
    assert await state(s) == before


async def test_key_source_refusals(s: Setting, api: SecretsApi, factory: Factory) -> None:
    other_env = await factory.environment(projects=(s.project,))
    await api.post_ok("keys", key_body("rsa", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))]))
    await api.post_ok(
        "keys", key_body("pubonly", "EC", [key_entry(s.envs[0], pooled_key("p256"), private=False)])
    )
    before = await state(s)
    env = s.envs[0]
    cases: list[tuple[dict[str, Any], str]] = [
        (key_jwk_body("j", "nope", env, "SIGNATURE", "RS256"), "Key (name: nope) is not found!"),
        (
            key_jwk_body("j", "rsa", other_env, "SIGNATURE", "RS256"),
            f"Key (name: rsa) is not deployed to environment ({other_env})!",
        ),
        (key_jwk_body("j", "", env, "SIGNATURE", "RS256"), "keyName value can not be empty!"),
        (
            key_jwk_body("j", "rsa", "", "SIGNATURE", "RS256"),
            "environmentName value can not be empty!",
        ),
        (key_jwk_body("j", "rsa", env, "", "RS256"), "useType value can not be empty!"),
        (
            key_jwk_body("j", "rsa", env, "SIGNING", "RS256"),
            "useType must be SIGNATURE or ENCRYPTION!",
        ),
        (key_jwk_body("j", "rsa", env, "SIGNATURE", ""), "algorithm value can not be empty!"),
        (
            key_jwk_body("j", "rsa", env, "SIGNATURE", "RSA"),
            "Algorithm (RSA) is not valid for RSA keys with useType SIGNATURE! Valid values: RS256,"
            " RS384, RS512, PS256, PS384, PS512",
        ),
        (
            key_jwk_body("j", "rsa", env, "SIGNATURE", "ES256"),
            "Algorithm (ES256) is not valid for RSA keys with useType SIGNATURE! Valid values:"
            " RS256, RS384, RS512, PS256, PS384, PS512",
        ),
        (
            key_jwk_body("j", "pubonly", env, "SIGNATURE", "ES256", sourceType="PRIVATE_KEY"),
            "The key has no private part; use sourceType PUBLIC_KEY!",
        ),
        (
            key_jwk_body("j", "rsa", env, "SIGNATURE", "RS256", sourceType="KEYSTORE"),
            "sourceType (KEYSTORE) contradicts parse-from-key, which takes sourceType"
            " PUBLIC_KEY or PRIVATE_KEY!",
        ),
    ]
    for body, reason in cases:
        r = await api.post(JWKS, body, sub="parse-from-key")
        assert r.status_code == 400, (body, r.text)
        assert r.json() == bad_request(reason), body
    assert await state(s) == before


# --- KEYSTORE ------------------------------------------------------------------------------------


def keystore_jwk_body(name: str, keystore: str, env: str, alias: str, alg: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"alias {alias}",
        "keyStoreName": keystore,
        "environmentName": env,
        "aliasName": alias,
        "useType": "SIGNATURE",
        "algorithm": alg,
    }


async def test_keystore_source(s: Setting, api: SecretsApi, stores: Stores) -> None:
    for name, store in (("jks", stores.jks_a), ("p12", stores.openssl_p12)):
        await api.post_ok(
            "keystores",
            {
                "name": name,
                "keyStoreEnvironmentList": [
                    {
                        "environmentName": s.envs[0],
                        "type": store.type,
                        "file": base64.b64encode(store.data).decode(),
                        "password": store.password,
                    }
                ],
            },
        )
    await api.post_ok(
        JWKS,
        keystore_jwk_body("signer", "jks", s.envs[0], "signer", "RS256"),
        sub="parse-from-keystore",
    )
    await api.post_ok(
        JWKS,
        keystore_jwk_body("trusted", "jks", s.envs[0], "trusted-ca", "ES384"),
        sub="parse-from-keystore",
    )
    await api.post_ok(
        JWKS,
        {
            **keystore_jwk_body("leaf", "p12", s.envs[0], "openssl-ec", "ES256"),
            "sourceType": "KEYSTORE",
        },
    )

    signer_entry = stores.jks_a.entries["signer"]
    assert signer_entry.key is not None
    signer = await api.jwk("signer")
    check_shape(signer, "signer", s.project, "KEYSTORE")
    assert signer["sourceId"] == "jks"
    expected = jwcrypto_private(signer_entry.key)
    assert {k: signer["jwk"][k] for k in expected} == expected
    assert signer["jwk"]["x5c"] == [base64.b64encode(signer_entry.cert_der).decode()]
    assert signer["jwk"]["x5t#S256"] == b64url(hashlib.sha256(signer_entry.cert_der).digest())
    use_the_jwk(signer["jwk"])

    trusted_entry = stores.jks_a.entries["trusted-ca"]
    trusted = await api.jwk("trusted")
    assert not PRIVATE_MEMBERS & set(trusted["jwk"])
    cert_public = jwcrypto_jwk.JWK.from_pem(
        trusted_entry.cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).export_public(as_dict=True)
    assert {k: trusted["jwk"][k] for k in cert_public} == cert_public
    assert trusted["kid"] == thumbprint(cert_public)

    leaf_entry = stores.openssl_p12.entries["openssl-ec"]
    assert leaf_entry.key is not None
    leaf = await api.jwk("leaf")
    assert leaf["sourceType"] == "KEYSTORE" and leaf["sourceId"] == "p12"
    assert leaf["jwk"]["d"] == jwcrypto_private(leaf_entry.key)["d"]
    assert len(leaf["jwk"]["x5c"]) == 2  # leaf and its CA, as openssl -certfile put them
    use_the_jwk(leaf["jwk"])

    before = await state(s)
    for body, reason in (
        (
            keystore_jwk_body("x", "jks", s.envs[0], "nobody", "RS256"),
            "Alias (nobody) is not found in keystore (name: jks)!",
        ),
        (
            keystore_jwk_body("x", "nope", s.envs[0], "signer", "RS256"),
            "Keystore (name: nope) is not found!",
        ),
        (
            keystore_jwk_body("x", "jks", s.envs[0], "", "RS256"),
            "aliasName value can not be empty!",
        ),
        (
            keystore_jwk_body("x", "", s.envs[0], "signer", "RS256"),
            "keyStoreName value can not be empty!",
        ),
    ):
        r = await api.post(JWKS, body, sub="parse-from-keystore")
        assert r.status_code == 400, r.text
        assert r.json() == bad_request(reason)
    assert await state(s) == before


# --- URL -----------------------------------------------------------------------------------------


async def test_url_source(s: Setting, api: SecretsApi, server: JwksServer) -> None:
    url = server.route(RFC7517_A1, content_type="application/jwk-set+json")
    await api.post_ok(
        JWKS,
        {
            "name": "my-jwk",
            "description": "JWK from URL",
            "url": url,
            "urlOptionConnectTimeout": 5000,
            "urlOptionReadTimeout": 10000,
            "urlOptionSizeLimit": 1048576,
            "kid": "2011-04-29",
        },
        sub="parse-from-url",
    )
    await api.post_ok(
        JWKS,
        {
            "name": "ec-jwk",
            "description": "JWK from URL",
            "sourceType": "URL",
            "url": url,
            "kid": "1",
        },
    )
    single = {k: v for k, v in rfc_key(RFC7517_A1, "2011-04-29").items() if k != "kid"}
    single_url = server.route(json.dumps(single), announce_length=False)
    await api.post_ok(JWKS, {"name": "single", "sourceType": "URL", "url": single_url})

    for name, expected, kid in (
        ("my-jwk", rfc_key(RFC7517_A1, "2011-04-29"), "2011-04-29"),
        ("ec-jwk", rfc_key(RFC7517_A1, "1"), "1"),
        ("single", single, RFC7638_THUMBPRINT),
    ):
        got = await api.jwk(name)
        check_shape(got, name, s.project, "URL")
        assert got["kid"] == kid
        assert {k: v for k, v in got["jwk"].items() if k != "kid"} == {
            k: v for k, v in expected.items() if k != "kid"
        }
        assert got["sourceId"] is None
        assert got["sourceUrl"] == (single_url if name == "single" else url)
    listed = {j["name"]: j for j in await api.list_ok(JWKS)}
    assert listed["my-jwk"]["sourceUrl"] == url and listed["my-jwk"]["sourceType"] == "URL"
    assert server.hits[url.removeprefix(server.base_url)] == 2


URL_REFUSALS: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    # case: (route options, request options, reason after "URL (<url>) ")
    "slow": (
        {"body": RFC7517_A1, "delay": 2.0},
        {"urlOptionReadTimeout": 300, "kid": "1"},
        "did not answer within 300 ms!",
    ),
    "oversized": (
        {"body": RFC7517_A1 + " " * 5000},
        {"urlOptionSizeLimit": 2048, "kid": "1"},
        "answered more than 2048 bytes!",
    ),
    "oversized-unannounced": (
        {"body": RFC7517_A1 + " " * 5000, "announce_length": False},
        {"urlOptionSizeLimit": 2048, "kid": "1"},
        "answered more than 2048 bytes!",
    ),
    "not-json": (
        {"body": "<html>hello</html>", "content_type": "text/html"},
        {},
        "did not answer JSON!",
    ),
    "not-found": ({"body": "{}", "status": 404}, {}, "answered HTTP 404!"),
    "server-error": ({"body": RFC7517_A1, "status": 500}, {"kid": "1"}, "answered HTTP 500!"),
}


@pytest.mark.parametrize("create", [True, False], ids=["create-jwk", "parse-from-url"])
@pytest.mark.parametrize("case", list(URL_REFUSALS))
async def test_url_refused(
    s: Setting, api: SecretsApi, server: JwksServer, case: str, create: bool
) -> None:
    route, options, reason = URL_REFUSALS[case]
    route = dict(route)
    url = server.route(route.pop("body"), **route)
    body = {"name": unique("url"), "url": url, **options}
    before = await state(s)
    started = time.monotonic()
    if create:
        r = await api.post(JWKS, {**body, "sourceType": "URL"})
    else:
        r = await api.post(JWKS, body, sub="parse-from-url")
    assert r.status_code == 400, r.text
    assert r.json() == bad_request(f"URL ({url}) {reason}")
    if case == "slow":
        assert time.monotonic() - started < 1.9  # it gave up; it did not wait for the answer
    assert server.hits[url.removeprefix(server.base_url)] == 1
    assert await state(s) == before


async def test_url_set_without_kid_is_refused(
    s: Setting, api: SecretsApi, server: JwksServer
) -> None:
    url = server.route(RFC7517_A1)
    before = await state(s)
    r = await api.post(JWKS, {"name": "u", "url": url}, sub="parse-from-url")
    assert r.status_code == 400
    assert r.json() == bad_request(
        "kid value can not be empty when the JWK Set holds several keys!"
    )
    assert await state(s) == before


async def test_url_name_is_checked_before_fetching(
    s: Setting, api: SecretsApi, server: JwksServer
) -> None:
    url = server.route(RFC7517_A1)
    await api.post_ok(JWKS, {"name": "taken", "url": url, "kid": "1"}, sub="parse-from-url")
    r = await api.post(JWKS, {"name": "taken", "url": url, "kid": "1"}, sub="parse-from-url")
    assert r.status_code == 400
    assert r.json() == bad_request(
        "JWK (name: taken) is already exist! Try update operation if want to change its value."
    )
    assert server.hits[url.removeprefix(server.base_url)] == 1


@pytest.mark.parametrize("create", [True, False], ids=["create-jwk", "parse-from-url"])
async def test_loopback_url_is_refused_without_the_allow_list(
    s: Setting, strict_client: httpx.AsyncClient, server: JwksServer, create: bool
) -> None:
    strict = SecretsApi(strict_client, s.admin_token, s.project)
    url = server.route(RFC7517_A1)
    before = await state(s)
    body = {"name": unique("url"), "url": url, "kid": "1"}
    if create:
        r = await strict.post(JWKS, {**body, "sourceType": "URL"})
    else:
        r = await strict.post(JWKS, body, sub="parse-from-url")
    assert r.status_code == 400
    assert r.json() == bad_request(
        f"URL ({url}) resolves to a private, loopback or link-local address (127.0.0.1),"
        " which is not allowed!"
    )
    assert server.hits[url.removeprefix(server.base_url)] == 0  # never connected
    assert await state(s) == before
    # The same request through the app with the allow list goes through.
    await SecretsApi(s.client, s.admin_token, s.project).post_ok(JWKS, body, sub="parse-from-url")


# --- GENERATE ------------------------------------------------------------------------------------

# (type, parameters, JOSE alg stored, use)
GENERATED: list[tuple[str, dict[str, Any], str, str]] = [
    ("RSA", {"keySize": 2048}, "RS256", "sig"),
    *[
        ("RSA", {"keySize": 2048, "algorithm": spelling}, jose, "sig")
        for spelling, jose in [
            ("RSA256", "RS256"),
            ("RSA384", "RS384"),
            ("RSA512", "RS512"),
            ("PS256", "PS256"),
            ("PS384", "PS384"),
            ("PS512", "PS512"),
        ]
    ],
    *[
        ("RSA", {"keySize": 2048, "keyUseType": "ENCRYPTION", "algorithm": spelling}, jose, "enc")
        for spelling, jose in [
            ("RSA1_5", "RSA1_5"),
            ("RSA_OAEP", "RSA-OAEP"),
            ("RSA_OAEP_256", "RSA-OAEP-256"),
            ("RSA_OAEP_384", "RSA-OAEP-384"),
            ("RSA_OAEP_512", "RSA-OAEP-512"),
            ("RSA-OAEP-256", "RSA-OAEP-256"),
        ]
    ],
    ("RSA", {"keySize": 2048, "keyUseType": "ENCRYPTION"}, "RSA-OAEP-256", "enc"),
    ("RSA", {"keySize": 3072, "algorithm": "PS384"}, "PS384", "sig"),
    ("EC", {"curveType": "P256"}, "ES256", "sig"),
    ("EC", {"curveType": "P384"}, "ES384", "sig"),
    ("EC", {"curveType": "P521"}, "ES512", "sig"),
    ("EC", {"curveType": "SECP256K1"}, "ES256K", "sig"),
    ("EC", {"curveType": "P256", "algorithm": "ES256"}, "ES256", "sig"),
    *[
        ("EC", {"curveType": curve, "keyUseType": "ENCRYPTION", "algorithm": spelling}, jose, "enc")
        for curve, spelling, jose in [
            ("P256", "ECDH_ES", "ECDH-ES"),
            ("P256", "ECDH_ES_A128KW", "ECDH-ES+A128KW"),
            ("P384", "ECDH_ES_A192KW", "ECDH-ES+A192KW"),
            ("P521", "ECDH_ES_A256KW", "ECDH-ES+A256KW"),
            ("P256", "ECDH_1PU_A128KW", "ECDH-1PU+A128KW"),
            ("P384", "ECDH-ES+A256KW", "ECDH-ES+A256KW"),
        ]
    ],
    ("EC", {"curveType": "P256", "keyUseType": "ENCRYPTION"}, "ECDH-ES", "enc"),
    ("OCT", {"keySize": 256}, "HS256", "sig"),
    ("OCT", {"keySize": 256, "algorithm": "HS256"}, "HS256", "sig"),
    *[
        ("OCT", {"keySize": size, "keyUseType": "ENCRYPTION", "algorithm": spelling}, jose, "enc")
        for size, spelling, jose in [
            (128, "A128KW", "A128KW"),
            (192, "A192KW", "A192KW"),
            (256, "A256KW", "A256KW"),
            (128, "A128GCMKW", "A128GCMKW"),
            (192, "A192GCMKW", "A192GCMKW"),
            (256, "A256GCMKW", "A256GCMKW"),
            (128, "DIR", "dir"),
            (256, "DIR", "dir"),
            (128, "PBES2_HS256_A128KW", "PBES2-HS256+A128KW"),
            (192, "PBES2_HS384_A192KW", "PBES2-HS384+A192KW"),
            (256, "PBES2_HS512_A256KW", "PBES2-HS512+A256KW"),
        ]
    ],
    ("OCT", {"keySize": 192, "keyUseType": "ENCRYPTION"}, "A192KW", "enc"),
    ("OKP", {"curveType": "ED25519"}, "EdDSA", "sig"),
    ("OKP", {"curveType": "ED25519", "algorithm": "EdDSA"}, "EdDSA", "sig"),
    ("OKP", {"curveType": "X25519"}, "ECDH-ES", "enc"),
    (
        "OKP",
        {"curveType": "X25519", "keyUseType": "ENCRYPTION", "algorithm": "ECDH_ES_A128KW"},
        "ECDH-ES+A128KW",
        "enc",
    ),
    (
        "OKP",
        {"curveType": "X25519", "keyUseType": "ENCRYPTION", "algorithm": "ECDH_ES_A256KW"},
        "ECDH-ES+A256KW",
        "enc",
    ),
    (
        "OKP",
        {"curveType": "X25519", "keyUseType": "ENCRYPTION", "algorithm": "ECDH_1PU"},
        "ECDH-1PU",
        "enc",
    ),
]

EXPECTED_MEMBERS = {
    "RSA": {"n", "e", "d", "p", "q", "dp", "dq", "qi"},
    "EC": {"crv", "x", "y", "d"},
    "OCT": {"k"},
    "OKP": {"crv", "x", "d"},
}
CURVES = {
    "P256": "P-256",
    "P384": "P-384",
    "P521": "P-521",
    "SECP256K1": "secp256k1",
    "ED25519": "Ed25519",
    "X25519": "X25519",
}


def _generated_id(case: tuple[str, dict[str, Any], str, str]) -> str:
    kty, params, alg, _use = case
    detail = params.get("keySize") or params.get("curveType")
    return f"{kty}-{detail}-{params.get('algorithm', 'default')}->{alg}"


@pytest.mark.parametrize("case", GENERATED, ids=[_generated_id(c) for c in GENERATED])
async def test_generated_jwk_works(
    s: Setting, api: SecretsApi, case: tuple[str, dict[str, Any], str, str]
) -> None:
    kty, params, alg, use = case
    name = unique("gen")
    r = await api.generate(
        {"name": name, "description": "generated", "type": kty, MATERIAL[kty]: params}
    )
    assert r.status_code == 200, r.text
    got = await api.jwk(name)
    check_shape(got, name, s.project, "GENERATE")
    assert got["type"] == kty and got["sourceId"] is None and got["sourceUrl"] is None
    jwk = got["jwk"]
    # The standard JOSE name is stored and shown, whatever spelling came in.
    assert jwk["alg"] == got["algorithm"] == alg
    assert jwk["use"] == use
    assert got["useType"] == {"sig": "SIGNATURE", "enc": "ENCRYPTION"}[use]
    # get-jwk.md: the private members are returned.
    assert EXPECTED_MEMBERS[kty] <= set(got[MATERIAL[kty]])
    if "keySize" in params and kty == "RSA":
        n = int.from_bytes(base64.urlsafe_b64decode(jwk["n"] + "=="), "big")
        assert n.bit_length() == params["keySize"]
    if kty == "OCT":
        assert len(base64.urlsafe_b64decode(jwk["k"] + "==")) * 8 == params["keySize"]
    if "curveType" in params:
        assert jwk["crv"] == CURVES[params["curveType"]]
    use_the_jwk(jwk)
    # Another key of the same kind does not pass for this one.
    if use == "sig" and kty != "OCT":
        other = unique("other")
        await api.post_ok(JWKS, {"name": other, "type": kty, MATERIAL[kty]: params}, sub="generate")
        other_jwk = (await api.jwk(other))["jwk"]
        assert not jwcrypto_verifies(sign_with(other_jwk), public_part(jwk), alg)
    listed_item = next(j for j in await api.list_ok(JWKS) if j["name"] == name)
    assert listed_item["algorithm"] == alg and listed_item["type"] == kty
    assert (s.project, name) in await held(s.client, s.admin_token, s.envs[0], "jwk")


DOC_EXAMPLES: list[dict[str, Any]] = [
    # "Request Body" of each type.
    {
        "name": "generated-rsa-jwk",
        "description": "Auto-generated RSA JWK",
        "type": "RSA",
        "kid": "rsa-key-1",
        "rsa": {
            "keySize": 2048,
            "keyUseType": "SIGNATURE",
            "algorithm": "RSA256",
            "keyIdType": "TIMESTAMP",
            "notBeforeTime": "2024-01-01T00:00:00Z",
            "expirationTime": "2025-01-01T00:00:00Z",
        },
    },
    {
        "name": "generated-ec-jwk",
        "description": "Auto-generated EC JWK",
        "type": "EC",
        "kid": "ec-key-1",
        "ec": {
            "curveType": "P256",
            "keyUseType": "SIGNATURE",
            "algorithm": "ES256",
            "keyIdType": "TIMESTAMP",
            "notBeforeTime": "2024-01-01T00:00:00Z",
            "expirationTime": "2025-01-01T00:00:00Z",
        },
    },
    {
        "name": "generated-oct-jwk",
        "description": "Auto-generated symmetric key",
        "type": "OCT",
        "kid": "oct-key-1",
        "oct": {
            "keySize": 256,
            "keyUseType": "SIGNATURE",
            "algorithm": "HS256",
            "keyIdType": "TIMESTAMP",
            "passwordSaltLength": 8,
            "passwordIterationCount": 1000,
            "notBeforeTime": "2024-01-01T00:00:00Z",
            "expirationTime": "2025-01-01T00:00:00Z",
        },
    },
    {
        "name": "generated-okp-jwk",
        "description": "Auto-generated OKP JWK",
        "type": "OKP",
        "kid": "okp-key-1",
        "okp": {
            "curveType": "ED25519",
            "keyUseType": "SIGNATURE",
            "algorithm": "EdDSA",
            "keyIdType": "TIMESTAMP",
            "notBeforeTime": "2024-01-01T00:00:00Z",
            "expirationTime": "2025-01-01T00:00:00Z",
        },
    },
    # cURL examples 1 to 7 (example 2 is the one RSA 4096 key of the run).
    {
        "name": "generated-rsa-jwk-1",
        "description": "Auto-generated RSA 2048-bit JWK",
        "type": "RSA",
        "kid": "rsa-2048-key-1",
        "rsa": {"keySize": 2048},
    },
    {
        "name": "generated-rsa-4096-jwk",
        "description": "Auto-generated RSA 4096-bit JWK",
        "type": "RSA",
        "kid": "rsa-4096-key-1",
        "rsa": {"keySize": 4096},
    },
    {
        "name": "generated-ec-jwk-3",
        "description": "Auto-generated EC P-256 JWK",
        "type": "EC",
        "kid": "ec-p256-key-1",
        "ec": {"curveType": "P256"},
    },
    {
        "name": "generated-ec-p384-jwk",
        "description": "Auto-generated EC P-384 JWK",
        "type": "EC",
        "kid": "ec-p384-key-1",
        "ec": {"curveType": "P384"},
    },
    {
        "name": "generated-oct-jwk-5",
        "description": "Auto-generated 256-bit symmetric key",
        "type": "OCT",
        "kid": "oct-256-key-1",
        "oct": {"keySize": 256},
    },
    {
        "name": "generated-okp-jwk-6",
        "description": "Auto-generated Ed25519 JWK",
        "type": "OKP",
        "kid": "okp-ed25519-key-1",
        "okp": {"curveType": "ED25519"},
    },
    {
        "name": "generated-x25519-jwk",
        "description": "Auto-generated X25519 JWK for key exchange",
        "type": "OKP",
        "kid": "okp-x25519-key-1",
        "okp": {"curveType": "X25519"},
    },
]


async def test_generate_jwk_doc_examples(s: Setting, api: SecretsApi) -> None:
    for body in DOC_EXAMPLES:
        r = await api.generate(body)
        assert r.status_code == 200, (body["name"], r.text)
        answer = r.json()
        assert answer["success"] is True
        results = {
            e["environmentName"]: e for e in answer["deploymentResult"]["environmentResults"]
        }
        assert results[s.envs[0]] == {
            "environmentName": s.envs[0],
            "success": True,
            "message": DEPLOYED,
        }
        got = await api.jwk(body["name"])
        assert got["kid"] == got["jwk"]["kid"] == body["kid"]  # a given kid wins over keyIdType
        assert got["description"] == body["description"] and got["type"] == body["type"]
        params = body[MATERIAL[body["type"]]]
        if "notBeforeTime" in params:
            assert got["jwk"]["nbf"] == 1704067200 and got["jwk"]["exp"] == 1735689600
        use_the_jwk(got["jwk"])
    assert (await api.jwk("generated-rsa-jwk"))["algorithm"] == "RS256"
    n = (await api.jwk("generated-rsa-4096-jwk"))["jwk"]["n"]
    assert int.from_bytes(base64.urlsafe_b64decode(n + "=="), "big").bit_length() == 4096
    assert (await api.jwk("generated-x25519-jwk"))["useType"] == "ENCRYPTION"
    assert (await api.jwk("generated-ec-p384-jwk"))["algorithm"] == "ES384"


ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


KID_BASES: dict[str, dict[str, Any]] = {
    "RSA": {"keySize": 2048},
    "EC": {"curveType": "P384"},
    "OCT": {"keySize": 256},
    "OKP": {"curveType": "ED25519"},
}


@pytest.mark.parametrize("kty", list(KID_BASES))
async def test_key_id_types(s: Setting, api: SecretsApi, kty: str) -> None:
    base = KID_BASES[kty]
    kids: dict[str, str | None] = {}
    for id_type in ("TIMESTAMP", "SHA256", "SHA1", "ISO_DATE", "NONE", None):
        name = unique("kid")
        params: dict[str, Any] = dict(base)
        if id_type is not None:
            params["keyIdType"] = id_type
        started = datetime.now(UTC) - timedelta(seconds=1)
        await api.post_ok(JWKS, {"name": name, "type": kty, MATERIAL[kty]: params}, sub="generate")
        ended = datetime.now(UTC) + timedelta(seconds=1)
        got = await api.jwk(name)
        jwk = got["jwk"]
        kid = jwk.get("kid")
        kids[str(id_type)] = kid
        if id_type in ("TIMESTAMP", None):
            assert kid is not None and kid.isdigit()
            assert started.timestamp() * 1000 <= int(kid) <= ended.timestamp() * 1000
        elif id_type == "SHA256":
            assert kid == thumbprint(jwk)
        elif id_type == "SHA1":
            assert kid == thumbprint(jwk, "sha1")
        elif id_type == "ISO_DATE":
            assert kid is not None and ISO_MS.match(kid), kid
            at = datetime.strptime(kid, "%Y-%m-%dT%H:%M:%S.%f%z")
            assert started <= at <= ended
        else:
            assert "kid" not in jwk and not got["kid"]
        assert got["kid"] == (kid or got["kid"])
        use_the_jwk(jwk)


async def test_validity_dates(s: Setting, api: SecretsApi) -> None:
    started = int(time.time()) - 1
    await api.post_ok(
        JWKS, {"name": "default", "type": "EC", "ec": {"curveType": "P256"}}, sub="generate"
    )
    jwk = (await api.jwk("default"))["jwk"]
    ended = int(time.time()) + 1
    assert started <= jwk["iat"] <= ended and started <= jwk["nbf"] <= ended
    nbf = datetime.fromtimestamp(jwk["nbf"], UTC)
    try:
        a_year_later = nbf.replace(year=nbf.year + 1)
    except ValueError:  # 29 February
        a_year_later = nbf.replace(year=nbf.year + 1, day=28)
    assert jwk["exp"] == int(a_year_later.timestamp())

    await api.post_ok(
        JWKS,
        {
            "name": "from",
            "type": "EC",
            "ec": {"curveType": "P256", "notBeforeTime": "2030-02-03T04:05:06Z"},
        },
        sub="generate",
    )
    jwk = (await api.jwk("from"))["jwk"]
    assert jwk["nbf"] == int(datetime(2030, 2, 3, 4, 5, 6, tzinfo=UTC).timestamp())
    assert jwk["exp"] == int(datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC).timestamp())

    await api.post_ok(
        JWKS,
        {
            "name": "window",
            "type": "OKP",
            "okp": {
                "curveType": "ED25519",
                "notBeforeTime": "2024-06-01T12:00:00+02:00",
                "expirationTime": "2024-06-02T12:00:00+02:00",
            },
        },
        sub="generate",
    )
    jwk = (await api.jwk("window"))["jwk"]
    assert jwk["nbf"] == int(datetime(2024, 6, 1, 10, 0, tzinfo=UTC).timestamp())
    assert jwk["exp"] == jwk["nbf"] + 86400


GENERATE_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"name": "", "type": "RSA", "rsa": {"keySize": 2048}}, "JWK name can not be empty!"),
    ({"type": "RSA", "rsa": {"keySize": 2048}}, "JWK name can not be empty!"),
    ({"name": "g", "rsa": {"keySize": 2048}}, "JWK type can not be empty!"),
    ({"name": "g", "type": " ", "rsa": {"keySize": 2048}}, "JWK type can not be empty!"),
    (
        {"name": "g", "type": "DSA", "rsa": {"keySize": 2048}},
        "JWK type (DSA) is not valid! Valid values: RSA, EC, OCT, OKP",
    ),
    ({"name": "g", "type": "RSA"}, "rsa value can not be empty!"),
    ({"name": "g", "type": "RSA", "ec": {"curveType": "P256"}}, "rsa value can not be empty!"),
    (
        {"name": "g", "type": "RSA", "rsa": {"keySize": 1024}},
        "keySize (1024) is not valid for RSA keys! Valid values: 2048, 3072, 4096",
    ),
    ({"name": "g", "type": "RSA", "rsa": {}}, "keySize value can not be empty!"),
    (
        {"name": "g", "type": "EC", "ec": {"curveType": "P224"}},
        "curveType (P224) is not valid for EC keys! Valid values: P256, P384, P521, SECP256K1",
    ),
    (
        {"name": "g", "type": "OKP", "okp": {"curveType": "ED448"}},
        "curveType (ED448) is not supported for OKP keys! Valid values: ED25519, X25519",
    ),
    (
        {"name": "g", "type": "EC", "ec": {"curveType": "P384", "algorithm": "ES256"}},
        "Algorithm (ES256) needs an EC key on curve P-256, but this key is on curve P-384!",
    ),
    (
        {
            "name": "g",
            "type": "RSA",
            "rsa": {"keySize": 2048, "keyUseType": "ENCRYPTION", "algorithm": "RSA256"},
        },
        "Algorithm (RSA256) is not valid for RSA keys with useType ENCRYPTION! Valid values:"
        " RSA1_5, RSA-OAEP, RSA-OAEP-256, RSA-OAEP-384, RSA-OAEP-512",
    ),
    (
        {"name": "g", "type": "OCT", "oct": {"keySize": 128, "algorithm": "HS256"}},
        "Algorithm (HS256) needs a key of at least 256 bits, but this key has 128 bits!",
    ),
    (
        {"name": "g", "type": "RSA", "rsa": {"keySize": 2048, "keyIdType": "UUID"}},
        "keyIdType (UUID) is not valid! Valid values: TIMESTAMP, SHA256, SHA1, ISO_DATE, NONE",
    ),
    (
        {
            "name": "g",
            "type": "EC",
            "ec": {
                "curveType": "P256",
                "notBeforeTime": "2025-01-01T00:00:00Z",
                "expirationTime": "2024-01-01T00:00:00Z",
            },
        },
        "expirationTime must be after notBeforeTime!",
    ),
    (
        {"name": "g", "type": "EC", "ec": {"curveType": "P256", "notBeforeTime": "yesterday"}},
        "notBeforeTime (yesterday) is not a valid ISO 8601 date/time!",
    ),
    (
        {"name": "g", "type": "OKP", "okp": {"curveType": "X25519", "algorithm": "EdDSA"}},
        "Algorithm (EdDSA) is not valid for OKP keys with useType ENCRYPTION! Valid values:"
        " ECDH-ES, ECDH-ES+A128KW, ECDH-ES+A192KW, ECDH-ES+A256KW, ECDH-1PU, ECDH-1PU+A128KW,"
        " ECDH-1PU+A192KW, ECDH-1PU+A256KW",
    ),
]


async def test_generate_refused(s: Setting, api: SecretsApi) -> None:
    await api.post_ok(
        JWKS, {"name": "generated-jwk", "type": "OCT", "oct": {"keySize": 256}}, sub="generate"
    )
    before = await state(s)
    for body, reason in [
        *GENERATE_REFUSALS,
        (
            {"name": "generated-jwk", "type": "OCT", "oct": {"keySize": 256}},
            "JWK (name: generated-jwk) is already exist! Try update operation if want to change"
            " its value.",
        ),
    ]:
        r = await api.generate(body)
        assert r.status_code == 400, (body, r.text)
        assert r.json() == bad_request(reason), body
    assert await state(s) == before


# --- list never shows key material ---------------------------------------------------------------


async def test_list_never_shows_key_material(s: Setting, api: SecretsApi) -> None:
    await api.post_ok("keys", key_body("k", "RSA", [key_entry(s.envs[0], pooled_key("rsa2048"))]))
    await api.post_ok(
        JWKS,
        {
            **key_jwk_body("from-key", "k", s.envs[0], "SIGNATURE", "RS256"),
            "sourceType": "PRIVATE_KEY",
        },
    )
    await api.post_ok(JWKS, paste_body("a2", RFC7517_A2, "2011-04-29", create=True))
    await api.post_ok(JWKS, paste_body("a3", RFC7517_A3, RFC7517_A3_HMAC_KID, create=True))
    for kty, params in (
        ("RSA", {"keySize": 2048}),
        ("EC", {"curveType": "P521"}),
        ("OCT", {"keySize": 128, "keyUseType": "ENCRYPTION"}),
        ("OKP", {"curveType": "X25519"}),
    ):
        await api.post_ok(
            JWKS, {"name": f"gen-{kty}", "type": kty, MATERIAL[kty]: params}, sub="generate"
        )
    r = await api.list_response(JWKS)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"success", "resultList", "resultCount"} and body["resultCount"] == 7
    full = [(await api.jwk(item["name"]))["jwk"] for item in body["resultList"]]
    check_listed_without_material(r.text, body["resultList"], full)
    for item in body["resultList"]:
        got = await api.jwk(item["name"])
        assert {k: got[k] for k in item} == item  # list is get minus the material


# --- update JWK ----------------------------------------------------------------------------------


async def test_update_renames_redescribes_and_detaches(s: Setting, api: SecretsApi) -> None:
    await api.post_ok("keys", key_body("k", "EC", [key_entry(s.envs[0], pooled_key("p256"))]))
    await api.post_ok(
        JWKS, key_jwk_body("my-jwk", "k", s.envs[0], "SIGNATURE", "ES256"), sub="parse-from-key"
    )
    before = await api.jwk("my-jwk")
    assert before["sourceId"] == "k"

    answer = await api.put_ok(
        JWKS, "my-jwk", {"name": "updated-jwk", "description": "Updated JWK description"}
    )
    results = {e["environmentName"]: e for e in answer["deploymentResult"]["environmentResults"]}
    assert results[s.envs[0]]["success"] is True
    r = await api.get(JWKS, "my-jwk")
    assert r.status_code == 400
    assert r.json() == bad_request("JWK (name: my-jwk) is not found!")
    after = await api.jwk("updated-jwk")
    assert after["description"] == "Updated JWK description"
    assert after["sourceId"] is None  # detached from its source (update-jwk.md)
    assert after["jwk"] == before["jwk"] and after["kid"] == before["kid"]
    in_env = await held(s.client, s.admin_token, s.envs[0], "jwk")
    assert (s.project, "updated-jwk") in in_env and (s.project, "my-jwk") not in in_env

    # Detached: the key's UPDATE no longer reaches it.
    await api.put_ok(
        "keys",
        "k",
        key_body("k", "EC", [key_entry(s.envs[0], pooled_key("p256"))]),
        "updateReferencedJwks=true&updateScope=SAME_PROJECT",
    )
    assert (await api.jwk("updated-jwk"))["jwk"] == before["jwk"]

    # Only a description: the name stays.
    await api.put_ok(JWKS, "updated-jwk", {"description": "again"})
    assert (await api.jwk("updated-jwk"))["description"] == "again"


async def test_update_refusals(s: Setting, api: SecretsApi) -> None:
    await api.post_ok(JWKS, paste_body("a", RFC7517_A1, "1", create=True))
    await api.post_ok(JWKS, paste_body("b", RFC7517_A1, "2011-04-29", create=True))
    before = await state(s)
    r = await api.put(JWKS, "missing", {"name": "x", "description": "y"})
    assert r.status_code == 400
    assert r.json() == bad_request("JWK (name: missing) is not found! Try create operation.")
    r = await api.put(JWKS, "a", {"name": "b", "description": "clash"})
    assert r.status_code == 400
    assert r.json() == bad_request("JWK (name: b) is already exist!")
    assert await state(s) == before


async def test_delete_jwk(s: Setting, api: SecretsApi) -> None:
    await api.post_ok(
        JWKS, paste_body("gone", RFC7517_A2, "1", create=False), sub="parse-from-clipboard"
    )
    r = await api.delete(JWKS, "gone")
    assert r.status_code == 200, r.text
    assert (s.project, "gone") not in await held(s.client, s.admin_token, s.envs[0], "jwk")
    r = await api.get(JWKS, "gone")
    assert r.status_code == 400
    assert r.json() == bad_request("JWK (name: gone) is not found!")
