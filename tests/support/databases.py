"""Real databases for tests: a SQLite file, or a PostgreSQL database made for the run."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

PG_ADMIN_URL = os.environ.get(
    "KEYOPS_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("sqlite", "postgresql")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({exc.__class__.__name__})"


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    reason = _pg_available()
    if reason is not None:
        if in_ci():
            pytest.fail(f"{reason}; with CI=true the PostgreSQL half must run", pytrace=False)
        pytest.skip(f"{reason}; set KEYOPS_TEST_PG_ADMIN_URL to run the PostgreSQL half")
    name = f"keyops_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    """A database URL of the given backend that lives as long as the context."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'keyops.db'}"
    else:
        with postgres_database() as url:
            yield url
