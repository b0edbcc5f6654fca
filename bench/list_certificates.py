"""Listing 10,000 certificates: keyops' latency as a ratio of a bare app sending the same bytes.

    python bench/list_certificates.py [--db sqlite|postgresql|both] [--workers N] [--python PY]
                                      [--certificates 10000] [--duration 5] [--rounds 2]

Seeds ``--certificates`` certificates into MyProject through the API (the seed's create,
16 concurrent clients, one environment each, like bare_fastapi's list), captures
``GET /apiops/projects/MyProject/certificates/`` once, and starts the bare app serving
exactly those bytes. Then wrk times the GET with one connection, one request after
another, against each, interleaved round by round. The ratio is keyops' median latency
over the bare app's (lower is better; 1.0 is the framework's ceiling). The seeding time
is printed: through the API it is bounded by keyops' create speed (at about 20 creates/s
before issue 9 that is minutes, so the deadline grows with --certificates).
"""

from __future__ import annotations

import sys
import threading
import time

import _support as s
import httpx

PROJECT = s.DEMO_PROJECT
ENVIRONMENTS = ("production",)


def seed(api: s.Api, count: int, pems: list[bytes], workers: int) -> float:
    done = 0
    lock = threading.Lock()
    started = time.monotonic()
    last = [started]

    def create(i: int) -> None:
        nonlocal done
        api.create_certificate(PROJECT, f"list-{i:05d}", pems[i % len(pems)], ENVIRONMENTS)
        with lock:
            done += 1
            now = time.monotonic()
            if now - last[0] >= 15:
                last[0] = now
                rate = done / (now - started)
                print(f"    seeding: {done}/{count} ({rate:.0f}/s)", flush=True)

    s.concurrently(create, range(count), workers=workers)
    return time.monotonic() - started


def bench(ctx: s.Context) -> list[str]:
    a = ctx.args
    pems = [s.rsa_certificate(f"list-{i}.bench.example").pem for i in range(4)]
    path = s.certificates_path(PROJECT)
    with s.keyops_server(ctx.target, ctx.database_url, ctx.workdir) as keyops:
        token = s.issue_token(keyops.base_url)
        api = s.Api(keyops.base_url, token)
        took = seed(api, a.certificates, pems, a.seed_clients)
        print(
            f"  seeded {a.certificates} certificates in {took:.1f} s"
            f" ({a.certificates / took:.1f}/s)",
            flush=True,
        )
        with httpx.Client(headers=s.bearer(token), timeout=300) as client:
            first, answer = s.timed(lambda: client.get(keyops.base_url + path))
            if answer.status_code != 200:
                raise s.BenchError(f"GET {path}: {answer.status_code} {answer.text[:300]}")
            count = answer.json().get("resultCount")
            if count != a.certificates:
                raise s.BenchError(f"GET {path} listed {count}, not {a.certificates}")
            body = answer.content
        list_file = ctx.workdir / "list.json"
        list_file.write_bytes(body)
        print(f"  answer: {len(body) / 1e6:.2f} MB, first GET {first * 1000:.0f} ms", flush=True)
        with s.bare_server(ctx.target, ctx.workdir, list_file=list_file) as bare:
            if httpx.get(bare.base_url + path, timeout=60).content != body:
                raise s.BenchError("the bare app does not answer keyops' bytes")
            requests = [s.WrkRequest("GET", path)]
            # Enough time for a few of keyops' answers, however slow they are.
            durations = {"bare": a.duration, "keyops": min(max(a.duration, 4 * first), 60)}
            servers = {"bare": bare, "keyops": keyops}
            options = {
                "workdir": ctx.workdir,
                "headers": s.bearer(token),
                "connections": 1,
                "threads": 1,
            }
            s.warm_up(bare.base_url, requests, label="bare", **options)
            results: dict[str, list[s.WrkResult]] = {label: [] for label in servers}
            for r in range(a.rounds):
                for label, server in servers.items():
                    server.check_alive()
                    got = s.wrk(
                        server.base_url, requests, label=label, duration=durations[label],
                        **options,
                    )  # fmt: skip
                    results[label].append(got)
                    print(f"  round {r + 1}: {got.line()}", flush=True)
    k, b = results["keyops"], results["bare"]
    ratios = [x.p50_ms / y.p50_ms for x, y in zip(k, b, strict=True)]
    line = (
        f"list of {a.certificates} certificates: p50 {s.median(ratios):.1f}x the bare app's"
        f" ({s.median(x.p50_ms for x in k):.1f} vs {s.median(x.p50_ms for x in b):.2f} ms;"
        f" p99 {s.median(x.p99_ms for x in k):.1f} vs {s.median(x.p99_ms for x in b):.2f} ms;"
        f" {len(body) / 1e6:.1f} MB); seeding {took:.0f} s"
    )
    print(f"  {line}")
    return [line]


def main() -> int:
    p = s.parser(__doc__)
    p.add_argument("--certificates", type=int, default=10_000)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (at least)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seed-clients", type=int, default=16, help="concurrent seeding requests")
    args = p.parse_args()
    if args.deadline is None:
        # Seeding through the API: allow 20 creates/s before issue 9's work.
        per_db = s.SECONDS_PER_DATABASE + args.certificates // 20
        args.deadline = per_db * (2 if args.db == "both" else 1)
    return s.run(args, "keyops certificate list vs a bare FastAPI app (wrk)", bench)


if __name__ == "__main__":
    sys.exit(main())
