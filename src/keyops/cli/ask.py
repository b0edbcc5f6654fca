"""Asking the operator: confirmations of destructive commands, and passwords.

Prompts go to stderr (stdout stays the command's output) and only to a terminal: a
command run from a script with no ``--yes`` or no password is refused in one line
saying which flag to give, instead of hanging on, or reading, whatever stdin holds.
A password is never echoed, is typed twice where it is being set, and can come from
``--password-stdin`` instead of a flag that lands in the shell's history.
"""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

__all__ = ["PasswordStdin", "UsageProblem", "Yes", "confirm", "fail", "password"]

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of stdin (e.g. from a secret store).",
    ),
]


class UsageProblem(typer.BadParameter):
    """Flags that do not go together: Typer's usage error (exit status 2), in our words."""

    def format_message(self) -> str:
        return self.message


def fail(message: str) -> NoReturn:
    """The command ran and failed: one line on stderr, exit status 1."""
    # Plain print, not rich: a console would wrap the line at the terminal's width.
    print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    raise typer.Exit(1)


def _interactive() -> bool:
    return sys.stdin.isatty()


def confirm(question: str, *, yes: bool, refusal: str) -> None:
    """Ask ``question`` unless ``yes``; stop with nothing changed unless the answer is yes.

    ``refusal`` names what would be done, for the line printed when no terminal can be
    asked (``... needs confirmation``).
    """
    if yes:
        return
    if not _interactive():
        fail(f"{refusal} needs confirmation: answer on a terminal, or pass --yes")
    if not typer.confirm(question, default=False, err=True):
        fail("not confirmed: nothing was changed")


def password(given: str | None, from_stdin: bool, *, confirmation: bool = True) -> str:
    """The password from ``--password-stdin``, ``--password`` or a hidden prompt."""
    if from_stdin:
        if given is not None:
            raise UsageProblem("--password-stdin contradicts --password: give one of them")
        # One line, as `docker login --password-stdin` reads it; the newline is not part.
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            fail("--password-stdin read no password: pipe it in, e.g. from your secret store")
        return value
    if given is not None:
        return given
    if not _interactive():
        fail(
            "no password: type it at the prompt on a terminal, or pipe it in with --password-stdin"
        )
    value = typer.prompt("Password", hide_input=True, confirmation_prompt=confirmation, err=True)
    assert isinstance(value, str)
    return value
