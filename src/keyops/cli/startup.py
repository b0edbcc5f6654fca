"""Startup refusals: every reason keyops will not start, as one line and exit status 2.

Settings, the admin password and the master keys are checked before anything touches
the database or the data directory, so a refused start leaves nothing behind (no key
file, no schema). The database is then migrated and its master key checked before the
server binds its port, so an operator or supervisor sees the reason on stderr instead of
a traceback from inside the server's startup.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from keyops.config import Settings
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
        raise Refused(
            f"can not reach the database {where} ({exc}): check KEYOPS_DATABASE_URL and that"
            " the database is running and reachable"
        ) from None
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
