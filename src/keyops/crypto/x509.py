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

DN text (``dn_text_der``, the one function for every DN keyops shows: certificates,
keystore entries, gateway peers) equals the JDK's ``X500Principal.toString()`` (and
``getSubjectDN().toString()``), because Apinizer is a Java product and clients compare
these strings. Checked against JDK 17 in tests/crypto/test_dn_java.py over the Mozilla
bundle and crafted names. The rules of sun.security.x509.X500Name / RDN / AVA:

* RDNs most specific first (reverse of the DER order), joined with ``", "``; the
  attributes of a multi-valued RDN in their encoded order, joined with ``" + "``.
* Keywords CN, C, L, ST, O, OU, T, IP, STREET, DC, DNQ, SURNAME, GIVENNAME, INITIALS,
  GENERATION, EMAILADDRESS, UID, SERIALNUMBER; any other attribute is ``OID.<dotted>``.
* Values of UTF8String, PrintableString, IA5String, GeneralString (ASCII), TeletexString
  (ISO-8859-1), BMPString and UniversalString are text, undecodable bytes as U+FFFD;
  any other value (NumericString, VisibleString, INTEGER, OCTET STRING, BIT STRING...)
  is ``#`` and the lower-case hex of its DER.
* Text is never backslash-escaped as RFC 4514 would; it is put in double quotes when it
  holds any of ``, + = < > # ; " \\`` or a newline, starts or ends with a space or
  newline, or has two blanks in a row; inside, ``"`` and ``\\`` get a backslash. A value
  already wrapped in double quotes is shown as it is. Other characters (controls,
  non-ASCII) are kept as they are.

The Name is read from the certificate's own DER, not from pyca/cryptography's decoded
attributes, so types pyca cannot represent (an INTEGER value) print as Java prints them.
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
    "dn_text_der",
    "format_instant",
    "name_ders",
    "oid_text",
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
    issuer_der, subject_der = name_ders(cert)
    return ParsedCertificate(
        der=der,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        subject_dn=dn_text_der(subject_der),
        issuer_dn=dn_text_der(issuer_der),
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


# Java's sun.security.x509.AVAKeyword table as X500Principal.toString() uses it (checked
# against JDK 17): where two keywords share an OID the later one wins (ST not S, DNQ not
# DNQUALIFIER, EMAILADDRESS not EMAIL); every other OID is written "OID.<dotted>".
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

# sun.security.x509.AVA.toKeywordValueString: any of these anywhere quotes the value.
_QUOTE_TRIGGERS = frozenset(',+=\n<>#;\\"')
# DerValue.isPrintableStringChar, plus the triggers: the characters whose spacing counts.
_PRINTABLE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")

_TAG_SEQUENCE = 0x30
_TAG_SET = 0x31
_TAG_OID = 0x06


def dn_text(name: x509.Name) -> str:
    """Java's ``X500Principal.toString()`` of a pyca Name (see ``dn_text_der``)."""
    return dn_text_der(name.public_bytes())


def dn_text_der(name_der: bytes) -> str:
    """Java's ``X500Principal.toString()`` of a DER ``Name``: ``CN=example.com, O="A, Inc.", C=US``.

    Raises ValueError when ``name_der`` is not a DER Name.
    """
    content, rest = _der_take(name_der, _TAG_SEQUENCE)
    if rest:
        raise ValueError("trailing data after the Name")
    rdns: list[str] = []
    while content:
        rdn, content = _der_take(content, _TAG_SET)
        avas: list[str] = []
        while rdn:
            atv, rdn = _der_take(rdn, _TAG_SEQUENCE)
            oid, value = _der_take(atv, _TAG_OID)
            avas.append(_ava_text(oid_text(oid), value))
        rdns.append(" + ".join(avas))
    return ", ".join(reversed(rdns))


def _ava_text(oid: str, value_tlv: bytes) -> str:
    keyword = _KEYWORDS.get(oid, f"OID.{oid}")
    tag, content, rest = _der_tlv(value_tlv)
    if rest:
        raise ValueError("trailing data after an attribute value")
    text = _java_string(tag, content)
    if text is None:
        # Not a string type: Java writes "#" and the value's DER (re-encoded, lower case).
        return f"{keyword}=#{(bytes([tag]) + _der_length(len(content)) + content).hex()}"
    return f"{keyword}={_java_value(text)}"


def _java_string(tag: int, content: bytes) -> str | None:
    """DerValue.getAsString(): the string types Java decodes, with its charsets."""
    match tag:
        case 0x0C:  # UTF8String
            return content.decode("utf-8", errors="replace")
        case 0x13 | 0x16 | 0x1B:  # PrintableString, IA5String, GeneralString
            return content.decode("ascii", errors="replace")
        case 0x14:  # TeletexString, which Java reads as ISO-8859-1
            return content.decode("latin-1")
        case 0x1C:  # UniversalString
            return _java_utf32be(content)
        case 0x1E:  # BMPString
            return _java_utf16be(content)
        case _:
            return None


def _java_utf16be(data: bytes) -> str:
    # Java's UTF-16BE decoder treats a high surrogate and the unit after it as one
    # malformed sequence (one U+FFFD for both); Python's would keep the second unit.
    out: list[str] = []
    i = 0
    while i + 1 < len(data):
        unit = int.from_bytes(data[i : i + 2], "big")
        i += 2
        if 0xD800 <= unit <= 0xDBFF:
            if i + 1 >= len(data):
                out.append("\ufffd")
                continue
            low = int.from_bytes(data[i : i + 2], "big")
            i += 2
            if 0xDC00 <= low <= 0xDFFF:
                out.append(chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)))
            else:
                out.append("\ufffd")
        elif 0xDC00 <= unit <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(chr(unit))
    if i < len(data):
        out.append("\ufffd")
    return "".join(out)


def _java_utf32be(data: bytes) -> str:
    # Java keeps a surrogate code point as a lone char and replaces only values past
    # U+10FFFF and a short tail; Python's decoder would replace surrogates too.
    units = [int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data) - 3, 4)]
    text = "".join("\ufffd" if cp > 0x10FFFF else chr(cp) for cp in units)
    return text + ("\ufffd" if len(data) % 4 else "")


def _java_value(value: str) -> str:
    """AVA.toKeywordValueString for a string: quote instead of escaping, as Java does."""
    already_quoted = len(value) > 1 and value[0] == '"' and value[-1] == '"'
    quote = False
    previous_white = False
    out: list[str] = []
    last = len(value) - 1
    for i, ch in enumerate(value):
        if already_quoted and i in (0, last):
            out.append(ch)
            continue
        if ch in _PRINTABLE or ch in _QUOTE_TRIGGERS:
            if (i == 0 and ch in " \n") or ch in _QUOTE_TRIGGERS:
                quote = True
            if ch in " \n":
                # Two blanks in a row would be folded by a reader, so Java quotes them.
                quote = quote or previous_white
                previous_white = True
            else:
                if ch in '"\\':
                    out.append("\\")
                previous_white = False
        else:
            previous_white = False
        out.append(ch)
    if out and out[-1] in " \n":
        quote = True
    text = "".join(out)
    return f'"{text}"' if quote and not already_quoted else text


def name_ders(cert: x509.Certificate) -> tuple[bytes, bytes]:
    """The DER ``(issuer, subject)`` Names exactly as the certificate encodes them."""
    tbs, _ = _der_take(cert.tbs_certificate_bytes, _TAG_SEQUENCE)
    tag, _, rest = _der_tlv(tbs)
    if tag == 0xA0:  # explicit version
        tbs = rest
    for _skip in ("serialNumber", "signature"):
        _, _, tbs = _der_tlv(tbs)
    issuer_len = _der_tlv_length(tbs)
    issuer, tbs = tbs[:issuer_len], tbs[issuer_len:]
    _, _, tbs = _der_tlv(tbs)  # validity
    return issuer, tbs[: _der_tlv_length(tbs)]


def oid_text(content: bytes) -> str:
    """The dotted text of an OBJECT IDENTIFIER's DER content (ValueError if malformed)."""
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs or content[-1] & 0x80:
        raise ValueError("malformed OBJECT IDENTIFIER")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der_header(data: bytes) -> tuple[int, int]:
    """Return (header length, content length) of the TLV at the start of ``data``."""
    if len(data) < 2:
        raise ValueError("truncated DER")
    first = data[1]
    if first < 0x80:
        header, length = 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            raise ValueError("unsupported DER length")
        header, length = 2 + count, int.from_bytes(data[2 : 2 + count], "big")
    if header + length > len(data):
        raise ValueError("truncated DER")
    return header, length


def _der_tlv(data: bytes) -> tuple[int, bytes, bytes]:
    """Split ``data`` into (tag, content of its first TLV, what follows it)."""
    header, length = _der_header(data)
    return data[0], data[header : header + length], data[header + length :]


def _der_take(data: bytes, tag: int) -> tuple[bytes, bytes]:
    found, content, rest = _der_tlv(data)
    if found != tag:
        raise ValueError(f"expected DER tag {tag:#04x}, found {found:#04x}")
    return content, rest


def _der_tlv_length(data: bytes) -> int:
    header, length = _der_header(data)
    return header + length
