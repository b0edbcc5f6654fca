"""The admin commands as a real process: the environment they run in, and their tables."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from keyops.config import to_async_url
from keyops.storage.migrate import upgrade_to_head
from tests.cli.terminal import Terminal
from tests.support.server import TEST_MASTER_KEY


@dataclass
class Cli:
    database_url: str
    data_dir: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYOPS_")}
        # A wide console, so that tables are never wrapped or cut.
        env.update(
            KEYOPS_DATABASE_URL=self.database_url,
            KEYOPS_DATA_DIR=str(self.data_dir),
            COLUMNS="250",
            NO_COLOR="1",
            PYTHONIOENCODING="utf-8",
            # The key the live server uses, so both open the same sealed values.
            KEYOPS_MASTER_KEY=TEST_MASTER_KEY,
        )
        return env

    def init(self) -> Cli:
        """Make the database's schema, as the first ``keyops serve`` would (the admin
        commands never create a database), without its first-run data."""
        upgrade_to_head(to_async_url(self.database_url))
        return self

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "keyops", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def many(self, *commands: tuple[str, ...]) -> list[str]:
        """Run independent commands at once (each is a process); their stdout in order."""
        with ThreadPoolExecutor(len(commands)) as pool:
            return list(pool.map(lambda args: self.ok(*args), commands))

    def fails(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        return result.stderr

    def terminal(self, *args: str) -> Terminal:
        """The command on a pseudo-terminal, to answer its prompts."""
        return Terminal.start(args, self.env())


def rows(table: str) -> list[list[str]]:
    """The body rows of a rich table as lists of cell texts."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in table.splitlines()
        if line.startswith("│")
    ]
