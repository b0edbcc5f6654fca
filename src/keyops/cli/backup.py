"""``keyops backup FILE`` and ``keyops restore FILE``: the database, never the master key.

SQLite is copied consistently while the server runs (SQLite's online backup API);
PostgreSQL is dumped with ``pg_dump -Fc`` and restored with ``pg_restore``, or the exact
command is printed when those tools are not installed. A restore goes only into an
empty data directory or database, and only after every sealed value of the backup has
been opened with the configured master key. Every refusal is one line on stderr and
exit status 2 (as ``serve``'s); the work is in ``keyops.storage.backup``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

# The work (keyops.storage.backup, the settings, the master key) is imported by the two
# commands and what they call: the other commands start without SQLAlchemy.
if TYPE_CHECKING:
    from keyops.config import Settings
    from keyops.secrets import Keyring
    from keyops.storage import backup as store

    # What a restore reports: the backup's contents and revision, how many sealed
    # values the key opened, where that key is, and its id.
    Restored = tuple[store.Contents, store.Revision, int, str, str | None]

__all__ = ["backup", "restore"]


def _settings() -> Settings:
    from keyops.cli.startup import Refused, check_settings, exit_refused, load_settings

    try:
        settings = load_settings()
        check_settings(settings)
    except Refused as exc:
        exit_refused(exc)
    return settings


def _is_sqlite(settings: Settings) -> bool:
    return settings.async_database_url.startswith("sqlite")


def _where_key(settings: Settings) -> str:
    from keyops.secrets import MASTER_KEY_FILE

    if settings.master_key:
        return "in KEYOPS_MASTER_KEY"
    return f"in {(settings.data_dir / MASTER_KEY_FILE).resolve()}"


def _tool_missing(exc: store.ToolMissing) -> NoReturn:
    from keyops.cli.startup import exit_refused

    print(exc.command, flush=True)
    exit_refused(str(exc))


def backup(
    file: Annotated[Path, typer.Argument(help="The backup file to write.", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Back up the database to FILE while keyops runs; the master key is not in it.

    SQLite: a consistent copy, made with SQLite's online backup API.

    PostgreSQL: pg_dump --format=custom; without pg_dump on PATH, the command to run.

    Back up the master key separately: no backup can be restored without it.
    """
    from keyops.cli.startup import describe_database, exit_refused
    from keyops.secrets import MASTER_KEY_FILE
    from keyops.storage import backup as store

    settings = _settings()
    where = describe_database(settings)
    file = file.absolute()
    try:
        if _is_sqlite(settings):
            db = store.sqlite_path(settings.async_database_url)
            if not db.is_file():
                raise store.BackupRefused(
                    f"there is no database at {db} (data directory {settings.data_dir.resolve()}):"
                    " nothing to back up; set KEYOPS_DATA_DIR or KEYOPS_DATABASE_URL to the"
                    " server's"
                )
            contents = store.backup_sqlite(db, file, force=force)
        else:
            contents = store.backup_postgres(
                settings.async_database_url,
                file,
                force=force,
                connect_timeout=settings.database_connect_timeout_seconds,
            )
    except store.ToolMissing as exc:
        _tool_missing(exc)
    except store.BackupRefused as exc:
        exit_refused(f"no backup made of {where}: {exc}")
    size = file.stat().st_size
    print(f"wrote {file.resolve()} ({size} bytes) from {where}: {contents.summary()}")
    sealed = (
        f"its secrets are sealed with master key {contents.master_key_id}"
        if contents.master_key_id
        else "it records no master key yet"
    )
    key_file = settings.data_dir / MASTER_KEY_FILE
    if not settings.master_key and not key_file.is_file():
        print(
            f"The master key is not in the backup ({sealed}), and it is not at"
            f" {key_file.resolve()} either: find it and back it up separately, or this backup"
            " can not be restored."
        )
        return
    print(
        f"The master key is not in the backup ({sealed}); it is {_where_key(settings)}:"
        " back it up separately, and keep it apart from this file: restore needs it."
    )


def _keyring(settings: Settings, key_file: Path | None) -> Keyring | None:
    """The key the restore checks the backup with (--master-key-file, or the configured
    one), or None when there is none."""
    from keyops.crypto.envelope import decode_master_key
    from keyops.secrets import Keyring, load_keyring, read_key_file
    from keyops.storage import backup as store

    previous = (
        settings.previous_master_keys.get_secret_value() if settings.previous_master_keys else None
    )
    try:
        if key_file is not None:
            if settings.master_key:
                raise store.BackupRefused(
                    "both KEYOPS_MASTER_KEY and --master-key-file are given: give one"
                )
            if not key_file.is_file():
                raise store.BackupRefused(
                    f"the master key file {key_file.absolute()} does not exist"
                )
            earlier = [decode_master_key(p) for p in (previous or "").split(",") if p.strip()]
            return Keyring(read_key_file(key_file), earlier)
        master_key = settings.master_key.get_secret_value() if settings.master_key else None
        return load_keyring(master_key, settings.data_dir, previous, create=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise store.BackupRefused(f"the master key can not be used ({exc})") from None


def _install_key(settings: Settings, key_file: Path | None, keyring: Keyring | None) -> str:
    """Put --master-key-file into the data directory (after every check); where the key is."""
    from keyops.crypto.envelope import key_id
    from keyops.secrets import MASTER_KEY_FILE, read_key_file, write_key_file
    from keyops.storage import backup as store

    if keyring is None:
        return ""
    if key_file is None:
        return _where_key(settings)
    dest = settings.data_dir / MASTER_KEY_FILE
    if dest.exists():
        if key_id(read_key_file(dest)) != keyring.current_id:
            raise store.BackupRefused(
                f"{dest.resolve()} holds another master key than --master-key-file: remove it"
                " or leave --master-key-file out"
            )
    else:
        write_key_file(dest, keyring.current)
    return f"in {dest.resolve()}"


def restore(
    file: Annotated[Path, typer.Argument(help="The backup file to restore.", show_default=False)],
    master_key_file: Annotated[
        Path | None,
        typer.Option(
            "--master-key-file",
            help="The master key file the backup was sealed with; copied into the data"
            " directory. Default: KEYOPS_MASTER_KEY or the data directory's master.key.",
        ),
    ] = None,
) -> None:
    """Restore FILE (made by keyops backup) into an empty data directory or database.

    Nothing is written unless the target is empty and the master key opens every secret.

    A backup from an older keyops is migrated; one from a newer keyops is refused.
    """
    from keyops.cli.startup import Refused, describe_database, exit_refused, migrate
    from keyops.storage import backup as store

    settings = _settings()
    where = describe_database(settings)
    file = file.absolute()
    try:
        if _is_sqlite(settings):
            contents, revision, opened, key_where, ring_id = _restore_sqlite(
                settings, file, master_key_file
            )
        else:
            contents, revision, opened, key_where, ring_id = _restore_postgres(
                settings, file, master_key_file
            )
    except store.ToolMissing as exc:
        _tool_missing(exc)
    except store.BackupRefused as exc:
        exit_refused(f"not restored into {where}: {exc}")
    if revision.older:
        try:
            migrate(settings)
        except Refused as exc:
            exit_refused(exc)
    migrated = f" (migrated to {revision.head})" if revision.older else ""
    print(f"restored {file.resolve()} into {where}: {contents.summary()}{migrated}")
    if ring_id is None:
        print("The backup records no master key and holds no sealed value.")
        return
    print(
        f"master key {ring_id} opened all {opened} sealed value(s) of the backup; it is"
        f" {key_where}: start keyops serve with the same key."
    )


def _ring_id(keyring: Keyring | None) -> str | None:
    return keyring.current_id if keyring is not None else None


def _restore_sqlite(settings: Settings, file: Path, key_file: Path | None) -> Restored:
    from keyops.storage import backup as store

    db = store.sqlite_path(settings.async_database_url)
    # Only the default database file makes the whole data directory keyops'.
    data_dir = settings.data_dir.resolve() if settings.database_url is None else None
    store.check_sqlite_target(file, db, data_dir)
    keyring = _keyring(settings, key_file)
    key_where: list[str] = []
    contents, revision, opened = store.restore_sqlite(
        file,
        db,
        data_dir=data_dir,
        keyring=keyring,
        before_write=lambda: key_where.append(_install_key(settings, key_file, keyring)),
    )
    return contents, revision, opened, key_where[0], _ring_id(keyring)


def _restore_postgres(settings: Settings, file: Path, key_file: Path | None) -> Restored:
    from keyops.storage import backup as store

    url = settings.async_database_url
    timeout = settings.database_connect_timeout_seconds
    store.require_tool("pg_restore", store.pg_restore_command(url, file), "restore the dump")
    facts = store.dump_contents(file)
    problem = store.target_problem(url, timeout)
    if problem:
        raise store.BackupRefused(
            f"{problem}: restore only into an empty database (for example a new one from createdb)"
        )
    revision = store.check_revision(facts.revision)
    keyring = _keyring(settings, key_file)
    opened = store.check_sealed(iter(facts.sealed), keyring, facts.master_key_id)
    key_where = _install_key(settings, key_file, keyring)
    store.restore_postgres(file, url, connect_timeout=timeout)
    contents = store.postgres_contents(url, timeout)
    return contents, revision, opened, key_where, _ring_id(keyring)


if __name__ == "__main__":  # pragma: no cover - a stand-in until main.py registers these
    cli = typer.Typer(no_args_is_help=True)
    cli.command("backup")(backup)
    cli.command("restore")(restore)
    cli()
