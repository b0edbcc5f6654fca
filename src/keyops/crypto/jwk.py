"""JWK helpers for the JWK endpoints (pure functions on top of joserfc, no I/O).

* ``validate_use_and_algorithm`` checks ``useType`` / ``algorithm`` against the table
  in create-jwk.md (``ALGORITHMS``) and against the key's curve.
* ``jwk_from_certificate`` derives the public JWK of a certificate's key, with ``x5c``,
  ``x5t``, ``x5t#S256`` and a ``kid`` defaulting to the RFC 7638 thumbprint.
* ``jwk_thumbprint`` and ``public_jwk`` work on any JWK dict.
* ``jwk_from_key`` and ``jwk_from_keystore_entry`` build public or private JWKs from
  stored keys (``keyops.crypto.keys``) and keystore aliases (``keyops.crypto.keystores``).
* ``parse_jwk_text`` picks one key out of pasted JWK / JWK Set JSON (``jwkStr``).
* ``generate_jwk`` makes a new key as generate-jwk.md describes.
* ``split_private`` / ``join_private`` separate the private members, so storage can seal
  them apart from the public part.

Decisions:

* ``ALGORITHMS`` is keyed by the JOSE ``kty`` ("RSA", "EC", "oct", "OKP"); the
  Apinizer spelling "OCT" is accepted wherever a kty is passed in.
* The table lists ``DIR`` (the Java constant name); the JOSE ``alg`` value is ``dir``
  (RFC 7518 section 4.1) and that is what ``validate_use_and_algorithm`` returns, so
  JOSE libraries recognise the stored key. ``dir`` is accepted as input too.
* ``useType`` and ``algorithm`` are case-sensitive, as in JOSE and Apinizer.
* ``public_jwk`` raises ``JwkError`` for ``oct`` keys: a symmetric key has no public
  part, and an empty dict could end up published by mistake.
* generate-jwk.md spells algorithms as Java enum constants (``RSA256``, ``RSA_OAEP_256``,
  ``ECDH_ES_A128KW``, ``PBES2_HS256_A128KW``, ``DIR``); ``normalize_algorithm`` maps those
  and the JOSE names to the JOSE name, which is what gets stored.
* Symmetric keys must have the size their algorithm requires: AES key wrap / GCM key
  wrap exactly the AES key size, ``dir`` a size some ``enc`` uses, and HMAC at least
  the hash size (RFC 7518 section 3.2; Nimbus, which Apinizer's gateway uses, refuses
  shorter HMAC keys at run time, so refusing them here surfaces the problem early).
  So OCT 128/192 keys are made for ENCRYPTION (A128KW/A192KW...), not for HS256.
* ``generate_jwk``: useType defaults to SIGNATURE, except for X25519, which can not sign
  and defaults to ENCRYPTION (generate-jwk.md's X25519 example gives no useType). The
  key is generated with pyca/cryptography and stored with ``iat``, ``nbf`` and ``exp``
  as NumericDate integers, as Nimbus JOSE does. ``keyIdType`` TIMESTAMP is epoch
  milliseconds; ISO_DATE is ``format_instant(now)`` (``2024-01-01T00:00:00.000Z``).
* ``parse_jwk_text`` returns the chosen key exactly as given (private members kept). A
  single JWK with a different ``kid`` than the one asked for is refused; a JWK Set with
  several keys of the asked ``kid`` is refused as ambiguous.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from joserfc.errors import JoseError
from joserfc.jwk import DictKey, JWKRegistry, Key

from keyops.crypto.keys import KeyMaterial, KeyMaterialError, key_material_from_pkcs8
from keyops.crypto.x509 import ParsedCertificate, format_instant

if TYPE_CHECKING:
    # Only the type: importing keystores at run time would load pyjks for every JWK call.
    from keyops.crypto.keystores import KeystoreEntry

__all__ = [
    "ALGORITHMS",
    "GENERATE_CURVES",
    "GENERATE_KEY_SIZES",
    "KEY_ID_TYPES",
    "PRIVATE_MEMBERS",
    "USE_TYPES",
    "JwkError",
    "generate_jwk",
    "join_private",
    "jwk_from_certificate",
    "jwk_from_key",
    "jwk_from_keystore_entry",
    "jwk_thumbprint",
    "key_thumbprint",
    "normalize_algorithm",
    "parse_jwk_text",
    "public_jwk",
    "split_private",
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

    jose_alg = normalize_algorithm(algorithm)
    table_alg = _JOSE_TO_TABLE.get(jose_alg, jose_alg)
    if table_alg not in ALGORITHMS[(jose_kty, use_type)]:
        valid = ", ".join(_ALGORITHM_ORDER[(jose_kty, use_type)])
        raise JwkError(
            f"Algorithm ({algorithm}) is not valid for {_KTY_LABELS[jose_kty]} keys "
            f"with useType {use_type}! Valid values: {valid}"
        )
    if curve is not None:
        _check_curve(jose_kty, use_type, jose_alg, curve)
    return USE_TYPES[use_type], jose_alg


def _spec_spellings(jose: str) -> set[str]:
    # generate-jwk.md uses Java enum constant names: "-" and "+" become "_", and the
    # RSASSA-PKCS1 algorithms are RSA256/RSA384/RSA512.
    names = {jose, jose.replace("-", "_").replace("+", "_"), _JOSE_TO_TABLE.get(jose, jose)}
    if jose in ("RS256", "RS384", "RS512"):
        names.add("RSA" + jose[2:])
    return names


_ALGORITHM_SPELLINGS: dict[str, str] = {
    spelling: jose
    for values in _ALGORITHM_ORDER.values()
    for table in values
    for jose in [_TABLE_TO_JOSE.get(table, table)]
    for spelling in _spec_spellings(jose)
}


def normalize_algorithm(alg: str) -> str:
    """JOSE name for a JOSE or generate-jwk.md spelling (``RSA_OAEP_256``); else ``alg``."""
    # Case-sensitive like JOSE itself; an unknown value comes back as is for the caller
    # (validate_use_and_algorithm) to reject with the user's own spelling.
    return _ALGORITHM_SPELLINGS.get(alg, alg)


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


# --- symmetric key sizes -----------------------------------------------------------------

_HMAC_MIN_BITS = {"HS256": 256, "HS384": 384, "HS512": 512}
_AES_KEY_BITS = {
    "A128KW": 128,
    "A192KW": 192,
    "A256KW": 256,
    "A128GCMKW": 128,
    "A192GCMKW": 192,
    "A256GCMKW": 256,
}
# Key sizes of the "enc" algorithms a "dir" key can serve (A128GCM..A256GCM, A128CBC-HS256..).
_DIR_KEY_BITS = (128, 192, 256, 384, 512)


def _check_oct_size(alg: str, bits: int) -> None:
    if alg in _HMAC_MIN_BITS and bits < _HMAC_MIN_BITS[alg]:
        raise JwkError(
            f"Algorithm ({alg}) needs a key of at least {_HMAC_MIN_BITS[alg]} bits, "
            f"but this key has {bits} bits!"
        )
    if alg in _AES_KEY_BITS and bits != _AES_KEY_BITS[alg]:
        raise JwkError(
            f"Algorithm ({alg}) needs a {_AES_KEY_BITS[alg]}-bit key, but this key has {bits} bits!"
        )
    if alg == "dir" and bits not in _DIR_KEY_BITS:
        raise JwkError(
            f"Algorithm (dir) needs a 128, 192, 256, 384 or 512-bit key, "
            f"but this key has {bits} bits!"
        )


# --- JWKs from keys and keystore entries ---------------------------------------------------

_MATERIAL_KTY = {
    "RSA": "RSA",
    "EC": "EC",
    "ED25519": "OKP",
    "X25519": "OKP",
    "ED448": "OKP",
    "X448": "OKP",
    "SYMMETRIC": "oct",
}


def _check_ec_curve(curve: str | None) -> None:
    if curve not in _JWK_EC_CURVES:
        raise JwkError(
            f"Curve ({curve}) is not supported for JWKs! Valid curves: {', '.join(_JWK_EC_CURVES)}"
        )


def _kid_or(kid: str | None, default: str) -> str:
    return kid if kid is not None and kid.strip() else default


def jwk_from_key(
    material: KeyMaterial,
    *,
    include_private: bool,
    use_type: str | None,
    algorithm: str | None,
    kid: str | None = None,
) -> dict[str, Any]:
    """Public or private JWK (kty, kid, use, alg, key members) of stored key material.

    ``kid`` defaults to the RFC 7638 SHA-256 thumbprint (also when empty). SYMMETRIC
    keys become ``oct`` JWKs and only exist as private JWKs.
    """
    kty = _MATERIAL_KTY.get(material.key_type, material.key_type)
    curve = material.curve if kty in ("EC", "OKP") else None
    use, alg = validate_use_and_algorithm(kty, use_type, algorithm, curve=curve)
    if kty == "EC":
        _check_ec_curve(material.curve)

    if kty == "oct":
        if not include_private or material.secret is None:
            raise JwkError("OCT keys are secret and have no public part!")
        _check_oct_size(alg, len(material.secret) * 8)
        members: dict[str, Any] = {"k": _b64url(material.secret)}
        thumbprint = jwk_thumbprint({"kty": "oct", **members})
    else:
        if include_private and material.private_der is None:
            raise JwkError("The key has no privateKey, so it can not give a private JWK!")
        try:
            if include_private:
                assert material.private_der is not None
                pem = serialization.load_der_private_key(
                    material.private_der, password=None
                ).private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            else:
                assert material.public_der is not None
                pem = serialization.load_der_public_key(material.public_der).public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            key = JWKRegistry.import_key(pem, kty)
            members = {
                name: value
                for name, value in key.as_dict(private=include_private).items()
                if name != "kty"
            }
            thumbprint = key.thumbprint()
        except (JoseError, ValueError, TypeError, KeyError, UnsupportedAlgorithm) as exc:
            raise JwkError("The key can not be converted to a JWK!") from exc

    return {"kty": kty, "kid": _kid_or(kid, thumbprint), "use": use, "alg": alg, **members}


def jwk_from_keystore_entry(
    entry: KeystoreEntry,
    *,
    use_type: str | None,
    algorithm: str | None,
    kid: str | None = None,
) -> dict[str, Any]:
    """JWK of a keystore alias: private for key entries, public for trusted certificates.

    A PRIVATE_KEY entry with a certificate also gets ``x5c`` (its chain), ``x5t`` and
    ``x5t#S256``; a SECRET_KEY entry becomes an ``oct`` JWK.
    """
    if entry.kind == "TRUSTED_CERTIFICATE":
        if entry.certificate is None:  # defensive: keystores always parse the certificate
            raise JwkError(f"Alias ({entry.alias}) holds no certificate!")
        return jwk_from_certificate(
            entry.certificate,
            use_type=use_type,
            algorithm=algorithm,
            kid=kid,
            chain_der=entry.chain_der,
        )
    if entry.kind == "SECRET_KEY":
        if entry.secret is None:
            raise JwkError(f"Alias ({entry.alias}) holds no secret key!")
        material = KeyMaterial(
            key_type="SYMMETRIC",
            public_der=None,
            private_der=None,
            secret=entry.secret,
            curve=None,
            size_bits=len(entry.secret) * 8,
        )
        return jwk_from_key(
            material, include_private=True, use_type=use_type, algorithm=algorithm, kid=kid
        )
    if entry.kind != "PRIVATE_KEY" or entry.private_der is None:
        raise JwkError(f"Alias ({entry.alias}) holds no key!")

    cert = entry.certificate
    if cert is not None:
        # The certificate names the key type the way the other JWK messages do (DSA...).
        validate_use_and_algorithm(cert.key_type, use_type, algorithm, curve=cert.curve)
    try:
        material = key_material_from_pkcs8(entry.private_der)
    except KeyMaterialError:
        raise JwkError(
            f"The private key of alias ({entry.alias}) can not be used for a JWK!"
        ) from None
    jwk = jwk_from_key(
        material, include_private=True, use_type=use_type, algorithm=algorithm, kid=kid
    )
    if cert is not None:
        jwk["x5c"] = _x5c(cert, entry.chain_der)
        jwk["x5t"] = _b64url(hashlib.sha1(cert.der, usedforsecurity=False).digest())
        jwk["x5t#S256"] = _b64url(hashlib.sha256(cert.der).digest())
    return jwk


# --- pasted JWK / JWK Set ------------------------------------------------------------------


def parse_jwk_text(text: str, kid: str | None) -> dict[str, Any]:
    """The JWK in ``jwkStr`` (a JWK, or the key with ``kid`` in a JWK Set), validated."""
    if text is None or not text.strip():
        raise JwkError("jwkStr value can not be empty!")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise JwkError("jwkStr is not valid JSON!") from None
    if not isinstance(document, dict):
        raise JwkError("jwkStr must be a JWK or a JWK Set JSON object!")
    wanted = kid if kid is not None and kid.strip() else None

    if "keys" in document:
        keys = document["keys"]
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise JwkError("The keys member of the JWK Set must be a list of JWK objects!")
        if not keys:
            raise JwkError("The JWK Set holds no keys!")
        if wanted is None:
            if len(keys) > 1:
                raise JwkError("kid value can not be empty when the JWK Set holds several keys!")
            chosen = keys[0]
        else:
            matching = [k for k in keys if k.get("kid") == wanted]
            if not matching:
                raise JwkError(f"No key with kid ({wanted}) in the JWK Set!")
            if len(matching) > 1:
                raise JwkError(f"The JWK Set holds several keys with kid ({wanted})!")
            chosen = matching[0]
    else:
        chosen = document
        if wanted is not None and "kid" in chosen and chosen["kid"] != wanted:
            raise JwkError(f"The JWK's kid ({chosen['kid']}) does not match kid ({wanted})!")

    _validate_jwk(chosen)
    return cast(dict[str, Any], chosen)


_KTY_LIST = "RSA, EC, oct, OKP"


def _validate_jwk(jwk: dict[str, Any]) -> None:
    kty = jwk.get("kty")
    if not isinstance(kty, str) or not kty:
        raise JwkError("The JWK has no kty member!")
    if kty not in ("RSA", "EC", "oct", "OKP"):
        raise JwkError(f"Key type ({kty}) can not be used for a JWK! Valid key types: {_KTY_LIST}")
    key = _import(jwk)
    try:
        # joserfc decodes members lazily; loading the key checks the numbers (points on
        # the curve, RSA private values consistent with the modulus).
        if kty != "oct":
            _ = key.private_key if key.is_private else key.public_key
    except (JoseError, ValueError, TypeError, KeyError, UnsupportedAlgorithm) as exc:
        raise JwkError("The JWK is not a valid JSON Web Key!") from exc


# --- generation ----------------------------------------------------------------------------

GENERATE_KEY_SIZES: dict[str, tuple[int, ...]] = {"RSA": (2048, 3072, 4096), "OCT": (128, 192, 256)}
# Apinizer curveType -> JOSE crv; the JOSE spelling is accepted as well.
GENERATE_CURVES: dict[str, dict[str, str]] = {
    "EC": {"P256": "P-256", "P384": "P-384", "P521": "P-521", "SECP256K1": "secp256k1"},
    "OKP": {"ED25519": "Ed25519", "X25519": "X25519"},
}
_UNSUPPORTED_OKP = {"ED448": "Ed448", "X448": "X448"}
KEY_ID_TYPES: tuple[str, ...] = ("TIMESTAMP", "SHA256", "SHA1", "ISO_DATE", "NONE")

_EC_GENERATORS: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
    "secp256k1": ec.SECP256K1(),
}
_EC_DEFAULT_SIGNATURE = {jose: alg for alg, jose in _EC_SIGNATURE_CURVES.items()}
_OCT_DEFAULT_ENCRYPTION = {128: "A128KW", 192: "A192KW", 256: "A256KW"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(dt: datetime) -> datetime:
    # Naive values are UTC, as in format_instant.
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _numeric_date(dt: datetime) -> int:
    return (_utc(dt) - _EPOCH) // timedelta(seconds=1)


def _one_year_later(dt: datetime) -> datetime:
    try:
        return dt.replace(year=dt.year + 1)
    except ValueError:  # 29 February
        return dt.replace(year=dt.year + 1, day=28)


def _curve_for(kty: str, curve: str | None) -> str:
    if curve is None or not curve.strip():
        raise JwkError("curveType value can not be empty!")
    table = GENERATE_CURVES[kty]
    by_input = {**table, **{jose: jose for jose in table.values()}}
    if curve in by_input:
        return by_input[curve]
    if kty == "OKP" and (curve in _UNSUPPORTED_OKP or curve in _UNSUPPORTED_OKP.values()):
        raise JwkError(
            f"curveType ({curve}) is not supported for OKP keys! Valid values: {', '.join(table)}"
        )
    raise JwkError(
        f"curveType ({curve}) is not valid for {kty} keys! Valid values: {', '.join(table)}"
    )


def _size_for(kty: str, key_size: int | None) -> int:
    sizes = GENERATE_KEY_SIZES[kty]
    if key_size is None:
        raise JwkError("keySize value can not be empty!")
    if key_size not in sizes:
        raise JwkError(
            f"keySize ({key_size}) is not valid for {kty} keys! "
            f"Valid values: {', '.join(str(s) for s in sizes)}"
        )
    return key_size


def _default_algorithm(kty: str, use_type: str, crv: str | None, size: int | None) -> str:
    if kty == "RSA":
        return "RS256" if use_type == "SIGNATURE" else "RSA-OAEP-256"
    if kty == "EC":
        assert crv is not None
        return _EC_DEFAULT_SIGNATURE[crv] if use_type == "SIGNATURE" else "ECDH-ES"
    if kty == "OKP":
        return "EdDSA" if use_type == "SIGNATURE" else "ECDH-ES"
    assert size is not None
    return "HS256" if use_type == "SIGNATURE" else _OCT_DEFAULT_ENCRYPTION[size]


def _private_members(private_key: PrivateKeyTypes, kty: str) -> dict[str, Any]:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    members = JWKRegistry.import_key(pem, kty).as_dict(private=True)
    return {name: value for name, value in members.items() if name != "kty"}


def generate_jwk(
    kty: str,
    *,
    key_size: int | None,
    curve: str | None,
    use_type: str | None,
    algorithm: str | None,
    kid: str | None,
    key_id_type: str | None,
    not_before: datetime | None,
    expiration: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """A new private JWK (RSA, EC, OCT or OKP) with kid, use, alg, iat, nbf and exp."""
    if kty is None or not kty.strip():
        raise JwkError("JWK type can not be empty!")
    kind = "OCT" if kty == "oct" else kty
    if kind not in ("RSA", "EC", "OCT", "OKP"):
        raise JwkError(f"JWK type ({kty}) is not valid! Valid values: RSA, EC, OCT, OKP")

    crv = _curve_for(kind, curve) if kind in ("EC", "OKP") else None
    size = _size_for(kind, key_size) if kind in ("RSA", "OCT") else None
    if use_type is None or not use_type.strip():
        # X25519 can only agree keys, so an unspecified use means encryption there.
        use_type = "ENCRYPTION" if crv == "X25519" else "SIGNATURE"
    if use_type not in USE_TYPES:
        raise JwkError("useType must be SIGNATURE or ENCRYPTION!")
    if algorithm is None or not algorithm.strip():
        algorithm = _default_algorithm(kind, use_type, crv, size)
    jose_kty = "oct" if kind == "OCT" else kind
    use, alg = validate_use_and_algorithm(jose_kty, use_type, algorithm, curve=crv)
    if kind == "OCT":
        assert size is not None
        _check_oct_size(alg, size)

    id_type = key_id_type if key_id_type is not None and key_id_type.strip() else "TIMESTAMP"
    if id_type not in KEY_ID_TYPES:
        raise JwkError(
            f"keyIdType ({key_id_type}) is not valid! Valid values: {', '.join(KEY_ID_TYPES)}"
        )

    now = _utc(now)
    nbf = _utc(not_before) if not_before is not None else now
    exp = _utc(expiration) if expiration is not None else _one_year_later(nbf)
    if _numeric_date(exp) <= _numeric_date(nbf):
        raise JwkError("expirationTime must be after notBeforeTime!")

    members: dict[str, Any]
    if kind == "RSA":
        assert size is not None
        members = _private_members(rsa.generate_private_key(65537, size), "RSA")
    elif kind == "EC":
        assert crv is not None
        members = _private_members(ec.generate_private_key(_EC_GENERATORS[crv]), "EC")
    elif kind == "OKP":
        okp_key: PrivateKeyTypes = (
            ed25519.Ed25519PrivateKey.generate()
            if crv == "Ed25519"
            else x25519.X25519PrivateKey.generate()
        )
        members = _private_members(okp_key, "OKP")
    else:
        assert size is not None
        members = {"k": _b64url(secrets.token_bytes(size // 8))}

    key_dict = {"kty": jose_kty, **members}
    jwk: dict[str, Any] = {"kty": jose_kty}
    explicit_kid = kid if kid is not None and kid.strip() else None
    if explicit_kid is not None:
        jwk["kid"] = explicit_kid
    elif id_type == "TIMESTAMP":
        jwk["kid"] = str((now - _EPOCH) // timedelta(milliseconds=1))
    elif id_type == "SHA256":
        jwk["kid"] = _thumbprint(key_dict, "sha256")
    elif id_type == "SHA1":
        jwk["kid"] = _thumbprint(key_dict, "sha1")
    elif id_type == "ISO_DATE":
        jwk["kid"] = format_instant(now)
    jwk.update(use=use, alg=alg, **members)
    jwk.update(iat=_numeric_date(now), nbf=_numeric_date(nbf), exp=_numeric_date(exp))
    return jwk


# RFC 7638 section 3.2 (and RFC 8037 section 2 for OKP): the members a thumbprint covers.
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}


def _thumbprint(jwk: dict[str, Any], hash_name: str) -> str:
    """RFC 7638 thumbprint with any hash (joserfc only offers SHA-256)."""
    names = _THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = json.dumps({n: jwk[n] for n in names}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.new(hash_name, canonical.encode("utf-8"), usedforsecurity=False).digest()
    return _b64url(digest)


def key_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint from the required members alone, without importing the
    key (which validates it; tens of milliseconds for an RSA private key): for comparing
    stored JWKs. Raises JwkError if a member is missing."""
    try:
        return _thumbprint(jwk, "sha256")
    except (KeyError, TypeError) as exc:
        raise JwkError(f"The JWK lacks a member its thumbprint needs ({exc})!") from None


# --- private members -----------------------------------------------------------------------

PRIVATE_MEMBERS: frozenset[str] = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})


def _is_private_member(kty: object, name: str) -> bool:
    return name in PRIVATE_MEMBERS or (kty == "oct" and name == "k")


def split_private(jwk: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public part incl. kty/kid/use/alg/x5c/nbf/exp..., private members only)."""
    kty = jwk.get("kty")
    public = {n: v for n, v in jwk.items() if not _is_private_member(kty, n)}
    private = {n: v for n, v in jwk.items() if _is_private_member(kty, n)}
    return public, private


def join_private(public: dict[str, Any], private: dict[str, Any]) -> dict[str, Any]:
    """The JWK put back together from ``split_private``'s two parts."""
    kty = public.get("kty")
    stray = sorted(n for n in private if not _is_private_member(kty, n))
    if stray:
        raise JwkError(f"Not a private JWK member: {', '.join(stray)}!")
    overlap = sorted(set(public) & set(private))
    if overlap:
        raise JwkError(f"JWK member given twice: {', '.join(overlap)}!")
    return {**public, **private}
