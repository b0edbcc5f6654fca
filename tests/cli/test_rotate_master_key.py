"""``keyops rotate-master-key`` against real servers and real databases.

A live ``keyops serve`` stores secrets (keys, a keystore with its password, private
JWKs), stops, the command re-seals everything under a new master key, and a restarted
server reads every secret back identical. Both flavours: the key file in the data
directory (the default, no KEYOPS_MASTER_KEY) and KEYOPS_MASTER_KEY, where the new key
is printed once. Both databases: SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyops.cli.serverlock import exclusive
from keyops.config import Settings, to_async_url
from keyops.crypto.envelope import key_id
from keyops.storage.migrate import upgrade_to_head
from tests.crypto import certs
from tests.support.databases import database
from tests.support.keysecrets import (
    b64,
    key_body,
    key_entry,
)
from tests.support.keystores import keystores
from tests.support.rawdb import database_rows
from tests.support.rfc_examples import RFC7517_A2
from tests.support.server import TEST_MASTER_KEY, LiveServer, live_server

ADMIN_PASSWORD = "rotate-admin-password"
PROJECT = "MyProject"  # the demo project and its "production" environment
ENV = "production"
KEY_LINE = re.compile(r"^[A-Za-z0-9+/]{43}=\n$")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(str(request.param), tmp_path) as url:
        yield url


def serve(database_url: str, data_dir: Path, master_key: str | None) -> Any:
    """A live server; ``master_key`` None means the key file of the data directory."""
    # An empty KEYOPS_MASTER_KEY counts as unset, so the server uses master.key.
    return live_server(
        database_url,
        data_dir,
        admin_password=ADMIN_PASSWORD,
        extra_env={"KEYOPS_MASTER_KEY": master_key or ""},
    )


def rotate(
    database_url: str, data_dir: Path, master_key: str | None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYOPS_")}
    env.update(
        KEYOPS_DATABASE_URL=database_url, KEYOPS_DATA_DIR=str(data_dir), NO_COLOR="1", COLUMNS="250"
    )
    if master_key is not None:
        env["KEYOPS_MASTER_KEY"] = master_key
    return subprocess.run(
        [sys.executable, "-m", "keyops", "rotate-master-key"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


class Api:
    def __init__(self, server: LiveServer) -> None:
        self.base = server.base_url
        r = httpx.post(
            f"{self.base}/apiops/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "admin",
                "client_secret": ADMIN_PASSWORD,
            },
            timeout=10,
        )
        assert r.status_code == 200, r.text
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = httpx.request(method, self.base + path, headers=self.headers, timeout=30, **kwargs)
        assert r.status_code == 200, (method, path, r.text)
        return r.json()

    def post(self, kind: str, body: dict[str, Any], sub: str = "") -> None:
        answer = self.call("POST", f"/apiops/projects/{PROJECT}/{kind}/{sub}", json=body)
        assert answer["deploymentResult"]["success"] is True, answer

    def everything(self) -> dict[str, Any]:
        """Every key, keystore and JWK in full, and what the environment holds."""
        state: dict[str, Any] = {}
        for kind in ("keys", "keystores", "jwks"):
            listed = self.call("GET", f"/apiops/projects/{PROJECT}/{kind}/")["resultList"]
            state[kind] = {
                item["name"]: self.call("GET", f"/apiops/projects/{PROJECT}/{kind}/{item['name']}/")
                for item in listed
            }
        held = self.call("GET", f"/apiops/environments/{ENV}/deployments/")["resultList"]
        state["held"] = sorted((h["kind"], h["name"], h["contentHash"]) for h in held)
        return state


def create_secrets(api: Api) -> None:
    store = keystores().jks_a
    rsa = certs.new_key("rsa2048")
    api.post("keys", key_body("rsa", "RSA", [key_entry(ENV, rsa)]))
    # Replaced once: history keeps the first rsa key's sealed material (version 1).
    api.call(
        "PUT",
        f"/apiops/projects/{PROJECT}/keys/rsa/",
        json=key_body("rsa", "RSA", [key_entry(ENV, certs.new_key("rsa2048"))]),
    )
    api.post("keys", key_body("kept", "RSA", [key_entry(ENV, rsa)]))
    api.post("keys", key_body("ec", "EC", [key_entry(ENV, certs.new_key("p256"), form="pem")]))
    api.post("keys", key_body("sym", "SYMMETRIC", [key_entry(ENV, os.urandom(32))]))
    api.post(
        "keystores",
        {
            "name": "jks",
            "keyStoreEnvironmentList": [
                {
                    "environmentName": ENV,
                    "type": "JKS",
                    "file": b64(store.data),
                    "password": store.password,
                }
            ],
        },
    )
    api.post("jwks", {"name": "gen", "type": "EC", "ec": {"curveType": "P384"}}, sub="generate")
    api.post("jwks", {"name": "gen-oct", "type": "OCT", "oct": {"keySize": 256}}, sub="generate")
    api.post(
        "jwks",
        {
            "name": "from-key",
            "sourceType": "PRIVATE_KEY",
            "keyName": "rsa",
            "environmentName": ENV,
            "useType": "SIGNATURE",
            "algorithm": "RS256",
        },
    )
    api.post(
        "jwks",
        {
            "name": "from-keystore",
            "keyStoreName": "jks",
            "environmentName": ENV,
            "aliasName": "signer",
            "useType": "SIGNATURE",
            "algorithm": "RS256",
        },
        sub="parse-from-keystore",
    )
    api.post(
        "jwks",
        {"name": "pasted", "jwkStr": RFC7517_A2, "kid": "2011-04-29"},
        sub="parse-from-clipboard",
    )


def check_still_works(api: Api) -> None:
    """The restarted server seals new secrets and re-derives JWKs with the new key, and
    a version kept from before the rotation still opens: rolling back to it gives the
    key it held (the same as ``kept``, made from that key)."""
    api.post("keys", key_body("after", "ED25519", [key_entry(ENV, certs.new_key("ed25519"))]))
    api.call(
        "PUT",
        f"/apiops/projects/{PROJECT}/keys/rsa/?updateReferencedJwks=true&updateScope=SAME_PROJECT",
        json=key_body("rsa", "RSA", [key_entry(ENV, certs.new_key("rsa2048"))]),
    )
    assert (
        api.call("GET", f"/apiops/projects/{PROJECT}/jwks/from-key/")["resultList"][0]["sourceId"]
        == "rsa"
    )
    versions = api.call("GET", f"/apiops/projects/{PROJECT}/keys/rsa/versions/")["resultList"]
    first = min(v["version"] for v in versions)
    back = api.call("POST", f"/apiops/projects/{PROJECT}/keys/rsa/rollback?version={first}")
    assert back["deploymentResult"]["success"] is True, back
    rolled = api.call("GET", f"/apiops/projects/{PROJECT}/keys/rsa/")["resultList"][0]
    kept = api.call("GET", f"/apiops/projects/{PROJECT}/keys/kept/")["resultList"][0]
    material = "cryptoKeyInfoEnvironmentList"
    assert rolled[material] == kept[material] and rolled[material]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sealed_under(database_url: str, master_key: bytes) -> bool:
    """Whether any stored value is sealed with this master key (its id in the header)."""
    kid = key_id(master_key).encode("ascii")
    return b"KO1" + bytes([len(kid)]) + kid in database_rows(database_url)


def refused(database_url: str, data_dir: Path, master_key: str | None) -> str:
    """Start a server that must refuse to start; its log."""
    with pytest.raises(RuntimeError) as failure, serve(database_url, data_dir, master_key):
        pass
    message = str(failure.value)
    assert "exited early" in message, message
    return message


def test_rotate_the_key_file(database_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key_file = data_dir / "master.key"
    with serve(database_url, data_dir, None) as server:
        assert key_file.exists() and mode(key_file) == 0o600  # made on the first run
        api = Api(server)
        create_secrets(api)
        before = api.everything()
    old_text = key_file.read_text()
    old_key = base64.b64decode(old_text)
    assert sealed_under(database_url, old_key)

    # KEYOPS_MASTER_KEY set but empty means the key file, for the command as for the server.
    result = rotate(database_url, data_dir, "")
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr

    new_text = key_file.read_text()
    new_key = base64.b64decode(new_text)
    assert new_text != old_text and len(new_key) == 32
    assert mode(key_file) == 0o600
    previous = data_dir / f"master.key.previous-{key_id(old_key)}"
    assert previous.read_text() == old_text and mode(previous) == 0o600
    assert not (data_dir / "master.key.new").exists()
    assert key_id(old_key) in result.stdout and key_id(new_key) in result.stdout
    # Every sealed value moved to the new key; none is left under the old one.
    assert sealed_under(database_url, new_key) and not sealed_under(database_url, old_key)

    with serve(database_url, data_dir, None) as server:
        api = Api(server)
        assert api.everything() == before
        check_still_works(api)

    # The old key file put back: the server refuses to start, and says why.
    key_file.write_text(old_text)
    key_file.chmod(0o600)
    log = refused(database_url, data_dir, None)
    assert (
        f"this database's secrets are sealed with master key {key_id(new_key)}, but the"
        f" configured master key is {key_id(old_key)}"
    ) in log
    # So does the command: nothing is re-sealed with a key that can not open the data.
    result = rotate(database_url, data_dir, None)
    assert result.returncode != 0 and result.stdout == ""
    assert f"sealed with master key {key_id(new_key)}" in result.stderr
    assert "Traceback" not in result.stderr
    assert key_file.read_text() == old_text and not (data_dir / "master.key.new").exists()
    assert sealed_under(database_url, new_key)


def test_rotate_the_environment_key(database_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serve(database_url, data_dir, TEST_MASTER_KEY) as server:
        api = Api(server)
        create_secrets(api)
        before = api.everything()

    result = rotate(database_url, data_dir, TEST_MASTER_KEY)
    assert result.returncode == 0, (result.stdout, result.stderr)
    # The new key is printed once, alone on stdout, so that KEY=$(keyops ...) works.
    assert KEY_LINE.match(result.stdout), result.stdout
    new_text = result.stdout.strip()
    assert new_text != TEST_MASTER_KEY
    assert "KEYOPS_MASTER_KEY" in result.stderr
    assert not (data_dir / "master.key").exists()  # no key file in this flavour
    old_key, new_key = base64.b64decode(TEST_MASTER_KEY), base64.b64decode(new_text)
    assert sealed_under(database_url, new_key) and not sealed_under(database_url, old_key)

    with serve(database_url, data_dir, new_text) as server:
        api = Api(server)
        assert api.everything() == before
        check_still_works(api)

    log = refused(database_url, data_dir, TEST_MASTER_KEY)
    assert f"sealed with master key {key_id(new_key)}" in log
    assert "KEYOPS_MASTER_KEY" in log


def test_rotate_refuses_while_a_server_runs_on_the_database(
    database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    key_file = data_dir / "master.key"
    with serve(database_url, data_dir, None) as server:
        create_secrets(Api(server))
        old_text = key_file.read_text()
        # Also from another data directory, with the key given: the database is what counts.
        for where, key in ((data_dir, None), (tmp_path / "elsewhere", old_text.strip())):
            result = rotate(database_url, where, key)
            assert (result.returncode, result.stdout) == (2, ""), result.stderr
            lines = result.stderr.splitlines()
            assert len(lines) == 1, result.stderr
            assert lines[0].startswith("keyops: a keyops server is running on the database ")
            assert lines[0].endswith(
                ": stop every keyops serve on it (with replicas on PostgreSQL: all of them, on"
                " every host), run rotate-master-key once, then start them again (with"
                " KEYOPS_MASTER_KEY: set the new key it prints on each first)"
            )
        # Nothing was re-sealed or staged, and the server still reads its secrets.
        assert key_file.read_text() == old_text
        assert sorted(p.name for p in data_dir.iterdir() if p.name.startswith("master")) == [
            "master.key"
        ]
        assert sealed_under(database_url, base64.b64decode(old_text))
        before = Api(server).everything()

    # While a rotation holds the lock, a server refuses to start, and says why.
    settings = Settings(database_url=database_url, data_dir=data_dir)
    with exclusive(settings):
        log = refused(database_url, data_dir, None)
    assert "keyops: rotate-master-key is running on the database " in log
    assert ": wait for it to finish, then start keyops serve again" in log

    # Stopped: the rotation runs, and the restarted server reads everything back.
    result = rotate(database_url, data_dir, None)
    assert result.returncode == 0, (result.stdout, result.stderr)
    with serve(database_url, data_dir, None) as server:
        assert Api(server).everything() == before


def test_rotate_never_creates_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    result = rotate(f"sqlite:///{missing}", tmp_path / "data", None)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.startswith(f"keyops: no keyops database at sqlite:///{missing} (")
    assert len(result.stderr.splitlines()) == 1
    assert not missing.exists() and not (tmp_path / "data").exists()


def test_rotate_help_is_plain_text(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "keyops", "rotate-master-key", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for markup in ("``", "[red]", "[/", ":class:", "\\b"):
        assert markup not in result.stdout, markup
    assert "Stop every keyops serve on the database first (with replicas: all of them)" in text
    assert "the old one is kept as master.key.previous-ID until you remove it" in text


def migrated(url: str) -> str:
    """A keyops database with no master key recorded yet (no server ever ran on it)."""
    upgrade_to_head(to_async_url(url))
    return url


def test_rotate_without_a_master_key_says_so(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    result = rotate(migrated(f"sqlite:///{tmp_path / 'none.db'}"), data_dir, None)
    assert result.returncode == 1 and result.stdout == ""
    assert "no master key: set KEYOPS_MASTER_KEY or provide" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(data_dir.iterdir()) == []  # no key made up, nothing staged


def test_rotate_with_a_malformed_environment_key_says_so(tmp_path: Path) -> None:
    result = rotate(migrated(f"sqlite:///{tmp_path / 'none.db'}"), tmp_path, "not a key")
    assert result.returncode == 1 and result.stdout == ""
    assert "the master key is not valid base64" in result.stderr
    assert "Traceback" not in result.stderr
