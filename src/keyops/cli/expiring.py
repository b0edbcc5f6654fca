"""``keyops expiring``: what expires soon, as a table, from ``GET /apiops/expiring/`` of a
running keyops (``--url``/``--token``, ``KEYOPS_URL``/``KEYOPS_TOKEN`` or the stored
``--profile``; the token
needs ROLE_API_SECURITY, and shows the projects its user may read)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from keyops.cli.http import call
from keyops.cli.profiles import DEFAULT_PROFILE, ProfileOption, resolve

out = Console()


def expiring(
    server: Annotated[
        str | None,
        typer.Option("--url", envvar="KEYOPS_URL", help="Base URL of the keyops service."),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="KEYOPS_TOKEN", help="A bearer token.")
    ] = None,
    within_days: Annotated[
        int, typer.Option("--within-days", min=0, help="Days ahead; expired ones are shown too.")
    ] = 30,
    profile: ProfileOption = DEFAULT_PROFILE,
) -> None:
    """List certificates, keystore entries and JWKs expiring soon, soonest first."""
    to = resolve(server, token, profile, missing_code=2)
    body = call("GET", to.url, to.token, "/apiops/expiring/", params={"withinDays": within_days})
    rows = body["resultList"]
    if not rows:
        out.print(f"nothing expires within {within_days} days")
        return
    table = Table("days left", "not after", "project", "kind", "name", "environment", "alias")
    for r in rows:
        table.add_row(
            str(r["daysLeft"]),
            r["notAfter"],
            r["project"],
            r["kind"],
            r["name"],
            r["environment"] or "-",
            r.get("alias") or "",
        )
    out.print(table)
