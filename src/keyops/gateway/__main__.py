"""``python -m keyops.gateway``: the same as ``keyops gateway``."""

import typer

from keyops.cli.gateway import gateway

typer.run(gateway)
