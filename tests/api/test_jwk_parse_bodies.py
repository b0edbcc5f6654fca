"""The parse-from-* endpoints take the create-jwk body too (issue 8, item 10).

A client that builds one body per source type (create-jwk.md's examples, `sourceType`
included) and sends it to the matching parse-from-* endpoint gets 200; a `sourceType`
that names another source is a 400 naming both, and nothing changes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import Factory, unique
from tests.crypto import certs
from tests.support.certificates import Setting, new_setting, pooled_key
from tests.support.jwks_server import JwksServer, jwks_server
from tests.support.keysecrets import SecretsApi, bad_request, key_body, key_entry, snapshot
from tests.support.keystores import Stores, keystores
from tests.support.rfc_examples import RFC7517_A1

pytestmark = pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")

ENDPOINTS = {
    "URL": "parse-from-url",
    "COPY_PASTE": "parse-from-clipboard",
    "CERTIFICATE": "parse-from-certificate",
    "PUBLIC_KEY": "parse-from-key",
    "PRIVATE_KEY": "parse-from-key",
    "KEYSTORE": "parse-from-keystore",
}
TAKES = {
    "parse-from-url": "URL",
    "parse-from-clipboard": "COPY_PASTE",
    "parse-from-certificate": "CERTIFICATE",
    "parse-from-key": "PUBLIC_KEY or PRIVATE_KEY",
    "parse-from-keystore": "KEYSTORE",
}


@pytest.fixture(scope="module")
def server() -> Iterator[JwksServer]:
    with jwks_server() as running:
        yield running


@pytest.fixture(scope="module")
def stores() -> Stores:
    return keystores()


@pytest_asyncio.fixture
async def s(client: Any, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory, envs=1)


async def create_bodies(
    s: Setting, api: SecretsApi, server: JwksServer, stores: Stores
) -> dict[str, dict[str, Any]]:
    """create-jwk.md's request body for each source type, with its sources in place."""
    env = s.envs[0]
    await s.api.create_ok("my-certificate", certs.self_signed("rsa2048", "c.example").pem, [env])
    await api.post_ok("keys", key_body("my-key", "RSA", [key_entry(env, pooled_key("rsa2048"))]))
    store = stores.jks_a
    await api.post_ok(
        "keystores",
        {
            "name": "my-keystore",
            "description": "a keystore",
            "keyStoreEnvironmentList": [
                {
                    "environmentName": env,
                    "type": store.type,
                    "file": base64.b64encode(store.data).decode(),
                    "password": store.password,
                }
            ],
        },
    )
    derived = {"environmentName": env, "useType": "SIGNATURE", "algorithm": "RS256"}
    return {
        "URL": {
            "description": "JWK from URL",
            "sourceType": "URL",
            "url": server.route(RFC7517_A1, content_type="application/jwk-set+json"),
            "urlOptionConnectTimeout": 5000,
            "urlOptionReadTimeout": 10000,
            "urlOptionSizeLimit": 1048576,
            "kid": "2011-04-29",
        },
        "COPY_PASTE": {
            "description": "JWK from copy paste",
            "sourceType": "COPY_PASTE",
            "jwkStr": '{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75'
            'aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow","alg":"HS256"}',
            "kid": "my-key-id",
        },
        "CERTIFICATE": {
            "description": "JWK from certificate",
            "sourceType": "CERTIFICATE",
            "certificateName": "my-certificate",
            **derived,
        },
        "PUBLIC_KEY": {
            "description": "JWK from public key",
            "sourceType": "PUBLIC_KEY",
            "keyName": "my-key",
            **derived,
        },
        "PRIVATE_KEY": {
            "description": "JWK from private key",
            "sourceType": "PRIVATE_KEY",
            "keyName": "my-key",
            **derived,
        },
        "KEYSTORE": {
            "description": "JWK from keystore",
            "sourceType": "KEYSTORE",
            "keyStoreName": "my-keystore",
            "aliasName": "signer",
            **derived,
        },
    }


async def test_each_parse_endpoint_takes_the_create_body(
    s: Setting, server: JwksServer, stores: Stores
) -> None:
    api = SecretsApi(s.client, s.admin_token, s.project)
    bodies = await create_bodies(s, api, server, stores)
    for source_type, body in bodies.items():
        name = unique(source_type.lower().replace("_", "-"))
        await api.post_ok("jwks", {"name": name, **body}, sub=ENDPOINTS[source_type])
        got = await api.jwk(name)
        assert got["sourceType"] == source_type, got


async def test_a_contradicting_source_type_is_refused_naming_both(
    s: Setting, server: JwksServer, stores: Stores
) -> None:
    api = SecretsApi(s.client, s.admin_token, s.project)
    bodies = await create_bodies(s, api, server, stores)
    before = await snapshot(api, s.admin_token, s.envs)
    tried = 0
    for endpoint, takes in TAKES.items():
        for source_type, body in bodies.items():
            if ENDPOINTS[source_type] == endpoint:
                continue
            r = await api.post("jwks", {"name": unique("j"), **body}, sub=endpoint)
            assert r.status_code == 400, (endpoint, source_type, r.text)
            assert r.json() == bad_request(
                f"sourceType ({source_type}) contradicts {endpoint}, which takes sourceType"
                f" {takes}!"
            )
            tried += 1
        # Also a source type no endpoint takes.
        r = await api.post("jwks", {"name": unique("j"), "sourceType": "GENERATE"}, sub=endpoint)
        assert r.status_code == 400, r.text
        assert r.json() == bad_request(
            f"sourceType (GENERATE) contradicts {endpoint}, which takes sourceType {takes}!"
        )
    assert tried == 5 * 6 - 6
    assert await snapshot(api, s.admin_token, s.envs) == before


async def test_names_of_jwk_operations_are_refused(s: Setting) -> None:
    """`/jwks/generate` and `/jwks/parse-from-*` are operations: a JWK of such a name
    could never be read, updated or deleted by name, so it is not made."""
    api = SecretsApi(s.client, s.admin_token, s.project)
    jwk_str = (
        '{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUu'
        'TwjAzZr1Z9CAow","alg":"HS256"}'
    )
    body = {"description": "d", "sourceType": "COPY_PASTE", "jwkStr": jwk_str}
    before = await snapshot(api, s.admin_token, s.envs)
    for name in sorted(set(ENDPOINTS.values()) | {"generate"}):
        r = await api.post("jwks", {"name": name, **body})
        assert r.status_code == 400, r.text
        assert r.json() == bad_request(
            f"JWK name ({name}) is reserved: /jwks/{name} is an operation!"
        )
    assert await snapshot(api, s.admin_token, s.envs) == before
    # Nor may a JWK be renamed to one.
    await api.post_ok("jwks", {"name": "plain", **body})
    r = await api.put("jwks", "plain", {"name": "generate", "description": "d"})
    assert r.status_code == 400, r.text
    assert r.json() == bad_request(
        "JWK name (generate) is reserved: /jwks/generate is an operation!"
    )
