"""Keys, keystores and JWKs through the sync client against a real server."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization

from keyops.client import BadRequest, Client, KeyMaterial, KeystoreFile
from tests.client.conftest import PROJECT, material, unique
from tests.support.jwks_server import jwks_server

ENVS = ["production", "staging"]


def results(change: object) -> dict[str, bool]:
    rows = change.deployment_result.environment_results  # type: ignore[attr-defined]
    return {r.environment_name: r.success for r in rows}


def test_keys(kc: Client) -> None:
    name, a, b = unique("key"), material("key-a"), material("key-b")
    change = kc.keys.create(
        PROJECT, name, key_type="EC", environments=ENVS, public_key=a.public_pem
    )
    assert results(change) == {"production": True, "staging": True}
    got = kc.keys.get(PROJECT, name)
    assert got.key_type == "EC" and got.project_id == PROJECT
    der = a.issued.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert {e.environment_name: e.public_key for e in got.crypto_key_info_environment_list} == {
        env: base64.b64encode(der).decode() for env in ENVS
    }
    assert {e.curve for e in got.crypto_key_info_environment_list} == {"P-256"}
    assert name in [k.name for k in kc.keys.list(PROJECT).result_list]

    # Different material per environment; DER bytes are sent as base64.
    b_der = b.issued.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kc.keys.update(
        PROJECT,
        name,
        key_type="EC",
        environments=["production", KeyMaterial("staging", public_key=b_der)],
        public_key=a.public_pem,
        description="two keys",
    )
    got = kc.keys.get(PROJECT, name)
    by_env = {e.environment_name: e.public_key for e in got.crypto_key_info_environment_list}
    assert by_env == {
        "production": base64.b64encode(der).decode(),
        "staging": base64.b64encode(b_der).decode(),
    }
    assert got.description == "two keys"
    (kept,) = kc.keys.versions(PROJECT, name).result_list
    assert kept.reason == "REPLACED" and {e.curve for e in kept.environment_list} == {"P-256"}
    kc.keys.rollback(PROJECT, name, 1)
    got = kc.keys.get(PROJECT, name)
    assert {e.public_key for e in got.crypto_key_info_environment_list} == {
        base64.b64encode(der).decode()
    }
    assert results(kc.keys.delete(PROJECT, name)) == {"production": True, "staging": True}
    with pytest.raises(BadRequest) as caught:
        kc.keys.create(PROJECT, name, key_type="", environments=ENVS, public_key=a.public_pem)
    assert caught.value.error_description == "keyType value can not be empty!"


def test_keystores(kc: Client) -> None:
    name, m = unique("store"), material("store")
    change = kc.keystores.create(
        PROJECT, name, environments=ENVS, file=m.p12, store_type="PKCS12", password=m.password
    )
    assert results(change) == {"production": True, "staging": True}
    got = kc.keystores.get(PROJECT, name)
    (prod, staging) = sorted(got.key_store_environment_list, key=lambda e: e.environment_name)
    assert (prod.environment_name, staging.environment_name) == ("production", "staging")
    assert prod.type == "PKCS12" and base64.b64decode(prod.file or "") == m.p12
    (entry,) = prod.entries
    assert (entry.alias, entry.kind, entry.subject_dn) == ("signer", "PRIVATE_KEY", "CN=store")
    # The password is write-only, and secret fields stay out of repr.
    assert m.password not in got.model_dump_json() and (prod.file or "") not in repr(got)
    assert name in [s.name for s in kc.keystores.list(PROJECT).result_list]

    other = material("store-2")
    kc.keystores.update(
        PROJECT,
        name,
        environments=[KeystoreFile("production", other.p12, "PKCS12", other.password)],
    )
    got = kc.keystores.get(PROJECT, name)
    (only,) = got.key_store_environment_list
    assert only.environment_name == "production" and only.entries[0].subject_dn == "CN=store-2"
    (kept,) = kc.keystores.versions(PROJECT, name).result_list
    assert {e.type for e in kept.environment_list} == {"PKCS12"}

    with pytest.raises(BadRequest):
        kc.keystores.create(
            PROJECT, unique("bad"), environments=ENVS, file=m.p12, password="wrong password"
        )
    with pytest.raises(TypeError):
        kc.keystores.create(PROJECT, unique("nofile"), environments=ENVS)
    kc.keystores.delete(PROJECT, name)
    assert name not in [s.name for s in kc.keystores.list(PROJECT).result_list]


def test_jwks_from_every_source(kc: Client) -> None:
    m = material("jwk-src")
    cert, key, store = unique("jc"), unique("jk"), unique("js")
    kc.certificates.create(PROJECT, cert, pem=m.pem, environments=ENVS)
    kc.keys.create(
        PROJECT,
        key,
        key_type="EC",
        environments=ENVS,
        public_key=m.public_pem,
        private_key=m.issued.key_pem,
    )
    kc.keystores.create(PROJECT, store, environments=ENVS, file=m.p12, password=m.password)
    names = {s: unique(f"jwk-{s}") for s in ("cert", "key", "priv", "store", "paste", "gen")}
    sig = {"use_type": "SIGNATURE", "algorithm": "ES256"}
    kc.jwks.parse_from_certificate(PROJECT, names["cert"], cert, "production", **sig)
    kc.jwks.parse_from_key(PROJECT, names["key"], key, "production", **sig)
    kc.jwks.parse_from_key(PROJECT, names["priv"], key, "staging", source_type="PRIVATE_KEY", **sig)
    kc.jwks.parse_from_keystore(PROJECT, names["store"], store, "signer", "production", **sig)
    public = kc.jwks.get(PROJECT, names["cert"]).jwk or {}
    assert public["kty"] == "EC" and "d" not in public
    kc.jwks.parse_from_clipboard(PROJECT, names["paste"], {**public, "kid": "pasted"})
    kc.jwks.generate(PROJECT, names["gen"], "RSA", options={"keySize": 2048}, kid="gen-1")

    got = {n: kc.jwks.get(PROJECT, n) for n in names.values()}
    for source in ("cert", "key", "store", "paste"):
        jwk = got[names[source]].jwk or {}
        assert (jwk["x"], jwk["y"]) == (public["x"], public["y"]), source
    assert got[names["priv"]].private and "d" in (got[names["priv"]].jwk or {})
    assert got[names["store"]].source_type == "KEYSTORE"
    assert got[names["gen"]].type == "RSA" and got[names["gen"]].kid == "gen-1"
    assert "'d'" not in repr(got[names["priv"]])  # material stays out of repr

    listed = {j.name: j for j in kc.jwks.list(PROJECT).result_list}
    assert set(names.values()) <= set(listed)
    assert listed[names["priv"]].jwk is None  # a list leaves key material out

    renamed = unique("renamed")
    kc.jwks.update(PROJECT, names["paste"], new_name=renamed, description="renamed")
    assert kc.jwks.get(PROJECT, renamed).description == "renamed"
    kc.jwks.delete(PROJECT, renamed)
    with pytest.raises(BadRequest) as caught:
        kc.jwks.get(PROJECT, renamed)
    assert caught.value.error_description == f"JWK (name: {renamed}) is not found!"

    generic = unique("jwk-generic")
    kc.jwks.create(PROJECT, generic, source_type="COPY_PASTE", jwk_str=json.dumps(public))
    assert kc.jwks.get(PROJECT, generic).source_type == "COPY_PASTE"


def test_jwk_from_url(kc: Client) -> None:
    m = material("jwk-url")
    name = unique("jwk-url")
    with jwks_server() as server:
        pasted = unique("jwk-seed")
        kc.certificates.create(PROJECT, pasted, pem=m.pem, environments=["production"])
        kc.jwks.parse_from_certificate(
            PROJECT, pasted, pasted, "production", use_type="SIGNATURE", algorithm="ES256"
        )
        jwk = kc.jwks.get(PROJECT, pasted).jwk or {}
        url = server.route(json.dumps({"keys": [{**jwk, "kid": "one"}]}))
        kc.jwks.parse_from_url(PROJECT, name, url, kid="one", connect_timeout_ms=2000)
    got = kc.jwks.get(PROJECT, name)
    assert got.source_type == "URL" and got.source_url == url and got.kid == "one"
    assert (got.jwk or {})["x"] == jwk["x"]
