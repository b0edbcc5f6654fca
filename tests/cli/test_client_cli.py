"""The client CLI (``keyops certs|keys|keystores|jwks|envs|deployments|nodes|login``) as a
script runs it: a real subprocess against a real ``keyops serve``, on both databases.

Each test names what it creates uniquely; independent invocations run two at a time
(each is a Python start-up of about a second).
"""

from __future__ import annotations

import base64
import io
import json
import re
import stat
import subprocess
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml

from keyops.client import Client
from tests.cli.conftest import ClientCli, table_rows
from tests.client.conftest import ADMIN_PASSWORD, PROJECT, material, unique, write
from tests.crypto import certs
from tests.support.server import LiveServer

ENVS = ["production", "staging"]
Run = subprocess.CompletedProcess[str]
PARTIAL_MESSAGE = (
    "Deployment failed: gateway of {env} refused the connection. The change is saved;"
    " the environment needs a republish."
)


def parallel(*calls: Callable[[], Run]) -> list[Run]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


def ok(run: Run) -> Run:
    assert run.returncode == 0, (run.returncode, run.stdout, run.stderr)
    return run


def marks(run: Run) -> dict[str, str]:
    """A change's per-environment table: environment -> ✓ or ✗."""
    return {r[1]: r[0] for r in table_rows(run.stdout) if r[0] in ("✓", "✗")}


def test_certificate_verbs_tables_json_and_exit_codes(
    client_cli: ClientCli, admin_client: Client, tmp_path: Path
) -> None:
    cli, name = client_cli, unique("cli-cert")
    # 20 days and an hour from now: "20 days left" (yellow: within 30).
    not_after = (datetime.now(UTC) + timedelta(days=20, hours=1)).replace(microsecond=0)
    issued = certs.make_cert(
        certs.name(("COMMON_NAME", "cli.example.com")),
        certs.key("p256"),
        not_before=not_after - timedelta(days=365),
        not_after=not_after,
    )
    pem = write(tmp_path / "cert.pem", issued.pem)

    envs = "production,staging"
    created = ok(cli("certs", "create", name, "-p", PROJECT, "-f", str(pem), "--env", envs))
    assert created.stdout.splitlines()[0] == f"certificate {name} created in {PROJECT}"
    assert marks(created) == {"production": "✓", "staging": "✓"}

    out = tmp_path / "export.zip"
    listed, as_json, got, missing, taken, quiet, exported, refused = parallel(
        lambda: cli("certs", "list", "-p", PROJECT, "--name", name),
        lambda: cli("certs", "list", "-p", PROJECT, "--name", name, "-o", "json"),
        lambda: cli("certs", "get", name, "-p", PROJECT, "-o", "yaml"),
        lambda: cli("certs", "get", f"{name}-missing", "-p", PROJECT),
        lambda: cli("certs", "create", name, "-p", PROJECT, "-f", str(pem), "--env", "production"),
        lambda: cli("certs", "list", "-p", PROJECT, "--name", name, "-q"),
        lambda: cli("certs", "export", name, "-p", PROJECT, "--to", str(out)),
        lambda: cli("certs", "delete", name, "-p", PROJECT),
    )
    header, *rows = table_rows(ok(listed).stdout)
    assert header == ["name", "environment", "alias", "subject", "not after"]
    end = not_after.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    expiry = f"{end} (20 days left)"
    assert rows == [
        [name, "production", name, "CN=cli.example.com", expiry],
        [name, "staging", name, "CN=cli.example.com", expiry],
    ]
    body = json.loads(ok(as_json).stdout)
    assert body["success"] is True and body["resultCount"] == 1
    (entry,) = body["resultList"]
    assert entry["name"] == name
    assert [e["environmentName"] for e in entry["certificateEnvironmentList"]] == ENVS
    assert entry["certificateEnvironmentList"][0]["endDate"] == end
    detail = yaml.safe_load(ok(got).stdout)
    content = detail["certificateEnvironmentList"][0]["base64EncodedContent"]
    assert base64.b64decode(content) == issued.der

    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == f"error: Certificate (name: {name}-missing) is not found!\n"
    assert taken.returncode == 3
    assert taken.stderr.startswith(f"error: Certificate (name: {name}) is already exist!")

    assert ok(quiet).stdout == f"{name}\n"

    assert ok(exported).stdout == f"wrote {out} ({out.stat().st_size} bytes)\n"
    archive = zipfile.ZipFile(io.BytesIO(out.read_bytes()))
    assert sorted(archive.namelist()) == sorted(f"{name}-{e}.cer" for e in ENVS)

    assert refused.returncode == 1
    assert refused.stderr == (
        f"error: deleting certificate {name} needs confirmation: answer on a terminal, or"
        " pass --yes\n"
    )
    assert name in [c.name for c in admin_client.certificates.list(PROJECT).result_list]
    deleted = ok(cli("certs", "delete", name, "-p", PROJECT, "--yes", "-o", "json"))
    results = json.loads(deleted.stdout)["deploymentResult"]["environmentResults"]
    assert {r["environmentName"]: r["success"] for r in results} == dict.fromkeys(ENVS, True)
    gone = cli("certs", "delete", name, "-p", PROJECT, "--yes")
    assert (gone.returncode, gone.stderr) == (
        2,
        f"error: Certificate (name: {name}) is not found!\n",
    )


def test_the_seed_in_one_line_rederives_the_jwk(
    client_cli: ClientCli, admin_client: Client, tmp_path: Path
) -> None:
    name, jwk = unique("my-certificate"), unique("my-jwk")
    old, new = material("seed-old.example.com"), material("seed-new.example.com")
    admin_client.certificates.create(PROJECT, name, pem=old.pem, environments=ENVS, alias="a1")
    admin_client.jwks.parse_from_certificate(
        PROJECT, jwk, name, "production", use_type="SIGNATURE", algorithm="ES256"
    )
    before = admin_client.jwks.get(PROJECT, jwk).jwk or {}
    write(tmp_path / "updated.pem", new.pem)

    seed = client_cli(
        "certs",
        "update",
        name,
        "--project",
        PROJECT,
        "--file",
        "updated.pem",
        "--env",
        "production,staging",
        "--update-jwks",
        "same-project",
        cwd=tmp_path,
    )
    ok(seed)
    assert seed.stdout.splitlines()[0] == f"certificate {name} updated in {PROJECT}"
    assert {"production": "✓", "staging": "✓"}.items() <= marks(seed).items()
    after = admin_client.jwks.get(PROJECT, jwk).jwk or {}
    assert after["x"] != before["x"]
    assert [PROJECT, jwk, "UPDATED", before["kid"], after["kid"]] in table_rows(seed.stdout)
    # The alias was kept (the update gave none), the material is the new one.
    got = admin_client.certificates.get(PROJECT, name)
    assert {e.alias for e in got.certificate_environment_list} == {"a1"}
    assert {e.subject_dn for e in got.certificate_environment_list} == {"CN=seed-new.example.com"}

    # none: the JWK is detached from the certificate, and the JSON says so.
    again = ok(
        client_cli(
            "certs",
            "update",
            name,
            "-p",
            PROJECT,
            "-f",
            str(tmp_path / "updated.pem"),
            "--env",
            "production",
            "--update-jwks",
            "none",
            "-o",
            "json",
        )
    )
    (followed,) = json.loads(again.stdout)["jwkResults"]
    assert (followed["name"], followed["action"]) == (jwk, "DETACHED")


def test_partial_deployment_failure_exits_4(
    client_cli: ClientCli, admin_client: Client, tmp_path: Path
) -> None:
    project, broken = unique("cli-partial"), unique("broken")
    admin_client.projects.create(project)
    admin_client.environments.create(broken, target="failing", projects=[project])
    try:
        pem = write(tmp_path / "c.pem", material("partial.example.com").pem)
        name = unique("partial")
        table, as_json = parallel(
            lambda: client_cli(
                "certs",
                "create",
                name,
                "-p",
                project,
                "-f",
                str(pem),
                "--env",
                f"production,{broken}",
            ),
            lambda: client_cli(
                "certs",
                "create",
                f"{name}-j",
                "-p",
                project,
                "-f",
                str(pem),
                "--env",
                f"{broken},production",
                "-o",
                "json",
            ),
        )
        line = f"error: not deployed everywhere: {broken}: {PARTIAL_MESSAGE.format(env=broken)}\n"
        assert table.returncode == 4 and table.stderr == line
        assert marks(table) == {"production": "✓", broken: "✗"}
        assert ["✗", broken, PARTIAL_MESSAGE.format(env=broken)] in table_rows(table.stdout)
        assert as_json.returncode == 4 and as_json.stderr == line
        body = json.loads(as_json.stdout)
        assert body["success"] is True and body["deploymentResult"]["success"] is False
        results = {
            r["environmentName"]: r["success"]
            for r in body["deploymentResult"]["environmentResults"]
        }
        assert results == {broken: False, "production": True}
    finally:
        for cert in admin_client.certificates.list(project).result_list:
            admin_client.certificates.delete(project, cert.name)
        admin_client.environments.delete(broken)
        admin_client.projects.delete(project)


def test_keys_keystores_and_jwks(
    client_cli: ClientCli, admin_client: Client, tmp_path: Path
) -> None:
    cli = client_cli
    key, store = unique("cli-key"), unique("cli-ks")
    derived, generated = unique("cli-jwk"), unique("cli-gen")
    m = material("keys.example.com")
    public = write(tmp_path / "pub.pem", m.public_pem)
    p12 = write(tmp_path / "store.p12", m.p12)

    made_key, made_store = parallel(
        lambda: cli(
            "keys",
            "create",
            key,
            "-p",
            PROJECT,
            "--type",
            "EC",
            "--public-key",
            str(public),
            "--env",
            "production,staging",
        ),
        lambda: cli(
            "keystores",
            "create",
            store,
            "-p",
            PROJECT,
            "-f",
            str(p12),
            "--env",
            "production",
            "--password-stdin",
            stdin=f"{m.password}\n",
        ),
    )
    assert marks(ok(made_key)) == {"production": "✓", "staging": "✓"}
    assert marks(ok(made_store)) == {"production": "✓"}

    keys, key_json, stores, store_json, made_jwk, made_gen = parallel(
        lambda: cli("keys", "list", "-p", PROJECT, "--name", key),
        lambda: cli("keys", "get", key, "-p", PROJECT, "-o", "json"),
        lambda: cli("keystores", "list", "-p", PROJECT, "--name", store),
        lambda: cli("keystores", "get", store, "-p", PROJECT, "-o", "json"),
        lambda: cli(
            "jwks",
            "parse",
            derived,
            "-p",
            PROJECT,
            "--keystore",
            store,
            "--alias",
            "signer",
            "--env",
            "production",
            "--use",
            "SIGNATURE",
            "--alg",
            "ES256",
            "-q",
        ),
        lambda: cli(
            "jwks",
            "generate",
            generated,
            "-p",
            PROJECT,
            "--type",
            "EC",
            "--curve",
            "P256",
            "--use",
            "signature",
            "--alg",
            "ES256",
            "-q",
        ),
    )
    assert table_rows(ok(keys).stdout) == [
        ["name", "type", "environment", "size / curve", "public", "private"],
        [key, "EC", "production", "P-256", "✓", "✗"],
        [key, "EC", "staging", "P-256", "✓", "✗"],
    ]
    detail = json.loads(ok(key_json).stdout)
    assert detail["keyType"] == "EC"
    assert [e["environmentName"] for e in detail["cryptoKeyInfoEnvironmentList"]] == ENVS
    header, row = table_rows(ok(stores).stdout)
    assert header == ["name", "environment", "type", "alias", "kind", "subject", "not after"]
    assert row[:6] == [
        store,
        "production",
        "PKCS12",
        "signer",
        "PRIVATE_KEY",
        "CN=keys.example.com",
    ]
    # The test material expired long ago (tests/crypto/certs.NOT_AFTER).
    assert re.fullmatch(r"2025-12-31T23:59:59\.000Z \(expired \d+ days ago\)", row[6]), row
    entries = json.loads(ok(store_json).stdout)["keyStoreEnvironmentList"][0]["entries"]
    assert [e["alias"] for e in entries] == ["signer"]
    assert ok(made_jwk).stdout == "" and ok(made_gen).stdout == ""

    listed, got, described = parallel(
        lambda: cli("jwks", "list", "-p", PROJECT, "--name", "cli-"),
        lambda: cli("jwks", "get", derived, "-p", PROJECT, "-o", "json"),
        lambda: cli("jwks", "update", generated, "-p", PROJECT, "--description", "made here"),
    )
    by_name = {r[0]: r for r in table_rows(ok(listed).stdout)}
    assert by_name["name"] == ["name", "type", "kid", "use", "algorithm", "source", "private"]
    assert by_name[derived][1] == "EC" and by_name[derived][5] == f"KEYSTORE {store}"
    assert by_name[generated][3:6] == ["SIGNATURE", "ES256", "GENERATE"]
    jwk = json.loads(ok(got).stdout)
    assert jwk["sourceType"] == "KEYSTORE" and jwk["jwk"]["crv"] == "P-256"
    assert ok(described).stdout.splitlines()[0] == f"JWK {generated} updated in {PROJECT}"
    assert admin_client.jwks.get(PROJECT, generated).description == "made here"

    deletions = parallel(
        lambda: cli("jwks", "delete", generated, "-p", PROJECT, "--yes", "-q"),
        lambda: cli("keys", "delete", key, "-p", PROJECT, "--yes", "-q"),
        lambda: cli("jwks", "delete", derived, "-p", PROJECT, "--yes", "-q"),
    )
    assert [(d.returncode, d.stdout) for d in deletions] == [(0, "")] * 3
    ok(cli("keystores", "delete", store, "-p", PROJECT, "--yes", "-q"))
    assert admin_client.keys.list(PROJECT, name=key).result_count == 0


def test_envs_deployments_and_nodes(client_cli: ClientCli) -> None:
    cli = client_cli
    envs, envs_json, mine, held, held_json, nodes, nowhere = parallel(
        lambda: cli("envs"),
        lambda: cli("envs", "-o", "json"),
        lambda: cli("envs", "-p", PROJECT, "-q"),
        lambda: cli("deployments", "production"),
        lambda: cli("deployments", "production", "-o", "json"),
        lambda: cli("nodes", "production", "-o", "yaml"),
        lambda: cli("deployments", "nowhere"),
    )
    rows = {r[0]: r for r in table_rows(ok(envs).stdout)}
    assert rows["name"] == ["name", "type", "status", "access url"]
    assert rows["production"][1] == "PRODUCTION"
    assert {"production", "staging", "development"} <= {
        e["name"] for e in json.loads(ok(envs_json).stdout)["resultList"]
    }
    assert {"production", "staging", "development"} <= set(ok(mine).stdout.split())
    lines = ok(held).stdout.splitlines()
    assert lines[0].startswith("environment production: ")
    header = ["kind", "project", "name", "alias", "revision", "deployed at"]
    assert table_rows(held.stdout)[0] == header
    body = json.loads(ok(held_json).stdout)
    assert body["environmentName"] == "production" and "pendingList" in body
    fleet = yaml.safe_load(ok(nodes).stdout)
    assert fleet["environmentName"] == "production" and fleet["resultList"] == []
    assert nowhere.returncode == 2
    assert nowhere.stderr == "error: Environment (nowhere) is not found!\n"


def test_login_stores_a_0600_profile_that_every_verb_uses(
    client_cli: ClientCli, cli_live: LiveServer, tmp_path: Path
) -> None:
    cli = ClientCli(tmp_path / "home-config")  # no KEYOPS_URL / KEYOPS_TOKEN
    url = cli_live.base_url
    config = tmp_path / "home-config" / "keyops" / "config.json"

    wrong, bad = parallel(
        lambda: cli("login", "--url", url, "-u", "admin", "--password-stdin", stdin="wrong-pw\n"),
        # A token given instead is checked first.
        lambda: cli("login", "--url", url, "--token", "not-a-token", "--profile", "ci"),
    )
    assert (wrong.returncode, wrong.stdout, wrong.stderr) == (1, "", "error: Bad credentials\n")
    assert (bad.returncode, bad.stderr) == (1, "error: Invalid token\n")
    assert not config.exists()

    logged = ok(
        cli("login", "--url", url, "-u", "admin", "--password-stdin", stdin=f"{ADMIN_PASSWORD}\n")
    )
    said = f"logged in to {url} as admin: profile default stored in {config}"
    assert logged.stdout.startswith(said)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    stored = json.loads(config.read_text())["profiles"]["default"]
    assert stored["url"] == url and stored["token"] and stored["expiresAt"]

    listed, expiring = parallel(
        lambda: cli("certs", "list", "-p", PROJECT, "-q"),
        # The older commands fall back to the profile too.
        lambda: cli("expiring", "--within-days", "0"),
    )
    ok(listed)
    ok(expiring)

    ok(cli("login", "--url", url, "--token", client_cli.token or "", "--profile", "ci"))
    out = ok(cli("logout"))
    # The password login's token is revoked on the server, not only forgotten.
    assert out.stdout == (
        f"token revoked on {url}\nlogged out: profile default removed from {config}\n"
    )
    r = httpx.get(f"{url}/apiops/projects/", headers={"Authorization": f"Bearer {stored['token']}"})
    assert r.status_code == 401
    assert set(json.loads(config.read_text())["profiles"]) == {"ci"}
    # A login whose token has expired (or was revoked) says how to log in again.
    data = json.loads(config.read_text())
    data["profiles"]["old"] = {"url": url, "token": "gone", "expiresAt": "2020-01-01T00:00:00Z"}
    config.write_text(json.dumps(data))
    with_ci, without, expired = parallel(
        lambda: cli("certs", "list", "-p", PROJECT, "-q", "--profile", "ci"),
        lambda: cli("certs", "list", "-p", PROJECT),
        lambda: cli("certs", "list", "-p", PROJECT, "--profile", "old"),
    )
    ok(with_ci)
    assert (expired.returncode, expired.stderr) == (
        1,
        "error: Invalid token (profile old: its token expired at 2020-01-01T00:00:00Z: run"
        " keyops login --profile old again)\n",
    )
    assert without.returncode == 1 and without.stderr == (
        "error: no server: run keyops login --url URL [--profile NAME], or give --url and"
        " --token (KEYOPS_URL and KEYOPS_TOKEN)\n"
    )
