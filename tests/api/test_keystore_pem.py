"""Keystores of ``type: PEM``: a private key and its certificate chain as PEM text,
converted on the way in into a PKCS12 keystore of one entry (alias ``1``).

Pages: create-keystore.md, update-keystore.md, get-keystore.md; issue 15 item 7. What
keyops stores is read back independently: by pyca/cryptography's PKCS#12 loader, by
Java's keytool, and by the gateway node's own snapshot code from a real sync. The keys
and certificates are made by pyca and, where their encodings differ, by the openssl CLI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from keyops.gateway.snapshot import build_state, parse_snapshot
from tests.conftest import Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import Setting, new_setting
from tests.support.keysecrets import (
    SecretsApi,
    b64,
    bad_request,
    held,
    jwcrypto_private,
    pkcs8_der,
    snapshot,
)
from tests.support.keystores import require_tools

KEYSTORES = "keystores"
PASSWORD = "pem-store-pw-1"
KEY_PASSWORD = "pem-key-pw-2"
ALIAS = "1"
NO_KEY = (
    "Keystore file holds no private key: a PEM keystore needs the private key and its"
    " certificate chain!"
)
NO_CERTIFICATE = (
    "Keystore file holds no certificate: a PEM keystore needs the private key and its"
    " certificate chain!"
)
WRONG_KEY_PASSWORD = "Key password is incorrect for the private key of the keystore file!"


# --- material -------------------------------------------------------------------------------


def subject(cn: str) -> x509.Name:
    return certs.name(
        ("COUNTRY_NAME", "US"), ("ORGANIZATION_NAME", "PEM Test"), ("COMMON_NAME", cn)
    )


def java_dn(cn: str) -> str:
    """What Java (and keyops) print for ``subject(cn)``."""
    return f"CN={cn}, O=PEM Test, C=US"


@dataclass(frozen=True)
class Chain:
    """A key and its chain, leaf first; ``names`` are the CNs in the same order."""

    key: PrivateKeyTypes
    chain: list[certs.Issued]
    names: list[str]

    @property
    def leaf(self) -> certs.Issued:
        return self.chain[0]

    def pem(self, *, order: str = "forward", key: bytes | None = None) -> bytes:
        """Key first, then the chain leaf to root ("forward") or root to leaf ("reversed")."""
        chain = self.chain if order == "forward" else list(reversed(self.chain))
        key_pem = certs.key_pem(self.key) if key is None else key
        return key_pem + b"".join(c.pem for c in chain)

    def ders(self) -> list[bytes]:
        return [c.der for c in self.chain]


def make_chain(kind: str, length: int) -> Chain:
    tag = unique(kind)
    names = [f"leaf.{tag}.example", f"issuing.{tag}.example", f"root.{tag}.example"][:length]
    names_up = list(reversed(names))
    issuer: certs.Issued | None = None
    made: list[certs.Issued] = []
    for index, cn in enumerate(names_up):
        is_leaf = index == len(names_up) - 1
        key = certs.new_key(kind) if is_leaf else certs.key("p384" if index else "rsa2048")
        issuer = certs.make_cert(subject(cn), key, issuer=issuer, ca=not is_leaf)
        made.append(issuer)
    chain = list(reversed(made))
    return Chain(chain[0].key, chain, names)


def encrypted_pkcs8(key: PrivateKeyTypes, password: str) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )


def encrypted_traditional(key: PrivateKeyTypes, password: str) -> bytes:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(password.encode()),
    )
    assert b"Proc-Type: 4,ENCRYPTED" in pem
    return pem


def lines_before(*parts: bytes) -> int:
    """The line number the next part starts at, after these parts."""
    return b"".join(parts).count(b"\n") + 1


@dataclass(frozen=True)
class Kit:
    rsa3: Chain  # RSA leaf, EC P-384 intermediate, RSA root
    ec2: Chain  # EC P-256 leaf, RSA root
    other: certs.Issued  # unrelated self-signed EC certificate


@pytest.fixture(scope="module")
def kit() -> Kit:
    return Kit(
        make_chain("rsa2048", 3),
        make_chain("p256", 2),
        certs.make_cert(subject("other.example"), certs.new_key("p256")),
    )


@pytest_asyncio.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    return await new_setting(client, admin_token, factory, envs=2)


def api_of(s: Setting) -> SecretsApi:
    return SecretsApi(s.client, s.admin_token, s.project)


def pem_entry(env: str, data: bytes, *, text: bool = False, **override: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "environmentName": env,
        "type": "PEM",
        "file": data.decode("latin-1") if text else b64(data),
        "password": PASSWORD,
    }
    entry.update(override)
    return {k: v for k, v in entry.items() if v is not None}


def body(name: str, *entries: dict[str, Any], description: str = "TLS from PEM") -> dict[str, Any]:
    return {"name": name, "description": description, "keyStoreEnvironmentList": list(entries)}


def expected_entry(chain: Chain) -> dict[str, Any]:
    leaf = chain.leaf.cert
    return {
        "alias": ALIAS,
        "kind": "PRIVATE_KEY",
        "subjectDn": java_dn(chain.names[0]),
        "issuerDn": java_dn(chain.names[1] if len(chain.names) > 1 else chain.names[0]),
        "sha1Thumbprint": hashlib.sha1(chain.leaf.der, usedforsecurity=False).hexdigest().upper(),
        "startDate": leaf.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "endDate": leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "keyType": "RSA" if chain.names[0].startswith("leaf.rsa") else "EC",
        "chainLength": len(chain.chain),
    }


async def stored(api: SecretsApi, name: str) -> dict[str, Any]:
    """The one keystore environment of a keystore, as get shows it."""
    item = await api.one(KEYSTORES, name)
    (env,) = item["keyStoreEnvironmentList"]
    return env  # type: ignore[no-any-return]


def check_pkcs12(data: bytes, chain: Chain) -> None:
    """The stored file, read by pyca: one key entry under the store password alone."""
    loaded = pkcs12.load_pkcs12(data, PASSWORD.encode())
    assert loaded.key is not None and loaded.cert is not None
    assert pkcs8_der(loaded.key) == pkcs8_der(chain.key)
    assert loaded.cert.friendly_name == ALIAS.encode()
    assert [loaded.cert.certificate, *(c.certificate for c in loaded.additional_certs)] == [
        c.cert for c in chain.chain
    ]


def keytool_list(data: bytes, tmp_path: Path) -> str:
    """``keytool -list -v`` of a PKCS12 file opened with the store password only."""
    require_tools()
    path = tmp_path / f"{unique('ks')}.p12"
    path.write_bytes(data)
    result = subprocess.run(
        [
            "keytool",
            "-J-Duser.language=en",
            "-J-Duser.country=US",
            "-J-XX:TieredStopAtLevel=1",
            "-J-XX:+UseSerialGC",
            "-list",
            "-v",
            "-storetype",
            "PKCS12",
            "-keystore",
            str(path),
            "-storepass",
            PASSWORD,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def check_keytool(data: bytes, chain: Chain, tmp_path: Path) -> None:
    out = keytool_list(data, tmp_path)
    assert "Your keystore contains 1 entry" in out
    assert f"Alias name: {ALIAS}\n" in out
    assert "Entry type: PrivateKeyEntry" in out
    assert f"Certificate chain length: {len(chain.chain)}\n" in out
    owners = [line[len("Owner: ") :] for line in out.splitlines() if line.startswith("Owner: ")]
    assert owners == [java_dn(cn) for cn in chain.names]


# --- create ------------------------------------------------------------------------------------


def _duplicate_leaf(chain: Chain) -> bytes:
    # `cat cert.pem fullchain.pem`: the leaf twice counts once.
    return chain.leaf.pem + chain.pem()


def _key_in_the_middle(chain: Chain) -> bytes:
    return (
        chain.chain[-1].pem + certs.key_pem(chain.key) + b"".join(c.pem for c in chain.chain[:-1])
    )


def _with_text_around(chain: Chain) -> bytes:
    # `openssl x509 -text` output and bag attributes around the blocks; CRLF line ends.
    text = b"Bag Attributes\n    friendlyName: server\nsubject=/CN=x\n" + chain.pem(
        order="reversed"
    )
    return text.replace(b"\n", b"\r\n")


LAYOUTS: dict[str, Callable[[Chain], bytes]] = {
    "forward": lambda c: c.pem(),
    "reversed": lambda c: c.pem(order="reversed"),
    "key-last": lambda c: b"".join(x.pem for x in c.chain) + certs.key_pem(c.key),
    "key-in-the-middle": _key_in_the_middle,
    "duplicate-leaf": _duplicate_leaf,
    "text-around": _with_text_around,
}


@pytest.mark.parametrize(
    ("which", "layout", "as_text", "sent_type"),
    [
        ("rsa3", "forward", False, "PEM"),
        ("rsa3", "reversed", True, "pem"),
        ("rsa3", "key-in-the-middle", False, " PEM "),
        ("ec2", "reversed", False, "PEM"),
        ("ec2", "key-last", True, "PEM"),
        ("ec2", "duplicate-leaf", False, "PEM"),
        ("ec2", "text-around", True, "PEM"),
    ],
)
async def test_create_from_pem(
    s: Setting, kit: Kit, tmp_path: Path, which: str, layout: str, as_text: bool, sent_type: str
) -> None:
    chain: Chain = getattr(kit, which)
    api = api_of(s)
    data = LAYOUTS[layout](chain)
    answer = await api.post_ok(
        KEYSTORES,
        body(
            "tls",
            pem_entry(s.envs[0], data, text=as_text, type=sent_type),
            pem_entry(s.envs[1], data, text=as_text, type=sent_type),
        ),
    )
    assert answer["deploymentResult"]["success"] is True
    item = await api.one(KEYSTORES, "tls")
    assert item["description"] == "TLS from PEM"
    assert [e["environmentName"] for e in item["keyStoreEnvironmentList"]] == s.envs
    files = set()
    for env in item["keyStoreEnvironmentList"]:
        # Stored, shown and deployed as the PKCS12 file it was converted into.
        assert env["type"] == "PKCS12"
        assert env["entries"] == [expected_entry(chain)]
        file = base64.b64decode(env["file"])
        check_pkcs12(file, chain)
        files.add(file)
    # The same PEM in two environments is converted once.
    assert len(files) == 1
    check_keytool(files.pop(), chain, tmp_path)
    assert PASSWORD not in str(item)
    for env_name in s.envs:
        assert (s.project, "tls") in await held(s.client, s.admin_token, env_name, "keystore")
    listed = await api.list_ok(KEYSTORES)
    assert [e["entries"] for e in listed[0]["keyStoreEnvironmentList"]] == [
        [expected_entry(chain)]
    ] * 2


def _openssl_ecparam(work: Path) -> tuple[bytes, bytes]:
    # `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
    key = certs.openssl("ecparam", "-genkey", "-name", "prime256v1")
    assert key.startswith(b"-----BEGIN EC PARAMETERS-----")
    (work / "k.pem").write_bytes(key)
    cert = certs.openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        str(work / "k.pem"),
        "-subj",
        "/CN=ecparam.example",
        "-days",
        "30",
    )
    return key, cert


def _openssl_encrypted(work: Path) -> tuple[bytes, bytes]:
    # OpenSSL's own PBES2 encryption (AES-256-CBC, PBKDF2-HMAC-SHA256, 2048 iterations).
    key = certs.openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
        "-aes-256-cbc", "-pass", f"pass:{KEY_PASSWORD}",
    )  # fmt: skip
    assert key.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    (work / "k.pem").write_bytes(key)
    cert = certs.openssl(
        "req", "-x509", "-new", "-key", str(work / "k.pem"), "-passin", f"pass:{KEY_PASSWORD}",
        "-subj", "/CN=encrypted.example", "-days", "30",
    )  # fmt: skip
    return key, cert


@pytest.mark.parametrize("case", ["pkcs8", "pkcs8-store-password", "traditional", "openssl"])
async def test_encrypted_and_openssl_keys(s: Setting, kit: Kit, tmp_path: Path, case: str) -> None:
    """An encrypted key opens with keyPassword (default: password); the stored PKCS12 file
    then opens with the store password alone, as keytool shows."""
    api = api_of(s)
    chain = kit.ec2
    key_password: str | None = KEY_PASSWORD
    if case == "pkcs8":
        data = chain.pem(key=encrypted_pkcs8(chain.key, KEY_PASSWORD))
    elif case == "pkcs8-store-password":
        data = chain.pem(key=encrypted_pkcs8(chain.key, PASSWORD))
        key_password = None
    elif case == "traditional":
        data = chain.pem(key=encrypted_traditional(chain.key, KEY_PASSWORD))
    else:
        key, cert = _openssl_encrypted(tmp_path)
        data = cert + key
    await api.post_ok(KEYSTORES, body("ks", pem_entry(s.envs[0], data, keyPassword=key_password)))
    env = await stored(api, "ks")
    file = base64.b64decode(env["file"])
    (entry,) = env["entries"]
    assert entry["alias"] == ALIAS and entry["kind"] == "PRIVATE_KEY"
    if case == "openssl":
        assert entry["subjectDn"] == "CN=encrypted.example" and entry["chainLength"] == 1
        loaded = pkcs12.load_pkcs12(file, PASSWORD.encode())
        assert loaded.key is not None
        opened = serialization.load_pem_private_key(key, KEY_PASSWORD.encode())
        assert pkcs8_der(loaded.key) == pkcs8_der(opened)
        assert "Owner: CN=encrypted.example" in keytool_list(file, tmp_path)
    else:
        assert entry == expected_entry(chain)
        check_pkcs12(file, chain)
        check_keytool(file, chain, tmp_path)
    text = str(await api.one(KEYSTORES, "ks"))
    assert PASSWORD not in text and KEY_PASSWORD not in text


async def test_openssl_ecparam_key(s: Setting, tmp_path: Path) -> None:
    api = api_of(s)
    key, cert = _openssl_ecparam(tmp_path)
    await api.post_ok(KEYSTORES, body("ks", pem_entry(s.envs[0], key + cert, text=True)))
    (entry,) = (await stored(api, "ks"))["entries"]
    assert entry["subjectDn"] == "CN=ecparam.example" and entry["keyType"] == "EC"
    loaded = pkcs12.load_pkcs12(
        base64.b64decode((await stored(api, "ks"))["file"]), PASSWORD.encode()
    )
    assert loaded.key is not None
    assert pkcs8_der(loaded.key) == pkcs8_der(serialization.load_pem_private_key(key, None))


# --- update, JWKs, history --------------------------------------------------------------------


async def _jwk_from_alias(api: SecretsApi, name: str, keystore: str, env: str, alg: str) -> None:
    await api.post_ok(
        "jwks",
        {
            "name": name,
            "keyStoreName": keystore,
            "environmentName": env,
            "aliasName": ALIAS,
            "useType": "SIGNATURE",
            "algorithm": alg,
        },
        sub="parse-from-keystore",
    )


async def test_update_with_pem_rederives_jwks_and_keeps_history(
    s: Setting, kit: Kit, tmp_path: Path
) -> None:
    api = api_of(s)
    first = kit.ec2
    await api.post_ok(KEYSTORES, body("tls", pem_entry(s.envs[0], first.pem())))
    await _jwk_from_alias(api, "tls-jwk", "tls", s.envs[0], "ES256")
    jwk = (await api.jwk("tls-jwk"))["jwk"]
    assert jwk["d"] == jwcrypto_private(first.key)["d"]
    assert jwk["x5c"] == [b64(d) for d in first.ders()]

    # The rotation: a new key and certificate from the same CA, in reversed order.
    second = make_chain("p256", 2)
    answer = await api.put_ok(
        KEYSTORES,
        "tls",
        body("tls", pem_entry(s.envs[0], second.pem(order="reversed"), text=True)),
        "updateReferencedJwks=true&updateScope=SAME_PROJECT",
    )
    assert answer["deploymentResult"]["success"] is True
    env = await stored(api, "tls")
    assert env["type"] == "PKCS12" and env["entries"] == [expected_entry(second)]
    check_keytool(base64.b64decode(env["file"]), second, tmp_path)
    jwk = (await api.jwk("tls-jwk"))["jwk"]
    assert jwk["d"] == jwcrypto_private(second.key)["d"]
    assert jwk["x5c"] == [b64(d) for d in second.ders()]

    # The replaced version is a PKCS12 keystore like any other, and rolls back.
    r = await s.client.get(api.path(KEYSTORES, "tls") + "versions/", headers=api.headers)
    assert r.status_code == 200, r.text
    (version,) = r.json()["resultList"]
    (facts,) = version["environmentList"]
    assert facts["type"] == "PKCS12" and facts["subjectDn"] == java_dn(first.names[0])
    r = await s.client.post(api.path(KEYSTORES, "tls") + "rollback?version=1", headers=api.headers)
    assert r.status_code == 200, r.text
    assert (await stored(api, "tls"))["entries"] == [expected_entry(first)]


async def test_update_replaces_a_pkcs12_keystore_under_the_same_alias(s: Setting, kit: Kit) -> None:
    """A keystore from `openssl pkcs12 -export` without -name (alias 1) rotates to PEM."""
    api = api_of(s)
    first = kit.rsa3
    p12 = pkcs12.serialize_key_and_certificates(
        None,
        first.key,  # type: ignore[arg-type]
        first.leaf.cert,
        [c.cert for c in first.chain[1:]],
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    entry = {"environmentName": s.envs[0], "type": "PKCS12", "file": b64(p12), "password": PASSWORD}
    await api.post_ok(KEYSTORES, body("tls", entry))
    assert [e["alias"] for e in (await stored(api, "tls"))["entries"]] == [ALIAS]
    await _jwk_from_alias(api, "tls-jwk", "tls", s.envs[0], "RS256")
    second = make_chain("rsa2048", 3)
    await api.put_ok(
        KEYSTORES,
        "tls",
        body("tls", pem_entry(s.envs[0], second.pem())),
        "jwkUpdateAction=UPDATE&updateScope=SAME_PROJECT",
    )
    assert (await stored(api, "tls"))["entries"] == [expected_entry(second)]
    assert (await api.jwk("tls-jwk"))["jwk"]["n"] == jwcrypto_private(second.key)["n"]


# --- the gateway node -------------------------------------------------------------------------


async def test_a_gateway_node_serves_a_pem_keystore(s: Setting, kit: Kit) -> None:
    """Downstream unchanged: the TLS identity accepts alias 1, and a node's sync holds a
    PKCS12 keystore without keyPassword that the node's own code opens and serves."""
    api = api_of(s)
    chain = kit.rsa3
    data = chain.pem(key=encrypted_pkcs8(chain.key, KEY_PASSWORD), order="reversed")
    await api.post_ok(KEYSTORES, body("tls", pem_entry(s.envs[0], data, keyPassword=KEY_PASSWORD)))
    env = s.envs[0]
    admin = bearer(s.admin_token)
    r = await s.client.put(
        f"/apiops/admin/environments/{env}/tls-identity/",
        json={"projectName": s.project, "keyStoreName": "tls", "aliasName": ALIAS},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    r = await s.client.post(
        f"/apiops/admin/environments/{env}/node-tokens/", json={"name": "gw"}, headers=admin
    )
    assert r.status_code == 200, r.text
    node = bearer(r.json()["result"]["token"])
    r = await s.client.get(
        "/apiops/gateway/sync/", params={"node": "pem-node", "since": -1}, headers=node
    )
    assert r.status_code == 200, r.text
    try:
        snap = parse_snapshot(r.content)
        (artifact,) = [a for a in snap.artifacts if a.kind == "keystore"]
        doc = json.loads(artifact.content)
        assert doc["type"] == "PKCS12" and doc["password"] == PASSWORD
        assert "keyPassword" not in doc
        state = build_state(snap, env, open_keystores=True)
        assert state.identity is not None
        assert list(state.identity.chain_der) == chain.ders()
        assert state.identity.private_key_der.reveal() == pkcs8_der(chain.key)
        (deployed,) = state.keystores
        assert [e.alias for e in deployed.entries] == [ALIAS]
    finally:
        # Goodbye: a node left connected would make later deployments wait for it.
        await s.client.request(
            "DELETE", "/apiops/gateway/sync/", params={"node": "pem-node"}, headers=node
        )


async def test_an_update_or_delete_can_not_take_away_a_tls_identity(s: Setting, kit: Kit) -> None:
    """An environment's nodes serve TLS with a keystore entry: an update that drops the
    entry (or that environment, or renames the keystore) and a delete are refused and
    change nothing; once the identity moves elsewhere, both are allowed."""
    api = api_of(s)
    env, other = s.envs
    await api.post_ok(KEYSTORES, body("tls", pem_entry(env, kit.rsa3.pem())))
    admin = bearer(s.admin_token)
    identity = f"/apiops/admin/environments/{env}/tls-identity/"
    r = await s.client.put(
        identity,
        json={"projectName": s.project, "keyStoreName": "tls", "aliasName": ALIAS},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    before = await stored(api, "tls")
    refused = (
        f"Keystore (name: tls) serves TLS in environment ({env}) with alias ({ALIAS}): keep"
        " that private key entry, under this name, in that environment, or change the"
        " environment's TLS identity first (keyops env set-tls)!"
    )
    trust_only = make_chain("p256", 1).leaf.cert.public_bytes(serialization.Encoding.PEM)
    for change in (
        body("tls", pem_entry(other, kit.rsa3.pem())),  # the environment left out
        body("other-name", pem_entry(env, kit.rsa3.pem())),  # renamed
    ):
        r = await api.put(KEYSTORES, "tls", change)
        assert r.status_code == 400, r.text
        assert r.json()["error_description"] == refused
    r = await api.put(KEYSTORES, "tls", body("tls", pem_entry(env, trust_only)))
    assert r.status_code == 400, r.text
    r = await s.client.delete(f"/apiops/projects/{s.project}/keystores/tls/", headers=admin)
    assert r.status_code == 400, r.text
    assert r.json()["error_description"] == (
        f"Keystore (name: tls) serves TLS in environment ({env}): change or clear the"
        " environment's TLS identity first (keyops env set-tls)!"
    )
    assert await stored(api, "tls") == before
    # Keeping the entry (new material, same alias) is what a rotation is: allowed.
    await api.put_ok(KEYSTORES, "tls", body("tls", pem_entry(env, kit.ec2.pem())))
    r = await s.client.put(
        identity, json={"projectName": None, "keyStoreName": None, "aliasName": None}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = await s.client.delete(f"/apiops/projects/{s.project}/keystores/tls/", headers=admin)
    assert r.status_code == 200, r.text


# --- refusals ----------------------------------------------------------------------------------


def _same_key_twice(kit: Kit) -> tuple[bytes, str]:
    chain = kit.ec2
    again = certs.make_cert(subject(chain.names[0]), chain.key, issuer=chain.chain[1])
    reason = (
        "The private key of the keystore file matches 2 certificates"
        f" ({java_dn(chain.names[0])}; {java_dn(chain.names[0])}): a PEM keystore holds"
        " exactly one certificate for its key!"
    )
    return chain.pem() + again.pem, reason


def _stray(kit: Kit) -> tuple[bytes, str]:
    head = kit.rsa3.pem()
    reason = (
        f"The certificate at line {lines_before(head)} of the keystore file"
        " (CN=other.example, O=PEM Test, C=US) is not in the chain of the key's certificate"
        f" ({java_dn(kit.rsa3.names[0])}): a PEM keystore holds only that chain!"
    )
    return head + kit.other.pem, reason


def _not_the_issuer(kit: Kit) -> tuple[bytes, str]:
    # The leaf and the root without the intermediate between them: the root is no issuer.
    chain = kit.rsa3
    head = certs.key_pem(chain.key) + chain.leaf.pem
    reason = (
        f"The certificate at line {lines_before(head)} of the keystore file"
        f" ({java_dn(chain.names[2])}) is not in the chain of the key's certificate"
        f" ({java_dn(chain.names[0])}): a PEM keystore holds only that chain!"
    )
    return head + chain.chain[2].pem, reason


def _public_key_block(kit: Kit) -> tuple[bytes, str]:
    head = kit.ec2.pem()
    public = kit.ec2.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    reason = (
        f"Keystore file holds a PUBLIC KEY block (line {lines_before(head)}): a PEM keystore"
        " holds one private key and its certificates only!"
    )
    return head + public, reason


def _bad_base64(kit: Kit) -> tuple[bytes, str]:
    key = certs.key_pem(kit.ec2.key)
    lines = kit.ec2.leaf.pem.split(b"\n")
    lines[2] = b"*" + lines[2][1:]
    cert = b"\n".join(lines)
    return key + cert, (
        f"Keystore file is not valid PEM: the CERTIFICATE block at line {lines_before(key)}"
        " is malformed!"
    )


def _garbage_block(label: str) -> bytes:
    body = base64.encodebytes(b"not a " + label.encode() + b" at all, only text").decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()


def _p12_said_pem(kit: Kit) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        b"x",
        kit.ec2.key,  # type: ignore[arg-type]
        kit.ec2.leaf.cert,
        None,
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )


def _seventeen_certificates(kit: Kit) -> bytes:
    extra = [certs.make_cert(subject(f"n{i}.example"), certs.key("p256")) for i in range(16)]
    return certs.key_pem(kit.ec2.key) + kit.ec2.leaf.pem + b"".join(c.pem for c in extra)


def _x25519(kit: Kit) -> bytes:
    issued = certs.self_signed("x25519")
    return issued.key_pem + issued.pem


def _scrypt(tmp: Path, kit: Kit) -> bytes:
    (tmp / "plain.pem").write_bytes(certs.key_pem(kit.ec2.key))
    encrypted = certs.openssl(
        "pkcs8", "-topk8", "-scrypt", "-in", str(tmp / "plain.pem"), "-passout", f"pass:{PASSWORD}"
    )
    return encrypted + kit.ec2.leaf.pem


# name -> (entry overrides made from the kit and a temporary directory, reason)
Case = Callable[[Kit, Path], dict[str, Any]]
REFUSALS: dict[str, tuple[Case, str]] = {
    "no-key": (
        lambda k, t: {"file": b64(b"".join(c.pem for c in k.rsa3.chain))},
        NO_KEY,
    ),
    "two-keys": (
        lambda k, t: {"file": b64(certs.key_pem(certs.key("p384")) + k.ec2.pem())},
        "Keystore file holds 2 private keys: a PEM keystore holds exactly one!",
    ),
    "two-keys-of-other-forms": (
        lambda k, t: {
            "file": b64(
                encrypted_pkcs8(k.ec2.key, PASSWORD)
                + encrypted_traditional(certs.key("p384"), PASSWORD)
                + k.ec2.leaf.pem
            )
        },
        "Keystore file holds 2 private keys: a PEM keystore holds exactly one!",
    ),
    "no-certificate": (lambda k, t: {"file": b64(certs.key_pem(k.ec2.key))}, NO_CERTIFICATE),
    "key-matches-no-certificate": (
        lambda k, t: {"file": b64(certs.key_pem(k.ec2.key) + k.other.pem)},
        "The private key of the keystore file does not match its certificate!",
    ),
    "key-matches-none-of-three": (
        lambda k, t: {
            "file": b64(certs.key_pem(k.ec2.key) + b"".join(c.pem for c in k.rsa3.chain))
        },
        "The private key of the keystore file matches none of its 3 certificates!",
    ),
    "key-matches-two-certificates": (
        lambda k, t: {"file": b64(_same_key_twice(k)[0])},
        "",  # from _same_key_twice
    ),
    "certificate-outside-the-chain": (lambda k, t: {"file": b64(_stray(k)[0])}, ""),
    "chain-with-a-gap": (lambda k, t: {"file": b64(_not_the_issuer(k)[0])}, ""),
    "public-key-block": (lambda k, t: {"file": b64(_public_key_block(k)[0])}, ""),
    "truncated-block": (
        lambda k, t: {"file": b64(k.ec2.leaf.pem[:-30] + b"\n" + certs.key_pem(k.ec2.key))},
        "Keystore file is not valid PEM: the CERTIFICATE block at line 1 is malformed!",
    ),
    "unterminated-block": (
        lambda k, t: {"file": b64(certs.key_pem(k.ec2.key) + k.ec2.leaf.pem[:-30])},
        "",  # line computed below
    ),
    "bad-base64-in-a-block": (lambda k, t: {"file": b64(_bad_base64(k)[0])}, ""),
    "huge-begin-line": (
        # The message shows at most 64 characters of the label.
        lambda k, t: {"file": b64(b"-----BEGIN " + b"A" * 5000 + b"-----\n" + k.ec2.pem())},
        f"Keystore file is not valid PEM: the {'A' * 64} block at line 1 is malformed!",
    ),
    "no-pem-at-all": (
        lambda k, t: {"file": b64(b"just some text\nand more\n")},
        "Keystore file holds no PEM block: a PEM keystore is a private key and its certificate"
        " chain as PEM text!",
    ),
    "pkcs12-said-pem": (
        lambda k, t: {"file": b64(_p12_said_pem(k))},
        "Keystore file is a PKCS12 keystore, but type is PEM!",
    ),
    "pem-said-pkcs12": (
        lambda k, t: {"file": b64(k.ec2.pem()), "type": "PKCS12"},
        "Keystore file is PEM text, but type is PKCS12!",
    ),
    "pem-said-jks": (
        lambda k, t: {"file": k.ec2.pem().decode(), "type": "JKS"},
        "file is not valid base64!",
    ),
    "not-a-certificate": (
        lambda k, t: {"file": b64(certs.key_pem(k.ec2.key) + _garbage_block("CERTIFICATE"))},
        "",  # line computed below
    ),
    "not-a-private-key": (
        lambda k, t: {"file": b64(_garbage_block("PRIVATE KEY") + k.ec2.leaf.pem)},
        "The private key of the keystore file is not valid!",
    ),
    "wrong-key-password": (
        lambda k, t: {
            "file": b64(k.ec2.pem(key=encrypted_pkcs8(k.ec2.key, KEY_PASSWORD))),
            "keyPassword": "not-it",
        },
        WRONG_KEY_PASSWORD,
    ),
    "encrypted-key-without-key-password": (
        lambda k, t: {"file": b64(k.ec2.pem(key=encrypted_pkcs8(k.ec2.key, KEY_PASSWORD)))},
        WRONG_KEY_PASSWORD,
    ),
    "traditional-wrong-key-password": (
        lambda k, t: {
            "file": b64(k.ec2.pem(key=encrypted_traditional(k.ec2.key, KEY_PASSWORD))),
            "keyPassword": "not-it",
        },
        WRONG_KEY_PASSWORD,
    ),
    "scrypt-encrypted-key": (
        lambda k, t: {"file": b64(_scrypt(t, k))},
        "Keystore file uses the key derivation 1.3.6.1.4.1.11591.4.11, which is not supported!",
    ),
    "no-password": (
        lambda k, t: {"file": b64(k.ec2.pem()), "password": None},
        "password value can not be empty: the keystore holds private or secret keys!",
    ),
    "key-password-without-password": (
        lambda k, t: {"file": b64(k.ec2.pem()), "password": None, "keyPassword": KEY_PASSWORD},
        "password value can not be empty!",
    ),
    "non-ascii-password": (
        lambda k, t: {"file": b64(k.ec2.pem()), "password": "pässwörd"},
        "password must be ASCII text for a PEM keystore: it becomes the password of a PKCS12"
        " file, which Java opens only with an ASCII password!",
    ),
    "seventeen-certificates": (
        lambda k, t: {"file": b64(_seventeen_certificates(k))},
        "Keystore file holds 17 certificates: a PEM keystore holds at most 16!",
    ),
    "x25519-key": (
        lambda k, t: {"file": b64(_x25519(k))},
        "The private key of the keystore file uses an algorithm a PEM keystore can not hold!",
    ),
    "not-base64": (lambda k, t: {"file": "%%%"}, "file is not valid base64!"),
    "unknown-type": (
        lambda k, t: {"file": b64(k.ec2.pem()), "type": "BKS"},
        "type (BKS) is not valid! Valid values: JKS, JCEKS, PKCS12, PEM",
    ),
}
COMPUTED = {
    "key-matches-two-certificates": lambda k: _same_key_twice(k)[1],
    "certificate-outside-the-chain": lambda k: _stray(k)[1],
    "chain-with-a-gap": lambda k: _not_the_issuer(k)[1],
    "public-key-block": lambda k: _public_key_block(k)[1],
    "bad-base64-in-a-block": lambda k: _bad_base64(k)[1],
    "unterminated-block": lambda k: (
        "Keystore file is not valid PEM: the CERTIFICATE block at line"
        f" {lines_before(certs.key_pem(k.ec2.key))} is malformed!"
    ),
    "not-a-certificate": lambda k: (
        f"The certificate at line {lines_before(certs.key_pem(k.ec2.key))} of the keystore file"
        " is not a valid X.509 certificate!"
    ),
}


def refusal(case: str, kit: Kit, tmp: Path, env: str) -> tuple[dict[str, Any], str]:
    make, reason = REFUSALS[case]
    if case in COMPUTED:
        reason = COMPUTED[case](kit)
    entry = {"environmentName": env, "type": "PEM", "password": PASSWORD}
    entry.update(make(kit, tmp))
    return {k: v for k, v in entry.items() if v is not None}, f"{reason} (environment: {env})"


def never_shows_passwords(text: str) -> None:
    assert PASSWORD not in text and KEY_PASSWORD not in text


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_create_refused_changes_nothing(
    s: Setting, kit: Kit, tmp_path: Path, case: str
) -> None:
    api = api_of(s)
    await api.post_ok(KEYSTORES, body("existing", pem_entry(s.envs[0], kit.ec2.pem())))
    before = await snapshot(api, s.admin_token, s.envs)
    entry, reason = refusal(case, kit, tmp_path, s.envs[1])
    # The refused environment second: nothing of the first is written either.
    r = await api.post(KEYSTORES, body("new", pem_entry(s.envs[0], kit.rsa3.pem()), entry))
    assert r.status_code == 400, r.text
    assert r.json() == bad_request(reason)
    never_shows_passwords(r.text)
    assert await snapshot(api, s.admin_token, s.envs) == before


async def test_refused_updates_change_nothing(s: Setting, kit: Kit, tmp_path: Path) -> None:
    api = api_of(s)
    await api.post_ok(KEYSTORES, body("tls", pem_entry(s.envs[0], kit.ec2.pem())))
    await _jwk_from_alias(api, "tls-jwk", "tls", s.envs[0], "ES256")
    before = await snapshot(api, s.admin_token, s.envs)
    for case in REFUSALS:
        entry, reason = refusal(case, kit, tmp_path, s.envs[0])
        r = await api.put(
            KEYSTORES,
            "tls",
            body("tls", entry, description="changed"),
            "updateReferencedJwks=true&updateScope=SAME_PROJECT",
        )
        assert r.status_code == 400, (case, r.text)
        assert r.json() == bad_request(reason), case
        never_shows_passwords(r.text)
    assert await snapshot(api, s.admin_token, s.envs) == before
