"""JWK helpers for the JWK endpoints (pure functions on top of joserfc, no I/O).

* ``validate_use_and_algorithm`` checks ``useType`` / ``algorithm`` against the table
  in create-jwk.md (``ALGORITHMS``) and against the key's curve.
* ``jwk_from_certificate`` derives the public JWK of a certificate's key, with ``x5c``,
  ``x5t``, ``x5t#S256`` and a ``kid`` defaulting to the RFC 7638 thumbprint.
* ``jwk_thumbprint`` and ``public_jwk`` work on any JWK dict.

Decisions:

* ``ALGORITHMS`` is keyed by the JOSE ``kty`` ("RSA", "EC", "oct", "OKP"); the
  Apinizer spelling "OCT" is accepted wherever a kty is passed in.
* The table lists ``DIR`` (the Java constant name); the JOSE ``alg`` value is ``dir``
  (RFC 7518 section 4.1) and that is what ``validate_use_and_algorithm`` returns, so
  JOSE libraries recognise the stored key. ``dir`` is accepted as input too.
* ``useType`` and ``algorithm`` are case-sensitive, as in JOSE and Apinizer.
* ``public_jwk`` raises ``JwkError`` for ``oct`` keys: a symmetric key has no public
  part, and an empty dict could end up published by mistake.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from joserfc.errors import JoseError
from joserfc.jwk import DictKey, JWKRegistry, Key

from keyops.crypto.x509 import ParsedCertificate

__all__ = [
    "ALGORITHMS",
    "USE_TYPES",
    "JwkError",
    "jwk_from_certificate",
    "jwk_thumbprint",
    "public_jwk",
    "validate_use_and_algorithm",
]

USE_TYPES: dict[str, str] = {"SIGNATURE": "sig", "ENCRYPTION": "enc"}

_ECDH = (
    "ECDH-ES",
    "ECDH-ES+A128KW",
    "ECDH-ES+A192KW",
    "ECDH-ES+A256KW",
    "ECDH-1PU",
    "ECDH-1PU+A128KW",
    "ECDH-1PU+A192KW",
    "ECDH-1PU+A256KW",
)

# Ordered as in create-jwk.md so error messages list the values the way the docs do.
_ALGORITHM_ORDER: dict[tuple[str, str], tuple[str, ...]] = {
    ("RSA", "SIGNATURE"): ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    ("RSA", "ENCRYPTION"): ("RSA1_5", "RSA-OAEP", "RSA-OAEP-256", "RSA-OAEP-384", "RSA-OAEP-512"),
    ("EC", "SIGNATURE"): ("ES256", "ES384", "ES512", "ES256K"),
    ("EC", "ENCRYPTION"): _ECDH,
    ("oct", "SIGNATURE"): ("HS256", "HS384", "HS512"),
    ("oct", "ENCRYPTION"): (
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
    ),
    ("OKP", "SIGNATURE"): ("EdDSA",),
    ("OKP", "ENCRYPTION"): _ECDH,
}

ALGORITHMS: dict[tuple[str, str], frozenset[str]] = {
    key: frozenset(values) for key, values in _ALGORITHM_ORDER.items()
}

# Table names that differ from the registered JOSE "alg" value, and the reverse.
_TABLE_TO_JOSE = {"DIR": "dir"}
_JOSE_TO_TABLE = {jose: table for table, jose in _TABLE_TO_JOSE.items()}

# Apinizer's names for the JOSE key types, used in messages.
_KTY_LABELS = {"RSA": "RSA", "EC": "EC", "oct": "OCT", "OKP": "OKP"}
_KTY_FROM_INPUT = {"RSA": "RSA", "EC": "EC", "oct": "oct", "OCT": "oct", "OKP": "OKP"}

_EC_SIGNATURE_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "ES256K": "secp256k1"}
_OKP_SIGNATURE_CURVES = ("Ed25519", "Ed448")
_OKP_ENCRYPTION_CURVES = ("X25519", "X448")
# The EC curves joserfc (and JOSE) can put in a JWK.
_JWK_EC_CURVES = ("P-256", "P-384", "P-521", "secp256k1")

# RFC 7517 section 4.3: the public half of a key can only do the public operation.
_PUBLIC_KEY_OPS = {"sign": "verify", "decrypt": "encrypt", "unwrapKey": "wrapKey"}


class JwkError(ValueError):
    """A JWK can not be built or used as asked; ``reason`` is the user-facing sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def validate_use_and_algorithm(
    kty: str,
    use_type: str | None,
    algorithm: str | None,
    *,
    curve: str | None = None,
) -> tuple[str, str]:
    """Check useType/algorithm for a key type (and curve); return (JOSE use, JOSE alg)."""
    jose_kty = _KTY_FROM_INPUT.get(kty)
    if jose_kty is None:
        raise JwkError(
            f"Key type ({kty}) can not be used for a JWK! Valid key types: RSA, EC, OCT, OKP"
        )
    if use_type is None or not use_type.strip():
        raise JwkError("useType value can not be empty!")
    if use_type not in USE_TYPES:
        raise JwkError("useType must be SIGNATURE or ENCRYPTION!")
    if algorithm is None or not algorithm.strip():
        raise JwkError("algorithm value can not be empty!")

    table_alg = _JOSE_TO_TABLE.get(algorithm, algorithm)
    if table_alg not in ALGORITHMS[(jose_kty, use_type)]:
        valid = ", ".join(_ALGORITHM_ORDER[(jose_kty, use_type)])
        raise JwkError(
            f"Algorithm ({algorithm}) is not valid for {_KTY_LABELS[jose_kty]} keys "
            f"with useType {use_type}! Valid values: {valid}"
        )
    if curve is not None:
        _check_curve(jose_kty, use_type, table_alg, curve)
    return USE_TYPES[use_type], _TABLE_TO_JOSE.get(table_alg, table_alg)


def _check_curve(kty: str, use_type: str, alg: str, curve: str) -> None:
    if kty == "EC" and use_type == "SIGNATURE":
        needed = _EC_SIGNATURE_CURVES[alg]
        if curve != needed:
            raise JwkError(
                f"Algorithm ({alg}) needs an EC key on curve {needed}, "
                f"but this key is on curve {curve}!"
            )
    elif kty == "OKP":
        allowed = _OKP_SIGNATURE_CURVES if use_type == "SIGNATURE" else _OKP_ENCRYPTION_CURVES
        if curve not in allowed:
            raise JwkError(
                f"Algorithm ({alg}) needs an OKP key on curve {' or '.join(allowed)}, "
                f"but this key is on curve {curve}!"
            )


def jwk_from_certificate(
    cert: ParsedCertificate,
    *,
    use_type: str | None,
    algorithm: str | None,
    kid: str | None = None,
    chain_der: list[bytes] | None = None,
) -> dict[str, Any]:
    """Public JWK of the certificate's key with use, alg, kid, x5c, x5t and x5t#S256.

    ``kid`` defaults to the RFC 7638 SHA-256 thumbprint (also when empty). ``chain_der``
    are the issuer certificates (DER) that follow the leaf in ``x5c``, each one the
    issuer of the one before; a leading copy of the leaf itself is ignored.
    """
    use, alg = validate_use_and_algorithm(cert.key_type, use_type, algorithm, curve=cert.curve)
    if cert.key_type == "EC" and cert.curve not in _JWK_EC_CURVES:
        raise JwkError(
            f"Curve ({cert.curve}) is not supported for JWKs! "
            f"Valid curves: {', '.join(_JWK_EC_CURVES)}"
        )
    x5c = _x5c(cert, chain_der or [])

    spki_pem = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        key = JWKRegistry.import_key(spki_pem, cert.key_type)
        members = {name: key.dict_value[name] for name in _public_members(key)}
        thumbprint = key.thumbprint()
    except (JoseError, ValueError, KeyError) as exc:
        raise JwkError("The certificate's public key can not be converted to a JWK!") from exc

    return {
        "kty": cert.key_type,
        "kid": kid if kid is not None and kid.strip() else thumbprint,
        "use": use,
        "alg": alg,
        **members,
        "x5c": x5c,
        "x5t": _b64url(hashlib.sha1(cert.der, usedforsecurity=False).digest()),
        "x5t#S256": _b64url(hashlib.sha256(cert.der).digest()),
    }


def _public_members(key: Key) -> list[str]:
    return [name for name, param in key.value_registry.items() if not param.private]


def _x5c(cert: ParsedCertificate, chain_der: list[bytes]) -> list[str]:
    issuers = chain_der[1:] if chain_der and chain_der[0] == cert.der else chain_der
    previous = x509.load_der_x509_certificate(cert.der)
    x5c = [cert.base64_der]
    # Positions are 1-based in x5c, the leaf being #1, so messages match what users see.
    for position, der in enumerate(issuers, start=2):
        try:
            issuer = x509.load_der_x509_certificate(der)
            issuer.subject  # noqa: B018 - force pyca's lazy parse so bad DER fails here
        except ValueError:
            raise JwkError(
                f"x5c certificate #{position} is not a valid DER encoded X.509 certificate!"
            ) from None
        try:
            previous.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise JwkError(
                f"x5c certificate #{position - 1} is not issued by certificate #{position}!"
            ) from None
        x5c.append(base64.b64encode(der).decode("ascii"))
        previous = issuer
    return x5c


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _import(jwk: dict[str, Any]) -> Key:
    try:
        return JWKRegistry.import_key(cast(DictKey, jwk))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise JwkError("The JWK is not a valid JSON Web Key!") from exc


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint (base64url) of a JWK, public or private."""
    return _import(jwk).thumbprint()


def public_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    """Copy of the JWK without private members (kty first); raises JwkError for oct keys."""
    key = _import(jwk)
    if key.key_type == "oct":
        raise JwkError("OCT keys are secret and have no public part!")
    public: dict[str, Any] = {"kty": key.key_type}
    for name, value in key.as_dict(private=False).items():
        if name == "key_ops" and isinstance(value, list):
            value = list(dict.fromkeys(_PUBLIC_KEY_OPS.get(op, op) for op in value))
        public.setdefault(name, value)
    return public
