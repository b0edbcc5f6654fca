"""The lean node: ``python -m keyops.gateway`` (the ``keyops-gateway`` console script)
imports only what the node uses and stays under 45 MB RSS with a 100-certificate
snapshot; it and ``keyops gateway`` read one option table.

Real processes: a ``keyops serve`` manager on SQLite holding 100 certificates and a TLS
identity, and the node as a subprocess (its RSS from ``/proc/<pid>/status``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from keyops.gateway.options import OPTIONS, OptionError, manager_urls
from tests.support.gateway_nodes import (
    ADMIN_PROJECT,
    STORE_PASSWORD,
    TLS_ALIAS,
    TLS_KEYSTORE,
    NodeProcess,
    Pki,
    gateway_cluster,
    issue,
    jwks,
)

RSS_LIMIT_KB = 45 * 1024
# What the node must not import (Typer imports pydantic to run a command; httpx's CLI
# brings rich and click; pyjks is only for JKS keystores).
HEAVY = (
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "typer",
    "click",
    "rich",
    "httpx",
    "anyio",
    "uvicorn",
    "psycopg",
    "keyops.storage",
    "keyops.domain",
    "keyops.api",
    "keyops.cli",
    "keyops.config",
)
DEMO_PROJECT = "MyProject"


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_node_with_100_certificates_stays_under_45_mb_and_imports_nothing_heavy(
    tmp_path: Path,
) -> None:
    with gateway_cluster(f"sqlite:///{tmp_path / 'keyops.db'}", tmp_path, node_names=()) as c:
        pki = Pki.create(tmp_path / "pki")
        c.api.create_keystore(
            ADMIN_PROJECT, TLS_KEYSTORE, c.environment, pki.keystore, STORE_PASSWORD
        )
        c.api.set_tls_identity(c.environment, ADMIN_PROJECT, TLS_KEYSTORE, TLS_ALIAS)
        # 10 trusted client CAs (admin project) and 90 certificates of another project.
        for i in range(100):
            project = ADMIN_PROJECT if i < 10 else DEMO_PROJECT
            pem = issue(f"lean-{i:03d}.example", ca=True).pem
            c.api.create_certificate(project, f"lean-{i:03d}", pem, [c.environment])
        revision = c.api.latest_revision(c.environment)
        artifacts = c.api.nodes(c.environment)
        assert artifacts["latestRevision"] == revision

        node = c.add_node("gw-lean")
        status = node.wait_revision(revision, timeout=30)
        assert status["tlsServing"] is True
        assert len(status["fingerprints"]["truststoreSha256"]) == 10
        answer, _ = jwks(node.listen_port, pki)
        assert answer.server_cert_der == pki.server.der
        time.sleep(1)  # settled: the ack sent, the long poll waiting
        rss = vm_rss_kb(node.pid)
        print(f"\nlean node VmRSS with a 100-certificate snapshot: {rss / 1024:.1f} MB")
        assert rss < RSS_LIMIT_KB, f"{rss} kB"

        # sys.modules of the running node, from the real entry point (keyops.gateway.__main__).
        modules = running_node_modules(c.manager.base_url, c.token, tmp_path, revision)
        assert heavy(modules) == []
        assert "keyops.gateway.node" in modules and "h11" in modules
        # pyjks and RC2 are imported only when a JKS/JCEKS or RC2 PKCS#12 keystore is read.
        assert "jks" not in modules and "Cryptodome.Cipher._raw_arc2" not in modules


def running_node_modules(manager: str, token: str, tmp_path: Path, revision: int) -> set[str]:
    """Run ``keyops.gateway.__main__.main`` in a process that, once the node applied
    ``revision``, writes its ``sys.modules`` and stops itself with SIGTERM."""
    out = tmp_path / "modules.txt"
    status_port = NodeProcess("e", "m", "t", "n", tmp_path).status_port
    script = textwrap.dedent(
        f"""
        import json, os, signal, sys, threading, time, urllib.request

        def watch():
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen("http://127.0.0.1:{status_port}/status") as r:
                        if json.load(r)["appliedRevision"] == {revision}:
                            break
                except OSError:
                    pass
                time.sleep(0.1)
            with open({str(out)!r}, "w") as f:
                f.write("\\n".join(sorted(sys.modules)))
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, daemon=True).start()
        from keyops.gateway.__main__ import main
        sys.exit(main())
        """
    )
    command = [
        sys.executable, "-c", script, "--environment", "edge", "--manager", manager,
        "--listen", "127.0.0.1:0", "--status-listen", f"127.0.0.1:{status_port}",
        "--data-dir", str(tmp_path / "modules-node"), "--name", "gw-modules",
    ]  # fmt: skip
    env = {**os.environ, "KEYOPS_GATEWAY_TOKEN": token, "KEYOPS_LOG_LEVEL": "WARNING"}
    done = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return set(out.read_text().split())


def test_importtime_of_the_entry_point_has_nothing_heavy() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "keyops.gateway", "--help"],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.decode().splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "keyops.gateway.node" in imported
    assert heavy(imported) == []
    assert "jks.jks" not in imported and "Cryptodome.Cipher._raw_arc2" not in imported


def help_text(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", *args, "--help"], capture_output=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr.decode()
    return re.sub(r"\s+", " ", done.stdout.decode())


def test_both_entry_points_offer_the_options_of_the_one_table() -> None:
    lean, cli = help_text("keyops.gateway"), help_text("keyops", "gateway")
    for option in OPTIONS:
        assert option.flag in lean and option.flag in cli, option.flag
        # The same help text in both (the first words; Rich and argparse wrap differently).
        words = " ".join(option.help.split()[:6])
        assert words in lean and words in cli, (option.flag, words)
    assert "KEYOPS_GATEWAY_TOKEN" in lean and "KEYOPS_GATEWAY_TOKEN" in cli
    assert "--help" in lean and "--help" in cli
    flags = set(re.findall(r"--[a-z][a-z-]+", lean)) - {"--help"}
    assert flags == {o.flag for o in OPTIONS} | {"--driver"}


def run_lean(*args: str, credential: str | None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "KEYOPS_GATEWAY_TOKEN"}
    if credential is not None:
        env["KEYOPS_GATEWAY_TOKEN"] = credential
    return subprocess.run(
        [sys.executable, "-m", "keyops.gateway", *args], capture_output=True, timeout=60, env=env
    )


@pytest.mark.parametrize(
    ("args", "token", "message"),
    [
        (["--manager", "http://m"], "t", "the option --environment is required"),
        (["--environment", "e"], "t", "the option --manager is required"),
        (["--environment", "e", "--manager", "http://m"], None, "the option --token is required"),
        (
            ["--environment", "e", "--manager", "http://m"],
            " ",
            "--token: the node credential is empty",
        ),
        (
            ["--environment", "e", "--manager", "ftp://m"],
            "t",
            "--manager: expected an http:// or https:// URL, got 'ftp://m'",
        ),
        (["--environment", "e", "--manager", "http://a,,http://b"], "t", "--manager: an empty URL"),
        (
            ["--environment", "e", "--manager", "http://m", "--listen", "nope"],
            "t",
            "--listen: expected HOST:PORT, got 'nope'",
        ),
        (
            ["--environment", "e", "--manager", "http://m", "--driver", "apache"],
            "t",
            "--driver: expected one of files, haproxy, nginx",
        ),
        (
            ["--environment", "e", "--manager", "http://m", "--command-timeout", "x"],
            "t",
            "argument --command-timeout: invalid float value: 'x'",
        ),
    ],
)
def test_lean_entry_point_refuses_bad_options(
    args: list[str], token: str | None, message: str
) -> None:
    done = run_lean(*args, credential=token)
    assert done.returncode == 2, done
    assert message in done.stderr.decode(), done.stderr.decode()
    assert done.stderr.decode().startswith("usage: keyops-gateway")


def test_typer_command_refuses_the_same_bad_manager() -> None:
    env = {**os.environ, "KEYOPS_GATEWAY_TOKEN": "t", "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "keyops", "gateway", "--environment", "e", "--manager", "ftp://m"],
        capture_output=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    err = re.sub(r"[\s│╭╮╰╯─]+", " ", done.stderr.decode())
    assert "--manager" in err and "expected an http:// or https:// URL, got 'ftp://m'" in err


def test_manager_urls_split_comma_lists_keep_order_and_drop_duplicates() -> None:
    assert manager_urls(["http://a/", "https://b:8443, http://c", "http://a"]) == (
        "http://a",
        "https://b:8443",
        "http://c",
    )
    assert manager_urls("http://a") == ("http://a",)
    for bad, reason in [
        ([], "at least one manager URL is required"),
        (["http://a,"], "an empty URL in 'http://a,'"),
        (["a.example:8000"], "expected an http:// or https:// URL, got 'a.example:8000'"),
    ]:
        with pytest.raises(OptionError) as caught:
            manager_urls(bad)
        assert caught.value.option == "--manager"
        assert caught.value.message == reason
