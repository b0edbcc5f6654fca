"""Commands whose options are built only when they run: ``keyops --help`` and the client
verbs then start without importing what such a command needs to describe itself.

``keyops gateway`` takes its options from ``keyops.gateway.options``, which imports the
whole node (TLS, snapshots, JWKs); the root's help needs only its name and summary. The
placeholder registered under the name carries that summary; given arguments (to run, to
show its own ``--help``, or to complete them), it hands them to the real command, built
then, so that whatever follows sees that command's context as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer._click.core import Command, Context
from typer.core import TyperCommand

__all__ = ["add_lazy_command"]


def _placeholder() -> None:  # pragma: no cover - make_context never hands it a context
    raise AssertionError("a lazy command runs the command it stands for")


def add_lazy_command(
    app: typer.Typer, name: str, help_text: str, load: Callable[[], Callable[..., Any]]
) -> None:
    """Register ``name`` in ``app`` with ``help_text``; ``load`` imports and returns the
    command's function, as ``app.command(name)`` would be given it, once it is run."""

    def real() -> Command:
        single = typer.Typer(add_completion=False)
        single.command(name)(load())
        return typer.main.get_command(single)

    class LazyCommand(TyperCommand):
        def make_context(
            self,
            info_name: str | None,
            args: list[str],
            parent: Context | None = None,
            **extra: Any,
        ) -> Context:
            return real().make_context(info_name, args, parent=parent, **extra)

    app.command(name, cls=LazyCommand, help=help_text)(_placeholder)
