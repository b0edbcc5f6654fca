"""``jwkResults`` in the answer of a certificate, key or keystore update (issue 15, item
8): what happened to every JWK derived from the updated resource. UPDATED: re-derived
from the new material; DETACHED: its source cleared, material and kid unchanged."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from tests.conftest import Factory, unique
from tests.crypto import certs
from tests.support.certificates import CertificateClient, rfc7638_thumbprint
from tests.support.keysecrets import SecretsApi, key_body, key_entry

ADMIN = "admin"
UPDATE_SAME = "jwkUpdateAction=UPDATE&updateScope=SAME_PROJECT"
UPDATE_ALL = "jwkUpdateAction=UPDATE&updateScope=ALL_PROJECTS"


def fresh_cert(cn: str) -> certs.Issued:
    return certs.make_cert(certs.name(("COMMON_NAME", cn)), certs.new_key("p256"))


def jwk_body(name: str, env: str, **source: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} for results",
        "environmentName": env,
        "useType": "SIGNATURE",
        "algorithm": "ES256",
        **source,
    }


def result(project: str, name: str, action: str, old: str, new: str) -> dict[str, str]:
    return {"projectName": project, "name": name, "action": action, "oldKid": old, "newKid": new}


class Shared:
    """A certificate of the admin project with a JWK in the admin project and one in
    another project (decision 11), in an environment both may use."""

    def __init__(self, client: httpx.AsyncClient, admin_token: str, other: str, env: str):
        self.client, self.token, self.other, self.env = client, admin_token, other, env
        self.cert, self.alias = unique("shared"), unique("alias")
        self.admin_jwk, self.other_jwk = unique("a-jwk"), unique("o-jwk")
        self.admin = CertificateClient(client, admin_token, ADMIN)

    async def create(self) -> None:
        r = await self.admin.create(
            self.cert, fresh_cert("old.example").pem, [self.env], alias=self.alias
        )
        assert r.status_code == 200, r.text
        source = {"sourceType": "CERTIFICATE", "certificateName": self.cert}
        for project, name in ((ADMIN, self.admin_jwk), (self.other, self.other_jwk)):
            api = SecretsApi(self.client, self.token, project)
            await api.post_ok("jwks", jwk_body(name, self.env, **source))

    async def kid(self, project: str, name: str) -> str:
        kid: str = (await SecretsApi(self.client, self.token, project).jwk(name))["kid"]
        return kid

    async def kids(self) -> tuple[str, str]:
        return await self.kid(ADMIN, self.admin_jwk), await self.kid(self.other, self.other_jwk)

    async def update(self, query: str) -> httpx.Response:
        new = fresh_cert("new.example")
        return await self.admin.update(
            self.cert, new.pem, [self.env], alias=self.alias, query=query
        )

    async def cleanup(self) -> None:
        # The admin project is shared by every test: leave no certificate in it.
        for name in (self.admin_jwk,):
            await SecretsApi(self.client, self.token, ADMIN).delete("jwks", name)
        await self.admin.delete(self.cert)


@pytest_asyncio.fixture
async def shared(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Any:
    other = await factory.project("admin")
    env = await factory.environment(projects=(ADMIN, other))
    setting = Shared(client, admin_token, other, env)
    await setting.create()
    yield setting
    await setting.cleanup()


def ordered(shared: Shared, *results: dict[str, str]) -> list[dict[str, str]]:
    return sorted(results, key=lambda r: (r["projectName"], r["name"]))


async def test_same_project_updates_its_own_jwks_and_detaches_the_rest(shared: Shared) -> None:
    old_admin, old_other = await shared.kids()
    r = await shared.update(UPDATE_SAME)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"success", "deploymentResult", "jwkResults"}
    new_admin, new_other = await shared.kids()
    assert new_admin != old_admin and new_other == old_other
    assert body["jwkResults"] == ordered(
        shared,
        result(ADMIN, shared.admin_jwk, "UPDATED", old_admin, new_admin),
        result(shared.other, shared.other_jwk, "DETACHED", old_other, old_other),
    )
    # DETACHED is what GET shows: no source any more, same material.
    other = await SecretsApi(shared.client, shared.token, shared.other).jwk(shared.other_jwk)
    assert other["sourceId"] is None and other["kid"] == old_other


@pytest.mark.parametrize(
    "query", [UPDATE_ALL, "updateReferencedJwks=true&updateScope=ALL_PROJECTS"]
)
async def test_all_projects_updates_every_jwk(shared: Shared, query: str) -> None:
    old_admin, old_other = await shared.kids()
    r = await shared.update(query)
    assert r.status_code == 200, r.text
    new_admin, new_other = await shared.kids()
    assert new_admin == new_other != old_admin  # the same public key, the same kid
    assert r.json()["jwkResults"] == ordered(
        shared,
        result(ADMIN, shared.admin_jwk, "UPDATED", old_admin, new_admin),
        result(shared.other, shared.other_jwk, "UPDATED", old_other, new_other),
    )


@pytest.mark.parametrize(
    "query",
    [
        "",
        "updateReferencedJwks=false",
        "jwkUpdateAction=NULLIFY",
        "jwkUpdateAction=NULLIFY&updateScope=ALL_PROJECTS",
    ],
)
async def test_nullify_reports_every_jwk_detached(shared: Shared, query: str) -> None:
    old_admin, old_other = await shared.kids()
    r = await shared.update(query)
    assert r.status_code == 200, r.text
    assert await shared.kids() == (old_admin, old_other)
    assert r.json()["jwkResults"] == ordered(
        shared,
        result(ADMIN, shared.admin_jwk, "DETACHED", old_admin, old_admin),
        result(shared.other, shared.other_jwk, "DETACHED", old_other, old_other),
    )
    # Detached JWKs follow nothing: the next update has nothing to report.
    r = await shared.update(UPDATE_ALL)
    assert r.status_code == 200, r.text
    assert r.json()["jwkResults"] == []


async def test_a_refused_update_reports_no_results(shared: Shared) -> None:
    before = await shared.kids()
    r = await shared.update("jwkUpdateAction=UPDATE")
    assert r.status_code == 400
    assert r.json() == {
        "error": "bad_request",
        "error_description": "updateScope value can not be empty!",
    }
    assert await shared.kids() == before


async def test_no_referencing_jwk_answers_an_empty_list(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    project = await factory.project("admin")
    env = await factory.environment(projects=(project,))
    api = CertificateClient(client, admin_token, project)
    name = unique("cert")
    await api.create_ok(name, fresh_cert("alone.example").pem, [env])
    for query in ("", UPDATE_SAME, UPDATE_ALL):
        r = await api.update(name, fresh_cert("next.example").pem, [env], query=query)
        assert r.status_code == 200, r.text
        assert r.json()["jwkResults"] == []


# --- keys and keystores ------------------------------------------------------------------


@pytest_asyncio.fixture
async def api(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Any:
    project = await factory.project("admin")
    envs = [await factory.environment(projects=(project,)) for _ in range(2)]
    return SecretsApi(client, admin_token, project), envs


async def test_key_update_reports_updated_and_detached(api: Any) -> None:
    secrets_api, (e0, e1) = api
    old, new = certs.new_key("p256"), certs.new_key("p256")
    await secrets_api.post_ok("keys", key_body("k", "EC", [key_entry(e0, old), key_entry(e1, old)]))
    source = {"sourceType": "PUBLIC_KEY", "keyName": "k"}
    await secrets_api.post_ok("jwks", jwk_body("follows", e0, **source))
    await secrets_api.post_ok("jwks", jwk_body("left", e1, **source, algorithm="ES256"))
    old_kid = (await secrets_api.jwk("follows"))["kid"]
    assert (await secrets_api.jwk("left"))["kid"] == old_kid

    # The update drops e1: the JWK derived from e1 has nothing left to follow.
    answer = await secrets_api.put_ok(
        "keys", "k", key_body("k", "EC", [key_entry(e0, new)]), UPDATE_SAME
    )
    follows = await secrets_api.jwk("follows")
    assert follows["kid"] == rfc7638_thumbprint(follows["jwk"]) != old_kid
    assert answer["jwkResults"] == [
        result(secrets_api.project, "follows", "UPDATED", old_kid, follows["kid"]),
        result(secrets_api.project, "left", "DETACHED", old_kid, old_kid),
    ]


def p12(issued: certs.Issued, alias: bytes, password: bytes) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        alias,
        issued.key,
        issued.cert,
        None,
        BestAvailableEncryption(password),  # type: ignore[arg-type]
    )


async def test_keystore_update_reports_its_jwks(api: Any) -> None:
    secrets_api, (e0, _) = api

    def store(issued: certs.Issued) -> dict[str, Any]:
        entry = {
            "environmentName": e0,
            "type": "PKCS12",
            "file": base64.b64encode(p12(issued, b"signer", b"pw-123456")).decode(),
            "password": "pw-123456",
        }
        return {"name": "ks", "description": "a keystore", "keyStoreEnvironmentList": [entry]}

    await secrets_api.post_ok("keystores", store(fresh_cert("old.example")))
    source = {"sourceType": "KEYSTORE", "keyStoreName": "ks", "aliasName": "signer"}
    await secrets_api.post_ok("jwks", jwk_body("from-store", e0, **source))
    old_kid = (await secrets_api.jwk("from-store"))["kid"]

    answer = await secrets_api.put_ok(
        "keystores", "ks", store(fresh_cert("new.example")), UPDATE_SAME
    )
    new_kid = (await secrets_api.jwk("from-store"))["kid"]
    assert new_kid != old_kid
    assert answer["jwkResults"] == [
        result(secrets_api.project, "from-store", "UPDATED", old_kid, new_kid)
    ]
    answer = await secrets_api.put_ok("keystores", "ks", store(fresh_cert("third.example")))
    assert answer["jwkResults"] == [
        result(secrets_api.project, "from-store", "DETACHED", new_kid, new_kid)
    ]


async def test_the_openapi_document_describes_jwk_results(client: httpx.AsyncClient) -> None:
    document = (await client.get("/apiops/openapi.json")).json()
    put = document["paths"]["/apiops/projects/{projectName}/certificates/{certificateName}/"]["put"]
    (content,) = put["responses"]["200"]["content"].values()
    ref = content["schema"]["$ref"]
    assert ref == "#/components/schemas/SourceUpdateRead"
    schema = document["components"]["schemas"]["SourceUpdateRead"]
    assert "jwkResults" in schema["required"]
    item = document["components"]["schemas"]["JwkResultRead"]
    assert set(item["properties"]) == {"projectName", "name", "action", "oldKid", "newKid"}
    assert item["properties"]["action"]["enum"] == ["UPDATED", "DETACHED"]
