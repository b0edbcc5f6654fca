"""The ``keyops`` command: serve, and manage users, projects, environments and tokens."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from keyops.cli.audit import audit_app
from keyops.cli.expiring import expiring
from keyops.cli.gateway import gateway
from keyops.cli.startup import (
    Refused,
    check_settings,
    exit_refused,
    load_keyring_checked,
    load_settings,
    migrate,
    preflight,
)
from keyops.cli.webhooks import webhooks_app
from keyops.config import Settings
from keyops.deploy.registry import target_names
from keyops.domain.environments import EnvironmentService
from keyops.domain.projects import ProjectService
from keyops.domain.tokens import TokenService, parse_expiry
from keyops.domain.users import UserService
from keyops.errors import KeyopsError
from keyops.storage.db import Database
from keyops.storage.models.base import utcnow

T = TypeVar("T")

app = typer.Typer(help="keyops: keys & secrets for API gateways.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
project_app = typer.Typer(help="Manage projects and their members.", no_args_is_help=True)
env_app = typer.Typer(help="Manage environments.", no_args_is_help=True)
token_app = typer.Typer(help="Manage personal access tokens.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(project_app, name="project")
app.add_typer(env_app, name="env")
app.add_typer(token_app, name="token")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(audit_app, name="audit")
app.command("gateway")(gateway)
app.command("expiring")(expiring)

out = Console()
err = Console(stderr=True)


def _run(work: Callable[[Session, Settings], T]) -> T:
    """Run one unit of work against the configured database, migrating it first.

    A refusal (settings, database, master key) exits 2 with one line; an error of the
    work itself (a duplicate name, a too short password) exits 1 with one line.
    """
    try:
        settings = load_settings()

        migrate(settings)
        db = Database.of(settings)
        try:
            with db.transaction() as session:
                return work(session, settings)
        finally:
            db.dispose()
    except Refused as exc:
        exit_refused(exc)
    except KeyopsError as exc:
        # Plain print, not rich: a console would wrap the line at the terminal's width.
        print(f"error: {' '.join(exc.description.split())}", file=sys.stderr, flush=True)
        raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    demo: Annotated[
        bool, typer.Option(help="Also create project MyProject and three environments.")
    ] = False,
    workers: Annotated[
        int, typer.Option(help="Server processes sharing the port and the database.")
    ] = 1,
) -> None:
    """Start the keyops service.

    Refuses to start (exit status 2, one line on stderr saying what to fix) on a bad
    setting, a too short KEYOPS_ADMIN_PASSWORD, a missing, malformed or wrong master key,
    an unreachable database, a failed migration or a --workers below 1. These are
    checked once, before any worker starts.
    """
    from keyops.cli import serve as server

    try:
        server.check_server(workers)
        settings = load_settings()
        check_settings(settings)
        # Before logging is set up, so that a refusal is the only line on stderr.
        preflight(settings)
    except Refused as exc:
        exit_refused(exc)
    server.run(settings, host=host, port=port, demo=demo, workers=workers)


# --- users ---------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    role: Annotated[list[str] | None, typer.Option(help="A role; repeat for several.")] = None,
) -> None:
    """Create a user."""

    def work(session: Session, _s: Settings) -> None:
        UserService(session).create(username, password, role or [])

    _run(work)
    out.print(f"created user {username}")


@user_app.command("list")
def user_list() -> None:
    """List users and their roles."""

    def work(session: Session, _s: Settings) -> list[tuple[str, str, str]]:
        return [
            (u.username, ", ".join(sorted(u.role_names)), "yes" if u.enabled else "no")
            for u in UserService(session).list()
        ]

    table = Table("username", "roles", "enabled")
    for row in _run(work):
        table.add_row(*row)
    out.print(table)


@user_app.command("set-password")
def user_set_password(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a user's password."""

    def work(session: Session, _s: Settings) -> None:
        UserService(session).set_password(username, password)

    _run(work)
    out.print(f"password of {username} changed")


@user_app.command("set-roles")
def user_set_roles(
    username: str,
    role: Annotated[list[str] | None, typer.Option(help="Repeat for several.")] = None,
) -> None:
    """Replace a user's roles."""

    def work(session: Session, _s: Settings) -> None:
        UserService(session).set_roles(username, role or [])

    _run(work)
    out.print(f"roles of {username}: {', '.join(sorted(role or [])) or '(none)'}")


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user: their tokens stop working at once."""

    def work(session: Session, _s: Settings) -> None:
        UserService(session).set_enabled(username, False)

    _run(work)
    out.print(f"disabled {username}")


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a user."""

    def work(session: Session, _s: Settings) -> None:
        UserService(session).set_enabled(username, True)

    _run(work)
    out.print(f"enabled {username}")


@user_app.command("delete")
def user_delete(username: str) -> None:
    """Delete a user and their tokens."""

    def work(session: Session, _s: Settings) -> None:
        UserService(session).delete(username)

    _run(work)
    out.print(f"deleted {username}")


# --- projects ------------------------------------------------------------------------


@project_app.command("create")
def project_create(
    name: str,
    description: Annotated[str, typer.Option()] = "",
    member: Annotated[list[str] | None, typer.Option(help="A member; repeat for several.")] = None,
) -> None:
    """Create a project."""

    def work(session: Session, _s: Settings) -> None:
        ProjectService(session).create(name, description, member or [])

    _run(work)
    out.print(f"created project {name}")


@project_app.command("list")
def project_list() -> None:
    """List every project with its members."""

    def work(session: Session, _s: Settings) -> list[tuple[str, str, str]]:
        service = ProjectService(session)
        rows = []
        for p in service.list_all():
            members = ", ".join(u.username for u in service.members(p.name))
            rows.append((p.name, p.description, members))
        return rows

    table = Table("name", "description", "members")
    for row in _run(work):
        table.add_row(*row)
    out.print(table)


@project_app.command("delete")
def project_delete(name: str) -> None:
    """Delete a project and everything in it."""

    def work(session: Session, _s: Settings) -> None:
        ProjectService(session).delete(name)

    _run(work)
    out.print(f"deleted project {name}")


@project_app.command("add-member")
def project_add_member(name: str, username: str) -> None:
    """Make a user a member of a project."""

    def work(session: Session, _s: Settings) -> None:
        ProjectService(session).add_member(name, username)

    _run(work)
    out.print(f"{username} is a member of {name}")


@project_app.command("remove-member")
def project_remove_member(name: str, username: str) -> None:
    """Remove a user from a project."""

    def work(session: Session, _s: Settings) -> None:
        ProjectService(session).remove_member(name, username)

    _run(work)
    out.print(f"{username} is no longer a member of {name}")


# --- environments --------------------------------------------------------------------


@env_app.command("create")
def env_create(
    name: str,
    type: Annotated[str, typer.Option(help="PRODUCTION, SANDBOX or TEST.")] = "TEST",
    description: Annotated[str, typer.Option()] = "",
    access_url: Annotated[str, typer.Option()] = "",
    project: Annotated[
        list[str] | None,
        typer.Option(help="Limit to this project; repeat for several. Default: every project."),
    ] = None,
    target: Annotated[str, typer.Option(help="Deployment target kind.")] = "local",
) -> None:
    """Create an environment."""

    def work(session: Session, settings: Settings) -> None:
        EnvironmentService(session, known_targets=target_names(settings)).create(
            name,
            description=description,
            type=type,
            access_url=access_url,
            projects=project or [],
            target=target,
        )

    _run(work)
    out.print(f"created environment {name}")


@env_app.command("list")
def env_list() -> None:
    """List environments."""

    def work(session: Session, settings: Settings) -> list[tuple[str, ...]]:
        service = EnvironmentService(session, known_targets=target_names(settings))
        return [
            (e.name, e.type, e.status, e.target, e.access_url, e.description)
            for e in service.list_all()
        ]

    table = Table("name", "type", "status", "target", "accessUrl", "description")
    for row in _run(work):
        table.add_row(*row)
    out.print(table)


@env_app.command("delete")
def env_delete(name: str) -> None:
    """Delete an environment."""

    def work(session: Session, settings: Settings) -> None:
        EnvironmentService(session, known_targets=target_names(settings)).delete(name)

    _run(work)
    out.print(f"deleted environment {name}")


@env_app.command("node-token")
def env_node_token(
    name: str = typer.Argument(..., help="The environment."),
    label: Annotated[str, typer.Option("--name", help="A name for the credential.")] = "gateway",
) -> None:
    """Create a credential for the environment's gateway nodes and print it once."""
    from keyops.domain.gateway import GatewayService

    def work(session: Session, settings: Settings) -> str:
        env = EnvironmentService(session, known_targets=target_names(settings)).get(name)
        keyring = load_keyring_checked(session, settings)
        service = GatewayService(
            session, keyring, node_ttl_seconds=settings.gateway_node_ttl_seconds
        )
        token, _record = service.create_credential(env, label)
        return token

    print(_run(work))
    err.print("This credential is shown only once. Give it to the environment's gateway nodes.")


@env_app.command("set-tls")
def env_set_tls(
    name: str = typer.Argument(..., help="The environment."),
    project: Annotated[str | None, typer.Option(help="Project of the keystore.")] = None,
    keystore: Annotated[str | None, typer.Option(help="Keystore name.")] = None,
    alias: Annotated[str | None, typer.Option(help="Private key entry alias.")] = None,
    clear: Annotated[bool, typer.Option(help="Serve no TLS identity.")] = False,
) -> None:
    """Choose the keystore entry the environment's gateway nodes serve TLS with."""
    from keyops.deploy.service import Deployer
    from keyops.domain.gateway import set_tls_identity

    def work(session: Session, settings: Settings) -> None:
        env = EnvironmentService(session, known_targets=target_names(settings)).get(name)
        keyring = load_keyring_checked(session, settings)
        if clear:
            plan = set_tls_identity(session, env, None, None, None)
        else:
            plan = set_tls_identity(session, env, project, keystore, alias)
        # The new revision is committed with the identity; nodes pick both up.
        Deployer(Database(settings.async_database_url), settings, keyring).stage(session, plan)

    _run(work)
    out.print(f"TLS identity of {name} set; its gateway nodes pick it up on their next sync")


# --- tokens --------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="The user the token acts as.")],
    name: Annotated[str, typer.Option(help="A name to tell the token apart.")],
    expires: Annotated[
        str, typer.Option(help="YYYY-MM-DD (valid through that day, UTC) or never.")
    ] = "never",
) -> None:
    """Create a personal access token and print it once."""

    def work(session: Session, _s: Settings) -> str:
        issued = TokenService(session).create_personal(user, name, parse_expiry(expires))
        return issued.token

    token = _run(work)
    # Only the token on stdout, so that `TOKEN=$(keyops token create ...)` works.
    print(token)
    err.print("This token is shown only once. Store it now.")


@token_app.command("list")
def token_list(user: Annotated[str | None, typer.Option(help="Only this user's.")] = None) -> None:
    """List personal access tokens (never the tokens themselves)."""

    def work(session: Session, _s: Settings) -> list[tuple[str, ...]]:
        now = utcnow()
        rows: list[tuple[str, ...]] = []
        for t in TokenService(session).list(user):
            if t.revoked_at is not None:
                state = "revoked"
            elif t.expires_at is not None and t.expires_at <= now:
                state = "expired"
            else:
                state = "active"
            rows.append(
                (
                    str(t.id),
                    t.user.username,
                    t.name,
                    t.prefix + "…",
                    t.created_at.strftime("%Y-%m-%d %H:%M"),
                    t.expires_at.strftime("%Y-%m-%d %H:%M") if t.expires_at else "never",
                    state,
                )
            )
        return rows

    table = Table("id", "user", "name", "prefix", "created", "expires", "state")
    for row in _run(work):
        table.add_row(*row)
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The id from `token list`.")],
) -> None:
    """Revoke a personal access token."""

    def work(session: Session, _s: Settings) -> None:
        TokenService(session).revoke(token_id)

    _run(work)
    out.print(f"revoked token {token_id}")


@app.command("rotate-master-key")
def rotate_master_key() -> None:
    """Re-seal every secret under a new master key, in one transaction.

    With the key file (the default), the new key replaces ``master.key`` once the
    transaction has committed and the old one is kept as ``master.key.previous-<id>``
    until you remove it. With ``KEYOPS_MASTER_KEY``, the new key is printed once: set it
    on every keyops process before restarting them.
    """
    from keyops.crypto.envelope import encode_master_key, key_id, new_master_key
    from keyops.domain.masterkey import MasterKeyMismatch, check_master_key, rotate
    from keyops.secrets import MASTER_KEY_FILE, load_keyring, write_key_file

    settings = Settings()
    # As for the server (keyring_of): an empty KEYOPS_MASTER_KEY means the key file.
    from_env = bool(settings.master_key)
    try:
        old = load_keyring(
            settings.master_key.get_secret_value() if settings.master_key else None,
            settings.data_dir,
            settings.previous_master_keys.get_secret_value()
            if settings.previous_master_keys
            else None,
            create=False,
        )
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    new_key = new_master_key()
    key_file = settings.data_dir / MASTER_KEY_FILE
    staged = key_file.with_name(MASTER_KEY_FILE + ".new")
    if not from_env:
        # Written before the commit, so the new key exists wherever the data is sealed
        # under it, even if this process dies right after the commit.
        write_key_file(staged, new_key)

    def work(session: Session, _s: Settings) -> tuple[str, str, int]:
        check_master_key(session, old)
        report = rotate(session, old, new_key)
        return report.old_key_id, report.new_key_id, report.values

    try:
        old_id, new_id, count = _run(work)
    except MasterKeyMismatch as exc:
        # Nothing was re-sealed: the staged key would only mislead.
        staged.unlink(missing_ok=True)
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if from_env:
        print(encode_master_key(new_key))
        err.print(
            f"Re-sealed {count} value(s): master key {old_id} -> {new_id}. The new key is"
            " shown once, above: set KEYOPS_MASTER_KEY to it on every keyops process and"
            " restart them; the old key no longer opens anything in this database."
        )
        return
    previous = key_file.with_name(f"{MASTER_KEY_FILE}.previous-{key_id(old.current)}")
    key_file.replace(previous)
    staged.replace(key_file)
    out.print(
        f"Re-sealed {count} value(s): master key {old_id} -> {new_id}. {key_file} holds the"
        f" new key; the old one is in {previous} for backups taken before now: store it"
        " with those backups, then delete it here."
    )
