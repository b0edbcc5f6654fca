"""The lean gateway node: ``keyops-gateway`` or ``python -m keyops.gateway``.

The same options as ``keyops gateway`` (one table, ``keyops.gateway.options``), parsed
with argparse and importing only what the node uses: no Typer (it imports pydantic to run
a command), no SQLAlchemy, Alembic, FastAPI, settings, nor httpx (``client`` is the
node's own HTTP client on h11). pyjks and PyCryptodome's RC2 (about 5.5 MB with what
they pull in) are imported by ``keyops.crypto.keystores`` only when a JKS/JCEKS or an
RC2-encrypted PKCS#12 keystore is read.

Measured with a 100-certificate snapshot and a TLS identity: 97-113 MB RSS through
``keyops gateway``, 68 MB through the former ``python -m keyops.gateway`` (Typer), about
40 MB here (tests/gateway/test_lean_node.py prints it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run the node until SIGTERM/SIGINT; the exit status."""
    import argparse
    import os

    from keyops.gateway.node import run_node
    from keyops.gateway.options import OPTIONS, SUMMARY, OptionError, build, configure_logging

    parser = argparse.ArgumentParser(prog="keyops-gateway", description=SUMMARY)
    for option in OPTIONS:
        help_text = option.help
        if option.envvar:
            help_text += f" [env var: {option.envvar}]"
        if option.required and not option.envvar:
            help_text += " [required]"
        help_text = help_text.replace("%", "%%")
        if option.show_default and option.default is not None:
            help_text += " (default: %(default)s)"
        parser.add_argument(
            option.flag,
            dest=option.name,
            type=option.type,
            action="append" if option.multiple else "store",
            default=None if option.multiple else option.default,
            metavar=(option.metavar or option.name.upper()).strip("<>").upper(),
            help=help_text,
        )
    values = vars(parser.parse_args(argv))
    for option in OPTIONS:
        if values.get(option.name) is None and option.envvar:
            values[option.name] = os.environ.get(option.envvar)
        if option.required and not values.get(option.name):
            parser.error(f"the option {option.flag} is required")
    try:
        config, driver = build(values)
    except OptionError as exc:
        parser.error(f"Invalid value for {exc.option}: {exc.message}")
    configure_logging()
    try:
        run_node(config, driver=driver)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
