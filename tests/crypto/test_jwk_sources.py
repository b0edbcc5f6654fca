"""JWK sources of keyops.crypto.jwk: pasted JSON, generation, keys and keystore aliases.

Every JWK made here is used with joserfc and checked by jwcrypto, an independent JOSE
implementation (ES256K included: jwcrypto 1.6 supports it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwe as joserfc_jwe
from joserfc import jws as joserfc_jws
from joserfc.jwk import JWKRegistry
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from keyops.crypto.jwk import (
    PRIVATE_MEMBERS,
    JwkError,
    generate_jwk,
    join_private,
    jwk_from_certificate,
    jwk_from_key,
    jwk_from_keystore_entry,
    jwk_thumbprint,
    normalize_algorithm,
    parse_jwk_text,
    public_jwk,
    split_private,
    validate_use_and_algorithm,
)
from keyops.crypto.keys import KeyMaterial, parse_key_material
from keyops.crypto.keystores import KeystoreEntry, parse_keystore
from keyops.crypto.x509 import parse_certificate
from tests.crypto import certs
from tests.support.rfc_examples import (
    RFC7517_A1,
    RFC7517_A2,
    RFC7517_A3,
    RFC7517_A3_HMAC_KID,
    RFC7638_THUMBPRINT,
)

# joserfc flags the polymorphic "EdDSA" as deprecated by RFC 9864, but it is what the
# documented table offers for OKP signatures.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated:joserfc.errors.SecurityWarning")

NOW = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)
NOW_MS = "1714566615123"
PAYLOAD = b'{"sub":"keyops"}'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def keys_of(text: str) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = json.loads(text)["keys"]
    return keys


def sign(jwk: dict[str, Any]) -> str:
    """Compact JWS over PAYLOAD made by joserfc with a private JWK."""
    key = JWKRegistry.import_key(jwk)
    alg = jwk["alg"]
    return joserfc_jws.serialize_compact({"alg": alg}, PAYLOAD, key, algorithms=[alg])


def jwcrypto_verifies(token: str, public: dict[str, Any]) -> None:
    checker = jwcrypto_jws.JWS()
    checker.deserialize(token)
    checker.verify(jwcrypto_jwk.JWK(**public), alg=public["alg"])
    assert checker.payload == PAYLOAD


def encrypt_and_decrypt(jwk: dict[str, Any], enc: str = "A256GCM") -> None:
    """joserfc encrypts to the JWK (public part if any); jwcrypto decrypts with it."""
    alg = jwk["alg"]
    recipient = jwk if jwk["kty"] == "oct" else public_jwk(jwk)
    token = joserfc_jwe.encrypt_compact(
        {"alg": alg, "enc": enc},
        PAYLOAD,
        JWKRegistry.import_key(recipient),
        algorithms=[alg, enc],
    )
    opened = jwcrypto_jwe.JWE()
    opened.deserialize(token, key=jwcrypto_jwk.JWK(**jwk))
    assert opened.payload == PAYLOAD


def use_with_both_libraries(jwk: dict[str, Any]) -> None:
    if jwk["use"] == "sig":
        public = jwk if jwk["kty"] == "oct" else public_jwk(jwk)
        assert not (set(public) & PRIVATE_MEMBERS)
        jwcrypto_verifies(sign(jwk), public)
    else:
        encrypt_and_decrypt(jwk)


# --- pasted JWKs and JWK Sets ------------------------------------------------------------


@pytest.mark.parametrize("text", [RFC7517_A1, RFC7517_A2])
@pytest.mark.parametrize("index", [0, 1])
def test_rfc7517_sets_pick_by_kid(text: str, index: int) -> None:
    expected = keys_of(text)[index]
    picked = parse_jwk_text(text, expected["kid"])
    assert picked == expected
    assert list(picked) == list(expected)  # as given, member order included
    # jwcrypto reads the same key and agrees on the thumbprint.
    assert jwk_thumbprint(picked) == jwcrypto_jwk.JWK(**picked).thumbprint()


def test_rfc7517_private_key_signs_for_the_public_key() -> None:
    private = parse_jwk_text(RFC7517_A2, "2011-04-29")
    public = parse_jwk_text(RFC7517_A1, "2011-04-29")
    assert {"d", "p", "q", "dp", "dq", "qi"} <= set(private)
    assert public_jwk(private) == public
    jwcrypto_verifies(sign(private), public)


def test_rfc7517_ec_private_key_decrypts_for_the_public_key() -> None:
    private = parse_jwk_text(RFC7517_A2, "1") | {"alg": "ECDH-ES"}
    encrypt_and_decrypt(private)


def test_rfc7517_symmetric_keys() -> None:
    hmac_key = parse_jwk_text(RFC7517_A3, RFC7517_A3_HMAC_KID)
    assert hmac_key == keys_of(RFC7517_A3)[1]
    jwcrypto_verifies(sign(hmac_key | {"alg": "HS256"}), hmac_key | {"alg": "HS256"})
    # The first key has no kid: it can only be taken alone.
    wrap_key = keys_of(RFC7517_A3)[0]
    assert parse_jwk_text(json.dumps(wrap_key), None) == wrap_key
    encrypt_and_decrypt(wrap_key, enc="A128GCM")
    with pytest.raises(JwkError) as info:
        parse_jwk_text(RFC7517_A3, None)
    assert info.value.reason == "kid value can not be empty when the JWK Set holds several keys!"


def test_rfc7638_thumbprint_of_the_rfc7517_key() -> None:
    key = parse_jwk_text(RFC7517_A1, "2011-04-29")
    assert jwk_thumbprint(key) == RFC7638_THUMBPRINT
    # RFC 7638 section 3.1 spells out the hashed JSON; SHA-1 over it is the SHA1 kid.
    canonical = json.dumps({"e": key["e"], "kty": "RSA", "n": key["n"]}, separators=(",", ":"))
    assert b64url(hashlib.sha256(canonical.encode()).digest()) == RFC7638_THUMBPRINT


def test_single_jwk_and_set_of_one() -> None:
    key = keys_of(RFC7517_A1)[1]
    assert parse_jwk_text(json.dumps(key), None) == key
    assert parse_jwk_text(json.dumps(key), "2011-04-29") == key
    assert parse_jwk_text(json.dumps({"keys": [key]}), None) == key
    assert parse_jwk_text(json.dumps({"keys": [key]}), "") == key
    without_kid = {k: v for k, v in key.items() if k != "kid"}
    # The caller may set its own kid on a key that has none.
    assert parse_jwk_text(json.dumps(without_kid), "mine") == without_kid


def reason_for(text: str, kid: str | None = None) -> str:
    with pytest.raises(JwkError) as info:
        parse_jwk_text(text, kid)
    return info.value.reason


def test_parse_errors() -> None:
    rsa_key = keys_of(RFC7517_A1)[1]
    assert reason_for("") == "jwkStr value can not be empty!"
    assert reason_for("   ") == "jwkStr value can not be empty!"
    assert reason_for("{not json") == "jwkStr is not valid JSON!"
    assert reason_for('{"kty": "RSA",}') == "jwkStr is not valid JSON!"
    assert reason_for("[1, 2]") == "jwkStr must be a JWK or a JWK Set JSON object!"
    assert reason_for('"text"') == "jwkStr must be a JWK or a JWK Set JSON object!"
    assert reason_for('{"keys": {}}') == (
        "The keys member of the JWK Set must be a list of JWK objects!"
    )
    assert reason_for('{"keys": [1]}') == (
        "The keys member of the JWK Set must be a list of JWK objects!"
    )
    assert reason_for('{"keys": []}') == "The JWK Set holds no keys!"
    assert reason_for(RFC7517_A1) == (
        "kid value can not be empty when the JWK Set holds several keys!"
    )
    assert reason_for(RFC7517_A1, "x") == "No key with kid (x) in the JWK Set!"
    twice = json.dumps({"keys": [rsa_key, rsa_key]})
    assert (
        reason_for(twice, "2011-04-29") == "The JWK Set holds several keys with kid (2011-04-29)!"
    )
    assert reason_for(json.dumps(rsa_key), "other") == (
        "The JWK's kid (2011-04-29) does not match kid (other)!"
    )
    assert reason_for('{"n": "AQAB"}') == "The JWK has no kty member!"
    assert reason_for('{"kty": "DSA"}') == (
        "Key type (DSA) can not be used for a JWK! Valid key types: RSA, EC, oct, OKP"
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"kty": "RSA", "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        # A valid x with the y of another point: not on the curve.
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
        },
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "OKP", "crv": "P-256", "x": "AAAA"},
        {"kty": "oct"},
    ],
)
def test_invalid_keys(bad: dict[str, Any]) -> None:
    assert reason_for(json.dumps(bad)) == "The JWK is not a valid JSON Web Key!"


def test_inconsistent_rsa_private_key() -> None:
    key = parse_jwk_text(RFC7517_A2, "2011-04-29")
    # The p of another key: the private numbers no longer fit the modulus.
    other = jwcrypto_jwk.JWK.generate(kty="RSA", size=2048).export_private(as_dict=True)
    assert reason_for(json.dumps(key | {"p": other["p"]})) == (
        "The JWK is not a valid JSON Web Key!"
    )


# --- algorithm spellings ---------------------------------------------------------------------

# generate-jwk.md spelling -> JOSE name
SPEC_SPELLINGS = {
    "RSA256": "RS256",
    "RSA384": "RS384",
    "RSA512": "RS512",
    "PS256": "PS256",
    "RSA1_5": "RSA1_5",
    "RSA_OAEP": "RSA-OAEP",
    "RSA_OAEP_256": "RSA-OAEP-256",
    "RSA_OAEP_384": "RSA-OAEP-384",
    "RSA_OAEP_512": "RSA-OAEP-512",
    "ES256K": "ES256K",
    "ECDH_ES": "ECDH-ES",
    "ECDH_ES_A128KW": "ECDH-ES+A128KW",
    "ECDH_ES_A192KW": "ECDH-ES+A192KW",
    "ECDH_ES_A256KW": "ECDH-ES+A256KW",
    "ECDH_1PU": "ECDH-1PU",
    "ECDH_1PU_A128KW": "ECDH-1PU+A128KW",
    "ECDH_1PU_A192KW": "ECDH-1PU+A192KW",
    "ECDH_1PU_A256KW": "ECDH-1PU+A256KW",
    "HS384": "HS384",
    "A256GCMKW": "A256GCMKW",
    "DIR": "dir",
    "PBES2_HS256_A128KW": "PBES2-HS256+A128KW",
    "PBES2_HS384_A192KW": "PBES2-HS384+A192KW",
    "PBES2_HS512_A256KW": "PBES2-HS512+A256KW",
    "EdDSA": "EdDSA",
}


@pytest.mark.parametrize(("spelling", "jose"), sorted(SPEC_SPELLINGS.items()))
def test_normalize_algorithm(spelling: str, jose: str) -> None:
    assert normalize_algorithm(spelling) == jose
    assert normalize_algorithm(jose) == jose


@pytest.mark.parametrize("unknown", ["rs256", "RSA", "RSA_OAEP_1024", "", "HS256 "])
def test_normalize_leaves_unknown_values(unknown: str) -> None:
    assert normalize_algorithm(unknown) == unknown


@pytest.mark.parametrize(
    ("kty", "use_type", "spelling", "jose"),
    [
        ("RSA", "SIGNATURE", "RSA256", "RS256"),
        ("RSA", "ENCRYPTION", "RSA_OAEP_256", "RSA-OAEP-256"),
        ("EC", "ENCRYPTION", "ECDH_ES_A128KW", "ECDH-ES+A128KW"),
        ("OKP", "ENCRYPTION", "ECDH_1PU_A256KW", "ECDH-1PU+A256KW"),
        ("OCT", "ENCRYPTION", "PBES2_HS256_A128KW", "PBES2-HS256+A128KW"),
        ("OCT", "ENCRYPTION", "DIR", "dir"),
    ],
)
def test_validate_accepts_spec_spellings(kty: str, use_type: str, spelling: str, jose: str) -> None:
    expected = ("sig" if use_type == "SIGNATURE" else "enc", jose)
    assert validate_use_and_algorithm(kty, use_type, spelling) == expected


def test_spec_spelling_for_the_wrong_key_type_names_the_input() -> None:
    with pytest.raises(JwkError) as info:
        validate_use_and_algorithm("EC", "SIGNATURE", "RSA256")
    assert info.value.reason == (
        "Algorithm (RSA256) is not valid for EC keys with useType SIGNATURE! "
        "Valid values: ES256, ES384, ES512, ES256K"
    )


# --- generation ------------------------------------------------------------------------------


def generate(kty: str, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "key_size": None,
        "curve": None,
        "use_type": None,
        "algorithm": None,
        "kid": None,
        "key_id_type": None,
        "not_before": None,
        "expiration": None,
        "now": NOW,
    }
    return generate_jwk(kty, **(args | overrides))


GENERATED = [
    # (kty, overrides, expected use, expected alg, expected private members)
    ("RSA", {"key_size": 2048}, "sig", "RS256", {"d", "p", "q", "dp", "dq", "qi"}),
    ("EC", {"curve": "P256"}, "sig", "ES256", {"d"}),
    ("EC", {"curve": "P384"}, "sig", "ES384", {"d"}),
    ("EC", {"curve": "P521"}, "sig", "ES512", {"d"}),
    ("EC", {"curve": "SECP256K1"}, "sig", "ES256K", {"d"}),
    ("EC", {"curve": "P-256", "use_type": "ENCRYPTION"}, "enc", "ECDH-ES", {"d"}),
    ("OCT", {"key_size": 256}, "sig", "HS256", {"k"}),
    ("OCT", {"key_size": 128, "use_type": "ENCRYPTION"}, "enc", "A128KW", {"k"}),
    ("OCT", {"key_size": 192, "use_type": "ENCRYPTION"}, "enc", "A192KW", {"k"}),
    ("OCT", {"key_size": 256, "use_type": "ENCRYPTION"}, "enc", "A256KW", {"k"}),
    ("OKP", {"curve": "ED25519"}, "sig", "EdDSA", {"d"}),
    ("OKP", {"curve": "X25519"}, "enc", "ECDH-ES", {"d"}),
]


@pytest.mark.parametrize(("kty", "overrides", "use", "alg", "private"), GENERATED)
def test_generated_jwk_works_with_jwcrypto(
    kty: str, overrides: dict[str, Any], use: str, alg: str, private: set[str]
) -> None:
    jwk = generate(kty, **overrides)
    assert jwk["kty"] == ("oct" if kty == "OCT" else kty)
    assert (jwk["use"], jwk["alg"]) == (use, alg)
    assert jwk["kid"] == NOW_MS  # keyIdType TIMESTAMP by default
    assert private <= set(jwk)
    if "curve" in overrides:
        assert (
            jwk["crv"]
            == {
                "P256": "P-256",
                "P-256": "P-256",
                "P384": "P-384",
                "P521": "P-521",
                "SECP256K1": "secp256k1",
                "ED25519": "Ed25519",
                "X25519": "X25519",
            }[overrides["curve"]]
        )
    if kty == "OCT":
        assert len(base64.urlsafe_b64decode(jwk["k"] + "==")) * 8 == overrides["key_size"]
    if kty == "RSA":
        assert jwcrypto_jwk.JWK(**jwk).get_op_key("sign").key_size == overrides["key_size"]
    # iat = now, nbf = now, exp = one year later, as NumericDate integers.
    assert (jwk["iat"], jwk["nbf"]) == (1714566615, 1714566615)
    assert jwk["exp"] == int(datetime(2025, 5, 1, 12, 30, 15, tzinfo=UTC).timestamp())
    use_with_both_libraries(jwk)
    assert parse_jwk_text(json.dumps(jwk), None) == jwk


def test_generated_rsa_3072_and_4096() -> None:
    signing = generate("RSA", key_size=3072, algorithm="PS384")
    assert jwcrypto_jwk.JWK(**signing).get_op_key("sign").key_size == 3072
    use_with_both_libraries(signing)
    encrypting = generate("RSA", key_size=4096, use_type="ENCRYPTION")
    assert encrypting["alg"] == "RSA-OAEP-256"
    assert jwcrypto_jwk.JWK(**encrypting).get_op_key("decrypt").key_size == 4096
    use_with_both_libraries(encrypting)


@pytest.mark.parametrize(
    ("kty", "overrides", "jose"),
    [
        ("RSA", {"key_size": 2048, "algorithm": "RSA512"}, "RS512"),
        ("RSA", {"key_size": 2048, "use_type": "ENCRYPTION", "algorithm": "RSA_OAEP"}, "RSA-OAEP"),
        ("EC", {"curve": "P384", "use_type": "ENCRYPTION", "algorithm": "ECDH_ES_A256KW"}, None),
        ("OKP", {"curve": "X25519", "algorithm": "ECDH_ES_A128KW"}, "ECDH-ES+A128KW"),
        ("OCT", {"key_size": 256, "use_type": "ENCRYPTION", "algorithm": "DIR"}, "dir"),
        ("OCT", {"key_size": 128, "use_type": "ENCRYPTION", "algorithm": "A128GCMKW"}, None),
        (
            "OCT",
            {"key_size": 256, "use_type": "ENCRYPTION", "algorithm": "PBES2_HS256_A128KW"},
            "PBES2-HS256+A128KW",
        ),
    ],
)
def test_generated_with_spec_algorithm_spellings(
    kty: str, overrides: dict[str, Any], jose: str | None
) -> None:
    jwk = generate(kty, **overrides)
    assert jwk["alg"] == (jose or normalize_algorithm(overrides["algorithm"]))
    use_with_both_libraries(jwk)


def test_key_id_types() -> None:
    sha256 = generate("EC", curve="P256", key_id_type="SHA256")
    assert sha256["kid"] == jwk_thumbprint(sha256)
    assert sha256["kid"] == jwcrypto_jwk.JWK(**sha256).thumbprint()
    sha1 = generate("RSA", key_size=2048, key_id_type="SHA1")
    assert sha1["kid"] == jwcrypto_jwk.JWK(**sha1).thumbprint(hashes.SHA1())  # noqa: S303
    oct_sha1 = generate("OCT", key_size=256, key_id_type="SHA1")
    assert oct_sha1["kid"] == jwcrypto_jwk.JWK(**oct_sha1).thumbprint(hashes.SHA1())  # noqa: S303
    okp_sha256 = generate("OKP", curve="X25519", key_id_type="SHA256")
    assert okp_sha256["kid"] == jwcrypto_jwk.JWK(**okp_sha256).thumbprint()
    assert generate("OKP", curve="ED25519", key_id_type="TIMESTAMP")["kid"] == NOW_MS
    assert generate("OKP", curve="ED25519", key_id_type="ISO_DATE")["kid"] == (
        "2024-05-01T12:30:15.123Z"
    )
    none = generate("OKP", curve="ED25519", key_id_type="NONE")
    assert "kid" not in none
    assert list(none)[:3] == ["kty", "use", "alg"]
    # An explicit kid wins over any keyIdType.
    for id_type in ("TIMESTAMP", "SHA256", "NONE", None):
        assert generate("EC", curve="P256", kid="mine", key_id_type=id_type)["kid"] == "mine"
    # An empty kid is no kid.
    assert generate("EC", curve="P256", kid=" ")["kid"] == NOW_MS


def test_dates() -> None:
    nbf = datetime(2030, 1, 1, tzinfo=UTC)
    exp = datetime(2030, 6, 1, 8, tzinfo=UTC)
    jwk = generate("OCT", key_size=256, not_before=nbf, expiration=exp)
    assert (jwk["iat"], jwk["nbf"], jwk["exp"]) == (
        int(NOW.timestamp()),
        int(nbf.timestamp()),
        int(exp.timestamp()),
    )
    # expirationTime defaults to one year after notBeforeTime; 29 February has none.
    leap = generate("OCT", key_size=256, not_before=datetime(2028, 2, 29, 10, tzinfo=UTC))
    assert leap["exp"] == int(datetime(2029, 2, 28, 10, tzinfo=UTC).timestamp())
    # Naive values are UTC; other zones are converted.
    naive = generate("OCT", key_size=256, not_before=datetime(2030, 1, 1))
    assert naive["nbf"] == int(nbf.timestamp())
    zoned = datetime(2030, 1, 1, 3, tzinfo=timezone(timedelta(hours=3)))
    assert generate("OCT", key_size=256, not_before=zoned)["nbf"] == int(nbf.timestamp())


@pytest.mark.parametrize(
    ("nbf", "exp"),
    [
        (NOW, NOW),
        (NOW, NOW - timedelta(days=1)),
        (NOW, NOW + timedelta(milliseconds=500)),  # the same NumericDate second
        (None, NOW - timedelta(seconds=1)),
    ],
)
def test_expiration_must_follow_not_before(nbf: datetime | None, exp: datetime) -> None:
    with pytest.raises(JwkError) as info:
        generate("OCT", key_size=256, not_before=nbf, expiration=exp)
    assert info.value.reason == "expirationTime must be after notBeforeTime!"


@pytest.mark.parametrize(
    ("kty", "overrides", "reason"),
    [
        ("", {}, "JWK type can not be empty!"),
        ("DSA", {}, "JWK type (DSA) is not valid! Valid values: RSA, EC, OCT, OKP"),
        ("RSA", {}, "keySize value can not be empty!"),
        (
            "RSA",
            {"key_size": 1024},
            "keySize (1024) is not valid for RSA keys! Valid values: 2048, 3072, 4096",
        ),
        (
            "OCT",
            {"key_size": 512},
            "keySize (512) is not valid for OCT keys! Valid values: 128, 192, 256",
        ),
        ("EC", {}, "curveType value can not be empty!"),
        (
            "EC",
            {"curve": "P224"},
            "curveType (P224) is not valid for EC keys! Valid values: P256, P384, P521, SECP256K1",
        ),
        (
            "OKP",
            {"curve": "ED448"},
            "curveType (ED448) is not supported for OKP keys! Valid values: ED25519, X25519",
        ),
        (
            "OKP",
            {"curve": "X448"},
            "curveType (X448) is not supported for OKP keys! Valid values: ED25519, X25519",
        ),
        (
            "OKP",
            {"curve": "X25519", "use_type": "SIGNATURE"},
            "Algorithm (EdDSA) needs an OKP key on curve Ed25519 or Ed448, "
            "but this key is on curve X25519!",
        ),
        (
            "OKP",
            {"curve": "ED25519", "use_type": "ENCRYPTION"},
            "Algorithm (ECDH-ES) needs an OKP key on curve X25519 or X448, "
            "but this key is on curve Ed25519!",
        ),
        (
            "EC",
            {"curve": "P384", "algorithm": "ES256"},
            "Algorithm (ES256) needs an EC key on curve P-256, but this key is on curve P-384!",
        ),
        ("EC", {"curve": "P256", "use_type": "sig"}, "useType must be SIGNATURE or ENCRYPTION!"),
        (
            "RSA",
            {"key_size": 2048, "algorithm": "HS256"},
            "Algorithm (HS256) is not valid for RSA keys with useType SIGNATURE! "
            "Valid values: RS256, RS384, RS512, PS256, PS384, PS512",
        ),
        # RFC 7518 section 3.2: an HMAC key is at least as long as the hash.
        (
            "OCT",
            {"key_size": 128},
            "Algorithm (HS256) needs a key of at least 256 bits, but this key has 128 bits!",
        ),
        (
            "OCT",
            {"key_size": 256, "algorithm": "HS512"},
            "Algorithm (HS512) needs a key of at least 512 bits, but this key has 256 bits!",
        ),
        (
            "OCT",
            {"key_size": 128, "use_type": "ENCRYPTION", "algorithm": "A256KW"},
            "Algorithm (A256KW) needs a 256-bit key, but this key has 128 bits!",
        ),
        (
            "OCT",
            {"key_size": 256, "use_type": "ENCRYPTION", "key_id_type": "UUID"},
            "keyIdType (UUID) is not valid! Valid values: TIMESTAMP, SHA256, SHA1, ISO_DATE, NONE",
        ),
    ],
)
def test_generate_errors(kty: str, overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(JwkError) as info:
        generate(kty, **overrides)
    assert info.value.reason == reason


def test_jose_spellings_of_type_and_curve() -> None:
    assert generate("oct", key_size=256)["kty"] == "oct"
    assert generate("EC", curve="secp256k1")["crv"] == "secp256k1"
    assert generate("OKP", curve="Ed25519")["crv"] == "Ed25519"


# --- public and private parts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kty", "overrides"),
    [("RSA", {"key_size": 2048}), ("EC", {"curve": "P256"}), ("OCT", {"key_size": 256})],
)
def test_split_and_join(kty: str, overrides: dict[str, Any]) -> None:
    jwk = generate(kty, **overrides)
    public, private = split_private(jwk)
    assert not (set(public) & (PRIVATE_MEMBERS | ({"k"} if kty == "OCT" else set())))
    assert {"kty", "kid", "use", "alg", "iat", "nbf", "exp"} <= set(public)
    expected_private = {
        "RSA": {"d", "p", "q", "dp", "dq", "qi"},
        "EC": {"d"},
        "OCT": {"k"},
    }[kty]
    assert set(private) == expected_private
    assert join_private(public, private) == jwk
    if kty != "OCT":
        assert public == public_jwk(jwk)


def test_split_keeps_certificate_members() -> None:
    issued = certs.self_signed("p256")
    jwk = jwk_from_keystore_entry(
        KeystoreEntry(
            "a",
            "PRIVATE_KEY",
            parse_certificate(issued.der),
            [issued.der],
            private_der=issued.key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ),
        use_type="SIGNATURE",
        algorithm="ES256",
    )
    public, private = split_private(jwk)
    assert {"x5c", "x5t", "x5t#S256"} <= set(public)
    assert list(private) == ["d"]


def test_join_errors() -> None:
    with pytest.raises(JwkError) as info:
        join_private({"kty": "EC", "crv": "P-256"}, {"d": "x", "crv": "P-384"})
    assert info.value.reason == "Not a private JWK member: crv!"
    with pytest.raises(JwkError) as info:
        join_private({"kty": "EC", "d": "x"}, {"d": "y"})
    assert info.value.reason == "JWK member given twice: d!"


# --- JWKs from stored keys -------------------------------------------------------------------


KEY_CASES = [
    ("rsa2048", "RSA", "RS256"),
    ("rsa2048", "RSA", "RSA512"),
    ("p256", "EC", "ES256"),
    ("p384", "EC", "ES384"),
    ("secp256k1", "EC", "ES256K"),
    ("ed25519", "ED25519", "EdDSA"),
    ("ed448", "ED448", "EdDSA"),
]


def material_of(kind: str, key_type: str, *, private: bool = True) -> KeyMaterial:
    key = certs.key(kind)
    if private:
        return parse_key_material(key_type, None, certs.key_pem(key).decode())
    spki = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return parse_key_material(key_type, spki.decode(), None)


@pytest.mark.parametrize(("kind", "key_type", "alg"), KEY_CASES)
def test_jwk_from_key_signatures_verify_with_jwcrypto(kind: str, key_type: str, alg: str) -> None:
    private_jwk = jwk_from_key(
        material_of(kind, key_type), include_private=True, use_type="SIGNATURE", algorithm=alg
    )
    public_jwk_ = jwk_from_key(
        material_of(kind, key_type, private=False),
        include_private=False,
        use_type="SIGNATURE",
        algorithm=alg,
    )
    assert public_jwk_["alg"] == private_jwk["alg"] == normalize_algorithm(alg)
    assert public_jwk_["use"] == "sig"
    assert "d" in private_jwk and not (set(public_jwk_) & PRIVATE_MEMBERS)
    assert public_jwk(private_jwk) == public_jwk_
    # jwcrypto converts the same public key on its own.
    reference = jwcrypto_jwk.JWK.from_pem(
        certs.key(kind)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    reference_members = json.loads(reference.export_public())
    assert {k: public_jwk_[k] for k in reference_members} == reference_members
    assert public_jwk_["kid"] == reference.thumbprint()
    jwcrypto_verifies(sign(private_jwk), public_jwk_)


@pytest.mark.parametrize(
    ("kind", "key_type", "alg"),
    [
        ("rsa2048", "RSA", "RSA_OAEP_256"),
        ("p256", "EC", "ECDH-ES+A128KW"),
        ("x25519", "X25519", "ECDH-ES"),
    ],
)
def test_jwk_from_key_encryption(kind: str, key_type: str, alg: str) -> None:
    jwk = jwk_from_key(
        material_of(kind, key_type), include_private=True, use_type="ENCRYPTION", algorithm=alg
    )
    assert jwk["use"] == "enc"
    encrypt_and_decrypt(jwk)


def test_jwk_from_symmetric_key() -> None:
    secret = os.urandom(32)
    material = parse_key_material("SYMMETRIC", None, base64.b64encode(secret).decode())
    jwk = jwk_from_key(material, include_private=True, use_type="SIGNATURE", algorithm="HS256")
    assert jwk == {
        "kty": "oct",
        "kid": jwcrypto_jwk.JWK(kty="oct", k=b64url(secret)).thumbprint(),
        "use": "sig",
        "alg": "HS256",
        "k": b64url(secret),
    }
    jwcrypto_verifies(sign(jwk), jwk)
    wrap = jwk_from_key(material, include_private=True, use_type="ENCRYPTION", algorithm="A256KW")
    encrypt_and_decrypt(wrap)
    direct = jwk_from_key(
        material, include_private=True, use_type="ENCRYPTION", algorithm="DIR", kid="d1"
    )
    assert (direct["alg"], direct["kid"]) == ("dir", "d1")
    encrypt_and_decrypt(direct)


@pytest.mark.parametrize(
    ("size", "alg", "reason"),
    [
        (
            16,
            "HS256",
            "Algorithm (HS256) needs a key of at least 256 bits, but this key has 128 bits!",
        ),
        (32, "A128KW", "Algorithm (A128KW) needs a 128-bit key, but this key has 256 bits!"),
        (24, "A256GCMKW", "Algorithm (A256GCMKW) needs a 256-bit key, but this key has 192 bits!"),
        (
            40,
            "DIR",
            "Algorithm (dir) needs a 128, 192, 256, 384 or 512-bit key, but this key has 320 bits!",
        ),
    ],
)
def test_symmetric_key_size_must_fit_the_algorithm(size: int, alg: str, reason: str) -> None:
    material = parse_key_material("SYMMETRIC", None, base64.b64encode(os.urandom(size)).decode())
    use_type = "SIGNATURE" if alg.startswith("HS") else "ENCRYPTION"
    with pytest.raises(JwkError) as info:
        jwk_from_key(material, include_private=True, use_type=use_type, algorithm=alg)
    assert info.value.reason == reason


def test_jwk_from_key_errors() -> None:
    symmetric = parse_key_material("SYMMETRIC", None, base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(JwkError) as info:
        jwk_from_key(symmetric, include_private=False, use_type="SIGNATURE", algorithm="HS256")
    assert info.value.reason == "OCT keys are secret and have no public part!"
    public_only = material_of("p256", "EC", private=False)
    with pytest.raises(JwkError) as info:
        jwk_from_key(public_only, include_private=True, use_type="SIGNATURE", algorithm="ES256")
    assert info.value.reason == "The key has no privateKey, so it can not give a private JWK!"
    with pytest.raises(JwkError) as info:
        jwk_from_key(public_only, include_private=False, use_type="SIGNATURE", algorithm="ES384")
    assert info.value.reason == (
        "Algorithm (ES384) needs an EC key on curve P-384, but this key is on curve P-256!"
    )
    brainpool = parse_key_material(
        "EC", None, certs.key_pem(ec.generate_private_key(ec.BrainpoolP256R1())).decode()
    )
    with pytest.raises(JwkError) as info:
        jwk_from_key(brainpool, include_private=False, use_type="ENCRYPTION", algorithm="ECDH-ES")
    assert info.value.reason == (
        "Curve (brainpoolP256r1) is not supported for JWKs! "
        "Valid curves: P-256, P-384, P-521, secp256k1"
    )
    with pytest.raises(JwkError) as info:
        jwk_from_key(
            material_of("rsa2048", "RSA"),
            include_private=True,
            use_type="SIGNATURE",
            algorithm="ES256",
        )
    assert info.value.reason.startswith("Algorithm (ES256) is not valid for RSA keys")


# --- JWKs from keystore entries ------------------------------------------------------------


def pkcs8(issued: certs.Issued) -> bytes:
    return issued.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def openssl_store(work: Path, password: str) -> tuple[bytes, tuple[certs.Issued, ...]]:
    root, intermediate, leaf = certs.chain3()
    (work / "leaf.pem").write_bytes(leaf.pem)
    (work / "leaf.key").write_bytes(leaf.key_pem)
    (work / "cas.pem").write_bytes(intermediate.pem + root.pem)
    (work / "root.pem").write_bytes(root.pem)
    certs.openssl(
        "pkcs12", "-export", "-in", str(work / "leaf.pem"), "-inkey", str(work / "leaf.key"),
        "-certfile", str(work / "cas.pem"), "-name", "signer", "-passout", f"pass:{password}",
        "-out", str(work / "store.p12"),
    )  # fmt: skip
    return (work / "store.p12").read_bytes(), (root, intermediate, leaf)


def check_keystore_jwk(entry: KeystoreEntry, chain: tuple[certs.Issued, ...]) -> None:
    root, intermediate, leaf = chain
    jwk = jwk_from_keystore_entry(entry, use_type="SIGNATURE", algorithm="ES256")
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and "d" in jwk
    assert jwk["x5c"] == [base64.b64encode(c.der).decode() for c in (leaf, intermediate, root)]
    assert jwk["x5t#S256"] == b64url(hashlib.sha256(leaf.der).digest())
    assert jwk["x5t"] == b64url(hashlib.sha1(leaf.der, usedforsecurity=False).digest())
    assert jwk["kid"] == jwcrypto_jwk.JWK(**jwk).thumbprint()
    # The private JWK signs; jwcrypto verifies with the leaf certificate's own key.
    token = sign(jwk)
    jwcrypto_verifies(token, public_jwk(jwk))
    checker = jwcrypto_jws.JWS()
    checker.deserialize(token)
    checker.verify(jwcrypto_jwk.JWK.from_pem(leaf.pem), alg="ES256")


def test_jwk_from_pkcs12_entry(tmp_path: Path) -> None:
    data, chain = openssl_store(tmp_path, "pw")
    entry = parse_keystore(data, "PKCS12", "pw").entry("signer")
    assert entry is not None
    check_keystore_jwk(entry, chain)


@pytest.mark.skipif(
    shutil.which("keytool") is None
    and os.environ.get("CI", "").strip().lower() not in ("1", "true", "yes"),
    reason="needs keytool (in CI it must run)",
)
def test_jwk_from_jks_entries(tmp_path: Path) -> None:
    _data, chain = openssl_store(tmp_path, "changeit")
    jks = tmp_path / "store.jks"
    subprocess.run(
        [
            "keytool", "-importkeystore", "-noprompt",
            "-srckeystore", str(tmp_path / "store.p12"), "-srcstoretype", "PKCS12",
            "-srcstorepass", "changeit", "-destkeystore", str(jks), "-deststoretype", "JKS",
            "-deststorepass", "changeit",
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    subprocess.run(
        [
            "keytool", "-importcert", "-noprompt", "-alias", "root",
            "-file", str(tmp_path / "root.pem"), "-keystore", str(jks),
            "-storetype", "JKS", "-storepass", "changeit",
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    parsed = parse_keystore(jks.read_bytes(), "JKS", "changeit")
    signer = parsed.entry("signer")
    assert signer is not None
    check_keystore_jwk(signer, chain)
    # A trusted certificate gives the public JWK of the certificate.
    trusted = parsed.entry("root")
    assert trusted is not None and trusted.certificate is not None
    jwk = jwk_from_keystore_entry(trusted, use_type="SIGNATURE", algorithm="RS256")
    assert jwk == jwk_from_certificate(trusted.certificate, use_type="SIGNATURE", algorithm="RS256")
    assert not (set(jwk) & PRIVATE_MEMBERS)
    token = joserfc_jws.serialize_compact(
        {"alg": "RS256"}, PAYLOAD, JWKRegistry.import_key(chain[0].key_pem, "RSA")
    )
    jwcrypto_verifies(token, jwk)


@pytest.mark.parametrize(("kind", "alg"), [("ed25519", "EdDSA"), ("rsa2048", "PS256")])
def test_jwk_from_constructed_entry(kind: str, alg: str) -> None:
    issued = certs.self_signed(kind)
    entry = KeystoreEntry(
        "k", "PRIVATE_KEY", parse_certificate(issued.der), [issued.der], private_der=pkcs8(issued)
    )
    jwk = jwk_from_keystore_entry(entry, use_type="SIGNATURE", algorithm=alg, kid="chosen")
    assert jwk["kid"] == "chosen"
    assert jwk["x5c"] == [base64.b64encode(issued.der).decode()]
    jwcrypto_verifies(sign(jwk), public_jwk(jwk))


def test_jwk_from_secret_entry() -> None:
    secret = os.urandom(32)
    entry = KeystoreEntry("aes", "SECRET_KEY", None, [], secret=secret, secret_algorithm="AES")
    jwk = jwk_from_keystore_entry(entry, use_type="ENCRYPTION", algorithm="A256GCMKW")
    assert (jwk["kty"], jwk["k"], jwk["alg"]) == ("oct", b64url(secret), "A256GCMKW")
    encrypt_and_decrypt(jwk)
    hmac_jwk = jwk_from_keystore_entry(entry, use_type="SIGNATURE", algorithm="HS256")
    jwcrypto_verifies(sign(hmac_jwk), hmac_jwk)


def test_keystore_entry_errors() -> None:
    dsa = certs.self_signed("dsa2048")
    entry = KeystoreEntry(
        "dsa", "PRIVATE_KEY", parse_certificate(dsa.der), [dsa.der], private_der=pkcs8(dsa)
    )
    with pytest.raises(JwkError) as info:
        jwk_from_keystore_entry(entry, use_type="SIGNATURE", algorithm="RS256")
    assert info.value.reason == (
        "Key type (DSA) can not be used for a JWK! Valid key types: RSA, EC, OCT, OKP"
    )
    p384 = certs.self_signed("p384")
    entry = KeystoreEntry(
        "ec", "PRIVATE_KEY", parse_certificate(p384.der), [p384.der], private_der=pkcs8(p384)
    )
    with pytest.raises(JwkError) as info:
        jwk_from_keystore_entry(entry, use_type="SIGNATURE", algorithm="ES256")
    assert info.value.reason == (
        "Algorithm (ES256) needs an EC key on curve P-256, but this key is on curve P-384!"
    )
    short = KeystoreEntry("s", "SECRET_KEY", None, [], secret=b"x" * 16)
    with pytest.raises(JwkError) as info:
        jwk_from_keystore_entry(short, use_type="SIGNATURE", algorithm="HS256")
    assert info.value.reason == (
        "Algorithm (HS256) needs a key of at least 256 bits, but this key has 128 bits!"
    )
