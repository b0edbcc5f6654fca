"""``keyops expiring`` against a real server on loopback, on both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyops.crypto.x509 import format_instant
from keyops.domain.bootstrap import DEMO_ENVIRONMENTS, DEMO_PROJECT
from tests.crypto import certs
from tests.support.certificates import certificate_parts, multipart
from tests.support.databases import BACKENDS, database
from tests.support.keysecrets import jwcrypto_public
from tests.support.server import live_server, password_token

ADMIN_PASSWORD = "admin-cli-expiring-1"
HEADER = ["days left", "not after", "project", "kind", "name", "environment", "alias"]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyops", "expiring", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def table_rows(text: str) -> list[list[str]]:
    """The cells of each line of a Rich table that has cells (the header's rule is ┃)."""
    rows = []
    for line in text.splitlines():
        line = line.strip().replace("┃", "│")
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def certificate_expiring(days: int, cn: str) -> certs.Issued:
    not_after = (datetime.now(UTC) + timedelta(days=days, hours=1)).replace(microsecond=0)
    return certs.make_cert(
        certs.name(("COMMON_NAME", cn)),
        certs.key("p256"),
        not_before=not_after - timedelta(days=365),
        not_after=not_after,
    )


def post(base: str, token: str, path: str, **kwargs: Any) -> None:
    r = httpx.post(
        f"{base}/apiops/projects/{DEMO_PROJECT}/{path}",
        headers={"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})},
        timeout=30,
        **kwargs,
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_expiring_table(backend: str, tmp_path: Path) -> None:
    env_name = DEMO_ENVIRONMENTS[0][0]
    with (
        database(backend, tmp_path) as url,
        live_server(url, tmp_path / "data", admin_password=ADMIN_PASSWORD) as server,
    ):
        token = password_token(server.base_url, "admin", ADMIN_PASSWORD)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYOPS_")}
        env |= {"KEYOPS_URL": server.base_url, "KEYOPS_TOKEN": token, "COLUMNS": "250"}
        env |= {"NO_COLOR": "1"}

        empty = run(env)
        assert empty.returncode == 0, empty.stderr
        assert empty.stdout == "nothing expires within 30 days\n"

        soon, later = certificate_expiring(3, "soon.example"), certificate_expiring(20, "l.example")
        for name, issued in (("cli-soon", soon), ("cli-later", later)):
            body, content_type = multipart(
                certificate_parts(
                    name=name,
                    alias=name,
                    description="made for the CLI test",
                    environments=[env_name],
                    pem=issued.pem,
                )
            )
            post(server.base_url, token, "certificates/", content=body, headers=content_type)
        exp = (datetime.now(UTC) + timedelta(days=9, hours=1)).replace(microsecond=0)
        jwk = {**jwcrypto_public(certs.key("p256")), "exp": int(exp.timestamp())}
        post(
            server.base_url,
            token,
            "jwks/parse-from-clipboard",
            json={"name": "cli-jwk", "sourceType": "COPY_PASTE", "jwkStr": json.dumps(jwk)},
        )

        shown = run(env, "--within-days", "10")
        assert shown.returncode == 0, shown.stderr
        assert table_rows(shown.stdout) == [
            HEADER,
            [
                "3",
                format_instant(soon.cert.not_valid_after_utc),
                DEMO_PROJECT,
                "certificate",
                "cli-soon",
                env_name,
                "",
            ],
            ["9", format_instant(exp), DEMO_PROJECT, "jwk", "cli-jwk", "-", ""],
        ]
        # The default is 30 days, and the flags work as well as the environment.
        flags = {k: v for k, v in env.items() if k not in ("KEYOPS_URL", "KEYOPS_TOKEN")}
        wide = run(flags, "--url", server.base_url, "--token", token)
        assert wide.returncode == 0, wide.stderr
        assert [r[4] for r in table_rows(wide.stdout)[1:]] == ["cli-soon", "cli-jwk", "cli-later"]

        bad = run({**env, "KEYOPS_TOKEN": "not-a-token"})
        assert bad.returncode == 1
        assert bad.stderr == "error: Invalid token\n"
        negative = run(env, "--within-days", "-1")
        assert negative.returncode == 2
        assert "Invalid value for '--within-days': Input should be greater than or equal to 0" in (
            negative.stderr
        )

    down = run(env)
    assert down.returncode == 2
    assert down.stderr.startswith(f"error: can not reach {server.base_url}: ")
