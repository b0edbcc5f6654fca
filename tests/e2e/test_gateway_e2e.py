"""Gateway runtime, end to end: a real manager and two real gateway nodes on loopback.

Each test starts ``keyops serve`` (fresh database, SQLite and PostgreSQL) and two
``python -m keyops.gateway`` processes with their own ports and data directories and a
node credential from ``POST /apiops/admin/environments/{env}/node-tokens/``, with small
timeouts (deploy 3 s, node TTL 15 s, long poll 5 s). Nothing is faked: material goes in
through the REST API, comes out of the nodes' TLS listeners, and is checked with the
standard library's ``ssl`` client, joserfc and jwcrypto.

1. mTLS against the environment's truststore (the admin project's CA certificates) with
   the chosen keystore entry as server identity; the seed's certificate update rotates
   the CA on both nodes without a restart, and the deployment says 2 of 2 applied it.
2. A node killed (SIGKILL: no goodbye) makes a rotation fail for that environment, naming
   the node; the other node has it, the environment is REPUBLISH_REQUIRED; the node,
   restarted on its data dir, converges by itself and the environment is PUBLISHED; a
   node stopped cleanly (SIGTERM) says goodbye and is no longer waited for.
3. Generated private JWKs sign JWTs that verify against a node's JWK Set; rotating the
   JWK shows in the set, which never holds a private member.
4. The manager killed: nodes keep serving; restarted on the same database and port, the
   nodes reconnect and take the next change.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import import_key
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt

from keyops.crypto.jwk import PRIVATE_MEMBERS
from tests.support.databases import BACKENDS, database, in_ci
from tests.support.gateway_nodes import (
    ADMIN_PROJECT,
    STORE_PASSWORD,
    TLS_ALIAS,
    TLS_KEYSTORE,
    Cluster,
    Pki,
    accepted,
    applied_by_all,
    environment_result,
    gateway_cluster,
    https_get,
    jwks,
    refused,
    until,
)

DEMO_PROJECT = "MyProject"
CA_NAME = "client-ca"


@pytest.fixture(scope="module", autouse=True)
def _openssl() -> None:
    if shutil.which("openssl") is None:
        if in_ci():
            pytest.fail("openssl is not installed; with CI=true it must be", pytrace=False)
        pytest.skip("openssl is not installed (the keystore is made by openssl pkcs12)")


@pytest.fixture(params=BACKENDS)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    with database(request.param, tmp_path) as url, gateway_cluster(url, tmp_path) as c:
        try:
            yield c
        finally:
            # Shown by pytest only when the test failed.
            print(c.logs())


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


def sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def assert_applied_by_all(
    deployment: dict[str, Any], env: str, count: int = 2, verb: str = "Deployed"
) -> None:
    assert deployment["success"] is True, deployment
    assert environment_result(deployment, env) == {
        "environmentName": env,
        "success": True,
        "message": applied_by_all(count, verb),
    }


def provision_tls(c: Cluster, pki: Pki, client_ca: str = "a") -> None:
    """CA ``client_ca`` in the admin project, the PKCS#12 server identity, chosen for TLS;
    each step is applied by both nodes before the call answers."""
    env = c.environment
    ca = pki.client_ca(client_ca)
    assert_applied_by_all(c.api.create_certificate(ADMIN_PROJECT, CA_NAME, ca.pem, [env]), env)
    assert_applied_by_all(
        c.api.create_keystore(ADMIN_PROJECT, TLS_KEYSTORE, env, pki.keystore, STORE_PASSWORD), env
    )
    assert_applied_by_all(c.api.set_tls_identity(env, ADMIN_PROJECT, TLS_KEYSTORE, TLS_ALIAS), env)


def rotate_ca(c: Cluster, pki: Pki, client_ca: str) -> dict[str, Any]:
    """The seed's update: the admin CA certificate replaced by ``client_ca``'s."""
    pem = pki.client_ca(client_ca).pem
    return c.api.update_certificate(ADMIN_PROJECT, CA_NAME, pem, [c.environment])


def node_rows(c: Cluster) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in c.api.nodes(c.environment)["resultList"]}


# --- 1. mTLS and a CA rotation without restart ---------------------------------------------------


def test_mtls_with_the_environment_ca_and_rotation_without_restart(
    cluster: Cluster, pki: Pki
) -> None:
    c, env = cluster, cluster.environment
    provision_tls(c, pki, "a")

    for node in c.nodes:
        port = node.listen_port
        answer = https_get(port, pki.context("a"), "/")
        assert (answer.status, answer.body) == (200, b"hello CN=client-a, O=Acme")
        assert answer.server_cert_der == pki.server.der  # the chosen keystore entry
        assert refused(port, pki, "b"), f"{node.name} accepted a client of another CA"
        # No client certificate: TLS is fine (the JWK Set is public) but / is not.
        assert https_get(port, pki.context(None), "/").status == 403
        status = node.status()
        assert status["tlsServing"] is True and status["source"] == "manager"
        assert status["fingerprints"]["serverCertificateSha256"] == sha256(pki.server.der)
        assert status["fingerprints"]["truststoreSha256"] == [sha256(pki.client_ca("a").der)]

    # Connections opened before the rotation, kept alive across it.
    pids = {node.name: node.pid for node in c.nodes}
    open_conns = {
        node.name: http.client.HTTPSConnection(
            "127.0.0.1", node.listen_port, context=pki.context("a"), timeout=5
        )
        for node in c.nodes
    }
    try:
        for node in c.nodes:
            assert https_get(node.listen_port, pki.context("a"), "/", open_conns[node.name]).body
        result = rotate_ca(c, pki, "c")
        assert_applied_by_all(result, env)
        latest = c.api.latest_revision(env)

        for node in c.nodes:
            # The same processes: nothing was restarted.
            assert node.alive() and node.pid == pids[node.name]
            port = node.listen_port
            assert accepted(port, pki, "c"), f"{node.name} refused a client of the new CA"
            assert refused(port, pki, "a"), f"{node.name} still accepts the old CA"
            assert refused(port, pki, "b")
            status = node.status()
            assert status["appliedRevision"] == latest
            assert status["fingerprints"]["truststoreSha256"] == [sha256(pki.client_ca("c").der)]
            # A connection established before the rotation keeps its handshake.
            kept = https_get(port, pki.context("a"), "/", open_conns[node.name])
            assert kept.body == b"hello CN=client-a, O=Acme"
    finally:
        for conn in open_conns.values():
            conn.close()

    rows = node_rows(c)
    assert set(rows) == {"gw-a", "gw-b"}
    for row in rows.values():
        assert row["appliedRevision"] == latest and row["upToDate"] and row["connected"]
        assert row["fingerprints"]["truststoreSha256"] == [sha256(pki.client_ca("c").der)]
    assert c.api.environment_status(env) == "PUBLISHED"


# --- 2. a node outage during a rotation ---------------------------------------------------------


def test_killed_node_fails_the_rotation_then_converges_after_restart(
    cluster: Cluster, pki: Pki
) -> None:
    c, env = cluster, cluster.environment
    provision_tls(c, pki, "a")
    alive, dead = c.nodes
    before = c.api.latest_revision(env)
    dead.kill()  # no goodbye: the manager still counts it until the TTL

    started = time.monotonic()
    result = rotate_ca(c, pki, "c")
    elapsed = time.monotonic() - started
    latest = c.api.latest_revision(env)
    assert latest > before
    assert result["success"] is False, result
    mine = environment_result(result, env)
    assert mine["success"] is False
    assert mine["message"] == (
        f"Deployment failed: 1 of 2 gateway node(s) applied revision {latest} within 3 s;"
        f" not applied: {dead.name}. The change is saved; the environment needs a republish."
    )
    assert elapsed < 3 + 4, f"the failed deployment took {elapsed:.1f} s"

    # The live node has the new revision and serves the new CA.
    assert alive.status()["appliedRevision"] == latest
    assert accepted(alive.listen_port, pki, "c") and refused(alive.listen_port, pki, "a")
    rows = node_rows(c)
    assert rows[alive.name]["appliedRevision"] == latest and rows[alive.name]["upToDate"]
    assert rows[dead.name]["appliedRevision"] == before and not rows[dead.name]["upToDate"]
    assert rows[dead.name]["connected"] is True  # within the TTL
    assert c.api.environment_status(env) == "REPUBLISH_REQUIRED"

    # Back on the same data dir and name: it serves its saved snapshot, then catches up.
    dead.start()
    status = dead.wait_revision(latest)
    assert status["managerReachable"] is True and status["source"] == "manager"
    assert f"serving revision {before} of {env} from disk" in dead.log()
    assert accepted(dead.listen_port, pki, "c") and refused(dead.listen_port, pki, "a")
    until(
        lambda: c.api.environment_status(env) == "PUBLISHED",
        timeout=15,
        what=lambda: f"{env} PUBLISHED again; nodes {node_rows(c)}",
    )
    rows = node_rows(c)
    for row in rows.values():
        assert row["appliedRevision"] == latest and row["upToDate"] and row["connected"]

    # A clean stop (SIGTERM) says goodbye: that node is no longer waited for.
    alive.stop()
    assert alive.process is not None and alive.process.returncode == 0, alive.log()
    assert node_rows(c)[alive.name]["connected"] is False
    assert_applied_by_all(rotate_ca(c, pki, "d"), env, count=1)
    assert accepted(dead.listen_port, pki, "d") and refused(dead.listen_port, pki, "c")
    assert c.api.environment_status(env) == "PUBLISHED"


# --- 3. JWTs signed with generated JWKs verify against a node's JWK Set -------------------------


def sign(private_jwk: dict[str, Any], alg: str, subject: str) -> str:
    """A JWT signed with joserfc, the kid in its header."""
    key = import_key(private_jwk)
    now = int(time.time())
    claims = {"sub": subject, "iss": "gateway-e2e", "iat": now, "exp": now + 300}
    token: str = jose_jwt.encode({"alg": alg, "kid": private_jwk["kid"]}, claims, key)
    return token


def verify(token: str, jwks_document: dict[str, Any], alg: str) -> dict[str, Any]:
    """Verify with jwcrypto against the node's JWK Set (the key picked by kid)."""
    keyset = jc_jwk.JWKSet.from_json(json.dumps(jwks_document))
    checked = jc_jwt.JWT(jwt=token, key=keyset, algs=[alg], expected_type="JWS")
    claims: dict[str, Any] = json.loads(checked.claims)
    return claims


def assert_public_only(document: dict[str, Any]) -> None:
    for key in document["keys"]:
        assert not set(key) & (PRIVATE_MEMBERS | {"k"}), key


def test_generated_jwks_verify_against_a_node_and_rotate(cluster: Cluster, pki: Pki) -> None:
    c, env = cluster, cluster.environment
    provision_tls(c, pki, "a")  # the listener needs its server identity

    rsa = c.api.generate_jwk(
        DEMO_PROJECT,
        "sig-rsa",
        "RSA",
        "rsa-1",
        {"keySize": 2048, "keyUseType": "SIGNATURE", "algorithm": "RS256"},
    )
    assert_applied_by_all(rsa, env)
    ec = c.api.generate_jwk(
        DEMO_PROJECT,
        "sig-ec",
        "EC",
        "ec-1",
        {"curveType": "P256", "keyUseType": "SIGNATURE", "algorithm": "ES256"},
    )
    assert_applied_by_all(ec, env)

    rsa_private = c.api.get_jwk(DEMO_PROJECT, "sig-rsa")
    ec_private = c.api.get_jwk(DEMO_PROJECT, "sig-ec")
    assert rsa_private["kid"] == "rsa-1" and {"d", "p", "q"} <= set(rsa_private)
    assert ec_private["kid"] == "ec-1" and ec_private["crv"] == "P-256" and "d" in ec_private
    rsa_token = sign(rsa_private, "RS256", "alice")
    ec_token = sign(ec_private, "ES256", "bob")

    for node in c.nodes:
        answer, document = jwks(node.listen_port, pki)
        assert answer.headers["cache-control"] == "public, max-age=60"
        assert answer.headers["content-type"] == "application/json"
        assert answer.server_cert_der == pki.server.der
        assert {k["kid"] for k in document["keys"]} == {"rsa-1", "ec-1"}
        assert_public_only(document)
        assert verify(rsa_token, document, "RS256")["sub"] == "alice"
        assert verify(ec_token, document, "ES256")["sub"] == "bob"
        assert sorted(node.status()["fingerprints"]["jwkKids"]) == ["ec-1", "rsa-1"]

    # Rotation: the RSA JWK deleted and generated again under the same name, a new kid.
    assert_applied_by_all(c.api.delete_jwk(DEMO_PROJECT, "sig-rsa"), env, verb="Undeployed")
    assert_applied_by_all(
        c.api.generate_jwk(
            DEMO_PROJECT,
            "sig-rsa",
            "RSA",
            "rsa-2",
            {"keySize": 2048, "keyUseType": "SIGNATURE", "algorithm": "RS256"},
        ),
        env,
    )
    rotated_private = c.api.get_jwk(DEMO_PROJECT, "sig-rsa")
    assert rotated_private["kid"] == "rsa-2" and rotated_private["n"] != rsa_private["n"]
    rotated_token = sign(rotated_private, "RS256", "carol")

    for node in c.nodes:
        answer, document = jwks(node.listen_port, pki)
        assert answer.headers["cache-control"] == "public, max-age=60"
        assert {k["kid"] for k in document["keys"]} == {"rsa-2", "ec-1"}
        assert_public_only(document)
        for member in ("d", "p", "q", "dp", "dq", "qi"):
            assert rotated_private[member].encode() not in answer.body
        assert verify(rotated_token, document, "RS256")["sub"] == "carol"
        assert verify(ec_token, document, "ES256")["sub"] == "bob"
        # A token of the retired key no longer verifies: its kid is gone from the set.
        with pytest.raises(jc_jwt.JWTMissingKey):
            verify(rsa_token, document, "RS256")


# --- 4. the manager goes away and comes back ----------------------------------------------------


def test_nodes_keep_serving_without_the_manager_and_resume_after_restart(
    cluster: Cluster, pki: Pki
) -> None:
    c, env = cluster, cluster.environment
    provision_tls(c, pki, "a")
    assert_applied_by_all(
        c.api.generate_jwk(
            DEMO_PROJECT, "sig-ec", "EC", "ec-1", {"curveType": "P256", "algorithm": "ES256"}
        ),
        env,
    )
    token = sign(c.api.get_jwk(DEMO_PROJECT, "sig-ec"), "ES256", "dave")
    served = c.api.latest_revision(env)

    c.manager.kill()
    for node in c.nodes:
        node.wait_status(
            lambda s: s["managerReachable"] is False and s["lastError"],
            timeout=15,
            what="manager unreachable",
        )
    # Without the manager: the same revision, mTLS and the JWK Set still served.
    for node in c.nodes:
        status = node.status()
        assert status["appliedRevision"] == served and status["tlsServing"] is True
        assert accepted(node.listen_port, pki, "a") and refused(node.listen_port, pki, "b")
        _, document = jwks(node.listen_port, pki)
        assert verify(token, document, "ES256")["sub"] == "dave"

    # The manager back on the same database and port: the nodes find it by themselves.
    c.manager.start()
    for node in c.nodes:
        node.wait_status(
            lambda s: s["managerReachable"] is True and s["lastError"] is None,
            timeout=20,
            what="manager reachable again",
        )
    c.wait_connected(c.nodes)

    result = rotate_ca(c, pki, "c")
    assert_applied_by_all(result, env)
    latest = c.api.latest_revision(env)
    assert latest > served
    for node in c.nodes:
        assert node.status()["appliedRevision"] == latest
        assert accepted(node.listen_port, pki, "c") and refused(node.listen_port, pki, "a")
    assert c.api.environment_status(env) == "PUBLISHED"
