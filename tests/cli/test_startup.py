"""The ``keyops`` command starts like a client (issue 13): importing it, or running a
client verb, imports none of the server's stack (FastAPI, Starlette, SQLAlchemy,
Alembic, uvicorn), and ``keyops --help`` still lists every command.

What it imports is checked, not how long it takes: the server's modules were what made
``keyops --help`` take over a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from keyops.cli import audit as cli_audit
from keyops.cli import main as cli_main
from keyops.domain import audit as domain_audit
from keyops.gateway import options as gateway_options

SERVER_STACK = {"fastapi", "sqlalchemy", "alembic", "uvicorn", "starlette"}

# `keyops --help`'s commands, in its order, as they were before the imports were made lazy.
COMMANDS = [
    "gateway",
    "expiring",
    "backup",
    "restore",
    "login",
    "logout",
    "envs",
    "deployments",
    "nodes",
    "apply",
    "dump",
    "serve",
    "rotate-master-key",
    "user",
    "project",
    "env",
    "token",
    "webhooks",
    "audit",
    "certs",
    "keys",
    "keystores",
    "jwks",
]

# Run the CLI in this process, then print (as JSON, on stderr) the server-stack modules
# it imported by the time it exited.
RUN_AND_REPORT = f"""
import atexit, json, sys
stack = {sorted(SERVER_STACK)!r}
atexit.register(lambda: print(json.dumps(sorted(
    m for m in sys.modules if m.split(".")[0] in stack)), file=sys.stderr))
from keyops.cli.main import app
app(prog_name="keyops")
"""


def python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYOPS_")}
    env |= {"COLUMNS": "200", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


def imported_by(
    *argv: str, cwd: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    result = python("-c", RUN_AND_REPORT, *argv, cwd=cwd)
    report = result.stderr.strip().splitlines()[-1]
    return result, json.loads(report)


def command_names(help_text: str) -> list[str]:
    """The first column of the help's Commands panel (a wrapped description's next lines
    leave it blank)."""
    lines = iter(help_text.splitlines())
    for line in lines:
        if line.startswith("╭─ Commands"):
            break
    names = []
    for line in lines:
        if line.startswith("╰"):
            break
        cell = line.removeprefix("│ ")
        if cell[:1].strip():
            names.append(cell.split()[0])
    return names


def test_importing_the_cli_imports_no_server_module() -> None:
    code = (
        "import keyops.cli.main, sys; print(sorted(m for m in sys.modules if m.split('.')[0]"
        " in {'fastapi','sqlalchemy','alembic','uvicorn','starlette'}))"
    )
    result = python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_help_lists_every_command() -> None:
    result = python("-m", "keyops", "--help")
    assert result.returncode == 0, result.stderr
    assert command_names(result.stdout) == COMMANDS
    # The gateway's summary, without the gateway's modules.
    assert "Run a gateway node: follow the environment's snapshots" in result.stdout


def test_client_verbs_run_without_the_server_stack() -> None:
    for argv in (["--version"], ["--help"], ["certs", "list", "--help"]):
        result, modules = imported_by(*argv)
        assert result.returncode == 0, (argv, result.stderr)
        assert modules == [], argv
    # A real call that fails to connect still went the whole client path.
    result, modules = imported_by(
        "certs", "list", "--project", "P", "--url", "http://127.0.0.1:9", "--token", "t"
    )
    assert result.returncode == 5, result.stderr
    assert modules == []


def test_the_lazy_gateway_command_is_the_real_one() -> None:
    result, _ = imported_by("gateway", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: keyops gateway [OPTIONS]" in result.stdout
    for option in ("--environment", "--manager", "--token", "--driver", "--haproxy-socket"):
        assert option in result.stdout
    result, _ = imported_by("gateway")
    assert result.returncode == 2
    assert "Missing option '--environment'" in result.stderr


def test_what_the_cli_copies_to_stay_light_matches_its_source() -> None:
    assert cli_main.GATEWAY_SUMMARY == gateway_options.SUMMARY
    assert cli_audit.MAX_PAGE_SIZE == domain_audit.MAX_PAGE_SIZE


def test_admin_commands_still_import_the_server_stack_when_run(tmp_path: Path) -> None:
    # The lazy imports happen: `keyops user list` reaches its refusal (no database here).
    result, modules = imported_by("user", "list", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "no keyops database" in result.stderr, result.stderr
    assert "sqlalchemy" in {m.split(".")[0] for m in modules}
