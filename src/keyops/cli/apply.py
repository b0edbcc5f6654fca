"""``keyops apply``, ``keyops dump`` and the bulk imports (``keyops certs import DIR``,
``keyops keystores import DIR``): the CLI of ``keyops.declarative``.

Exit codes scripts can rely on: 0 done (or nothing to do); 1 usage (a bad file, a
missing variable, a refused request); 2 ``--dry-run`` found changes pending (as
``terraform plan -detailed-exitcode``); 3 a conflict; 4 an environment did not take a
change; 5 the server failed or did not answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from keyops.cli.profiles import DEFAULT_PROFILE, ProfileOption, resolve
from keyops.client import Client, Conflict, KeyopsError, ServerError, TransportError

# keyops.declarative (YAML, X.509, JWKs) and Rich's progress bars are imported by the
# commands that use them: `keyops certs list` and `keyops --help` need neither.
if TYPE_CHECKING:
    from rich.progress import Progress

    from keyops.declarative import FileResult, ImportResult, Outcome, Plan
    from keyops.declarative.dump import SecretMode

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_ENVIRONMENTS",
    "EXIT_OK",
    "EXIT_PENDING",
    "EXIT_SERVER",
    "EXIT_USAGE",
    "apply_command",
    "certs_import_command",
    "connect",
    "dump_command",
    "exit_code",
    "import_app",
    "keystores_import_command",
]

EXIT_OK, EXIT_USAGE, EXIT_PENDING, EXIT_CONFLICT, EXIT_ENVIRONMENTS, EXIT_SERVER = range(6)

out = Console()
err = Console(stderr=True)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="KEYOPS_URL", help="Base URL of the keyops service."),
]
TokenOption = Annotated[
    str | None, typer.Option("--token", envvar="KEYOPS_TOKEN", help="A bearer token.")
]
EnvOption = Annotated[
    list[str],
    typer.Option(
        "--env", help="Environments to deploy to: repeat it, or give a comma-separated list."
    ),
]
ProjectOption = Annotated[str, typer.Option("--project", "-p", help="The project.")]
PrefixOption = Annotated[str, typer.Option("--prefix", help="Put before every name.")]
ConcurrencyOption = Annotated[
    int, typer.Option("--concurrency", "-j", min=1, max=64, help="Uploads at a time.")
]
RetriesOption = Annotated[
    int, typer.Option("--retries", min=0, max=10, help="Rounds of retrying what failed.")
]

OP_STYLE = {"create": "green", "replace": "yellow", "delete": "red", "unchanged": "dim"}


def connect(url: str | None, token: str | None, profile: str = DEFAULT_PROFILE) -> Client:
    """Which server and token a command talks to: ``--url``/``--token`` (or
    ``KEYOPS_URL``/``KEYOPS_TOKEN``), else the stored login ``profile``
    (``profiles.resolve``, as every client verb)."""
    target = resolve(url, token, profile, missing_code=EXIT_USAGE)
    return Client(target.url, target.token)


def exit_code(exc: KeyopsError) -> int:
    """The exit code of a refused or failed call."""
    if isinstance(exc, Conflict):
        return EXIT_CONFLICT
    if isinstance(exc, ServerError | TransportError) or exc.status >= 500:
        return EXIT_SERVER
    return EXIT_USAGE


def _usage(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)


def _refused(exc: KeyopsError, doing: str = "") -> NoReturn:
    what = f"{doing}: " if doing else ""
    err.print(
        f"[red]error:[/red] {what}{exc.status} {exc.error}: {exc.error_description}",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(exit_code(exc))


def _environments(values: list[str]) -> list[str]:
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if not names:
        _usage("give the environments with --env")
    return list(dict.fromkeys(names))


# --- apply ----------------------------------------------------------------------------


def plan_table(p: Plan) -> Table:
    """The plan's changes (and the unchanged JWKs an update re-derives) as a table."""
    table = Table("action", "kind", "project", "name", "why", "fingerprint", title="Plan")
    for a in p.actions:
        if a.op == "unchanged" and not a.reason:
            continue
        style = OP_STYLE[a.op]
        if a.op == "replace":
            fingerprint = f"{a.current} -> {a.wanted}"
        else:
            fingerprint = a.wanted or a.current
        table.add_row(
            f"[{style}]{a.op}[/{style}]", a.kind, a.project, a.name, a.reason, fingerprint
        )
    return table


def _summary(p: Plan) -> str:
    return (
        f"{p.count('create')} to create, {p.count('replace')} to replace,"
        f" {p.count('delete')} to delete, {p.count('unchanged')} unchanged"
    )


def _step_line(o: Outcome) -> None:
    a = o.action
    what = f"{a.op} {a.kind} {a.project}/{a.name}"
    if o.error is not None:
        err.print(f"[red]x[/red] {what}: {o.error.error_description}", highlight=False)
        return
    mark = "[green]✓[/green]" if not o.failed_environments else "[yellow]![/yellow]"
    extra = ""
    if o.failed_environments:
        extra = f" (not deployed to {', '.join(o.failed_environments)})"
    if o.jwk_results:
        extra += f" (JWKs: {', '.join(o.jwk_results)})"
    out.print(f"{mark} {what}{extra}", highlight=False)


def apply_command(
    file: Annotated[
        Path, typer.Option("--file", "-f", help="The keyops.yaml with the desired state.")
    ] = Path("keyops.yaml"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan only; exit 2 if it changes things.")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete what the file's projects hold but it omits.")
    ] = False,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project of the file.")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
) -> None:
    """Make the server hold what keyops.yaml says: plan by content fingerprints, then
    create, replace (and with --prune delete) in dependency order."""
    from keyops.declarative import SpecError, apply, load, plan

    try:
        desired = load(file)
    except SpecError as exc:
        _usage(str(exc))
    with connect(url, token, profile) as client:
        try:
            the_plan = plan(client, desired, prune=prune, project=project)
        except SpecError as exc:
            _usage(str(exc))
        except KeyopsError as exc:
            _refused(exc, "reading the current state")
        if the_plan.pending or any(a.reason for a in the_plan.actions):
            out.print(plan_table(the_plan))
        out.print(f"Plan: {_summary(the_plan)}.", highlight=False)
        if dry_run:
            raise typer.Exit(EXIT_PENDING if the_plan.pending else EXIT_OK)
        if not the_plan.pending:
            out.print("Nothing to do.")
            return
        result = apply(client, the_plan, on_step=_step_line)
    if result.error is not None:
        _refused(result.error, "apply stopped")
    failed = result.failed_environments
    if failed:
        err.print(
            f"[yellow]{len(failed)} environment roll-out(s) failed;"
            " the change is kept and will be retried by the server.[/yellow]",
            highlight=False,
        )
        raise typer.Exit(EXIT_ENVIRONMENTS)
    out.print(f"Applied: {len(result.done)} change(s).", highlight=False)


# --- dump -----------------------------------------------------------------------------


def dump_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: standard output).")
    ] = None,
    project: Annotated[
        list[str] | None,
        typer.Option("--project", "-p", help="A project to dump (repeat it; default: all)."),
    ] = None,
    secrets: Annotated[
        str | None,
        typer.Option(
            "--secrets",
            help="Private keys as files next to the output (file, the default with -o),"
            " environment variable references (env), or inline (inline).",
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
) -> None:
    """Write the current state as keyops.yaml: public material inline, secrets as
    references to files or variables."""
    from keyops.declarative import dump

    mode = secrets or ("file" if output is not None else "env")
    if mode not in ("file", "env", "inline"):
        _usage(f"--secrets is file, env or inline, not {mode}")
    if mode == "file" and output is None:
        _usage("--secrets file needs --output (the files go next to it)")
    chosen: SecretMode = mode  # type: ignore[assignment]
    directory = output.resolve().parent if output is not None else None
    with connect(url, token, profile) as client:
        try:
            names = project or [p.name for p in client.projects.list().result_list]
            text = dump(client, names, secrets=chosen, directory=directory)
        except KeyopsError as exc:
            _refused(exc, "reading the current state")
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    err.print(f"wrote {output}", highlight=False)


# --- bulk import ------------------------------------------------------------------------


def _import_exit(result: ImportResult) -> int:
    failed = [r for r in result.results if r.status == "failed"]
    codes = {r.status_code for r in failed}
    if any(c is not None and (c == 0 or c >= 500) for c in codes):
        return EXIT_SERVER
    if 409 in codes:
        return EXIT_CONFLICT
    if failed:
        return EXIT_USAGE
    if result.count("partial"):
        return EXIT_ENVIRONMENTS
    return EXIT_OK


STATUS_STYLE = {"created": "green", "exists": "dim", "partial": "yellow", "failed": "red"}


def _report(result: ImportResult, kind: str) -> None:
    trouble = [r for r in result.results if r.status != "created"]
    if trouble:
        table = Table("file", "name", "result", "tries", "why", title="Not simply created")
        for r in trouble:
            style = STATUS_STYLE[r.status]
            why = r.message
            if r.failed_environments:
                why = f"not deployed to {', '.join(r.failed_environments)}"
            table.add_row(
                r.path.name, r.name, f"[{style}]{r.status}[/{style}]", str(r.attempts), why
            )
        out.print(table)
    summary = Table("result", "files", title=f"{kind} import")
    for status in ("created", "exists", "partial", "failed"):
        summary.add_row(status, str(result.count(status)))
    summary.add_row("total", str(len(result.results)), style="bold")
    out.print(summary)


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
    )


def certs_import_command(
    directory: Annotated[Path, typer.Argument(help="A directory of PEM, DER, CRT files.")],
    project: ProjectOption,
    env: EnvOption,
    prefix: PrefixOption = "",
    name_from: Annotated[
        str, typer.Option("--name-from", help="Name each by its file name (file) or CN (cn).")
    ] = "file",
    concurrency: ConcurrencyOption = 8,
    retries: RetriesOption = 2,
    url: UrlOption = None,
    token: TokenOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
) -> None:
    """Create a certificate from every certificate file of DIR, concurrently."""
    from keyops.declarative import import_certificates
    from keyops.declarative.bulk import certificate_files

    if name_from not in ("file", "cn"):
        _usage(f"--name-from is file or cn, not {name_from}")
    envs = _environments(env)
    try:
        total = len(certificate_files(directory))
    except OSError as exc:
        _usage(str(exc))
    with connect(url, token, profile) as client, _progress() as progress:
        task = progress.add_task("certificates", total=total)

        def advance(_: FileResult) -> None:
            progress.advance(task)

        result = import_certificates(
            client,
            directory,
            project,
            envs,
            prefix,
            concurrency,
            name_from="cn" if name_from == "cn" else "file",
            retries=retries,
            on_result=advance,
        )
    _report(result, "Certificate")
    raise typer.Exit(_import_exit(result))


def keystores_import_command(
    directory: Annotated[Path, typer.Argument(help="A directory of .p12, .pfx, .jks files.")],
    project: ProjectOption,
    env: EnvOption,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            envvar="KEYOPS_KEYSTORE_PASSWORD",
            help="The keystores' password (or KEYOPS_KEYSTORE_PASSWORD).",
        ),
    ] = None,
    key_password: Annotated[
        str | None,
        typer.Option("--key-password", help="The key entries' password, if it differs."),
    ] = None,
    prefix: PrefixOption = "",
    concurrency: ConcurrencyOption = 4,
    retries: RetriesOption = 2,
    url: UrlOption = None,
    token: TokenOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
) -> None:
    """Create a keystore from every .p12/.pfx/.jks/.jceks file of DIR, concurrently."""
    from keyops.declarative import import_keystores
    from keyops.declarative.bulk import keystore_files

    envs = _environments(env)
    try:
        total = len(keystore_files(directory))
    except OSError as exc:
        _usage(str(exc))
    with connect(url, token, profile) as client, _progress() as progress:
        task = progress.add_task("keystores", total=total)

        def advance(_: FileResult) -> None:
            progress.advance(task)

        result = import_keystores(
            client,
            directory,
            project,
            envs,
            prefix,
            concurrency,
            password=password,
            key_password=key_password,
            retries=retries,
            on_result=advance,
        )
    _report(result, "Keystore")
    raise typer.Exit(_import_exit(result))


def import_app() -> typer.Typer:
    """A Typer app with all four commands, for tests and for a caller that wants them
    under one name (``apply``, ``dump``, ``certs-import``, ``keystores-import``)."""
    app = typer.Typer(no_args_is_help=True)
    app.command("apply")(apply_command)
    app.command("dump")(dump_command)
    app.command("certs-import")(certs_import_command)
    app.command("keystores-import")(keystores_import_command)
    return app
