"""Everything a database holds, read past keyops: for finding secrets stored in the clear.

SQLite: the bytes of the database file and of its ``-wal`` / ``-journal`` files, as an
attacker with a copy of the disk would read them. PostgreSQL: every column of every
table, as the raw values psycopg returns (``bytea`` as bytes) and as the row's text form
(``bytea`` in hex), as a dump would show them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import psycopg
from psycopg import sql

from keyops.config import Settings


def sqlite_path(database_url: str) -> Path:
    scheme, _, rest = database_url.partition(":///")
    assert scheme.startswith("sqlite"), database_url
    return Path(rest.split("?", 1)[0])


def sqlite_bytes(database_url: str) -> bytes:
    path = sqlite_path(database_url)
    chunks = [path.read_bytes()]
    for suffix in ("-wal", "-journal"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            chunks.append(extra.read_bytes())
    return b"\n".join(chunks)


def sqlite_rows(database_url: str) -> bytes:
    """Every column of every row of a SQLite database, as a logical dump reads them
    (unlike the file, without old page versions the WAL or free pages still hold)."""
    chunks: list[bytes] = []
    with contextlib.closing(sqlite3.connect(sqlite_path(database_url))) as conn:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            for row in conn.execute(f"SELECT * FROM {quoted}"):  # noqa: S608 - table names
                for value in row:
                    if isinstance(value, bytes):
                        chunks.append(value)
                    elif value is not None:
                        chunks.append(str(value).encode("utf-8"))
    return b"\n".join(chunks)


def database_rows(database_url: str) -> bytes:
    """Every stored value of the current rows, SQLite or PostgreSQL."""
    if database_url.startswith("sqlite"):
        return sqlite_rows(database_url)
    return postgres_bytes(database_url)


def postgres_bytes(database_url: str) -> bytes:
    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    chunks: list[bytes] = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ]
        assert tables, "no tables found"
        for table in tables:
            name = sql.Identifier(table)
            for (text,) in conn.execute(sql.SQL("SELECT t::text FROM {} AS t").format(name)):
                chunks.append(str(text).encode("utf-8"))
            for row in conn.execute(sql.SQL("SELECT * FROM {}").format(name)):
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        chunks.append(bytes(value))
                    elif value is not None:
                        chunks.append(str(value).encode("utf-8"))
    return b"\n".join(chunks)


def files_under(directory: Path) -> bytes:
    """Every file below a directory (logs, key files, anything a target may write)."""
    return b"\n".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def raw_database(settings: Settings) -> bytes:
    """What the database of these settings holds, read past keyops."""
    url = settings.database_url or settings.default_sqlite_url()
    if url.startswith("sqlite"):
        return sqlite_bytes(url)
    return postgres_bytes(url)
