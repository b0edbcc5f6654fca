"""Heavy keystore requests must not stall the service (issue 8, item 2).

A PKCS#12 at 4,999,999 iterations sent with a wrong password used to be parsed on the
event loop in a pure-Python key derivation, once per environment entry, before the
environments were even looked up: 20 made-up environment names answered after 252 s,
and the healthcheck and every other request waited the whole time.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from keyops.domain.bootstrap import DEMO_ENVIRONMENTS, DEMO_PROJECT
from tests.support.databases import database
from tests.support.keystore_load import Probe, heavy_body, heavy_pkcs12, post_heavy
from tests.support.server import live_server, password_token

PASSWORD_REASON = "Keystore password is incorrect or the file is corrupt! (environment: {e})"


def test_heavy_keystores_leave_the_healthcheck_fast(tmp_path: Path) -> None:
    data = heavy_pkcs12()
    envs = [name for name, _type, _description in DEMO_ENVIRONMENTS]
    with (
        database("sqlite", tmp_path) as url,
        live_server(url, tmp_path / "data", admin_password="stall-admin-pw") as server,
    ):
        token = password_token(server.base_url, "admin", "stall-admin-pw")
        with Probe(server.base_url) as idle:
            time.sleep(0.5)
        made_up = [f"no-such-env-{i}" for i in range(20)]
        with Probe(server.base_url) as loaded, ThreadPoolExecutor(4) as pool:
            # Unknown environments: refused before the file is looked at.
            elapsed, r = post_heavy(
                server.base_url, token, DEMO_PROJECT, heavy_body("ghost", data, made_up)
            )
            assert r.status_code == 400, r.text
            assert r.json()["error_description"] == (
                f"Environment ({', '.join(made_up)}) is not found or user does not have"
                " privilege to access it!"
            )
            assert elapsed < 0.5, elapsed
            # Real environments, each sent the same heavy file: parsed once per request.
            heavy = [
                pool.submit(
                    post_heavy,
                    server.base_url,
                    token,
                    DEMO_PROJECT,
                    heavy_body(f"heavy-{i}", data, envs),
                )
                for i in range(3)
            ]
            results = [f.result() for f in heavy]
        for _elapsed, r in results:
            assert r.status_code == 400, r.text
            assert r.json()["error_description"] == PASSWORD_REASON.format(e=envs[0])
        # Each request costs one MAC derivation (about a second), not one per environment;
        # the three queue in the bounded pool.
        assert max(e for e, _ in results) < 12, [e for e, _ in results]
        assert len(loaded.latencies) >= 5, loaded.latencies
        assert max(loaded.latencies) < 0.5, (
            max(loaded.latencies),
            statistics.median(idle.latencies),
        )
