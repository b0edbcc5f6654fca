"""The admin project's secrets never reach another project (issue 8, item 1).

Decision 11 lets a JWK of any project be derived from a certificate, key or keystore of
the `admin` project. That holds for public material only: a JWK of another project
derived from an admin-project keystore holds only the public members (whoever asks,
and also when an update re-derives it), a PRIVATE_KEY JWK from an admin-project key is
refused, and so is any JWK from an admin-project secret (symmetric) key.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.api.test_keystores import store_body, store_entry
from tests.conftest import Factory, unique
from tests.support.certificates import Setting, member, new_setting, pooled_key
from tests.support.keysecrets import (
    PRIVATE_MEMBERS,
    SecretsApi,
    bad_request,
    jwcrypto_public,
    key_body,
    key_entry,
    snapshot,
)
from tests.support.keystores import BuiltStore, Stores, keystores, require_tools

pytestmark = pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")

ADMIN = "admin"
SECRET_MEMBERS = PRIVATE_MEMBERS | {"k"}


@pytest.fixture(scope="module")
def stores() -> Stores:
    return keystores()


@pytest.fixture(scope="module")
def secret_store(tmp_path_factory: pytest.TempPathFactory) -> BuiltStore:
    """A keytool PKCS12 holding one HMAC secret key, alias "hmac"."""
    require_tools()
    path = Path(tmp_path_factory.mktemp("seckey")) / "secret.p12"
    subprocess.run(
        [
            "keytool",
            "-J-XX:TieredStopAtLevel=1",
            "-genseckey",
            "-alias",
            "hmac",
            "-keyalg",
            "HmacSHA256",
            "-keysize",
            "256",
            "-storetype",
            "PKCS12",
            "-keystore",
            str(path),
            "-storepass",
            "changeit-secret",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return BuiltStore("PKCS12", path.read_bytes(), "changeit-secret")


class Shared:
    """Project A (an outsider its only member), the admin project, one environment both use."""

    def __init__(self, s: Setting, env: str, outsider: str) -> None:
        self.s = s
        self.env = env
        self.admin = SecretsApi(s.client, s.admin_token, ADMIN)
        self.outsider = SecretsApi(s.client, outsider, s.project)
        # The admin user is a member of both; a JWK in project A is still A's to read.
        self.admin_in_a = SecretsApi(s.client, s.admin_token, s.project)

    async def state(self) -> dict[str, Any]:
        return {
            "a": await snapshot(self.admin_in_a, self.s.admin_token, [self.env]),
            "admin": await snapshot(self.admin, self.s.admin_token, [self.env]),
        }


@pytest_asyncio.fixture
async def shared(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Shared:
    s = await new_setting(client, admin_token, factory, envs=0)
    env = await factory.environment(projects=(ADMIN, s.project))
    user = await member(
        factory, "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES", projects=(s.project,)
    )
    return Shared(s, env, user.token)


def keystore_jwk(name: str, store: str, env: str, alias: str, alg: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "from the admin project",
        "sourceType": "KEYSTORE",
        "keyStoreName": store,
        "environmentName": env,
        "aliasName": alias,
        "useType": "SIGNATURE",
        "algorithm": alg,
    }


def key_jwk(name: str, key: str, env: str, source_type: str, alg: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "from the admin project",
        "sourceType": source_type,
        "keyName": key,
        "environmentName": env,
        "useType": "SIGNATURE",
        "algorithm": alg,
    }


async def test_keystore_jwk_in_another_project_holds_public_members_only(
    shared: Shared, stores: Stores
) -> None:
    store = unique("gw-tls")
    await shared.admin.post_ok(
        "keystores", store_body(store, [store_entry(shared.env, stores.jks_a)])
    )
    entry = stores.jks_a.entries["signer"]
    assert entry.key is not None
    public = jwcrypto_public(entry.key)

    # The outsider, through create-jwk and through parse-from-keystore ...
    await shared.outsider.post_ok(
        "jwks", keystore_jwk("via-create", store, shared.env, "signer", "RS256")
    )
    body = keystore_jwk("via-parse", store, shared.env, "signer", "RS256")
    del body["sourceType"]
    await shared.outsider.post_ok("jwks", body, sub="parse-from-keystore")
    # ... and the admin user, who may read the keystore, but creates the JWK in project A.
    await shared.admin_in_a.post_ok(
        "jwks", keystore_jwk("by-admin", store, shared.env, "signer", "RS256")
    )
    for name in ("via-create", "via-parse", "by-admin"):
        got = await shared.outsider.jwk(name)
        assert not SECRET_MEMBERS & set(got["jwk"]), (name, sorted(got["jwk"]))
        assert not SECRET_MEMBERS & set(got["rsa"]), name
        assert {k: got["jwk"][k] for k in public} == public
        assert got["jwk"]["x5c"] == [base64.b64encode(entry.cert_der).decode()]
        assert got["private"] is False and got["sourceId"] == store
        listed = {j["name"]: j for j in (await shared.outsider.list_ok("jwks"))}
        assert listed[name]["private"] is False

    # The admin project's own JWK from the same alias keeps its private members.
    own_name = unique("own")
    await shared.admin.post_ok("jwks", keystore_jwk(own_name, store, shared.env, "signer", "RS256"))
    own = await shared.admin.jwk(own_name)
    assert {"d", "p", "q", "dp", "dq", "qi"} <= set(own["jwk"]) and own["private"] is True


async def test_rederiving_from_an_admin_keystore_keeps_another_projects_jwk_public(
    shared: Shared, stores: Stores
) -> None:
    store = unique("gw-tls")
    await shared.admin.post_ok(
        "keystores", store_body(store, [store_entry(shared.env, stores.jks_a)])
    )
    await shared.outsider.post_ok(
        "jwks", keystore_jwk("follows", store, shared.env, "signer", "RS256")
    )
    own_name = unique("own")
    await shared.admin.post_ok("jwks", keystore_jwk(own_name, store, shared.env, "signer", "RS256"))

    await shared.admin.put_ok(
        "keystores",
        store,
        store_body(store, [store_entry(shared.env, stores.jks_b)]),
        "jwkUpdateAction=UPDATE&updateScope=ALL_PROJECTS",
    )
    new_key = stores.jks_b.entries["signer"].key
    assert new_key is not None
    follows = await shared.outsider.jwk("follows")
    assert follows["sourceId"] == store
    assert follows["jwk"]["n"] == jwcrypto_public(new_key)["n"]
    assert not SECRET_MEMBERS & set(follows["jwk"]) and follows["private"] is False
    own = await shared.admin.jwk(own_name)
    assert own["jwk"]["n"] == jwcrypto_public(new_key)["n"] and "d" in own["jwk"]


async def test_private_key_jwk_from_an_admin_key_is_refused(shared: Shared) -> None:
    key = unique("signing-key")
    rsa = pooled_key("rsa2048")
    await shared.admin.post_ok("keys", key_body(key, "RSA", [key_entry(shared.env, rsa)]))
    before = await shared.state()
    reason = (
        f"Key (name: {key}) belongs to the admin project: another project may derive only"
        " public JWKs from it; use sourceType PUBLIC_KEY!"
    )
    for api in (shared.outsider, shared.admin_in_a):
        r = await api.post("jwks", key_jwk("priv", key, shared.env, "PRIVATE_KEY", "RS256"))
        assert r.status_code == 400, r.text
        assert r.json() == bad_request(reason)
        body = key_jwk("priv", key, shared.env, "PRIVATE_KEY", "RS256")
        r = await api.post("jwks", body, sub="parse-from-key")
        assert r.status_code == 400, r.text
        assert r.json() == bad_request(reason)
    assert await shared.state() == before

    # Its public part is what decision 11 shares.
    await shared.outsider.post_ok("jwks", key_jwk("pub", key, shared.env, "PUBLIC_KEY", "RS256"))
    got = await shared.outsider.jwk("pub")
    assert not SECRET_MEMBERS & set(got["jwk"])
    assert got["jwk"]["n"] == jwcrypto_public(rsa)["n"]


async def test_admin_secret_keys_are_refused(shared: Shared, secret_store: BuiltStore) -> None:
    key, store = unique("hmac-key"), unique("secrets")
    await shared.admin.post_ok(
        "keys", key_body(key, "SYMMETRIC", [key_entry(shared.env, bytes(range(32)))])
    )
    await shared.admin.post_ok(
        "keystores", store_body(store, [store_entry(shared.env, secret_store)])
    )
    # The admin project itself may use them.
    own_key, own_ks = unique("own-hmac"), unique("own-ks")
    await shared.admin.post_ok("jwks", key_jwk(own_key, key, shared.env, "PRIVATE_KEY", "HS256"))
    await shared.admin.post_ok("jwks", keystore_jwk(own_ks, store, shared.env, "hmac", "HS256"))
    assert "k" in (await shared.admin.jwk(own_ks))["jwk"]

    before = await shared.state()
    for body, reason in (
        (
            key_jwk("j", key, shared.env, "PRIVATE_KEY", "HS256"),
            f"Key (name: {key}) belongs to the admin project: another project may derive only"
            " public JWKs from it; use sourceType PUBLIC_KEY!",
        ),
        (
            key_jwk("j", key, shared.env, "PUBLIC_KEY", "HS256"),
            "OCT keys are secret and have no public part!",
        ),
        (
            keystore_jwk("j", store, shared.env, "hmac", "HS256"),
            f"Alias (hmac) of keystore (name: {store}) is a secret key of the admin project:"
            " another project may derive only public JWKs from it!",
        ),
    ):
        for api in (shared.outsider, shared.admin_in_a):
            r = await api.post("jwks", body)
            assert r.status_code == 400, r.text
            assert r.json() == bad_request(reason)
    assert await shared.state() == before
