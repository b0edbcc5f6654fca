"""A real ``keyops serve`` process on loopback, for end-to-end and concurrency tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

TEST_MASTER_KEY = "a2V5b3BzLXRlc3QtbWFzdGVyLWtleS0zMi1ieXRlcyE="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def live_server(
    database_url: str,
    data_dir: Path,
    *,
    admin_password: str,
    demo: bool = True,
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
    extra_args: Sequence[str] = (),
) -> Iterator[LiveServer]:
    """Start keyops serve, wait until its healthcheck answers, stop it afterwards.

    With several ``workers`` the log level is info (unless ``extra_env`` says otherwise),
    and this yields once every worker has logged that its startup is complete, so that
    each takes its share of connections from the start.
    """
    port = free_port()
    env = {
        **os.environ,
        "KEYOPS_DATABASE_URL": database_url,
        "KEYOPS_DATA_DIR": str(data_dir),
        "KEYOPS_ADMIN_PASSWORD": admin_password,
        "KEYOPS_LOG_LEVEL": "warning" if workers == 1 else "info",
        # One master key for every process on a database, as a real deployment has.
        "KEYOPS_MASTER_KEY": TEST_MASTER_KEY,
        **(extra_env or {}),
    }
    args = [sys.executable, "-m", "keyops", "serve", "--port", str(port)]
    if demo:
        args.append("--demo")
    if workers != 1:
        args += ["--workers", str(workers)]
    args += list(extra_args)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"serve-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"keyops serve exited early:\n{server.log()}")
            try:
                if httpx.get(
                    f"{server.base_url}/apiops/test/healthcheck", timeout=1
                ).text == "OK" and (
                    workers == 1 or server.log().count("Application startup complete") >= workers
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"keyops serve did not come up:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def password_token(base_url: str, username: str, password: str) -> str:
    """A token from a live server's token endpoint (client credentials, form-encoded)."""
    r = httpx.post(
        f"{base_url}/apiops/auth/token",
        data={"grant_type": "client_credentials", "client_id": username, "client_secret": password},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token
