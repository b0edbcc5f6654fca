"""Content fingerprints, of the material a file gives and of what the server holds.

A fingerprint is the SHA-256 (hex) of the bytes the server keeps and reports, computed on
both sides with the same canonical form, so an unchanged resource is never re-uploaded:

- certificate: the DER. The file's PEM or DER goes through the same parser the server
  uses (``crypto/x509.py``); the server's side is ``base64EncodedContent`` of a get (the
  list carries only SHA-1 thumbprints, decision 9).
- key: the SubjectPublicKeyInfo DER, and the PKCS#8 DER (or a symmetric key's secret)
  when there is a private part: the file's text goes through ``crypto/keys.py``'s
  parser, as on the server; the server's side is ``publicKey``/``privateKey`` of the
  list. Both parts count, so adding a private key to a public one is a change.
- keystore: the store file exactly as uploaded (the server keeps it byte for byte). Its
  passwords are write-only and can not be compared; they need not be: PKCS#12's MAC and
  JKS/JCEKS's integrity digest are keyed by the store password, so another password
  means another file. A changed ``key_password`` alone (the same file) is not seen.
- JWK: no material of its own to compare; the server keeps a derived JWK in step with
  its source while attached (decision 4), so what is compared is the derivation itself:
  source kind and name, environment, alias, use, algorithm and (when the file gives one)
  kid. A JWK its source was replaced under without ``update_jwks`` is detached and no
  longer names its source, so it is seen as changed.
"""

from __future__ import annotations

import base64
import hashlib

from keyops.crypto.keys import KeyMaterialError, parse_key_material
from keyops.crypto.x509 import CertificateParseError, parse_certificate

__all__ = [
    "MaterialError",
    "certificate_der",
    "certificate_fingerprint",
    "key_fingerprint",
    "keystore_fingerprint",
    "server_key_fingerprint",
    "sha256",
    "short",
]


class MaterialError(ValueError):
    """Material in the file that the server would refuse (said before anything is sent)."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def short(fingerprint: str | None) -> str:
    """A fingerprint as a table shows it."""
    if not fingerprint:
        return "-"
    return ":".join(part[:12] for part in fingerprint.split(":"))


def certificate_der(content: bytes) -> bytes:
    """The DER of a PEM or DER certificate; ``MaterialError`` with the parser's reason."""
    try:
        return parse_certificate(content).der
    except CertificateParseError as exc:
        raise MaterialError(str(exc)) from None


def certificate_fingerprint(content: bytes) -> str:
    return sha256(certificate_der(content))


def _pair(public_der: bytes | None, private: bytes | None) -> str:
    out = sha256(public_der) if public_der is not None else "none"
    return f"{out}:{sha256(private)}" if private is not None else out


def key_fingerprint(key_type: str, public_key: str | None, private_key: str | None) -> str:
    """``PUBLIC[:PRIVATE]`` of a key as the file gives it."""
    try:
        m = parse_key_material(key_type, public_key, private_key)
    except KeyMaterialError as exc:
        raise MaterialError(str(exc)) from None
    return _pair(m.public_der, m.secret if m.key_type == "SYMMETRIC" else m.private_der)


def key_type_of(key_type: str, public_key: str | None, private_key: str | None) -> str:
    """The key type the server will store (``EC``, ``RSA``, ``ED25519``...)."""
    try:
        return parse_key_material(key_type, public_key, private_key).key_type
    except KeyMaterialError as exc:
        raise MaterialError(str(exc)) from None


def server_key_fingerprint(public_b64: str | None, private_b64: str | None) -> str:
    """The same fingerprint from a key list's ``publicKey``/``privateKey``."""
    public = base64.b64decode(public_b64) if public_b64 else None
    private = base64.b64decode(private_b64) if private_b64 else None
    return _pair(public, private)


def keystore_fingerprint(content: bytes) -> str:
    return sha256(content)
