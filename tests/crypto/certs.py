"""Real keys and certificates for tests, made with pyca/cryptography or the openssl CLI.

Other test packages import this module (``from tests.crypto import certs``); keep the
helpers generic. Nothing here touches a database or the network.
"""

from __future__ import annotations

import datetime as dt
import functools
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import NameOID

UTC = dt.UTC
NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=UTC)
NOT_AFTER = dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)

KEY_KINDS = (
    "rsa2048",
    "p256",
    "p384",
    "p521",
    "secp256k1",
    "ed25519",
    "ed448",
    "x25519",
    "x448",
    "dsa2048",
)


def new_key(kind: str) -> PrivateKeyTypes:
    """A fresh private key of one of ``KEY_KINDS``."""
    match kind:
        case "rsa2048":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        case "p256":
            return ec.generate_private_key(ec.SECP256R1())
        case "p384":
            return ec.generate_private_key(ec.SECP384R1())
        case "p521":
            return ec.generate_private_key(ec.SECP521R1())
        case "secp256k1":
            return ec.generate_private_key(ec.SECP256K1())
        case "ed25519":
            return ed25519.Ed25519PrivateKey.generate()
        case "ed448":
            return ed448.Ed448PrivateKey.generate()
        case "x25519":
            return x25519.X25519PrivateKey.generate()
        case "x448":
            return x448.X448PrivateKey.generate()
        case "dsa2048":
            return dsa.generate_private_key(key_size=2048)
    raise ValueError(f"unknown key kind {kind!r}")


@functools.cache
def key(kind: str) -> PrivateKeyTypes:
    """A cached key per kind (RSA/DSA generation is slow; tests may share keys)."""
    return new_key(kind)


def key_pem(private_key: PrivateKeyTypes) -> bytes:
    """Unencrypted PKCS#8 PEM of a private key."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def name(*rdns: tuple[str, str] | Sequence[tuple[str, str]]) -> x509.Name:
    """Build a Name in ASN.1 order (country first); a list of pairs is a multi-valued RDN.

    Attribute names are ``NameOID`` member names (``COMMON_NAME``) or dotted OIDs.
    """
    built: list[x509.RelativeDistinguishedName] = []
    for rdn in rdns:
        pairs = [rdn] if isinstance(rdn, tuple) else list(rdn)
        attrs = [x509.NameAttribute(_oid(attr), value) for attr, value in pairs]
        built.append(x509.RelativeDistinguishedName(attrs))
    return x509.Name(built)


def _oid(attr: str) -> x509.ObjectIdentifier:
    if attr[0].isdigit():
        return x509.ObjectIdentifier(attr)
    oid = getattr(NameOID, attr)
    assert isinstance(oid, x509.ObjectIdentifier)
    return oid


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKeyTypes

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)


def _signing_hash(signer: CertificateIssuerPrivateKeyTypes) -> hashes.HashAlgorithm | None:
    if isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


def make_cert(
    subject: x509.Name,
    private_key: PrivateKeyTypes,
    *,
    issuer: Issued | None = None,
    ca: bool = False,
    serial: int | None = None,
    not_before: dt.datetime = NOT_BEFORE,
    not_after: dt.datetime = NOT_AFTER,
) -> Issued:
    """Certificate for ``private_key``'s public key, self-signed unless ``issuer`` is given."""
    if issuer is None:
        signer = private_key
        issuer_name = subject
    else:
        signer = issuer.key
        issuer_name = issuer.cert.subject
    assert not isinstance(signer, x25519.X25519PrivateKey | x448.X448PrivateKey), (
        "X25519/X448 keys can not sign; pass an issuer"
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(private_key.public_key())  # type: ignore[arg-type]
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    cert = builder.sign(signer, _signing_hash(signer))  # type: ignore[arg-type]
    return Issued(cert, private_key)


def self_signed(kind: str, common_name: str | None = None) -> Issued:
    """Self-signed certificate for a cached key of ``kind`` (X25519/X448: Ed25519-issued)."""
    subject = name(("COUNTRY_NAME", "US"), ("COMMON_NAME", common_name or f"{kind}.example"))
    if kind in ("x25519", "x448"):
        return make_cert(subject, key(kind), issuer=self_signed("ed25519", "okp-issuer"))
    return make_cert(subject, key(kind))


def chain3() -> tuple[Issued, Issued, Issued]:
    """(root, intermediate, leaf): RSA root, EC P-384 intermediate, EC P-256 leaf."""
    root = make_cert(
        name(("COUNTRY_NAME", "US"), ("ORGANIZATION_NAME", "Root Org"), ("COMMON_NAME", "Root CA")),
        key("rsa2048"),
        ca=True,
    )
    intermediate = make_cert(
        name(
            ("COUNTRY_NAME", "US"), ("ORGANIZATION_NAME", "Root Org"), ("COMMON_NAME", "Issuing CA")
        ),
        key("p384"),
        issuer=root,
        ca=True,
    )
    leaf = make_cert(
        name(
            ("COUNTRY_NAME", "US"),
            ("ORGANIZATION_NAME", "Leaf Org"),
            ("COMMON_NAME", "leaf.example.com"),
        ),
        new_key("p256"),
        issuer=intermediate,
    )
    return root, intermediate, leaf


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    """Run the openssl CLI and return stdout (raises on failure)."""
    result = subprocess.run(
        ["openssl", *args], input=stdin, capture_output=True, check=True, timeout=60
    )
    return result.stdout


def openssl_self_signed(
    workdir: Path,
    key_args: Sequence[str],
    subject: str,
    *,
    serial: str | None = None,
    days: int = 30,
) -> tuple[bytes, bytes]:
    """Self-signed (cert PEM, key PEM) made by ``openssl req -x509 -newkey ...``.

    ``subject`` is openssl's ``/C=US/O=.../CN=...`` form, read as UTF-8.
    """
    key_path = workdir / "openssl-key.pem"
    cert_path = workdir / "openssl-cert.pem"
    args = ["req", "-x509", "-noenc", "-utf8", "-subj", subject, "-days", str(days)]
    args += [*key_args, "-keyout", str(key_path), "-out", str(cert_path)]
    if serial is not None:
        args += ["-set_serial", serial]
    openssl(*args)
    return cert_path.read_bytes(), key_path.read_bytes()


def openssl_x509(cert_der: bytes, *args: str) -> str:
    """``openssl x509 -inform DER -noout <args>`` on a DER certificate, as text."""
    return openssl("x509", "-inform", "DER", "-noout", *args, stdin=cert_der).decode("utf-8")
