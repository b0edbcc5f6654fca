"""A node with a driver: snapshots become files, a refusing driver keeps the old ones.

The real node (in-process, its own event loop thread) against the manager double of
test_node.py, with the files driver running real shell commands; no TLS listener of its
own (``listen=None``), as with ``--driver`` by default. Also the CLI's option checks,
through the real ``python -m keyops.gateway`` process.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

from keyops.gateway.drivers.files import FilesDriver
from keyops.gateway.output import MANIFEST_FILE
from tests.gateway import test_node
from tests.gateway.test_node import (
    ManagerDouble,
    Material,
    RunningNode,
    manager_double,
    node_config,
    snapshot,
)

material = test_node.material
manager = test_node.manager
_openssl = test_node._openssl

KEY = "tls/admin/gw/server.key"
CRT = "tls/admin/gw/server.crt"


def driver_config(manager_url: str, tmp_path: Path) -> test_node.NodeConfig:
    config = node_config(manager_url, tmp_path / "data")
    return dataclasses.replace(config, listen=None, output_dir=tmp_path / "out")


def files_driver(tmp_path: Path) -> FilesDriver:
    """Logs each check and reload; the check fails while ``refuse`` exists."""
    log, flag = tmp_path / "driver.log", tmp_path / "refuse"
    return FilesDriver(
        check_command=(
            f'if [ -e {flag} ]; then echo "refused: $(cat {flag})" >&2; exit 4; fi;'
            f' echo "check $KEYOPS_REVISION $(head -c 27 "$KEYOPS_OUTPUT_DIR/{CRT}")" >> {log}'
        ),
        reload_command=f'echo "reload $KEYOPS_REVISION" >> {log}',
        timeout=10,
    )


def test_snapshots_become_files_and_a_refused_check_keeps_the_old_ones(
    manager: ManagerDouble, material: Material, tmp_path: Path
) -> None:
    out, log, flag = tmp_path / "out", tmp_path / "driver.log", tmp_path / "refuse"
    manager.publish(snapshot(material, 1))
    node = RunningNode(driver_config(manager.url, tmp_path), files_driver(tmp_path)).start()
    try:
        status = node.wait_revision(1)
        assert status["listen"] is None and status["tlsServing"] is False
        driver = status["driver"]
        assert driver["name"] == "files" and driver["outputDir"] == str(out)
        assert driver["lastApply"]["revision"] == 1
        assert driver["lastApply"]["outcome"] == "applied"
        assert driver["lastApply"]["message"].endswith("check passed, reloaded")
        ack = manager.wait_ack(lambda a: a["revision"] == 1)
        assert ack["error"] is None and ack["listen"] == ""
        assert ack["driver"]["outcome"] == "applied" and ack["driver"]["name"] == "files"
        assert log.read_text() == "check 1 -----BEGIN CERTIFICATE-----\nreload 1\n"
        assert (out / KEY).stat().st_mode & 0o777 == 0o600
        assert (out / "truststore.pem").read_bytes() == material.client_ca_a.pem
        first = {p: (out / p).read_bytes() for p in (KEY, CRT, "truststore.pem", "jwks.json")}

        # Revision 2 (new server key, new CA) is refused by the check: old files stay.
        flag.write_text("the operator said no")
        manager.publish(
            snapshot(material, 2, keystore=material.keystore2, trusted=(material.client_ca_c,))
        )
        ack = manager.wait_ack(lambda a: a["error"] is not None)
        reason = "check command failed (exit 4): refused: the operator said no"
        assert ack["revision"] == 1
        assert ack["error"] == f"revision 2 not applied: {reason}"
        assert ack["driver"] == {**ack["driver"], "revision": 2, "outcome": "failed"}
        assert ack["driver"]["message"] == reason
        status = node.status()
        assert status["appliedRevision"] == 1
        assert status["driver"]["lastApply"]["outcome"] == "failed"
        assert {p: (out / p).read_bytes() for p in first} == first
        assert "reload 2" not in log.read_text()
        assert json.loads((out / MANIFEST_FILE).read_bytes())["revision"] == 1

        # Revision 3 passes: the new material is in place, reloaded once.
        flag.unlink()
        manager.publish(
            snapshot(material, 3, keystore=material.keystore2, trusted=(material.client_ca_c,))
        )
        node.wait_revision(3)
        assert manager.wait_ack(lambda a: a["revision"] == 3)["error"] is None
        assert (out / "truststore.pem").read_bytes() == material.client_ca_c.pem
        assert (out / CRT).read_bytes().startswith(material.server2.pem)
        assert log.read_text().endswith("reload 3\n")

        # Revision 4 changes nothing the files show: the driver is not bothered.
        lines = log.read_text()
        manager.publish(
            snapshot(material, 4, keystore=material.keystore2, trusted=(material.client_ca_c,))
        )
        node.wait_revision(4)
        assert node.status()["driver"]["lastApply"]["outcome"] == "unchanged"
        assert log.read_text() == lines
    finally:
        node.stop()


def test_a_node_started_without_the_manager_writes_its_saved_snapshot_out_again(
    material: Material, tmp_path: Path
) -> None:
    out, log = tmp_path / "out", tmp_path / "driver.log"
    with manager_double() as m:
        port = m.httpd.server_address[1]
        m.publish(snapshot(material, 5))
        node = RunningNode(driver_config(m.url, tmp_path), files_driver(tmp_path)).start()
        node.wait_revision(5)
        node.stop()
    written = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    # The output directory lost (a tmpfs after a reboot, an operator's mistake).
    shutil.rmtree(out)

    config = driver_config(f"http://127.0.0.1:{port}", tmp_path)
    restarted = RunningNode(config, files_driver(tmp_path)).start()
    try:
        status = restarted.status()
        assert status["appliedRevision"] == 5 and status["source"] == "disk"
        assert status["managerReachable"] is False
        assert status["driver"]["lastApply"]["outcome"] == "applied"
        assert {p.relative_to(out) for p in out.rglob("*") if p.is_file()} == written
        assert log.read_text().endswith("reload 5\n")
    finally:
        restarted.stop()


def gateway_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "keyops.gateway", "--environment", "e", "--token", "t"]
    return subprocess.run(
        [*command, "--manager", "http://127.0.0.1:9", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_cli_refuses_inconsistent_driver_options(tmp_path: Path) -> None:
    cases = {
        ("--driver", "files"): "--output-dir",
        ("--driver", "envoy", "--output-dir", str(tmp_path)): "files, haproxy, nginx",
        ("--output-dir", str(tmp_path)): "only with --driver",
        ("--check-command", "true"): "only with --driver",
        ("--driver", "nginx", "--output-dir", str(tmp_path), "--check-command", "x"): (
            "only with --driver files"
        ),
        ("--driver", "haproxy", "--output-dir", str(tmp_path)): "--haproxy-socket",
        ("--listen", "none"): "--driver",
        ("--driver", "files", "--output-dir", str(tmp_path), "--output-owner", "no-such-u"): (
            "no such user"
        ),
    }
    for args, expected in cases.items():
        result = gateway_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert expected in " ".join(result.stderr.split()), (args, result.stderr)
