"""Key material for the key endpoints (pure functions, no I/O).

``parse_key_material`` turns a key's ``keyType``, ``publicKey`` and ``privateKey``
(create-key.md) into a ``KeyMaterial`` in canonical form (SubjectPublicKeyInfo DER,
unencrypted PKCS#8 DER, or the raw secret) or raises ``KeyMaterialError`` whose
``reason`` is the user-facing ``error_description``.

Decisions:

* ``publicKey`` / ``privateKey`` are standard base64 of DER (whitespace and missing
  padding tolerated, as Java's basic decoder does) or PEM text. Public keys may be
  SubjectPublicKeyInfo or PKCS#1 ``RSA PUBLIC KEY``; private keys PKCS#8 or the
  traditional ``RSA PRIVATE KEY`` / ``EC PRIVATE KEY`` forms. Whatever came in, the
  stored form is SPKI / PKCS#8 DER, so every consumer reads one format.
* Encrypted private keys are refused: there is no field for their password, and
  storing a key nobody can open helps no one.
* ``keyType`` is case-insensitive; ``OKP`` lets the material pick ED25519, X25519,
  ED448 or X448, and ``OCT``, ``AES``, ``HMAC``, ``SECRET`` mean SYMMETRIC.
* A SYMMETRIC key is the base64 of the raw secret in ``privateKey`` (16 to 512 bytes);
  ``publicKey`` must be empty because a secret has no public half.
* Any named EC curve pyca/cryptography knows is accepted; whether a curve can become
  a JWK is decided when a JWK is made (``keyops.crypto.jwk``).
* ``size_bits`` is the RSA modulus size, the EC field size, the secret's size in bits,
  and None for the OKP types (their size is fixed by the curve).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

__all__ = [
    "KEY_TYPES",
    "SYMMETRIC_MAX_BYTES",
    "SYMMETRIC_MIN_BYTES",
    "KeyMaterial",
    "KeyMaterialError",
    "canonical_key_type",
    "key_material_from_pkcs8",
    "parse_key_material",
    "private_key_object",
    "public_key_object",
]

KEY_TYPES: tuple[str, ...] = ("RSA", "EC", "ED25519", "X25519", "ED448", "X448", "SYMMETRIC")

# Accepted spellings on input; None means "an OKP type, the material decides which".
_KEY_TYPE_ALIASES: dict[str, str | None] = {
    **{name: name for name in KEY_TYPES},
    "OKP": None,
    "OCT": "SYMMETRIC",
    "AES": "SYMMETRIC",
    "HMAC": "SYMMETRIC",
    "SECRET": "SYMMETRIC",
}
_OKP_TYPES = frozenset({"ED25519", "X25519", "ED448", "X448"})

SYMMETRIC_MIN_BYTES = 16
SYMMETRIC_MAX_BYTES = 512

# JOSE names for the curves a JWK can carry; other curves keep pyca's name.
_EC_CURVE_NAMES = {
    "secp256r1": "P-256",
    "secp384r1": "P-384",
    "secp521r1": "P-521",
    "secp256k1": "secp256k1",
    "secp224r1": "P-224",
    "secp192r1": "P-192",
}

_PUBLIC = "publicKey"
_PRIVATE = "privateKey"

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PUBLIC_LABELS = frozenset({"PUBLIC KEY", "RSA PUBLIC KEY"})
_PRIVATE_LABELS = frozenset({"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"})
# `openssl ecparam -genkey` writes the curve parameters before the key; they add nothing.
_IGNORED_LABELS = frozenset({"EC PARAMETERS"})


class KeyMaterialError(ValueError):
    """The key fields do not hold usable key material; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """Validated key material in canonical encodings (SPKI / PKCS#8 DER, raw secret)."""

    key_type: str
    public_der: bytes | None
    private_der: bytes | None
    secret: bytes | None
    curve: str | None
    size_bits: int | None

    @property
    def public_b64(self) -> str | None:
        """Standard base64 of the SubjectPublicKeyInfo DER, None for SYMMETRIC keys."""
        return _b64(self.public_der)

    @property
    def private_b64(self) -> str | None:
        """Standard base64 of the PKCS#8 DER, or of the secret for SYMMETRIC keys."""
        return _b64(self.secret if self.key_type == "SYMMETRIC" else self.private_der)

    def __repr__(self) -> str:
        # The default repr would print the private key and secret into logs and tracebacks.
        return (
            f"KeyMaterial(key_type={self.key_type!r}, curve={self.curve!r}, "
            f"size_bits={self.size_bits!r}, has_public={self.public_der is not None}, "
            f"has_private={self.private_der is not None or self.secret is not None})"
        )


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def canonical_key_type(key_type: str | None) -> str | None:
    """Canonical keyType for an accepted spelling (None for OKP); raises KeyMaterialError."""
    if key_type is None or not key_type.strip():
        raise KeyMaterialError("keyType value can not be empty!")
    upper = key_type.strip().upper()
    if upper not in _KEY_TYPE_ALIASES:
        raise KeyMaterialError(
            f"keyType ({key_type}) is not valid! Valid values: {', '.join(KEY_TYPES)}"
        )
    return _KEY_TYPE_ALIASES[upper]


def parse_key_material(
    key_type: str | None, public_key: str | None, private_key: str | None
) -> KeyMaterial:
    """Validate keyType/publicKey/privateKey and return canonical KeyMaterial."""
    canonical = canonical_key_type(key_type)
    assert key_type is not None  # canonical_key_type refused None
    public_text = public_key.strip() if public_key else ""
    private_text = private_key.strip() if private_key else ""

    if canonical == "SYMMETRIC":
        return _symmetric(public_text, private_text)
    if not public_text and not private_text:
        raise KeyMaterialError("publicKey and privateKey can not both be empty!")

    given_public = _load_public(public_text) if public_text else None
    given_private = _load_private(private_text) if private_text else None
    if given_private is not None:
        material = _from_private(given_private, _PRIVATE)
        if given_public is not None and _spki(given_public) != material.public_der:
            raise KeyMaterialError("privateKey does not match publicKey!")
    else:
        assert given_public is not None
        material = _from_public(given_public)

    matches = (
        material.key_type in _OKP_TYPES if canonical is None else material.key_type == canonical
    )
    if not matches:
        raise KeyMaterialError(
            f"keyType ({key_type.strip()}) does not match the key material ({material.key_type})!"
        )
    return material


def key_material_from_pkcs8(der: bytes) -> KeyMaterial:
    """KeyMaterial for an unencrypted PKCS#8 (or traditional) DER private key."""
    try:
        key = serialization.load_der_private_key(der, password=None)
    except TypeError:
        raise KeyMaterialError(_encrypted_reason(_PRIVATE)) from None
    except UnsupportedAlgorithm:
        raise KeyMaterialError(_unsupported_algorithm_reason(_PRIVATE)) from None
    except ValueError:
        raise KeyMaterialError(_invalid_reason(_PRIVATE)) from None
    return _from_private(key, _PRIVATE)


def public_key_object(m: KeyMaterial) -> PublicKeyTypes:
    """The public key as a pyca/cryptography object; SYMMETRIC keys have none."""
    if m.public_der is None:
        raise KeyMaterialError(f"{m.key_type} keys have no public key!")
    return serialization.load_der_public_key(m.public_der)


def private_key_object(m: KeyMaterial) -> PrivateKeyTypes:
    """The private key as a pyca/cryptography object; raises if there is none."""
    if m.private_der is None:
        raise KeyMaterialError("The key has no private key!")
    return serialization.load_der_private_key(m.private_der, password=None)


# --- SYMMETRIC -------------------------------------------------------------------------


def _symmetric(public_text: str, private_text: str) -> KeyMaterial:
    if public_text:
        raise KeyMaterialError("publicKey must be empty for SYMMETRIC keys!")
    if not private_text:
        raise KeyMaterialError("privateKey value can not be empty for SYMMETRIC keys!")
    if "-----BEGIN" in private_text:
        raise KeyMaterialError(
            "privateKey holds PEM text; a SYMMETRIC key is the base64 of the raw secret!"
        )
    secret = _b64decode(private_text)
    if secret is None:
        raise KeyMaterialError("privateKey is not valid base64!")
    if not SYMMETRIC_MIN_BYTES <= len(secret) <= SYMMETRIC_MAX_BYTES:
        raise KeyMaterialError(
            f"privateKey must hold {SYMMETRIC_MIN_BYTES} to {SYMMETRIC_MAX_BYTES} bytes "
            f"for SYMMETRIC keys, found {len(secret)}!"
        )
    return KeyMaterial(
        key_type="SYMMETRIC",
        public_der=None,
        private_der=None,
        secret=secret,
        curve=None,
        size_bits=len(secret) * 8,
    )


# --- decoding --------------------------------------------------------------------------


def _b64decode(text: str) -> bytes | None:
    compact = "".join(text.split())
    # Java's basic decoder, which Apinizer clients are written against, makes padding optional.
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _invalid_reason(field: str) -> str:
    kind = "public" if field == _PUBLIC else "private"
    return f"{field} is not a valid base64 DER or PEM encoded {kind} key!"


def _encrypted_reason(field: str) -> str:
    return (
        f"{field} is an encrypted private key! Encrypted keys are not supported, "
        "give the key unencrypted."
    )


def _unsupported_algorithm_reason(field: str) -> str:
    return f"{field} uses a key algorithm or curve that is not supported!"


def _pem_blocks(text: str, field: str) -> list[tuple[str, str]]:
    blocks = [(m.group(1).strip(), m.group(0)) for m in _PEM_BLOCK.finditer(text)]
    if not blocks:
        raise KeyMaterialError(_invalid_reason(field))
    for label, block in blocks:
        # Traditional OpenSSL encryption marks the block with a Proc-Type header.
        if label == "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED" in block:
            raise KeyMaterialError(_encrypted_reason(field))
    return [(label, block) for label, block in blocks if label not in _IGNORED_LABELS]


def _load_public(text: str) -> PublicKeyTypes:
    try:
        if "-----BEGIN" in text:
            blocks = _pem_blocks(text, _PUBLIC)
            labels = {label for label, _ in blocks}
            if labels & {"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"}:
                raise KeyMaterialError("publicKey holds a certificate, not a public key!")
            if labels & (_PRIVATE_LABELS | {"ENCRYPTED PRIVATE KEY"}):
                raise KeyMaterialError("publicKey holds a private key, not a public key!")
            if len(blocks) != 1 or blocks[0][0] not in _PUBLIC_LABELS:
                raise KeyMaterialError(_invalid_reason(_PUBLIC))
            return serialization.load_pem_public_key(blocks[0][1].encode("ascii"))
        der = _b64decode(text)
        if der is None:
            raise KeyMaterialError(_invalid_reason(_PUBLIC))
        try:
            return serialization.load_der_public_key(der)
        except ValueError:
            _explain_wrong_public_der(der)
            raise
    except KeyMaterialError:
        raise
    except UnsupportedAlgorithm:
        raise KeyMaterialError(_unsupported_algorithm_reason(_PUBLIC)) from None
    except (ValueError, UnicodeEncodeError):
        raise KeyMaterialError(_invalid_reason(_PUBLIC)) from None


def _explain_wrong_public_der(der: bytes) -> None:
    """Raise a precise reason when publicKey's DER is a certificate or a private key."""
    try:
        x509.load_der_x509_certificate(der).subject  # noqa: B018 - pyca parses lazily
    except ValueError:
        pass
    else:
        raise KeyMaterialError("publicKey holds a certificate, not a public key!")
    try:
        serialization.load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        raise KeyMaterialError("publicKey holds a private key, not a public key!") from None
    except (ValueError, UnsupportedAlgorithm):
        return
    raise KeyMaterialError("publicKey holds a private key, not a public key!")


def _load_private(text: str) -> PrivateKeyTypes:
    try:
        if "-----BEGIN" in text:
            blocks = _pem_blocks(text, _PRIVATE)
            labels = {label for label, _ in blocks}
            if labels & _PUBLIC_LABELS and not labels & _PRIVATE_LABELS:
                raise KeyMaterialError("privateKey holds a public key, not a private key!")
            if len(blocks) != 1 or blocks[0][0] not in _PRIVATE_LABELS:
                raise KeyMaterialError(_invalid_reason(_PRIVATE))
            return serialization.load_pem_private_key(blocks[0][1].encode("ascii"), password=None)
        der = _b64decode(text)
        if der is None:
            raise KeyMaterialError(_invalid_reason(_PRIVATE))
        try:
            return serialization.load_der_private_key(der, password=None)
        except ValueError:
            if _is_public_der(der):
                raise KeyMaterialError(
                    "privateKey holds a public key, not a private key!"
                ) from None
            raise
    except KeyMaterialError:
        raise
    except TypeError:
        # pyca's signal for "encrypted, and no password was given".
        raise KeyMaterialError(_encrypted_reason(_PRIVATE)) from None
    except UnsupportedAlgorithm:
        raise KeyMaterialError(_unsupported_algorithm_reason(_PRIVATE)) from None
    except (ValueError, UnicodeEncodeError):
        raise KeyMaterialError(_invalid_reason(_PRIVATE)) from None


def _is_public_der(der: bytes) -> bool:
    try:
        serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        return False
    return True


# --- describing keys -------------------------------------------------------------------


def _spki(key: PublicKeyTypes) -> bytes:
    # Re-encoding normalises PKCS#1 input and compressed EC points, so equal keys give
    # equal bytes: comparing these compares the public numbers / raw public bytes.
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _describe(key: PublicKeyTypes, field: str) -> tuple[str, str | None, int | None]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", None, key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", _EC_CURVE_NAMES.get(key.curve.name, key.curve.name), key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ED25519", "Ed25519", None
    if isinstance(key, x25519.X25519PublicKey):
        return "X25519", "X25519", None
    if isinstance(key, ed448.Ed448PublicKey):
        return "ED448", "Ed448", None
    if isinstance(key, x448.X448PublicKey):
        return "X448", "X448", None
    algorithm = "DSA" if isinstance(key, dsa.DSAPublicKey) else type(key).__name__
    raise KeyMaterialError(
        f"{field} holds a {algorithm} key, which is not supported! "
        f"Valid key types: {', '.join(KEY_TYPES[:-1])}"
    )


def _from_public(key: PublicKeyTypes) -> KeyMaterial:
    key_type, curve, size = _describe(key, _PUBLIC)
    return KeyMaterial(
        key_type=key_type,
        public_der=_spki(key),
        private_der=None,
        secret=None,
        curve=curve,
        size_bits=size,
    )


def _from_private(key: PrivateKeyTypes, field: str) -> KeyMaterial:
    public = key.public_key()
    key_type, curve, size = _describe(public, field)
    private_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyMaterial(
        key_type=key_type,
        public_der=_spki(public),
        private_der=private_der,
        secret=None,
        curve=curve,
        size_bits=size,
    )
