"""Running the HTTP server: uvicorn with uvloop and httptools, one or several workers.

The parent process checks everything ``serve`` refuses to start without (settings,
migrations, the master key) once, then hands uvicorn an import string: each worker,
its own process, builds the application with ``app()``, reading the same settings from
the same environment. Workers share nothing but the database (and the listening socket
the parent bound), so N of them behave as one service, as N replicas on one PostgreSQL
do; on SQLite they queue for its write lock.

uvloop and httptools are asked for by name, never ``auto``: a missing extra refuses to
start instead of silently falling back to the slower pure-Python loop and parser.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

from fastapi import FastAPI

from keyops.cli.serverlock import hold_shared
from keyops.cli.startup import Refused, describe_database, load_settings
from keyops.config import Settings
from keyops.metrics import multiprocess_dir

__all__ = ["DEMO_ENV", "announce", "app", "check_server", "configure_logging", "run"]

# Set by ``keyops serve`` for its workers; a process started otherwise reads "0".
DEMO_ENV = "KEYOPS_SERVE_DEMO"
LOOP = "uvloop"
HTTP = "httptools"
FACTORY = "keyops.cli.serve:app"


def check_server(workers: int) -> None:
    """Refuse a worker count below one and an install without uvloop or httptools."""
    if workers < 1:
        raise Refused(
            f"--workers must be at least 1 (got {workers}): give the number of server"
            " processes, or leave it out for one"
        )
    missing = [name for name in (LOOP, HTTP) if importlib.util.find_spec(name) is None]
    if missing:
        raise Refused(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed:"
            " reinstall keyops with its dependencies, which include uvicorn[standard]"
        )


def announce(settings: Settings) -> None:
    """Say which data directory and database this server uses (never a password)."""
    # Plain print, one line: so that an operator who started it in the wrong directory
    # sees it at once, and a log collector keeps it whole.
    print(
        f"keyops: data directory {settings.data_dir.resolve()}, database"
        f" {describe_database(settings)}",
        file=sys.stderr,
        flush=True,
    )


def configure_logging(settings: Settings) -> None:
    """Log keyops' own lines at the configured level (once per process)."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )


def app() -> FastAPI:
    """The application of one worker, from the environment ``keyops serve`` set up."""
    from keyops.api.app import create_app

    settings = load_settings()
    # A worker holds the lock too, so that it still counts if its supervisor dies.
    hold_shared(settings)
    # A spawned worker starts with fresh logging; uvicorn sets up only its own loggers.
    configure_logging(settings)
    return create_app(settings, demo=os.environ.get(DEMO_ENV) == "1")


def run(settings: Settings, *, host: str, port: int, demo: bool, workers: int) -> None:
    """Serve until stopped; several workers run under uvicorn's process supervisor."""
    import uvicorn

    configure_logging(settings)
    # Inherited by the workers, which read it in app().
    os.environ[DEMO_ENV] = "1" if demo else "0"
    # Workers on one SQLite file watch it for each other's commits (storage/notify.py).
    os.environ["KEYOPS_WORKERS"] = str(workers)
    # Workers add up their metrics through files in one shared directory (metrics/).
    with multiprocess_dir(workers):
        uvicorn.run(
            FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop=LOOP,
            http=HTTP,
            log_level=settings.log_level.lower(),
            proxy_headers=False,
        )
