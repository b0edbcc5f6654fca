"""keyops.crypto.keys, with the openssl CLI as the independent second implementation."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from keyops.crypto.keys import (
    KEY_TYPES,
    KeyMaterial,
    KeyMaterialError,
    key_material_from_pkcs8,
    parse_key_material,
    private_key_object,
    public_key_object,
)
from tests.crypto import certs

Enc = serialization.Encoding
PubFmt = serialization.PublicFormat
PrivFmt = serialization.PrivateFormat
NO_ENC = serialization.NoEncryption()

# kind in tests/crypto/certs.py -> (keyType, curve, size_bits)
KINDS = {
    "rsa2048": ("RSA", None, 2048),
    "p256": ("EC", "P-256", 256),
    "p384": ("EC", "P-384", 384),
    "secp256k1": ("EC", "secp256k1", 256),
    "ed25519": ("ED25519", "Ed25519", None),
    "x25519": ("X25519", "X25519", None),
    "ed448": ("ED448", "Ed448", None),
    "x448": ("X448", "X448", None),
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def spki_der(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(Enc.DER, PubFmt.SubjectPublicKeyInfo)


def pkcs8_der(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(Enc.DER, PrivFmt.PKCS8, NO_ENC)


def private_forms(key: PrivateKeyTypes) -> dict[str, str]:
    """Every accepted text form of a private key."""
    forms = {
        "pkcs8-der-b64": b64(pkcs8_der(key)),
        "pkcs8-pem": key.private_bytes(Enc.PEM, PrivFmt.PKCS8, NO_ENC).decode(),
    }
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        forms["traditional-der-b64"] = b64(
            key.private_bytes(Enc.DER, PrivFmt.TraditionalOpenSSL, NO_ENC)
        )
        forms["traditional-pem"] = key.private_bytes(
            Enc.PEM, PrivFmt.TraditionalOpenSSL, NO_ENC
        ).decode()
    return forms


def public_forms(key: PrivateKeyTypes) -> dict[str, str]:
    """Every accepted text form of a public key."""
    public = key.public_key()
    forms = {
        "spki-der-b64": b64(spki_der(key)),
        "spki-pem": public.public_bytes(Enc.PEM, PubFmt.SubjectPublicKeyInfo).decode(),
    }
    if isinstance(public, rsa.RSAPublicKey):
        forms["pkcs1-pem"] = public.public_bytes(Enc.PEM, PubFmt.PKCS1).decode()
        forms["pkcs1-der-b64"] = b64(public.public_bytes(Enc.DER, PubFmt.PKCS1))
    return forms


def rejected(key_type: str | None, public: str | None, private: str | None) -> str:
    with pytest.raises(KeyMaterialError) as info:
        parse_key_material(key_type, public, private)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == info.value.reason
    return info.value.reason


# --- asymmetric keys -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_encoding_of_a_pair(kind: str) -> None:
    key = certs.key(kind)
    key_type, curve, size = KINDS[kind]
    for private_name, private in private_forms(key).items():
        for public_name, public in public_forms(key).items():
            material = parse_key_material(key_type, public, private)
            assert material.key_type == key_type, (private_name, public_name)
            assert material.curve == curve
            assert material.size_bits == size
            # Whatever came in, the stored form is SPKI / PKCS#8 DER.
            assert material.public_der == spki_der(key)
            assert material.private_der == pkcs8_der(key)
            assert material.secret is None
            assert material.public_b64 == b64(spki_der(key))
            assert material.private_b64 == b64(pkcs8_der(key))


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "p384", "secp256k1", "ed25519", "x25519"])
def test_private_only_derives_the_public_key_like_openssl(kind: str) -> None:
    key = certs.key(kind)
    for name, private in private_forms(key).items():
        material = parse_key_material(KINDS[kind][0], None, private)
        # openssl derives the public key on its own from the same private key.
        expected = certs.openssl(
            "pkey", "-inform", "DER", "-pubout", "-outform", "DER", stdin=pkcs8_der(key)
        )
        assert material.public_der == expected, name
        assert material.private_der == pkcs8_der(key)


@pytest.mark.parametrize("kind", ["rsa2048", "p384", "ed25519", "x448"])
def test_public_only(kind: str) -> None:
    key = certs.key(kind)
    for name, public in public_forms(key).items():
        material = parse_key_material(KINDS[kind][0], public, "")
        assert material.public_der == spki_der(key), name
        assert material.private_der is None
        assert material.private_b64 is None
        assert material.key_type == KINDS[kind][0]


def test_compressed_ec_point_is_the_same_key() -> None:
    key = certs.key("secp256k1")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    compressed_spki = certs.openssl(
        "pkey",
        "-inform",
        "DER",
        "-pubout",
        "-outform",
        "DER",
        "-ec_conv_form",
        "compressed",
        stdin=pkcs8_der(key),
    )
    assert compressed_spki != spki_der(key)
    material = parse_key_material("EC", b64(compressed_spki), b64(pkcs8_der(key)))
    assert material.public_der == spki_der(key)


def test_pem_with_text_around_and_crlf() -> None:
    key = certs.key("p256")
    pem = key.private_bytes(Enc.PEM, PrivFmt.PKCS8, NO_ENC).decode().replace("\n", "\r\n")
    material = parse_key_material("EC", None, f"my key:\r\n{pem}\r\n-- end --")
    assert material.private_der == pkcs8_der(key)


def test_base64_with_line_breaks_and_without_padding() -> None:
    key = certs.key("rsa2048")
    text = b64(pkcs8_der(key)).rstrip("=")
    wrapped = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    assert parse_key_material("RSA", None, wrapped).private_der == pkcs8_der(key)


def test_openssl_ecparam_genkey_output_with_parameters_block() -> None:
    # `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
    pem = certs.openssl("ecparam", "-name", "prime256v1", "-genkey").decode()
    assert "BEGIN EC PARAMETERS" in pem and "BEGIN EC PRIVATE KEY" in pem
    material = parse_key_material("EC", None, pem)
    assert (material.key_type, material.curve) == ("EC", "P-256")


@pytest.mark.parametrize(
    ("key_type", "kind", "canonical"),
    [
        ("rsa", "rsa2048", "RSA"),
        ("Ec", "p256", "EC"),
        ("OKP", "ed25519", "ED25519"),
        ("okp", "x25519", "X25519"),
        ("OKP", "ed448", "ED448"),
        ("OKP", "x448", "X448"),
        ("ed25519", "ed25519", "ED25519"),
    ],
)
def test_key_type_spellings(key_type: str, kind: str, canonical: str) -> None:
    material = parse_key_material(key_type, None, private_forms(certs.key(kind))["pkcs8-pem"])
    assert material.key_type == canonical


def test_mismatched_pair_rejected() -> None:
    private = private_forms(certs.key("rsa2048"))["pkcs8-pem"]
    other_public = public_forms(certs.new_key("rsa2048"))["spki-der-b64"]
    assert rejected("RSA", other_public, private) == "privateKey does not match publicKey!"
    ec_public = public_forms(certs.key("p256"))["spki-pem"]
    assert rejected("RSA", ec_public, private) == "privateKey does not match publicKey!"
    ed_public = public_forms(ed25519.Ed25519PrivateKey.generate())["spki-pem"]
    ed_private = private_forms(certs.key("ed25519"))["pkcs8-der-b64"]
    assert rejected("ED25519", ed_public, ed_private) == "privateKey does not match publicKey!"


@pytest.mark.parametrize(
    ("key_type", "kind", "material"),
    [
        ("EC", "rsa2048", "RSA"),
        ("RSA", "p256", "EC"),
        ("ED25519", "x25519", "X25519"),
        ("X448", "ed448", "ED448"),
        ("OKP", "rsa2048", "RSA"),
        ("OKP", "p384", "EC"),
        ("SYMMETRIC", "p256", None),
    ],
)
def test_key_type_must_match_the_material(key_type: str, kind: str, material: str | None) -> None:
    key = certs.key(kind)
    if material is None:
        # SYMMETRIC keys are secrets; a PEM key there is refused as such.
        reason = rejected(key_type, None, private_forms(key)["pkcs8-pem"])
        assert reason == (
            "privateKey holds PEM text; a SYMMETRIC key is the base64 of the raw secret!"
        )
        return
    expected = f"keyType ({key_type}) does not match the key material ({material})!"
    assert rejected(key_type, None, private_forms(key)["pkcs8-pem"]) == expected
    assert rejected(key_type, public_forms(key)["spki-der-b64"], None) == expected


@pytest.mark.parametrize("key_type", [None, "", "  "])
def test_empty_key_type(key_type: str | None) -> None:
    private = private_forms(certs.key("p256"))["pkcs8-pem"]
    assert rejected(key_type, None, private) == "keyType value can not be empty!"


@pytest.mark.parametrize("key_type", ["DSA", "ECDSA", "RSA2048", "P-256"])
def test_unknown_key_type(key_type: str) -> None:
    assert rejected(key_type, None, "x") == (
        f"keyType ({key_type}) is not valid! "
        "Valid values: RSA, EC, ED25519, X25519, ED448, X448, SYMMETRIC"
    )
    assert KEY_TYPES == ("RSA", "EC", "ED25519", "X25519", "ED448", "X448", "SYMMETRIC")


def test_both_empty() -> None:
    assert rejected("RSA", None, None) == "publicKey and privateKey can not both be empty!"
    assert rejected("RSA", " ", "\n") == "publicKey and privateKey can not both be empty!"


PRIVATE_INVALID = "privateKey is not a valid base64 DER or PEM encoded private key!"
PUBLIC_INVALID = "publicKey is not a valid base64 DER or PEM encoded public key!"


@pytest.mark.parametrize(
    "garbage",
    [
        "not base64 at all!",
        b64(os.urandom(64)),
        b64(b"\x30\x03\x02\x01\x01"),
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        "ключ",
    ],
)
def test_garbage_rejected(garbage: str) -> None:
    assert rejected("RSA", None, garbage) == PRIVATE_INVALID
    assert rejected("RSA", garbage, None) == PUBLIC_INVALID


@pytest.mark.parametrize("label", ["PRIVATE KEY", "RSA PRIVATE KEY", "PUBLIC KEY"])
def test_broken_pem_rejected(label: str) -> None:
    field, reason = (
        ("public", PUBLIC_INVALID) if label == "PUBLIC KEY" else ("private", PRIVATE_INVALID)
    )
    for text in (
        f"-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n",
        f"-----BEGIN {label}-----\nMIIB\n",  # no END line
    ):
        if field == "public":
            assert rejected("RSA", text, None) == reason
        else:
            assert rejected("RSA", None, text) == reason


def test_two_keys_in_one_field_rejected() -> None:
    one = private_forms(certs.key("p256"))["pkcs8-pem"]
    two = private_forms(certs.new_key("p256"))["pkcs8-pem"]
    assert rejected("EC", None, one + two) == PRIVATE_INVALID


def test_wrong_field_contents_are_named() -> None:
    issued = certs.self_signed("rsa2048")
    key = issued.key
    assert rejected("RSA", issued.pem.decode(), None) == (
        "publicKey holds a certificate, not a public key!"
    )
    assert rejected("RSA", b64(issued.der), None) == (
        "publicKey holds a certificate, not a public key!"
    )
    assert rejected("RSA", private_forms(key)["pkcs8-pem"], None) == (
        "publicKey holds a private key, not a public key!"
    )
    assert rejected("RSA", private_forms(key)["pkcs8-der-b64"], None) == (
        "publicKey holds a private key, not a public key!"
    )
    assert rejected("RSA", None, public_forms(key)["spki-pem"]) == (
        "privateKey holds a public key, not a private key!"
    )
    assert rejected("RSA", None, public_forms(key)["spki-der-b64"]) == (
        "privateKey holds a public key, not a private key!"
    )


ENCRYPTED = (
    "privateKey is an encrypted private key! Encrypted keys are not supported, "
    "give the key unencrypted."
)


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "ed25519"])
def test_encrypted_private_keys_refused(kind: str) -> None:
    key = certs.key(kind)
    encryption = serialization.BestAvailableEncryption(b"password")
    pkcs8_pem = key.private_bytes(Enc.PEM, PrivFmt.PKCS8, encryption).decode()
    assert "ENCRYPTED PRIVATE KEY" in pkcs8_pem
    assert rejected(KINDS[kind][0], None, pkcs8_pem) == ENCRYPTED
    pkcs8_der = key.private_bytes(Enc.DER, PrivFmt.PKCS8, encryption)
    assert rejected(KINDS[kind][0], None, b64(pkcs8_der)) == ENCRYPTED
    if kind != "ed25519":
        traditional = key.private_bytes(Enc.PEM, PrivFmt.TraditionalOpenSSL, encryption).decode()
        assert "Proc-Type: 4,ENCRYPTED" in traditional
        assert rejected(KINDS[kind][0], None, traditional) == ENCRYPTED


def test_encrypted_key_made_by_openssl_refused() -> None:
    pem = certs.openssl(
        "pkcs8",
        "-topk8",
        "-inform",
        "DER",
        "-v2",
        "aes-256-cbc",
        "-passout",
        "pass:secret",
        stdin=pkcs8_der(certs.key("p384")),
    ).decode()
    assert rejected("EC", None, pem) == ENCRYPTED


def test_dsa_keys_are_not_supported() -> None:
    key = certs.key("dsa2048")
    assert rejected("RSA", None, private_forms(key)["pkcs8-pem"]) == (
        "privateKey holds a DSA key, which is not supported! "
        "Valid key types: RSA, EC, ED25519, X25519, ED448, X448"
    )
    assert rejected("RSA", public_forms(key)["spki-pem"], None) == (
        "publicKey holds a DSA key, which is not supported! "
        "Valid key types: RSA, EC, ED25519, X25519, ED448, X448"
    )


def test_ec_curve_without_jose_name_is_kept() -> None:
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    material = parse_key_material("EC", None, private_forms(key)["pkcs8-pem"])
    assert (material.curve, material.size_bits) == ("brainpoolP256r1", 256)


# --- symmetric keys ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 24, 32, 64, 512])
@pytest.mark.parametrize("key_type", ["SYMMETRIC", "symmetric", "OCT", "AES", "hmac", "SECRET"])
def test_symmetric_secret(size: int, key_type: str) -> None:
    secret = os.urandom(size)
    material = parse_key_material(key_type, None, b64(secret))
    assert material.key_type == "SYMMETRIC"
    assert material.secret == secret
    assert material.size_bits == size * 8
    assert (material.public_der, material.private_der, material.curve) == (None, None, None)
    assert material.private_b64 == b64(secret)
    assert material.public_b64 is None


@pytest.mark.parametrize("size", [1, 8, 15, 513, 1024])
def test_symmetric_size_limits(size: int) -> None:
    assert rejected("SYMMETRIC", None, b64(os.urandom(size))) == (
        f"privateKey must hold 16 to 512 bytes for SYMMETRIC keys, found {size}!"
    )


def test_symmetric_errors() -> None:
    secret = b64(os.urandom(32))
    assert rejected("SYMMETRIC", secret, secret) == "publicKey must be empty for SYMMETRIC keys!"
    assert rejected("SYMMETRIC", None, None) == (
        "privateKey value can not be empty for SYMMETRIC keys!"
    )
    assert rejected("SYMMETRIC", None, "not*base64") == "privateKey is not valid base64!"
    # base64url is not standard base64.
    assert rejected("SYMMETRIC", None, "_-" * 12) == "privateKey is not valid base64!"


def test_symmetric_without_padding() -> None:
    secret = os.urandom(17)
    assert parse_key_material("AES", None, b64(secret).rstrip("=")).secret == secret


# --- helpers and safety ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "ed25519"])
def test_key_objects_sign_and_verify(kind: str) -> None:
    key = certs.key(kind)
    material = parse_key_material(KINDS[kind][0], None, private_forms(key)["pkcs8-pem"])
    private = private_key_object(material)
    public = public_key_object(material)
    data = b"payload"
    if isinstance(private, rsa.RSAPrivateKey):
        assert isinstance(public, rsa.RSAPublicKey)
        signature = private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(
            private.sign(data, ec.ECDSA(hashes.SHA256())), data, ec.ECDSA(hashes.SHA256())
        )
    else:
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        assert isinstance(public, ed25519.Ed25519PublicKey)
        public.verify(private.sign(data), data)


def test_key_object_errors() -> None:
    public_only = parse_key_material("EC", public_forms(certs.key("p256"))["spki-pem"], None)
    with pytest.raises(KeyMaterialError) as info:
        private_key_object(public_only)
    assert info.value.reason == "The key has no private key!"
    symmetric = parse_key_material("SYMMETRIC", None, b64(os.urandom(32)))
    with pytest.raises(KeyMaterialError) as info:
        public_key_object(symmetric)
    assert info.value.reason == "SYMMETRIC keys have no public key!"


def test_key_material_from_pkcs8() -> None:
    key = certs.key("p384")
    material = key_material_from_pkcs8(pkcs8_der(key))
    assert material == parse_key_material("EC", None, b64(pkcs8_der(key)))
    with pytest.raises(KeyMaterialError) as info:
        key_material_from_pkcs8(b"junk")
    assert info.value.reason == PRIVATE_INVALID


def test_repr_shows_no_key_material() -> None:
    key = certs.key("rsa2048")
    material = parse_key_material("RSA", None, private_forms(key)["pkcs8-der-b64"])
    secret = parse_key_material("SYMMETRIC", None, b64(b"s" * 32))
    for value in (material, secret):
        text = repr(value)
        assert "KeyMaterial(" in text
        for needle in (value.private_b64, value.public_b64):
            if needle:
                assert needle[:16] not in text
        assert "private_der" not in text and "secret=" not in text
    assert "has_private=True" in repr(material)


def test_material_is_immutable() -> None:
    material = parse_key_material("SYMMETRIC", None, b64(os.urandom(16)))
    with pytest.raises(AttributeError):
        material.secret = b"x"  # type: ignore[misc]
    assert isinstance(material, KeyMaterial)
