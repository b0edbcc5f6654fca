"""PEM keystores: one private key and its certificate chain as PEM text (pure, no I/O).

What ACME clients and CAs hand out (``privkey.pem`` + ``fullchain.pem``, or both in one
file) is accepted as a keystore of ``type: PEM`` and turned into the PKCS12 file every
other part of keyops already reads (``keystores.parse_keystore`` does the whole
conversion; this module holds its pure PEM and X.509 steps).

Decisions:

* The file is PEM text: ``CERTIFICATE`` blocks and exactly one private key block,
  ``PRIVATE KEY`` (PKCS#8), ``ENCRYPTED PRIVATE KEY`` (encrypted PKCS#8) or the
  traditional OpenSSL ``RSA PRIVATE KEY`` / ``EC PRIVATE KEY`` / ``DSA PRIVATE KEY``
  (optionally encrypted, ``Proc-Type: 4,ENCRYPTED``). ``EC PARAMETERS`` blocks
  (``openssl ecparam -genkey`` writes one) are skipped; any other block (a public key,
  a CSR, ``TRUSTED CERTIFICATE``) is refused, so the file never holds more than what is
  stored. Text outside the blocks (``openssl x509 -text`` output, bag attributes) is
  ignored, as RFC 7468 allows.
* The certificates may come in any order. Exactly one must carry the key's public key
  (the leaf); the chain is built from it by issuer name, each issuer verified to have
  signed the certificate before it, and stored leaf first. A certificate that is not
  part of that chain is refused rather than silently stored as a trusted entry. The
  same certificate given twice counts once (``cat cert.pem fullchain.pem``).
* At most ``MAX_CERTIFICATES`` certificates, so a crafted file can not make the chain
  search expensive.
* The key entry's alias is ``PEM_ALIAS`` (``1``): the alias Java and keyops give the
  key of a PKCS12 file made by ``openssl pkcs12 -export`` without ``-name``, so a PEM
  upload and such a file replace each other on rotation without breaking a TLS
  identity or a JWK that names the alias.
* The PKCS12 file is protected with the store password as Java 17 writes new ones:
  PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC, ``PKCS12_ITERATIONS``) for the key and the
  certificates, and an HMAC-SHA256 MAC. Java opens such a file only under an ASCII
  password, so the password of a PEM keystore must be ASCII.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from keyops.crypto.x509 import dn_text

__all__ = [
    "KEY_LABELS",
    "MAX_CERTIFICATES",
    "PEM_ALIAS",
    "PKCS12_ITERATIONS",
    "PemBlock",
    "PemBundle",
    "PemBundleError",
    "chain_for",
    "check_password",
    "read_pem_bundle",
    "to_pkcs12",
]

PEM_ALIAS = "1"
MAX_CERTIFICATES = 16
# Java's default for new PKCS12 files (keystore.pkcs12.keyPbeIterationCount).
PKCS12_ITERATIONS = 10_000

CERTIFICATE_LABEL = "CERTIFICATE"
ENCRYPTED_KEY_LABEL = "ENCRYPTED PRIVATE KEY"
KEY_LABELS: tuple[str, ...] = (
    "PRIVATE KEY",
    ENCRYPTED_KEY_LABEL,
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "DSA PRIVATE KEY",
)
_SKIPPED_LABELS = ("EC PARAMETERS",)
# Longest BEGIN label taken (RFC 7468's are under 30 characters), so that an error
# message never repeats a huge line of the file.
_MAX_LABEL = 64

NO_BLOCK_REASON = (
    "Keystore file holds no PEM block: a PEM keystore is a private key and its certificate"
    " chain as PEM text!"
)
NO_KEY_REASON = (
    "Keystore file holds no private key: a PEM keystore needs the private key and its"
    " certificate chain!"
)
NO_CERTIFICATE_REASON = (
    "Keystore file holds no certificate: a PEM keystore needs the private key and its"
    " certificate chain!"
)
# A message, not a password (ruff's S105 goes by the name).
ASCII_PASSWORD_REASON = (
    "password must be ASCII text for a PEM keystore: it becomes the password of a PKCS12"  # noqa: S105
    " file, which Java opens only with an ASCII password!"
)


class PemBundleError(ValueError):
    """The PEM file is not one key and its chain; ``reason`` is the user-facing sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PemBlock:
    """One PEM block: its label, decoded content, first line and RFC 1421 headers."""

    label: str
    der: bytes
    line: int
    headers: tuple[tuple[str, str], ...]
    text: bytes  # the block as written, BEGIN to END: traditional keys open from it

    @property
    def encrypted(self) -> bool:
        """A traditional OpenSSL key encrypted under a password (``Proc-Type: 4,ENCRYPTED``)."""
        return any(
            name.lower() == "proc-type" and value.replace(" ", "").upper().endswith(",ENCRYPTED")
            for name, value in self.headers
        )

    def __repr__(self) -> str:
        # A key block's content is key material: never in a log line or traceback.
        return f"PemBlock(label={self.label!r}, line={self.line}, size={len(self.der)})"


@dataclass(frozen=True, slots=True)
class PemBundle:
    """The one key block of a PEM keystore and its certificates (deduplicated, file order)."""

    key: PemBlock
    certificates: tuple[tuple[int, x509.Certificate], ...]  # (line, certificate)


def _malformed(label: str, line: int) -> PemBundleError:
    return PemBundleError(
        f"Keystore file is not valid PEM: the {label} block at line {line} is malformed!"
    )


def _blocks(data: bytes) -> list[PemBlock]:
    # latin-1 maps every byte to one character, so any text around the blocks is kept
    # and line numbers stay right; the blocks themselves must be ASCII base64.
    lines = data.decode("latin-1").splitlines()
    blocks: list[PemBlock] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if not line.startswith("-----BEGIN "):
            continue
        start = index
        label = line[len("-----BEGIN ") :]
        if not label.endswith("-----") or not label[:-5].strip() or len(label) > _MAX_LABEL:
            shown = label.rstrip("-").strip()[:_MAX_LABEL] or "unnamed"
            raise _malformed(shown, start)
        label = label[:-5].strip()
        end = f"-----END {label}-----"
        body: list[str] = []
        headers: list[tuple[str, str]] = []
        while True:
            if index >= len(lines):
                raise _malformed(label, start)
            current = lines[index].strip()
            index += 1
            if current == end:
                break
            if current.startswith("-----"):
                raise _malformed(label, start)
            if ":" in current and not body:
                name, _, value = current.partition(":")
                headers.append((name.strip(), value.strip()))
            elif current:
                body.append(current)
        try:
            der = base64.b64decode("".join(body), validate=True)
        except (binascii.Error, ValueError):
            raise _malformed(label, start) from None
        if not der:
            raise _malformed(label, start)
        text = "\n".join(part.strip() for part in lines[start - 1 : index]) + "\n"
        blocks.append(PemBlock(label, der, start, tuple(headers), text.encode("latin-1")))
    return blocks


def read_pem_bundle(data: bytes) -> PemBundle:
    """Split a PEM keystore file into its one key block and its certificates, or refuse."""
    blocks = _blocks(data)
    if not blocks:
        raise PemBundleError(NO_BLOCK_REASON)
    keys: list[PemBlock] = []
    cert_blocks: dict[bytes, PemBlock] = {}  # by content: the same certificate counts once
    for block in blocks:
        if block.label in KEY_LABELS:
            keys.append(block)
        elif block.label == CERTIFICATE_LABEL:
            cert_blocks.setdefault(block.der, block)
        elif block.label not in _SKIPPED_LABELS:
            raise PemBundleError(
                f"Keystore file holds a {block.label} block (line {block.line}): a PEM keystore"
                " holds one private key and its certificates only!"
            )
    if not keys:
        raise PemBundleError(NO_KEY_REASON)
    if len(keys) > 1:
        raise PemBundleError(
            f"Keystore file holds {len(keys)} private keys: a PEM keystore holds exactly one!"
        )
    if not cert_blocks:
        raise PemBundleError(NO_CERTIFICATE_REASON)
    # Counted before any is parsed, so a file of thousands costs no parsing.
    if len(cert_blocks) > MAX_CERTIFICATES:
        raise PemBundleError(
            f"Keystore file holds {len(cert_blocks)} certificates: a PEM keystore holds at"
            f" most {MAX_CERTIFICATES}!"
        )
    certificates = []
    for block in cert_blocks.values():
        try:
            cert = x509.load_der_x509_certificate(block.der)
            cert.subject  # noqa: B018 - pyca parses lazily; fail here, not later
        except ValueError:
            raise PemBundleError(
                f"The certificate at line {block.line} of the keystore file is not a valid"
                " X.509 certificate!"
            ) from None
        certificates.append((block.line, cert))
    return PemBundle(keys[0], tuple(certificates))


def _spki(public_key: object) -> bytes | None:
    try:
        return public_key.public_bytes(  # type: ignore[attr-defined, no-any-return]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (AttributeError, ValueError, UnsupportedAlgorithm):
        return None


def _cert_spki(cert: x509.Certificate) -> bytes | None:
    try:
        return _spki(cert.public_key())
    except (ValueError, UnsupportedAlgorithm):
        return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def chain_for(key: PrivateKeyTypes, bundle: PemBundle) -> list[x509.Certificate]:
    """The key's certificate and its issuers, leaf first; every certificate must be in it."""
    wanted = _spki(key.public_key())
    certificates = [cert for _, cert in bundle.certificates]
    leaves = [cert for cert in certificates if wanted is not None and _cert_spki(cert) == wanted]
    if not leaves:
        if len(certificates) == 1:
            reason = "The private key of the keystore file does not match its certificate!"
        else:
            reason = (
                "The private key of the keystore file matches none of its"
                f" {len(certificates)} certificates!"
            )
        raise PemBundleError(reason)
    if len(leaves) > 1:
        raise PemBundleError(
            f"The private key of the keystore file matches {len(leaves)} certificates"
            f" ({'; '.join(dn_text(c.subject) for c in leaves)}): a PEM keystore holds"
            " exactly one certificate for its key!"
        )
    chain = [leaves[0]]
    rest = [cert for cert in certificates if cert is not leaves[0]]
    while rest:
        current = chain[-1]
        if current.issuer == current.subject:
            break
        issuer = next((cert for cert in rest if _issued_by(current, cert)), None)
        if issuer is None:
            break
        chain.append(issuer)
        rest.remove(issuer)
    if rest:
        lines = {id(cert): line for line, cert in bundle.certificates}
        stray = rest[0]
        raise PemBundleError(
            f"The certificate at line {lines[id(stray)]} of the keystore file"
            f" ({dn_text(stray.subject)}) is not in the chain of the key's certificate"
            f" ({dn_text(chain[0].subject)}): a PEM keystore holds only that chain!"
        )
    return chain


def check_password(password: str) -> None:
    """Refuse a password Java could not open the PKCS12 file with."""
    if not password.isascii():
        raise PemBundleError(ASCII_PASSWORD_REASON)


def to_pkcs12(
    key: PrivateKeyTypes, chain: list[x509.Certificate], password: str, alias: str = PEM_ALIAS
) -> bytes:
    """A PKCS12 file of one key entry (``alias``, the chain leaf first) under ``password``."""
    check_password(password)
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_ITERATIONS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode("ascii"))
    )
    try:
        return pkcs12.serialize_key_and_certificates(
            alias.encode("utf-8"),
            key,  # type: ignore[arg-type]
            chain[0],
            chain[1:] or None,
            encryption,
        )
    except (TypeError, ValueError, UnsupportedAlgorithm):
        # X25519/X448 keys: PKCS12 as pyca writes it holds RSA, DSA, EC and EdDSA keys.
        raise PemBundleError(
            "The private key of the keystore file uses an algorithm a PEM keystore can not hold!"
        ) from None
