"""The admin commands are safe to run by hand (issue 15): they never create a database,
ask before destroying, never need a password on the command line, say what they did to
a TLS identity, and a 403 names the role that was missing.

Every command runs as a real process; those that prompt run on a pseudo-terminal.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, pool, text

from tests.cli.admin_cli import Cli, rows
from tests.conftest import Factory, bearer
from tests.support.databases import database, postgres_database
from tests.support.keystores import keystores
from tests.support.server import LiveServer, live_server, password_token

DENIED = "You do not have permission to perform this action"
NEVER_CREATES = (
    ": set KEYOPS_DATA_DIR to the data directory of your keyops serve, or"
    " KEYOPS_DATABASE_URL to its database; this command never creates one (keyops serve"
    " does, on its first run)"
)
# One of each admin command family, the destructive ones with --yes so that only the
# missing database can stop them.
ADMIN_COMMANDS = [
    ("project", "add-member", "payments", "admin"),
    ("project", "delete", "payments", "--yes"),
    ("user", "list"),
    ("user", "create", "newbie", "--password", "long-enough-1"),
    ("user", "delete", "newbie", "--yes"),
    ("env", "list"),
    ("env", "set-tls", "production", "--clear", "--yes"),
    ("token", "list"),
    ("token", "revoke", "1", "--yes"),
    ("rotate-master-key",),
]


def refused_in_one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert (result.returncode, result.stdout) == (2, ""), (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def run_in(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyops", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def pg_tables(url: str) -> list[str]:
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return [name for (name,) in found]


# --- 1. never a new database -----------------------------------------------------------


def test_admin_commands_never_create_a_database_in_the_wrong_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The default data directory, ./keyops-data, relative to where the command runs.
    env = {k: v for k, v in Cli("", tmp_path).env().items() if not k.startswith("KEYOPS_")}
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda args: run_in(elsewhere, env, *args), ADMIN_COMMANDS))
    data = elsewhere / "keyops-data"
    for args, result in zip(ADMIN_COMMANDS, results, strict=True):
        assert refused_in_one_line(result) == (
            f"keyops: no keyops database in the data directory {data} ({data / 'keyops.db'};"
            " KEYOPS_DATA_DIR, default ./keyops-data, is relative to the current directory)"
            + NEVER_CREATES
        ), args
    assert list(elsewhere.iterdir()) == []


def test_admin_commands_never_create_a_sqlite_file_or_schema(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "keyops.db"
    cli = Cli(f"sqlite:///{missing}", tmp_path / "data")
    line = refused_in_one_line(cli.run("user", "list"))
    assert line == (
        f"keyops: no keyops database at sqlite:///{missing} ({missing}; KEYOPS_DATABASE_URL)"
        + NEVER_CREATES
    )
    assert not missing.parent.exists() and not cli.data_dir.exists()

    # An empty file (a typo'd `touch`, a half-copied backup) is not a keyops database either.
    empty = tmp_path / "empty.db"
    empty.touch()
    cli = Cli(f"sqlite:///{empty}", tmp_path / "data")
    for args in (("env", "list"), ("rotate-master-key",)):
        assert refused_in_one_line(cli.run(*args)) == (
            f"keyops: no keyops tables in the database at sqlite:///{empty} ({empty};"
            " KEYOPS_DATABASE_URL)" + NEVER_CREATES
        )
    assert empty.stat().st_size == 0
    assert not cli.data_dir.exists()


def test_admin_commands_never_create_a_postgresql_schema(tmp_path: Path) -> None:
    with postgres_database() as url:
        # A password in the URL is never repeated (the test server trusts local users).
        with_password = url.replace("postgres@", "postgres:not-for-your-eyes@", 1)
        cli = Cli(with_password, tmp_path / "data")
        shown = url.replace("postgresql+psycopg://postgres@", "postgresql://postgres:***@", 1)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda args: cli.run(*args), ADMIN_COMMANDS))
        for args, result in zip(ADMIN_COMMANDS, results, strict=True):
            assert refused_in_one_line(result) == (
                f"keyops: no keyops tables in the database at {shown} (KEYOPS_DATABASE_URL)"
                + NEVER_CREATES
            ), args
            assert "not-for-your-eyes" not in result.stderr
        assert pg_tables(url) == []
        assert not cli.data_dir.exists()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(str(request.param), tmp_path) as url:
        yield url


def test_serve_says_where_its_data_is_then_admin_commands_find_it(
    fresh_database: str, tmp_path: Path
) -> None:
    database_url = fresh_database
    data = tmp_path / "data"
    if database_url.startswith("sqlite"):
        served, shown = database_url, database_url
    else:
        served = database_url.replace("postgres@", "postgres:not-for-your-eyes@", 1)
        shown = database_url.replace(
            "postgresql+psycopg://postgres@", "postgresql://postgres:***@", 1
        )
    # serve still creates the database (and bootstraps it) on its first run ...
    with live_server(served, data, admin_password="where-admin-pw", demo=False) as server:
        log = server.log()
        assert f"keyops: data directory {data.resolve()}, database {shown}\n" in log
        assert "not-for-your-eyes" not in log
        # ... after which the admin commands use it, while it runs.
        cli = Cli(served, data)
        assert [r[0] for r in rows(cli.ok("user", "list"))] == ["admin"]


def test_version() -> None:
    result = Cli("", Path()).run("--version")
    assert (result.returncode, result.stdout) == (0, f"keyops {version('keyops')}\n")


# --- 3. passwords and confirmations -------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "data").init()


def test_passwords_are_prompted_hidden_and_twice(cli: Cli, tmp_path: Path) -> None:
    term = cli.terminal("user", "create", "pat", "--role", "ROLE_API_SECURITY")
    term.expect("Password: ")
    term.answer("typed-once-1")
    term.expect("Repeat for confirmation: ")
    term.answer("typed-differently-1")
    term.expect("do not match")  # asked again
    term.expect("Password: ")
    term.answer("pat-password-1")
    term.expect("Repeat for confirmation: ")
    term.answer("pat-password-1")
    assert term.wait() == 0, term.output
    assert "created user pat" in term.output
    for secret in ("typed-once-1", "typed-differently-1", "pat-password-1"):
        assert secret not in term.output  # never echoed

    # From a pipe, e.g. a secret store: one line, its newline not part of the password.
    piped = subprocess.run(
        [sys.executable, "-m", "keyops", "user", "create", "quinn", "--password-stdin"],
        env=cli.env(),
        input="quinn-password-1\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (piped.returncode, piped.stdout) == (0, "created user quinn\n"), piped.stderr

    term = cli.terminal("user", "set-password", "pat")
    term.expect("Password: ")
    term.answer("pat-password-2")
    term.expect("Repeat for confirmation: ")
    term.answer("pat-password-2")
    assert term.wait() == 0, term.output
    assert "password of pat changed" in term.output and "pat-password-2" not in term.output

    # Too short at the prompt: the usual one line, nothing changed.
    term = cli.terminal("user", "create", "rudy")
    term.expect("Password: ")
    term.answer("short")
    term.expect("Repeat for confirmation: ")
    term.answer("short")
    assert term.wait() == 1
    assert "error: password must be at least 8 characters!" in term.output

    refusals = {
        ("user", "create", "sam", "--password-stdin"): (
            1,
            "error: --password-stdin read no password: pipe it in, e.g. from your secret store\n",
        ),
        ("user", "set-password", "pat"): (
            1,
            "error: no password: type it at the prompt on a terminal, or pipe it in with"
            " --password-stdin\n",
        ),
    }
    for args, (status, stderr) in refusals.items():
        result = cli.run(*args)  # stdin is /dev/null: no terminal, nothing piped
        assert (result.returncode, result.stdout, result.stderr) == (status, "", stderr)
    both = cli.run("user", "create", "sam", "--password-stdin", "--password", "sam-password-1")
    assert both.returncode == 2 and "--password-stdin contradicts --password" in both.stderr
    assert [r[0] for r in rows(cli.ok("user", "list"))] == ["pat", "quinn"]

    # The passwords really are the ones typed and piped.
    with live_server(cli.database_url, tmp_path / "serve", admin_password="pw-admin-1") as server:
        password_token(server.base_url, "pat", "pat-password-2")
        password_token(server.base_url, "quinn", "quinn-password-1")
        r = httpx.post(
            f"{server.base_url}/apiops/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "pat",
                "client_secret": "pat-password-1",
            },
            timeout=30,
        )
        assert r.status_code == 401, r.text


def destructive(cli: Cli) -> dict[str, tuple[tuple[str, ...], str, str]]:
    """Each destructive command: its arguments, what it asks, and what it says it needs."""
    cli.ok("user", "create", "ulla", "--password", "ulla-password")
    cli.ok("project", "create", "doomed-project")
    cli.ok("env", "create", "doomed-env")
    cli.ok("token", "create", "--user", "ulla", "--name", "ci")
    token_id = rows(cli.ok("token", "list"))[0][0]
    return {
        "user": (
            ("user", "delete", "ulla"),
            "Delete user ulla and their 1 token(s)? [y/N]: ",
            "deleting user ulla",
        ),
        "project": (
            ("project", "delete", "doomed-project"),
            "Delete project doomed-project and everything in it (certificates, keys,"
            " keystores, JWKs, webhooks)? [y/N]: ",
            "deleting project doomed-project",
        ),
        "env": (
            ("env", "delete", "doomed-env"),
            "Delete environment doomed-env? Its copies of every certificate, key, keystore and"
            " JWK go with it, and its gateway nodes' credentials stop working. [y/N]: ",
            "deleting environment doomed-env",
        ),
        "token": (
            ("token", "revoke", token_id),
            f"Revoke token {token_id} (ci, of ulla)? Whatever uses it is refused from now on."
            " [y/N]: ",
            f"revoking token {token_id}",
        ),
    }


def inventory(cli: Cli) -> dict[str, list[list[str]]]:
    users, projects, envs, tokens = cli.many(
        ("user", "list"), ("project", "list"), ("env", "list"), ("token", "list")
    )
    return {
        "users": rows(users),
        "projects": rows(projects),
        "envs": rows(envs),
        "tokens": rows(tokens),
    }


def test_destructive_commands_ask_first(cli: Cli) -> None:
    commands = destructive(cli)
    before = inventory(cli)

    # No terminal to ask and no --yes: refused, nothing changed.
    for args, _question, needs in commands.values():
        result = cli.run(*args)
        assert (result.returncode, result.stdout) == (1, ""), result.stderr
        assert result.stderr == (
            f"error: {needs} needs confirmation: answer on a terminal, or pass --yes\n"
        )
    # Asked, and answered no (or just return): nothing changed.
    for answer in ("n", ""):
        for args, question, _needs in commands.values():
            term = cli.terminal(*args)
            term.expect(question)
            term.answer(answer)
            assert term.wait() == 1, term.output
            assert "error: not confirmed: nothing was changed" in term.output
    assert inventory(cli) == before

    # Answered yes: done. The token first, while its user exists.
    for kind in ("token", "user", "project", "env"):
        args, question, _needs = commands[kind]
        term = cli.terminal(*args)
        term.expect(question)
        term.answer("y")
        assert term.wait() == 0, term.output
    after = inventory(cli)
    assert after["users"] == [] and after["projects"] == [] and after["envs"] == []
    assert after["tokens"] == []  # deleted with its user, after being revoked


def test_a_login_token_is_revoked_only_once_confirmed(cli: Cli, tmp_path: Path) -> None:
    """A token issued by /auth/token is not in ``token list`` but is revoked by its id (the
    audit's LOGIN entry names it): asked about like a personal one, never revoked unasked."""
    cli.ok("user", "create", "lena", "--password", "lena-password-1")
    with live_server(cli.database_url, tmp_path / "serve", admin_password="pw-admin-1") as server:
        token = password_token(server.base_url, "lena", "lena-password-1")
        engine = create_engine(cli.database_url, poolclass=pool.NullPool)
        try:
            with engine.connect() as conn:
                token_id = str(
                    conn.execute(
                        text(
                            "SELECT MAX(t.id) FROM access_tokens t JOIN users u ON"
                            " u.id = t.user_id WHERE u.username = 'lena'"
                        )
                    ).scalar_one()
                )
        finally:
            engine.dispose()
        result = cli.run("token", "revoke", token_id)
        assert (result.returncode, result.stderr) == (
            1,
            f"error: revoking token {token_id} needs confirmation: answer on a terminal,"
            " or pass --yes\n",
        )
        me = f"{server.base_url}/apiops/projects/"
        assert httpx.get(me, headers=bearer(token), timeout=30).status_code == 200
        term = cli.terminal("token", "revoke", token_id)
        term.expect(f"Revoke token {token_id} (")
        term.expect(", of lena)? Whatever uses it is refused from now on. [y/N]: ")
        term.answer("y")
        assert term.wait() == 0, term.output
        assert httpx.get(me, headers=bearer(token), timeout=30).status_code == 401


def test_yes_skips_the_question_and_unknown_names_are_not_asked_about(cli: Cli) -> None:
    commands = destructive(cli)
    for kind in ("token", "user", "project", "env"):
        args, _question, _needs = commands[kind]
        assert cli.ok(*args, "--yes").startswith(("revoked", "deleted"))
    assert inventory(cli) == {"users": [], "projects": [], "envs": [], "tokens": []}
    # Nothing there to confirm: the command's own error, not a question.
    for args, message in {
        ("user", "delete", "ulla"): "User (username: ulla) is not found!",
        ("project", "delete", "doomed-project"): "Project (doomed-project) is not found!",
        ("env", "delete", "doomed-env"): "Environment (doomed-env) is not found!",
        ("token", "revoke", "7"): "Token (id: 7) is not found!",
    }.items():
        assert cli.fails(*args) == f"error: {message}\n"


def test_set_roles_needs_a_role_or_none(cli: Cli) -> None:
    cli.ok("user", "create", "vic", "--password", "vic-password", "--role", "ROLE_API_SECURITY")
    for args, message in {
        ("user", "set-roles", "vic"): "no --role given: name every role the user keeps",
        ("user", "set-roles", "vic", "--none", "--role", "ROLE_ADMIN"): "--none contradicts",
    }.items():
        result = cli.run(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert message in " ".join(result.stderr.split()), result.stderr
    assert rows(cli.ok("user", "list")) == [["vic", "ROLE_API_SECURITY", "yes"]]
    assert cli.ok("user", "set-roles", "vic", "--none") == "roles of vic: (none)\n"
    assert rows(cli.ok("user", "list")) == [["vic", "", "yes"]]


# --- 2. the TLS identity -------------------------------------------------------------------


def admin_call(server: LiveServer, token: str, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, server.base_url + path, headers=bearer(token), timeout=30, **kw)
    assert r.status_code == 200, (method, path, r.text)
    return r.json()


def test_set_tls_says_what_it_did_and_refuses_what_it_can_not_do(
    fresh_database: str, tmp_path: Path
) -> None:
    database_url = fresh_database
    store = keystores().jks_a  # private key "signer", trusted certificate "trusted-ca"
    data = tmp_path / "data"
    with live_server(database_url, data, admin_password="tls-admin-pw") as server:
        token = password_token(server.base_url, "admin", "tls-admin-pw")
        admin_call(
            server,
            token,
            "POST",
            "/apiops/projects/admin/keystores/",
            json={
                "name": "gw-tls",
                "keyStoreEnvironmentList": [
                    {
                        "environmentName": "production",
                        "type": "JKS",
                        "file": base64.b64encode(store.data).decode(),
                        "password": store.password,
                    }
                ],
            },
        )
        cli = Cli(database_url, data)

        def identity(env: str = "production") -> Any:
            path = f"/apiops/admin/environments/{env}/"
            return admin_call(server, token, "GET", path)["result"]["tlsIdentity"]

        def tls_column() -> dict[str, str]:
            return {r[0]: r[5] for r in rows(cli.ok("env", "list"))}

        choose = ("env", "set-tls", "production", "--project", "admin", "--keystore", "gw-tls")
        for alias in ("trusted-ca", "nope"):
            assert cli.fails(*choose, "--alias", alias) == (
                f"error: --alias ({alias}) is not a private key entry of keystore (name: gw-tls)"
                " in environment (production)! Give --alias one of: signer\n"
            )
        assert cli.fails(*choose[:-2], "--keystore", "ghost", "--alias", "signer") == (
            "error: Keystore (name: ghost) is not found!\n"
        )
        assert identity() is None

        # The alias as Java matches it (case-insensitively), stored as the keystore has it.
        assert cli.ok(*choose, "--alias", "SIGNER") == (
            "TLS identity of production set to project admin, keystore gw-tls, alias signer;"
            " its gateway nodes pick it up on their next sync\n"
        )
        chosen = {"projectName": "admin", "keyStoreName": "gw-tls", "aliasName": "signer"}
        assert identity() == chosen
        assert identity("staging") is None
        assert tls_column() == {
            "development": "",
            "production": "admin/gw-tls/signer",
            "staging": "",
        }

        # Contradictory or incomplete flags: refused before anything is looked at.
        for args, message in {
            ("--clear", "--project", "x"): "--clear contradicts --project: give --clear alone",
            ("--clear", "--keystore", "k", "--alias", "a"): "--clear contradicts --keystore,"
            " --alias",
            ("--project", "admin"): "--keystore and --alias missing: choosing a TLS identity"
            " takes --project, --keystore and --alias (or --clear alone to serve none)",
            ("--project", "admin", "--keystore", "gw-tls", "--alias", ""): "--alias missing",
        }.items():
            result = cli.run("env", "set-tls", "production", *args)
            assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
            assert message in " ".join(result.stderr.replace("│", " ").split()), result.stderr
        assert identity() == chosen

        # Clearing asks first: no terminal and no --yes is refused; "no" changes nothing.
        clear = ("env", "set-tls", "production", "--clear")
        assert cli.fails(*clear) == (
            "error: clearing the TLS identity of production needs confirmation: answer on a"
            " terminal, or pass --yes\n"
        )
        term = cli.terminal(*clear)
        term.expect(
            "Clear the TLS identity of production (project admin, keystore gw-tls, alias"
            " signer)? Its gateway nodes stop serving TLS. [y/N]: "
        )
        term.answer("n")
        assert term.wait() == 1 and "not confirmed: nothing was changed" in term.output
        assert identity() == chosen

        term = cli.terminal(*clear)
        term.expect("[y/N]: ")
        term.answer("y")
        assert term.wait() == 0, term.output
        assert (
            "TLS identity of production cleared (it was project admin, keystore gw-tls, alias"
            " signer); its gateway nodes stop serving TLS on their next sync"
        ) in term.output
        assert identity() is None
        assert tls_column()["production"] == ""

        # Nothing to clear: said so, and nothing asked.
        assert cli.ok(*clear) == "production had no TLS identity; it still serves none\n"
        cli.ok(*choose, "--alias", "signer")
        assert cli.ok(*clear, "--yes").startswith("TLS identity of production cleared")
        assert identity() is None


# --- 4. a 403 names the missing role --------------------------------------------------------


async def test_a_403_names_the_missing_roles(
    client: httpx.AsyncClient, factory: Factory, admin_token: str
) -> None:
    project = await factory.project()
    nobody = await factory.user(projects=(project,))
    proxies = await factory.user("ROLE_MANAGE_PROXIES", projects=(project,))
    reader = await factory.user("ROLE_API_SECURITY", projects=(project,))
    deployer = await factory.user("ROLE_DEPLOY_UNDEPLOY_PROXIES", projects=(project,))
    everything_but_admin = await factory.user(
        "ROLE_API_SECURITY",
        "ROLE_DEPLOY_UNDEPLOY_PROXIES",
        "ROLE_MANAGE_PROXIES",
        projects=(project,),
    )
    certificates = f"/apiops/projects/{project}/certificates/"
    a_key = f"/apiops/projects/{project}/keys/no-such-key/"
    tls = "/apiops/admin/environments/production/tls-identity/"
    cases = [
        (nobody, "GET", certificates, "the role ROLE_API_SECURITY"),
        (proxies, "GET", certificates, "the role ROLE_API_SECURITY"),
        (deployer, "GET", certificates, "the role ROLE_API_SECURITY"),
        (nobody, "DELETE", a_key, "the roles ROLE_API_SECURITY and ROLE_DEPLOY_UNDEPLOY_PROXIES"),
        (reader, "DELETE", a_key, "the role ROLE_DEPLOY_UNDEPLOY_PROXIES"),
        (deployer, "DELETE", a_key, "the role ROLE_API_SECURITY"),
        (everything_but_admin, "GET", "/apiops/admin/users/", "the role ROLE_ADMIN"),
        # ROLE_ADMIN holds every other role: naming it alone is enough.
        (nobody, "PUT", tls, "the role ROLE_ADMIN"),
        (reader, "PUT", tls, "the role ROLE_ADMIN"),
    ]
    for actor, method, path, needs in cases:
        r = await client.request(method, path, json={}, headers=actor.headers)
        assert r.status_code == 403, (actor.username, method, path, r.text)
        expected = f"{DENIED}: it needs {needs}"
        assert r.json() == {"error": "forbidden", "error_description": expected}
    # The roles are enough once held: the key is simply not there; an admin lists.
    r = await client.delete(a_key, headers=everything_but_admin.headers)
    assert r.status_code == 400, r.text
    r = await client.get(certificates, headers=bearer(admin_token))
    assert r.status_code == 200, r.text
