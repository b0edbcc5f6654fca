"""Helpers for the key, keystore and JWK-source API tests.

* ``SecretsApi`` speaks the key, keystore and JWK endpoints of one project as one caller.
* ``key_entry`` / ``key_body`` build CryptoKeyInfo bodies from pyca key objects, as base64
  DER (SubjectPublicKeyInfo / PKCS#8) or as PEM text.
* ``snapshot`` records everything a refused request must leave alone.
* The RFC 7517 appendix A examples, and JOSE checks done with jwcrypto, a JOSE
  implementation keyops does not use (joserfc, which keyops uses, only produces tokens).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from joserfc import jwe as joserfc_jwe
from joserfc import jws as joserfc_jws
from joserfc.jwk import JWKRegistry
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from tests.conftest import bearer
from tests.support.certificates import deployments

PAYLOAD = b'{"sub":"keyops","aud":"gateway"}'
# RFC 7517 section 6 / RFC 7518 section 6: the private members of each key type.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})
MATERIAL_FIELDS = frozenset({"rsa", "ec", "oct", "okp", "jwk"})


def bad_request(description: str) -> dict[str, str]:
    return {"error": "bad_request", "error_description": description}


def project_not_found(project: str) -> dict[str, str]:
    return {
        "error": "not_found",
        "error_description": (
            f"Project({project}) was not found or user does not have privilege to access it!"
        ),
    }


# --- the API of one project -----------------------------------------------------------


@dataclass
class SecretsApi:
    """The keys, keystores and JWK endpoints of one project, as one caller."""

    client: httpx.AsyncClient
    token: str
    project: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    def path(self, kind: str, name: str | None = None, query: str = "") -> str:
        base = f"/apiops/projects/{self.project}/{kind}/"
        if name is not None:
            base += f"{name}/"
        return base + (f"?{query}" if query else "")

    async def post(self, kind: str, body: Any, *, sub: str = "") -> httpx.Response:
        path = f"/apiops/projects/{self.project}/{kind}/{sub}"
        return await self.client.post(path, json=body, headers=self.headers)

    async def post_ok(self, kind: str, body: Any, *, sub: str = "") -> dict[str, Any]:
        r = await self.post(kind, body, sub=sub)
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        assert answer["success"] is True
        return answer

    async def put(self, kind: str, name: str, body: Any, query: str = "") -> httpx.Response:
        return await self.client.put(self.path(kind, name, query), json=body, headers=self.headers)

    async def put_ok(self, kind: str, name: str, body: Any, query: str = "") -> dict[str, Any]:
        r = await self.put(kind, name, body, query)
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        assert answer["success"] is True
        return answer

    async def get(self, kind: str, name: str) -> httpx.Response:
        return await self.client.get(self.path(kind, name), headers=self.headers)

    async def one(self, kind: str, name: str) -> dict[str, Any]:
        r = await self.get(kind, name)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True and len(body["resultList"]) == 1, body
        item: dict[str, Any] = body["resultList"][0]
        return item

    async def list_response(self, kind: str) -> httpx.Response:
        return await self.client.get(self.path(kind), headers=self.headers)

    async def list_ok(self, kind: str) -> list[dict[str, Any]]:
        r = await self.list_response(kind)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True and body["resultCount"] == len(body["resultList"])
        items: list[dict[str, Any]] = body["resultList"]
        return items

    async def delete(self, kind: str, name: str) -> httpx.Response:
        return await self.client.delete(self.path(kind, name), headers=self.headers)

    # JWK shortcuts
    async def jwk(self, name: str) -> dict[str, Any]:
        return await self.one("jwks", name)

    async def generate(self, body: dict[str, Any]) -> httpx.Response:
        return await self.post("jwks", body, sub="generate")


def env_results(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The environmentResults of a deploying call's answer, by environment."""
    return {e["environmentName"]: e for e in answer["deploymentResult"]["environmentResults"]}


async def held(
    client: httpx.AsyncClient, admin_token: str, env: str, kind: str
) -> dict[tuple[str, str], dict[str, Any]]:
    """What an environment holds of one kind, by (projectName, name)."""
    body = await deployments(client, admin_token, env)
    return {(r["projectName"], r["name"]): r for r in body["resultList"] if r["kind"] == kind}


async def snapshot(
    api: SecretsApi, admin_token: str, envs: Sequence[str], projects: Sequence[str] = ()
) -> dict[str, Any]:
    """Keys, keystores and JWKs of the projects in full, and what the environments hold."""
    state: dict[str, Any] = {}
    for project in [api.project, *projects]:
        view = SecretsApi(api.client, admin_token, project)
        for kind in ("keys", "keystores", "jwks"):
            listed = await view.list_ok(kind)
            state[f"{project}:{kind}"] = {
                "list": listed,
                "full": {i["name"]: await view.one(kind, i["name"]) for i in listed},
            }
    for env in envs:
        body = await deployments(api.client, admin_token, env)
        state[f"env:{env}"] = {
            "held": body["resultList"],
            "attempts": body["recentAttempts"],
            "status": body["status"],
        }
    return state


# --- key material -------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def spki_der(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_pem(key: PrivateKeyTypes) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def pkcs8_der(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pkcs8_pem(key: PrivateKeyTypes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def key_entry(
    env: str,
    key: PrivateKeyTypes | bytes,
    *,
    form: str = "der",
    public: bool = True,
    private: bool = True,
) -> dict[str, Any]:
    """One cryptoKeyInfoEnvironmentList item; ``key`` bytes is a SYMMETRIC secret."""
    entry: dict[str, Any] = {"environmentName": env}
    if isinstance(key, bytes):
        entry["privateKey"] = b64(key)
        return entry
    if public:
        entry["publicKey"] = spki_pem(key) if form == "pem" else b64(spki_der(key))
    if private:
        entry["privateKey"] = pkcs8_pem(key) if form == "pem" else b64(pkcs8_der(key))
    return entry


def key_body(
    name: str | None,
    key_type: str | None,
    entries: list[dict[str, Any]],
    description: str = "a test key",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "description": description,
        "keyType": key_type,
        "cryptoKeyInfoEnvironmentList": entries,
    }
    return body


def key_kind(key: PrivateKeyTypes | bytes) -> str:
    """The keyType keyops stores for a key object."""
    if isinstance(key, bytes):
        return "SYMMETRIC"
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "EC"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ED25519"
    if isinstance(key, x25519.X25519PrivateKey):
        return "X25519"
    raise ValueError(f"no key type for {key!r}")


# --- JWKs, checked with jwcrypto --------------------------------------------------------------


def jwcrypto_public(key: PrivateKeyTypes) -> dict[str, Any]:
    """The public JWK members of a key as jwcrypto computes them."""
    exported: dict[str, Any] = jwcrypto_jwk.JWK.from_pem(spki_pem(key).encode()).export_public(
        as_dict=True
    )
    return exported


def jwcrypto_private(key: PrivateKeyTypes) -> dict[str, Any]:
    """The private JWK members of a key as jwcrypto computes them."""
    exported: dict[str, Any] = jwcrypto_jwk.JWK.from_pem(pkcs8_pem(key).encode()).export_private(
        as_dict=True
    )
    return exported


def public_part(jwk: dict[str, Any]) -> dict[str, Any]:
    """The JWK without its private members (oct keys have no public part: unchanged)."""
    if jwk["kty"] == "oct":
        return dict(jwk)
    return {k: v for k, v in jwk.items() if k not in PRIVATE_MEMBERS}


def jwcrypto_verifies(token: str, public: dict[str, Any], alg: str) -> bool:
    checker = jwcrypto_jws.JWS()
    checker.deserialize(token)
    checker.allowed_algs = [alg]
    try:
        checker.verify(jwcrypto_jwk.JWK(**public), alg=alg)
    except jwcrypto_jws.InvalidJWSSignature:
        return False
    assert checker.payload == PAYLOAD
    return True


def sign_with(jwk: dict[str, Any], alg: str | None = None) -> str:
    """A compact JWS over PAYLOAD, signed by joserfc with a private JWK."""
    alg = alg or jwk["alg"]
    key = JWKRegistry.import_key({k: v for k, v in jwk.items() if k not in ("use", "key_ops")})
    token: str = joserfc_jws.serialize_compact({"alg": alg}, PAYLOAD, key, algorithms=[alg])
    return token


def sign_with_pem(key: PrivateKeyTypes, alg: str) -> str:
    """A compact JWS over PAYLOAD, signed by jwcrypto with a private key (no JWK involved)."""
    signer = jwcrypto_jwk.JWK.from_pem(pkcs8_pem(key).encode())
    token = jwcrypto_jws.JWS(PAYLOAD)
    token.allowed_algs = [alg]
    token.add_signature(signer, alg=alg, protected=json.dumps({"alg": alg}))
    result: str = token.serialize(compact=True)
    return result


# The content encryption that goes with each key-management algorithm here.
_ENC_FOR_DIR = {128: "A128GCM", 192: "A192GCM", 256: "A256GCM", 384: "A192CBC-HS384"}


def encryption_enc(jwk: dict[str, Any]) -> str:
    if jwk["alg"] == "dir":
        return _ENC_FOR_DIR[len(b64url_decode(jwk["k"])) * 8]
    return "A256GCM"


def encrypt_to(jwk: dict[str, Any]) -> str:
    """A compact JWE of PAYLOAD made by joserfc for the JWK's public part."""
    alg, enc = jwk["alg"], encryption_enc(jwk)
    recipient = JWKRegistry.import_key(
        {k: v for k, v in public_part(jwk).items() if k not in ("use", "key_ops")}
    )
    token: str = joserfc_jwe.encrypt_compact(
        {"alg": alg, "enc": enc}, PAYLOAD, recipient, algorithms=[alg, enc]
    )
    return token


def jwcrypto_decrypts(token: str, jwk: dict[str, Any]) -> bytes:
    opened = jwcrypto_jwe.JWE()
    header = json.loads(b64url_decode(token.split(".")[0]))
    opened.allowed_algs = [header["alg"], header["enc"]]
    opened.deserialize(token, key=jwcrypto_jwk.JWK(**jwk))
    payload: bytes = opened.payload
    return payload


def key_agreement_works(jwk: dict[str, Any]) -> None:
    """ECDH between the JWK's private key and a fresh key gives one secret both ways.

    For algorithms jwcrypto has no JWE for (ECDH-1PU): the private and public members
    must belong together. pyca/cryptography does the arithmetic.
    """
    imported = jwcrypto_jwk.JWK(**jwk)
    private = imported.get_op_key("unwrapKey")
    public = jwcrypto_jwk.JWK(**public_part(jwk)).get_op_key("wrapKey")
    if isinstance(private, ec.EllipticCurvePrivateKey):
        other = ec.generate_private_key(private.curve)
        assert other.exchange(ec.ECDH(), public) == private.exchange(ec.ECDH(), other.public_key())
    else:
        assert isinstance(private, x25519.X25519PrivateKey)
        other_x = x25519.X25519PrivateKey.generate()
        assert other_x.exchange(public) == private.exchange(other_x.public_key())


def rsa_oaep_works(jwk: dict[str, Any]) -> None:
    """RSA-OAEP-384/512, which neither JOSE library offers: wrap a key with the public
    members and unwrap it with the private ones, with pyca/cryptography."""
    hash_algorithm = {"RSA-OAEP-384": hashes.SHA384(), "RSA-OAEP-512": hashes.SHA512()}[jwk["alg"]]
    oaep = padding.OAEP(mgf=padding.MGF1(hash_algorithm), algorithm=hash_algorithm, label=None)
    private = jwcrypto_jwk.JWK(**jwk).get_op_key("unwrapKey")
    public = jwcrypto_jwk.JWK(**public_part(jwk)).get_op_key("wrapKey")
    cek = os.urandom(32)
    assert private.decrypt(public.encrypt(cek, oaep), oaep) == cek


def use_the_jwk(jwk: dict[str, Any]) -> None:
    """A private JWK at work: joserfc signs (or encrypts), jwcrypto verifies (or decrypts)."""
    alg = jwk["alg"]
    if jwk.get("use") == "sig":
        public = public_part(jwk)
        assert not PRIVATE_MEMBERS & set(public) or jwk["kty"] == "oct"
        assert jwcrypto_verifies(sign_with(jwk), public, alg)
    elif alg.startswith("ECDH-1PU"):
        key_agreement_works(jwk)
    elif alg in ("RSA-OAEP-384", "RSA-OAEP-512"):
        rsa_oaep_works(jwk)
    else:
        assert jwcrypto_decrypts(encrypt_to(jwk), jwk) == PAYLOAD


# --- RFC 7638 thumbprints, computed here rather than by the code under test -----------------

_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}


def thumbprint(jwk: dict[str, Any], hash_name: str = "sha256") -> str:
    members = {k: jwk[k] for k in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return b64url(hashlib.new(hash_name, canonical).digest())


def rfc_key(text: str, kid: str) -> dict[str, Any]:
    """The key with ``kid`` in one of the appendix A sets, as printed there."""
    (found,) = [k for k in json.loads(text)["keys"] if k.get("kid") == kid]
    key: dict[str, Any] = found
    return key
