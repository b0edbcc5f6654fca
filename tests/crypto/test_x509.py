"""keyops.crypto.x509 against real certificates, with the openssl CLI as the reference."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.name import _ASN1Type

from keyops.crypto.x509 import (
    CertificateParseError,
    ParsedCertificate,
    dn_text,
    format_instant,
    parse_certificate,
)
from tests.crypto import certs
from tests.crypto.certs import name

EMPTY = "pemEncodedFile value can not be empty!"
PRIVATE_KEY = "pemEncodedFile holds a private key, not a certificate!"
INVALID = "pemEncodedFile is not a valid PEM or DER encoded X.509 certificate!"


def openssl_date(der: bytes, which: str) -> dt.datetime:
    out = certs.openssl_x509(der, f"-{which}").strip()
    _, _, value = out.partition("=")
    return dt.datetime.strptime(value, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=dt.UTC)


def openssl_fingerprint(der: bytes, digest: str) -> str:
    out = certs.openssl_x509(der, "-fingerprint", f"-{digest}").strip()
    return out.partition("=")[2].replace(":", "")


# --- a varied corpus of real certificates -------------------------------------------


def _pyca(kind: str, subject: x509.Name) -> Callable[[Path], bytes]:
    return lambda _tmp: certs.make_cert(subject, certs.key(kind)).pem


def _openssl(
    key_args: list[str], subject: str, serial: str | None = None
) -> Callable[[Path], bytes]:
    return lambda tmp: certs.openssl_self_signed(tmp, key_args, subject, serial=serial)[0]


def _chain_leaf(_tmp: Path) -> bytes:
    return certs.chain3()[2].pem


def _x25519_leaf(_tmp: Path) -> bytes:
    return certs.self_signed("x25519").pem


def _typed_attributes(_tmp: Path) -> bytes:
    subject = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(
                x509.NameOID.ORGANIZATION_NAME, "Bmp Örg", _type=_ASN1Type.BMPString
            ),
            x509.NameAttribute(
                x509.NameOID.ORGANIZATIONAL_UNIT_NAME, "Univ 東京", _type=_ASN1Type.UniversalString
            ),
            x509.NameAttribute(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), "hi"),
            x509.NameAttribute(
                x509.ObjectIdentifier("1.3.6.1.4.1.55555.2"), "bmp", _type=_ASN1Type.BMPString
            ),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, "typed"),
        ]
    )
    return certs.make_cert(subject, certs.key("p256")).pem


CORPUS: dict[str, Callable[[Path], bytes]] = {
    "rsa2048-pyca": _pyca(
        "rsa2048",
        name(
            ("COUNTRY_NAME", "US"),
            ("ORGANIZATION_NAME", "Example Inc"),
            ("COMMON_NAME", "example.com"),
        ),
    ),
    "rsa2048-openssl": _openssl(
        ["-newkey", "rsa:2048"], "/C=TR/ST=Ankara/L=Çankaya/O=Apinizer/OU=Gateway/CN=api.example"
    ),
    "ec-p256-pyca": _pyca("p256", name(("COMMON_NAME", "p256.example"))),
    "ec-p384-openssl": _openssl(
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], "/DC=com/DC=example/CN=p384"
    ),
    "ec-p521-pyca": _pyca("p521", name(("COMMON_NAME", "p521.example"))),
    "secp256k1-pyca": _pyca("secp256k1", name(("COMMON_NAME", "k1.example"))),
    "ed25519-openssl-japanese": _openssl(
        ["-newkey", "ed25519"], "/C=JP/O=株式会社テスト/OU=開発部/CN=テスト証明書"
    ),
    "ed448-pyca": _pyca("ed448", name(("COMMON_NAME", "ed448.example"))),
    "x25519-leaf": _x25519_leaf,
    "dsa-pyca": _pyca("dsa2048", name(("COMMON_NAME", "dsa.example"))),
    "non-ascii-dn": _pyca(
        "p256",
        name(
            ("COUNTRY_NAME", "DE"),
            ("ORGANIZATION_NAME", "Ünïcödé GmbH"),
            ("COMMON_NAME", "Müller"),
            ("LOCALITY_NAME", "日本語テキスト"),
        ),
    ),
    "multi-valued-rdn": _pyca(
        "p256",
        name(
            ("ORGANIZATION_NAME", "Multi"),
            [("COMMON_NAME", "a"), ("USER_ID", "b")],
        ),
    ),
    "chain-leaf": _chain_leaf,
    "escaping": _pyca(
        "p256",
        name(
            ("COUNTRY_NAME", "US"),
            ("ORGANIZATION_NAME", "Example, Inc."),
            ("ORGANIZATIONAL_UNIT_NAME", '#1 "R&D" <lab>; a+b\\c=d'),
            ("LOCALITY_NAME", " leading and trailing "),
            ("STREET_ADDRESS", "line1\nline2\x7f"),
            ("COMMON_NAME", "#hash.example"),
        ),
    ),
    "java-keywords": _pyca(
        "p256",
        name(
            ("DOMAIN_COMPONENT", "org"),
            ("ORGANIZATION_NAME", "Keywords"),
            ("TITLE", "Boss"),
            ("SURNAME", "Doe"),
            ("GIVEN_NAME", "Jane"),
            ("INITIALS", "J.D."),
            ("GENERATION_QUALIFIER", "III"),
            ("DN_QUALIFIER", "q1"),
            ("SERIAL_NUMBER", "12345"),
            ("EMAIL_ADDRESS", "jane@example.org"),
            ("COMMON_NAME", "Jane Doe"),
        ),
    ),
    "typed-and-unknown-attributes": _typed_attributes,
    "openssl-emailaddress": _openssl(
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/C=US/O=Mail Org/CN=mail/emailAddress=admin@example.com",
        serial="0x00FF00FF00FF00FF00FF",
    ),
    "empty-subject": lambda _tmp: (
        certs.make_cert(x509.Name([]), certs.key("p256"), issuer=certs.self_signed("p256")).pem
    ),
    "year-2099": lambda _tmp: (
        certs.make_cert(
            name(("COMMON_NAME", "far-future")),
            certs.key("p256"),
            not_before=dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
            not_after=dt.datetime(2099, 6, 30, 12, 0, 1, tzinfo=dt.UTC),
        ).pem
    ),
}


@pytest.fixture(params=sorted(CORPUS), scope="module")
def corpus_pem(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return CORPUS[request.param](tmp_path_factory.mktemp(request.param))


def test_parsed_fields_agree_with_openssl(corpus_pem: bytes) -> None:
    parsed = parse_certificate(corpus_pem)
    der = parsed.der

    assert der == x509.load_pem_x509_certificate(corpus_pem).public_bytes(
        serialization.Encoding.DER
    )
    assert parsed.sha1_thumbprint == openssl_fingerprint(der, "sha1")
    assert parsed.sha256_thumbprint == openssl_fingerprint(der, "sha256")
    assert len(parsed.sha1_thumbprint) == 40 and parsed.sha1_thumbprint.isupper()
    assert parsed.not_before == openssl_date(der, "startdate")
    assert parsed.not_after == openssl_date(der, "enddate")
    assert parsed.serial_number == certs.openssl_x509(der, "-serial").strip().removeprefix(
        "serial="
    )
    # The DN text is checked against the JDK itself in test_dn_java.py.
    # PEM and base64 views round-trip through openssl byte for byte.
    assert parsed.to_pem().encode() == certs.openssl("x509", "-inform", "DER", stdin=der)
    assert base64.b64decode(parsed.base64_der, validate=True) == der


def test_same_result_from_pem_der_and_crlf(corpus_pem: bytes) -> None:
    parsed = parse_certificate(corpus_pem)
    crlf = b"Bag Attributes\r\n    friendlyName: test\r\n" + corpus_pem.replace(b"\n", b"\r\n")
    assert parse_certificate(parsed.der) == parsed
    assert parse_certificate(crlf) == parsed
    assert parse_certificate(b"\n\n  " + corpus_pem + b"\n\ntrailing notes\n") == parsed


@pytest.mark.parametrize(
    ("kind", "key_type", "curve", "key_size"),
    [
        ("rsa2048", "RSA", None, 2048),
        ("p256", "EC", "P-256", 256),
        ("p384", "EC", "P-384", 384),
        ("p521", "EC", "P-521", 521),
        ("secp256k1", "EC", "secp256k1", 256),
        ("ed25519", "OKP", "Ed25519", None),
        ("ed448", "OKP", "Ed448", None),
        ("x25519", "OKP", "X25519", None),
        ("x448", "OKP", "X448", None),
        ("dsa2048", "DSA", None, 2048),
    ],
)
def test_key_description(kind: str, key_type: str, curve: str | None, key_size: int | None) -> None:
    issued = certs.self_signed(kind)
    parsed = parse_certificate(issued.pem)
    assert (parsed.key_type, parsed.curve, parsed.key_size) == (key_type, curve, key_size)
    assert parsed.public_key() == issued.cert.public_key()


def test_unknown_public_key_algorithm_is_stored_but_marked_unknown() -> None:
    der = certs.self_signed("p256").der
    # Swap id-ecPublicKey (1.2.840.10045.2.1) for an OID no library knows; only the
    # signature breaks, and parsing never checks signatures.
    ec_public_key = bytes.fromhex("06072A8648CE3D0201")
    assert der.count(ec_public_key) == 1
    patched = der.replace(ec_public_key, bytes.fromhex("06072A8648CE3D0263"))
    parsed = parse_certificate(patched)
    assert (parsed.key_type, parsed.curve, parsed.key_size) == ("UNKNOWN", None, None)
    assert parsed.sha1_thumbprint == openssl_fingerprint(patched, "sha1")


def test_example_from_the_docs() -> None:
    issued = certs.make_cert(
        name(
            ("COUNTRY_NAME", "US"),
            ("ORGANIZATION_NAME", "Example Inc"),
            ("COMMON_NAME", "example.com"),
        ),
        certs.key("p256"),
        not_before=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
    )
    parsed = parse_certificate(issued.pem)
    assert parsed.subject_dn == "CN=example.com, O=Example Inc, C=US"
    assert parsed.issuer_dn == parsed.subject_dn
    assert format_instant(parsed.not_before) == "2024-01-01T00:00:00.000Z"
    assert format_instant(parsed.not_after) == "2025-12-31T23:59:59.000Z"
    assert parsed.not_before.tzinfo is not None and parsed.not_before.utcoffset() == dt.timedelta(0)
    assert parsed.serial_number == f"{issued.cert.serial_number:X}".rjust(
        len(parsed.serial_number), "0"
    )


def test_parsed_certificate_is_frozen() -> None:
    parsed = parse_certificate(certs.self_signed("p256").pem)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.subject_dn = "CN=changed"  # type: ignore[misc]


@pytest.mark.filterwarnings(
    "ignore:Parsed a serial number:cryptography.utils.CryptographyDeprecationWarning"
)
@pytest.mark.parametrize(
    ("serial", "expected"), [("-5", "-05"), ("0", "00"), ("0x80112233", "80112233")]
)
def test_serial_numbers_as_openssl_prints_them(tmp_path: Path, serial: str, expected: str) -> None:
    pem, _ = certs.openssl_self_signed(
        tmp_path,
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=serial",
        serial=serial,
    )
    parsed = parse_certificate(pem)
    assert parsed.serial_number == expected
    assert parsed.serial_number == certs.openssl_x509(parsed.der, "-serial").strip().removeprefix(
        "serial="
    )


# --- dn_text on names built directly -------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (x509.Name([]), ""),
        (name(("COMMON_NAME", "a")), "CN=a"),
        (
            name(
                ("COUNTRY_NAME", "US"),
                ("ORGANIZATION_NAME", "Example Inc"),
                ("COMMON_NAME", "example.com"),
            ),
            "CN=example.com, O=Example Inc, C=US",
        ),
        (name([("COMMON_NAME", "a"), ("USER_ID", "b")]), "CN=a + UID=b"),
        (name(("ORGANIZATION_NAME", "Example, Inc")), 'O="Example, Inc"'),
        (name(("COMMON_NAME", 'a+b"c\\d<e>f;g=h')), 'CN="a+b\\"c\\\\d<e>f;g=h"'),
        (name(("COMMON_NAME", "#x#")), 'CN="#x#"'),
        (name(("COMMON_NAME", "  two  ")), 'CN="  two  "'),
        (name(("COMMON_NAME", "tab\there\x00")), "CN=tab\there\x00"),
        (
            name(("COMMON_NAME", "Müller"), ("ORGANIZATION_NAME", "株式会社")),
            "O=株式会社, CN=Müller",
        ),
        (
            name(
                ("EMAIL_ADDRESS", "a@b.c"),
                ("SERIAL_NUMBER", "42"),
                ("STATE_OR_PROVINCE_NAME", "NY"),
            ),
            "ST=NY, SERIALNUMBER=42, EMAILADDRESS=a@b.c",
        ),
        (name(("1.3.6.1.4.1.55555.1", "hi")), "OID.1.3.6.1.4.1.55555.1=hi"),
        # businessCategory has no Java keyword, so it is an OID even though openssl knows it.
        (
            name(("BUSINESS_CATEGORY", "Private Organization")),
            "OID.2.5.4.15=Private Organization",
        ),
    ],
)
def test_dn_text(subject: x509.Name, expected: str) -> None:
    assert dn_text(subject) == expected


def test_dn_text_of_bit_string_attribute() -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COMMON_NAME, "bits"),
            x509.NameAttribute(
                x509.ObjectIdentifier("2.5.4.45"), b"\x00\x01\x02", _type=_ASN1Type.BitString
            ),
        ]
    )
    # Not a string: Java writes the value's DER in lower-case hex.
    assert dn_text(subject) == "OID.2.5.4.45=#0303000102, CN=bits"


# --- format_instant --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "2024-01-01T00:00:00.000Z"),
        (dt.datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC), "2025-12-31T23:59:59.999Z"),
        (dt.datetime(2024, 2, 29, 12, 0, 0, 1500, tzinfo=dt.UTC), "2024-02-29T12:00:00.001Z"),
        (
            dt.datetime(2024, 1, 1, 2, 30, tzinfo=dt.timezone(dt.timedelta(hours=3))),
            "2023-12-31T23:30:00.000Z",
        ),
        (dt.datetime(2024, 6, 1, 8, 0, 0), "2024-06-01T08:00:00.000Z"),  # naive = UTC
        (dt.datetime(1999, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "1999-01-02T03:04:05.000Z"),
    ],
)
def test_format_instant(value: dt.datetime, expected: str) -> None:
    assert format_instant(value) == expected


# --- rejected input ----------------------------------------------------------------------


def _reason(data: bytes) -> str:
    with pytest.raises(CertificateParseError) as info:
        parse_certificate(data)
    assert str(info.value) == info.value.reason
    assert isinstance(info.value, ValueError)
    return info.value.reason


@pytest.mark.parametrize("data", [b"", b"   ", b"\r\n\t\n"])
def test_empty_input(data: bytes) -> None:
    assert _reason(data) == EMPTY


@pytest.mark.parametrize(
    "data",
    [
        b"garbage",
        b"\x00\x01\x02\x03",
        bytes(range(256)) * 4,
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nMIIB\n",  # no END line
        b"-----END CERTIFICATE-----\n",
        b"hello\n-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n",
    ],
)
def test_garbage(data: bytes) -> None:
    assert _reason(data) == INVALID


def test_truncated_and_padded_der() -> None:
    der = certs.self_signed("p256").der
    assert _reason(der[:-10]) == INVALID
    assert _reason(der + b"\x00") == INVALID
    assert _reason(base64.b64encode(der)) == INVALID  # bare base64 is neither PEM nor DER


def test_other_pem_objects_are_not_certificates(tmp_path: Path) -> None:
    issued = certs.self_signed("p256")
    public_key_pem = issued.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    csr_pem = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name(("COMMON_NAME", "csr")))
        .sign(issued.key, hashes.SHA256())  # type: ignore[arg-type]
        .public_bytes(serialization.Encoding.PEM)
    )
    cert_path = tmp_path / "cert.pem"
    cert_path.write_bytes(issued.pem)
    trusted_pem = certs.openssl(
        "x509", "-in", str(cert_path), "-trustout", "-addtrust", "serverAuth"
    )
    assert b"BEGIN TRUSTED CERTIFICATE" in trusted_pem

    assert _reason(public_key_pem) == INVALID
    assert _reason(csr_pem) == INVALID
    assert _reason(trusted_pem) == INVALID
    # One certificate plus another object is not "exactly one certificate" either.
    assert _reason(issued.pem + csr_pem) == INVALID
    assert _reason(public_key_pem + issued.pem) == INVALID


def test_private_keys_pem(tmp_path: Path) -> None:
    rsa_key = certs.key("rsa2048")
    ec_key = certs.key("p256")
    traditional = serialization.PrivateFormat.TraditionalOpenSSL
    no_encryption = serialization.NoEncryption()
    pem = serialization.Encoding.PEM
    keys = [
        ("PRIVATE KEY", certs.key_pem(certs.key("ed25519"))),
        ("RSA PRIVATE KEY", rsa_key.private_bytes(pem, traditional, no_encryption)),
        ("EC PRIVATE KEY", ec_key.private_bytes(pem, traditional, no_encryption)),
        (
            "ENCRYPTED PRIVATE KEY",
            ec_key.private_bytes(
                pem,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ),
        ),
        (
            "OPENSSH PRIVATE KEY",
            ec_key.private_bytes(pem, serialization.PrivateFormat.OpenSSH, no_encryption),
        ),
        # openssl's own EC key file starts with an EC PARAMETERS block.
        ("EC PRIVATE KEY", certs.openssl("ecparam", "-name", "prime256v1", "-genkey")),
        ("RSA PRIVATE KEY", certs.openssl("genrsa", "-traditional", "1024")),
    ]
    for label, key_pem in keys:
        assert f"-----BEGIN {label}-----".encode() in key_pem
        assert _reason(key_pem) == PRIVATE_KEY, label


def test_private_keys_der() -> None:
    der = serialization.Encoding.DER
    ec_key = certs.key("p256")
    pkcs8 = ec_key.private_bytes(
        der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    encrypted = ec_key.private_bytes(
        der, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    rsa_traditional = certs.key("rsa2048").private_bytes(
        der, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    assert _reason(pkcs8) == PRIVATE_KEY
    assert _reason(encrypted) == PRIVATE_KEY
    assert _reason(rsa_traditional) == PRIVATE_KEY
    # A DER public key is not a private key, just not a certificate.
    spki = ec_key.public_key().public_bytes(der, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert _reason(spki) == INVALID


def test_certificate_with_private_key_is_rejected() -> None:
    issued = certs.self_signed("p256")
    assert _reason(issued.pem + issued.key_pem) == PRIVATE_KEY
    assert _reason(issued.key_pem + issued.pem) == PRIVATE_KEY
    assert (
        _reason(issued.pem.replace(b"\n", b"\r\n") + issued.key_pem.replace(b"\n", b"\r\n"))
        == PRIVATE_KEY
    )
    # Key material wins over the certificate count.
    assert _reason(issued.pem * 2 + issued.key_pem) == PRIVATE_KEY


@pytest.mark.parametrize("count", [2, 3])
def test_several_certificates(count: int) -> None:
    root, intermediate, leaf = certs.chain3()
    bundle = b"".join(c.pem for c in (leaf, intermediate, root)[:count])
    assert _reason(bundle) == f"pemEncodedFile must hold exactly one certificate, found {count}!"
    assert (
        _reason(leaf.pem * count)
        == f"pemEncodedFile must hold exactly one certificate, found {count}!"
    )


def test_der_certificate_from_openssl(tmp_path: Path) -> None:
    pem, _ = certs.openssl_self_signed(tmp_path, ["-newkey", "rsa:2048"], "/CN=der.example")
    der = certs.openssl("x509", "-outform", "DER", stdin=pem)
    parsed = parse_certificate(der)
    assert parsed.der == der
    assert parsed == parse_certificate(pem)
    assert parsed.subject_dn == "CN=der.example"


def test_result_type() -> None:
    parsed = parse_certificate(certs.self_signed("ed25519").pem)
    assert isinstance(parsed, ParsedCertificate)
    assert parsed.to_pem().startswith("-----BEGIN CERTIFICATE-----\n")
    assert parsed.to_pem().endswith("\n-----END CERTIFICATE-----\n")
    assert all(len(line) <= 64 for line in parsed.to_pem().splitlines())
