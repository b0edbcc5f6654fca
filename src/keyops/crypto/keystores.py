"""JKS and PKCS#12 keystore reading for the keystore endpoints (pure functions, no I/O).

``parse_keystore`` opens a keystore file with its password and returns every entry
(alias, kind, leaf certificate, chain, private key as PKCS#8 DER, secret) or raises
``KeystoreError`` whose ``reason`` is the user-facing ``error_description``.

Decisions:

* ``type`` is ``JKS``, ``JCEKS`` or ``PKCS12`` (case-insensitive). The file must be of
  that type: Java's "dual format" keystores would open either, but the stored type is
  what the gateway is configured with, so a mismatch is refused with a reason naming
  both. JCEKS (keytool ``-storetype JCEKS``, the only Java format before PKCS12 that
  holds secret keys) is read by pyjks like JKS.
* ``PEM`` (``UPLOAD_TYPES``) is a form of upload, not a stored type: a private key and
  its certificate chain as PEM text, converted on the way in into a PKCS12 file of one
  key entry under the store password (rules: ``pem_bundle``). The result is that
  file's ``ParsedKeystore`` with ``store_type`` ``PKCS12`` and the new file in
  ``file``, which is what gets stored, so everything downstream reads a PKCS12 keystore.
  A PEM key that is encrypted opens with the key password (which defaults to the store
  password); the PKCS12 file has no separate key password.
* A store holding only trusted certificates may come without a password, as Java loads
  one (the integrity check is skipped; PKCS#12 content encrypted under the password can
  not be read then, so such a file still needs it). A store with a private or secret key
  always needs one.
* The integrity check runs before anything is decrypted. A file whose structure is
  broken is "not a valid JKS/PKCS12 keystore"; a file that parses but fails its keyed
  digest (JKS) or MAC (PKCS#12) gets the password reason, which also says "or the file
  is corrupt" because a changed byte inside the protected content fails the same way.
  A PKCS#12 file without a MAC (``openssl -nomac``) gets it when its content does not
  decrypt with the password.
* The key password defaults to the store password, as keytool does; keytool's
  ``-keypass`` may differ from ``-storepass`` and is then given separately. Every
  private or secret key must open with the key password: an entry that can not be
  opened with it could never be used.
* JKS is read with pyjks. PKCS#12 is read here rather than with pyca's ``load_pkcs12``,
  which returns a single private key and drops secret keys, while Java keystores hold
  any number of aliases. Supported protection: MAC with SHA-1/SHA-2 (RFC 7292 key
  derivation); PBES2 (PBKDF2, AES-CBC or 3DES) and the PKCS#12 PBE schemes (3DES,
  RC2, RC4) for encrypted content and shrouded keys. PBMAC1 and public-key integrity
  are refused as unsupported. Iteration counts above Java's limit (5,000,000) are
  refused so a crafted file can not pin a worker.
* PKCS#12 entries follow Java's ``PKCS12KeyStore``: key bags become PRIVATE_KEY entries
  (certificate matched by localKeyId, then friendlyName, then public key; chain built
  by issuer), secret bags become SECRET_KEY entries, and certificates become
  TRUSTED_CERTIFICATE entries when they carry Java's trusted-usage attribute or are not
  part of any key's chain. Java lists only the former; but OpenSSL before 3.2 can not
  write that attribute, and a trust bundle made with ``openssl pkcs12 -export -nokeys``
  listing no entries at all would surprise its owner. Entries without a friendlyName
  are named "1", "2", ... as Java does.
* Aliases are lower-cased, as Java's keystores do on load (``keytool -list`` shows them
  so, and the gateway looks them up case-insensitively); ``ParsedKeystore.entry``
  matches case-insensitively. Two entries with one alias are refused.
* Besides the per-derivation limit, the keystores of one request may cost at most
  ``MAX_TOTAL_ITERATIONS`` key-derivation iterations together (pass one
  ``KeystoreBudget`` to every ``parse_keystore`` of the request), so many protected parts
  or many environments can not add up to minutes of CPU. A PKCS#12 file's visible cost
  (its MAC and the protection of its top-level parts) is checked against what is left
  before anything is derived; parts nested inside encrypted content are checked before
  each derivation. JCEKS's PBEWithMD5AndTripleDES runs in pure Python (pyjks) and holds
  the GIL, so its iterations count ``PURE_PYTHON_WEIGHT`` times.
* The RFC 7292 appendix B key derivation runs in OpenSSL's ``PKCS12_key_gen_uni`` (through
  ctypes, which releases the GIL; pyca/cryptography offers no PKCS#12 KDF), checked once
  against the pure-Python version, which remains the fallback when libcrypto can not be
  loaded. PBKDF2 is hashlib's, which releases the GIL too. Parsing is still CPU work:
  callers run it off the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4, TripleDES
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes

from keyops.crypto import pem_bundle
from keyops.crypto.x509 import (
    CertificateParseError,
    ParsedCertificate,
    oid_text,
    parse_certificate,
)

__all__ = [
    "ENTRY_KINDS",
    "MAX_ITERATIONS",
    "MAX_TOTAL_ITERATIONS",
    "PASSWORD_REASON",
    "PEM_TYPE",
    "STORE_TYPES",
    "UPLOAD_TYPES",
    "KeystoreBudget",
    "KeystoreEntry",
    "KeystoreError",
    "ParsedKeystore",
    "parse_keystore",
]

STORE_TYPES: tuple[str, ...] = ("JKS", "JCEKS", "PKCS12")
# What a request's ``type`` may say: the stored types, and PEM, converted to PKCS12.
PEM_TYPE = "PEM"
UPLOAD_TYPES: tuple[str, ...] = (*STORE_TYPES, PEM_TYPE)
ENTRY_KINDS: tuple[str, ...] = ("PRIVATE_KEY", "TRUSTED_CERTIFICATE", "SECRET_KEY")

# These are messages, not passwords (ruff's S105 goes by the names).
PASSWORD_REASON = "Keystore password is incorrect or the file is corrupt!"  # noqa: S105
EMPTY_FILE_REASON = "file value can not be empty!"
EMPTY_PASSWORD_REASON = "password value can not be empty!"  # noqa: S105
KEYS_NEED_PASSWORD_REASON = (
    "password value can not be empty: the keystore holds private or secret keys!"  # noqa: S105
)
ENCRYPTED_NEEDS_PASSWORD_REASON = (
    "password value can not be empty: the keystore file has encrypted content!"  # noqa: S105
)
EMPTY_TYPE_REASON = "type value can not be empty!"

# Java's PKCS12KeyStore.MAX_ITERATION_COUNT: refuse work factors no real keystore uses.
MAX_ITERATIONS = 5_000_000
# Key-derivation iterations one PKCS#12 file may cost in total (a few seconds of CPU), so
# a crafted file with many protected parts can not pin a worker either. Real keystores
# need about 10,000 per key plus two.
MAX_TOTAL_ITERATIONS = 20_000_000
# What one pure-Python derivation iteration counts against that budget (measured: about
# ten times the cost of one in OpenSSL, and it holds the GIL).
PURE_PYTHON_WEIGHT = 10
# Deepest issuer chain followed when ordering a PKCS#12 key's certificates.
_MAX_CHAIN = 16

_JKS_MAGIC = b"\xfe\xed\xfe\xed"
_JCE_PBE = "1.3.6.1.4.1.42.2.19.1"  # Sun's PBEWithMD5AndTripleDES (JCEKS key protection)
_JCEKS_MAGIC = b"\xce\xce\xce\xce"


class KeystoreError(ValueError):
    """The keystore can not be read as asked; ``reason`` is the user-facing sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _not_valid(store_type: str) -> KeystoreError:
    return KeystoreError(f"Keystore file is not a valid {store_type} keystore!")


@dataclass(frozen=True, slots=True)
class KeystoreEntry:
    """One alias of a keystore; key material only for PRIVATE_KEY / SECRET_KEY entries."""

    alias: str
    kind: str
    certificate: ParsedCertificate | None
    chain_der: list[bytes] = field(default_factory=list)
    private_der: bytes | None = None
    secret: bytes | None = None
    # The JCA algorithm of a secret key ("AES", "HmacSHA256", or a dotted OID).
    secret_algorithm: str | None = None

    def __repr__(self) -> str:
        # The default repr would print the private key and secret into logs and tracebacks.
        subject = self.certificate.subject_dn if self.certificate else None
        return (
            f"KeystoreEntry(alias={self.alias!r}, kind={self.kind!r}, subject={subject!r}, "
            f"chain_length={len(self.chain_der)}, secret_algorithm={self.secret_algorithm!r})"
        )


@dataclass(frozen=True, slots=True)
class ParsedKeystore:
    """A keystore's type and its entries, sorted by alias.

    ``file`` is set when the keystore to store is not the file given: the PKCS12 file a
    PEM upload was converted into.
    """

    store_type: str
    entries: list[KeystoreEntry]
    file: bytes | None = field(default=None, repr=False)

    def entry(self, alias: str) -> KeystoreEntry | None:
        """The entry with this alias, matched case-insensitively as Java does, or None."""
        wanted = _java_alias(alias)
        return next((e for e in self.entries if e.alias == wanted), None)


class KeystoreBudget:
    """The key-derivation iterations the keystores of one request may still cost.

    Not thread-safe: one request parses its keystores one after the other.
    """

    def __init__(self, total: int | None = None) -> None:
        self.total = MAX_TOTAL_ITERATIONS if total is None else total
        self.left = self.total

    def check(self, cost: int) -> None:
        """Refuse, before deriving anything, a cost over what is left."""
        if cost > self.left:
            raise KeystoreError(
                f"The keystores of this request need more than {self.total} key derivation"
                " iterations in total, which is not supported!"
            )

    def spend(self, iterations: int, blocks: int = 1, weight: int = 1) -> None:
        if not 1 <= iterations <= MAX_ITERATIONS:
            raise _Unsupported(f"an iteration count of {iterations}")
        cost = iterations * blocks * weight
        self.check(cost)
        self.left -= cost


_Work = KeystoreBudget


def parse_keystore(
    data: bytes,
    store_type: str,
    password: str | None,
    key_password: str | None = None,
    *,
    budget: KeystoreBudget | None = None,
) -> ParsedKeystore:
    """Open a JKS, JCEKS or PKCS12 keystore and return its entries, or raise KeystoreError.

    ``PEM`` converts a PEM private key and certificate chain into a PKCS12 file
    (``ParsedKeystore.file``). Without ``password`` only a store of trusted certificates
    opens. ``budget`` is shared by all keystores of one request; without it this file
    gets a budget of its own.
    """
    if store_type is None or not store_type.strip():
        raise KeystoreError(EMPTY_TYPE_REASON)
    canonical = store_type.strip().upper()
    if canonical not in UPLOAD_TYPES:
        raise KeystoreError(
            f"type ({store_type}) is not valid! Valid values: {', '.join(UPLOAD_TYPES)}"
        )
    if not data:
        raise KeystoreError(EMPTY_FILE_REASON)
    if key_password and not password:
        raise KeystoreError(EMPTY_PASSWORD_REASON)
    store_pw = password or None
    key_pw = key_password or store_pw
    work = budget if budget is not None else KeystoreBudget()

    actual = _sniff(data)
    if canonical == PEM_TYPE:
        if actual is not None:
            raise KeystoreError(f"Keystore file is a {actual} keystore, but type is PEM!")
        return _read_pem(data, store_pw, key_pw, work)
    if actual is None and b"-----BEGIN " in data:
        # The most likely mistake with what CAs hand out: say so, not "not a valid JKS".
        raise KeystoreError(f"Keystore file is PEM text, but type is {canonical}!")
    if actual is not None and actual != canonical:
        raise KeystoreError(f"Keystore file is a {actual} keystore, but type is {canonical}!")
    if actual is None:
        raise _not_valid(canonical)

    entries = (
        _read_pkcs12(data, store_pw, key_pw, work)
        if canonical == "PKCS12"
        else _read_jks(data, store_pw, key_pw, work, canonical)
    )
    entries.sort(key=lambda e: e.alias)
    for previous, current in pairwise(entries):
        if previous.alias == current.alias:
            raise KeystoreError(f"Keystore file holds the alias ({current.alias}) more than once!")
    return ParsedKeystore(store_type=canonical, entries=entries)


def _sniff(data: bytes) -> str | None:
    if data[:4] == _JKS_MAGIC:
        return "JKS"
    if data[:4] == _JCEKS_MAGIC:
        return "JCEKS"
    try:
        _pfx(data)
    except _Unsupported:
        return "PKCS12"
    except (_Malformed, IndexError, UnicodeDecodeError):
        return None
    return "PKCS12"


def _certificate(der: bytes, alias: str) -> ParsedCertificate:
    try:
        return parse_certificate(der)
    except CertificateParseError:
        raise KeystoreError(
            f"The certificate of alias ({alias}) is not a valid X.509 certificate!"
        ) from None


def _normalise_private(pkcs8: bytes, cert: ParsedCertificate | None, alias: str) -> bytes:
    """Canonical PKCS#8 of a decrypted key, checked against its certificate."""
    try:
        key = serialization.load_der_private_key(pkcs8, password=None)
    except UnsupportedAlgorithm:
        # Keep what the keystore holds; such a key can still be stored, not turned into a JWK.
        return pkcs8
    except (ValueError, TypeError):
        raise KeystoreError(f"The private key of alias ({alias}) is not valid!") from None
    if cert is not None:
        try:
            cert_public = cert.public_key()
        except UnsupportedAlgorithm:
            cert_public = None
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if cert_public is not None and cert_public.public_bytes(
            serialization.Encoding.DER, spki
        ) != key.public_key().public_bytes(serialization.Encoding.DER, spki):
            raise KeystoreError(
                f"The private key of alias ({alias}) does not match its certificate!"
            )
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# --- PEM (converted to PKCS12) --------------------------------------------------------

PEM_KEY_PASSWORD_REASON = "Key password is incorrect for the private key of the keystore file!"  # noqa: S105
PEM_KEY_INVALID_REASON = "The private key of the keystore file is not valid!"


def _read_pem(
    data: bytes, password: str | None, key_password: str | None, work: _Work
) -> ParsedKeystore:
    """Convert a PEM key and chain into a PKCS12 file and read that file back."""
    if password is None:
        # A PEM keystore always holds a private key: its PKCS12 file needs a password.
        raise KeystoreError(KEYS_NEED_PASSWORD_REASON)
    assert key_password is not None
    try:
        pem_bundle.check_password(password)
        bundle = pem_bundle.read_pem_bundle(data)
        key = _open_pem_key(bundle.key, key_password, work)
        converted = pem_bundle.to_pkcs12(key, pem_bundle.chain_for(key, bundle), password)
    except pem_bundle.PemBundleError as exc:
        raise KeystoreError(exc.reason) from None
    # Read back as any PKCS12 upload is: what is shown is what the file holds.
    entries = _read_pkcs12(converted, password, password, work)
    return ParsedKeystore(store_type="PKCS12", entries=entries, file=converted)


def _open_pem_key(block: pem_bundle.PemBlock, key_password: str, work: _Work) -> PrivateKeyTypes:
    if block.label == pem_bundle.ENCRYPTED_KEY_LABEL:
        # Decrypted here rather than by pyca: the file sets the iteration count, which the
        # request's budget must bound before any of it is spent.
        try:
            pkcs8 = _open_shrouded(block.der, key_password, work)
        except _WrongPassword:
            raise KeystoreError(PEM_KEY_PASSWORD_REASON) from None
        except _Unsupported as exc:
            raise KeystoreError(f"Keystore file uses {exc.what}, which is not supported!") from None
        except (_Malformed, IndexError):
            raise KeystoreError(PEM_KEY_INVALID_REASON) from None
        return _load_private(lambda: serialization.load_der_private_key(pkcs8, None))
    if block.encrypted:
        # OpenSSL's traditional encryption: one MD5 round, nothing to bound.
        try:
            return serialization.load_pem_private_key(block.text, key_password.encode("utf-8"))
        except (ValueError, TypeError):
            raise KeystoreError(PEM_KEY_PASSWORD_REASON) from None
        except UnsupportedAlgorithm as exc:
            raise KeystoreError(PEM_KEY_INVALID_REASON) from exc
    return _load_private(lambda: serialization.load_der_private_key(block.der, None))


def _load_private(load: Callable[[], PrivateKeyTypes]) -> PrivateKeyTypes:
    try:
        return load()
    except UnsupportedAlgorithm:
        raise KeystoreError(
            "The private key of the keystore file uses an algorithm that is not supported!"
        ) from None
    except (ValueError, TypeError):
        raise KeystoreError(PEM_KEY_INVALID_REASON) from None


# --- JKS -------------------------------------------------------------------------------


def _read_jks(
    data: bytes, password: str | None, key_password: str | None, work: _Work, store_type: str
) -> list[KeystoreEntry]:
    # Imported here: pyjks (with what it needs) costs a gateway node 5 MB it rarely uses.
    import jks  # type: ignore[import-untyped]

    try:
        store = jks.KeyStore.loads(data, password, try_decrypt_keys=False)
    except jks.util.KeystoreSignatureException:
        raise KeystoreError(PASSWORD_REASON) from None
    # pyjks is an untyped pure-Python parser of untrusted bytes: besides its own
    # exceptions it can raise struct/index/unicode/pyasn1 errors on garbage.
    except Exception:
        raise _not_valid(store_type) from None

    raw_entries = cast(dict[str, Any], store.entries)
    if key_password is None and any(
        not isinstance(raw, jks.TrustedCertEntry) for raw in raw_entries.values()
    ):
        raise KeystoreError(KEYS_NEED_PASSWORD_REASON)
    if store_type == "JCEKS":
        # pyjks derives JCEKS keys in pure Python: check the whole cost before any of it.
        work.check(sum(_jceks_cost(raw) for raw in raw_entries.values()))
    entries: list[KeystoreEntry] = []
    for stored_alias, raw in raw_entries.items():
        alias = _java_alias(stored_alias)
        if isinstance(raw, jks.TrustedCertEntry):
            trusted = _certificate(cast(bytes, raw.cert), alias)
            entries.append(KeystoreEntry(alias, "TRUSTED_CERTIFICATE", trusted, [trusted.der]))
        elif isinstance(raw, jks.SecretKeyEntry):
            assert key_password is not None
            _spend_jceks(raw, work)
            try:
                raw.decrypt(key_password)
                secret = bytes(cast(bytes, raw.key))
                algorithm = str(raw.algorithm)
            except jks.util.DecryptionFailureException:
                raise KeystoreError(_key_password_reason(alias)) from None
            except ValueError:
                raise KeystoreError(_ascii_reason(alias)) from None
            except Exception:
                raise _not_valid(store_type) from None
            entries.append(
                KeystoreEntry(
                    alias, "SECRET_KEY", None, [], secret=secret, secret_algorithm=algorithm
                )
            )
        elif isinstance(raw, jks.PrivateKeyEntry):
            assert key_password is not None
            if store_type == "JCEKS":
                _spend_jceks(raw, work)
            try:
                raw.decrypt(key_password)
                pkcs8 = cast(bytes, raw.pkey_pkcs8)
            except jks.util.DecryptionFailureException:
                raise KeystoreError(_key_password_reason(alias)) from None
            except ValueError as exc:
                if "non-ASCII" in str(exc):
                    raise KeystoreError(_ascii_reason(alias)) from None
                raise _not_valid(store_type) from None
            except Exception:
                raise _not_valid(store_type) from None
            chain = [cast(bytes, der) for _type, der in cast(list[Any], raw.cert_chain)]
            cert = _certificate(chain[0], alias) if chain else None
            entries.append(
                KeystoreEntry(
                    alias,
                    "PRIVATE_KEY",
                    cert,
                    chain,
                    private_der=_normalise_private(pkcs8, cert, alias),
                )
            )
        else:  # pragma: no cover - JKS and JCEKS have no other entry kinds
            raise _not_valid(store_type)
    return entries


def _jceks_iterations(raw: Any) -> int:
    """The PBEWithMD5AndTripleDES iteration count protecting a JCEKS key entry (0: none)."""
    import jks

    try:
        if isinstance(raw, jks.SecretKeyEntry):
            params = bytes(bytearray(raw._encrypted.encodedParams))
        elif isinstance(raw, jks.PrivateKeyEntry) and raw._encrypted is not None:
            algorithm = _seq(_seq(_one(raw._encrypted))[0])
            if _oid(algorithm[0]) != _JCE_PBE:
                return 0
            params = _one_der(algorithm[1])
        else:
            return 0
        return _int(_seq(_one(params))[1])
    except Exception:
        # Unreadable parameters: pyjks refuses the entry itself.
        return 0


def _jceks_cost(raw: Any) -> int:
    iterations = _jceks_iterations(raw)
    return 2 * iterations * PURE_PYTHON_WEIGHT if 0 < iterations <= MAX_ITERATIONS else 0


def _spend_jceks(raw: Any, work: _Work) -> None:
    iterations = _jceks_iterations(raw)
    if iterations:
        try:
            work.spend(iterations, blocks=2, weight=PURE_PYTHON_WEIGHT)
        except _Unsupported as exc:
            raise KeystoreError(f"Keystore file uses {exc.what}, which is not supported!") from None


def _key_password_reason(alias: str) -> str:
    return f"Key password is incorrect for alias ({alias})!"


def _ascii_reason(alias: str) -> str:
    # Java's PBEKey refuses such passwords for JCEKS keys the same way.
    return f"Key password of alias ({alias}) must be ASCII text in a JCEKS keystore!"


def _java_alias(alias: str) -> str:
    # Java's keystores keep aliases lower-cased (Locale.ENGLISH) and look them up
    # case-insensitively; listing them the same way matches keytool -list.
    return alias.lower()


# --- a minimal BER reader for PKCS#12 ------------------------------------------------------


class _Malformed(Exception):
    """The bytes are not the ASN.1 structure expected here."""


_Node = tuple[int, bytes]  # (identifier octet, content octets)

_SEQUENCE = 0x30
_SET = 0x31
_INTEGER = 0x02
_OCTET_STRING = 0x04
_OID = 0x06
_CONTEXT_0 = 0xA0
_MAX_DEPTH = 64


def _tlv(data: bytes, pos: int, depth: int = 0) -> tuple[_Node, int]:
    """The TLV at ``pos`` and the position after it; BER indefinite lengths resolved."""
    if depth > _MAX_DEPTH or pos + 2 > len(data):
        raise _Malformed
    tag = data[pos]
    if tag & 0x1F == 0x1F:  # high tag numbers never occur in PKCS#12
        raise _Malformed
    first = data[pos + 1]
    pos += 2
    if first == 0x80:
        # Indefinite length (BER, e.g. from NSS or Windows): content runs to end-of-contents.
        if not tag & 0x20:
            raise _Malformed
        start = pos
        while data[pos : pos + 2] != b"\x00\x00":
            _, pos = _tlv(data, pos, depth + 1)
        return (tag, data[start:pos]), pos + 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise _Malformed
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        length = first
    end = pos + length
    if end > len(data):
        raise _Malformed
    return (tag, data[pos:end]), end


def _items(content: bytes) -> list[_Node]:
    out: list[_Node] = []
    pos = 0
    while pos < len(content):
        node, pos = _tlv(content, pos)
        out.append(node)
    return out


def _one(data: bytes) -> _Node:
    node, end = _tlv(data, 0)
    if end != len(data):
        raise _Malformed
    return node


def _expect(node: _Node, tag: int) -> bytes:
    if node[0] != tag:
        raise _Malformed
    return node[1]


def _seq(node: _Node) -> list[_Node]:
    return _items(_expect(node, _SEQUENCE))


def _int(node: _Node) -> int:
    content = _expect(node, _INTEGER)
    if not content:
        raise _Malformed
    return int.from_bytes(content, "big", signed=True)


def _oid(node: _Node) -> str:
    try:
        return oid_text(_expect(node, _OID))
    except ValueError:
        raise _Malformed from None


def _octets(node: _Node, primitive: int = _OCTET_STRING) -> bytes:
    """OCTET STRING content; BER constructed strings are concatenated."""
    tag, content = node
    if tag == primitive:
        return content
    if tag == primitive | 0x20:
        return b"".join(_octets(child) for child in _items(content))
    raise _Malformed


def _explicit(node: _Node) -> _Node:
    """The single value inside an ``[0] EXPLICIT`` wrapper."""
    return _one(_expect(node, _CONTEXT_0))


# --- PKCS#12 ---------------------------------------------------------------------------

_DATA = "1.2.840.113549.1.7.1"
_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
_BAG = "1.2.840.113549.1.12.10.1."
_KEY_BAG = _BAG + "1"
_SHROUDED_KEY_BAG = _BAG + "2"
_CERT_BAG = _BAG + "3"
_SECRET_BAG = _BAG + "5"
_SAFE_CONTENTS_BAG = _BAG + "6"
_X509_CERT = "1.2.840.113549.1.9.22.1"
_FRIENDLY_NAME = "1.2.840.113549.1.9.20"
_LOCAL_KEY_ID = "1.2.840.113549.1.9.21"
# Oracle's "trusted key usage" attribute: Java's mark for a trustedCertEntry.
_JAVA_TRUSTED = "2.16.840.1.113894.746875.1.1"

_DIGESTS = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "2.16.840.1.101.3.4.2.5": "sha512_224",
    "2.16.840.1.101.3.4.2.6": "sha512_256",
}
_HMAC_PRFS = {
    "1.2.840.113549.2.7": "sha1",
    "1.2.840.113549.2.8": "sha224",
    "1.2.840.113549.2.9": "sha256",
    "1.2.840.113549.2.10": "sha384",
    "1.2.840.113549.2.11": "sha512",
    "1.2.840.113549.2.12": "sha512_224",
    "1.2.840.113549.2.13": "sha512_256",
}
_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_PBMAC1 = "1.2.840.113549.1.5.14"
# PBES2 ciphers: OID -> (key length, cipher factory).
_PBES2_CIPHERS: dict[str, tuple[int, Callable[[bytes], CipherAlgorithm]]] = {
    "2.16.840.1.101.3.4.1.2": (16, algorithms.AES),
    "2.16.840.1.101.3.4.1.22": (24, algorithms.AES),
    "2.16.840.1.101.3.4.1.42": (32, algorithms.AES),
    "1.2.840.113549.3.7": (24, TripleDES),
}
# PKCS#12 PBE schemes (RFC 7292 appendix C): OID -> (cipher name, key length in bytes).
_PKCS12_PBE = {
    "1.2.840.113549.1.12.1.1": ("RC4", 16),
    "1.2.840.113549.1.12.1.2": ("RC4", 5),
    "1.2.840.113549.1.12.1.3": ("3DES", 24),
    "1.2.840.113549.1.12.1.4": ("3DES", 16),
    "1.2.840.113549.1.12.1.5": ("RC2", 16),
    "1.2.840.113549.1.12.1.6": ("RC2", 5),
}
# Java's names for the key algorithms of secret key entries.
_SECRET_ALGORITHMS = {
    "2.16.840.1.101.3.4.1": "AES",
    "1.2.840.113549.3.7": "DESede",
    "1.3.14.3.2.7": "DES",
    "1.2.840.113549.1.5.3": "PBEWithMD5AndDES",  # keytool -importpass
    "1.2.840.113549.2.7": "HmacSHA1",
    "1.2.840.113549.2.8": "HmacSHA224",
    "1.2.840.113549.2.9": "HmacSHA256",
    "1.2.840.113549.2.10": "HmacSHA384",
    "1.2.840.113549.2.11": "HmacSHA512",
}


class _WrongPassword(Exception):
    """Decryption produced garbage: the password (or the ciphertext) is wrong."""


class _Unsupported(Exception):
    """A protection algorithm this reader does not implement."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass
class _Pfx:
    auth_safe: bytes  # the octets the MAC covers
    mac: tuple[str, bytes, bytes, int] | None  # (digest OID, mac, salt, iterations)


def _pfx(data: bytes) -> _Pfx:
    pfx = _seq(_one(data))
    if len(pfx) not in (2, 3) or _int(pfx[0]) != 3:
        raise _Malformed
    content_info = _seq(pfx[1])
    if _oid(content_info[0]) == "1.2.840.113549.1.7.2":  # signedData
        raise _Unsupported("public-key integrity protection")
    if _oid(content_info[0]) != _DATA:
        raise _Malformed
    auth_safe = _octets(_explicit(content_info[1]))
    mac = None
    if len(pfx) == 3:
        mac_data = _seq(pfx[2])
        digest_info = _seq(mac_data[0])
        algorithm = _oid(_seq(digest_info[0])[0])
        iterations = _int(mac_data[2]) if len(mac_data) > 2 else 1
        mac = (algorithm, _octets(digest_info[1]), _octets(mac_data[1]), iterations)
    return _Pfx(auth_safe, mac)


def _read_pkcs12(
    data: bytes, password: str | None, key_password: str | None, work: _Work
) -> list[KeystoreEntry]:
    try:
        pfx = _pfx(data)
        if password is None:
            # As Java does without a password: no integrity check, only clear content.
            bags = _clear_bags(pfx.auth_safe)
            if any(bag.kind != "cert" for bag in bags):
                raise KeystoreError(KEYS_NEED_PASSWORD_REASON)
            return _entries(bags, "", work, password_proven=False)
        work.check(_visible_cost(pfx))
        if pfx.mac is not None:
            _verify_mac(pfx, password, work)
        bags, decrypted = _walk_auth_safe(
            pfx.auth_safe, password, work, mac_checked=pfx.mac is not None
        )
        assert key_password is not None
        # Without a MAC or encrypted content (openssl -nomac) nothing has proven the store
        # password yet, so a key that does not open with it most likely means a wrong one.
        proven = pfx.mac is not None or decrypted or key_password != password
        return _entries(bags, key_password, work, password_proven=proven)
    except KeystoreError:
        raise
    except _Unsupported as exc:
        raise KeystoreError(f"Keystore file uses {exc.what}, which is not supported!") from None
    except _WrongPassword:
        raise KeystoreError(PASSWORD_REASON) from None
    # IndexError: a SEQUENCE shorter than its definition; UnicodeDecodeError: a bad name.
    except (_Malformed, IndexError, UnicodeDecodeError):
        raise _not_valid("PKCS12") from None


def _clear_bags(auth_safe: bytes) -> list[_Bag]:
    bags: list[_Bag] = []
    for content_info in _seq(_one(auth_safe)):
        parts = _seq(content_info)
        content_type = _oid(parts[0])
        if content_type == _DATA:
            _collect(_octets(_explicit(parts[1])), bags, depth=0)
        elif content_type == _ENCRYPTED_DATA:
            raise KeystoreError(ENCRYPTED_NEEDS_PASSWORD_REASON)
        else:
            raise _Unsupported(f"content type {content_type}")
    return bags


def _visible_cost(pfx: _Pfx) -> int:
    """Iterations the MAC and the top-level protected parts will cost (best effort)."""
    cost = 0
    if pfx.mac is not None:
        iterations = pfx.mac[3]
        # The MAC key is one digest long: one block of the key derivation.
        cost += iterations if 0 < iterations <= MAX_ITERATIONS else 0
    try:
        for content_info in _seq(_one(pfx.auth_safe)):
            parts = _seq(content_info)
            content_type = _oid(parts[0])
            if content_type == _ENCRYPTED_DATA:
                info = _seq(_seq(_explicit(parts[1]))[1])
                cost += _algorithm_cost(info[1])
            elif content_type == _DATA:
                bags: list[_Bag] = []
                _collect(_octets(_explicit(parts[1])), bags, depth=0)
                for bag in bags:
                    if bag.shrouded is not None:
                        cost += _algorithm_cost(_seq(_one(bag.shrouded))[0])
    except (_Malformed, _Unsupported, IndexError, UnicodeDecodeError):
        pass  # the walk itself reports what is wrong
    return cost


def _algorithm_cost(algorithm_node: _Node) -> int:
    """Iterations a PBES2 or PKCS#12 PBE algorithm identifier will cost (0 if unknown)."""
    algorithm = _seq(algorithm_node)
    oid = _oid(algorithm[0])
    if oid == _PBES2:
        kdf = _seq(_seq(algorithm[1])[0])
        iterations = _int(_seq(kdf[1])[1])
        return iterations if 0 < iterations <= MAX_ITERATIONS else 0
    if oid in _PKCS12_PBE:
        cipher_name, size = _PKCS12_PBE[oid]
        iterations = _int(_seq(algorithm[1])[1])
        blocks = -(-size // 20) + (0 if cipher_name == "RC4" else 1)
        return iterations * blocks if 0 < iterations <= MAX_ITERATIONS else 0
    return 0


def _bmp_password(password: str) -> bytes:
    # RFC 7292 appendix B.1: BMPString (UTF-16BE) with a two-byte NUL terminator.
    return password.encode("utf-16-be") + b"\x00\x00"


def _pkcs12_kdf(
    hash_name: str,
    password: bytes,
    salt: bytes,
    purpose: int,
    iterations: int,
    size: int,
    work: _Work,
) -> bytes:
    """RFC 7292 appendix B.2 key derivation, in OpenSSL where it can be."""
    u = hashlib.new(hash_name).digest_size
    work.spend(iterations, blocks=-(-size // u))
    native = _native_kdf()
    if native is not None:
        derived = native(hash_name, password, salt, purpose, iterations, size)
        if derived is not None:
            return derived
    return _python_kdf(hash_name, password, salt, purpose, iterations, size)


def _python_kdf(
    hash_name: str, password: bytes, salt: bytes, purpose: int, iterations: int, size: int
) -> bytes:
    u = hashlib.new(hash_name).digest_size
    v = hashlib.new(hash_name).block_size
    d = bytes([purpose]) * v

    def fill(data: bytes) -> bytes:
        # Repeat to the next multiple of v bytes (empty stays empty).
        total = v * -(-len(data) // v)
        return (data * (total // len(data) + 1))[:total] if data else b""

    i = bytearray(fill(salt) + fill(password))
    out = b""
    while True:
        a = hashlib.new(hash_name, d + bytes(i)).digest()
        for _ in range(iterations - 1):
            a = hashlib.new(hash_name, a).digest()
        out += a
        if len(out) >= size:
            return out[:size]
        b = int.from_bytes((a * (v // u + 1))[:v], "big")
        for start in range(0, len(i), v):
            block = (int.from_bytes(i[start : start + v], "big") + b + 1) % (1 << (8 * v))
            i[start : start + v] = block.to_bytes(v, "big")


_NativeKdf = Callable[[str, bytes, bytes, int, int, int], bytes | None]
_native: list[_NativeKdf | None] = []


def _native_kdf() -> _NativeKdf | None:
    """OpenSSL's PKCS12_key_gen_uni through ctypes (GIL released), if it loads and agrees."""
    if not _native:
        candidate = _load_native_kdf()
        if candidate is not None:
            args = ("sha256", _bmp_password("check"), b"saltsalt", 1, 3, 40)
            if candidate(*args) != _python_kdf(*args):
                candidate = None
        _native.append(candidate)
    return _native[0]


def _load_native_kdf() -> _NativeKdf | None:
    import ctypes
    import ctypes.util

    try:
        name = ctypes.util.find_library("crypto")
        if name is None:
            return None
        lib = ctypes.CDLL(name)
        keygen = lib.PKCS12_key_gen_uni
        by_name = lib.EVP_get_digestbyname
    except (OSError, AttributeError):
        return None
    keygen.argtypes = [
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_void_p,
    ]
    keygen.restype = ctypes.c_int
    by_name.argtypes = [ctypes.c_char_p]
    by_name.restype = ctypes.c_void_p
    openssl_names = {"sha512_224": b"sha512-224", "sha512_256": b"sha512-256"}

    def derive(
        hash_name: str, password: bytes, salt: bytes, purpose: int, iterations: int, size: int
    ) -> bytes | None:
        digest = by_name(openssl_names.get(hash_name, hash_name.encode("ascii")))
        if not digest:
            return None
        out = ctypes.create_string_buffer(size)
        ok = keygen(
            password, len(password), salt, len(salt), purpose, iterations, size, out, digest
        )
        return out.raw if ok == 1 else None

    return derive


def _verify_mac(pfx: _Pfx, password: str, work: _Work) -> None:
    assert pfx.mac is not None
    algorithm, expected, salt, iterations = pfx.mac
    if algorithm == _PBMAC1:
        raise _Unsupported("PBMAC1 integrity protection")
    hash_name = _DIGESTS.get(algorithm)
    if hash_name is None:
        raise _Unsupported(f"the MAC digest {algorithm}")
    size = hashlib.new(hash_name).digest_size
    key = _pkcs12_kdf(hash_name, _bmp_password(password), salt, 3, iterations, size, work)
    actual = hmac.new(key, pfx.auth_safe, hash_name).digest()
    if not hmac.compare_digest(actual, expected):
        raise _WrongPassword


@dataclass
class _Bag:
    kind: str  # "key", "cert" or "secret"
    value: bytes  # PKCS#8 DER (key), certificate DER (cert), PrivateKeyInfo DER (secret)
    friendly_name: str | None
    local_key_id: bytes | None
    trusted: bool
    shrouded: bytes | None = None  # EncryptedPrivateKeyInfo, decrypted with the key password


def _walk_auth_safe(
    auth_safe: bytes, password: str, work: _Work, *, mac_checked: bool
) -> tuple[list[_Bag], bool]:
    """The bags of all SafeContents, and whether any encrypted content was opened."""
    bags: list[_Bag] = []
    decrypted = False
    for content_info in _seq(_one(auth_safe)):
        parts = _seq(content_info)
        content_type = _oid(parts[0])
        if content_type == _DATA:
            _collect(_octets(_explicit(parts[1])), bags, depth=0)
        elif content_type == _ENCRYPTED_DATA:
            encrypted = _seq(_explicit(parts[1]))
            info = _seq(encrypted[1])
            ciphertext = _octets(info[2], primitive=0x80)
            try:
                _collect(_decrypt(info[1], ciphertext, password, work), bags, depth=0)
                decrypted = True
            except (_WrongPassword, _Malformed, IndexError):
                # With a MAC the password is proven, so the content itself is broken.
                # Without one, garbage after decryption (a wrong password that happened
                # to pass the padding check) is the likelier cause.
                if mac_checked:
                    raise _Malformed from None
                raise _WrongPassword from None
        else:
            raise _Unsupported(f"content type {content_type}")
    return bags, decrypted


def _collect(safe_contents: bytes, bags: list[_Bag], depth: int) -> None:
    if depth > 4:
        raise _Malformed
    for node in _seq(_one(safe_contents)):
        parts = _seq(node)
        bag_id = _oid(parts[0])
        value = _explicit(parts[1])
        friendly_name, local_key_id, trusted = _attributes(parts[2] if len(parts) > 2 else None)
        if bag_id == _KEY_BAG:
            bags.append(_Bag("key", _one_der(value), friendly_name, local_key_id, trusted))
        elif bag_id == _SHROUDED_KEY_BAG:
            bags.append(
                _Bag("key", b"", friendly_name, local_key_id, trusted, shrouded=_one_der(value))
            )
        elif bag_id == _CERT_BAG:
            cert_bag = _seq(value)
            if _oid(cert_bag[0]) == _X509_CERT:
                der = _octets(_explicit(cert_bag[1]))
                bags.append(_Bag("cert", der, friendly_name, local_key_id, trusted))
        elif bag_id == _SECRET_BAG:
            secret_bag = _seq(value)
            secret_type = _oid(secret_bag[0])
            inner = _explicit(secret_bag[1])
            # Java wraps the key structure in an OCTET STRING; accept it bare as well.
            der = _octets(inner) if inner[0] in (0x04, 0x24) else _one_der(inner)
            if secret_type == _SHROUDED_KEY_BAG:
                bags.append(_Bag("secret", b"", friendly_name, local_key_id, trusted, der))
            elif secret_type == _KEY_BAG:
                bags.append(_Bag("secret", der, friendly_name, local_key_id, trusted))
            else:
                raise _Unsupported(f"a secret bag of type {secret_type}")
        elif bag_id == _SAFE_CONTENTS_BAG:
            _collect(_one_der(value), bags, depth + 1)
        # CRL bags and unknown bag types carry nothing an entry needs.


def _one_der(node: _Node) -> bytes:
    """Re-encode a node as DER bytes (BER indefinite lengths become definite)."""
    tag, content = node
    length = len(content)
    if length < 0x80:
        header = bytes([tag, length])
    else:
        size = (length.bit_length() + 7) // 8
        header = bytes([tag, 0x80 | size]) + length.to_bytes(size, "big")
    return header + content


def _attributes(node: _Node | None) -> tuple[str | None, bytes | None, bool]:
    friendly_name: str | None = None
    local_key_id: bytes | None = None
    trusted = False
    if node is None:
        return friendly_name, local_key_id, trusted
    for attribute in _items(_expect(node, _SET)):
        parts = _seq(attribute)
        attr_type = _oid(parts[0])
        values = _items(_expect(parts[1], _SET))
        if not values:
            continue
        if attr_type == _FRIENDLY_NAME:
            tag, content = values[0]
            if tag == 0x1E:  # BMPString
                friendly_name = content.decode("utf-16-be")
            elif tag == 0x0C:  # UTF8String, seen in some non-Java tools
                friendly_name = content.decode("utf-8")
            else:
                raise _Malformed
        elif attr_type == _LOCAL_KEY_ID:
            local_key_id = _octets(values[0])
        elif attr_type == _JAVA_TRUSTED:
            trusted = True
    return friendly_name, local_key_id, trusted


# --- decryption ------------------------------------------------------------------------


def _decrypt(algorithm_node: _Node, ciphertext: bytes, password: str, work: _Work) -> bytes:
    algorithm = _seq(algorithm_node)
    oid = _oid(algorithm[0])
    if oid == _PBES2:
        return _pbes2(_seq(algorithm[1]), ciphertext, password, work)
    if oid in _PKCS12_PBE:
        params = _seq(algorithm[1])
        salt, iterations = _octets(params[0]), _int(params[1])
        return _pkcs12_pbe(oid, salt, iterations, ciphertext, password, work)
    raise _Unsupported(f"the encryption algorithm {oid}")


def _pbes2(params: list[_Node], ciphertext: bytes, password: str, work: _Work) -> bytes:
    kdf = _seq(params[0])
    if _oid(kdf[0]) != _PBKDF2:
        raise _Unsupported(f"the key derivation {_oid(kdf[0])}")
    kdf_params = _seq(kdf[1])
    salt = _octets(kdf_params[0])
    iterations = _int(kdf_params[1])
    key_length: int | None = None
    prf = "sha1"  # RFC 8018: hmacWithSHA1 is the default PRF
    for extra in kdf_params[2:]:
        if extra[0] == _INTEGER:
            key_length = _int(extra)
        else:
            prf_oid = _oid(_seq(extra)[0])
            if prf_oid not in _HMAC_PRFS:
                raise _Unsupported(f"the PBKDF2 PRF {prf_oid}")
            prf = _HMAC_PRFS[prf_oid]
    scheme = _seq(params[1])
    cipher_oid = _oid(scheme[0])
    if cipher_oid not in _PBES2_CIPHERS:
        raise _Unsupported(f"the cipher {cipher_oid}")
    size, factory = _PBES2_CIPHERS[cipher_oid]
    if key_length is not None and key_length != size:
        raise _Malformed
    iv = _octets(scheme[1])
    work.spend(iterations)
    # PBES2 takes the password as UTF-8 bytes, as OpenSSL and Java both do.
    key = hashlib.pbkdf2_hmac(prf, password.encode("utf-8"), salt, iterations, size)
    return _cbc_decrypt(factory(key), iv, ciphertext)


def _pkcs12_pbe(
    oid: str, salt: bytes, iterations: int, ciphertext: bytes, password: str, work: _Work
) -> bytes:
    cipher_name, size = _PKCS12_PBE[oid]
    bmp = _bmp_password(password)
    key = _pkcs12_kdf("sha1", bmp, salt, 1, iterations, size, work)
    if cipher_name == "RC4":
        decryptor = Cipher(ARC4(key), mode=None).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()
    iv = _pkcs12_kdf("sha1", bmp, salt, 2, iterations, 8, work)
    if cipher_name == "3DES":
        # Two-key 3DES is K1|K2|K1.
        return _cbc_decrypt(TripleDES(key if size == 24 else key + key[:8]), iv, ciphertext)
    # RC2 with a 40-bit key (the legacy default of Java and OpenSSL): pyca only has
    # 128-bit RC2, pycryptodomex takes any length and the matching effective key bits.
    if len(ciphertext) % 8:
        raise _WrongPassword
    # S304: reading legacy files needs the legacy cipher. The stub omits effective_keylen,
    # a documented parameter of ARC2.new. Imported here, like pyjks (see _read_jks).
    from Cryptodome.Cipher import ARC2

    rc2 = ARC2.new(  # noqa: S304
        key,
        ARC2.MODE_CBC,
        iv=iv,
        effective_keylen=size * 8,  # type: ignore[call-arg]
    )
    return _unpad(rc2.decrypt(ciphertext), 64)


def _cbc_decrypt(cipher: CipherAlgorithm, iv: bytes, ciphertext: bytes) -> bytes:
    block_bits = cast(int, getattr(cipher, "block_size", 0))
    if not block_bits or len(ciphertext) % (block_bits // 8) or len(iv) != block_bits // 8:
        raise _WrongPassword
    decryptor = Cipher(cipher, modes.CBC(iv)).decryptor()
    return _unpad(decryptor.update(ciphertext) + decryptor.finalize(), block_bits)


def _unpad(plaintext: bytes, block_bits: int) -> bytes:
    unpadder = padding.PKCS7(block_bits).unpadder()
    try:
        return unpadder.update(plaintext) + unpadder.finalize()
    except ValueError:
        raise _WrongPassword from None


def _open_shrouded(shrouded: bytes, password: str, work: _Work) -> bytes:
    """Decrypt an EncryptedPrivateKeyInfo into PrivateKeyInfo DER."""
    parts = _seq(_one(shrouded))
    plaintext = _decrypt(parts[0], _octets(parts[1]), password, work)
    # A wrong password passes the padding check about once in 256 tries; the result then
    # is not a PrivateKeyInfo, which is caught here instead of later.
    try:
        info = _seq(_one(plaintext))
        _int(info[0])
        _seq(info[1])
        _octets(info[2])
    except (_Malformed, IndexError):
        raise _WrongPassword from None
    return plaintext


# --- PKCS#12 entries -------------------------------------------------------------------


def _entries(
    bags: list[_Bag], key_password: str, work: _Work, *, password_proven: bool
) -> list[KeystoreEntry]:
    certs = [bag for bag in bags if bag.kind == "cert"]
    # Certificates of key chains, by content: Java writes a chain's CA certificates as
    # extra bags (named after their subject) that are not entries of their own.
    used: set[bytes] = set()
    entries: list[KeystoreEntry] = []
    counter = 0

    def alias_of(bag: _Bag) -> str:
        nonlocal counter
        if bag.friendly_name:
            return _java_alias(bag.friendly_name)
        counter += 1
        return str(counter)

    for bag in bags:
        if bag.kind == "cert":
            continue
        alias = alias_of(bag)
        info = _open_bag(bag, key_password, alias, work, password_proven=password_proven)
        if bag.kind == "secret":
            algorithm, secret = _secret_of(info)
            entries.append(
                KeystoreEntry(
                    alias,
                    "SECRET_KEY",
                    None,
                    [],
                    secret=secret,
                    secret_algorithm=algorithm,
                )
            )
            continue
        leaf_index = _leaf_for(bag, certs, info)
        chain: list[bytes] = []
        cert = None
        if leaf_index is not None:
            chain = [certs[i].value for i in _chain_from(leaf_index, certs)]
            used.update(chain)
            cert = _certificate(chain[0], alias)
        private_der = _normalise_private(info, cert, alias)
        entries.append(KeystoreEntry(alias, "PRIVATE_KEY", cert, chain, private_der=private_der))

    for bag in certs:
        if bag.trusted or bag.value not in used:
            alias = alias_of(bag)
            cert = _certificate(bag.value, alias)
            entries.append(KeystoreEntry(alias, "TRUSTED_CERTIFICATE", cert, [cert.der]))
    return entries


def _open_bag(
    bag: _Bag, key_password: str, alias: str, work: _Work, *, password_proven: bool
) -> bytes:
    if bag.shrouded is None:
        return bag.value
    try:
        return _open_shrouded(bag.shrouded, key_password, work)
    except _WrongPassword:
        if not password_proven:
            raise KeystoreError(PASSWORD_REASON) from None
        raise KeystoreError(_key_password_reason(alias)) from None


def _secret_of(info: bytes) -> tuple[str, bytes]:
    parts = _seq(_one(info))
    oid = _oid(_seq(parts[1])[0])
    # Java stores the raw key bytes as the PrivateKeyInfo's privateKey OCTET STRING.
    return _SECRET_ALGORITHMS.get(oid, oid), _octets(parts[2])


def _leaf_for(bag: _Bag, certs: list[_Bag], pkcs8: bytes) -> int | None:
    if bag.local_key_id is not None:
        for index, cert in enumerate(certs):
            if cert.local_key_id == bag.local_key_id:
                return index
    if bag.friendly_name:
        for index, cert in enumerate(certs):
            if cert.friendly_name == bag.friendly_name and not cert.trusted:
                return index
    # Last resort: the certificate that carries this key's public key.
    try:
        key = serialization.load_der_private_key(pkcs8, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    wanted = key.public_key().public_bytes(serialization.Encoding.DER, spki)
    for index, cert in enumerate(certs):
        try:
            public = x509.load_der_x509_certificate(cert.value).public_key()
        except (ValueError, UnsupportedAlgorithm):
            continue
        if public.public_bytes(serialization.Encoding.DER, spki) == wanted:
            return index
    return None


def _chain_from(leaf_index: int, certs: list[_Bag]) -> list[int]:
    """Indices of the leaf and its issuers, each one verified to sign the one before."""
    parsed: dict[int, x509.Certificate] = {}

    def load(index: int) -> x509.Certificate | None:
        if index not in parsed:
            try:
                cert = x509.load_der_x509_certificate(certs[index].value)
                cert.subject  # noqa: B018 - pyca parses lazily; fail here, not later
            except ValueError:
                return None
            parsed[index] = cert
        return parsed[index]

    chain = [leaf_index]
    current = load(leaf_index)
    while current is not None and len(chain) < _MAX_CHAIN:
        if current.issuer == current.subject:
            break
        next_index = None
        for index in range(len(certs)):
            candidate = load(index)
            if index in chain or candidate is None or candidate.subject != current.issuer:
                continue
            try:
                current.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            next_index = index
            break
        if next_index is None:
            break
        chain.append(next_index)
        current = parsed[next_index]
    return chain
