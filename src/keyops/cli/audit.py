"""``keyops audit``: search the audit log over the admin REST API of a running keyops
(``--url``/``--token``, ``KEYOPS_URL``/``KEYOPS_TOKEN`` or the stored ``--profile``; the
token needs ROLE_ADMIN),
and ``keyops audit verify``: walk the hash chain straight from the database."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from keyops.cli.http import call, fail
from keyops.cli.profiles import DEFAULT_PROFILE, ProfileOption, resolve

# keyops.domain.audit.MAX_PAGE_SIZE, the server's limit: that module imports SQLAlchemy,
# which only `keyops audit verify` uses (tests/cli/test_startup.py checks they agree).
MAX_PAGE_SIZE = 1000

audit_app = typer.Typer(
    help="Search the audit log; 'keyops audit verify' checks its hash chain.",
    invoke_without_command=True,
)

out = Console()


@audit_app.callback()
def search(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Option("--url", envvar="KEYOPS_URL", help="Base URL of the keyops service."),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="KEYOPS_TOKEN", help="An admin's token.")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Entries of this user.")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="certificate, key, user...")] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="ISO-8601 time: entries at or after it.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="ISO-8601 time: entries at or before it.")
    ] = None,
    page: Annotated[int, typer.Option("--page", min=0)] = 0,
    size: Annotated[int, typer.Option("--size", min=1, max=MAX_PAGE_SIZE)] = 100,
    profile: ProfileOption = DEFAULT_PROFILE,
) -> None:
    """Show audit entries, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    to = resolve(server, token, profile, missing_code=2)
    wanted = {
        "user": user,
        "project": project,
        "kind": kind,
        "name": name,
        "from": since,
        "to": until,
        "page": page,
        "size": size,
    }
    params = {k: v for k, v in wanted.items() if v is not None}
    body = call("GET", to.url, to.token, "/apiops/admin/audit/", params=params)
    table = Table("#", "Time", "User", "Operation", "Project", "Kind", "Name", "Outcome")
    for e in body["resultList"]:
        table.add_row(
            str(e["id"]),
            e["time"],
            e["username"] or "",
            e["operation"],
            e["project"] or "",
            e["kind"] or "",
            e["name"] or "",
            e["outcome"],
        )
    out.print(table)
    out.print(f"{body['resultCount']} of {body['totalCount']} entries (page {body['page']})")


@audit_app.command("verify")
def verify(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="The database to read; KEYOPS_DATABASE_URL (or the default SQLite file)"
            " if left out.",
        ),
    ] = None,
) -> None:
    """Walk the audit hash chain; exit 1 at the first edited, inserted or deleted entry."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    from keyops.config import Settings, to_sync_url
    from keyops.domain import audit
    from keyops.storage.repositories.audit import chain_rows

    if database_url is None:
        settings = Settings()
        database_url = settings.database_url or settings.default_sqlite_url()
    try:
        engine = create_engine(to_sync_url(database_url))
    except (SQLAlchemyError, ValueError) as exc:
        fail(f"can not open the database: {type(exc).__name__}", 2)
    try:
        with engine.connect() as conn:
            verdict = audit.verify(chain_rows(conn))
    except SQLAlchemyError as exc:
        fail(f"can not read the audit log: {type(exc).__name__}", 2)
    finally:
        engine.dispose()
    if not verdict.ok:
        print(f"tampered: {verdict.problem} ({verdict.count} entries verified before it)")
        raise typer.Exit(1)
    print(f"ok, {verdict.count} entries")
