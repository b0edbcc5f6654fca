"""Key material is encrypted at rest: the raw database never holds a secret in the clear.

After private keys, keystores (with their passwords) and private JWKs (generated, and
from PRIVATE_KEY, KEYSTORE and COPY_PASTE sources) are stored, the database is read past
keyops (tests/support/rawdb.py: the SQLite files, WAL included; every column of every
PostgreSQL table) and searched for each secret in every encoding a careless store could
use. The API still returns every secret intact (get-key.md, get-keystore.md,
get-jwk.md: "Key material is decrypted and returned in the response").
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from keyops.config import Settings
from tests.conftest import Factory
from tests.crypto import certs
from tests.support.certificates import new_setting
from tests.support.keysecrets import (
    PRIVATE_MEMBERS,
    SecretsApi,
    b64,
    b64url_decode,
    key_body,
    key_entry,
    pkcs8_der,
    pkcs8_pem,
    spki_der,
)
from tests.support.keystores import BuiltStore, keystores
from tests.support.rawdb import files_under, raw_database
from tests.support.rfc_examples import RFC7517_A2

pytestmark = pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")


def encodings(raw: bytes) -> dict[str, bytes]:
    """The forms a secret could be stored in: raw, hex, base64 and base64url."""
    return {
        "raw": raw,
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "base64": base64.b64encode(raw).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
    }


def _int_bytes(value: int, size: int | None = None) -> bytes:
    return value.to_bytes(size or (value.bit_length() + 7) // 8, "big")


def private_key_needles(label: str, key: PrivateKeyTypes) -> dict[str, bytes]:
    needles: dict[str, bytes] = {}
    forms = {"PKCS#8 DER": pkcs8_der(key)}
    secrets: dict[str, bytes] = {}
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        forms["traditional DER"] = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        secrets |= {
            "d": _int_bytes(numbers.d),
            "p": _int_bytes(numbers.p),
            "q": _int_bytes(numbers.q),
            "dp": _int_bytes(numbers.dmp1),
            "dq": _int_bytes(numbers.dmq1),
            "qi": _int_bytes(numbers.iqmp),
        }
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        secrets["d"] = _int_bytes(key.private_numbers().private_value, size)
    elif isinstance(key, ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey):
        secrets["d"] = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    for name, raw in {**forms, **secrets}.items():
        for form, value in encodings(raw).items():
            needles[f"{label}: {name} as {form}"] = value
    pem = pkcs8_pem(key)
    needles[f"{label}: PEM"] = pem.encode()
    lines = pem.strip().splitlines()[1:-1]
    needles[f"{label}: PEM body"] = "\n".join(lines).encode()
    needles[f"{label}: PEM body, one line"] = "".join(lines).encode()
    return needles


def jwk_needles(label: str, jwk: dict[str, Any]) -> dict[str, bytes]:
    needles: dict[str, bytes] = {}
    for member, value in jwk.items():
        if member in PRIVATE_MEMBERS or (jwk["kty"] == "oct" and member == "k"):
            needles[f"{label}: {member} as in the JWK"] = str(value).encode()
            for form, encoded in encodings(b64url_decode(value)).items():
                needles[f"{label}: {member} as {form}"] = encoded
    assert needles, f"{label} has no private members"
    return needles


def keystore_needles(label: str, store: BuiltStore) -> dict[str, bytes]:
    needles = {f"{label}: file as {form}": v for form, v in encodings(store.data).items()}
    password = store.password
    needles |= {
        f"{label}: password": password.encode("utf-8"),
        f"{label}: password UTF-16BE": password.encode("utf-16-be"),
        f"{label}: password UTF-16LE": password.encode("utf-16-le"),
        f"{label}: password base64": base64.b64encode(password.encode()).rstrip(b"="),
    }
    for alias, entry in store.entries.items():
        if entry.key is not None:
            needles |= private_key_needles(f"{label} alias {alias}", entry.key)
    return needles


async def test_secrets_are_sealed_in_the_raw_database(
    client: httpx.AsyncClient, admin_token: str, factory: Factory, settings: Settings
) -> None:
    s = await new_setting(client, admin_token, factory, envs=2)
    api = SecretsApi(client, admin_token, s.project)
    env = s.envs[0]
    needles: dict[str, bytes] = {}

    # Keys: base64 DER and PEM in, every kind with a private part.
    keys: dict[str, tuple[str, PrivateKeyTypes | bytes, str]] = {
        "rsa": ("RSA", certs.new_key("rsa2048"), "der"),
        "ec": ("EC", certs.new_key("p384"), "pem"),
        "ed": ("ED25519", certs.new_key("ed25519"), "der"),
        "x": ("X25519", certs.new_key("x25519"), "pem"),
        "sym": ("SYMMETRIC", bytes(range(100, 132)), "der"),
    }
    for name, (key_type, key, form) in keys.items():
        await api.post_ok(
            "keys", key_body(name, key_type, [key_entry(e, key, form=form) for e in s.envs])
        )
        if isinstance(key, bytes):
            needles |= {f"key {name}: {f}": v for f, v in encodings(key).items()}
        else:
            needles |= private_key_needles(f"key {name}", key)

    # Keystores, with their passwords.
    stores = keystores()
    for name, store in (("jks", stores.jks_a), ("p12", stores.openssl_p12)):
        await api.post_ok(
            "keystores",
            {
                "name": name,
                "keyStoreEnvironmentList": [
                    {
                        "environmentName": env,
                        "type": store.type,
                        "file": b64(store.data),
                        "password": store.password,
                    }
                ],
            },
        )
        needles |= keystore_needles(f"keystore {name}", store)

    # Private JWKs from every source that can give one.
    jwk_bodies: list[tuple[str, dict[str, Any]]] = [
        ("generate", {"name": "gen-rsa", "type": "RSA", "rsa": {"keySize": 2048}}),
        ("generate", {"name": "gen-ec", "type": "EC", "ec": {"curveType": "P521"}}),
        ("generate", {"name": "gen-oct", "type": "OCT", "oct": {"keySize": 256}}),
        ("generate", {"name": "gen-okp", "type": "OKP", "okp": {"curveType": "ED25519"}}),
        (
            "",
            {
                "name": "from-key",
                "sourceType": "PRIVATE_KEY",
                "keyName": "rsa",
                "environmentName": env,
                "useType": "SIGNATURE",
                "algorithm": "PS256",
            },
        ),
        (
            "parse-from-key",
            {
                "name": "from-sym",
                "sourceType": "PRIVATE_KEY",
                "keyName": "sym",
                "environmentName": env,
                "useType": "SIGNATURE",
                "algorithm": "HS256",
            },
        ),
        (
            "parse-from-keystore",
            {
                "name": "from-keystore",
                "keyStoreName": "jks",
                "environmentName": env,
                "aliasName": "signer",
                "useType": "SIGNATURE",
                "algorithm": "RS256",
            },
        ),
        (
            "",
            {
                "name": "pasted-rsa",
                "sourceType": "COPY_PASTE",
                "jwkStr": RFC7517_A2,
                "kid": "2011-04-29",
            },
        ),
        ("parse-from-clipboard", {"name": "pasted-ec", "jwkStr": RFC7517_A2, "kid": "1"}),
    ]
    jwks: dict[str, dict[str, Any]] = {}
    for sub, body in jwk_bodies:
        await api.post_ok("jwks", body, sub=sub)
        jwks[body["name"]] = (await api.jwk(body["name"]))["jwk"]
        needles |= jwk_needles(f"JWK {body['name']}", jwks[body["name"]])
    for kid in ("1", "2011-04-29"):
        (rfc,) = [k for k in json.loads(RFC7517_A2)["keys"] if k["kid"] == kid]
        needles |= jwk_needles(f"RFC 7517 A.2 kid {kid}", rfc)

    haystack = raw_database(settings) + b"\n" + files_under(settings.data_dir)
    # The search does find what is stored in the clear: public keys and certificate facts.
    rsa_key = keys["rsa"][1]
    assert not isinstance(rsa_key, bytes)
    assert spki_der(rsa_key) in haystack
    assert stores.jks_a.entries["signer"].sha1.encode() in haystack
    assert jwks["gen-rsa"]["n"].encode() in haystack
    found = sorted(label for label, needle in needles.items() if needle in haystack)
    assert found == [], f"secrets stored in the clear: {found}"

    # ... and keyops still reads every one of them back.
    for name, (_key_type, key, _form) in keys.items():
        item = await api.one("keys", name)
        for shown in item["cryptoKeyInfoEnvironmentList"]:
            expected = key if isinstance(key, bytes) else pkcs8_der(key)
            assert base64.b64decode(shown["privateKey"]) == expected
    for name, store in (("jks", stores.jks_a), ("p12", stores.openssl_p12)):
        (shown,) = (await api.one("keystores", name))["keyStoreEnvironmentList"]
        assert base64.b64decode(shown["file"]) == store.data
    signer = stores.jks_a.entries["signer"].key
    assert isinstance(signer, rsa.RSAPrivateKey)
    assert (await api.jwk("from-keystore"))["jwk"]["d"] == base64.urlsafe_b64encode(
        _int_bytes(signer.private_numbers().d)
    ).rstrip(b"=").decode()
    pasted = (await api.jwk("pasted-rsa"))["jwk"]
    (rfc_rsa,) = [k for k in json.loads(RFC7517_A2)["keys"] if k["kid"] == "2011-04-29"]
    assert pasted == rfc_rsa
    for name, jwk in jwks.items():
        assert (await api.jwk(name))["jwk"] == jwk
