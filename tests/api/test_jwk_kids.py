"""Kids are unique in every environment's JWK Set (issue 15, item 5; the rule is in
src/keyops/domain/jwks/kids.py): a kid keyops made gets ``-<alg>`` when another JWK of
the set holds it with other material, a kid someone chose is refused instead, and a
lone JWK keeps exactly the kid it always had. Checked through the API and in the JWK Set
a gateway node builds from the environment's snapshot."""

from __future__ import annotations

import base64
import json
import os
from collections import defaultdict
from typing import Any

import httpx
import pytest_asyncio

from keyops.gateway.snapshot import build_state, parse_snapshot
from tests.conftest import Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import Setting, new_setting, rfc7638_thumbprint
from tests.support.keysecrets import SecretsApi, key_body, key_entry, thumbprint


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory, envs=1)


def fresh_cert(cn: str) -> certs.Issued:
    """A certificate on a key no other test uses (certs.self_signed shares one per kind)."""
    return certs.make_cert(certs.name(("COMMON_NAME", cn)), certs.new_key("p256"))


def bad_request(description: str) -> dict[str, str]:
    return {"error": "bad_request", "error_description": description}


def from_cert(name: str, cert: str, env: str, use: str, alg: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} from {cert}",
        "sourceType": "CERTIFICATE",
        "certificateName": cert,
        "environmentName": env,
        "useType": use,
        "algorithm": alg,
        **extra,
    }


async def create(s: Setting, body: dict[str, Any], project: str | None = None) -> httpx.Response:
    path = f"/apiops/projects/{project or s.project}/jwks/"
    return await s.client.post(path, json=body, headers=bearer(s.admin_token))


async def create_ok(s: Setting, body: dict[str, Any], project: str | None = None) -> None:
    r = await create(s, body, project)
    assert r.status_code == 200, r.text


async def kid_of(s: Setting, name: str, project: str | None = None) -> str:
    got = await SecretsApi(s.client, s.admin_token, project or s.project).jwk(name)
    assert got["kid"] == got["jwk"]["kid"]
    kid: str = got["kid"]
    return kid


async def published(s: Setting, env: str) -> list[dict[str, Any]]:
    """The JWK Set a gateway node of ``env`` publishes: the node's own code, run on the
    snapshot the manager serves it."""
    r = await s.client.post(
        f"/apiops/admin/environments/{env}/node-tokens/",
        json={"name": unique("gw")},
        headers=bearer(s.admin_token),
    )
    assert r.status_code == 200, r.text
    node = bearer(r.json()["result"]["token"])
    r = await s.client.get("/apiops/gateway/sync/", params={"node": "n1", "wait": 0}, headers=node)
    assert r.status_code == 200, r.text
    state = build_state(parse_snapshot(r.content), env)
    keys: list[dict[str, Any]] = json.loads(state.jwks_json)["keys"]
    assert list(state.jwk_kids) == [k["kid"] for k in keys]
    return keys


def assert_unambiguous(keys: list[dict[str, Any]]) -> None:
    """Every kid of the set names one key, and no use or alg that two entries declare
    differently."""
    seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for k in keys:
        seen[k["kid"]].append(k)
    for kid, entries in seen.items():
        for a in entries:
            for b in entries:
                assert rfc7638_thumbprint(a) == rfc7638_thumbprint(b), kid
                for member in ("use", "alg"):
                    assert member not in a or member not in b or a[member] == b[member], kid


async def test_signature_and_encryption_jwks_of_one_certificate_get_distinct_kids(
    s: Setting,
) -> None:
    cert, env = unique("cert"), s.envs[0]
    issued = fresh_cert("both.example")
    await s.api.create_ok(cert, issued.pem, [env], alias=unique("alias"))
    await create_ok(s, from_cert("sig", cert, env, "SIGNATURE", "ES256"))
    await create_ok(s, from_cert("enc", cert, env, "ENCRYPTION", "ECDH-ES"))
    await create_ok(s, from_cert("ps", cert, env, "ENCRYPTION", "ECDH-ES+A128KW"))

    sig = await SecretsApi(s.client, s.admin_token, s.project).jwk("sig")
    thumbprint = rfc7638_thumbprint(sig["jwk"])
    # The first keeps exactly the kid a lone JWK has; the others say what they are for.
    assert sig["kid"] == thumbprint
    assert await kid_of(s, "enc") == f"{thumbprint}-ECDH-ES"
    assert await kid_of(s, "ps") == f"{thumbprint}-ECDH-ES+A128KW"

    keys = await published(s, env)
    by_kid = {k["kid"]: k for k in keys}
    assert set(by_kid) == {thumbprint, f"{thumbprint}-ECDH-ES", f"{thumbprint}-ECDH-ES+A128KW"}
    assert by_kid[thumbprint]["use"] == "sig" and by_kid[thumbprint]["alg"] == "ES256"
    assert by_kid[f"{thumbprint}-ECDH-ES"]["use"] == "enc"
    assert_unambiguous(keys)


async def test_a_lone_jwk_keeps_its_thumbprint(s: Setting) -> None:
    cert = unique("cert")
    await s.api.create_ok(cert, fresh_cert("lone.example").pem, s.envs, alias=unique("alias"))
    await create_ok(s, from_cert("lone", cert, s.envs[0], "ENCRYPTION", "ECDH-ES"))
    got = await SecretsApi(s.client, s.admin_token, s.project).jwk("lone")
    assert got["kid"] == rfc7638_thumbprint(got["jwk"])


async def test_the_same_key_use_and_alg_is_one_entry_and_keeps_its_kid(
    s: Setting, factory: Factory
) -> None:
    # A PUBLIC_KEY and a PRIVATE_KEY JWK of one key publish the same public JWK.
    env = s.envs[0]
    api = SecretsApi(s.client, s.admin_token, s.project)
    await api.post_ok("keys", key_body("k", "EC", [key_entry(env, certs.new_key("p256"))]))
    for name, source in (("pub", "PUBLIC_KEY"), ("priv", "PRIVATE_KEY")):
        body = {
            "name": name,
            "description": "d",
            "sourceType": source,
            "keyName": "k",
            "environmentName": env,
            "useType": "SIGNATURE",
            "algorithm": "ES256",
        }
        await api.post_ok("jwks", body)
    pub, priv = await api.jwk("pub"), await api.jwk("priv")
    assert pub["kid"] == priv["kid"] == rfc7638_thumbprint(pub["jwk"])
    assert_unambiguous(await published(s, env))


async def test_kids_are_unique_across_projects_sharing_an_environment(
    s: Setting, factory: Factory
) -> None:
    other = await factory.project("admin")
    shared = await factory.environment(projects=(s.project, other))
    cert = unique("cert")
    await s.api.create_ok(cert, fresh_cert("shared.example").pem, [shared], alias=unique("alias"))
    other_api = Setting(s.client, s.admin_token, other, [shared]).api
    await other_api.create_ok(
        cert, fresh_cert("other.example").pem, [shared], alias=unique("alias")
    )
    # The same certificate name, another key: no collision, both keep their thumbprint.
    await create_ok(s, from_cert("sig", cert, shared, "SIGNATURE", "ES256"))
    await create_ok(s, from_cert("sig", cert, shared, "SIGNATURE", "ES256"), project=other)
    mine, theirs = await kid_of(s, "sig"), await kid_of(s, "sig", other)
    assert mine != theirs

    # The other project pastes this project's public JWK as an ENCRYPTION key: same key,
    # other use, so a verifier of the shared environment would be misled by one kid.
    public = (await SecretsApi(s.client, s.admin_token, s.project).jwk("sig"))["jwk"]
    pasted = {k: v for k, v in public.items() if k not in ("kid", "use", "alg", "x5c")}
    pasted = {**pasted, "use": "enc", "alg": "ECDH-ES"}
    body = {"name": "pasted", "description": "d", "jwkStr": json.dumps(pasted)}
    r = await s.client.post(
        f"/apiops/projects/{other}/jwks/parse-from-clipboard",
        json=body,
        headers=bearer(s.admin_token),
    )
    assert r.status_code == 200, r.text
    assert await kid_of(s, "pasted", other) == f"{mine}-ECDH-ES"
    keys = await published(s, shared)
    assert {mine, theirs, f"{mine}-ECDH-ES"} <= {k["kid"] for k in keys}
    assert_unambiguous(keys)


async def test_a_chosen_kid_that_collides_is_refused(s: Setting, factory: Factory) -> None:
    env, chosen = s.envs[0], unique("kid")
    first, second = unique("cert"), unique("cert")
    await s.api.create_ok(first, fresh_cert("first.example").pem, [env], alias=unique("alias"))
    await s.api.create_ok(second, fresh_cert("second.example").pem, [env], alias=unique("alias"))
    await create_ok(s, from_cert("mine", first, env, "SIGNATURE", "ES256", kid=chosen))
    before = await SecretsApi(s.client, s.admin_token, s.project).list_ok("jwks")

    r = await create(s, from_cert("again", second, env, "SIGNATURE", "ES256", kid=chosen))
    assert r.status_code == 400
    assert r.json() == bad_request(
        f"kid ({chosen}) is already used by JWK (name: mine)! A kid is unique in the JWK"
        " Set of each environment: choose another kid."
    )
    # Another project sharing the environment is not told the other JWK's name.
    other = await factory.project("admin")
    shared = await factory.environment(projects=(s.project, other))
    other_api = Setting(s.client, s.admin_token, other, [shared]).api
    await other_api.create_ok(
        second, fresh_cert("third.example").pem, [shared], alias=unique("alias")
    )
    r = await create(s, from_cert("again", second, shared, "SIGNATURE", "ES256", kid=chosen), other)
    assert r.status_code == 400
    assert r.json() == bad_request(
        f"kid ({chosen}) is already used by another JWK published to the same environments!"
        " A kid is unique in the JWK Set of each environment: choose another kid."
    )
    assert await SecretsApi(s.client, s.admin_token, other).list_ok("jwks") == []
    # A pasted JWK's own kid is a choice too (tokens carry it).
    pasted = {"kty": "EC", "crv": "P-256", "kid": chosen, "use": "sig", "alg": "ES256"}
    third = certs.new_key("p256").public_key().public_numbers()  # type: ignore[union-attr]
    pasted |= {"x": _b64(third.x), "y": _b64(third.y)}
    r = await s.client.post(
        f"/apiops/projects/{s.project}/jwks/parse-from-clipboard",
        json={"name": "pasted", "description": "d", "jwkStr": json.dumps(pasted)},
        headers=bearer(s.admin_token),
    )
    assert r.status_code == 400
    assert r.json()["error_description"].startswith(f"kid ({chosen}) is already used by JWK")
    assert await SecretsApi(s.client, s.admin_token, s.project).list_ok("jwks") == before

    # The same public JWK under its kid is no collision: it is the same entry.
    mine = (await SecretsApi(s.client, s.admin_token, s.project).jwk("mine"))["jwk"]
    r = await s.client.post(
        f"/apiops/projects/{s.project}/jwks/parse-from-clipboard",
        json={"name": "same", "description": "d", "jwkStr": json.dumps(mine)},
        headers=bearer(s.admin_token),
    )
    assert r.status_code == 200, r.text
    assert await kid_of(s, "same") == chosen
    # Without use and alg it is the same key for whatever a verifier wants it for.
    bare = {k: v for k, v in mine.items() if k not in ("use", "alg")}
    r = await s.client.post(
        f"/apiops/projects/{s.project}/jwks/parse-from-clipboard",
        json={"name": "bare", "description": "d", "jwkStr": json.dumps(bare)},
        headers=bearer(s.admin_token),
    )
    assert r.status_code == 200, r.text
    assert await kid_of(s, "bare") == chosen
    # But the same key declared for encryption under that kid is refused.
    enc = {**bare, "use": "enc", "alg": "ECDH-ES"}
    r = await s.client.post(
        f"/apiops/projects/{s.project}/jwks/parse-from-clipboard",
        json={"name": "enc", "description": "d", "jwkStr": json.dumps(enc)},
        headers=bearer(s.admin_token),
    )
    assert r.status_code == 400
    assert r.json()["error_description"].startswith(f"kid ({chosen}) is already used by JWK")
    assert_unambiguous(await published(s, env))


async def test_a_suffixed_kid_that_is_taken_gets_a_number(s: Setting) -> None:
    env, cert = s.envs[0], unique("cert")
    issued = fresh_cert("numbered.example")
    await s.api.create_ok(cert, issued.pem, [env], alias=unique("alias"))
    await create_ok(s, from_cert("sig", cert, env, "SIGNATURE", "ES256"))
    thumbprint = await kid_of(s, "sig")
    # Someone chose, for another key, the kid the ENCRYPTION JWK would get.
    other = unique("cert")
    await s.api.create_ok(other, fresh_cert("squatter.example").pem, [env], alias=unique("alias"))
    squatted = f"{thumbprint}-ECDH-ES"
    await create_ok(s, from_cert("squat", other, env, "ENCRYPTION", "ECDH-ES", kid=squatted))
    await create_ok(s, from_cert("enc", cert, env, "ENCRYPTION", "ECDH-ES"))
    assert await kid_of(s, "enc") == f"{squatted}-2"
    assert_unambiguous(await published(s, env))


async def test_rederivation_keeps_kids_unique(s: Setting) -> None:
    env, cert = s.envs[0], unique("cert")
    await s.api.create_ok(cert, fresh_cert("old.example").pem, [env], alias=unique("alias"))
    # Named so that the ENCRYPTION one sorts first: the older JWK keeps the plain kid.
    await create_ok(s, from_cert("b-sig", cert, env, "SIGNATURE", "ES256"))
    await create_ok(s, from_cert("a-enc", cert, env, "ENCRYPTION", "ECDH-ES"))
    new = fresh_cert("new.example")
    r = await s.api.update(
        cert, new.pem, [env], query="jwkUpdateAction=UPDATE&updateScope=SAME_PROJECT"
    )
    assert r.status_code == 200, r.text
    sig = await SecretsApi(s.client, s.admin_token, s.project).jwk("b-sig")
    thumbprint = rfc7638_thumbprint(sig["jwk"])
    assert sig["kid"] == thumbprint
    assert await kid_of(s, "a-enc") == f"{thumbprint}-ECDH-ES"
    keys = await published(s, env)
    assert {k["kid"] for k in keys} == {thumbprint, f"{thumbprint}-ECDH-ES"}
    assert_unambiguous(keys)


async def test_a_chosen_kid_that_would_collide_after_rederivation_refuses_the_update(
    s: Setting,
) -> None:
    env, cert, chosen = s.envs[0], unique("cert"), unique("kid")
    await s.api.create_ok(cert, fresh_cert("old.example").pem, [env], alias=unique("alias"))
    await create_ok(s, from_cert("follows", cert, env, "SIGNATURE", "ES256", kid=chosen))
    api = SecretsApi(s.client, s.admin_token, s.project)
    # A copy of it under the same kid: allowed while it is the same key.
    copy = (await api.jwk("follows"))["jwk"]
    await api.post_ok(
        "jwks",
        {"name": "copy", "description": "d", "jwkStr": json.dumps(copy)},
        sub="parse-from-clipboard",
    )
    before = await s.api.get_one(cert), await api.jwk("follows"), await api.jwk("copy")

    r = await s.api.update(
        cert,
        fresh_cert("new.example").pem,
        [env],
        query="jwkUpdateAction=UPDATE&updateScope=SAME_PROJECT",
    )
    assert r.status_code == 400
    assert r.json() == bad_request(
        f"JWK (name: follows, project: {s.project}) can not be re-derived from the new"
        f" material: kid ({chosen}) is already used by JWK (name: copy)! A kid is unique in"
        " the JWK Set of each environment: choose another kid."
    )
    assert (await s.api.get_one(cert), await api.jwk("follows"), await api.jwk("copy")) == before


async def test_secret_jwks_are_not_published_and_keep_their_kids(s: Setting) -> None:
    env = s.envs[0]
    api = SecretsApi(s.client, s.admin_token, s.project)
    await api.post_ok("keys", key_body("sym", "SYMMETRIC", [key_entry(env, os.urandom(32))]))
    for name, use, alg in (("hmac", "SIGNATURE", "HS256"), ("wrap", "ENCRYPTION", "A256KW")):
        body = {
            "name": name,
            "description": "d",
            "sourceType": "PRIVATE_KEY",
            "keyName": "sym",
            "environmentName": env,
            "useType": use,
            "algorithm": alg,
        }
        await api.post_ok("jwks", body)
    hmac, wrap = await api.jwk("hmac"), await api.jwk("wrap")
    assert hmac["kid"] == wrap["kid"] == thumbprint(hmac["jwk"])
    assert hmac["kid"] not in {k["kid"] for k in await published(s, env)}


def _b64(value: int) -> str:
    raw = value.to_bytes(32, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
