"""Stored logins (``keyops.cli.profiles``), which server and token a verb uses, and the
exit codes: in-process where no server is needed, and the CLI itself for exits 1 and 5."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer

from keyops.cli import profiles
from keyops.cli.output import days_left, exit_code, expiry_cell
from keyops.cli.profiles import Stored, Target, config_path, load, remove, resolve, save
from keyops.client import (
    BadRequest,
    Conflict,
    Forbidden,
    KeyopsError,
    NotFound,
    ServerError,
    TransportError,
    Unauthorized,
)
from tests.support.server import free_port


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def refused(capsys: pytest.CaptureFixture[str], *args: str | None, **kwargs: str) -> str:
    with pytest.raises(typer.Exit) as stopped:
        resolve(*args, **kwargs)  # type: ignore[arg-type]
    assert stopped.value.exit_code == 1
    err: str = capsys.readouterr().err
    return err


def test_config_path_follows_xdg_then_home(
    config_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config_path() == config_home / "keyops" / "config.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_path() == tmp_path / "home" / ".config" / "keyops" / "config.json"
    # The XDG spec: a relative XDG_CONFIG_HOME is ignored.
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert config_path() == tmp_path / "home" / ".config" / "keyops" / "config.json"


def test_saved_profiles_are_0600_in_a_0700_directory_whatever_the_umask(
    config_home: Path,
) -> None:
    (config_home / "keyops").mkdir(parents=True, mode=0o755)
    os.chmod(config_home / "keyops", 0o755)  # noqa: S103 - what login must tighten
    previous = os.umask(0)
    try:
        path = save("default", Stored("https://a.example", "tok-a", "2030-01-01T00:00:00Z"))
        save("ci", Stored("https://b.example", "tok-b"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temporary left
    assert load("default") == Stored("https://a.example", "tok-a", "2030-01-01T00:00:00Z")
    assert load("ci") == Stored("https://b.example", "tok-b")
    assert remove("default") is True and remove("default") is False
    assert load("default") is None and load("ci") is not None


def test_flags_and_variables_win_then_the_profile(capsys: pytest.CaptureFixture[str]) -> None:
    save("default", Stored("https://a.example/", "tok-a", "2030-01-01T00:00:00Z"))
    assert resolve("https://x.example", "tok-x") == Target("https://x.example", "tok-x", None)
    assert resolve(None, None) == Target(
        "https://a.example", "tok-a", "default", "2030-01-01T00:00:00Z"
    )
    # The same server given by a flag: the profile's token goes with it.
    assert resolve("https://a.example", None).token == "tok-a"
    assert resolve(None, "tok-x") == Target("https://a.example", "tok-x", None, None)
    # Another server: the stored token is never sent there.
    err = refused(capsys, "https://evil.example", None)
    assert err.startswith("error: no token: run keyops login --url URL [--profile NAME]")
    err = refused(capsys, None, None, "nowhere")
    assert err == (
        "error: no server: run keyops login --url URL [--profile NAME], or give --url and"
        " --token (KEYOPS_URL and KEYOPS_TOKEN)\n"
    )
    with pytest.raises(typer.Exit) as older:
        resolve(None, None, "nowhere", missing_code=2)
    assert older.value.exit_code == 2


def test_a_broken_config_file_is_named(
    config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_home / "keyops" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    err = refused(capsys, None, None)
    assert (
        err == f"error: {path} is not valid JSON: fix or delete it, then run keyops login again\n"
    )


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFound(404, "not_found", "Environment (x) is not found!"), 2),
        (BadRequest(400, "bad_request", "Certificate (name: c) is not found!"), 2),
        (NotFound(404, "not_found", "Project(P) was not found or user does not ..."), 2),
        (BadRequest(400, "bad_request", "Certificate (name: c) is already exist!"), 3),
        (Conflict(409, "conflict", "User (username: u) is already exist!"), 3),
        (ServerError(500, "internal_error", "boom"), 5),
        (ServerError(503, "service_unavailable", "database"), 5),
        (TransportError("ConnectError: refused"), 5),
        (Unauthorized(401, "unauthorized_client", "Bad credentials"), 1),
        (Forbidden(403, "forbidden", "needs the role ROLE_ADMIN"), 1),
        (BadRequest(400, "bad_request", "updateScope value can not be empty!"), 1),
    ],
)
def test_exit_codes(error: KeyopsError, code: int) -> None:
    assert exit_code(error) == code


def test_expiry_cells_say_days_left_in_colour() -> None:
    now = datetime.now(UTC)
    soon = (now + timedelta(days=5, hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    later = (now + timedelta(days=90, hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    past = (now - timedelta(days=3, hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert days_left(soon) == 5 and days_left(later) == 90 and days_left(past) == -4
    cells = [expiry_cell(v) for v in (soon, later, past)]
    assert [c.plain for c in cells] == [
        f"{soon} (5 days left)",
        f"{later} (90 days left)",
        f"{past} (expired 4 days ago)",
    ]
    assert [str(c.style) for c in cells] == ["red", "green", "bold red"]
    assert expiry_cell(None).plain == "-"


def run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYOPS_")}
    env |= {"XDG_CONFIG_HOME": str(home), "COLUMNS": "250", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "keyops", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_unreachable_exits_5_and_usage_errors_exit_1(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    down = run("certs", "list", "-p", "MyProject", "--url", nowhere, "--token", "t", home=tmp_path)
    assert down.returncode == 5 and down.stdout == ""
    assert down.stderr.startswith(f"error: can not reach {nowhere}: ConnectError: ")
    assert down.stderr.count("\n") == 1
    usage = run("certs", "list", "--url", nowhere, "--token", "t", home=tmp_path)
    assert usage.returncode == 1 and "Missing option '--project'" in usage.stderr


def test_login_refuses_a_server_it_can_not_reach(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    down = run("login", "--url", nowhere, "--token", "t", home=tmp_path)
    assert down.returncode == 5
    assert down.stderr.startswith(f"error: can not reach {nowhere}: ConnectError: ")
    assert not (tmp_path / "keyops").exists()
    assert profiles.load("default") is None
