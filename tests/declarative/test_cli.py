"""The CLI of keyops.cli.apply against a real server: apply's plan table and exit codes,
one clear line for a bad file, dump to a file, and the bulk imports (200 certificates
with a progress bar on a terminal, a retry of what failed, keystores)."""

from __future__ import annotations

import os
import pty
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from keyops.cli.apply import import_app
from keyops.client import Client
from keyops.declarative import import_certificates
from tests.cli.terminal import Terminal
from tests.crypto import certs
from tests.declarative.conftest import Setting, material, unique
from tests.support.server import LiveServer, free_port

runner = CliRunner()
app = import_app()
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env={**WIDE, **(env or {})})


def server_args(live: LiveServer, token: str) -> list[str]:
    return ["--url", live.base_url, "--token", token]


def cert_spec(path: Path, s: Setting, envs: list[str], *, cn: str = "cli.example") -> Path:
    pem = certs.make_cert(certs.name(("COMMON_NAME", cn)), certs.new_key("p256")).pem
    (path.parent / "c.pem").write_bytes(pem)
    spec = {
        "projects": {s.project: {"certificates": {"web": {"file": "c.pem", "environments": envs}}}}
    }
    path.write_text(yaml.safe_dump(spec))
    return path


# --- one clear line for a file that can not be used --------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("projects: [unclosed", "invalid YAML at line 1"),
        (
            "projects:\n  P:\n    certificates:\n      c: {pem: x, environments: [e], colour: 1}\n",
            "projects.P.certificates.c.colour: unknown field",
        ),
        (
            "projects:\n  P:\n    keys:\n      k:\n        type: EC\n"
            "        private_key: {env: KEYOPS_TEST_UNSET_VARIABLE}\n        environments: [e]\n",
            "projects.P.keys.k.private_key: environment variable KEYOPS_TEST_UNSET_VARIABLE"
            " is not set",
        ),
        (
            "projects:\n  P:\n    jwks:\n"
            "      j: {from: {certificate: c, environment: e}, alg: RS256}\n",
            "jwks.j: certificate c is not in this project",
        ),
    ],
    ids=["bad-yaml", "unknown-field", "missing-env-var", "unknown-source"],
)
def test_a_bad_file_is_one_clear_line_and_exit_1(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "keyops.yaml"
    path.write_text(text)
    result = run("apply", "-f", str(path), "--url", "http://127.0.0.1:9")
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]


# --- apply: plan table and exit codes -----------------------------------------------------


def test_apply_dry_run_exits_2_while_changes_are_pending(
    live: LiveServer, token: str, setting: Setting, tmp_path: Path
) -> None:
    path = cert_spec(tmp_path / "keyops.yaml", setting, list(setting.envs))
    auth = server_args(live, token)

    dry = run("apply", "-f", str(path), "--dry-run", *auth)
    assert dry.exit_code == 2, dry.output
    assert "create" in dry.stdout and "web" in dry.stdout and "certificate" in dry.stdout
    assert "Plan: 1 to create, 0 to replace, 0 to delete, 0 unchanged." in dry.stdout

    done = run("apply", "-f", str(path), *auth)
    assert done.exit_code == 0, done.output
    assert f"✓ create certificate {setting.project}/web" in done.stdout

    again = run("apply", "-f", str(path), "--dry-run", *auth)
    assert again.exit_code == 0, again.output
    assert "0 to create, 0 to replace, 0 to delete, 1 unchanged" in again.stdout
    assert run("apply", "-f", str(path), *auth).stdout.strip().endswith("Nothing to do.")


def test_apply_exits_4_when_an_environment_fails(
    kc: Client, live: LiveServer, token: str, tmp_path: Path
) -> None:
    project = unique("decl")
    kc.projects.create(project)
    good, bad = unique("env"), unique("env")
    kc.environments.create(good, projects=[project])
    kc.environments.create(bad, projects=[project], target="failing")
    path = cert_spec(tmp_path / "keyops.yaml", Setting(project, (good, bad)), [good, bad])
    result = run("apply", "-f", str(path), *server_args(live, token))
    assert result.exit_code == 4, result.output
    assert f"not deployed to {bad}" in result.stdout
    # The change is kept: the next plan has nothing to do.
    assert run("apply", "-f", str(path), "--dry-run", *server_args(live, token)).exit_code == 0


def test_apply_exits_5_when_the_server_does_not_answer(setting: Setting, tmp_path: Path) -> None:
    path = cert_spec(tmp_path / "keyops.yaml", setting, list(setting.envs))
    url = f"http://127.0.0.1:{free_port()}"
    result = run("apply", "-f", str(path), "--url", url, "--token", "t")
    assert result.exit_code == 5, result.output
    assert "transport_error" in result.stderr


def test_apply_of_an_unknown_project_is_a_usage_error(
    live: LiveServer, token: str, tmp_path: Path
) -> None:
    path = cert_spec(tmp_path / "keyops.yaml", Setting(unique("nope"), ("e",)), ["e"])
    result = run("apply", "-f", str(path), *server_args(live, token))
    assert result.exit_code == 1, result.output
    assert "reading the current state" in result.stderr


def test_dump_writes_the_file_and_its_secrets(
    live: LiveServer, token: str, kc: Client, setting: Setting, tmp_path: Path
) -> None:
    key = material("dumped")
    kc.keys.create(
        setting.project,
        "dumped",
        key_type="EC",
        environments=list(setting.envs),
        private_key=key.issued.key_pem,
    )
    target = tmp_path / "out" / "keyops.yaml"
    target.parent.mkdir()
    result = run("dump", "-o", str(target), "-p", setting.project, *server_args(live, token))
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(target.read_text())
    item = doc["projects"][setting.project]["keys"]["dumped"]
    assert item["private_key"] == {"file": f"secrets/{setting.project}/dumped.key.pem"}
    assert "BEGIN PUBLIC KEY" in item["public_key"]
    assert (
        (target.parent / item["private_key"]["file"])
        .read_bytes()
        .startswith(b"-----BEGIN PRIVATE KEY-----")
    )
    as_env = run("dump", "--secrets", "env", "-p", setting.project, *server_args(live, token))
    assert as_env.exit_code == 0
    assert "PRIVATE KEY-----" not in as_env.stdout
    assert f"KEYOPS_{setting.project.upper().replace('-', '_')}_DUMPED_PRIVATE_KEY" in (
        as_env.stdout
    )


# --- bulk import --------------------------------------------------------------------------


def write_certificates(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    key = certs.new_key("p256")  # one key: making 200 is the slow part, not the point
    for i in range(count):
        issued = certs.make_cert(certs.name(("COMMON_NAME", f"host-{i}.example")), key)
        if i % 2:
            (directory / f"host-{i:03}.der").write_bytes(issued.der)
        else:
            (directory / f"host-{i:03}.pem").write_bytes(issued.pem)
    (directory / "README.txt").write_text("not a certificate file")


def in_terminal(args: list[str]) -> Terminal:
    """The commands of keyops.cli.apply on a pty (they are not in main.py's app yet)."""
    code = "from keyops.cli.apply import import_app; import_app()(prog_name='keyops')"
    pid, fd = pty.fork()
    if pid == 0:
        try:
            argv = [sys.executable, "-c", code, *args]
            os.execve(sys.executable, argv, {**os.environ, "COLUMNS": "120"})  # noqa: S606
        finally:
            os._exit(127)
    return Terminal(pid, fd)


def test_import_of_200_certificates_shows_progress_and_creates_200(
    live: LiveServer, token: str, kc: Client, setting: Setting, tmp_path: Path
) -> None:
    write_certificates(tmp_path / "certs", 200)
    args = ["certs-import", str(tmp_path / "certs"), "--project", setting.project]
    args += ["--env", ",".join(setting.envs), "--prefix", "bulk-", *server_args(live, token)]
    term = in_terminal(args)
    assert term.wait(timeout=120) == 0, term.output
    assert "200/200" in term.output and "━" in term.output  # the bar, drawn on a terminal
    assert "\x1b[" in term.output  # live redraws: the terminal was recognised
    summary = term.output[term.output.rindex("Certificate import") :]
    assert "created" in summary and "200" in summary
    listed = kc.certificates.list(setting.project, name="bulk-").result_list
    assert len(listed) == 200
    assert {c.name for c in listed} == {f"bulk-host-{i:03}" for i in range(200)}

    # Importing again creates nothing: every name is there already.
    again = run(*args)
    assert again.exit_code == 0, again.output
    assert len(kc.certificates.list(setting.project, name="bulk-").result_list) == 200


class Flaky(httpx.BaseTransport):
    """The real server, but the first create of every third name is answered 503."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.failed: set[bytes] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and b"certificateName" in request.read():
            body = request.content
            name = body.split(b'name="certificateName"')[1].split(b"\r\n")[2]
            if int(name.rsplit(b"-", 1)[1]) % 3 == 0 and name not in self.failed:
                self.failed.add(name)
                return httpx.Response(503, json={"error": "unavailable", "error_description": "x"})
        return self.inner.handle_request(request)


def test_import_retries_what_failed(
    live: LiveServer, token: str, kc: Client, setting: Setting, tmp_path: Path
) -> None:
    write_certificates(tmp_path / "certs", 9)
    flaky = Flaky(httpx.HTTPTransport())
    http = httpx.Client(base_url=live.base_url, transport=flaky)
    seen: list[str] = []
    with Client(token=token, http=http) as client:
        result = import_certificates(
            client,
            tmp_path / "certs",
            setting.project,
            setting.envs,
            "r-",
            4,
            on_result=lambda r: seen.append(r.name),
        )
    assert len(flaky.failed) == 3
    assert [r.status for r in result.results] == ["created"] * 9
    assert {r.name for r in result.results if r.attempts == 2} == {
        f"r-host-{i:03}" for i in (0, 3, 6)
    }
    assert sorted(seen) == sorted(r.name for r in result.results)  # each once, when final
    assert len(kc.certificates.list(setting.project, name="r-").result_list) == 9


def test_import_names_by_common_name(kc: Client, setting: Setting, tmp_path: Path) -> None:
    write_certificates(tmp_path / "certs", 3)
    result = import_certificates(
        kc, tmp_path / "certs", setting.project, setting.envs[:1], "cn-", name_from="cn"
    )
    assert [r.name for r in result.results] == [f"cn-host-{i}.example" for i in range(3)]
    assert result.ok


def test_keystores_import_with_a_password(
    live: LiveServer, token: str, kc: Client, setting: Setting, tmp_path: Path
) -> None:
    stores = tmp_path / "stores"
    stores.mkdir()
    one = material("one")
    for name in ("a.p12", "b.pfx"):
        (stores / name).write_bytes(one.p12)
    (stores / "other.p12").write_bytes(material("other").p12)  # another password
    result = run(
        "keystores-import",
        str(stores),
        "-p",
        setting.project,
        "--env",
        setting.envs[0],
        *server_args(live, token),
        env={"KEYOPS_KEYSTORE_PASSWORD": one.password},
    )
    assert result.exit_code == 1, result.output  # one file was refused
    assert "other.p12" in result.stdout and "failed" in result.stdout
    names = {k.name for k in kc.keystores.list(setting.project).result_list}
    assert names == {"a", "b"}
