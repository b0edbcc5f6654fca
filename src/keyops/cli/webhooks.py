"""``keyops webhooks``: add, list and delete webhooks and show their deliveries, over the
admin REST API of a running keyops (``--url``/``--token``, ``KEYOPS_URL``/
``KEYOPS_TOKEN`` or the stored ``--profile``; the token needs ROLE_ADMIN)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from keyops.cli.http import call
from keyops.cli.profiles import DEFAULT_PROFILE, ProfileOption, resolve

webhooks_app = typer.Typer(
    help="Manage webhooks (expiry alerts, change events).", no_args_is_help=True
)

out = Console()

ServerUrl = Annotated[
    str | None,
    typer.Option("--url", envvar="KEYOPS_URL", help="Base URL of the keyops service."),
]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="KEYOPS_TOKEN", help="An admin's bearer token."),
]
ProjectOption = Annotated[
    str | None,
    typer.Option("--project", "-p", help="The project's webhooks; global ones if left out."),
]


def _base(project: str | None) -> str:
    return f"/apiops/projects/{project}/webhooks/" if project else "/apiops/admin/webhooks/"


def _project_cell(hook: dict[str, Any]) -> str:
    return hook["projectName"] or "(global)"


@webhooks_app.command("add")
def add(
    target: Annotated[str, typer.Argument(help="The URL that receives the events.")],
    server: ServerUrl = None,
    token: Token = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    project: ProjectOption = None,
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            "-e",
            help="expiry, created, replaced, deleted or deployment_failed (repeatable);"
            " all if left out.",
        ),
    ] = None,
) -> None:
    """Add a webhook; prints its signing secret, which is never shown again."""
    payload: dict[str, Any] = {"url": target}
    if event:
        payload["events"] = event
    to = resolve(server, token, profile, missing_code=2)
    hook = call("POST", to.url, to.token, _base(project), json=payload)["result"]
    out.print(f"webhook {hook['id']} added for {_project_cell(hook)}: {', '.join(hook['events'])}")
    out.print("secret (shown only now; receivers verify X-Keyops-Signature with it):")
    # Plain print: the secret must be copyable as one line.
    print(hook["secret"], flush=True)


@webhooks_app.command("list")
def list_(
    server: ServerUrl = None,
    token: Token = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    project: ProjectOption = None,
) -> None:
    """List every webhook, or a project's."""
    to = resolve(server, token, profile, missing_code=2)
    hooks = call("GET", to.url, to.token, _base(project))["resultList"]
    table = Table("id", "project", "url", "events", "created", "by")
    for h in hooks:
        table.add_row(
            str(h["id"]),
            _project_cell(h),
            h["url"],
            ",".join(h["events"]),
            h["createdAt"],
            h["createdBy"],
        )
    out.print(table)


@webhooks_app.command("delete")
def delete(
    webhook_id: Annotated[int, typer.Argument(metavar="ID")],
    server: ServerUrl = None,
    token: Token = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    project: ProjectOption = None,
) -> None:
    """Delete a webhook (with its deliveries)."""
    to = resolve(server, token, profile, missing_code=2)
    call("DELETE", to.url, to.token, f"{_base(project)}{webhook_id}/")
    out.print(f"webhook {webhook_id} deleted")


@webhooks_app.command("deliveries")
def deliveries(
    webhook_id: Annotated[int, typer.Argument(metavar="ID")],
    server: ServerUrl = None,
    token: Token = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    project: ProjectOption = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 100,
) -> None:
    """Show a webhook's deliveries: state, attempts, last answer or error."""
    to = resolve(server, token, profile, missing_code=2)
    path = f"{_base(project)}{webhook_id}/deliveries/"
    rows = call("GET", to.url, to.token, path, params={"limit": limit})["resultList"]
    table = Table("id", "event", "status", "attempts", "last status", "last error", "next attempt")
    for d in rows:
        table.add_row(
            str(d["id"]),
            d["event"],
            d["status"],
            str(d["attempts"]),
            "" if d["lastStatusCode"] is None else str(d["lastStatusCode"]),
            d["lastError"] or "",
            d["nextAttemptAt"] or "",
        )
    out.print(table)
