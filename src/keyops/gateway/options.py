"""The node's command-line options: one table, read by ``keyops gateway`` (Typer) and by
the lean ``keyops-gateway`` / ``python -m keyops.gateway`` (argparse), and the one place
that turns their values into a ``NodeConfig`` and a driver.

Nothing here imports Typer: the lean entry point must not pay for it (Typer 0.29 imports
pydantic when it runs a command, about 8 MB).
"""

from __future__ import annotations

import grp
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyops.gateway.drivers.base import Driver
from keyops.gateway.node import HostPort, NodeConfig, default_node_name, parse_hostport
from keyops.secrets import Secret

__all__ = [
    "DEFAULT_LISTEN",
    "DRIVERS",
    "OPTIONS",
    "SUMMARY",
    "Option",
    "OptionError",
    "build",
    "manager_urls",
    "parse_owner",
]

DRIVERS = ("files", "haproxy", "nginx")
DEFAULT_LISTEN = "127.0.0.1:8443"
SUMMARY = (
    "Run a gateway node: follow the environment's snapshots and serve them over TLS,\n"
    "or hand them to a real gateway through files (--driver)."
)


class OptionError(ValueError):
    """A bad option value; ``option`` names it (``--listen``)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option
        self.message = message


@dataclass(frozen=True, slots=True)
class Option:
    """One option: ``--name`` from the field name, its value type, default and help."""

    name: str
    type: type
    help: str
    default: Any = None
    required: bool = False
    envvar: str | None = None
    show_default: bool = True
    multiple: bool = False
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("environment", str, "The environment this node serves.", required=True),
    Option(
        "manager",
        str,
        "Base URL of the keyops manager. Give it again (or a comma-separated list) for"
        " replicas: the node uses one at a time, the first it can reach, and goes back to"
        " earlier ones when they answer again.",
        required=True,
        multiple=True,
        metavar="<url>",
    ),
    Option(
        "token",
        str,
        "The environment's node credential (prefer the environment variable).",
        required=True,
        envvar="KEYOPS_GATEWAY_TOKEN",
        show_default=False,
    ),
    Option(
        "listen",
        str,
        f"HOST:PORT of the node's own TLS listener, or 'none' (only with --driver)."
        f" Default {DEFAULT_LISTEN} without a driver, none with one.",
        show_default=False,
    ),
    Option("status_listen", str, "HOST:PORT of the plain-HTTP status endpoint.", "127.0.0.1:9100"),
    Option(
        "data_dir",
        Path,
        "Where the last applied snapshot is kept (sealed).",
        Path("./keyops-gateway"),
    ),
    Option("name", str, "Node name; default HOSTNAME-PORT (TLS listener, else status port)."),
    Option(
        "driver",
        str,
        "Deliver each snapshot to a gateway as files: files, haproxy or nginx.",
        show_default=False,
    ),
    Option("output_dir", Path, "Where the driver's files are written (required with --driver)."),
    Option("output_owner", str, "USER[:GROUP] given the written files (the gateway's user)."),
    Option(
        "check_command",
        str,
        "files: shell command run after writing; non-zero undoes the apply.",
    ),
    Option("reload_command", str, "files: shell command run after a passed check."),
    Option("nginx_binary", str, "nginx: the nginx executable (default nginx)."),
    Option("nginx_conf", Path, "nginx: the configuration file (nginx -c)."),
    Option(
        "haproxy_socket",
        str,
        "haproxy: the runtime API: PATH or unix@PATH (a socket), ipv4@HOST:PORT or"
        " ipv6@[HOST]:PORT.",
    ),
    Option(
        "haproxy_crt_list",
        str,
        "haproxy: the crt-list new identities are added to (as HAProxy's"
        " configuration names it); default: their directory, if HAProxy loads it.",
        show_default=False,
    ),
    Option("command_timeout", float, "Seconds a check or reload command may take.", 30.0),
)


def manager_urls(values: list[str] | tuple[str, ...] | str) -> tuple[str, ...]:
    """Every ``--manager`` value, comma lists split, in order, duplicates dropped."""
    given = [values] if isinstance(values, str) else list(values)
    urls: list[str] = []
    for value in given:
        for part in value.split(","):
            url = part.strip().rstrip("/")
            if not url:
                raise OptionError("--manager", f"an empty URL in {value!r}")
            if not url.startswith(("http://", "https://")):
                raise OptionError("--manager", f"expected an http:// or https:// URL, got {url!r}")
            if url not in urls:
                urls.append(url)
    if not urls:
        raise OptionError("--manager", "at least one manager URL is required")
    return tuple(urls)


def _hostport(option: str, text: str) -> HostPort:
    try:
        return parse_hostport(text)
    except ValueError as exc:
        raise OptionError(option, str(exc)) from None


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
        raise OptionError("--output-owner", f"no such user or group: {text}") from None
    return uid, gid


_DRIVER_OPTIONS = {
    "check_command": "files",
    "reload_command": "files",
    "nginx_binary": "nginx",
    "nginx_conf": "nginx",
    "haproxy_socket": "haproxy",
    "haproxy_crt_list": "haproxy",
}


def _driver(name: str, v: Mapping[str, Any]) -> Driver:
    """The driver ``name`` with its options; options of another driver are refused."""
    for key, owner in _DRIVER_OPTIONS.items():
        if v.get(key) is not None and owner != name:
            raise OptionError("--" + key.replace("_", "-"), f"only with --driver {owner}")
    timeout = float(v["command_timeout"])
    if name == "files":
        from keyops.gateway.drivers.files import FilesDriver

        return FilesDriver(v.get("check_command"), v.get("reload_command"), timeout=timeout)
    if name == "nginx":
        from keyops.gateway.drivers.nginx import NginxDriver

        conf = v.get("nginx_conf")
        return NginxDriver(
            v.get("nginx_binary") or "nginx",
            Path(conf).absolute() if conf else None,
            timeout=timeout,
        )
    socket, crt_list = v.get("haproxy_socket"), v.get("haproxy_crt_list")
    if not socket:
        raise OptionError("--haproxy-socket", "required with --driver haproxy")
    # Imported only when chosen: the other drivers do not need it.
    from keyops.gateway.drivers.haproxy import HaproxyDriver
    from keyops.gateway.drivers.haproxy_api import quote_arg

    if crt_list is not None:
        if not crt_list.strip():
            raise OptionError("--haproxy-crt-list", "the crt-list path is empty")
        try:
            quote_arg(crt_list)  # HAProxy's CLI could never be given it
        except ValueError as exc:
            raise OptionError("--haproxy-crt-list", str(exc)) from None
    try:
        driver: Driver = HaproxyDriver(socket=socket, crt_list=crt_list)
    except ValueError as exc:
        raise OptionError("--haproxy-socket", f"not a HAProxy runtime API address: {exc}") from None
    return driver


def build(values: Mapping[str, Any]) -> tuple[NodeConfig, Driver | None]:
    """The node's configuration and driver from the option values (keyed by ``Option.name``);
    ``OptionError`` names the first bad one."""
    v = {option.name: values.get(option.name, option.default) for option in OPTIONS}
    driver, output_dir, output_owner = v["driver"], v["output_dir"], v["output_owner"]
    if driver is not None and driver not in DRIVERS:
        raise OptionError("--driver", f"expected one of {', '.join(DRIVERS)}")
    if driver is None:
        for flag, value in (("--output-dir", output_dir), ("--output-owner", output_owner)):
            if value is not None:
                raise OptionError(flag, "only with --driver")
    elif output_dir is None:
        raise OptionError("--output-dir", "required with --driver")
    listen = v["listen"]
    if listen is None:
        listen = "none" if driver is not None else DEFAULT_LISTEN
    listen_at: HostPort | None
    if listen.strip().lower() == "none":
        if driver is None:
            raise OptionError(
                "--listen", "the node needs its TLS listener unless a --driver serves"
            )
        listen_at = None
    else:
        listen_at = _hostport("--listen", listen)
    status_at = _hostport("--status-listen", v["status_listen"])
    managers = manager_urls(v["manager"] or ())
    token = str(v["token"] or "")
    if not token.strip():
        raise OptionError("--token", "the node credential is empty")
    if float(v["command_timeout"]) <= 0:
        raise OptionError("--command-timeout", "must be positive")
    owner = parse_owner(output_owner) if output_owner else None
    if driver is None:
        for key in _DRIVER_OPTIONS:
            if v.get(key) is not None:
                raise OptionError("--" + key.replace("_", "-"), "only with --driver")
    chosen = _driver(driver, v) if driver is not None else None
    config = NodeConfig(
        environment=v["environment"],
        manager=managers[0],
        fallbacks=managers[1:],
        token=Secret(token.strip().encode("utf-8")),
        listen=listen_at,
        status_listen=status_at,
        data_dir=Path(v["data_dir"]),
        name=v["name"] or default_node_name(listen_at or status_at),
        output_dir=Path(output_dir).absolute() if output_dir is not None else None,
        output_owner=owner,
    )
    return config, chosen


def configure_logging() -> None:
    """``KEYOPS_LOG_LEVEL`` (default INFO) to stderr."""
    import logging
    import os

    logging.basicConfig(
        level=os.environ.get("KEYOPS_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
