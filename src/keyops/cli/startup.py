"""Startup refusals: every reason keyops will not start, as one line and exit status 2.

Settings, the admin password and the master keys are checked before anything touches
the database or the data directory, so a refused start leaves nothing behind (no key
file, no schema). The database is then migrated and its master key checked before the
server binds its port, so an operator or supervisor sees the reason on stderr instead of
a traceback from inside the server's startup.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from keyops.config import Settings, to_sync_url
from keyops.crypto.envelope import decode_master_key
from keyops.deploy.registry import target_names
from keyops.domain.masterkey import (
    MasterKeyMismatch,
    MasterKeyMissing,
    check_master_key,
    open_keyring,
)
from keyops.domain.users import MIN_PASSWORD_LENGTH
from keyops.errors import KeyopsError
from keyops.net.fetch import parse_allow_list
from keyops.secrets import MASTER_KEY_FILE, Keyring
from keyops.storage.db import Database
from keyops.storage.migrate import DatabaseUnreachable, MigrationFailed, upgrade_to_head

__all__ = [
    "EXIT_REFUSED",
    "Refused",
    "check_settings",
    "describe_database",
    "exit_refused",
    "load_keyring_checked",
    "load_settings",
    "migrate",
    "preflight",
    "require_database",
    "sqlite_path",
    "unreachable",
]

# Exit status of every refusal to start; 1 stays "the command ran and failed".
EXIT_REFUSED = 2
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class Refused(Exception):
    """keyops will not start; the message says what is wrong and how to fix it."""


def exit_refused(reason: Refused | str) -> NoReturn:
    """Print the one-line reason to stderr and exit with ``EXIT_REFUSED``."""
    # Plain print, not rich: a console would wrap the line at the terminal's width.
    print(f"keyops: {' '.join(str(reason).split())}", file=sys.stderr, flush=True)
    raise typer.Exit(EXIT_REFUSED)


def _env_name(loc: tuple[int | str, ...]) -> str:
    return "KEYOPS_" + str(loc[0]).upper() if loc else "a KEYOPS_ setting"


def load_settings() -> Settings:
    """The settings from the environment, or a refusal naming each bad variable."""
    try:
        settings = Settings()
    except ValidationError as exc:
        # The value is not repeated: it may be a secret.
        problems = "; ".join(
            f"{_env_name(e['loc'])} is not valid ({e['msg'][:1].lower()}{e['msg'][1:]})"
            for e in exc.errors()
        )
        raise Refused(f"{problems}: fix or unset it") from None
    try:
        settings.async_database_url  # noqa: B018 - parsed here so a bad URL is refused now
    except ValueError as exc:
        raise Refused(
            f"KEYOPS_DATABASE_URL is not valid ({exc}): use sqlite:///path.db or"
            " postgresql://user@host/db"
        ) from None
    return settings


def check_settings(settings: Settings) -> None:
    """Refuse values only used later (first run, requests) that can already be judged."""
    password = settings.admin_password.get_secret_value() if settings.admin_password else ""
    if password and len(password) < MIN_PASSWORD_LENGTH:
        raise Refused(
            f"KEYOPS_ADMIN_PASSWORD is too short ({len(password)} characters): at least"
            f" {MIN_PASSWORD_LENGTH} characters are required; set a longer one, or unset it"
            " to have one generated on the first run"
        )
    if settings.log_level.lower() not in LOG_LEVELS:
        raise Refused(f"KEYOPS_LOG_LEVEL is not valid: use one of {', '.join(LOG_LEVELS)}")
    if settings.master_key:
        try:
            decode_master_key(settings.master_key.get_secret_value())
        except ValueError as exc:
            raise Refused(
                f"KEYOPS_MASTER_KEY is not valid ({exc}): set it to the base64 of a 32-byte"
                f" key, or unset it to use {settings.data_dir.resolve() / MASTER_KEY_FILE}"
            ) from None
    if settings.previous_master_keys:
        for item in settings.previous_master_keys.get_secret_value().split(","):
            try:
                if item.strip():
                    decode_master_key(item)
            except ValueError as exc:
                raise Refused(
                    f"KEYOPS_PREVIOUS_MASTER_KEYS is not valid ({exc}): set it to"
                    " comma-separated base64 32-byte keys, or unset it"
                ) from None
    try:
        parse_allow_list(settings.url_allow_list)
    except ValueError as exc:
        raise Refused(f"KEYOPS_URL_ALLOW_LIST is not valid: {exc}") from None
    try:
        target_names(settings)
    except KeyopsError as exc:
        raise Refused(exc.description) from None


def describe_database(settings: Settings) -> str:
    """The database URL as the operator wrote it, without its password."""
    url = make_url(settings.async_database_url)
    return str(url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True))


def unreachable(settings: Settings, reason: object) -> Refused:
    """The refusal for a database that does not answer."""
    return Refused(
        f"can not reach the database {describe_database(settings)} ({reason}): check"
        " KEYOPS_DATABASE_URL and that the database is running and reachable"
    )


def sqlite_path(settings: Settings) -> Path | None:
    """The file of a SQLite database (absolute), None for PostgreSQL or an in-memory one."""
    url = make_url(to_sync_url(settings.async_database_url))
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()


def _where(settings: Settings, path: Path | None) -> str:
    """Where an admin command looked, and which variable said so."""
    if settings.database_url is None and path is not None:
        return (
            f"in the data directory {settings.data_dir.resolve()} ({path}; KEYOPS_DATA_DIR,"
            " default ./keyops-data, is relative to the current directory)"
        )
    if path is not None:
        return f"at {describe_database(settings)} ({path}; KEYOPS_DATABASE_URL)"
    return f"at {describe_database(settings)} (KEYOPS_DATABASE_URL)"


def _has_keyops_tables(settings: Settings, path: Path | None) -> bool:
    """Whether the database holds keyops' schema; opened read-only, so nothing is made."""
    if path is not None:
        try:
            with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
                found = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
                ).fetchone()
        except sqlite3.Error as exc:
            raise unreachable(settings, exc) from None
        return found is not None
    engine = create_engine(
        to_sync_url(settings.async_database_url),
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": settings.database_connect_timeout_seconds},
    )
    try:
        with engine.connect() as conn:
            # to_regclass follows the search_path, as Alembic does.
            return bool(
                conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
            )
    except SQLAlchemyError as exc:
        inner = getattr(exc, "orig", None) or exc
        raise unreachable(settings, " ".join(str(inner).split())) from None
    finally:
        engine.dispose()


def require_database(settings: Settings) -> None:
    """Refuse unless a keyops database exists where the settings point: the admin
    commands never create one (a typo'd directory would give an empty install);
    ``keyops serve`` does, on its first run."""
    path = sqlite_path(settings)
    if path is None and settings.async_database_url.startswith("sqlite"):
        problem = "an in-memory database holds no keyops data"
    elif path is not None and not path.is_file():
        problem = "no keyops database"
    elif not _has_keyops_tables(settings, path):
        problem = "no keyops tables in the database"
    else:
        return
    raise Refused(
        f"{problem} {_where(settings, path)}: set KEYOPS_DATA_DIR to the data directory of"
        " your keyops serve, or KEYOPS_DATABASE_URL to its database; this command never"
        " creates one (keyops serve does, on its first run)"
    )


def migrate(settings: Settings) -> None:
    """Migrate the configured database, refusing with the reason if that fails."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    where = describe_database(settings)
    try:
        upgrade_to_head(
            settings.async_database_url,
            connect_timeout=settings.database_connect_timeout_seconds,
        )
    except DatabaseUnreachable as exc:
        raise unreachable(settings, exc) from None
    except MigrationFailed as exc:
        raise Refused(
            f"migrating the database {where} failed ({exc}): restore it from a backup, or"
            " run the keyops version that last migrated it"
        ) from None


def load_keyring_checked(session: Session, settings: Settings) -> Keyring:
    """The configured keyring, checked against the key the database's secrets are sealed with."""
    try:
        keyring = open_keyring(session, settings)
        check_master_key(session, keyring)
    except (MasterKeyMissing, MasterKeyMismatch) as exc:
        raise Refused(str(exc)) from None
    except (OSError, ValueError) as exc:
        # The key file: unreadable, readable by others, or not a key.
        raise Refused(
            f"the master key file can not be used ({exc}): restore it from your backup with"
            " mode 0600, or set KEYOPS_MASTER_KEY"
        ) from None
    return keyring


def preflight(settings: Settings) -> None:
    """Everything ``serve`` refuses to start without, checked before the port is bound."""
    migrate(settings)
    db = Database.of(settings)
    try:
        with db.transaction() as session:
            load_keyring_checked(session, settings)
    finally:
        db.dispose()
