"""``keyops webhooks`` against a real server on loopback, delivering to a real receiver."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from keyops.domain.bootstrap import DEMO_ENVIRONMENTS
from tests.crypto import certs
from tests.support.certificates import certificate_parts, multipart
from tests.support.server import live_server, password_token
from tests.support.webhook_receiver import webhook_receiver

ADMIN_PASSWORD = "admin-cli-webhooks-1"
SECRET_LINE = re.compile(r"^whsec_[A-Za-z0-9_-]{43}$", re.MULTILINE)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyops", "webhooks", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_add_list_deliveries_delete(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keyops.db'}"
    with (
        webhook_receiver() as receiver,
        live_server(url, tmp_path / "data", admin_password=ADMIN_PASSWORD) as server,
    ):
        token = password_token(server.base_url, "admin", ADMIN_PASSWORD)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYOPS_")}
        env |= {"KEYOPS_URL": server.base_url, "KEYOPS_TOKEN": token, "COLUMNS": "250"}
        env |= {"NO_COLOR": "1"}

        added = run(env, "add", receiver.at("/cli"), "--project", "MyProject", "-e", "created")
        assert added.returncode == 0, added.stderr
        (secret,) = SECRET_LINE.findall(added.stdout)
        match = re.search(r"^webhook (\d+) added for MyProject: created$", added.stdout, re.M)
        assert match, added.stdout
        hook_id = match.group(1)

        listed = run(env, "list", "--project", "MyProject")
        assert listed.returncode == 0, listed.stderr
        assert receiver.at("/cli") in listed.stdout and secret not in listed.stdout

        # A change in the project (the demo project, the admin a member): the event
        # reaches the receiver.
        body, content_type = multipart(
            certificate_parts(
                name="cli-cert",
                alias="cli",
                description="made for the CLI test",
                environments=[DEMO_ENVIRONMENTS[0][0]],
                pem=certs.self_signed("p256", "cli.example").pem,
            )
        )
        r = httpx.post(
            f"{server.base_url}/apiops/projects/MyProject/certificates/",
            content=body,
            headers={"Authorization": f"Bearer {token}", **content_type},
        )
        assert r.status_code == 200, r.text
        (got,) = receiver.wait_for("/cli", 1)
        assert got.verifies(secret)
        assert got.json["name"] == "cli-cert"

        shown = ""
        for _ in range(100):
            shown = run(env, "deliveries", hook_id, "--project", "MyProject").stdout
            if "delivered" in shown:
                break
            time.sleep(0.1)
        assert re.search(r"│ \d+\s+│ created\s+│ delivered\s+│ 1\s+│ 200 ", shown), shown

        missing = run(env, "delete", "999999")
        assert missing.returncode == 1
        assert missing.stderr == "error: Webhook (id: 999999) is not found!\n"
        deleted = run(env, "delete", hook_id, "--project", "MyProject")
        assert deleted.returncode == 0, deleted.stderr
        assert deleted.stdout == f"webhook {hook_id} deleted\n"
        assert receiver.at("/cli") not in run(env, "list").stdout

    down = run(env, "list")
    assert down.returncode == 2
    assert down.stderr.startswith(f"error: can not reach {server.base_url}: ")
