"""keyops.crypto.keystores on keystores made by Java's keytool and the openssl CLI.

The fixtures are built at test time: keytool makes JKS and PKCS12 stores (modern and
Java's legacy algorithms), openssl makes PKCS12 files (modern default, ``-legacy``,
no MAC, unencrypted, certificates only). keytool ``-list`` and pyca's ``load_pkcs12``
are the independent readers the results are compared with.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from keyops.crypto import keystores
from keyops.crypto.keystores import (
    PASSWORD_REASON,
    KeystoreBudget,
    KeystoreEntry,
    KeystoreError,
    ParsedKeystore,
    parse_keystore,
)
from tests.crypto import certs
from tests.support.keystores import BuiltStore, JavaStores, java_stores

# Skipped only on a developer machine without a JDK; in CI (CI=true) these must run.
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
if shutil.which("keytool") is None and not IN_CI:
    pytest.skip("keytool (a JDK) is not installed", allow_module_level=True)

STORE_PASSWORD = "changeit"
KEY_PASSWORD = "key-secret"
OPENSSL_PASSWORD = "s3cret-Ünï"  # non-ASCII: BMPString and UTF-8 password encodings
PASSWORD_SECRET = "this-is-the-stored-secret-value!"  # 32 characters, for -importpass


def keytool(*args: str, stdin: bytes | None = None) -> str:
    """Run keytool (English messages, a quick JVM) and return its stdout."""
    command = [
        "keytool",
        "-J-Duser.language=en",
        "-J-Duser.country=US",
        "-J-XX:TieredStopAtLevel=1",
        "-J-XX:+UseSerialGC",
        *args,
    ]
    result = subprocess.run(command, input=stdin, capture_output=True, check=False, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"keytool {args[0]} failed: {result.stdout!r} {result.stderr!r}")
    return result.stdout.decode("utf-8", "replace")


@dataclass(frozen=True)
class Stores:
    dir: Path
    root: certs.Issued  # the trusted certificate imported with keytool
    chain: tuple[certs.Issued, certs.Issued, certs.Issued]  # openssl stores: root, int, leaf

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    work = tmp_path_factory.mktemp("keystores")
    root = certs.make_cert(
        certs.name(("COUNTRY_NAME", "US"), ("COMMON_NAME", "External Root")),
        certs.new_key("p384"),
        ca=True,
    )
    (work / "root.pem").write_bytes(root.pem)

    # keytool: a CA key, an EC leaf issued by it (chain of two), an Ed25519 key and a
    # trusted certificate, in PKCS12; the same converted to JKS and to legacy PKCS12.
    p12 = ["-storetype", "PKCS12", "-keystore", str(work / "keytool.p12")]
    p12 += ["-storepass", STORE_PASSWORD]
    keytool(
        "-genkeypair", "-alias", "Signing-CA", "-keyalg", "RSA", "-keysize", "2048",
        "-dname", "CN=Keytool CA, O=keyops", "-ext", "bc:c", "-validity", "30", *p12,
    )  # fmt: skip
    keytool(
        "-genkeypair", "-alias", "leaf", "-keyalg", "EC", "-groupname", "secp256r1",
        "-dname", "CN=leaf.example, O=keyops", "-validity", "30", *p12,
    )  # fmt: skip
    keytool("-certreq", "-alias", "leaf", "-file", str(work / "leaf.csr"), *p12)
    keytool(
        "-gencert", "-alias", "signing-ca", "-infile", str(work / "leaf.csr"),
        "-outfile", str(work / "leaf.cer"), "-validity", "30", *p12,
    )  # fmt: skip
    keytool("-importcert", "-alias", "leaf", "-file", str(work / "leaf.cer"), *p12)
    keytool(
        "-genkeypair", "-alias", "ed", "-keyalg", "Ed25519", "-dname", "CN=ed.example",
        "-validity", "30", *p12,
    )  # fmt: skip
    keytool(
        "-importcert", "-noprompt", "-alias", "trusted-root", "-file", str(work / "root.pem"),
        *p12,
    )  # fmt: skip
    source = ["-srckeystore", str(work / "keytool.p12"), "-srcstoretype", "PKCS12"]
    source += ["-srcstorepass", STORE_PASSWORD, "-noprompt"]
    keytool(
        "-importkeystore", *source, "-destkeystore", str(work / "keytool.jks"),
        "-deststoretype", "JKS", "-deststorepass", STORE_PASSWORD,
    )  # fmt: skip
    keytool(
        "-J-Dkeystore.pkcs12.legacy", "-importkeystore", *source,
        "-destkeystore", str(work / "legacy.p12"), "-deststoretype", "PKCS12",
        "-deststorepass", STORE_PASSWORD,
    )  # fmt: skip
    # Secret keys exist in PKCS12 only, so they are added after the JKS copy is made.
    keytool(
        "-genseckey", "-alias", "aes-key", "-keyalg", "AES", "-keysize", "256", *p12
    )  # fmt: skip
    keytool(
        "-importpass", "-alias", "stored-password", *p12,
        stdin=f"{PASSWORD_SECRET}\n{PASSWORD_SECRET}\n".encode(),
    )  # fmt: skip
    # A JKS whose key has its own password.
    keytool(
        "-genkeypair", "-alias", "own-password", "-keyalg", "EC", "-groupname", "secp384r1",
        "-dname", "CN=own.example", "-validity", "30", "-keypass", KEY_PASSWORD,
        "-storetype", "JKS", "-keystore", str(work / "keypass.jks"),
        "-storepass", STORE_PASSWORD,
    )  # fmt: skip

    # openssl: a three-certificate chain made with pyca (leaf, intermediate, root).
    chain = certs.chain3()
    chain_root, intermediate, leaf = chain
    (work / "leaf.pem").write_bytes(leaf.pem)
    (work / "leaf.key").write_bytes(leaf.key_pem)
    (work / "cas.pem").write_bytes(intermediate.pem + chain_root.pem)
    export = ["pkcs12", "-export", "-in", str(work / "leaf.pem"), "-inkey", str(work / "leaf.key")]
    export += ["-certfile", str(work / "cas.pem"), "-passout", f"pass:{OPENSSL_PASSWORD}"]
    certs.openssl(*export, "-name", "Web Server", "-out", str(work / "openssl.p12"))
    certs.openssl(*export, "-legacy", "-out", str(work / "openssl-legacy.p12"))
    certs.openssl(*export, "-nomac", "-out", str(work / "openssl-nomac.p12"))
    certs.openssl(
        *export, "-keypbe", "NONE", "-certpbe", "NONE", "-out", str(work / "openssl-plain.p12")
    )
    certs.openssl(
        "pkcs12", "-export", "-nokeys", "-in", str(work / "cas.pem"),
        "-passout", f"pass:{OPENSSL_PASSWORD}", "-out", str(work / "openssl-certs.p12"),
    )  # fmt: skip
    yield Stores(work, root, chain)


def by_alias(parsed: ParsedKeystore) -> dict[str, KeystoreEntry]:
    return {entry.alias: entry for entry in parsed.entries}


def keytool_list(path: Path, store_type: str) -> dict[str, str]:
    """alias -> entry type as keytool -list reports it."""
    out = keytool(
        "-list", "-keystore", str(path), "-storetype", store_type, "-storepass", STORE_PASSWORD
    )
    found = re.findall(r"^(.+?), \w{3} \d{1,2}, \d{4}, (\w+),", out, re.MULTILINE)
    kinds = {
        "PrivateKeyEntry": "PRIVATE_KEY",
        "trustedCertEntry": "TRUSTED_CERTIFICATE",
        "SecretKeyEntry": "SECRET_KEY",
    }
    return {alias: kinds[kind] for alias, kind in found}


def assert_key_matches_certificate(entry: KeystoreEntry) -> None:
    """The entry's private key signs what its certificate's public key verifies."""
    assert entry.private_der is not None and entry.certificate is not None
    private = serialization.load_der_private_key(entry.private_der, password=None)
    public = x509.load_der_x509_certificate(entry.certificate.der).public_key()
    data = b"keystore entry check"
    if isinstance(private, rsa.RSAPrivateKey):
        assert isinstance(public, rsa.RSAPublicKey)
        sig = private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        public.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(
            private.sign(data, ec.ECDSA(hashes.SHA256())), data, ec.ECDSA(hashes.SHA256())
        )
    else:
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        assert isinstance(public, ed25519.Ed25519PublicKey)
        public.verify(private.sign(data), data)


def assert_chain_is_linked(entry: KeystoreEntry) -> None:
    assert entry.certificate is not None
    assert entry.chain_der[0] == entry.certificate.der
    loaded = [x509.load_der_x509_certificate(der) for der in entry.chain_der]
    for child, issuer in pairwise(loaded):
        child.verify_directly_issued_by(issuer)


# --- keytool stores --------------------------------------------------------------------


KEYTOOL_KEYS = {"signing-ca", "leaf", "ed"}


@pytest.mark.parametrize(
    ("name", "store_type"),
    [("keytool.jks", "JKS"), ("keytool.p12", "PKCS12"), ("legacy.p12", "PKCS12")],
)
def test_keytool_store_lists_what_keytool_lists(stores: Stores, name: str, store_type: str) -> None:
    parsed = parse_keystore(stores.read(name), store_type, STORE_PASSWORD)
    assert parsed.store_type == store_type
    listed = {entry.alias: entry.kind for entry in parsed.entries}
    assert listed == keytool_list(stores.dir / name, store_type)
    expected = dict.fromkeys(KEYTOOL_KEYS, "PRIVATE_KEY") | {"trusted-root": "TRUSTED_CERTIFICATE"}
    if name == "keytool.p12":
        expected |= {"aes-key": "SECRET_KEY", "stored-password": "SECRET_KEY"}
    assert listed == expected
    assert [entry.alias for entry in parsed.entries] == sorted(listed)


@pytest.mark.parametrize(
    ("name", "store_type"),
    [("keytool.jks", "JKS"), ("keytool.p12", "PKCS12"), ("legacy.p12", "PKCS12")],
)
def test_keytool_store_entries(stores: Stores, name: str, store_type: str) -> None:
    entries = by_alias(parse_keystore(stores.read(name), store_type, STORE_PASSWORD))

    trusted = entries["trusted-root"]
    assert trusted.certificate is not None
    assert trusted.certificate.der == stores.root.der
    assert trusted.chain_der == [stores.root.der]
    assert trusted.private_der is None and trusted.secret is None

    ca, leaf, ed = entries["signing-ca"], entries["leaf"], entries["ed"]
    assert ca.certificate is not None and leaf.certificate is not None
    assert ed.certificate is not None
    assert ca.certificate.subject_dn == "CN=Keytool CA, O=keyops"
    assert (ca.certificate.key_type, ca.certificate.key_size) == ("RSA", 2048)
    assert leaf.certificate.subject_dn == "CN=leaf.example, O=keyops"
    assert leaf.certificate.issuer_dn == "CN=Keytool CA, O=keyops"
    assert (leaf.certificate.key_type, leaf.certificate.curve) == ("EC", "P-256")
    assert (ed.certificate.key_type, ed.certificate.curve) == ("OKP", "Ed25519")
    # keytool replaced the leaf's self-signed certificate with the CA-issued chain.
    assert leaf.chain_der == [leaf.certificate.der, ca.certificate.der]
    assert ca.chain_der == [ca.certificate.der]
    for entry in (ca, leaf, ed):
        assert entry.kind == "PRIVATE_KEY"
        assert_key_matches_certificate(entry)
        assert_chain_is_linked(entry)
        # Stored as unencrypted PKCS#8.
        assert entry.private_der == serialization.load_der_private_key(
            entry.private_der or b"", None
        ).private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def test_jks_and_pkcs12_copies_hold_the_same_entries(stores: Stores) -> None:
    jks = by_alias(parse_keystore(stores.read("keytool.jks"), "JKS", STORE_PASSWORD))
    for name in ("keytool.p12", "legacy.p12"):
        p12 = by_alias(parse_keystore(stores.read(name), "PKCS12", STORE_PASSWORD))
        for alias, entry in jks.items():
            assert p12[alias].kind == entry.kind
            assert p12[alias].chain_der == entry.chain_der
            assert p12[alias].private_der == entry.private_der


def test_pkcs12_secret_keys(stores: Stores) -> None:
    entries = by_alias(parse_keystore(stores.read("keytool.p12"), "PKCS12", STORE_PASSWORD))
    aes = entries["aes-key"]
    assert aes.kind == "SECRET_KEY"
    assert aes.secret_algorithm == "AES"
    assert aes.secret is not None and len(aes.secret) == 32
    assert (aes.certificate, aes.chain_der, aes.private_der) == (None, [], None)
    # keytool -importpass stores the typed value itself: a known secret to compare with.
    stored = entries["stored-password"]
    assert stored.secret == PASSWORD_SECRET.encode()
    assert stored.secret_algorithm == "PBEWithMD5AndDES"


def test_lookup_is_case_insensitive_like_java(stores: Stores) -> None:
    parsed = parse_keystore(stores.read("keytool.p12"), "pkcs12", STORE_PASSWORD)
    entry = parsed.entry("Signing-CA")
    assert entry is not None and entry.alias == "signing-ca"
    assert parsed.entry("SIGNING-ca") is entry
    assert parsed.entry("missing") is None


def test_key_password(stores: Stores) -> None:
    data = stores.read("keypass.jks")
    with pytest.raises(KeystoreError) as info:
        parse_keystore(data, "JKS", STORE_PASSWORD)
    assert info.value.reason == "Key password is incorrect for alias (own-password)!"
    parsed = parse_keystore(data, "JKS", STORE_PASSWORD, key_password=KEY_PASSWORD)
    entry = by_alias(parsed)["own-password"]
    assert entry.certificate is not None and entry.certificate.curve == "P-384"
    assert_key_matches_certificate(entry)
    # The key password does not open the store itself.
    with pytest.raises(KeystoreError) as info:
        parse_keystore(data, "JKS", KEY_PASSWORD, key_password=KEY_PASSWORD)
    assert info.value.reason == PASSWORD_REASON


def test_wrong_key_password_in_a_pkcs12_store(stores: Stores) -> None:
    # The MAC proves the store password, so the failure is the key password's.
    with pytest.raises(KeystoreError) as info:
        parse_keystore(stores.read("keytool.p12"), "PKCS12", STORE_PASSWORD, key_password="no")
    assert re.fullmatch(r"Key password is incorrect for alias \(.+\)!", info.value.reason)


# --- openssl stores ---------------------------------------------------------------------


def test_openssl_pkcs12_with_chain(stores: Stores) -> None:
    root, intermediate, leaf = stores.chain
    parsed = parse_keystore(stores.read("openssl.p12"), "PKCS12", OPENSSL_PASSWORD)
    # friendlyName "Web Server", lower-cased as Java lists it; the CA certificates
    # carry no friendlyName, so they are the chain and not entries of their own.
    assert [(e.alias, e.kind) for e in parsed.entries] == [("web server", "PRIVATE_KEY")]
    entry = parsed.entries[0]
    assert entry.chain_der == [leaf.der, intermediate.der, root.der]
    assert entry.certificate is not None and entry.certificate.der == leaf.der
    assert entry.private_der == leaf.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert_chain_is_linked(entry)


@pytest.mark.parametrize(
    "name", ["openssl.p12", "openssl-legacy.p12", "openssl-nomac.p12", "openssl-plain.p12"]
)
def test_openssl_pkcs12_matches_pyca(stores: Stores, name: str) -> None:
    data = stores.read(name)
    parsed = parse_keystore(data, "PKCS12", OPENSSL_PASSWORD)
    (entry,) = parsed.entries
    # pyca (OpenSSL underneath) reads the same single-key file independently.
    reference = pkcs12.load_pkcs12(data, OPENSSL_PASSWORD.encode())
    assert reference.key is not None and reference.cert is not None
    assert entry.private_der == reference.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert entry.chain_der[0] == reference.cert.certificate.public_bytes(serialization.Encoding.DER)
    assert set(entry.chain_der[1:]) == {
        extra.certificate.public_bytes(serialization.Encoding.DER)
        for extra in reference.additional_certs
    }
    # Without -name there is no friendlyName: Java names such entries "1", "2", ...
    assert entry.alias == ("web server" if name == "openssl.p12" else "1")


def test_openssl_certificates_only(stores: Stores) -> None:
    # A trust bundle: OpenSSL 3.0 writes neither friendlyName nor Java's trusted-usage
    # attribute here; the certificates still become entries, named as Java names them.
    root, intermediate, _leaf = stores.chain
    parsed = parse_keystore(stores.read("openssl-certs.p12"), "PKCS12", OPENSSL_PASSWORD)
    assert [(e.alias, e.kind) for e in parsed.entries] == [
        ("1", "TRUSTED_CERTIFICATE"),
        ("2", "TRUSTED_CERTIFICATE"),
    ]
    assert [e.chain_der for e in parsed.entries] == [[intermediate.der], [root.der]]
    assert [e.certificate.subject_dn for e in parsed.entries if e.certificate] == [
        "CN=Issuing CA, O=Root Org, C=US",
        "CN=Root CA, O=Root Org, C=US",
    ]


def _der_children(content: bytes) -> list[bytes]:
    """The complete TLVs inside DER content (short test helper, definite lengths only)."""
    out, pos = [], 0
    while pos < len(content):
        first = content[pos + 1]
        size = first & 0x7F if first & 0x80 else 0
        length = int.from_bytes(content[pos + 2 : pos + 2 + size]) if size else first
        end = pos + 2 + size + length
        out.append(content[pos:end])
        pos = end
    return out


def _der_content(tlv: bytes) -> bytes:
    first = tlv[1]
    return tlv[2 + (first & 0x7F if first & 0x80 else 0) :]


def test_ber_indefinite_lengths_and_constructed_strings(stores: Stores) -> None:
    # Some tools (NSS, Windows) write PKCS#12 as BER: indefinite lengths and an OCTET
    # STRING in chunks. Rewrite the outer layers of an openssl file that way.
    der = stores.read("openssl.p12")
    (pfx,) = _der_children(der)
    version, content_info, mac_data = _der_children(_der_content(pfx))
    oid, explicit = _der_children(_der_content(content_info))
    (octets,) = _der_children(_der_content(explicit))
    auth_safe = _der_content(octets)
    half = len(auth_safe) // 2
    chunks = b"".join(
        bytes([0x04, 0x82]) + len(part).to_bytes(2, "big") + part
        for part in (auth_safe[:half], auth_safe[half:])
    )
    eoc = b"\x00\x00"
    ber = (
        b"\x30\x80" + version
        + b"\x30\x80" + oid + b"\xa0\x80" + b"\x24\x80" + chunks + eoc + eoc + eoc
        + mac_data + eoc
    )  # fmt: skip
    assert ber != der
    assert parse_keystore(ber, "PKCS12", OPENSSL_PASSWORD) == parse_keystore(
        der, "PKCS12", OPENSSL_PASSWORD
    )
    with pytest.raises(KeystoreError) as info:
        parse_keystore(ber[:-2], "PKCS12", OPENSSL_PASSWORD)
    assert info.value.reason == "Keystore file is not a valid PKCS12 keystore!"


# --- wrong passwords, corrupt files, wrong types ------------------------------------------


@pytest.mark.parametrize(
    ("name", "store_type"),
    [
        ("keytool.jks", "JKS"),
        ("keytool.p12", "PKCS12"),
        ("legacy.p12", "PKCS12"),
        ("openssl.p12", "PKCS12"),
        ("openssl-legacy.p12", "PKCS12"),
        # No MAC: the wrong password shows when the encrypted content is opened.
        ("openssl-nomac.p12", "PKCS12"),
    ],
)
@pytest.mark.parametrize("password", ["wrong", "changeit ", "CHANGEIT", "s3cret-Unï"])
def test_wrong_password(stores: Stores, name: str, store_type: str, password: str) -> None:
    with pytest.raises(KeystoreError) as info:
        parse_keystore(stores.read(name), store_type, password)
    assert (
        info.value.reason
        == PASSWORD_REASON
        == "Keystore password is incorrect or the file is corrupt!"
    )


@pytest.mark.parametrize(
    ("name", "store_type"),
    [("keytool.jks", "JKS"), ("keytool.p12", "PKCS12"), ("openssl-legacy.p12", "PKCS12")],
)
def test_truncated_file_is_corrupt(stores: Stores, name: str, store_type: str) -> None:
    data = stores.read(name)
    for cut in (len(data) // 2, len(data) - 1, 40):
        with pytest.raises(KeystoreError) as info:
            parse_keystore(data[:cut], store_type, STORE_PASSWORD)
        assert info.value.reason == f"Keystore file is not a valid {store_type} keystore!"


@pytest.mark.parametrize("store_type", ["JKS", "PKCS12"])
@pytest.mark.parametrize(
    "data",
    [
        os.urandom(2000),
        b"\x30\x82\x01\x00" + os.urandom(256),
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        b"\xfe\xed\xfe\xed\x00\x00\x00\x02\xff\xff",
    ],
)
def test_garbage_is_not_a_keystore(store_type: str, data: bytes) -> None:
    if data.startswith(b"\xfe\xed\xfe\xed") and store_type == "PKCS12":
        expected = "Keystore file is a JKS keystore, but type is PKCS12!"
    elif data.startswith(b"-----BEGIN "):
        expected = f"Keystore file is PEM text, but type is {store_type}!"
    else:
        expected = f"Keystore file is not a valid {store_type} keystore!"
    with pytest.raises(KeystoreError) as info:
        parse_keystore(data, store_type, STORE_PASSWORD)
    assert info.value.reason == expected


def test_changed_byte_under_the_integrity_check(stores: Stores) -> None:
    # A changed byte the structure survives fails the keyed digest / MAC, like a wrong
    # password does, hence the reason names both.
    for name, store_type in (("keytool.jks", "JKS"), ("keytool.p12", "PKCS12")):
        data = bytearray(stores.read(name))
        data[-1] ^= 0x01  # JKS: the digest; PKCS12: the MAC iteration count or salt
        with pytest.raises(KeystoreError) as info:
            parse_keystore(bytes(data), store_type, STORE_PASSWORD)
        assert info.value.reason in (
            PASSWORD_REASON,
            f"Keystore file is not a valid {store_type} keystore!",
        )
    # A bit flipped inside PKCS12 encrypted content: the MAC fails.
    data = bytearray(stores.read("openssl.p12"))
    data[len(data) // 2] ^= 0x01
    with pytest.raises(KeystoreError) as info:
        parse_keystore(bytes(data), "PKCS12", OPENSSL_PASSWORD)
    assert info.value.reason == PASSWORD_REASON


def test_type_must_match_the_file(stores: Stores) -> None:
    with pytest.raises(KeystoreError) as info:
        parse_keystore(stores.read("keytool.jks"), "PKCS12", STORE_PASSWORD)
    assert info.value.reason == "Keystore file is a JKS keystore, but type is PKCS12!"
    with pytest.raises(KeystoreError) as info:
        parse_keystore(stores.read("keytool.p12"), "JKS", STORE_PASSWORD)
    assert info.value.reason == "Keystore file is a PKCS12 keystore, but type is JKS!"
    jceks = b"\xce\xce\xce\xce" + stores.read("keytool.jks")[4:]
    for store_type in ("JKS", "PKCS12"):
        with pytest.raises(KeystoreError) as info:
            parse_keystore(jceks, store_type, STORE_PASSWORD)
        assert info.value.reason == f"Keystore file is a JCEKS keystore, but type is {store_type}!"


@pytest.mark.parametrize(
    ("store_type", "data", "password", "reason"),
    [
        (None, b"x", "p", "type value can not be empty!"),
        ("", b"x", "p", "type value can not be empty!"),
        ("BKS", b"x", "p", "type (BKS) is not valid! Valid values: JKS, JCEKS, PKCS12, PEM"),
        (
            "PKCS#12",
            b"x",
            "p",
            "type (PKCS#12) is not valid! Valid values: JKS, JCEKS, PKCS12, PEM",
        ),
        ("JKS", b"", "p", "file value can not be empty!"),
    ],
)
def test_required_values(
    store_type: str | None, data: bytes, password: str | None, reason: str
) -> None:
    with pytest.raises(KeystoreError) as info:
        parse_keystore(data, store_type, password)  # type: ignore[arg-type]
    assert info.value.reason == reason
    assert str(info.value) == reason and isinstance(info.value, ValueError)


def test_type_is_case_insensitive(stores: Stores) -> None:
    assert parse_keystore(stores.read("keytool.jks"), " jks ", STORE_PASSWORD).store_type == "JKS"


def test_iteration_limits(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> None:
    data = stores.read("openssl.p12")  # openssl's default: 2048 iterations
    monkeypatch.setattr(keystores, "MAX_ITERATIONS", 1000)
    with pytest.raises(KeystoreError) as info:
        parse_keystore(data, "PKCS12", OPENSSL_PASSWORD)
    assert info.value.reason == (
        "Keystore file uses an iteration count of 2048, which is not supported!"
    )
    monkeypatch.setattr(keystores, "MAX_ITERATIONS", 5_000_000)
    monkeypatch.setattr(keystores, "MAX_TOTAL_ITERATIONS", 5000)
    with pytest.raises(KeystoreError) as info:
        parse_keystore(data, "PKCS12", OPENSSL_PASSWORD)
    assert info.value.reason == (
        "The keystores of this request need more than 5000 key derivation iterations in"
        " total, which is not supported!"
    )


def test_repr_shows_no_key_material(stores: Stores) -> None:
    parsed = parse_keystore(stores.read("keytool.p12"), "PKCS12", STORE_PASSWORD)
    for entry in parsed.entries:
        text = repr(entry)
        assert entry.alias in text
        assert "private_der" not in text and "secret=" not in text
        if entry.secret:
            assert PASSWORD_SECRET not in text


# --- Java's tools: key passwords, JCEKS, trust stores without a password (issue 8, item 9) ---


@pytest.fixture(scope="module")
def java() -> JavaStores:
    return java_stores()


def test_jks_key_password_may_differ_from_the_store_password(java: JavaStores) -> None:
    store = java.jks_keypass
    with pytest.raises(KeystoreError) as info:
        parse_keystore(store.data, "JKS", store.password)
    assert info.value.reason == "Key password is incorrect for alias (signer)!"
    parsed = parse_keystore(store.data, "JKS", store.password, java.key_password)
    (entry,) = parsed.entries
    assert (entry.alias, entry.kind) == ("signer", "PRIVATE_KEY")
    assert entry.private_der is not None and entry.certificate is not None
    with pytest.raises(KeystoreError) as info:
        parse_keystore(store.data, "JKS", "wrong", java.key_password)
    assert info.value.reason == PASSWORD_REASON


def test_jceks_key_pairs_secret_keys_and_certificates(java: JavaStores) -> None:
    parsed = parse_keystore(java.jceks.data, "jceks", java.jceks.password)
    assert parsed.store_type == "JCEKS"
    assert [(e.alias, e.kind) for e in parsed.entries] == [
        ("aes-key", "SECRET_KEY"),
        ("signer", "PRIVATE_KEY"),
        ("trusted-ca", "TRUSTED_CERTIFICATE"),
    ]
    secret = parsed.entries[0]
    assert secret.secret_algorithm == "AES" and secret.secret is not None
    assert len(secret.secret) == 32
    with pytest.raises(KeystoreError) as info:
        parse_keystore(java.jceks.data, "JCEKS", "wrong")
    assert info.value.reason == PASSWORD_REASON
    with pytest.raises(KeystoreError) as info:
        parse_keystore(java.jceks.data, "JKS", java.jceks.password)
    assert info.value.reason == "Keystore file is a JCEKS keystore, but type is JKS!"


def test_trusted_certificates_open_without_a_password(java: JavaStores) -> None:
    for store in (java.jks_trust, java.p12_trust_clear):
        for password in (None, ""):
            parsed = parse_keystore(store.data, store.type, password)
            (entry,) = parsed.entries
            assert (entry.alias, entry.kind) == ("trusted-ca", "TRUSTED_CERTIFICATE")
            assert entry.certificate is not None
            assert entry.certificate.der == java.trusted.public_bytes(serialization.Encoding.DER)
    # With a password it is checked as before.
    assert parse_keystore(java.p12_trust.data, "PKCS12", java.p12_trust.password).entries
    with pytest.raises(KeystoreError) as info:
        parse_keystore(java.jks_trust.data, "JKS", "wrong")
    assert info.value.reason == PASSWORD_REASON


@pytest.mark.parametrize(
    ("which", "reason"),
    [
        (
            "jks_keypass",
            "password value can not be empty: the keystore holds private or secret keys!",
        ),
        ("jceks", "password value can not be empty: the keystore holds private or secret keys!"),
        ("p12_trust", "password value can not be empty: the keystore file has encrypted content!"),
    ],
)
def test_keys_and_encrypted_content_need_a_password(
    java: JavaStores, which: str, reason: str
) -> None:
    store: BuiltStore = getattr(java, which)
    with pytest.raises(KeystoreError) as info:
        parse_keystore(store.data, store.type, None)
    assert info.value.reason == reason


def test_a_key_password_needs_a_store_password(java: JavaStores) -> None:
    with pytest.raises(KeystoreError) as info:
        parse_keystore(java.jks_keypass.data, "JKS", None, java.key_password)
    assert info.value.reason == "password value can not be empty!"


# --- one budget per request, checked before deriving (issue 8, item 2) -----------------------


def test_one_budget_covers_every_keystore_of_a_request(stores: Stores) -> None:
    data = stores.read("openssl.p12")  # MAC, certificates and key: 3 x 2048 iterations (+IV)
    budget = KeystoreBudget(total=10_000)
    parse_keystore(data, "PKCS12", OPENSSL_PASSWORD, budget=budget)
    spent = 10_000 - budget.left
    assert spent >= 3 * 2048
    with pytest.raises(KeystoreError) as info:
        parse_keystore(data, "PKCS12", OPENSSL_PASSWORD, budget=budget)
    assert info.value.reason == (
        "The keystores of this request need more than 10000 key derivation iterations in"
        " total, which is not supported!"
    )
    # Nothing was derived for the refused one: its visible cost was checked first.
    assert 10_000 - budget.left == spent


def test_an_over_budget_store_is_refused_before_any_derivation(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_derivation(*args: object) -> bytes:
        raise AssertionError("derived a key for an over-budget store")

    monkeypatch.setattr(keystores, "_python_kdf", no_derivation)
    monkeypatch.setattr(keystores, "_native_kdf", lambda: None)
    monkeypatch.setattr(keystores.hashlib, "pbkdf2_hmac", no_derivation)
    with pytest.raises(KeystoreError) as info:
        parse_keystore(
            stores.read("openssl.p12"), "PKCS12", OPENSSL_PASSWORD, budget=KeystoreBudget(3000)
        )
    assert info.value.reason == (
        "The keystores of this request need more than 3000 key derivation iterations in"
        " total, which is not supported!"
    )


def test_the_pkcs12_kdf_runs_in_openssl_and_agrees_with_rfc_7292() -> None:
    native = keystores._native_kdf()
    assert native is not None, "libcrypto's PKCS12_key_gen_uni could not be loaded"
    password = "pässword".encode("utf-16-be") + b"\x00\x00"
    for hash_name in ("sha1", "sha256", "sha512"):
        for purpose, size in ((1, 24), (2, 8), (3, 20), (1, 70)):
            assert native(hash_name, password, b"salt", purpose, 1000, size) == (
                keystores._python_kdf(hash_name, password, b"salt", purpose, 1000, size)
            )


def test_jceks_key_derivations_count_against_the_budget(java: JavaStores) -> None:
    # keytool protects each JCEKS key with PBEWithMD5AndTripleDES (pyjks: pure Python, so
    # each iteration counts ten times); the whole store is checked before any of it runs.
    budget = KeystoreBudget(total=1_000_000)
    with pytest.raises(KeystoreError) as info:
        parse_keystore(java.jceks.data, "JCEKS", java.jceks.password, budget=budget)
    assert info.value.reason == (
        "The keystores of this request need more than 1000000 key derivation iterations in"
        " total, which is not supported!"
    )
    assert budget.left == 1_000_000
    budget = KeystoreBudget()
    parse_keystore(java.jceks.data, "JCEKS", java.jceks.password, budget=budget)
    assert budget.total - budget.left > 1_000_000
