"""``python -m keyops``: the same as the ``keyops`` command."""

from keyops.cli.main import app

app()
