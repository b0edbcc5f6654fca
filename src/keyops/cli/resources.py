"""The client verbs: ``keyops login``/``logout``, ``certs``, ``keys``, ``keystores``,
``jwks``, ``envs``, ``deployments`` and ``nodes``, all through ``keyops.client``.

Every verb takes ``--url``/``--token`` (``KEYOPS_URL``/``KEYOPS_TOKEN``), ``--profile``,
``-o table|json|yaml`` and ``--quiet``: the ``verb`` decorator adds them to the
command's signature and hands the command an ``Invocation`` instead, which holds the
client and prints. A refused call ends in ``Invocation.fail``: one line on stderr and
the exit code ``output.exit_code`` gives; a usage error (a missing or bad option) exits
1 too, not Click's 2, which here means "not found".
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, get_type_hints

import typer
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from typer._click.core import Command, Context
from typer._click.exceptions import UsageError
from typer.core import TyperCommand, TyperGroup

from keyops.cli.ask import PasswordStdin as PasswordStdinOption
from keyops.cli.ask import Yes, confirm
from keyops.cli.ask import password as ask_password
from keyops.cli.http import fail
from keyops.cli.output import (
    EXIT_PARTIAL,
    EXIT_SERVER,
    EXIT_USAGE,
    Format,
    change_table,
    dump,
    exit_code,
    expiry_cell,
    jwk_results_table,
    mark,
    names,
    out,
)
from keyops.cli.profiles import (
    DEFAULT_PROFILE,
    ProfileOption,
    Stored,
    Target,
    config_path,
    load,
    remove,
    resolve,
    save,
)
from keyops.client import (
    Change,
    Client,
    KeyopsError,
    TransportError,
    Unauthorized,
)
from keyops.client._resources import UpdateScope
from keyops.client.models import Certificate, Jwk, Key, Keystore

__all__ = [
    "UsageCommand",
    "UsageGroup",
    "register_client_commands",
]


# --- usage errors exit 1 -------------------------------------------------------------


# Typer 0.29 (pinned) vendors Click as typer._click: its errors are not click's, and
# Typer exports no UsageError of its own.


class UsageCommand(TyperCommand):
    """A command whose usage errors exit 1 (2 is "not found" for these verbs)."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            exc.exit_code = EXIT_USAGE
            raise


class UsageGroup(TyperGroup):
    """A group whose usage errors (an unknown verb, a missing one) exit 1."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            exc.exit_code = EXIT_USAGE
            raise

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            exc.exit_code = EXIT_USAGE
            raise


def _group(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, cls=UsageGroup)


certs_app = _group("Certificates of a project: list, get, create, update, delete, export.")
keys_app = _group("Crypto keys of a project: list, get, create, update, delete.")
keystores_app = _group("Keystores of a project: list, get, create, update, delete.")
jwks_app = _group("JWKs of a project: list, get, create, parse, generate, update, delete.")


# --- the options every verb takes ----------------------------------------------------

UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="KEYOPS_URL", help="Base URL of the keyops service."),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="KEYOPS_TOKEN", help="A bearer token.", show_envvar=False),
]
OutputOption = Annotated[
    Format,
    typer.Option("--output", "-o", help="table for people; json or yaml for scripts."),
]
QuietOption = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Print only names (lists), or nothing on success."),
]

_COMMON: tuple[tuple[str, Any, Any], ...] = (
    ("url", UrlOption, None),
    ("token", TokenOption, None),
    ("profile", ProfileOption, DEFAULT_PROFILE),
    ("output", OutputOption, Format.table),
    ("quiet", QuietOption, False),
)

ProjectOption = Annotated[
    str, typer.Option("--project", "-p", envvar="KEYOPS_PROJECT", help="The project.")
]
EnvsOption = Annotated[
    str,
    typer.Option("--env", "-e", help="Environments, comma-separated: production,staging."),
]
EnvFilter = Annotated[
    str | None, typer.Option("--env", "-e", help="Only what is in this environment.")
]
NameFilter = Annotated[str | None, typer.Option("--name", help="Only names starting with this.")]
ExpiringFilter = Annotated[
    int | None,
    typer.Option("--expiring-within", min=0, help="Only what expires within this many days."),
]
NameArgument = Annotated[str, typer.Argument(metavar="NAME")]
DescriptionOption = Annotated[str | None, typer.Option("--description", help="A description.")]
InputFile = Annotated[
    Path,
    typer.Option("--file", "-f", exists=True, dir_okay=False, readable=True, help="The file."),
]


class UpdateJwks(StrEnum):
    """What an update does to the JWKs made from the resource."""

    none = "none"
    same_project = "same-project"
    all_projects = "all-projects"


UpdateJwksOption = Annotated[
    UpdateJwks | None,
    typer.Option(
        "--update-jwks",
        help="Re-derive the JWKs made from it (same-project or all-projects), or leave them"
        " (none: they are detached). Left out: the server's default, none.",
    ),
]


def _jwk_update(choice: UpdateJwks | None) -> dict[str, Any]:
    """``--update-jwks`` as the contract's query: ``updateReferencedJwks`` and
    ``updateScope``."""
    scope: dict[UpdateJwks, UpdateScope] = {
        UpdateJwks.same_project: "SAME_PROJECT",
        UpdateJwks.all_projects: "ALL_PROJECTS",
    }
    if choice is None:
        return {}
    if choice is UpdateJwks.none:
        return {"update_referenced_jwks": False}
    return {"update_referenced_jwks": True, "update_scope": scope[choice]}


def _environments(value: str) -> list[str]:
    envs = [e.strip() for e in value.split(",") if e.strip()]
    if not envs:
        fail("--env names no environment: give one or more, comma-separated", EXIT_USAGE)
    return envs


# --- one invocation: its client, its printing, its failures ----------------------------


@dataclass
class Invocation:
    """What a verb was called with beyond its own options, and the client it uses."""

    url: str | None
    token: str | None
    profile: str
    output: Format
    quiet: bool
    target: Target | None = None
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        if self._client is None:
            self.target = resolve(self.url, self.token, self.profile)
            self._client = Client(self.target.url, self.target.token)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def show(
        self,
        data: Any,
        render: Callable[[], Iterable[RenderableType]],
        quiet: Iterable[str] = (),
    ) -> None:
        """``data`` as JSON/YAML, or the lines of ``--quiet``, or ``render``'s tables."""
        if self.output is not Format.table:
            dump(data, self.output)
        elif self.quiet:
            for line in quiet:
                print(line, flush=True)
        else:
            for part in render():
                out.print(part)

    def changed(self, change: Change, what: str) -> None:
        """A change's per-environment results; exit 4 if an environment failed."""

        def render() -> Iterable[RenderableType]:
            yield what
            yield change_table(change)
            followed = jwk_results_table(change)
            if followed is not None:
                yield followed

        self.show(change, render)
        failed = change.failed
        if failed or not change.success:
            where = "; ".join(f"{r.environment_name}: {r.message}" for r in failed)
            fail(
                f"not deployed everywhere: {where or change.deployment_result.message}",
                EXIT_PARTIAL,
            )

    def fail(self, exc: KeyopsError) -> NoReturn:
        """One line on stderr for a refused call, and its exit code."""
        text = exc.error_description
        if isinstance(exc, TransportError):
            server = self.target.url if self.target else "the server"
            text = f"can not reach {server}: {text}"
        elif isinstance(exc, Unauthorized) and self.target and self.target.profile:
            hint = f"run keyops login --profile {self.target.profile} again"
            expires = self.target.expires_at
            if expires and expires <= _now():
                hint = f"its token expired at {expires}: {hint}"
            text = f"{text} (profile {self.target.profile}: {hint})"
        fail(text, exit_code(exc))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


VerbFunc = Callable[..., None]


def verb(app: typer.Typer | None, name: str) -> Callable[[VerbFunc], VerbFunc]:
    """Register ``func(inv, ...)`` as command ``name`` of ``app`` with the common options
    added; returns the command (to register elsewhere when ``app`` is ``None``)."""

    def decorate(func: VerbFunc) -> VerbFunc:
        hints = get_type_hints(func, include_extras=True)
        own = [
            p.replace(annotation=hints[p.name])
            for p in list(inspect.signature(func).parameters.values())[1:]
        ]
        common = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=a, default=d)
            for n, a, d in _COMMON
        ]

        def command(**kwargs: Any) -> None:
            inv = Invocation(**{n: kwargs.pop(n) for n, _, _ in _COMMON})
            try:
                func(inv, **kwargs)
            except KeyopsError as exc:
                inv.fail(exc)
            finally:
                inv.close()

        parameters = [*own, *common]
        command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        command.__doc__ = func.__doc__
        command.__name__ = func.__name__
        if app is not None:
            app.command(name, cls=UsageCommand)(command)
        return command

    return decorate


def _described(description: str) -> list[str]:
    """A get's description line, if it has one."""
    return [description] if description else []


def _table(*columns: str) -> Table:
    return Table(*columns)


# --- certificates ----------------------------------------------------------------------


def _one_env(env: str | None) -> str | None:
    if env and "," in env:
        fail("a list takes one --env", EXIT_USAGE)
    return env


def _certificate_rows(certs: Sequence[Certificate], detail: bool) -> Table:
    columns = ["name", "environment", "alias", "subject", "not after"]
    if detail:
        columns[4:4] = ["sha1 thumbprint", "not before"]
    table = _table(*columns)
    for c in certs:
        for e in c.certificate_environment_list:
            cells: list[str | Text] = [c.name, e.environment_name, e.alias, e.subject_dn]
            if detail:
                cells += [e.sha1_thumbprint, e.start_date]
            table.add_row(*cells, expiry_cell(e.end_date))
        if not c.certificate_environment_list:
            table.add_row(c.name, "-", "", "", "", *([""] * (2 if detail else 0)))
    return table


@verb(certs_app, "list")
def certs_list(
    inv: Invocation,
    project: ProjectOption,
    env: EnvFilter = None,
    name: NameFilter = None,
    expiring_within: ExpiringFilter = None,
) -> None:
    """List a project's certificates, one row per environment, with days left."""
    found = inv.client.certificates.list(
        project, environment=_one_env(env), name=name, expiring_within_days=expiring_within
    )
    inv.show(
        found,
        lambda: [_certificate_rows(found.result_list, False)],
        names(found.result_list),
    )


@verb(certs_app, "get")
def certs_get(inv: Invocation, name: NameArgument, project: ProjectOption) -> None:
    """Show one certificate per environment (JSON/YAML: with its base64 DER)."""
    cert = inv.client.certificates.get(project, name)
    inv.show(
        cert, lambda: [*_described(cert.description), _certificate_rows([cert], True)], [cert.name]
    )


@verb(certs_app, "create")
def certs_create(
    inv: Invocation,
    name: NameArgument,
    project: ProjectOption,
    file: InputFile,
    env: EnvsOption,
    alias: Annotated[str | None, typer.Option(help="The alias; the name if left out.")] = None,
    description: DescriptionOption = None,
) -> None:
    """Upload a certificate (PEM or DER) and deploy it to the environments."""
    change = inv.client.certificates.create(
        project,
        name,
        pem=file.read_bytes(),
        environments=_environments(env),
        alias=alias,
        description=description,
    )
    inv.changed(change, f"certificate {name} created in {project}")


@verb(certs_app, "update")
def certs_update(
    inv: Invocation,
    name: NameArgument,
    project: ProjectOption,
    file: InputFile,
    env: EnvsOption,
    alias: Annotated[str | None, typer.Option(help="The alias; kept if left out.")] = None,
    description: DescriptionOption = None,
    update_jwks: UpdateJwksOption = None,
) -> None:
    """Replace a certificate in the environments (others are undeployed), re-deriving
    the JWKs made from it with --update-jwks same-project|all-projects."""
    kc = inv.client
    if alias is None or description is None:
        current = kc.certificates.get(project, name)
        held = current.certificate_environment_list
        alias = alias if alias is not None else (held[0].alias if held else name)
        description = description if description is not None else current.description
    change = kc.certificates.update(
        project,
        name,
        pem=file.read_bytes(),
        environments=_environments(env),
        alias=alias,
        description=description,
        **_jwk_update(update_jwks),
    )
    inv.changed(change, f"certificate {name} updated in {project}")


def _delete(inv: Invocation, kind: str, name: str, project: str, yes: bool) -> None:
    confirm(
        f"Delete {kind} {name} of project {project} and undeploy it everywhere?",
        yes=yes,
        refusal=f"deleting {kind} {name}",
    )
    groups: dict[str, Callable[[str, str], Change]] = {
        "certificate": inv.client.certificates.delete,
        "key": inv.client.keys.delete,
        "keystore": inv.client.keystores.delete,
        "JWK": inv.client.jwks.delete,
    }
    inv.changed(groups[kind](project, name), f"{kind} {name} deleted from {project}")


@verb(certs_app, "delete")
def certs_delete(
    inv: Invocation, name: NameArgument, project: ProjectOption, yes: Yes = False
) -> None:
    """Delete a certificate and undeploy it everywhere (asks first, unless --yes)."""
    _delete(inv, "certificate", name, project, yes)


@verb(certs_app, "export")
def certs_export(
    inv: Invocation,
    name: NameArgument,
    project: ProjectOption,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="The ZIP file to write; NAME.zip if left out, - for stdout."),
    ] = None,
) -> None:
    """Write the ZIP of the certificate's DER file per environment (NAME-ENV.cer)."""
    archive = inv.client.certificates.export(project, name)
    if to is not None and str(to) == "-":
        sys.stdout.buffer.write(archive)
        sys.stdout.flush()
        return
    target = to or Path(f"{name}.zip")
    try:
        target.write_bytes(archive)
    except OSError as exc:
        fail(f"can not write {target}: {exc.strerror or type(exc).__name__}", EXIT_USAGE)
    inv.show(
        {"file": str(target), "bytes": len(archive)},
        lambda: [f"wrote {target} ({len(archive)} bytes)"],
    )


# --- keys ----------------------------------------------------------------------------


def _key_rows(keys: Sequence[Key]) -> Table:
    table = _table("name", "type", "environment", "size / curve", "public", "private")
    for k in keys:
        for e in k.crypto_key_info_environment_list:
            size = e.curve or (str(e.key_size) if e.key_size else "-")
            table.add_row(
                k.name,
                k.key_type,
                e.environment_name,
                size,
                mark(bool(e.public_key)),
                mark(bool(e.private_key)),
            )
        if not k.crypto_key_info_environment_list:
            table.add_row(k.name, k.key_type, "-", "", "", "")
    return table


@verb(keys_app, "list")
def keys_list(
    inv: Invocation, project: ProjectOption, env: EnvFilter = None, name: NameFilter = None
) -> None:
    """List a project's crypto keys, one row per environment."""
    found = inv.client.keys.list(project, environment=_one_env(env), name=name)
    inv.show(found, lambda: [_key_rows(found.result_list)], names(found.result_list))


@verb(keys_app, "get")
def keys_get(inv: Invocation, name: NameArgument, project: ProjectOption) -> None:
    """Show one key per environment (JSON/YAML: with its material)."""
    key = inv.client.keys.get(project, name)
    inv.show(key, lambda: [*_described(key.description), _key_rows([key])], [key.name])


KeyTypeOption = Annotated[
    str | None, typer.Option("--type", help="RSA, EC, OKP or OCT (a secret key).")
]
PublicKeyFile = Annotated[
    Path | None,
    typer.Option("--public-key", exists=True, dir_okay=False, help="PEM or DER public key."),
]
PrivateKeyFile = Annotated[
    Path | None,
    typer.Option(
        "--private-key", exists=True, dir_okay=False, help="PEM or DER (PKCS#8) private key."
    ),
]


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


@verb(keys_app, "create")
def keys_create(
    inv: Invocation,
    name: NameArgument,
    project: ProjectOption,
    env: EnvsOption,
    key_type: KeyTypeOption = None,
    public_key: PublicKeyFile = None,
    private_key: PrivateKeyFile = None,
    description: DescriptionOption = None,
) -> None:
    """Create a crypto key from its public and/or private key files."""
    if key_type is None:
        fail("--type is required: RSA, EC, OKP or OCT", EXIT_USAGE)
    if public_key is None and private_key is None:
        fail("give --public-key or --private-key (or both)", EXIT_USAGE)
    change = inv.client.keys.create(
        project,
        name,
        key_type=key_type,
        environments=_environments(env),
        public_key=_read(public_key),
        private_key=_read(private_key),
        description=description or "",
    )
    inv.changed(change, f"key {name} created in {project}")


@verb(keys_app, "update")
def keys_update(
    inv: Invocation,
    name: NameArgument,
    project: ProjectOption,
    env: EnvsOption,
    key_type: KeyTypeOption = None,
    public_key: PublicKeyFile = None,
    private_key: PrivateKeyFile = None,
    description: DescriptionOption = None,
    update_jwks: UpdateJwksOption = None,
) -> None:
    """Replace a key's material (type and description kept unless given)."""
    if public_key is None and private_key is None:
        fail("give --public-key or --private-key (or both)", EXIT_USAGE)
    kc = inv.client
    if key_type is None or description is None:
        current = kc.keys.get(project, name)
        key_type = key_type or current.key_type
        description = description if description is not None else current.description
    change = kc.keys.update(
        project,
        name,
        key_type=key_type,
        environments=_environments(env),
        public_key=_read(public_key),
        private_key=_read(private_key),
        description=description,
        **_jwk_update(update_jwks),
    )
    inv.changed(change, f"key {name} updated in {project}")


@verb(keys_app, "delete")
def keys_delete(
    inv: Invocation, name: NameArgument, project: ProjectOption, yes: Yes = False
) -> None:
    """Delete a key and undeploy it everywhere (asks first, unless --yes)."""
    _delete(inv, "key", name, project, yes)


# --- keystores -----------------------------------------------------------------------


def _keystore_rows(stores: Sequence[Keystore], detail: bool) -> Table:
    columns = ["name", "environment", "type", "alias", "kind", "subject", "not after"]
    if detail:
        columns[6:6] = ["sha1 thumbprint"]
    table = _table(*columns)
    for s in stores:
        for e in s.key_store_environment_list:
            if not e.entries:
                table.add_row(s.name, e.environment_name, e.type, *[""] * (len(columns) - 3))
            for entry in e.entries:
                cells: list[str | Text] = [
                    s.name,
                    e.environment_name,
                    e.type,
                    entry.alias,
                    entry.kind,
                    entry.subject_dn or "",
                ]
                if detail:
                    cells.append(entry.sha1_thumbprint or "")
                table.add_row(*cells, expiry_cell(entry.end_date))
    return table


@verb(keystores_app, "list")
def keystores_list(
    inv: Invocation,
    project: ProjectOption,
    env: EnvFilter = None,
    name: NameFilter = None,
    expiring_within: ExpiringFilter = None,
) -> None:
    """List a project's keystores, one row per entry, with days left."""
    found = inv.client.keystores.list(
        project, environment=_one_env(env), name=name, expiring_within_days=expiring_within
    )
    inv.show(found, lambda: [_keystore_rows(found.result_list, False)], names(found.result_list))


@verb(keystores_app, "get")
def keystores_get(inv: Invocation, name: NameArgument, project: ProjectOption) -> None:
    """Show one keystore's entries per environment (never a password)."""
    store = inv.client.keystores.get(project, name)
    inv.show(
        store, lambda: [*_described(store.description), _keystore_rows([store], True)], [store.name]
    )


StoreTypeOption = Annotated[
    str, typer.Option("--type", help="PKCS12, JKS, JCEKS or PEM (a key and its chain).")
]
StorePassword = Annotated[
    str | None,
    typer.Option(
        "--password",
        envvar="KEYOPS_KEYSTORE_PASSWORD",
        help="The store's password (asked on a terminal if left out).",
        show_envvar=True,
    ),
]
KeyPassword = Annotated[
    str | None,
    typer.Option(
        "--key-password",
        envvar="KEYOPS_KEYSTORE_KEY_PASSWORD",
        help="The key entries' password, if not the store's.",
    ),
]


def _store_password(given: str | None, from_stdin: bool, store_type: str) -> str | None:
    """The store's password: given, piped in, asked on a terminal, or none (PEM)."""
    if from_stdin or given is not None:
        return ask_password(given, from_stdin, confirmation=False)
    if store_type.upper() == "PEM" or not sys.stdin.isatty():
        return None
    return ask_password(None, False, confirmation=False)


@verb(keystores_app, "create")
def keystores_create(
    inv: Invocation,
    name: NameArgument,
    project: ProjectOption,
    file: InputFile,
    env: EnvsOption,
    store_type: StoreTypeOption = "PKCS12",
    password: StorePassword = None,
    password_stdin: PasswordStdinOption = False,
    key_password: KeyPassword = None,
    description: DescriptionOption = None,
) -> None:
    """Upload a keystore file with its passwords and deploy it to the environments."""
    change = inv.client.keystores.create(
        project,
        name,
        environments=_environments(env),
        file=file.read_bytes(),
        store_type=store_type.upper(),
        password=_store_password(password, password_stdin, store_type),
        key_password=key_password,
        description=description or "",
    )
    inv.changed(change, f"keystore {name} created in {project}")


@verb(keystores_app, "update")
def keystores_update(
    inv: Invocation,
    name: NameArgument,
    project: ProjectOption,
    file: InputFile,
    env: EnvsOption,
    store_type: StoreTypeOption = "PKCS12",
    password: StorePassword = None,
    password_stdin: PasswordStdinOption = False,
    key_password: KeyPassword = None,
    description: DescriptionOption = None,
    update_jwks: UpdateJwksOption = None,
) -> None:
    """Replace a keystore's file (description kept unless given)."""
    kc = inv.client
    if description is None:
        description = kc.keystores.get(project, name).description
    change = kc.keystores.update(
        project,
        name,
        environments=_environments(env),
        file=file.read_bytes(),
        store_type=store_type.upper(),
        password=_store_password(password, password_stdin, store_type),
        key_password=key_password,
        description=description,
        **_jwk_update(update_jwks),
    )
    inv.changed(change, f"keystore {name} updated in {project}")


@verb(keystores_app, "delete")
def keystores_delete(
    inv: Invocation, name: NameArgument, project: ProjectOption, yes: Yes = False
) -> None:
    """Delete a keystore and undeploy it everywhere (asks first, unless --yes)."""
    _delete(inv, "keystore", name, project, yes)


# --- JWKs ----------------------------------------------------------------------------


def _jwk_rows(jwks: Sequence[Jwk]) -> Table:
    table = _table("name", "type", "kid", "use", "algorithm", "source", "private")
    for j in jwks:
        source = j.source_type or "-"
        if j.source_id or j.source_url:
            source = f"{source} {j.source_id or j.source_url}"
        table.add_row(
            j.name,
            j.type,
            j.kid or "-",
            j.use_type or "-",
            j.algorithm or "-",
            source,
            mark(j.private) if j.private else "",
        )
    return table


@verb(jwks_app, "list")
def jwks_list(
    inv: Invocation, project: ProjectOption, env: EnvFilter = None, name: NameFilter = None
) -> None:
    """List a project's JWKs (no key material)."""
    found = inv.client.jwks.list(project, environment=_one_env(env), name=name)
    inv.show(found, lambda: [_jwk_rows(found.result_list)], names(found.result_list))


@verb(jwks_app, "get")
def jwks_get(inv: Invocation, name: NameArgument, project: ProjectOption) -> None:
    """Show one JWK (JSON/YAML: with its material and the JWK itself)."""
    jwk = inv.client.jwks.get(project, name)
    public = {k: v for k, v in (jwk.jwk or {}).items() if k in _PUBLIC_MEMBERS}

    def render() -> Iterable[RenderableType]:
        yield from _described(jwk.description)
        yield _jwk_rows([jwk])
        if public:
            members = _table("member", "value")
            for key, value in public.items():
                members.add_row(key, str(value))
            yield members

    inv.show(jwk, render, [jwk.name])


# What a table may show of a JWK: never a private member (d, p, q, dp, dq, qi, k).
_PUBLIC_MEMBERS = ("kty", "kid", "use", "alg", "crv", "x", "y", "n", "e")

UseOption = Annotated[
    str | None, typer.Option("--use", help="SIGNATURE or ENCRYPTION (a derived JWK needs it).")
]
AlgOption = Annotated[str | None, typer.Option("--alg", help="The algorithm, e.g. RS256.")]
KidOption = Annotated[str | None, typer.Option("--kid", help="The kid (from a set: which one).")]
SourceEnv = Annotated[
    str | None, typer.Option("--env", "-e", help="The environment the source is deployed to.")
]
FromCertificate = Annotated[
    str | None, typer.Option("--certificate", help="From this certificate of the project.")
]
FromKey = Annotated[str | None, typer.Option("--key", help="From this crypto key.")]
FromPrivate = Annotated[
    bool, typer.Option("--private", help="With --key: the whole key pair, not the public half.")
]
FromKeystore = Annotated[str | None, typer.Option("--keystore", help="From this keystore.")]
FromAlias = Annotated[str | None, typer.Option("--alias", help="With --keystore: the entry.")]
FromUrl = Annotated[str | None, typer.Option("--url-source", help="Fetched from this URL.")]
FromJwkFile = Annotated[
    Path | None,
    typer.Option(
        "--jwk-file", exists=True, dir_okay=False, help="A JWK or JWK Set as JSON ('-': stdin)."
    ),
]


@dataclass(frozen=True)
class _Source:
    """Where a JWK comes from, as create-jwk.md's ``sourceType`` and its fields."""

    source_type: str
    fields: dict[str, Any]


def _source(
    certificate: str | None,
    key: str | None,
    private: bool,
    keystore: str | None,
    alias: str | None,
    url_source: str | None,
    jwk_file: Path | None,
    env: str | None,
    use: str | None,
    alg: str | None,
) -> _Source:
    given = [
        n
        for n, v in (
            ("--certificate", certificate),
            ("--key", key),
            ("--keystore", keystore),
            ("--url-source", url_source),
            ("--jwk-file", jwk_file),
        )
        if v is not None
    ]
    if len(given) != 1:
        fail(
            "give exactly one source: --certificate, --key, --keystore, --url-source or --jwk-file",
            EXIT_USAGE,
        )
    if url_source is not None:
        return _Source("URL", {"url": url_source})
    if jwk_file is not None:
        return _Source("COPY_PASTE", {"jwk_str": jwk_file.read_text(encoding="utf-8")})
    if env is None or use is None or alg is None:
        fail(f"{given[0]} needs --env, --use and --alg", EXIT_USAGE)
    derived = {"environment_name": env, "use_type": use.upper(), "algorithm": alg}
    if certificate is not None:
        return _Source("CERTIFICATE", {"certificate_name": certificate, **derived})
    if key is not None:
        kind = "PRIVATE_KEY" if private else "PUBLIC_KEY"
        return _Source(kind, {"key_name": key, **derived})
    if alias is None:
        fail("--keystore needs --alias, the entry", EXIT_USAGE)
    return _Source("KEYSTORE", {"key_store_name": keystore, "alias_name": alias, **derived})


def _jwk_command(parse: bool) -> VerbFunc:
    def command(
        inv: Invocation,
        name: NameArgument,
        project: ProjectOption,
        certificate: FromCertificate = None,
        key: FromKey = None,
        private: FromPrivate = False,
        keystore: FromKeystore = None,
        alias: FromAlias = None,
        url_source: FromUrl = None,
        jwk_file: FromJwkFile = None,
        env: SourceEnv = None,
        use: UseOption = None,
        alg: AlgOption = None,
        kid: KidOption = None,
        description: DescriptionOption = None,
    ) -> None:
        source = _source(
            certificate, key, private, keystore, alias, url_source, jwk_file, env, use, alg
        )
        change = (_parse if parse else _create)(inv, project, name, source, kid, description)
        inv.changed(change, f"JWK {name} created in {project} from {source.source_type}")

    command.__doc__ = (
        "Make a JWK through the parse-from-* call of its source (a certificate, key,"
        " keystore entry, URL or JWK text)."
        if parse
        else "Create a JWK from a source (create-jwk.md): --certificate, --key, --keystore"
        " with --alias, --url-source or --jwk-file."
    )
    command.__name__ = "jwks_parse" if parse else "jwks_create"
    return command


def _create(
    inv: Invocation,
    project: str,
    name: str,
    source: _Source,
    kid: str | None,
    description: str | None,
) -> Change:
    return inv.client.jwks.create(
        project,
        name,
        source_type=source.source_type,
        kid=kid,
        description=description,
        **source.fields,
    )


def _parse(
    inv: Invocation,
    project: str,
    name: str,
    source: _Source,
    kid: str | None,
    description: str | None,
) -> Change:
    jwks, f = inv.client.jwks, source.fields
    common: dict[str, Any] = {"kid": kid, "description": description}
    if source.source_type == "URL":
        return jwks.parse_from_url(project, name, f["url"], **common)
    if source.source_type == "COPY_PASTE":
        return jwks.parse_from_clipboard(project, name, f["jwk_str"], **common)
    derived = {"use_type": f["use_type"], "algorithm": f["algorithm"], **common}
    if source.source_type == "CERTIFICATE":
        return jwks.parse_from_certificate(
            project, name, f["certificate_name"], f["environment_name"], **derived
        )
    if source.source_type == "KEYSTORE":
        return jwks.parse_from_keystore(
            project, name, f["key_store_name"], f["alias_name"], f["environment_name"], **derived
        )
    return jwks.parse_from_key(
        project,
        name,
        f["key_name"],
        f["environment_name"],
        source_type="PRIVATE_KEY" if source.source_type == "PRIVATE_KEY" else "PUBLIC_KEY",
        **derived,
    )


verb(jwks_app, "create")(_jwk_command(parse=False))
verb(jwks_app, "parse")(_jwk_command(parse=True))


def _option_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        fail(f"--option {text}: write it as NAME=VALUE (keySize=2048)", EXIT_USAGE)
    return key, int(value) if value.isdigit() else value


@verb(jwks_app, "generate")
def jwks_generate(
    inv: Invocation,
    name: NameArgument,
    project: ProjectOption,
    jwk_type: Annotated[str, typer.Option("--type", help="RSA, EC, OCT or OKP.")] = "RSA",
    size: Annotated[int | None, typer.Option("--size", help="keySize (RSA, OCT).")] = None,
    curve: Annotated[
        str | None, typer.Option("--curve", help="curveType: P256, P384, P521, ED25519...")
    ] = None,
    use: UseOption = None,
    alg: AlgOption = None,
    kid: KidOption = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="Any other option of the type, NAME=VALUE (repeatable)."),
    ] = None,
    description: DescriptionOption = None,
) -> None:
    """Have the server generate a new key as a JWK (generate-jwk.md)."""
    options: dict[str, Any] = dict(_option_value(o) for o in option or [])
    named = {"keySize": size, "curveType": curve, "algorithm": alg}
    options |= {k: v for k, v in named.items() if v is not None}
    if use is not None:
        options["keyUseType"] = use.upper()
    change = inv.client.jwks.generate(
        project, name, jwk_type.upper(), options=options, kid=kid, description=description
    )
    inv.changed(change, f"JWK {name} generated in {project}")


@verb(jwks_app, "update")
def jwks_update(
    inv: Invocation,
    name: NameArgument,
    project: ProjectOption,
    new_name: Annotated[str | None, typer.Option("--new-name", help="Rename it.")] = None,
    description: DescriptionOption = None,
) -> None:
    """Rename a JWK or change its description (one made from a source is detached)."""
    if new_name is None and description is None:
        fail("nothing to change: give --new-name or --description", EXIT_USAGE)
    change = inv.client.jwks.update(project, name, new_name=new_name, description=description)
    inv.changed(change, f"JWK {name} updated in {project}")


@verb(jwks_app, "delete")
def jwks_delete(
    inv: Invocation, name: NameArgument, project: ProjectOption, yes: Yes = False
) -> None:
    """Delete a JWK and undeploy it (asks first, unless --yes)."""
    _delete(inv, "JWK", name, project, yes)


# --- environments, deployments, nodes --------------------------------------------------


@verb(None, "envs")
def envs(
    inv: Invocation,
    project: Annotated[
        str | None,
        typer.Option(
            "--project", "-p", envvar="KEYOPS_PROJECT", help="Those a project may deploy to."
        ),
    ] = None,
) -> None:
    """List environments: every one (admin), or those a project may deploy to."""
    kc = inv.client
    found = kc.environments.for_project(project) if project else kc.environments.list()

    def render() -> Iterable[RenderableType]:
        table = _table("name", "type", "status", "access url")
        for e in found.result_list:
            table.add_row(e.name, e.type, e.status, e.access_url or "-")
        yield table

    inv.show(found, render, names(found.result_list))


EnvArgument = Annotated[str, typer.Argument(metavar="ENV", help="The environment.")]


@verb(None, "deployments")
def deployments(inv: Invocation, environment: EnvArgument) -> None:
    """What an environment holds, what it still has to take, and recent attempts (admin)."""
    held = inv.client.deployments.get(environment)

    def render() -> Iterable[RenderableType]:
        applied = "-" if held.applied_revision is None else str(held.applied_revision)
        yield (
            f"environment {held.environment_name}: {held.status}, revision {held.revision},"
            f" applied {applied}"
        )
        table = _table("kind", "project", "name", "alias", "revision", "deployed at")
        for a in held.result_list:
            table.add_row(
                a.kind, a.project_name or "-", a.name, a.alias or "", str(a.revision), a.deployed_at
            )
        yield table
        if held.pending_list:
            pending = _table("pending", "kind", "project", "name", "revision")
            for a in held.pending_list:
                pending.add_row(
                    a.action or "", a.kind, a.project_name or "-", a.name, str(a.revision)
                )
            yield pending
        if held.recent_attempts:
            attempts = _table("", "at", "action", "kind", "project", "name", "message")
            for t in held.recent_attempts:
                attempts.add_row(
                    mark(t.success),
                    t.at,
                    t.action,
                    t.kind,
                    t.project_name or "-",
                    t.name,
                    t.message,
                )
            yield attempts

    inv.show(held, render, [f"{a.kind}/{a.name}" for a in held.result_list])


@verb(None, "nodes")
def nodes(inv: Invocation, environment: EnvArgument) -> None:
    """The gateway nodes that synced an environment, and whether each is up to date (admin)."""
    found = inv.client.nodes.list(environment)

    def render() -> Iterable[RenderableType]:
        yield (
            f"environment {found.environment_name}: {found.status},"
            f" latest revision {found.latest_revision}"
        )
        table = _table(
            "name", "up to date", "applied revision", "connected", "last contact", "last error"
        )
        for n in found.result_list:
            table.add_row(
                n.name,
                mark(n.up_to_date),
                str(n.applied_revision),
                "yes" if n.connected else "no",
                n.last_contact,
                n.last_error or "",
            )
        yield table

    inv.show(found, render, names(found.result_list))


# --- login and logout ----------------------------------------------------------------


def login(
    url: Annotated[str, typer.Option("--url", help="Base URL of the keyops service.")],
    profile: ProfileOption = DEFAULT_PROFILE,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="Asked on a terminal if left out.")
    ] = None,
    password_stdin: PasswordStdinOption = False,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Store this token (a personal access token) instead."),
    ] = None,
) -> None:
    """Log in to a keyops service and store its URL and token as a profile (mode 0600)."""
    server = url.rstrip("/")
    expires_at: str | None = None
    try:
        with Client(server, token) as kc:
            if token is not None:
                if username is not None or password_stdin:
                    fail("--token contradicts --username/--password-stdin", EXIT_USAGE)
                kc.projects.list()  # the token works (or Unauthorized)
                who = "with the given token"
            else:
                user = username or _ask_username()
                secret = ask_password(None, password_stdin, confirmation=False)
                granted = kc.auth.token(user, secret)
                token = granted.access_token
                if granted.expires_in is not None:
                    until = datetime.now(UTC) + timedelta(seconds=granted.expires_in)
                    expires_at = until.strftime("%Y-%m-%dT%H:%M:%SZ")
                who = f"as {user}"
    except TransportError as exc:
        fail(f"can not reach {server}: {exc.error_description}", EXIT_SERVER)
    except KeyopsError as exc:
        fail(exc.error_description, exit_code(exc))
    path = save(profile, Stored(server, token, expires_at))
    until_text = f" (the token expires at {expires_at})" if expires_at else ""
    out.print(f"logged in to {server} {who}: profile {profile} stored in {path}{until_text}")


def _ask_username() -> str:
    if not sys.stdin.isatty():
        fail("no username: give --username (or type it at the prompt on a terminal)", EXIT_USAGE)
    value = typer.prompt("Username", err=True)
    assert isinstance(value, str)
    return value


def logout(profile: ProfileOption = DEFAULT_PROFILE) -> None:
    """Forget a stored profile's URL and token; a token from a password login is revoked
    on the server too (a personal token is only forgotten: it may be used elsewhere)."""
    stored = load(profile)
    if stored is not None and stored.expires_at is not None:
        try:
            with Client(stored.url, timeout=5.0) as kc:
                kc.auth.revoke(stored.token)
            out.print(f"token revoked on {stored.url}")
        except KeyopsError as exc:
            typer.echo(f"warning: the token could not be revoked on {stored.url}: {exc}", err=True)
    if remove(profile):
        out.print(f"logged out: profile {profile} removed from {config_path()}")
    else:
        out.print(f"profile {profile} is not stored: nothing to do")


def register_client_commands(app: typer.Typer) -> None:
    """Add the client verbs to the ``keyops`` command."""
    app.command("login", cls=UsageCommand)(login)
    app.command("logout", cls=UsageCommand)(logout)
    app.add_typer(certs_app, name="certs")
    app.add_typer(keys_app, name="keys")
    app.add_typer(keystores_app, name="keystores")
    app.add_typer(jwks_app, name="jwks")
    app.command("envs", cls=UsageCommand)(envs)
    app.command("deployments", cls=UsageCommand)(deployments)
    app.command("nodes", cls=UsageCommand)(nodes)
