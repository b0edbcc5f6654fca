"""``keyops gateway``: run a gateway node of one environment."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from keyops.gateway.node import HostPort, NodeConfig, default_node_name, parse_hostport, run_node
from keyops.secrets import Secret


def _hostport(option: str, text: str) -> HostPort:
    try:
        return parse_hostport(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def gateway(
    environment: Annotated[str, typer.Option(help="The environment this node serves.")],
    manager: Annotated[str, typer.Option(help="Base URL of the keyops manager.")],
    token: Annotated[
        str,
        typer.Option(
            envvar="KEYOPS_GATEWAY_TOKEN",
            help="The environment's node credential (prefer the environment variable).",
            show_default=False,
        ),
    ],
    listen: Annotated[str, typer.Option(help="HOST:PORT of the TLS listener.")] = "127.0.0.1:8443",
    status_listen: Annotated[
        str, typer.Option(help="HOST:PORT of the plain-HTTP status endpoint.")
    ] = "127.0.0.1:9100",
    data_dir: Annotated[
        Path, typer.Option(help="Where the last applied snapshot is kept (sealed).")
    ] = Path("./keyops-gateway"),
    name: Annotated[
        str | None, typer.Option(help="Node name; default HOSTNAME-LISTENPORT.")
    ] = None,
) -> None:
    """Run a gateway node: follow the environment's snapshots and serve them over TLS."""
    listen_at = _hostport("--listen", listen)
    status_at = _hostport("--status-listen", status_listen)
    if not manager.startswith(("http://", "https://")):
        raise typer.BadParameter("expected an http:// or https:// URL", param_hint="--manager")
    if not token.strip():
        raise typer.BadParameter("the node credential is empty", param_hint="--token")
    logging.basicConfig(
        level=os.environ.get("KEYOPS_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # httpx logs every request at INFO: one line per long poll is noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    config = NodeConfig(
        environment=environment,
        manager=manager,
        token=Secret(token.strip().encode("utf-8")),
        listen=listen_at,
        status_listen=status_at,
        data_dir=data_dir,
        name=name or default_node_name(listen_at),
    )
    try:
        run_node(config)
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
