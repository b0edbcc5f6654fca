"""X.509 certificate parsing for the certificate endpoints (pure functions, no I/O).

``parse_certificate`` turns the uploaded ``pemEncodedFile`` into a ``ParsedCertificate``
holding everything the API reports (dates, SHA-1 thumbprint, subject DN, base64 DER)
or raises ``CertificateParseError`` whose ``reason`` is the user-facing
``error_description``.

Accepted input: exactly one ``-----BEGIN CERTIFICATE-----`` PEM block (any text around
it, LF or CRLF line endings), or one DER certificate. Key material is never accepted:
a private key anywhere in the file rejects it, even next to a certificate. Any other
PEM block (CSR, CRL, ``TRUSTED CERTIFICATE``, ``PUBLIC KEY`` ...) also rejects it,
so a file never holds more than what gets stored.

DN text (``dn_text``) follows Java's ``X500Principal.toString()`` / ``X500Name``, which
is what Apinizer reports as ``subjectDn`` (``CN=example.com, O=Example Inc, C=US``):

* RDNs most specific first (reverse of the ASN.1 order, as RFC 4514 does), joined with
  ``", "``; the attributes of a multi-valued RDN are joined with ``"+"`` and kept in their
  encoded order (as Java and pyca/cryptography do; OpenSSL reverses them).
* Attribute keywords are Java's: CN, C, L, ST, O, OU, T, IP, STREET, DC, DNQ, SURNAME,
  GIVENNAME, INITIALS, GENERATION, EMAILADDRESS, UID, SERIALNUMBER. OpenSSL spells a few
  of these differently (``emailAddress``, ``serialNumber``, ``title``, ``SN``, ``GN``...);
  we keep Java's spelling because Apinizer is a Java product and clients compare these
  strings. Any other attribute is ``<dotted OID>=#<hex of the DER value>`` (RFC 4514).
* Values are escaped per RFC 4514 with backslashes (``, + " \\ < > ;``, a leading ``#``
  or space, a trailing space, control characters as ``\\XX``); non-ASCII text is kept
  as-is. Java's ``toString()`` would quote such values instead; backslash escaping is
  the standard, unambiguous form.

The result equals ``openssl x509 -noout -subject -nameopt
RFC2253,sep_comma_plus_space,-esc_msb`` except for the keyword spelling above and the
``" + "`` / order of multi-valued RDNs (see tests/crypto/test_x509.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

__all__ = [
    "CertificateParseError",
    "ParsedCertificate",
    "dn_text",
    "format_instant",
    "parse_certificate",
]

EMPTY_REASON = "pemEncodedFile value can not be empty!"
PRIVATE_KEY_REASON = "pemEncodedFile holds a private key, not a certificate!"
INVALID_REASON = "pemEncodedFile is not a valid PEM or DER encoded X.509 certificate!"


def _many_reason(count: int) -> str:
    return f"pemEncodedFile must hold exactly one certificate, found {count}!"


class CertificateParseError(ValueError):
    """The uploaded file is not exactly one X.509 certificate; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# JOSE / NIST names for the curves a JWK can carry; other curves keep pyca's name.
_EC_CURVE_NAMES = {
    "secp256r1": "P-256",
    "secp384r1": "P-384",
    "secp521r1": "P-521",
    "secp256k1": "secp256k1",
    "secp224r1": "P-224",
    "secp192r1": "P-192",
}


@dataclass(frozen=True, slots=True)
class ParsedCertificate:
    """One validated X.509 certificate and the facts the API reports about it.

    ``key_type`` is "RSA", "EC" or "OKP" for keys a JWK can carry, "DSA" for DSA keys
    and "UNKNOWN" when pyca/cryptography can not decode the public key (such a
    certificate can still be stored, it just can not become a JWK). ``key_size`` is the
    RSA/DSA modulus or EC field size in bits and None for OKP and unknown keys.
    """

    der: bytes
    not_before: datetime
    not_after: datetime
    subject_dn: str
    issuer_dn: str
    serial_number: str
    sha1_thumbprint: str
    sha256_thumbprint: str
    key_type: str
    curve: str | None
    key_size: int | None

    @property
    def base64_der(self) -> str:
        """Standard base64 of the DER encoding (``base64EncodedContent``)."""
        return base64.b64encode(self.der).decode("ascii")

    def to_pem(self) -> str:
        """PEM text of the certificate, 64-character lines, trailing newline."""
        b64 = self.base64_der
        body = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
        return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"

    def public_key(self) -> CertificatePublicKeyTypes:
        """The certificate's public key as a pyca/cryptography object.

        Raises ``cryptography.exceptions.UnsupportedAlgorithm`` when ``key_type`` is
        "UNKNOWN".
        """
        return x509.load_der_x509_certificate(self.der).public_key()


# A BEGIN line's label; a block without its END line is caught by the count check below.
_PEM_BEGIN = re.compile(rb"-----BEGIN ([^\r\n-]*)-----")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([^\r\n-]*)-----.*?-----END \1-----", re.DOTALL)


def parse_certificate(data: bytes) -> ParsedCertificate:
    """Parse exactly one PEM or DER X.509 certificate, or raise CertificateParseError."""
    if not data or not data.strip():
        raise CertificateParseError(EMPTY_REASON)
    try:
        if b"-----BEGIN " in data:
            cert = _single_pem_certificate(data)
        else:
            _reject_der_private_key(data)
            cert = x509.load_der_x509_certificate(data)
        return _describe(cert)
    except CertificateParseError:
        raise
    # pyca raises ValueError for malformed ASN.1, some of it lazily on first field access.
    except ValueError as exc:
        raise CertificateParseError(INVALID_REASON) from exc


def _single_pem_certificate(data: bytes) -> x509.Certificate:
    labels = [label.strip() for label in _PEM_BEGIN.findall(data)]
    if any(label.endswith(b"PRIVATE KEY") for label in labels):
        raise CertificateParseError(PRIVATE_KEY_REASON)
    cert_count = labels.count(b"CERTIFICATE")
    if cert_count > 1:
        raise CertificateParseError(_many_reason(cert_count))
    # Anything but one complete CERTIFICATE block (a CSR, a CRL, a lone public key, a
    # block cut short before its END line) is not what this field holds. The block regex
    # runs last, once a single BEGIN line is known, so it stays linear in the input size.
    if cert_count != 1 or len(labels) != 1 or len(_PEM_BLOCK.findall(data)) != 1:
        raise CertificateParseError(INVALID_REASON)
    certs = x509.load_pem_x509_certificates(data)
    if len(certs) != 1:  # defensive: the label scan above already counted one
        raise CertificateParseError(_many_reason(len(certs)))
    return certs[0]


def _reject_der_private_key(der: bytes) -> None:
    # A DER certificate never loads as a private key, so this only fires for key files.
    try:
        serialization.load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        # Encrypted PKCS#8: key material even though it can not be opened without a password.
        raise CertificateParseError(PRIVATE_KEY_REASON) from None
    except (ValueError, UnsupportedAlgorithm):
        return
    raise CertificateParseError(PRIVATE_KEY_REASON)


def _describe(cert: x509.Certificate) -> ParsedCertificate:
    der = cert.public_bytes(serialization.Encoding.DER)
    key_type, curve, key_size = _key_info(cert)
    return ParsedCertificate(
        der=der,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        subject_dn=dn_text(cert.subject),
        issuer_dn=dn_text(cert.issuer),
        serial_number=_serial_hex(cert.serial_number),
        sha1_thumbprint=hashlib.sha1(der, usedforsecurity=False).hexdigest().upper(),
        sha256_thumbprint=hashlib.sha256(der).hexdigest().upper(),
        key_type=key_type,
        curve=curve,
        key_size=key_size,
    )


def _key_info(cert: x509.Certificate) -> tuple[str, str | None, int | None]:
    try:
        key = cert.public_key()
    except UnsupportedAlgorithm:
        return "UNKNOWN", None, None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", None, key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", _EC_CURVE_NAMES.get(key.curve.name, key.curve.name), key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "OKP", "Ed25519", None
    if isinstance(key, ed448.Ed448PublicKey):
        return "OKP", "Ed448", None
    if isinstance(key, x25519.X25519PublicKey):
        return "OKP", "X25519", None
    if isinstance(key, x448.X448PublicKey):
        return "OKP", "X448", None
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", None, key.key_size
    return "UNKNOWN", None, None


def _serial_hex(serial: int) -> str:
    # Same text as `openssl x509 -serial`: whole bytes, upper case, sign kept.
    sign = "-" if serial < 0 else ""
    digits = f"{abs(serial):X}"
    if len(digits) % 2:
        digits = "0" + digits
    return sign + digits


def format_instant(dt: datetime) -> str:
    """ISO 8601 UTC with milliseconds (``2024-01-01T00:00:00.000Z``); naive means UTC."""
    # Naive values are taken as UTC because databases such as SQLite drop the zone.
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond // 1000:03d}Z"


# Java's sun.security.x509.AVAKeyword table (the later keyword wins for an OID).
_KEYWORDS: dict[str, str] = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "T",
    "1.3.6.1.4.1.42.2.11.2.1": "IP",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "2.5.4.46": "DNQ",
    "2.5.4.4": "SURNAME",
    "2.5.4.42": "GIVENNAME",
    "2.5.4.43": "INITIALS",
    "2.5.4.44": "GENERATION",
    "1.2.840.113549.1.9.1": "EMAILADDRESS",
    "0.9.2342.19200300.100.1.1": "UID",
    "2.5.4.5": "SERIALNUMBER",
}

_ESCAPED = frozenset(',+"\\<>;')


def dn_text(name: x509.Name) -> str:
    """Java/Apinizer-style DN text: ``CN=example.com, O=Example Inc, C=US``."""
    return ", ".join("+".join(_ava_text(attr) for attr in rdn) for rdn in reversed(name.rdns))


def _ava_text(attr: x509.NameAttribute[str | bytes]) -> str:
    oid = attr.oid.dotted_string
    keyword = _KEYWORDS.get(oid)
    if keyword is None or isinstance(attr.value, bytes):
        # RFC 4514 section 2.4: types without a keyword are written as #hex of the DER.
        return f"{keyword or oid}=#{_attribute_value_der(attr).hex().upper()}"
    return f"{keyword}={_escape_value(attr.value)}"


def _escape_value(value: str) -> str:
    out: list[str] = []
    last = len(value) - 1
    for i, ch in enumerate(value):
        if ch in _ESCAPED or (i == 0 and ch in "# ") or (i == last and ch == " "):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


def _attribute_value_der(attr: x509.NameAttribute[str | bytes]) -> bytes:
    # pyca does not expose the raw value; re-encode a one-attribute Name, which keeps the
    # original ASN.1 string type, and dig out the value: SEQUENCE > SET > SEQUENCE > [OID, value].
    name_der = x509.Name([x509.RelativeDistinguishedName([attr])]).public_bytes()
    rdn_set = _der_content(name_der)
    atv = _der_content(rdn_set)
    atv_content = _der_content(atv)
    oid_len = _der_tlv_length(atv_content)
    return atv_content[oid_len:]


def _der_header(data: bytes) -> tuple[int, int]:
    """Return (header length, content length) of the TLV at the start of ``data``."""
    first = data[1]
    if first < 0x80:
        return 2, first
    count = first & 0x7F
    return 2 + count, int.from_bytes(data[2 : 2 + count], "big")


def _der_content(data: bytes) -> bytes:
    header, length = _der_header(data)
    return data[header : header + length]


def _der_tlv_length(data: bytes) -> int:
    header, length = _der_header(data)
    return header + length
