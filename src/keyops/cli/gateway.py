"""``keyops gateway``: run a gateway node of one environment.

The options are ``keyops.gateway.options.OPTIONS``, the table the lean
``keyops-gateway`` entry point reads too; this module only turns it into a Typer command.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer

from keyops.gateway.node import run_node
from keyops.gateway.options import OPTIONS, SUMMARY, Option, OptionError, build, configure_logging

__all__ = ["gateway"]


def _parameter(option: Option) -> inspect.Parameter:
    info = typer.Option(
        help=option.help,
        envvar=option.envvar,
        show_default=option.show_default,
        metavar=option.metavar,
    )
    kind: Any = list[option.type] if option.multiple else option.type  # type: ignore[name-defined]
    if not option.required:
        kind = kind | None
    default = inspect.Parameter.empty if option.required else option.default
    return inspect.Parameter(
        option.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[kind, info],
    )


def gateway(**values: Any) -> None:
    try:
        config, driver = build(values)
    except OptionError as exc:
        raise typer.BadParameter(exc.message, param_hint=exc.option) from None
    configure_logging()
    try:
        run_node(config, driver=driver)
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


_PARAMETERS = [_parameter(option) for option in OPTIONS]
gateway.__signature__ = inspect.Signature(_PARAMETERS)  # type: ignore[attr-defined]
gateway.__annotations__ = {p.name: p.annotation for p in _PARAMETERS} | {"return": None}
gateway.__doc__ = SUMMARY
