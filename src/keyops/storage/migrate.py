"""Apply Alembic migrations; safe to call from several processes at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from keyops.config import to_sync_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every keyops process.
_PG_LOCK_KEY = 0x6B65796F7073


def alembic_config(sync_url: str) -> Config:
    """An Alembic config pointing at keyops' migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sync_url.replace("%", "%%"))
    return cfg


class DatabaseUnreachable(RuntimeError):
    """The database could not be opened: down, wrong address or credentials, no such file."""


class MigrationFailed(RuntimeError):
    """The database was reached but its schema could not be brought to the newest revision."""


def _reason(exc: BaseException) -> str:
    """The driver's own words, on one line, without SQLAlchemy's links and statements."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return " ".join(str(inner).split()) or type(inner).__name__


def upgrade_to_head(async_url: str, *, connect_timeout: int = 5) -> None:
    """Bring the database schema to the newest revision.

    Raises ``DatabaseUnreachable`` when no connection opens within ``connect_timeout``
    seconds, and ``MigrationFailed`` when a migration step fails.
    """
    sync_url = to_sync_url(async_url)
    connect_args = {"connect_timeout": connect_timeout} if sync_url.startswith("postgresql") else {}
    engine = create_engine(sync_url, poolclass=pool.NullPool, connect_args=connect_args)
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise DatabaseUnreachable(_reason(exc)) from exc
        with conn:
            if engine.dialect.name == "postgresql":
                # Several replicas may start together; one migrates, the others wait.
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
            try:
                cfg = alembic_config(sync_url)
                cfg.attributes["connection"] = conn
                try:
                    command.upgrade(cfg, "head")
                    conn.commit()
                except Exception as exc:
                    # Alembic reports an unknown revision as its own error, SQL as
                    # SQLAlchemy's: either way the schema is not usable.
                    conn.rollback()
                    raise MigrationFailed(_reason(exc)) from exc
            finally:
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                    conn.commit()
    finally:
        engine.dispose()
