"""``keyops gateway``'s HAProxy options through the real ``python -m keyops.gateway`` process.

``--haproxy-crt-list`` reaches the driver (the node's /status says so); a runtime API
address or crt-list path the driver can not use is a usage error (exit 2) naming the
option, not a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.gateway_nodes import NodeProcess
from tests.support.server import free_port

ADDRESS_FORMS = "expected PATH, unix@PATH, ipv4@HOST:PORT or ipv6@[HOST]:PORT"


# Both entry points of the node: the lean one (argparse) and the CLI's (Typer).
ENTRY_POINTS = {
    "keyops-gateway": [sys.executable, "-m", "keyops.gateway"],
    "keyops gateway": [sys.executable, "-c", "from keyops.cli.main import app; app()", "gateway"],
}


@pytest.fixture(params=sorted(ENTRY_POINTS))
def entry_point(request: pytest.FixtureRequest) -> list[str]:
    return ENTRY_POINTS[request.param]


def gateway_cli(entry: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """The node's command line with a manager nobody listens on; it must stop at the options."""
    command = [*entry, "--environment", "e", "--token", "t"]
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [*command, "--manager", f"http://127.0.0.1:{free_port()}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )


def usage_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error's text (exit status 2 asserted): argparse's ``prog: error:`` line, or
    Typer's error panel with its lines joined."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line.strip() for line in result.stderr.splitlines()]
    argparse_prefix = "keyops-gateway: error: "
    plain = [
        line.removeprefix(argparse_prefix) for line in lines if line.startswith(argparse_prefix)
    ]
    if plain:
        return " ".join(plain)
    panel = [line.strip("│").strip() for line in lines if line.startswith("│")]
    return " ".join(panel)


def haproxy_args(out: Path, *more: str) -> list[str]:
    return ["--driver", "haproxy", "--output-dir", str(out), *more]


@pytest.mark.parametrize(
    ("socket", "reason"),
    [
        ("tcp@somewhere", f"{ADDRESS_FORMS}, got 'tcp@somewhere'"),
        ("ipv4@127.0.0.1", "expected ipv4@HOST:PORT, got 'ipv4@127.0.0.1'"),
        ("ipv6@[::1]:99999", "expected ipv6@HOST:PORT, got 'ipv6@[::1]:99999'"),
        ("unix@", "expected a unix socket path, got an empty one"),
    ],
)
def test_a_bad_runtime_api_address_is_a_usage_error(
    tmp_path: Path, entry_point: list[str], socket: str, reason: str
) -> None:
    result = gateway_cli(entry_point, *haproxy_args(tmp_path / "out", "--haproxy-socket", socket))
    assert usage_error(result) == (
        f"Invalid value for --haproxy-socket: not a HAProxy runtime API address: {reason}"
    )
    assert not (tmp_path / "out").exists()


def test_haproxy_crt_list_is_checked_and_only_taken_with_the_haproxy_driver(
    tmp_path: Path, entry_point: list[str]
) -> None:
    out, sock = tmp_path / "out", str(tmp_path / "admin.sock")
    cases = {
        ("--haproxy-crt-list", "/etc/haproxy/keyops.list"): (
            "Invalid value for --haproxy-crt-list: only with --driver"
        ),
        (
            "--driver", "nginx", "--output-dir", str(out),
            "--haproxy-crt-list", "/etc/haproxy/keyops.list",
        ): "Invalid value for --haproxy-crt-list: only with --driver haproxy",
        (*haproxy_args(out, "--haproxy-socket", sock), "--haproxy-crt-list", " "): (
            "Invalid value for --haproxy-crt-list: the crt-list path is empty"
        ),
        (*haproxy_args(out, "--haproxy-socket", sock), "--haproxy-crt-list", "/a\tb.list"): (
            "Invalid value for --haproxy-crt-list: '/a\\tb.list' has a control character,"
            " which HAProxy's CLI can not take"
        ),
        tuple(haproxy_args(out, "--haproxy-crt-list", "/x.list")): (
            "Invalid value for --haproxy-socket: required with --driver haproxy"
        ),
    }  # fmt: skip
    for args, expected in cases.items():
        assert usage_error(gateway_cli(entry_point, *args)) == expected, args


def test_haproxy_crt_list_reaches_the_driver(tmp_path: Path) -> None:
    crt_list = str(tmp_path / "haproxy" / "keyops.list")
    sock = str(tmp_path / "haproxy" / "admin.sock")
    node = NodeProcess(
        environment="e",
        manager_url=f"http://127.0.0.1:{free_port()}",
        token="t",
        name="gw-crt-list",
        data_dir=tmp_path / "data",
        args=haproxy_args(
            tmp_path / "out", "--haproxy-socket", sock, "--haproxy-crt-list", crt_list
        ),
        listen=False,
    )
    node.start()
    try:
        driver = node.status()["driver"]
        assert driver["name"] == "haproxy"
        assert driver["haproxySocket"] == sock
        assert driver["haproxyCrtList"] == crt_list
        assert driver["lastApply"] is None
    finally:
        node.stop()
    assert node.process is not None and node.process.returncode == 0, node.log()
