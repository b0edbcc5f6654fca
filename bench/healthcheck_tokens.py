"""Healthcheck latency while 4 clients keep asking for tokens, against idle (target <= 10x).

    python bench/healthcheck_tokens.py [--db sqlite|postgresql|both] [--workers N]
                                       [--python PY] [--clients 4] [--period 4] [--rounds 3]

``GET /apiops/test/healthcheck`` (it runs ``SELECT 1``, so it needs the database) is
probed one request at a time, every ``--interval`` s, by this process, while wrk keeps
``--clients`` connections asking ``POST /apiops/auth/token`` (client_credentials with
the admin password: an argon2 verification each) back to back, and while nothing else
runs; the two phases alternate ``--rounds`` times. Prints p50 and p99 of both, tokens/s,
and the ratios loaded/idle of p50 and of p99; the verdict takes the worse. Any token
request answered non-200 makes the run an error.
"""

from __future__ import annotations

import sys
import time
import urllib.parse

import _support as s
import httpx

TARGET = 10.0


def probe(base_url: str, seconds: float, interval: float) -> list[float]:
    """Healthcheck latencies, one request at a time, for ``seconds``."""
    latencies = []
    with httpx.Client(timeout=60) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            r = client.get(base_url + s.HEALTHCHECK)
            latencies.append(time.perf_counter() - started)
            if r.status_code != 200 or r.text != "OK":
                raise s.BenchError(f"healthcheck: {r.status_code} {r.text[:200]}")
            time.sleep(interval)
    return latencies


def bench(ctx: s.Context) -> list[str]:
    a = ctx.args
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": s.ADMIN_USER,
            "client_secret": s.ADMIN_PASSWORD,
        }
    ).encode()
    tokens = [s.WrkRequest("POST", "/apiops/auth/token", form, "application/x-www-form-urlencoded")]
    idle: list[float] = []
    loaded: list[float] = []
    issued: list[s.WrkResult] = []
    with s.keyops_server(ctx.target, ctx.database_url, ctx.workdir) as keyops:
        s.issue_token(keyops.base_url)
        probe(keyops.base_url, 1, a.interval)  # warm-up
        for r in range(a.rounds):
            got_idle = probe(keyops.base_url, a.period, a.interval)
            load = s.WrkRun(
                keyops.base_url, tokens, label="tokens", workdir=ctx.workdir,
                connections=a.clients, threads=1, duration=a.period + 1.5,
            )  # fmt: skip
            time.sleep(0.5)
            got_loaded = probe(keyops.base_url, a.period, a.interval)
            issued.append(load.result().check())
            keyops.check_alive()
            idle += got_idle
            loaded += got_loaded
            print(
                f"  round {r + 1}: idle p50 {s.percentile(got_idle, 50) * 1000:.2f} ms,"
                f" loaded p50 {s.percentile(got_loaded, 50) * 1000:.2f} ms"
                f" p99 {s.percentile(got_loaded, 99) * 1000:.2f} ms;"
                f" {issued[-1].rps:.1f} tokens/s (p50 {issued[-1].p50_ms:.0f} ms)",
                flush=True,
            )
    idle50, idle99 = s.percentile(idle, 50) * 1000, s.percentile(idle, 99) * 1000
    load50, load99 = s.percentile(loaded, 50) * 1000, s.percentile(loaded, 99) * 1000
    worst = max(load50 / idle50, load99 / idle99)
    line = (
        f"healthcheck with {a.clients} token clients: p50 {load50:.2f} vs {idle50:.2f} ms idle"
        f" ({load50 / idle50:.1f}x), p99 {load99:.2f} vs {idle99:.2f} ms ({load99 / idle99:.1f}x);"
        f" {s.median(x.rps for x in issued):.1f} tokens/s -> {s.verdict(worst, TARGET)}"
    )
    print(f"  {line}")
    return [line]


def main() -> int:
    p = s.parser(__doc__)
    p.add_argument("--clients", type=int, default=4, help="concurrent token clients")
    p.add_argument("--period", type=float, default=4.0, help="seconds per phase")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--interval", type=float, default=0.01, help="pause between probes, s")
    args = p.parse_args()
    return s.run(args, "keyops healthcheck latency: 4 token clients vs idle", bench)


if __name__ == "__main__":
    sys.exit(main())
