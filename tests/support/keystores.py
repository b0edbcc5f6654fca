"""Keystores made at test time by Java's keytool and by ``openssl pkcs12 -export``.

``keystores()`` builds them once per test process (keytool starts a JVM per call, so the
calls run side by side). Each ``BuiltStore`` knows its entries as an independent reader
sees them: keytool-made stores are exported to PKCS#12 by keytool and read back with
pyca/cryptography, so the tests know the private keys keytool generated.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.crypto import certs
from tests.support.databases import in_ci


@dataclass(frozen=True)
class Entry:
    alias: str  # as keytool -list shows it (lower case)
    kind: str  # PRIVATE_KEY or TRUSTED_CERTIFICATE
    cert: x509.Certificate
    chain_length: int = 1
    key: PrivateKeyTypes | None = None

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.cert_der, usedforsecurity=False).hexdigest().upper()


@dataclass(frozen=True)
class BuiltStore:
    type: str  # JKS or PKCS12
    data: bytes
    password: str
    entries: dict[str, Entry] = field(default_factory=dict)


@dataclass(frozen=True)
class Stores:
    jks_a: BuiltStore  # keytool JKS: RSA "Signer" (stored as "signer") + trusted "Trusted-CA"
    jks_b: BuiltStore  # keytool JKS: another RSA key under the same alias
    jks_ec: BuiltStore  # keytool JKS: an EC P-256 key under the same alias
    keytool_p12: BuiltStore  # keytool PKCS12: EC P-256 "EC-Signer"
    openssl_p12: BuiltStore  # openssl pkcs12 -export: EC P-256 leaf + its CA, "openssl-ec"


def require_tools() -> None:
    """Skip on a developer machine without a JDK or openssl; in CI they must be there."""
    for tool in ("keytool", "openssl"):
        if shutil.which(tool) is None:
            if in_ci():
                pytest.fail(f"{tool} is not installed; with CI=true it must be", pytrace=False)
            pytest.skip(f"{tool} is not installed")


def keytool(*args: str) -> None:
    command = [
        "keytool",
        "-J-Duser.language=en",
        "-J-Duser.country=US",
        "-J-XX:TieredStopAtLevel=1",
        "-J-XX:+UseSerialGC",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, check=False, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"keytool {args[0]} failed: {result.stdout!r} {result.stderr!r}")


def _read_back(path: Path, store_type: str, password: str, work: Path) -> dict[str, Entry]:
    """The entries of a keytool store, read by pyca from keytool's own PKCS#12 export."""
    p12 = work / (path.name + ".export.p12")
    if store_type == "PKCS12":
        shutil.copy(path, p12)
    else:
        keytool(
            "-importkeystore", "-noprompt",
            "-srckeystore", str(path), "-srcstoretype", store_type, "-srcstorepass", password,
            "-destkeystore", str(p12), "-deststoretype", "PKCS12", "-deststorepass", password,
        )  # fmt: skip
    loaded = pkcs12.load_pkcs12(p12.read_bytes(), password.encode())
    entries: dict[str, Entry] = {}
    if loaded.key is not None and loaded.cert is not None:
        alias = (loaded.cert.friendly_name or b"").decode()
        entries[alias] = Entry(alias, "PRIVATE_KEY", loaded.cert.certificate, key=loaded.key)
    for extra in loaded.additional_certs:
        alias = (extra.friendly_name or b"").decode()
        entries[alias] = Entry(alias, "TRUSTED_CERTIFICATE", extra.certificate)
    return entries


def _keytool_store(
    work: Path,
    file: str,
    store_type: str,
    password: str,
    *,
    alias: str,
    keyalg: list[str],
    cn: str,
    trusted: tuple[str, Path] | None = None,
) -> BuiltStore:
    path = work / file
    store = ["-storetype", store_type, "-keystore", str(path), "-storepass", password]
    keytool(
        "-genkeypair", "-alias", alias, *keyalg, "-dname", f"CN={cn}, O=keyops tests",
        "-validity", "30", *store,
    )  # fmt: skip
    if trusted is not None:
        keytool("-importcert", "-noprompt", "-alias", trusted[0], "-file", str(trusted[1]), *store)
    return BuiltStore(
        store_type, path.read_bytes(), password, _read_back(path, store_type, password, work)
    )


def _openssl_store(work: Path, password: str) -> BuiltStore:
    ca = certs.make_cert(
        certs.name(("COUNTRY_NAME", "US"), ("COMMON_NAME", "keyops openssl CA")),
        certs.new_key("p256"),
        ca=True,
    )
    leaf = certs.make_cert(
        certs.name(("COUNTRY_NAME", "US"), ("COMMON_NAME", "openssl-leaf.example")),
        certs.new_key("p256"),
        issuer=ca,
    )
    (work / "leaf.pem").write_bytes(leaf.pem)
    (work / "leaf.key").write_bytes(leaf.key_pem)
    (work / "ca.pem").write_bytes(ca.pem)
    out = work / "openssl.p12"
    certs.openssl(
        "pkcs12", "-export", "-name", "openssl-ec",
        "-inkey", str(work / "leaf.key"), "-in", str(work / "leaf.pem"),
        "-certfile", str(work / "ca.pem"),
        "-passout", f"pass:{password}", "-out", str(out),
    )  # fmt: skip
    entries = {"openssl-ec": Entry("openssl-ec", "PRIVATE_KEY", leaf.cert, 2, leaf.key)}
    return BuiltStore("PKCS12", out.read_bytes(), password, entries)


@functools.cache
def keystores() -> Stores:
    require_tools()
    work = Path(tempfile.mkdtemp(prefix="keyops-keystores-"))
    atexit.register(shutil.rmtree, work, True)
    trusted = certs.make_cert(
        certs.name(("COUNTRY_NAME", "US"), ("COMMON_NAME", "keyops trusted root")),
        certs.new_key("p384"),
        ca=True,
    )
    (work / "trusted.pem").write_bytes(trusted.pem)
    rsa = ["-keyalg", "RSA", "-keysize", "2048"]
    ec = ["-keyalg", "EC", "-groupname", "secp256r1"]
    with ThreadPoolExecutor(5) as pool:
        a = pool.submit(
            _keytool_store, work, "a.jks", "JKS", "jks-A-pass-" + os.urandom(4).hex(),
            alias="Signer", keyalg=rsa, cn="signer-a", trusted=("Trusted-CA", work / "trusted.pem"),
        )  # fmt: skip
        b = pool.submit(
            _keytool_store, work, "b.jks", "JKS", "jks-B-pass-" + os.urandom(4).hex(),
            alias="Signer", keyalg=rsa, cn="signer-b",
        )  # fmt: skip
        e = pool.submit(
            _keytool_store, work, "e.jks", "JKS", "jks-E-pass-" + os.urandom(4).hex(),
            alias="Signer", keyalg=ec, cn="signer-ec",
        )  # fmt: skip
        p = pool.submit(
            _keytool_store, work, "k.p12", "PKCS12", "p12-K-pass-" + os.urandom(4).hex(),
            alias="EC-Signer", keyalg=ec, cn="ec-signer",
        )  # fmt: skip
        o = pool.submit(_openssl_store, work, "p12-O-pass-" + os.urandom(4).hex())
        return Stores(a.result(), b.result(), e.result(), p.result(), o.result())


@dataclass(frozen=True)
class JavaStores:
    """Stores as Java's tools make them, beyond keytool's defaults (issue 8, item 9)."""

    jks_keypass: BuiltStore  # JKS, -keypass differs from -storepass: EC "Signer"
    key_password: str
    jceks: BuiltStore  # JCEKS: EC "Signer", AES-256 secret "AES-Key", trusted "Trusted-CA"
    jks_trust: BuiltStore  # JKS of one trusted certificate "Trusted-CA"
    p12_trust: BuiltStore  # keytool PKCS12 of one trusted certificate (certificate encrypted)
    p12_trust_clear: BuiltStore  # the same with certProtectionAlgorithm=NONE
    trusted: x509.Certificate


@functools.cache
def java_stores() -> JavaStores:
    require_tools()
    work = Path(tempfile.mkdtemp(prefix="keyops-java-stores-"))
    atexit.register(shutil.rmtree, work, True)
    trusted = certs.make_cert(
        certs.name(("COUNTRY_NAME", "US"), ("COMMON_NAME", "keyops java trusted root")),
        certs.new_key("p256"),
        ca=True,
    )
    pem = work / "trusted.pem"
    pem.write_bytes(trusted.pem)
    ec = ["-keyalg", "EC", "-groupname", "secp256r1"]
    key_password = "key-pass-" + os.urandom(4).hex()

    def jks_keypass() -> BuiltStore:
        password = "jks-S-pass-" + os.urandom(4).hex()
        path = work / "keypass.jks"
        keytool(
            "-genkeypair", "-alias", "Signer", *ec, "-dname", "CN=keypass, O=keyops tests",
            "-validity", "30", "-storetype", "JKS", "-keystore", str(path),
            "-storepass", password, "-keypass", key_password,
        )  # fmt: skip
        return BuiltStore("JKS", path.read_bytes(), password)

    def jceks() -> BuiltStore:
        password = "jceks-pass-" + os.urandom(4).hex()
        path = work / "store.jceks"
        store = ["-storetype", "JCEKS", "-keystore", str(path), "-storepass", password]
        keytool(
            "-genkeypair", "-alias", "Signer", *ec, "-dname", "CN=jceks, O=keyops tests",
            "-validity", "30", *store,
        )  # fmt: skip
        keytool("-genseckey", "-alias", "AES-Key", "-keyalg", "AES", "-keysize", "256", *store)
        keytool("-importcert", "-noprompt", "-alias", "Trusted-CA", "-file", str(pem), *store)
        return BuiltStore("JCEKS", path.read_bytes(), password)

    def trust(file: str, store_type: str, *java_options: str) -> BuiltStore:
        password = "trust-pass-" + os.urandom(4).hex()
        path = work / file
        keytool(
            *java_options, "-importcert", "-noprompt", "-alias", "Trusted-CA", "-file", str(pem),
            "-storetype", store_type, "-keystore", str(path), "-storepass", password,
        )  # fmt: skip
        return BuiltStore(store_type, path.read_bytes(), password)

    with ThreadPoolExecutor(5) as pool:
        k = pool.submit(jks_keypass)
        j = pool.submit(jceks)
        t = pool.submit(trust, "trust.jks", "JKS")
        p = pool.submit(trust, "trust.p12", "PKCS12")
        c = pool.submit(
            trust, "trust-clear.p12", "PKCS12", "-J-Dkeystore.pkcs12.certProtectionAlgorithm=NONE"
        )
        return JavaStores(
            k.result(), key_password, j.result(), t.result(), p.result(), c.result(), trusted.cert
        )
