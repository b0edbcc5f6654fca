"""DN text against the JDK itself: keyops must print X500Principal.toString().

tests/support/java/PrintDn.java runs once (one JVM) over every certificate of the
Mozilla bundle shipped by ``certifi`` and a crafted set covering each rule of
sun.security.x509.AVA / RDN / X500Name, and the texts must be equal, every one.
Without java the test skips, except in CI, where it fails (tests/support/java_dn.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.name import _ASN1Type

from keyops.crypto.x509 import dn_text, dn_text_der, name_ders, parse_certificate
from tests.crypto import certs
from tests.crypto.certs import name
from tests.support.java_dn import java_dns

# --- a little DER, to encode what pyca/cryptography will not ---------------------------


def tlv(tag: int, content: bytes) -> bytes:
    """One DER TLV."""
    n = len(content)
    length = bytes([n]) if n < 0x80 else _long_length(n)
    return bytes([tag]) + length + content


def _long_length(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def oid(dotted: str) -> bytes:
    """DER OBJECT IDENTIFIER."""
    arcs = [int(p) for p in dotted.split(".")]
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def ava(dotted: str, value: bytes) -> bytes:
    return seq(oid(dotted), value)


def utf8(text: str) -> bytes:
    return tlv(0x0C, text.encode())


def raw_name(*rdns: list[bytes], sort: bool = True) -> bytes:
    """A DER Name; ``sort=False`` keeps a multi-valued RDN in the given (non-DER) order."""
    return seq(*(tlv(0x31, b"".join(sorted(r) if sort else r)) for r in rdns))


_KEY = ed25519.Ed25519PrivateKey.generate()
_SPKI = _KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)
_ED25519 = seq(oid("1.3.101.112"))
_ISSUER = raw_name([ava("2.5.4.3", utf8("Crafted Issuer"))])


def raw_cert(subject: bytes, issuer: bytes = _ISSUER) -> bytes:
    """A signed Ed25519 v3 certificate with these DER names (and a SAN, so Java accepts
    an empty subject)."""
    san = seq(oid("2.5.29.17"), tlv(0x01, b"\xff"), tlv(0x04, seq(tlv(0x82, b"x.example"))))
    tbs = seq(
        tlv(0xA0, tlv(0x02, b"\x02")),
        tlv(0x02, b"\x01"),
        _ED25519,
        issuer,
        seq(tlv(0x17, b"240101000000Z"), tlv(0x17, b"251231235959Z")),
        subject,
        _SPKI,
        tlv(0xA3, seq(san)),
    )
    return seq(tbs, _ED25519, tlv(0x03, b"\x00" + _KEY.sign(tbs)))


# --- the crafted set ------------------------------------------------------------------

CN = "2.5.4.3"
ORG_ID = "2.5.4.97"  # organizationIdentifier: no Java keyword
SPECIALS = ",+\"\\<>;=#\n\r\t &@_*!$%^~`[]{}|'()-./:?\x00\x7f\u00a0é"
VALUES = [
    " a", "a ", "a  b", "a b", " ", "  ", "", '"q"', '"q', 'q"', '"a,b"', '"a"b"', '"', '""',
    "a\n", "\na", "a \n", "a  ü b", "a ü  b", "a\u00a0\u00a0b", "😀", "a \tb", "a\t b",
    "a&  b", "GoDaddy.com, Inc.", "#1 \"R&D\" <lab>; a+b\\c=d", "x" * 300,
]  # fmt: skip


def _one(dotted: str, value: bytes) -> bytes:
    return raw_name([ava(dotted, value)])


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-be")


def crafted_names() -> Iterator[tuple[str, bytes]]:
    """(label, DER Name) for every rule the JDK applies."""
    keyword_oids = [
        "2.5.4.3", "2.5.4.6", "2.5.4.7", "2.5.4.8", "2.5.4.10", "2.5.4.11", "2.5.4.12",
        "1.3.6.1.4.1.42.2.11.2.1", "2.5.4.9", "0.9.2342.19200300.100.1.25", "2.5.4.46",
        "2.5.4.4", "2.5.4.42", "2.5.4.43", "2.5.4.44", "1.2.840.113549.1.9.1",
        "0.9.2342.19200300.100.1.1", "2.5.4.5", ORG_ID, "2.5.4.15", "2.5.4.17", "2.5.4.65",
        "1.3.6.1.4.1.311.60.2.1.3", "2.5.4.45", "2.999.1", "1.2.3.4.5.6.7.8.9.10.11.12",
    ]  # fmt: skip
    for dotted in keyword_oids:
        yield f"keyword {dotted}", _one(dotted, utf8("v"))
    yield "unknown OID, string value", _one(ORG_ID, utf8("VATHU-23584497"))
    for ch in SPECIALS:
        for where, text in (("start", ch + "ab"), ("inside", "a" + ch + "b"), ("end", "ab" + ch)):
            yield f"char {ch!r} {where}", _one(CN, utf8(text))
    for text in VALUES:
        yield f"value {text[:40]!r}", _one(CN, utf8(text))
        yield f"unknown OID value {text[:40]!r}", _one(ORG_ID, utf8(text))
    yield (
        "multi-valued 2",
        raw_name([ava(CN, utf8("a")), ava("0.9.2342.19200300.100.1.1", utf8("b"))]),
    )
    yield (
        "multi-valued 3",
        raw_name(
            [ava(CN, utf8("a")), ava("2.5.4.10", utf8("b, c")), ava(ORG_ID, tlv(0x02, b"\x07"))]
        ),
    )
    yield (
        "multi-valued, not DER sorted",
        raw_name([ava("2.5.4.11", utf8("zz")), ava(CN, utf8("a"))], sort=False),
    )
    yield (
        "RDN order",
        raw_name(
            [ava("2.5.4.6", tlv(0x13, b"US"))], [ava("2.5.4.10", utf8("O"))], [ava(CN, utf8("c"))]
        ),
    )
    yield (
        "DC components",
        raw_name(
            *(
                [ava("0.9.2342.19200300.100.1.25", tlv(0x16, dc.encode()))]
                for dc in ("com", "example", "www")
            ),
            [ava(CN, utf8("dc"))],
        ),
    )
    yield "empty subject", raw_name()
    # Values that are not strings, or strings Java does not decode, are #hex of their DER.
    yield "INTEGER", _one(ORG_ID, tlv(0x02, b"\x01\x00"))
    yield "INTEGER under CN", _one(CN, tlv(0x02, b"\x05"))
    yield "OCTET STRING", _one(ORG_ID, tlv(0x04, b"\x00\xff\xab"))
    yield "BIT STRING", _one("2.5.4.45", tlv(0x03, b"\x00\x01\x02"))
    yield "SEQUENCE", _one(ORG_ID, seq(tlv(0x02, b"\x01")))
    yield "BOOLEAN", _one(ORG_ID, tlv(0x01, b"\xff"))
    yield "NULL", _one(ORG_ID, tlv(0x05, b""))
    yield "long OCTET STRING", _one(ORG_ID, tlv(0x04, bytes(range(256)) * 2))
    for tag in (0x12, 0x13, 0x14, 0x15, 0x16, 0x19, 0x1A, 0x1B):
        yield f"string tag {tag:#x}", _one(CN, tlv(tag, b"a, b"))
    yield "UniversalString", _one(CN, tlv(0x1C, "Univ 東京, 😀".encode("utf-32-be")))
    yield "BMPString", _one(CN, tlv(0x1E, _utf16("Bmp Örg, 😀")))
    yield "TeletexString high bytes", _one(CN, tlv(0x14, b"a\xe9\xc3\xa9 z"))
    yield "IA5String high byte", _one(CN, tlv(0x16, b"a\xe9"))
    yield "PrintableString high byte", _one(CN, tlv(0x13, b"a\xe9"))
    yield "GeneralString high byte", _one(CN, tlv(0x1B, b"a\xe9"))
    yield "UTF8String malformed", _one(CN, tlv(0x0C, b"a\xff\xc3b\xe2\x82"))
    yield "UTF8String truncated", _one(CN, tlv(0x0C, b"ab\xf0\x9f\x98"))
    yield "BMPString odd length", _one(CN, tlv(0x1E, b"\x00a\x00"))
    yield (
        "BMPString lone high surrogate",
        _one(CN, tlv(0x1E, b"\xd8\x3d\xde\x00\xd8\x00\x00a\x00b")),
    )
    yield "BMPString high surrogate at end", _one(CN, tlv(0x1E, b"\x00a\xd8\x00"))
    yield "BMPString lone low surrogate", _one(CN, tlv(0x1E, b"\xdc\x00\x00a"))
    yield (
        "UniversalString out of range",
        _one(CN, tlv(0x1C, b"\x00\x11\x00\x00\x00\x00\xd8\x00\x00\x00\x00a")),
    )
    yield "UniversalString odd length", _one(CN, tlv(0x1C, b"\x00\x00\x00a\x00"))
    units = [[ava("2.5.4.11", utf8(f"unit {i:03} " + "y" * 50))] for i in range(40)]
    yield "long name", raw_name(*units)


def crafted_pyca_names() -> Iterator[tuple[str, x509.Name]]:
    """Names built the ordinary way, through pyca/cryptography's encoder."""
    yield (
        "pyca mixed",
        name(
            ("COUNTRY_NAME", "US"),
            ("STATE_OR_PROVINCE_NAME", "New York"),
            ("ORGANIZATION_NAME", "GoDaddy.com, Inc."),
            ("EMAIL_ADDRESS", "a@b.example"),
            ("SERIAL_NUMBER", "42"),
            ("BUSINESS_CATEGORY", "Private Organization"),
            ("COMMON_NAME", "Müller 株式会社"),
        ),
    )
    typed = [
        (x509.NameOID.ORGANIZATION_NAME, "Bmp Örg", _ASN1Type.BMPString),
        (x509.NameOID.ORGANIZATIONAL_UNIT_NAME, "Univ 東京", _ASN1Type.UniversalString),
        (x509.NameOID.COMMON_NAME, "Plain", _ASN1Type.PrintableString),
        (x509.NameOID.EMAIL_ADDRESS, "ia5@example.org", _ASN1Type.IA5String),
        (x509.NameOID.LOCALITY_NAME, "Tele", _ASN1Type.T61String),
        (x509.NameOID.SERIAL_NUMBER, "12345", _ASN1Type.NumericString),
        (x509.NameOID.TITLE, "Visible", _ASN1Type.VisibleString),
    ]
    for attr, text, kind in typed:
        yield f"pyca {kind.name}", x509.Name([x509.NameAttribute(attr, text, _type=kind)])
    yield (
        "pyca BIT STRING",
        x509.Name(
            [
                x509.NameAttribute(
                    x509.ObjectIdentifier("2.5.4.45"), b"\x00\x01", _type=_ASN1Type.BitString
                )
            ]
        ),
    )


def bundle_certificates() -> list[bytes]:
    pems = x509.load_pem_x509_certificates(Path(certifi.where()).read_bytes())
    return [c.public_bytes(serialization.Encoding.DER) for c in pems]


# pyca/cryptography refuses these certificates outright (a SET not in DER order, bytes
# outside the string type), so keyops does too; their DN text is checked on the Name.
PYCA_REFUSES = {
    "multi-valued, not DER sorted",
    "PrintableString high byte",
    "BMPString odd length",
    "BMPString lone high surrogate",
    "BMPString high surrogate at end",
    "BMPString lone low surrogate",
    "UniversalString out of range",
    "UniversalString odd length",
}


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_dn_text_equals_java_for_bundle_and_crafted_certificates() -> None:
    # (label, certificate, its subject Name when crafted)
    cases: list[tuple[str, bytes, bytes | None]] = [
        (f"certifi #{i}", der, None) for i, der in enumerate(bundle_certificates())
    ]
    bundle_count = len(cases)
    cases += [(label, raw_cert(der), der) for label, der in crafted_names()]
    cases += [(label, raw_cert(n.public_bytes()), None) for label, n in crafted_pyca_names()]
    multi_issuer = raw_name([ava(CN, utf8("i")), ava(ORG_ID, utf8("j "))])
    cases.append(("issued by a multi-valued name", raw_cert(_ISSUER, issuer=multi_issuer), None))
    pyca_cert = certs.make_cert(
        name(("ORGANIZATION_NAME", "A, B"), ("COMMON_NAME", " x ")), certs.key("p256")
    )
    cases.append(("pyca self-signed", pyca_cert.der, None))

    mismatches: list[str] = []
    answers = java_dns([der for _, der, _ in cases])
    for (label, der, subject_der), answer in zip(cases, answers, strict=True):
        if isinstance(answer, str):
            mismatches.append(f"{label}: Java refused it: {answer}")
            continue
        java_subject, java_issuer, java_subject_dn = answer
        if java_subject_dn != java_subject:
            mismatches.append(f"{label}: getSubjectDN {java_subject_dn!r} != {java_subject!r}")
        if label in PYCA_REFUSES:
            with pytest.raises(ValueError):
                parse_certificate(der)
            assert subject_der is not None
            ours = [("subject (dn_text_der)", dn_text_der(subject_der), java_subject)]
        else:
            parsed = parse_certificate(der)
            issuer_der, subject_der = name_ders(x509.load_der_x509_certificate(der))
            ours = [
                ("subject", parsed.subject_dn, java_subject),
                ("issuer", parsed.issuer_dn, java_issuer),
                ("subject (dn_text_der)", dn_text_der(subject_der), java_subject),
                ("issuer (dn_text_der)", dn_text_der(issuer_der), java_issuer),
            ]
        for what, text, java in ours:
            # Java's getBytes writes a lone surrogate as "?", Python's "replace" too.
            if text.encode("utf-8", errors="replace").decode() != java:
                mismatches.append(f"{label} {what}:\n  keyops {text!r}\n  java   {java!r}")
    print(f"{bundle_count} bundle + {len(cases) - bundle_count} crafted certificates")
    assert bundle_count > 100
    assert not mismatches, f"{len(mismatches)} mismatch(es):\n" + "\n".join(mismatches)


def test_dn_text_of_a_pyca_name_matches_its_der() -> None:
    for label, n in crafted_pyca_names():
        assert dn_text(n) == dn_text_der(n.public_bytes()), label
