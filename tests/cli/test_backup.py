"""``keyops backup`` and ``keyops restore`` through real processes, real servers and databases.

SQLite: a live server takes certificates from a writer thread while ``keyops backup``
copies its database; the backup restores into a new data directory, and a server started
there holds every certificate acknowledged before the backup began, byte for byte. The
refusals: a wrong master key (also one whose id was forged into the backup), a data
directory that is not empty, a missing database, an existing backup file, a backup from
a newer keyops; a backup from an older keyops is migrated. PostgreSQL: ``pg_dump`` /
``pg_restore`` into a fresh empty database give the same rows; without them on PATH the
commands are printed, never with the password.

Needs ``backup`` and ``restore`` registered on the ``keyops`` app (src/keyops/cli/main.py).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory

from keyops.crypto.envelope import encode_master_key, key_id, new_master_key
from keyops.storage.migrate import alembic_config
from tests.crypto import certs
from tests.support.certificates import CERT_PATH, certificate_parts, multipart
from tests.support.databases import postgres_database
from tests.support.keysecrets import b64, key_body, key_entry
from tests.support.server import TEST_MASTER_KEY, LiveServer, live_server, password_token

ADMIN_PASSWORD = "backup-admin-password"
PROJECT = "MyProject"  # the demo project and its "production" environment
ENV = "production"
WRONG_KEY = encode_master_key(new_master_key())
HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
COUNTS = re.compile(r"(\d+) certificates, (\d+) keys")


def keyops(
    *args: str,
    data_dir: Path,
    database_url: str = "",
    master_key: str | None = TEST_MASTER_KEY,
    path: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``keyops ARGS`` as an operator runs it; an empty database URL means the data dir's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYOPS_")}
    env.update(KEYOPS_DATA_DIR=str(data_dir), KEYOPS_DATABASE_URL=database_url, NO_COLOR="1")
    if master_key is not None:
        env["KEYOPS_MASTER_KEY"] = master_key
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "keyops", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def refused(result: subprocess.CompletedProcess[str], *parts: str) -> str:
    """A refusal: exit status 2, nothing on stdout, one line on stderr holding ``parts``."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("keyops: "), result.stderr
    for part in parts:
        assert part in result.stderr, (part, result.stderr)
    return result.stderr


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


@contextmanager
def serve(data_dir: Path, database_url: str = "") -> Iterator[LiveServer]:
    with live_server(
        database_url,
        data_dir,
        admin_password=ADMIN_PASSWORD,
        extra_env={"KEYOPS_DATABASE_URL": database_url},
    ) as server:
        yield server


class Api:
    def __init__(self, server: LiveServer) -> None:
        self.client = httpx.Client(
            base_url=server.base_url,
            headers={
                "Authorization": "Bearer "
                + password_token(server.base_url, "admin", ADMIN_PASSWORD)
            },
            timeout=30,
        )

    def add_certificate(self, name: str) -> bytes:
        issued = certs.make_cert(certs.name(("COMMON_NAME", name)), certs.key("p256"))
        body, headers = multipart(
            certificate_parts(name=name, alias=name, environments=[ENV], pem=issued.pem)
        )
        r = self.client.post(CERT_PATH.format(project=PROJECT), content=body, headers=headers)
        assert r.status_code == 200, r.text
        return issued.der

    def certificate(self, name: str) -> bytes:
        r = self.client.get(f"{CERT_PATH.format(project=PROJECT)}{name}/")
        assert r.status_code == 200, (name, r.text)
        [item] = r.json()["resultList"]
        [row] = item["certificateEnvironmentList"]
        return base64.b64decode(row["base64EncodedContent"])

    def certificate_names(self) -> set[str]:
        r = self.client.get(CERT_PATH.format(project=PROJECT))
        assert r.status_code == 200, r.text
        return {c["name"] for c in r.json()["resultList"]}

    def add_secret(self, name: str, secret: bytes) -> None:
        r = self.client.post(
            f"/apiops/projects/{PROJECT}/keys/",
            json=key_body(name, "SYMMETRIC", [key_entry(ENV, secret)]),
        )
        assert r.status_code == 200, r.text

    def secret(self, name: str) -> str:
        r = self.client.get(f"/apiops/projects/{PROJECT}/keys/{name}/")
        assert r.status_code == 200, r.text
        [item] = r.json()["resultList"]
        return str(item["cryptoKeyInfoEnvironmentList"][0]["privateKey"])


def plain_copy_certificates(db: Path, copy: Path) -> int:
    """The certificates in a plain file copy of ``db`` (its -wal left behind)."""
    shutil.copyfile(db, copy)
    try:
        with closing(sqlite3.connect(copy)) as conn:
            return int(conn.execute("SELECT count(*) FROM certificates").fetchone()[0])
    finally:
        for leftover in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")):
            leftover.unlink(missing_ok=True)


class Writer(threading.Thread):
    """Adds certificates one after another until stopped; remembers the acknowledged ones."""

    # A breath between requests, for the other processes on a small machine.
    PAUSE = 0.02

    def __init__(self, api: Api) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.acked: list[tuple[str, bytes]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set():
                name = f"cert-{n:05d}"
                self.acked.append((name, self.api.add_certificate(name)))
                n += 1
                self.stop.wait(self.PAUSE)
        except BaseException as exc:
            self.error = exc

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 60
        while len(self.acked) < count:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, "the writer does not get going"
            time.sleep(0.05)


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_backup_a_running_sqlite_server_under_writes_and_restore_it(tmp_path: Path) -> None:
    live, restored, backup = tmp_path / "live", tmp_path / "restored", tmp_path / "keyops.bak"
    secret = os.urandom(32)
    with serve(live) as server:
        api = Api(server)
        api.add_secret("sym", secret)
        writer = Writer(api)
        # A reader whose snapshot predates every certificate: no checkpoint can move one
        # into keyops.db while it is open, so they all stay in keyops.db-wal.
        with closing(sqlite3.connect(live / "keyops.db", isolation_level=None)) as reader:
            reader.execute("BEGIN")
            assert reader.execute("SELECT count(*) FROM certificates").fetchone() == (0,)
            writer.start()
            try:
                writer.wait_for(5)
                before = list(writer.acked)
                result = keyops("backup", str(backup), data_dir=live)
                during = len(writer.acked)
            finally:
                writer.stop.set()
                writer.join(60)
            assert writer.error is None, writer.error
            # What `cp keyops.db` gives: none of them (the report).
            assert plain_copy_certificates(live / "keyops.db", tmp_path / "cp.db") == 0
            reader.execute("ROLLBACK")
    out = ok(result)
    # The server kept writing while the backup ran: the test exercised a live copy.
    assert during > len(before), (during, len(before))
    found = COUNTS.search(out)
    assert found, out
    copied, keys = int(found[1]), int(found[2])
    assert len(before) <= copied <= during and keys == 1, (len(before), copied, during)
    assert f"schema revision {HEAD}" in out and str(backup) in out
    master = base64.b64decode(TEST_MASTER_KEY)
    assert f"sealed with master key {key_id(master)}" in out
    assert "it is in KEYOPS_MASTER_KEY: back it up separately" in out
    assert len(out.splitlines()) == 2, out
    # One self-contained file, owner-only, with no master key in it.
    data = backup.read_bytes()
    assert data.startswith(b"SQLite format 3\x00")
    assert (backup.stat().st_mode & 0o777) == 0o600
    assert master not in data and TEST_MASTER_KEY.encode() not in data
    assert secret not in data  # sealed, like in the database
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyops.bak", "live"]  # no temp left

    # Refused, each in one line, with nothing written: a wrong key; a right key id forged
    # over secrets sealed with another key; a data directory that is not empty.
    wrong = refused(
        keyops("restore", str(backup), data_dir=restored, master_key=WRONG_KEY),
        "the master key does not match this backup",
        key_id(master),
    )
    assert TEST_MASTER_KEY not in wrong and WRONG_KEY not in wrong
    assert listing(restored) == []
    forged = tmp_path / "forged.bak"
    shutil.copy(backup, forged)
    with closing(sqlite3.connect(forged)) as conn, conn:
        conn.execute(
            "UPDATE master_key_state SET key_id = ?", (key_id(base64.b64decode(WRONG_KEY)),)
        )
    refused(
        keyops("restore", str(forged), data_dir=restored, master_key=WRONG_KEY),
        "the master key does not match this backup",
    )
    assert listing(restored) == []
    damaged = tmp_path / "damaged.bak"
    shutil.copy(backup, damaged)
    with closing(sqlite3.connect(damaged)) as conn, conn:
        (blob,) = conn.execute("SELECT private_sealed FROM crypto_key_environments").fetchone()
        flipped = blob[:-1] + bytes([blob[-1] ^ 1])
        conn.execute("UPDATE crypto_key_environments SET private_sealed = ?", (flipped,))
    refused(
        keyops("restore", str(damaged), data_dir=restored),
        "a sealed value of this backup (crypto_key_environments.private_sealed) fails"
        f" authentication with master key {key_id(master)}: the backup is damaged",
    )
    assert listing(restored) == []
    refused(
        keyops("restore", str(backup), data_dir=live),
        f"{live} already holds keyops.db",
        "restore only into an empty or new data directory",
    )
    (restored / "stray").mkdir(parents=True)
    refused(
        keyops("restore", str(backup), data_dir=restored),
        f"the data directory {restored} is not empty (it holds stray)",
    )
    (restored / "stray").rmdir()

    out = ok(keyops("restore", str(backup), data_dir=restored))
    assert f"{copied} certificates, 1 keys" in out and "migrated" not in out
    assert f"master key {key_id(master)} opened all" in out
    assert listing(restored) == ["keyops.db"]
    with serve(restored) as server:
        api = Api(server)
        names = api.certificate_names()
        assert len(names) == copied
        for name, der in before:
            assert api.certificate(name) == der
        assert names <= {name for name, _ in writer.acked}
        assert api.secret("sym") == b64(secret)


def test_restore_with_the_master_key_file(tmp_path: Path) -> None:
    """The key file flavour: backup names the file, restore installs --master-key-file."""
    live, restored, backup = tmp_path / "live", tmp_path / "restored", tmp_path / "keyops.bak"
    secret = os.urandom(32)
    with live_server(
        "",
        live,
        admin_password=ADMIN_PASSWORD,
        extra_env={"KEYOPS_DATABASE_URL": "", "KEYOPS_MASTER_KEY": ""},
    ) as server:
        Api(server).add_secret("sym", secret)
    key_file = live / "master.key"
    out = ok(keyops("backup", str(backup), data_dir=live, master_key=""))
    assert f"it is in {key_file}: back it up separately" in out
    assert key_file.read_text().strip().encode() not in backup.read_bytes()

    refused(
        keyops("restore", str(backup), data_dir=restored, master_key=""),
        "no master key",
        "--master-key-file",
    )
    refused(
        keyops("restore", str(backup), "--master-key-file", str(key_file), data_dir=restored),
        "both KEYOPS_MASTER_KEY and --master-key-file are given",
    )
    assert listing(restored) == []
    out = ok(
        keyops(
            "restore",
            str(backup),
            "--master-key-file",
            str(key_file),
            data_dir=restored,
            master_key="",
        )
    )
    assert f"it is in {restored / 'master.key'}" in out
    assert (restored / "master.key").read_text() == key_file.read_text()
    assert (restored / "master.key").stat().st_mode & 0o777 == 0o600
    with live_server(
        "",
        restored,
        admin_password=ADMIN_PASSWORD,
        extra_env={"KEYOPS_DATABASE_URL": "", "KEYOPS_MASTER_KEY": ""},
    ) as server:
        assert Api(server).secret("sym") == b64(secret)


def test_backup_refuses_without_a_database_or_over_a_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    out = tmp_path / "x.bak"
    refused(
        keyops("backup", str(out), data_dir=missing),
        f"there is no database at {missing / 'keyops.db'}",
        "KEYOPS_DATA_DIR",
    )
    assert not missing.exists() and not out.exists()
    url = f"sqlite:///{tmp_path / 'other.db'}"
    refused(keyops("backup", str(out), data_dir=missing, database_url=url), "other.db")
    assert listing(tmp_path) == []

    live = tmp_path / "live"
    with serve(live):
        pass
    out.write_text("keep me")
    refused(keyops("backup", str(out), data_dir=live), f"{out} exists: give --force")
    assert out.read_text() == "keep me"
    refused(keyops("backup", str(tmp_path / "no-dir" / "x.bak"), data_dir=live), "does not exist")
    refused(keyops("backup", str(live / "keyops.db"), "--force", data_dir=live), "itself")
    ok(keyops("backup", str(out), "--force", data_dir=live))
    assert out.read_bytes().startswith(b"SQLite format 3\x00")

    # Not a keyops database.
    plain = tmp_path / "plain"
    plain.mkdir()
    with closing(sqlite3.connect(plain / "keyops.db")) as conn:
        conn.execute("CREATE TABLE t (x)")
    refused(keyops("backup", str(tmp_path / "p.bak"), data_dir=plain), "not a keyops database")
    # Restore of something that is not a backup.
    refused(keyops("restore", str(tmp_path / "absent.bak"), data_dir=tmp_path / "r"), "no backup")
    refused(
        keyops("restore", str(plain / "keyops.db"), data_dir=tmp_path / "r"),
        "it holds no keyops schema revision: it is not a keyops backup",
    )
    garbage = tmp_path / "garbage.bak"
    garbage.write_bytes(os.urandom(4096))
    refused(
        keyops("restore", str(garbage), data_dir=tmp_path / "r"),
        "is not a keyops backup (not a SQLite database file)",
    )
    assert not (tmp_path / "r").exists()


def test_restore_checks_the_schema_revision(tmp_path: Path) -> None:
    # A database from an older keyops (revision 0009, nothing sealed yet) is migrated.
    older = tmp_path / "older.db"
    command.upgrade(alembic_config(f"sqlite:///{older}"), "0009")
    out = ok(keyops("restore", str(older), data_dir=tmp_path / "a", master_key=None))
    assert f"schema revision 0009 (migrated to {HEAD})" in out
    with closing(sqlite3.connect(tmp_path / "a" / "keyops.db")) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (HEAD,)

    # One from a newer keyops is refused.
    newer = tmp_path / "newer.db"
    shutil.copy(older, newer)
    with closing(sqlite3.connect(newer)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    refused(
        keyops("restore", str(newer), data_dir=tmp_path / "b"),
        "schema revision 9999 is newer than this keyops knows",
    )
    assert not (tmp_path / "b").exists()


# --- PostgreSQL ---------------------------------------------------------------------------


def pg_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {
            t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)  # noqa: S608
            for t in tables
        }


def with_password(url: str) -> str:
    # The test server trusts every local connection, so any password is accepted.
    return url.replace("postgres@", "postgres:Pg-Secret-Word@", 1)


@pytest.mark.skipif(
    not (shutil.which("pg_dump") and shutil.which("pg_restore")),
    reason="pg_dump and pg_restore (the PostgreSQL client tools) are not on PATH",
)
def test_postgresql_backup_and_restore(tmp_path: Path) -> None:
    backup = tmp_path / "keyops.dump"
    secret = os.urandom(32)
    with postgres_database() as source, postgres_database() as target:
        source, target = with_password(source), with_password(target)
        with serve(tmp_path / "live", source) as server:
            api = Api(server)
            api.add_secret("sym", secret)
            ders = {f"pg-{n}": api.add_certificate(f"pg-{n}") for n in range(3)}
            out = ok(keyops("backup", str(backup), data_dir=tmp_path / "live", database_url=source))
        assert "Pg-Secret-Word" not in out
        assert "3 certificates, 1 keys" in out and f"schema revision {HEAD}" in out
        assert backup.read_bytes().startswith(b"PGDMP")
        assert backup.stat().st_mode & 0o777 == 0o600
        assert listing(tmp_path) == ["keyops.dump", "live"]  # no temporary file left
        assert base64.b64decode(TEST_MASTER_KEY) not in backup.read_bytes()

        empty = tmp_path / "empty"
        wrong = refused(
            keyops(
                "restore", str(backup), data_dir=empty, database_url=target, master_key=WRONG_KEY
            ),
            "the master key does not match this backup",
        )
        assert "Pg-Secret-Word" not in wrong
        assert pg_rows(target) == {}
        out = ok(keyops("restore", str(backup), data_dir=empty, database_url=target))
        assert "3 certificates, 1 keys" in out and "Pg-Secret-Word" not in out
        assert pg_rows(target) == pg_rows(source)
        refused(
            keyops("restore", str(backup), data_dir=empty, database_url=target),
            "the database is not empty",
        )
        with serve(tmp_path / "restored", target) as server:
            api = Api(server)
            assert {n: api.certificate(n) for n in ders} == ders
            assert api.secret("sym") == b64(secret)

        # Without the client tools: the exact commands, without the password, and no file.
        bindir = tmp_path / "bin"
        bindir.mkdir()
        result = keyops(
            "backup",
            str(tmp_path / "none.dump"),
            data_dir=empty,
            database_url=source,
            path=str(bindir),
        )
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "pg_dump is not on PATH" in result.stderr
        assert result.stdout.startswith("pg_dump --format=custom --file=")
        assert "Pg-Secret-Word" not in result.stdout + result.stderr
        assert not (tmp_path / "none.dump").exists()
        result = keyops(
            "restore", str(backup), data_dir=empty, database_url=target, path=str(bindir)
        )
        assert result.returncode == 2 and "pg_restore is not on PATH" in result.stderr
        assert result.stdout.startswith("pg_restore ")
        assert "Pg-Secret-Word" not in result.stdout + result.stderr

        # A database that does not exist is not made: no backup, one line.
        gone = source.rpartition("/")[0] + "/keyops_no_such_database"
        refused(
            keyops("backup", str(tmp_path / "gone.dump"), data_dir=empty, database_url=gone),
            "can not reach the database",
            "keyops_no_such_database",
        )
        assert not (tmp_path / "gone.dump").exists()

        # A SQLite backup is not restored into PostgreSQL, nor the other way round.
        refused(keyops("restore", str(backup), data_dir=tmp_path / "s"), "is a PostgreSQL dump")
