"""Healthcheck latency while heavy keystore requests run: idle vs under load, as a ratio.

    python bench/keystore_stall.py [--requests 3] [--iterations 4999999] [--database-url URL]

Starts a real ``keyops serve`` (SQLite in a temporary directory unless --database-url
names a PostgreSQL database), measures ``GET /apiops/test/healthcheck`` latency idle,
then while ``--requests`` concurrent create-keystore requests each send one PKCS#12 at
``--iterations`` rounds with a wrong password to the three demo environments, and
once more with one request naming 20 environments that do not exist. Prints the
latencies, the heavy requests' times and ``max under load / median idle``.

Before issue 8's fix the healthcheck waited for every heavy request (tens of seconds);
after it, it stays within a few idle latencies.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.databases import database  # noqa: E402
from tests.support.keystore_load import (  # noqa: E402
    HEAVY_ITERATIONS,
    Probe,
    heavy_body,
    heavy_pkcs12,
    post_heavy,
)
from tests.support.server import live_server, password_token  # noqa: E402

ENVIRONMENTS = ["production", "staging", "development"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=HEAVY_ITERATIONS)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    data = heavy_pkcs12(args.iterations)
    with tempfile.TemporaryDirectory(prefix="keyops-bench-") as tmp:
        root = Path(tmp)
        if args.database_url:
            return run(args, data, args.database_url, root)
        with database("sqlite", root) as url:
            return run(args, data, url, root)


def run(args: argparse.Namespace, data: bytes, url: str, root: Path) -> int:
    with live_server(url, root / "data", admin_password="bench-admin-pw") as server:  # noqa: S106
        token = password_token(server.base_url, "admin", "bench-admin-pw")
        with Probe(server.base_url) as idle:
            time.sleep(2)
        with Probe(server.base_url) as loaded, ThreadPoolExecutor(args.requests + 1) as pool:
            made_up = [f"no-such-env-{i}" for i in range(20)]
            ghost = pool.submit(
                post_heavy, server.base_url, token, "MyProject", heavy_body("g", data, made_up)
            )
            heavy = [
                pool.submit(
                    post_heavy,
                    server.base_url,
                    token,
                    "MyProject",
                    heavy_body(f"h{i}", data, ENVIRONMENTS),
                )
                for i in range(args.requests)
            ]
            ghost_time, ghost_r = ghost.result()
            times = [f.result()[0] for f in heavy]
    idle_median = statistics.median(idle.latencies)
    loaded_max = max(loaded.latencies)
    print(f"healthcheck idle: median {idle_median * 1000:.1f} ms over {len(idle.latencies)}")
    print(
        f"healthcheck under load: median {statistics.median(loaded.latencies) * 1000:.1f} ms,"
        f" max {loaded_max * 1000:.1f} ms over {len(loaded.latencies)}"
    )
    print(f"20 made-up environments: {ghost_r.status_code} in {ghost_time:.2f} s")
    print(
        f"{args.requests} heavy requests x {len(ENVIRONMENTS)} environments: "
        + ", ".join(f"{t:.2f} s" for t in times)
    )
    print(f"ratio (max under load / median idle): {loaded_max / idle_median:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
