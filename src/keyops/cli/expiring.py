"""``keyops expiring``: what expires soon, as a table, from ``GET /apiops/expiring/`` of a
running keyops (``--url``/``--token`` or ``KEYOPS_URL``/``KEYOPS_TOKEN``; the token
needs ROLE_API_SECURITY, and shows the projects its user may read)."""

from __future__ import annotations

import sys
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.table import Table

out = Console()
TIMEOUT_SECONDS = 30.0


def _fail(message: str, code: int = 1) -> NoReturn:
    # Plain print, not rich: a console would wrap the line at the terminal's width.
    print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def _get(server: str, token: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """One GET; exits 1 with the service's error text, 2 if it can not be reached."""
    try:
        response = httpx.get(
            server.rstrip("/") + path,
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        _fail(f"can not reach {server}: {type(exc).__name__}", 2)
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        _fail(f"{server} answered {response.status_code} without JSON")
    if response.status_code >= 400:
        _fail(str(body.get("error_description") or body.get("error") or response.status_code))
    return body


def expiring(
    server: Annotated[
        str, typer.Option("--url", envvar="KEYOPS_URL", help="Base URL of the keyops service.")
    ],
    token: Annotated[str, typer.Option("--token", envvar="KEYOPS_TOKEN", help="A bearer token.")],
    within_days: Annotated[
        int, typer.Option("--within-days", min=0, help="Days ahead; expired ones are shown too.")
    ] = 30,
) -> None:
    """List certificates, keystore entries and JWKs expiring soon, soonest first."""
    body = _get(server, token, "/apiops/expiring/", {"withinDays": within_days})
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
