"""A real ``keyops serve`` per database for the client CLI tests, and a way to run the CLI.

The server has the test deployment targets (``failing``, ``hanging``), so that a test
can make an environment whose roll-outs fail (exit code 4).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from keyops.client import Client
from tests.client.conftest import ADMIN_PASSWORD
from tests.conftest import LOOPBACK_ALLOW_LIST, TEST_TARGETS
from tests.support.databases import database
from tests.support.server import LiveServer, live_server


@pytest.fixture(scope="session")
def cli_live(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp(f"cli-client-{backend}")
    env = {
        "KEYOPS_URL_ALLOW_LIST": LOOPBACK_ALLOW_LIST,
        "KEYOPS_EXTRA_TARGETS": TEST_TARGETS,
        "KEYOPS_DEPLOY_TIMEOUT_SECONDS": "2",
        "KEYOPS_RECONCILE_SECONDS": "3600",
    }
    with (
        database(backend, work) as url,
        live_server(url, work / "data", admin_password=ADMIN_PASSWORD, extra_env=env) as server,
    ):
        yield server


@pytest.fixture
def admin_client(cli_live: LiveServer) -> Iterator[Client]:
    """The sync client, logged in as admin: to set up and to check what the CLI did."""
    with Client.login(cli_live.base_url, "admin", ADMIN_PASSWORD) as client:
        yield client


@dataclass
class ClientCli:
    """``python -m keyops ...`` as a script runs it: no terminal, stdin empty, a wide
    plain console, its own config directory; ``KEYOPS_URL``/``KEYOPS_TOKEN`` set unless
    ``login`` is what is tested."""

    config_home: Path
    url: str | None = None
    token: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def env(self, **overrides: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYOPS_")}
        env |= {"XDG_CONFIG_HOME": str(self.config_home), "COLUMNS": "250", "NO_COLOR": "1"}
        if self.url is not None:
            env["KEYOPS_URL"] = self.url
        if self.token is not None:
            env["KEYOPS_TOKEN"] = self.token
        env |= self.extra
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def __call__(
        self,
        *args: str,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "keyops", *args],
            env=dict(env) if env is not None else self.env(),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=90,
            cwd=cwd,
        )


@pytest.fixture
def client_cli(cli_live: LiveServer, admin_client: Client, tmp_path: Path) -> ClientCli:
    """The CLI against the test server, with the admin's token in KEYOPS_TOKEN."""
    token = admin_client.http.headers["Authorization"].removeprefix("Bearer ")
    return ClientCli(tmp_path / "config", cli_live.base_url, token)


def table_rows(text: str) -> list[list[str]]:
    """The cells of each line of a Rich table that has cells (the header's rule is ┃)."""
    rows = []
    for line in text.splitlines():
        line = line.strip().replace("┃", "│")
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows
