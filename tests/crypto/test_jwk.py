"""keyops.crypto.jwk, with jwcrypto as the independent second implementation."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwe as joserfc_jwe
from joserfc import jws as joserfc_jws
from joserfc.jwk import JWKRegistry
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from keyops.crypto.jwk import (
    ALGORITHMS,
    USE_TYPES,
    JwkError,
    jwk_from_certificate,
    jwk_thumbprint,
    public_jwk,
    validate_use_and_algorithm,
)
from keyops.crypto.x509 import ParsedCertificate, parse_certificate
from tests.crypto import certs
from tests.support.rfc_examples import RFC7638_THUMBPRINT

ECDH = {
    "ECDH-ES",
    "ECDH-ES+A128KW",
    "ECDH-ES+A192KW",
    "ECDH-ES+A256KW",
    "ECDH-1PU",
    "ECDH-1PU+A128KW",
    "ECDH-1PU+A192KW",
    "ECDH-1PU+A256KW",
}
# Copied from the Notes of create-jwk.md / parse-jwk-from-certificate.md.
SPEC_TABLE = {
    ("RSA", "SIGNATURE"): {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
    ("RSA", "ENCRYPTION"): {"RSA1_5", "RSA-OAEP", "RSA-OAEP-256", "RSA-OAEP-384", "RSA-OAEP-512"},
    ("EC", "SIGNATURE"): {"ES256", "ES384", "ES512", "ES256K"},
    ("EC", "ENCRYPTION"): ECDH,
    ("oct", "SIGNATURE"): {"HS256", "HS384", "HS512"},
    ("oct", "ENCRYPTION"): {
        "A128KW",
        "A192KW",
        "A256KW",
        "A128GCMKW",
        "A192GCMKW",
        "A256GCMKW",
        "DIR",
        "PBES2-HS256+A128KW",
        "PBES2-HS384+A192KW",
        "PBES2-HS512+A256KW",
    },
    ("OKP", "SIGNATURE"): {"EdDSA"},
    ("OKP", "ENCRYPTION"): ECDH,
}

# RFC 7638 section 3.1 (the RSA key of RFC 7517 appendix A.1).
RFC7638_JWK = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qvzq"
        "Y368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0"
        "fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parsed(issued: certs.Issued) -> ParsedCertificate:
    return parse_certificate(issued.pem)


# --- deriving a JWK from a certificate --------------------------------------------------

SIGNING_CASES = [
    ("rsa2048", "RS256", ("n", "e")),
    ("rsa2048", "PS384", ("n", "e")),
    ("p256", "ES256", ("crv", "x", "y")),
    ("p384", "ES384", ("crv", "x", "y")),
    ("p521", "ES512", ("crv", "x", "y")),
    ("secp256k1", "ES256K", ("crv", "x", "y")),
    ("ed25519", "EdDSA", ("crv", "x")),
    ("ed448", "EdDSA", ("crv", "x")),
]


@pytest.mark.parametrize(("kind", "alg", "members"), SIGNING_CASES)
def test_derived_jwk_matches_jwcrypto(kind: str, alg: str, members: tuple[str, ...]) -> None:
    issued = certs.self_signed(kind)
    cert = parsed(issued)
    derived = jwk_from_certificate(cert, use_type="SIGNATURE", algorithm=alg)

    # jwcrypto reads the same certificate on its own.
    reference = jwcrypto_jwk.JWK.from_pem(issued.pem)
    reference_public = json.loads(reference.export_public())
    assert derived["kty"] == reference_public["kty"] == cert.key_type
    for member in members:
        assert derived[member] == reference_public[member], member

    assert list(derived) == [
        "kty",
        "kid",
        "use",
        "alg",
        *members,
        "x5c",
        "x5t",
        "x5t#S256",
    ]
    assert derived["use"] == "sig"
    assert derived["alg"] == alg
    assert derived["kid"] == reference.thumbprint() == jwk_thumbprint(derived)
    assert derived["x5c"] == [base64.b64encode(issued.der).decode()]
    assert derived["x5t#S256"] == b64url(hashlib.sha256(issued.der).digest())
    assert derived["x5t"] == b64url(hashlib.sha1(issued.der, usedforsecurity=False).digest())
    assert not PRIVATE_MEMBERS & derived.keys()
    assert json.loads(json.dumps(derived)) == derived
    # joserfc accepts it back as a valid public JWK with the same members.
    assert JWKRegistry.import_key(derived).as_dict() == derived


# joserfc flags the polymorphic "EdDSA" as deprecated by RFC 9864, but it is what the
# documented table offers for OKP signatures.
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated:joserfc.errors.SecurityWarning")
@pytest.mark.parametrize(("kind", "alg", "members"), SIGNING_CASES)
def test_jws_signed_with_certificate_key_verifies_with_derived_jwk(
    kind: str, alg: str, members: tuple[str, ...]
) -> None:
    issued = certs.self_signed(kind)
    derived = jwk_from_certificate(parsed(issued), use_type="SIGNATURE", algorithm=alg)

    signing_key = JWKRegistry.import_key(issued.key_pem, derived["kty"])
    payload = b'{"sub":"keyops"}'
    token = joserfc_jws.serialize_compact(
        {"alg": alg, "kid": derived["kid"]}, payload, signing_key, algorithms=[alg]
    )

    verifying_key = jwcrypto_jwk.JWK(**derived)
    assert not verifying_key.has_private
    checker = jwcrypto_jws.JWS()
    checker.deserialize(token)
    checker.verify(verifying_key, alg=alg)
    assert checker.payload == payload

    # A different key of the same kind must not verify it.
    other = jwk_from_certificate(
        parsed(certs.make_cert(issued.cert.subject, certs.new_key(kind))),
        use_type="SIGNATURE",
        algorithm=alg,
    )
    with pytest.raises(jwcrypto_jws.InvalidJWSSignature):
        checker.verify(jwcrypto_jwk.JWK(**other), alg=alg)


@pytest.mark.parametrize(
    ("kind", "alg"),
    [("rsa2048", "RSA-OAEP-256"), ("p256", "ECDH-ES+A128KW"), ("x25519", "ECDH-ES")],
)
def test_encryption_jwk_encrypts_for_the_certificate_key(kind: str, alg: str) -> None:
    issued = certs.self_signed(kind)
    derived = jwk_from_certificate(parsed(issued), use_type="ENCRYPTION", algorithm=alg)
    assert derived["use"] == "enc"
    assert derived["alg"] == alg

    # jwcrypto encrypts to the derived public JWK; joserfc decrypts with the private key.
    message = jwcrypto_jwe.JWE(b"secret message", protected={"alg": alg, "enc": "A256GCM"})
    message.add_recipient(jwcrypto_jwk.JWK(**derived))
    token = message.serialize(compact=True)
    private_key = JWKRegistry.import_key(issued.key_pem, derived["kty"])
    opened = joserfc_jwe.decrypt_compact(token, private_key, algorithms=[alg, "A256GCM"])
    assert opened.plaintext == b"secret message"


def test_kid_given_or_thumbprint() -> None:
    cert = parsed(certs.self_signed("p256"))
    thumbprint = jwk_from_certificate(cert, use_type="SIGNATURE", algorithm="ES256")["kid"]
    assert thumbprint == jwk_thumbprint(
        {"kty": "EC", "crv": "P-256", **_xy(cert)},
    )
    assert (
        jwk_from_certificate(cert, use_type="SIGNATURE", algorithm="ES256", kid="my-kid")["kid"]
        == "my-kid"
    )
    assert jwk_from_certificate(cert, use_type="SIGNATURE", algorithm="ES256", kid="")["kid"] == (
        thumbprint
    )


def _xy(cert: ParsedCertificate) -> dict[str, str]:
    derived = jwk_from_certificate(cert, use_type="SIGNATURE", algorithm="ES256", kid="x")
    return {"x": derived["x"], "y": derived["y"]}


def test_x5c_with_chain() -> None:
    root, intermediate, leaf = certs.chain3()
    cert = parsed(leaf)
    expected = [base64.b64encode(c.der).decode() for c in (leaf, intermediate, root)]

    derived = jwk_from_certificate(
        cert, use_type="SIGNATURE", algorithm="ES256", chain_der=[intermediate.der, root.der]
    )
    assert derived["x5c"] == expected
    # Passing the whole chain, leaf included, gives the same x5c.
    again = jwk_from_certificate(
        cert,
        use_type="SIGNATURE",
        algorithm="ES256",
        chain_der=[leaf.der, intermediate.der, root.der],
    )
    assert again["x5c"] == expected
    # The x5t values are about the leaf only.
    assert derived["x5t#S256"] == b64url(hashlib.sha256(leaf.der).digest())

    # jwcrypto takes the first x5c certificate's key to be the JWK's key.
    assert jwcrypto_jwk.JWK(**derived).thumbprint() == derived["kid"]


def test_x5c_chain_errors() -> None:
    root, intermediate, leaf = certs.chain3()
    cert = parsed(leaf)
    with pytest.raises(JwkError) as info:
        jwk_from_certificate(
            cert, use_type="SIGNATURE", algorithm="ES256", chain_der=[root.der, intermediate.der]
        )
    assert info.value.reason == "x5c certificate #1 is not issued by certificate #2!"
    with pytest.raises(JwkError) as info:
        jwk_from_certificate(
            cert, use_type="SIGNATURE", algorithm="ES256", chain_der=[intermediate.der, b"junk"]
        )
    assert info.value.reason == ("x5c certificate #3 is not a valid DER encoded X.509 certificate!")
    # A certificate that merely carries the issuer's name is not the issuer.
    impostor = certs.make_cert(intermediate.cert.subject, certs.new_key("p384"))
    with pytest.raises(JwkError) as info:
        jwk_from_certificate(
            cert, use_type="SIGNATURE", algorithm="ES256", chain_der=[impostor.der]
        )
    assert info.value.reason == "x5c certificate #1 is not issued by certificate #2!"


def test_certificate_key_type_and_curve_checks() -> None:
    with pytest.raises(JwkError) as info:
        jwk_from_certificate(
            parsed(certs.self_signed("p384")), use_type="SIGNATURE", algorithm="ES256"
        )
    assert info.value.reason == (
        "Algorithm (ES256) needs an EC key on curve P-256, but this key is on curve P-384!"
    )
    with pytest.raises(JwkError) as info:
        jwk_from_certificate(
            parsed(certs.self_signed("rsa2048")), use_type="SIGNATURE", algorithm="ES256"
        )
    assert info.value.reason == (
        "Algorithm (ES256) is not valid for RSA keys with useType SIGNATURE! "
        "Valid values: RS256, RS384, RS512, PS256, PS384, PS512"
    )
    with pytest.raises(JwkError) as info:
        jwk_from_certificate(
            parsed(certs.self_signed("dsa2048")), use_type="SIGNATURE", algorithm="RS256"
        )
    assert info.value.reason == (
        "Key type (DSA) can not be used for a JWK! Valid key types: RSA, EC, OCT, OKP"
    )
    with pytest.raises(JwkError) as info:
        jwk_from_certificate(
            parsed(certs.self_signed("x25519")), use_type="SIGNATURE", algorithm="EdDSA"
        )
    assert info.value.reason == (
        "Algorithm (EdDSA) needs an OKP key on curve Ed25519 or Ed448, "
        "but this key is on curve X25519!"
    )
    with pytest.raises(JwkError) as info:
        jwk_from_certificate(
            parsed(certs.self_signed("ed25519")), use_type="ENCRYPTION", algorithm="ECDH-ES"
        )
    assert info.value.reason == (
        "Algorithm (ECDH-ES) needs an OKP key on curve X25519 or X448, "
        "but this key is on curve Ed25519!"
    )
    with pytest.raises(JwkError) as info:
        jwk_from_certificate(parsed(certs.self_signed("p256")), use_type="", algorithm="ES256")
    assert info.value.reason == "useType value can not be empty!"


@pytest.mark.parametrize(
    ("curve", "label"), [(ec.SECP224R1(), "P-224"), (ec.BrainpoolP256R1(), "brainpoolP256r1")]
)
def test_ec_curves_without_jose_name(curve: ec.EllipticCurve, label: str) -> None:
    issued = certs.make_cert(certs.name(("COMMON_NAME", label)), ec.generate_private_key(curve))
    cert = parsed(issued)
    assert (cert.key_type, cert.curve) == ("EC", label)
    with pytest.raises(JwkError) as info:
        jwk_from_certificate(cert, use_type="ENCRYPTION", algorithm="ECDH-ES")
    assert info.value.reason == (
        f"Curve ({label}) is not supported for JWKs! Valid curves: P-256, P-384, P-521, secp256k1"
    )
    with pytest.raises(JwkError) as info:
        jwk_from_certificate(cert, use_type="SIGNATURE", algorithm="ES256")
    assert info.value.reason == (
        f"Algorithm (ES256) needs an EC key on curve P-256, but this key is on curve {label}!"
    )


# --- the algorithm table -------------------------------------------------------------------


def test_algorithm_table_is_the_documented_one() -> None:
    assert {key: set(values) for key, values in ALGORITHMS.items()} == SPEC_TABLE
    assert all(isinstance(values, frozenset) for values in ALGORITHMS.values())
    assert USE_TYPES == {"SIGNATURE": "sig", "ENCRYPTION": "enc"}


@pytest.mark.parametrize(
    ("kty", "use_type", "alg"),
    sorted((kty, use, alg) for (kty, use), algs in SPEC_TABLE.items() for alg in algs),
)
def test_every_documented_combination_is_accepted(kty: str, use_type: str, alg: str) -> None:
    expected_alg = "dir" if alg == "DIR" else alg
    assert validate_use_and_algorithm(kty, use_type, alg) == (USE_TYPES[use_type], expected_alg)
    if kty == "oct":
        assert validate_use_and_algorithm("OCT", use_type, alg) == (
            USE_TYPES[use_type],
            expected_alg,
        )


@pytest.mark.parametrize(
    ("kty", "curve", "alg"),
    [
        ("EC", "P-256", "ES256"),
        ("EC", "P-384", "ES384"),
        ("EC", "P-521", "ES512"),
        ("EC", "secp256k1", "ES256K"),
        ("OKP", "Ed25519", "EdDSA"),
        ("OKP", "Ed448", "EdDSA"),
    ],
)
def test_matching_curves(kty: str, curve: str, alg: str) -> None:
    assert validate_use_and_algorithm(kty, "SIGNATURE", alg, curve=curve) == ("sig", alg)


def test_encryption_curves() -> None:
    for curve in ("P-256", "P-384", "P-521"):
        assert validate_use_and_algorithm("EC", "ENCRYPTION", "ECDH-ES", curve=curve)[1] == (
            "ECDH-ES"
        )
    for curve in ("X25519", "X448"):
        assert validate_use_and_algorithm("OKP", "ENCRYPTION", "ECDH-1PU", curve=curve)[1] == (
            "ECDH-1PU"
        )


def test_dir_accepted_in_jose_spelling() -> None:
    assert validate_use_and_algorithm("oct", "ENCRYPTION", "dir") == ("enc", "dir")


def _rejected(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(JwkError) as info:
        validate_use_and_algorithm(*args, **kwargs)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == info.value.reason
    return info.value.reason


@pytest.mark.parametrize("use_type", [None, "", "   "])
def test_empty_use_type(use_type: str | None) -> None:
    assert _rejected("RSA", use_type, "RS256") == "useType value can not be empty!"


@pytest.mark.parametrize("use_type", ["sig", "signature", "Signature", "ENC", "BOTH"])
def test_unknown_use_type(use_type: str) -> None:
    assert _rejected("RSA", use_type, "RS256") == "useType must be SIGNATURE or ENCRYPTION!"


@pytest.mark.parametrize("algorithm", [None, "", " "])
def test_empty_algorithm(algorithm: str | None) -> None:
    assert _rejected("RSA", "SIGNATURE", algorithm) == "algorithm value can not be empty!"


@pytest.mark.parametrize(
    ("kty", "use_type", "alg", "reason"),
    [
        (
            "RSA",
            "SIGNATURE",
            "ES256",
            "Algorithm (ES256) is not valid for RSA keys with useType SIGNATURE! "
            "Valid values: RS256, RS384, RS512, PS256, PS384, PS512",
        ),
        (
            "RSA",
            "SIGNATURE",
            "RSA",
            "Algorithm (RSA) is not valid for RSA keys with useType SIGNATURE! "
            "Valid values: RS256, RS384, RS512, PS256, PS384, PS512",
        ),
        (
            "RSA",
            "ENCRYPTION",
            "RS256",
            "Algorithm (RS256) is not valid for RSA keys with useType ENCRYPTION! "
            "Valid values: RSA1_5, RSA-OAEP, RSA-OAEP-256, RSA-OAEP-384, RSA-OAEP-512",
        ),
        (
            "EC",
            "SIGNATURE",
            "es256",
            "Algorithm (es256) is not valid for EC keys with useType SIGNATURE! "
            "Valid values: ES256, ES384, ES512, ES256K",
        ),
        (
            "oct",
            "SIGNATURE",
            "RS256",
            "Algorithm (RS256) is not valid for OCT keys with useType SIGNATURE! "
            "Valid values: HS256, HS384, HS512",
        ),
        (
            "OKP",
            "SIGNATURE",
            "Ed25519",
            "Algorithm (Ed25519) is not valid for OKP keys with useType SIGNATURE! "
            "Valid values: EdDSA",
        ),
        (
            "OKP",
            "ENCRYPTION",
            "EdDSA",
            "Algorithm (EdDSA) is not valid for OKP keys with useType ENCRYPTION! "
            "Valid values: ECDH-ES, ECDH-ES+A128KW, ECDH-ES+A192KW, ECDH-ES+A256KW, "
            "ECDH-1PU, ECDH-1PU+A128KW, ECDH-1PU+A192KW, ECDH-1PU+A256KW",
        ),
        (
            "EC",
            "ENCRYPTION",
            "dir",
            "Algorithm (dir) is not valid for EC keys with useType ENCRYPTION! "
            "Valid values: ECDH-ES, ECDH-ES+A128KW, ECDH-ES+A192KW, ECDH-ES+A256KW, "
            "ECDH-1PU, ECDH-1PU+A128KW, ECDH-1PU+A192KW, ECDH-1PU+A256KW",
        ),
    ],
)
def test_algorithm_not_valid_for_key(kty: str, use_type: str, alg: str, reason: str) -> None:
    assert _rejected(kty, use_type, alg) == reason


@pytest.mark.parametrize(
    ("kty", "use_type", "alg", "curve", "reason"),
    [
        (
            "EC",
            "SIGNATURE",
            "ES256",
            "P-384",
            "Algorithm (ES256) needs an EC key on curve P-256, but this key is on curve P-384!",
        ),
        (
            "EC",
            "SIGNATURE",
            "ES512",
            "P-256",
            "Algorithm (ES512) needs an EC key on curve P-521, but this key is on curve P-256!",
        ),
        (
            "EC",
            "SIGNATURE",
            "ES256K",
            "P-256",
            "Algorithm (ES256K) needs an EC key on curve secp256k1, "
            "but this key is on curve P-256!",
        ),
        (
            "EC",
            "SIGNATURE",
            "ES256",
            "secp256k1",
            "Algorithm (ES256) needs an EC key on curve P-256, but this key is on curve secp256k1!",
        ),
        (
            "OKP",
            "SIGNATURE",
            "EdDSA",
            "X448",
            "Algorithm (EdDSA) needs an OKP key on curve Ed25519 or Ed448, "
            "but this key is on curve X448!",
        ),
        (
            "OKP",
            "ENCRYPTION",
            "ECDH-ES+A256KW",
            "Ed448",
            "Algorithm (ECDH-ES+A256KW) needs an OKP key on curve X25519 or X448, "
            "but this key is on curve Ed448!",
        ),
    ],
)
def test_curve_mismatch(kty: str, use_type: str, alg: str, curve: str, reason: str) -> None:
    assert _rejected(kty, use_type, alg, curve=curve) == reason


def test_unknown_key_type() -> None:
    assert _rejected("DSA", "SIGNATURE", "RS256") == (
        "Key type (DSA) can not be used for a JWK! Valid key types: RSA, EC, OCT, OKP"
    )


# --- thumbprints and public parts -------------------------------------------------------------


def test_rfc7638_example_thumbprint() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT
    # Only the required members count: optional ones and member order change nothing.
    reordered = dict(reversed(list(RFC7638_JWK.items())))
    assert jwk_thumbprint(reordered | {"use": "sig", "x5t": "abc"}) == RFC7638_THUMBPRINT
    assert jwcrypto_jwk.JWK(**RFC7638_JWK).thumbprint() == RFC7638_THUMBPRINT


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "secp256k1", "ed25519", "x448"])
def test_thumbprint_of_private_jwk_equals_public(kind: str) -> None:
    private = JWKRegistry.import_key(certs.key_pem(certs.key(kind)), _kty(kind)).as_dict(
        private=True
    )
    reference = jwcrypto_jwk.JWK(**private)
    assert jwk_thumbprint(private) == jwk_thumbprint(public_jwk(private)) == reference.thumbprint()


def _kty(kind: str) -> str:
    if kind == "rsa2048":
        return "RSA"
    if kind in ("p256", "p384", "p521", "secp256k1"):
        return "EC"
    return "OKP"


@pytest.mark.parametrize("kind", ["rsa2048", "p384", "ed25519", "x25519"])
def test_public_jwk_strips_private_members(kind: str) -> None:
    private = JWKRegistry.import_key(certs.key_pem(certs.key(kind)), _kty(kind)).as_dict(
        private=True
    )
    private = {"kid": "k1", "use": "sig", **private}
    snapshot = dict(private)
    assert "d" in private

    public = public_jwk(private)
    assert private == snapshot  # input untouched
    assert next(iter(public)) == "kty"
    assert not PRIVATE_MEMBERS & public.keys()
    assert public["kid"] == "k1" and public["use"] == "sig"
    assert public == json.loads(jwcrypto_jwk.JWK(**private).export_public()) | {
        "kid": "k1",
        "use": "sig",
    }


def test_public_jwk_of_public_jwk_is_unchanged() -> None:
    cert = parsed(certs.self_signed("rsa2048"))
    derived = jwk_from_certificate(cert, use_type="SIGNATURE", algorithm="RS256")
    assert public_jwk(derived) == derived
    assert list(public_jwk(derived)) == list(derived)


def test_public_jwk_maps_private_key_operations() -> None:
    private = JWKRegistry.import_key(certs.key_pem(certs.key("p256")), "EC").as_dict(private=True)
    public = public_jwk(private | {"key_ops": ["sign", "verify"]})
    assert public["key_ops"] == ["verify"]


def test_public_jwk_refuses_oct() -> None:
    with pytest.raises(JwkError) as info:
        public_jwk({"kty": "oct", "k": b64url(b"0123456789abcdef0123456789abcdef")})
    assert info.value.reason == "OCT keys are secret and have no public part!"


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"kty": "XYZ"},
        {"kty": "RSA", "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519"},
    ],
)
def test_invalid_jwk(bad: dict[str, Any]) -> None:
    with pytest.raises(JwkError) as info:
        jwk_thumbprint(bad)
    assert info.value.reason == "The JWK is not a valid JSON Web Key!"
    with pytest.raises(JwkError):
        public_jwk(bad)


def test_oct_thumbprint() -> None:
    # RFC 7638 defines oct thumbprints over {"k", "kty"} only.
    secret = {"kty": "oct", "k": "sTBpI_oCHSyW-n0exSwhzNHwU9FGRioPauxWA84bnRU"}
    expected = b64url(
        hashlib.sha256(b'{"k":"sTBpI_oCHSyW-n0exSwhzNHwU9FGRioPauxWA84bnRU","kty":"oct"}').digest()
    )
    assert jwk_thumbprint(secret | {"alg": "HS256", "kid": "s1"}) == expected
    assert jwcrypto_jwk.JWK(**secret).thumbprint() == expected
