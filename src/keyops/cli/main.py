"""The ``keyops`` command: serve, and manage users, projects, environments and tokens.

A client verb starts like a client: what only the server and the admin commands use
(SQLAlchemy, Alembic, the domain services, FastAPI and uvicorn) is imported inside
those commands, and ``keyops gateway`` is built only when it runs (``lazy``), so that
``keyops --help`` or ``keyops certs list`` imports none of it
(tests/cli/test_startup.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from keyops.cli.apply import (
    apply_command,
    certs_import_command,
    dump_command,
    keystores_import_command,
)
from keyops.cli.ask import PasswordStdin, UsageProblem, Yes, confirm, fail, password
from keyops.cli.audit import audit_app
from keyops.cli.backup import backup, restore
from keyops.cli.expiring import expiring
from keyops.cli.lazy import add_lazy_command
from keyops.cli.resources import certs_app, keystores_app, register_client_commands
from keyops.cli.webhooks import webhooks_app
from keyops.errors import KeyopsError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from keyops.cli.tls import TlsIdentity
    from keyops.config import Settings

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

# keyops.gateway.options.SUMMARY, which imports the whole node: the root's help shows
# this, `keyops gateway` the real one (tests/cli/test_startup.py checks they agree).
GATEWAY_SUMMARY = (
    "Run a gateway node: follow the environment's snapshots and serve them over TLS,\n"
    "or hand them to a real gateway through files (--driver)."
)


def _gateway() -> Callable[..., Any]:
    from keyops.cli.gateway import gateway

    return gateway


add_lazy_command(app, "gateway", GATEWAY_SUMMARY, _gateway)
app.command("expiring")(expiring)
app.command("backup")(backup)
app.command("restore")(restore)
register_client_commands(app)
certs_app.command("import")(certs_import_command)
keystores_app.command("import")(keystores_import_command)
app.command("apply")(apply_command)
app.command("dump")(dump_command)

out = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as package_version

        try:
            print(f"keyops {package_version('keyops')}")
        except PackageNotFoundError:  # a source tree that was never installed
            print("keyops (version unknown: not installed)")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """keyops: keys & secrets for API gateways."""


def _run(
    work: Callable[[Session, Settings], T],
    *,
    ask: Callable[[Session, Settings], str | None] | None = None,
    yes: bool = False,
    refusal: str = "",
) -> T:
    """Run one unit of work against the existing database, migrating it first.

    With ``ask``, that reads first (in its own transaction) and returns the question to
    confirm, or None to go ahead; the question is asked with no transaction open, so a
    waiting prompt holds no lock. A refusal (no database, settings, master key) exits 2
    with one line; an error of the work itself (a duplicate name, a too short password)
    exits 1 with one line.
    """
    from keyops.cli.startup import (
        Refused,
        exit_refused,
        load_settings,
        migrate,
        require_database,
    )
    from keyops.storage.db import Database

    try:
        settings = load_settings()
        # Admin commands never create a database: only `keyops serve` does.
        require_database(settings)
        migrate(settings)
        db = Database.of(settings)
        try:
            if ask is not None:
                with db.transaction() as session:
                    question = ask(session, settings)
                if question is not None:
                    confirm(question, yes=yes, refusal=refusal)
            with db.transaction() as session:
                return work(session, settings)
        finally:
            db.dispose()
    except Refused as exc:
        exit_refused(exc)
    except KeyopsError as exc:
        fail(exc.description)


def _found(lookup: Callable[[], object]) -> bool:
    """Whether a lookup succeeds; a missing thing is left to the work to report."""
    try:
        lookup()
    except KeyopsError:
        return False
    return True


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
    an unreachable database, a failed migration, a --workers below 1 or a running
    rotate-master-key. These are checked once, before any worker starts; then it prints
    its data directory and database (without a password). The first run creates the
    database, user admin and project admin.
    """
    from keyops.cli import serve as server
    from keyops.cli.serverlock import hold_shared
    from keyops.cli.startup import (
        Refused,
        check_settings,
        exit_refused,
        load_settings,
        preflight,
    )

    try:
        server.check_server(workers)
        settings = load_settings()
        check_settings(settings)
        # Before logging is set up, so that a refusal is the only line on stderr.
        preflight(settings)
        # Held until this process exits: rotate-master-key refuses meanwhile.
        hold_shared(settings)
    except Refused as exc:
        exit_refused(exc)
    server.announce(settings)
    server.run(settings, host=host, port=port, demo=demo, workers=workers)


# --- users ---------------------------------------------------------------------------


PasswordFlag = Annotated[
    str | None,
    typer.Option(
        "--password",
        help="The password (lands in the shell's history: prefer the prompt or --password-stdin).",
    ),
]


@user_app.command("create")
def user_create(
    username: str,
    password_flag: PasswordFlag = None,
    password_stdin: PasswordStdin = False,
    role: Annotated[list[str] | None, typer.Option(help="A role; repeat for several.")] = None,
) -> None:
    """Create a user. The password is asked for (hidden, twice) unless --password-stdin
    or --password gives it."""
    from keyops.domain.users import UserService

    secret = password(password_flag, password_stdin)

    def work(session: Session, _s: Settings) -> None:
        UserService(session).create(username, secret, role or [])

    _run(work)
    out.print(f"created user {username}")


@user_app.command("list")
def user_list() -> None:
    """List users and their roles."""
    from keyops.domain.users import UserService

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
    password_flag: PasswordFlag = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a user's password: asked for (hidden, twice) unless --password-stdin or
    --password gives it."""
    from keyops.domain.users import UserService

    secret = password(password_flag, password_stdin)

    def work(session: Session, _s: Settings) -> None:
        UserService(session).set_password(username, secret)

    _run(work)
    out.print(f"password of {username} changed")


@user_app.command("set-roles")
def user_set_roles(
    username: str,
    role: Annotated[list[str] | None, typer.Option(help="Repeat for several.")] = None,
    none: Annotated[bool, typer.Option("--none", help="Take every role away.")] = False,
) -> None:
    """Replace a user's roles with the --role ones (or none, with --none)."""
    from keyops.domain.users import UserService

    if none and role:
        raise UsageProblem("--none contradicts --role: give the roles, or --none alone")
    if not none and not role:
        raise UsageProblem(
            "no --role given: name every role the user keeps (--role ROLE_API_SECURITY"
            " --role ...), or give --none to take them all away"
        )

    def work(session: Session, _s: Settings) -> None:
        UserService(session).set_roles(username, role or [])

    _run(work)
    out.print(f"roles of {username}: {', '.join(sorted(role or [])) or '(none)'}")


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user: their tokens stop working at once."""
    from keyops.domain.users import UserService

    def work(session: Session, _s: Settings) -> None:
        UserService(session).set_enabled(username, False)

    _run(work)
    out.print(f"disabled {username}")


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a user."""
    from keyops.domain.users import UserService

    def work(session: Session, _s: Settings) -> None:
        UserService(session).set_enabled(username, True)

    _run(work)
    out.print(f"enabled {username}")


@user_app.command("delete")
def user_delete(username: str, yes: Yes = False) -> None:
    """Delete a user and their tokens (asks first, unless --yes)."""
    from keyops.domain.tokens import TokenService
    from keyops.domain.users import UserService

    def ask(session: Session, _s: Settings) -> str | None:
        if not _found(lambda: UserService(session).get(username)):
            return None
        tokens = len(TokenService(session).list(username))
        return f"Delete user {username} and their {tokens} token(s)?"

    def work(session: Session, _s: Settings) -> None:
        UserService(session).delete(username)

    _run(work, ask=ask, yes=yes, refusal=f"deleting user {username}")
    out.print(f"deleted {username}")


# --- projects ------------------------------------------------------------------------


@project_app.command("create")
def project_create(
    name: str,
    description: Annotated[str, typer.Option()] = "",
    member: Annotated[list[str] | None, typer.Option(help="A member; repeat for several.")] = None,
) -> None:
    """Create a project."""
    from keyops.domain.projects import ProjectService

    def work(session: Session, _s: Settings) -> None:
        ProjectService(session).create(name, description, member or [])

    _run(work)
    out.print(f"created project {name}")


@project_app.command("list")
def project_list() -> None:
    """List every project with its members."""
    from keyops.domain.projects import ProjectService

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
def project_delete(name: str, yes: Yes = False) -> None:
    """Delete a project and everything in it (asks first, unless --yes)."""
    from keyops.domain.projects import ADMIN_PROJECT, ProjectService

    def ask(session: Session, _s: Settings) -> str | None:
        if name == ADMIN_PROJECT or not _found(lambda: ProjectService(session).get(name)):
            return None  # refused, or not found, by the work itself
        return (
            f"Delete project {name} and everything in it (certificates, keys, keystores, JWKs,"
            " webhooks)?"
        )

    def work(session: Session, _s: Settings) -> None:
        ProjectService(session).delete(name)

    _run(work, ask=ask, yes=yes, refusal=f"deleting project {name}")
    out.print(f"deleted project {name}")


@project_app.command("add-member")
def project_add_member(name: str, username: str) -> None:
    """Make a user a member of a project."""
    from keyops.domain.projects import ProjectService

    def work(session: Session, _s: Settings) -> None:
        ProjectService(session).add_member(name, username)

    _run(work)
    out.print(f"{username} is a member of {name}")


@project_app.command("remove-member")
def project_remove_member(name: str, username: str) -> None:
    """Remove a user from a project."""
    from keyops.domain.projects import ProjectService

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
    from keyops.deploy.registry import target_names
    from keyops.domain.environments import EnvironmentService

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
    from keyops.cli.tls import identity_of
    from keyops.deploy.registry import target_names
    from keyops.domain.environments import EnvironmentService

    def work(session: Session, settings: Settings) -> list[tuple[str, ...]]:
        service = EnvironmentService(session, known_targets=target_names(settings))
        rows: list[tuple[str, ...]] = []
        for e in service.list_all():
            identity = identity_of(e)
            tls = identity.short if identity else ""
            rows.append((e.name, e.type, e.status, e.target, e.access_url, tls, e.description))
        return rows

    table = Table("name", "type", "status", "target", "accessUrl", "tlsIdentity", "description")
    for row in _run(work):
        table.add_row(*row)
    out.print(table)


@env_app.command("delete")
def env_delete(name: str, yes: Yes = False) -> None:
    """Delete an environment (asks first, unless --yes)."""
    from keyops.deploy.registry import target_names
    from keyops.domain.environments import EnvironmentService

    def ask(session: Session, settings: Settings) -> str | None:
        service = EnvironmentService(session, known_targets=target_names(settings))
        if not _found(lambda: service.get(name)):
            return None
        return (
            f"Delete environment {name}? Its copies of every certificate, key, keystore and"
            " JWK go with it, and its gateway nodes' credentials stop working."
        )

    def work(session: Session, settings: Settings) -> None:
        EnvironmentService(session, known_targets=target_names(settings)).delete(name)

    _run(work, ask=ask, yes=yes, refusal=f"deleting environment {name}")
    out.print(f"deleted environment {name}")


@env_app.command("node-token")
def env_node_token(
    name: str = typer.Argument(..., help="The environment."),
    label: Annotated[str, typer.Option("--name", help="A name for the credential.")] = "gateway",
) -> None:
    """Create a credential for the environment's gateway nodes and print it once."""
    from keyops.cli.startup import load_keyring_checked
    from keyops.deploy.registry import target_names
    from keyops.domain.environments import EnvironmentService
    from keyops.domain.gateway import GatewayService

    def work(session: Session, settings: Settings) -> str:
        env = EnvironmentService(session, known_targets=target_names(settings)).get(name)
        keyring = load_keyring_checked(session, settings)
        service = GatewayService.of(session, keyring, settings)
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
    clear: Annotated[
        bool, typer.Option("--clear", help="Serve no TLS identity (asks first, unless --yes).")
    ] = False,
    yes: Yes = False,
) -> None:
    """Choose the keystore entry the environment's gateway nodes serve TLS with
    (--project, --keystore and --alias), or --clear it."""
    from keyops.cli.startup import load_keyring_checked
    from keyops.cli.tls import TlsIdentity, check_alias, identity_of
    from keyops.deploy.registry import target_names
    from keyops.deploy.service import Deployer
    from keyops.domain.environments import EnvironmentService
    from keyops.domain.gateway import set_tls_identity
    from keyops.storage.db import Database

    flags = {"--project": project, "--keystore": keystore, "--alias": alias}
    given = [flag for flag, value in flags.items() if value is not None]
    if clear and given:
        raise UsageProblem(
            f"--clear contradicts {', '.join(given)}: give --clear alone to serve no TLS"
            " identity, or --project, --keystore and --alias to choose one"
        )
    missing = [flag for flag, value in flags.items() if not value]
    if not clear and missing:
        raise UsageProblem(
            f"{' and '.join(missing)} missing: choosing a TLS identity takes --project,"
            " --keystore and --alias (or --clear alone to serve none)"
        )
    chosen = None if clear else TlsIdentity(str(project), str(keystore), str(alias))
    confirmed: list[TlsIdentity | None] = []

    def ask(session: Session, settings: Settings) -> str | None:
        if not clear:
            return None
        env = EnvironmentService(session, known_targets=target_names(settings)).get(name)
        current = identity_of(env)
        confirmed.append(current)
        if current is None:
            return None
        return f"Clear the TLS identity of {name} ({current})? Its gateway nodes stop serving TLS."

    def work(session: Session, settings: Settings) -> tuple[TlsIdentity | None, TlsIdentity | None]:
        environments = EnvironmentService(session, known_targets=target_names(settings))
        env = environments.get(name)
        before = identity_of(env)
        keyring = load_keyring_checked(session, settings)
        if chosen is None:
            if confirmed and confirmed[0] != before:
                raise KeyopsError(
                    f"the TLS identity of {name} changed while you were asked (it is now"
                    f" {before or 'none'}): nothing was changed; run the command again"
                )
            plan = set_tls_identity(session, env, None, None, None)
        else:
            check_alias(session, environments, keyring, env, chosen)
            plan = set_tls_identity(session, env, chosen.project, chosen.keystore, chosen.alias)
        # The new revision is committed with the identity; nodes pick both up.
        Deployer(Database(settings.async_database_url), settings, keyring).stage(session, plan)
        return before, identity_of(env)

    before, after = _run(work, ask=ask, yes=yes, refusal=f"clearing the TLS identity of {name}")
    if after is not None:
        # Plain print: one line whatever the terminal's width, and names are not markup.
        print(
            f"TLS identity of {name} set to {after}; its gateway nodes pick it up on their"
            " next sync"
        )
    elif before is not None:
        print(
            f"TLS identity of {name} cleared (it was {before}); its gateway nodes stop serving"
            " TLS on their next sync"
        )
    else:
        print(f"{name} had no TLS identity; it still serves none")


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
    from keyops.domain.tokens import TokenService, parse_expiry

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
    from keyops.domain.tokens import TokenService
    from keyops.storage.models.base import utcnow

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
    token_id: Annotated[int, typer.Argument(help="The id from 'keyops token list'.")],
    yes: Yes = False,
) -> None:
    """Revoke a personal access token (asks first, unless --yes)."""
    from keyops.domain.tokens import TokenService

    def ask(session: Session, _s: Settings) -> str | None:
        # Any kind: a token issued at login is not listed, but is revoked by id too.
        record = TokenService(session).find(token_id)
        if record is None or record.revoked_at is not None:
            return None  # not found, or nothing left to do
        return (
            f"Revoke token {token_id} ({record.name}, of {record.user.username})? Whatever"
            " uses it is refused from now on."
        )

    def work(session: Session, _s: Settings) -> None:
        TokenService(session).revoke(token_id)

    _run(work, ask=ask, yes=yes, refusal=f"revoking token {token_id}")
    out.print(f"revoked token {token_id}")


@app.command("rotate-master-key")
def rotate_master_key() -> None:
    """Re-seal every secret under a new master key, in one transaction.

    Stop every keyops serve on the database first (with replicas: all of them); the
    command refuses while one runs, and a server refuses to start until it is done.

    With the key file (the default), the new key replaces master.key once the
    transaction has committed, and the old one is kept as master.key.previous-ID until
    you remove it. With KEYOPS_MASTER_KEY, the new key is printed once: set it on every
    keyops process, then start them again.
    """
    from keyops.cli.serverlock import exclusive
    from keyops.cli.startup import Refused, exit_refused, load_settings, require_database

    try:
        settings = load_settings()
        require_database(settings)
        with exclusive(settings):
            _rotate(settings)
    except Refused as exc:  # no database, a bad setting, or a server running on it
        exit_refused(exc)


def _rotate(settings: Settings) -> None:
    from keyops.crypto.envelope import encode_master_key, key_id, new_master_key
    from keyops.domain.masterkey import MasterKeyMismatch, check_master_key, rotate
    from keyops.secrets import MASTER_KEY_FILE, load_keyring, write_key_file

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
        fail(str(exc))
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
        fail(str(exc))
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
