"""Backups of the keyops database, and restoring one into an empty database.

Decisions:

- SQLite is copied with SQLite's online backup API in ONE step, inside one read
  transaction: under WAL that never blocks the server's writer and gives the database as
  of one commit. (A plain file copy misses what is still in ``keyops.db-wal``; a stepwise
  backup restarts whenever the server commits, so under steady writes it may never end.)
  The copy is switched to a rollback journal, so the backup is one self-contained file.
- PostgreSQL is dumped by ``pg_dump -Fc`` and restored by ``pg_restore``; the counts keyops
  prints come from the same snapshot the dump is taken in (``pg_export_snapshot``). The
  password goes to those tools through ``PGPASSWORD``, never on a command line.
- A backup or restore is written to a temporary file beside its destination and then
  linked into place, so the destination is either absent or whole, and an existing file
  is never replaced by accident (``force`` replaces it atomically).
- The master key is never in the database (only its id, in ``master_key_state``), so it
  is never in a backup. A restore first opens every sealed value of the backup with the
  configured keyring and refuses if one does not open, before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from keyops.config import to_sync_url
from keyops.crypto.envelope import SealError, sealed_key_id
from keyops.secrets import Keyring, Purpose
from keyops.storage.migrate import alembic_config
from keyops.storage.repositories.masterkey import SEALED_COLUMNS

__all__ = [
    "BackupRefused",
    "Contents",
    "Revision",
    "ToolMissing",
    "backup_postgres",
    "backup_sqlite",
    "check_destination",
    "check_revision",
    "check_sealed",
    "check_sqlite_target",
    "dump_contents",
    "pg_dump_command",
    "pg_restore_command",
    "postgres_contents",
    "require_tool",
    "restore_postgres",
    "restore_sqlite",
    "sqlite_path",
    "target_problem",
]

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
# What is counted and printed: (table, how it is called).
COUNTED = (
    ("projects", "projects"),
    ("certificates", "certificates"),
    ("crypto_keys", "keys"),
    ("keystores", "keystores"),
    ("jwks", "JWKs"),
    ("users", "users"),
)
# What a data directory may hold and still count as empty for a restore: the key files
# the operator put there first, and a mounted volume's lost+found.
EMPTY_DIR_ALLOWED = ("master.key", "lost+found")
# (table, column, purpose) of every sealed value; deployed_artifacts only where sealed.
SEALED = tuple(
    (model.__tablename__, column, str(getattr(Purpose, purpose)))
    for model, column, purpose in SEALED_COLUMNS
)


class BackupRefused(RuntimeError):
    """The backup or restore will not be done; the message says why, on one line."""


class ToolMissing(BackupRefused):
    """A PostgreSQL client tool is not on PATH; ``command`` is what to run instead."""

    def __init__(self, message: str, command: str) -> None:
        super().__init__(message)
        self.command = command


@dataclass(frozen=True, slots=True)
class Contents:
    """What a database or backup holds, as printed after a backup or restore."""

    revision: str | None
    counts: dict[str, int]
    master_key_id: str | None

    def summary(self) -> str:
        counted = ", ".join(f"{n} {label}" for label, n in self.counts.items())
        return f"{counted or 'no keyops tables'}; schema revision {self.revision or 'none'}"


@dataclass(frozen=True, slots=True)
class Revision:
    """The backup's schema revision against this keyops' newest."""

    backup: str
    head: str

    @property
    def older(self) -> bool:
        return self.backup != self.head


# --- shared ------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def check_revision(revision: str | None) -> Revision:
    """The backup's revision, refused if this keyops does not know it (made by a newer one)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    if revision is None:
        raise BackupRefused("it holds no keyops schema revision: it is not a keyops backup")
    known = {s.revision for s in script.walk_revisions()}
    if revision not in known:
        raise BackupRefused(
            f"its schema revision {revision} is newer than this keyops knows (newest {head}):"
            " restore it with the keyops version that made it, or a newer one"
        )
    return Revision(revision, head)


def check_sealed(
    values: Iterator[tuple[bytes, str]], keyring: Keyring | None, recorded_key_id: str | None
) -> int:
    """Open every sealed value with ``keyring``; refuse in one line if one does not open.

    Returns how many were opened. The recorded key id is checked first, so a backup whose
    secrets were all deleted still refuses a key it was not made with. Without a keyring
    only a backup that records no master key and holds no sealed value passes.
    """
    if keyring is None:
        if recorded_key_id is not None or next(values, None) is not None:
            raise BackupRefused(
                f"no master key: this backup's secrets are sealed with master key"
                f" {recorded_key_id or 'unknown'}; set KEYOPS_MASTER_KEY, put the key file"
                " in the data directory as master.key (mode 0600), or give --master-key-file"
            )
        return 0
    held = {keyring.current_id, *(Keyring(k).current_id for k in keyring.previous)}
    if recorded_key_id is not None and recorded_key_id not in held:
        raise _mismatch(recorded_key_id, keyring)
    opened = 0
    for blob, purpose in values:
        try:
            keyring.open(blob, purpose)
        except SealError:
            try:
                sealed_with = sealed_key_id(blob)
            except SealError:
                sealed_with = "unknown"
            if sealed_with in held:
                raise BackupRefused(
                    f"a sealed value of this backup ({purpose.removeprefix('keyops:')}) fails"
                    f" authentication with master key {sealed_with}: the backup is damaged"
                ) from None
            raise _mismatch(sealed_with, keyring) from None
        opened += 1
    return opened


def _mismatch(sealed_with: str, keyring: Keyring) -> BackupRefused:
    return BackupRefused(
        f"the master key does not match this backup: its secrets are sealed with master key"
        f" {sealed_with}, but the configured master key is {keyring.current_id}; set"
        " KEYOPS_MASTER_KEY, or give --master-key-file, to the key that sealed them"
    )


def _temp_beside(dest: Path) -> Path:
    """An empty, owner-only temporary file in ``dest``'s directory."""
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    return Path(name)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, dest: Path, *, force: bool) -> None:
    """Put the finished ``tmp`` at ``dest`` atomically; never replace a file unless ``force``."""
    _fsync(tmp)
    if force:
        os.replace(tmp, dest)
    else:
        try:
            # A link fails if dest exists, even if it appeared since the check.
            os.link(tmp, dest)
        except FileExistsError:
            raise BackupRefused(f"{dest} exists: give --force to replace it") from None
        except OSError:
            # A file system without hard links: check, then rename.
            if dest.exists():
                raise BackupRefused(f"{dest} exists: give --force to replace it") from None
            os.replace(tmp, dest)
        else:
            tmp.unlink()
    _fsync(dest.parent)


@contextlib.contextmanager
def _cleanup(tmp: Path) -> Iterator[None]:
    try:
        yield
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
            leftover.unlink(missing_ok=True)


def check_destination(dest: Path, *, force: bool) -> None:
    """Refuse a backup file that exists (without ``force``) or whose directory does not."""
    if not dest.parent.is_dir():
        raise BackupRefused(f"the directory {dest.parent} does not exist: create it first")
    if dest.is_dir():
        raise BackupRefused(f"{dest} is a directory: give a file name")
    if dest.exists() and not force:
        raise BackupRefused(f"{dest} exists: give --force to replace it")


# --- SQLite ------------------------------------------------------------------------------


def sqlite_path(url: str) -> Path:
    """The file of a SQLite URL; an in-memory database can not be backed up or restored."""
    database = make_url(to_sync_url(url)).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise BackupRefused("the database is in memory: there is no file to back up or restore")
    return Path(database).resolve()


def _readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection that never creates the file."""
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)


def _file_kind(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(16)


def _sqlite_tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _sqlite_contents(conn: sqlite3.Connection) -> Contents:
    tables = _sqlite_tables(conn)
    revision = None
    if "alembic_version" in tables:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    counts = {
        label: int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # noqa: S608
        for table, label in COUNTED
        if table in tables
    }
    key_id = None
    if "master_key_state" in tables:
        row = conn.execute("SELECT key_id FROM master_key_state WHERE id = 1").fetchone()
        key_id = row[0] if row else None
    return Contents(revision, counts, key_id)


def _sqlite_sealed(conn: sqlite3.Connection) -> Iterator[tuple[bytes, str]]:
    tables = _sqlite_tables(conn)
    for table, column, purpose in SEALED:
        if table not in tables:
            continue
        columns = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
        if column not in columns:
            continue
        where = "sealed" if table == "deployed_artifacts" else f'"{column}" IS NOT NULL'
        query = f'SELECT "{column}" FROM "{table}" WHERE {where}'  # noqa: S608
        for (blob,) in conn.execute(query):
            yield bytes(blob), purpose


def backup_sqlite(db: Path, dest: Path, *, force: bool = False) -> Contents:
    """Copy the live SQLite database ``db`` to ``dest`` consistently; what the copy holds."""
    if not db.is_file():
        raise BackupRefused(f"there is no database at {db}")
    if dest.resolve() in {db, Path(f"{db}-wal"), Path(f"{db}-shm")}:
        raise BackupRefused(f"{dest} is the database itself: write the backup elsewhere")
    check_destination(dest, force=force)
    source = _readonly(db)
    try:
        try:
            tables = _sqlite_tables(source)
        except sqlite3.DatabaseError as exc:
            raise BackupRefused(f"{db} can not be read ({exc})") from None
        if "alembic_version" not in tables:
            raise BackupRefused(f"{db} is not a keyops database (it has no schema revision)")
        tmp = _temp_beside(dest)
        with _cleanup(tmp):
            copy = sqlite3.connect(tmp)
            try:
                # pages=-1: all pages in one step, in one read transaction (see above).
                source.backup(copy, pages=-1)
                copy.execute("PRAGMA journal_mode=DELETE")
                check = copy.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise BackupRefused(f"the copy of {db} fails SQLite's check ({check})")
                contents = _sqlite_contents(copy)
            finally:
                copy.close()
            _publish(tmp, dest, force=force)
    finally:
        source.close()
    return contents


def _sqlite_backup_file(src: Path) -> None:
    if not src.is_file():
        raise BackupRefused(f"there is no backup file {src}")
    kind = _file_kind(src)
    if kind.startswith(PG_DUMP_MAGIC):
        raise BackupRefused(
            f"{src} is a PostgreSQL dump: restore it with KEYOPS_DATABASE_URL set to the"
            " PostgreSQL database"
        )
    if kind != SQLITE_MAGIC:
        raise BackupRefused(f"{src} is not a keyops backup (not a SQLite database file)")


def sqlite_target_problem(db: Path, data_dir: Path | None) -> str | None:
    """Why ``db`` (and the data directory it is the default of) is not empty, or None."""
    present = [p.name for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
    if present:
        return f"{db.parent} already holds {', '.join(present)}"
    if data_dir is not None and data_dir.is_dir():
        others = sorted(
            p.name
            for p in data_dir.iterdir()
            if p.name not in EMPTY_DIR_ALLOWED and not p.name.startswith("master.key.")
        )
        if others:
            shown = ", ".join(others[:5]) + (", …" if len(others) > 5 else "")
            return f"the data directory {data_dir} is not empty (it holds {shown})"
    return None


def check_sqlite_target(src: Path, db: Path, data_dir: Path | None) -> None:
    """Refuse a backup file that is not a SQLite file, or a target that is not empty."""
    _sqlite_backup_file(src)
    problem = sqlite_target_problem(db, data_dir)
    if problem:
        raise BackupRefused(f"{problem}: restore only into an empty or new data directory")


def restore_sqlite(
    src: Path,
    db: Path,
    *,
    data_dir: Path | None,
    keyring: Keyring | None,
    before_write: Callable[[], None] = lambda: None,
) -> tuple[Contents, Revision, int]:
    """Check ``src`` fully, then copy it to the (absent) ``db``.

    ``before_write`` runs after every check, just before the database file is written.
    Returns what the backup holds, its revision and how many sealed values were opened.
    """
    check_sqlite_target(src, db, data_dir)
    source = _readonly(src)
    try:
        try:
            contents = _sqlite_contents(source)
        except sqlite3.DatabaseError as exc:
            raise BackupRefused(f"{src} can not be read ({exc})") from None
        revision = check_revision(contents.revision)
        check = source.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupRefused(f"{src} is damaged (SQLite's check says: {_one_line(check)})")
        opened = check_sealed(_sqlite_sealed(source), keyring, contents.master_key_id)
        before_write()
        db.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_beside(db)
        with _cleanup(tmp):
            copy = sqlite3.connect(tmp)
            try:
                source.backup(copy, pages=-1)
            finally:
                copy.close()
            try:
                _publish(tmp, db, force=False)
            except BackupRefused:
                raise BackupRefused(
                    f"{db} appeared while restoring: restore only into an empty data directory"
                ) from None
    finally:
        source.close()
    return contents, revision, opened


# --- PostgreSQL --------------------------------------------------------------------------


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment that carries the password."""
    parsed: URL = make_url(to_sync_url(url))
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    # URL.set(password=None) would keep the password: build the URL without it.
    bare = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
    return bare.render_as_string(hide_password=False), env


def pg_dump_command(url: str, dest: Path, snapshot: str | None = None) -> list[str]:
    """The ``pg_dump`` command writing a custom-format dump of ``url`` to ``dest``."""
    uri, _ = _libpq(url)
    args = ["pg_dump", "--format=custom", f"--file={dest}", f"--dbname={uri}"]
    if snapshot:
        args.insert(2, f"--snapshot={snapshot}")
    return args


def pg_restore_command(url: str, src: Path) -> list[str]:
    """The ``pg_restore`` command loading ``src`` into the empty database of ``url``."""
    uri, _ = _libpq(url)
    return [
        "pg_restore",
        "--no-owner",
        "--no-acl",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={uri}",
        str(src),
    ]


def require_tool(name: str, command: list[str], what: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(
            f"{name} is not on PATH, so keyops can not {what} itself: install the PostgreSQL"
            " client tools (the server's major version or newer), or run the command printed"
            " on stdout (the password comes from PGPASSWORD or ~/.pgpass)",
            shlex.join(command),
        )
    return found


def _engine_connect(url: str, connect_timeout: int) -> tuple[Connection, Callable[[], None]]:
    engine = create_engine(
        to_sync_url(url),
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": connect_timeout},
    )
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        engine.dispose()
        inner = getattr(exc, "orig", None) or exc
        raise BackupRefused(f"can not reach the database ({_one_line(str(inner))})") from None

    def close() -> None:
        conn.close()
        engine.dispose()

    return conn, close


def _pg_contents(conn: Connection) -> Contents:
    tables = set(inspect(conn).get_table_names())
    revision = None
    if "alembic_version" in tables:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    counts = {
        label: int(conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())  # noqa: S608
        for table, label in COUNTED
        if table in tables
    }
    key_id = None
    if "master_key_state" in tables:
        key_id = conn.execute(text("SELECT key_id FROM master_key_state WHERE id = 1")).scalar()
    return Contents(revision, counts, key_id)


def _run_tool(args: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = _one_line(result.stderr) or f"exit status {result.returncode}"
        raise BackupRefused(f"{what} failed: {reason}")


def backup_postgres(url: str, dest: Path, *, force: bool, connect_timeout: int) -> Contents:
    """``pg_dump -Fc`` of the database to ``dest``, with counts from the dump's snapshot."""
    check_destination(dest, force=force)
    binary = require_tool("pg_dump", pg_dump_command(url, dest), "make the dump")
    _, env = _libpq(url)
    conn, close = _engine_connect(url, connect_timeout)
    try:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            if "alembic_version" not in inspect(conn).get_table_names():
                raise BackupRefused("the database is not a keyops database (no schema revision)")
            snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
            contents = _pg_contents(conn)
            tmp = _temp_beside(dest)
            with _cleanup(tmp):
                args = pg_dump_command(url, tmp, snapshot)
                _run_tool([binary, *args[1:]], env, "pg_dump")
                _publish(tmp, dest, force=force)
    finally:
        close()
    return contents


def postgres_contents(url: str, connect_timeout: int) -> Contents:
    """What the PostgreSQL database of ``url`` holds."""
    conn, close = _engine_connect(url, connect_timeout)
    try:
        return _pg_contents(conn)
    finally:
        close()


def target_problem(url: str, connect_timeout: int) -> str | None:
    """Why the PostgreSQL database of ``url`` is not an empty one to restore into, or None."""
    conn, close = _engine_connect(url, connect_timeout)
    try:
        tables = inspect(conn).get_table_names()
    finally:
        close()
    if tables:
        return f"the database is not empty (it holds {len(tables)} tables)"
    return None


def _copy_field(raw: str) -> str | None:
    r"""One field of COPY's text format, unescaped (``\N`` is NULL)."""
    if raw == "\\N":
        return None
    out: list[str] = []
    i = 0
    simple = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
    while i < len(raw):
        ch = raw[i]
        if ch != "\\" or i + 1 == len(raw):
            out.append(ch)
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt == "x":
            digits = raw[i + 2 : i + 4]
            out.append(chr(int(digits, 16)))
            i += 2 + len(digits)
        elif nxt in "01234567":
            j = i + 1
            while j < len(raw) and j < i + 4 and raw[j] in "01234567":
                j += 1
            out.append(chr(int(raw[i + 1 : j], 8)))
            i = j
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


def _copy_blocks(sql: str) -> dict[str, list[dict[str, str | None]]]:
    """The rows of every ``COPY table (cols) FROM stdin`` block of a pg_restore script."""
    blocks: dict[str, list[dict[str, str | None]]] = {}
    lines = iter(sql.split("\n"))
    for line in lines:
        if not (line.startswith("COPY ") and line.endswith(" FROM stdin;")):
            continue
        head = line[len("COPY ") : -len(" FROM stdin;")]
        name, _, cols = head.partition(" ")
        table = name.rsplit(".", 1)[-1].strip('"')
        columns = [c.strip().strip('"') for c in cols.strip("()").split(",")]
        rows = blocks.setdefault(table, [])
        for data in lines:
            if data == "\\.":
                break
            rows.append(dict(zip(columns, map(_copy_field, data.split("\t")), strict=True)))
    return blocks


def _bytea(value: str) -> bytes:
    if value.startswith("\\x"):
        return bytes.fromhex(value[2:])
    raise BackupRefused("the dump holds a sealed value in an unknown form (not hex bytea)")


@dataclass(frozen=True, slots=True)
class DumpFacts:
    """What keyops reads from a dump before restoring it."""

    revision: str | None
    master_key_id: str | None
    sealed: list[tuple[bytes, str]]


def dump_contents(src: Path) -> DumpFacts:
    """The revision, master key id and sealed values of a ``pg_dump -Fc`` file."""
    if not src.is_file():
        raise BackupRefused(f"there is no backup file {src}")
    kind = _file_kind(src)
    if kind == SQLITE_MAGIC:
        raise BackupRefused(
            f"{src} is a SQLite backup: restore it with KEYOPS_DATABASE_URL unset (or sqlite:)"
        )
    if not kind.startswith(PG_DUMP_MAGIC):
        raise BackupRefused(f"{src} is not a keyops backup (not a pg_dump custom-format file)")
    tables = ["alembic_version", "master_key_state", *sorted({t for t, _, _ in SEALED})]
    args = ["--data-only", "--file=-", *(f"--table={t}" for t in tables), str(src)]
    binary = require_tool("pg_restore", ["pg_restore", *args], "read the dump")
    result = subprocess.run(
        [binary, *args], capture_output=True, text=True, check=False, env=dict(os.environ)
    )
    if result.returncode != 0:
        raise BackupRefused(f"pg_restore can not read {src}: {_one_line(result.stderr)}")
    blocks = _copy_blocks(result.stdout)
    versions = [r.get("version_num") for r in blocks.get("alembic_version", [])]
    keys = [r.get("key_id") for r in blocks.get("master_key_state", []) if r.get("id") == "1"]
    sealed: list[tuple[bytes, str]] = []
    for table, column, purpose in SEALED:
        for row in blocks.get(table, []):
            value = row.get(column)
            if value is None or (table == "deployed_artifacts" and row.get("sealed") != "t"):
                continue
            sealed.append((_bytea(value), purpose))
    return DumpFacts(versions[0] if versions else None, keys[0] if keys else None, sealed)


def restore_postgres(src: Path, url: str, *, connect_timeout: int) -> None:
    """``pg_restore`` of ``src`` into the (checked empty) database of ``url``."""
    command = pg_restore_command(url, src)
    binary = require_tool("pg_restore", command, "restore the dump")
    _, env = _libpq(url)
    _run_tool([binary, *command[1:]], env, "pg_restore")
