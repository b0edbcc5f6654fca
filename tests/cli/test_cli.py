"""The real ``keyops`` command against a real database, then a real server on it."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.cli.admin_cli import Cli, rows
from tests.support.databases import postgres_database
from tests.support.server import live_server

TOKEN_LINE = re.compile(r"^kops_[A-Za-z0-9_-]{43}\n$")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "data").init()


def test_cli_setup_then_serve(cli: Cli) -> None:
    # Independent commands run side by side.
    assert cli.ok(
        "user", "create", "alice", "--password", "alice-password", "--role", "ROLE_API_SECURITY"
    ) == ("created user alice\n")
    cli.many(
        ("user", "create", "bob", "--password", "bob-password-1"),
        ("project", "create", "payments", "--description", "Payments team", "--member", "alice"),
        ("project", "create", "billing"),
        ("env", "create", "sandbox"),
    )
    added, _, *issued = cli.many(
        ("project", "add-member", "billing", "bob"),
        (
            "env",
            "create",
            "prod-eu",
            "--type",
            "PRODUCTION",
            "--access-url",
            "https://eu.example.com",
            "--description",
            "EU gateways",
            "--project",
            "payments",
        ),
        ("token", "create", "--user", "alice", "--name", "ci-pipeline"),
        ("token", "create", "--user", "alice", "--name", "doomed"),
        ("token", "create", "--user", "bob", "--name", "dated", "--expires", "2999-12-31"),
    )
    assert added == "bob is a member of billing\n"
    # stdout is exactly the token line, so TOKEN=$(keyops token create ...) works.
    for out in issued:
        assert TOKEN_LINE.match(out), out
    kept, doomed, dated = (out.strip() for out in issued)

    user_table, project_table, env_table, listing, bob_listing = cli.many(
        ("user", "list"),
        ("project", "list"),
        ("env", "list"),
        ("token", "list"),
        ("token", "list", "--user", "bob"),
    )
    users = {r[0]: r for r in rows(user_table)}
    assert users["alice"] == ["alice", "ROLE_API_SECURITY", "yes"]
    assert users["bob"] == ["bob", "", "yes"]
    projects = {r[0]: r for r in rows(project_table)}
    assert projects["payments"] == ["payments", "Payments team", "alice"]
    assert projects["billing"] == ["billing", "", "bob"]
    envs = {r[0]: r for r in rows(env_table)}
    assert envs["prod-eu"] == [
        "prod-eu",
        "PRODUCTION",
        "PUBLISHED",
        "local",
        "https://eu.example.com",
        "",
        "EU gateways",
    ]
    assert envs["sandbox"][:4] == ["sandbox", "TEST", "PUBLISHED", "local"]

    # The token list never shows a token, not even past the shown prefix.
    for token in (kept, doomed, dated):
        assert token not in listing
        assert token[11:] not in listing
    tokens = {r[2]: r for r in rows(listing)}
    assert set(tokens) == {"ci-pipeline", "doomed", "dated"}
    assert tokens["ci-pipeline"][1] == "alice"
    assert tokens["ci-pipeline"][3] == kept[:11] + "…"
    assert tokens["ci-pipeline"][5:] == ["never", "active"]
    assert tokens["dated"][5] == "3000-01-01 00:00"
    assert [r[2] for r in rows(bob_listing)] == ["dated"]

    doomed_id = tokens["doomed"][0]
    assert cli.ok("token", "revoke", doomed_id, "--yes") == f"revoked token {doomed_id}\n"
    after = {r[2]: r for r in rows(cli.ok("token", "list", "--user", "alice"))}
    assert after["doomed"][6] == "revoked"
    assert after["ci-pipeline"][6] == "active"

    # A real server on the same database honours what the CLI made.
    with live_server(
        cli.database_url, cli.data_dir / "serve", admin_password="cli-admin-pw-1", demo=False
    ) as server:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            r = http.get("/apiops/projects/", headers={"Authorization": f"Bearer {kept}"})
            assert r.status_code == 200, r.text
            assert r.json() == {
                "status": "SUCCESS",
                "resultList": [{"name": "payments", "description": "Payments team"}],
                "resultCount": 1,
            }
            r = http.get(
                "/apiops/environments/payments", headers={"Authorization": f"Bearer {kept}"}
            )
            assert r.status_code == 200, r.text
            assert {e["name"] for e in r.json()["resultList"]} == {"prod-eu", "sandbox"}

            r = http.get("/apiops/projects/", headers={"Authorization": f"Bearer {doomed}"})
            assert r.status_code == 401
            assert r.json() == {
                "error": "unauthorized_client",
                "error_description": "Invalid token",
            }

            r = http.get("/apiops/projects/", headers={"Authorization": f"Bearer {dated}"})
            assert [p["name"] for p in r.json()["resultList"]] == ["billing"]

            # A password set by the CLI logs in over the API.
            r = http.post(
                "/apiops/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "bob",
                    "client_secret": "bob-password-1",
                },
            )
            assert r.status_code == 200, r.text

        # Revoking while the server runs takes effect at once.
        alice_id = tokens["ci-pipeline"][0]
        cli.ok("token", "revoke", alice_id, "--yes")
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            r = http.get("/apiops/projects/", headers={"Authorization": f"Bearer {kept}"})
            assert r.status_code == 401


def test_cli_refusals(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "data").init()
    cli.ok("user", "create", "carol", "--password", "carol-password")

    refusals = {
        ("user", "create", "carol", "--password", "other-pass-1"): "already exist",
        ("user", "create", "dave", "--password", "short"): "at least 8 characters",
        (
            "user",
            "create",
            "erin",
            "--password",
            "erin-password",
            "--role",
            "ROLE_NOPE",
        ): "Unknown role(s): ROLE_NOPE",
        ("project", "create", "p1", "--member", "ghost-user"): "not found",
        ("project", "delete", "admin", "--yes"): "admin project can not be deleted",
        ("env", "create", "e1", "--type", "KUBERNETES"): "type (KUBERNETES) is not valid",
        ("token", "create", "--user", "ghost-user", "--name", "x"): "not found",
        (
            "token",
            "create",
            "--user",
            "carol",
            "--name",
            "x",
            "--expires",
            "2000-01-01",
        ): "must be in the future",
        ("token", "revoke", "4242"): "Token (id: 4242) is not found!",
        ("token", "revoke", "99999999999", "--yes"): "Token (id: 99999999999) is not found!",
    }
    with ThreadPoolExecutor(4) as pool:
        errors = dict(zip(refusals, pool.map(lambda a: cli.fails(*a), refusals), strict=True))
    for args, expected in refusals.items():
        assert expected in errors[args], (args, errors[args])

    # Nothing half-made by the refusals.
    users, projects, envs, tokens = cli.many(
        ("user", "list"), ("project", "list"), ("env", "list"), ("token", "list")
    )
    assert [r[0] for r in rows(users)] == ["carol"]
    assert rows(projects) == rows(envs) == rows(tokens) == []


def test_cli_user_create_needs_a_password_when_not_interactive(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "data").init()
    result = cli.run("user", "create", "frank")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "error: no password: type it at the prompt on a terminal, or pipe it in with"
        " --password-stdin\n"
    )
    assert rows(cli.ok("user", "list")) == []


def test_cli_on_postgresql_then_serve(tmp_path: Path) -> None:
    with postgres_database() as url:
        cli = Cli(url, tmp_path / "data").init()
        cli.ok("user", "create", "gina", "--password", "gina-password")
        cli.ok("project", "create", "pg-project", "--member", "gina")
        kept, doomed = (
            out.strip()
            for out in cli.many(
                ("token", "create", "--user", "gina", "--name", "kept"),
                ("token", "create", "--user", "gina", "--name", "doomed"),
            )
        )
        listing = cli.ok("token", "list", "--user", "gina")
        assert kept not in listing and doomed not in listing
        ids = {r[2]: r[0] for r in rows(listing)}
        cli.ok("token", "revoke", ids["doomed"], "--yes")

        with (
            live_server(url, tmp_path / "serve", admin_password="pg-admin-pw-1") as server,
            httpx.Client(base_url=server.base_url, timeout=10) as http,
        ):
            r = http.get("/apiops/projects/", headers={"Authorization": f"Bearer {kept}"})
            assert r.status_code == 200, r.text
            assert [p["name"] for p in r.json()["resultList"]] == ["pg-project"]
            r = http.get("/apiops/projects/", headers={"Authorization": f"Bearer {doomed}"})
            assert r.status_code == 401
            assert r.json() == {
                "error": "unauthorized_client",
                "error_description": "Invalid token",
            }


def test_cli_short_password_is_one_line_on_a_narrow_console(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "data").init()
    cli.ok("user", "create", "gina", "--password", "gina-password")
    for args in (
        ("user", "create", "hank", "--password", "short"),
        ("user", "set-password", "gina", "--password", "short"),
    ):
        env = {**cli.env(), "COLUMNS": "30"}
        result = subprocess.run(
            [sys.executable, "-m", "keyops", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert (result.returncode, result.stdout) == (1, ""), result.stderr
        assert result.stderr == "error: password must be at least 8 characters!\n"


def test_cli_refuses_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    cli = Cli("postgresql://postgres@127.0.0.1:1/x", tmp_path / "data")
    result = cli.run("user", "list")
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.startswith(
        "keyops: can not reach the database postgresql://postgres@127.0.0.1:1/x ("
    )
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_cli_node_token_never_replaces_a_missing_key_file(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "data").init()
    env = {**cli.env(), "KEYOPS_MASTER_KEY": ""}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "keyops", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    cli.ok("env", "create", "production")
    assert run("env", "node-token", "production").returncode == 0
    key_file = cli.data_dir / "master.key"
    key_file.unlink()
    result = run("env", "node-token", "production")
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.startswith("keyops: no master key: this database's secrets are sealed")
    assert not key_file.exists()
