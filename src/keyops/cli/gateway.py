"""``keyops gateway``: run a gateway node of one environment."""

from __future__ import annotations

import grp
import logging
import os
import pwd
from pathlib import Path
from typing import Annotated

import typer

from keyops.gateway.drivers.base import Driver
from keyops.gateway.node import HostPort, NodeConfig, default_node_name, parse_hostport, run_node
from keyops.secrets import Secret

DRIVERS = ("files", "haproxy", "nginx")
DEFAULT_LISTEN = "127.0.0.1:8443"


def _hostport(option: str, text: str) -> HostPort:
    try:
        return parse_hostport(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def parse_owner(text: str) -> tuple[int, int]:
    """``USER[:GROUP]`` (names or numbers) -> (uid, gid); the group defaults to the user's."""
    user, _, group = text.partition(":")
    try:
        if user.isdigit():
            uid = int(user)
            gid = pwd.getpwuid(uid).pw_gid if not group else -1
        else:
            entry = pwd.getpwnam(user)
            uid, gid = entry.pw_uid, entry.pw_gid
        if group:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise typer.BadParameter(
            f"no such user or group: {text}", param_hint="--output-owner"
        ) from None
    return uid, gid


def _driver(
    name: str,
    *,
    check_command: str | None,
    reload_command: str | None,
    nginx_binary: str | None,
    nginx_conf: Path | None,
    haproxy_socket: str | None,
    haproxy_crt_list: str | None,
    command_timeout: float,
) -> Driver:
    """The driver ``name`` with its options; options of another driver are refused."""
    given = {
        "--check-command": (check_command, "files"),
        "--reload-command": (reload_command, "files"),
        "--nginx-binary": (nginx_binary, "nginx"),
        "--nginx-conf": (nginx_conf, "nginx"),
        "--haproxy-socket": (haproxy_socket, "haproxy"),
        "--haproxy-crt-list": (haproxy_crt_list, "haproxy"),
    }
    for option, (value, owner) in given.items():
        if value is not None and owner != name:
            raise typer.BadParameter(f"only with --driver {owner}", param_hint=option)
    if name == "files":
        from keyops.gateway.drivers.files import FilesDriver

        return FilesDriver(check_command, reload_command, timeout=command_timeout)
    if name == "nginx":
        from keyops.gateway.drivers.nginx import NginxDriver

        return NginxDriver(nginx_binary or "nginx", nginx_conf, timeout=command_timeout)
    if not haproxy_socket:
        raise typer.BadParameter("required with --driver haproxy", param_hint="--haproxy-socket")
    # Imported only when chosen: the other drivers do not need it.
    from keyops.gateway.drivers.haproxy import HaproxyDriver
    from keyops.gateway.drivers.haproxy_api import quote_arg

    if haproxy_crt_list is not None:
        if not haproxy_crt_list.strip():
            raise typer.BadParameter("the crt-list path is empty", param_hint="--haproxy-crt-list")
        try:
            quote_arg(haproxy_crt_list)  # HAProxy's CLI could never be given it
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--haproxy-crt-list") from None
    try:
        driver: Driver = HaproxyDriver(socket=haproxy_socket, crt_list=haproxy_crt_list)
    except ValueError as exc:
        raise typer.BadParameter(
            f"not a HAProxy runtime API address: {exc}", param_hint="--haproxy-socket"
        ) from None
    return driver


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
    listen: Annotated[
        str | None,
        typer.Option(
            help=(
                f"HOST:PORT of the node's own TLS listener, or 'none' (only with --driver)."
                f" Default {DEFAULT_LISTEN} without a driver, none with one."
            ),
            show_default=False,
        ),
    ] = None,
    status_listen: Annotated[
        str, typer.Option(help="HOST:PORT of the plain-HTTP status endpoint.")
    ] = "127.0.0.1:9100",
    data_dir: Annotated[
        Path, typer.Option(help="Where the last applied snapshot is kept (sealed).")
    ] = Path("./keyops-gateway"),
    name: Annotated[
        str | None,
        typer.Option(help="Node name; default HOSTNAME-PORT (TLS listener, else status port)."),
    ] = None,
    driver: Annotated[
        str | None,
        typer.Option(
            help="Deliver each snapshot to a gateway as files: files, haproxy or nginx.",
            show_default=False,
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(help="Where the driver's files are written (required with --driver)."),
    ] = None,
    output_owner: Annotated[
        str | None,
        typer.Option(help="USER[:GROUP] given the written files (the gateway's user)."),
    ] = None,
    check_command: Annotated[
        str | None,
        typer.Option(help="files: shell command run after writing; non-zero undoes the apply."),
    ] = None,
    reload_command: Annotated[
        str | None, typer.Option(help="files: shell command run after a passed check.")
    ] = None,
    nginx_binary: Annotated[
        str | None, typer.Option(help="nginx: the nginx executable (default nginx).")
    ] = None,
    nginx_conf: Annotated[
        Path | None, typer.Option(help="nginx: the configuration file (nginx -c).")
    ] = None,
    haproxy_socket: Annotated[
        str | None,
        typer.Option(
            help="haproxy: the runtime API: PATH or unix@PATH (a socket), ipv4@HOST:PORT or"
            " ipv6@[HOST]:PORT."
        ),
    ] = None,
    haproxy_crt_list: Annotated[
        str | None,
        typer.Option(
            help=(
                "haproxy: the crt-list new identities are added to (as HAProxy's"
                " configuration names it); default: their directory, if HAProxy loads it."
            ),
            show_default=False,
        ),
    ] = None,
    command_timeout: Annotated[
        float, typer.Option(help="Seconds a check or reload command may take.")
    ] = 30.0,
) -> None:
    """Run a gateway node: follow the environment's snapshots and serve them over TLS,
    or hand them to a real gateway through files (--driver)."""
    if driver is not None and driver not in DRIVERS:
        raise typer.BadParameter(f"expected one of {', '.join(DRIVERS)}", param_hint="--driver")
    if driver is None:
        for option, value in (("--output-dir", output_dir), ("--output-owner", output_owner)):
            if value is not None:
                raise typer.BadParameter("only with --driver", param_hint=option)
    elif output_dir is None:
        raise typer.BadParameter("required with --driver", param_hint="--output-dir")
    if listen is None:
        listen = "none" if driver is not None else DEFAULT_LISTEN
    if listen.strip().lower() == "none":
        if driver is None:
            raise typer.BadParameter(
                "the node needs its TLS listener unless a --driver serves", param_hint="--listen"
            )
        listen_at: HostPort | None = None
    else:
        listen_at = _hostport("--listen", listen)
    status_at = _hostport("--status-listen", status_listen)
    if not manager.startswith(("http://", "https://")):
        raise typer.BadParameter("expected an http:// or https:// URL", param_hint="--manager")
    if not token.strip():
        raise typer.BadParameter("the node credential is empty", param_hint="--token")
    if command_timeout <= 0:
        raise typer.BadParameter("must be positive", param_hint="--command-timeout")
    owner = parse_owner(output_owner) if output_owner else None
    chosen = (
        _driver(
            driver,
            check_command=check_command,
            reload_command=reload_command,
            nginx_binary=nginx_binary,
            nginx_conf=nginx_conf.absolute() if nginx_conf else None,
            haproxy_socket=haproxy_socket,
            haproxy_crt_list=haproxy_crt_list,
            command_timeout=command_timeout,
        )
        if driver is not None
        else None
    )
    if chosen is None:
        for option, value in (
            ("--check-command", check_command),
            ("--reload-command", reload_command),
            ("--nginx-binary", nginx_binary),
            ("--nginx-conf", nginx_conf),
            ("--haproxy-socket", haproxy_socket),
            ("--haproxy-crt-list", haproxy_crt_list),
        ):
            if value is not None:
                raise typer.BadParameter("only with --driver", param_hint=option)
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
        name=name or default_node_name(listen_at or status_at),
        output_dir=output_dir.absolute() if output_dir is not None else None,
        output_owner=owner,
    )
    try:
        run_node(config, driver=chosen)
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
