"""Certificate creates per second at 16 connections, as a ratio of a bare app's.

    python bench/creates.py [--db sqlite|postgresql|both] [--workers N] [--python PY]
                            [--duration 5] [--rounds 2] [--connections 16]

``POST /apiops/projects/MyProject/certificates/`` with the seed's multipart form, a
unique certificateName and alias per request (wrk fills them in), to environments
``production,staging``, alternating between two RSA certificates; against
``keyops serve`` and against the bare app (same form read, same JSON answer),
interleaved round by round. The ratio of a round is keyops' creates/s over the bare
app's measured just before; the headline is the median over rounds. Any non-2xx answer
makes the run an error.
"""

from __future__ import annotations

import sys

import _support as s

PROJECT = s.DEMO_PROJECT
ENVIRONMENTS = ("production", "staging")


def plan(pems: list[bytes]) -> list[s.WrkRequest]:
    requests = []
    for pem in pems:
        body = s.certificate_form(
            name="new-@@SEQ@@", alias="alias-new-@@SEQ@@",
            description="bench certificate", environments=ENVIRONMENTS, pem=pem,
        )  # fmt: skip
        requests.append(s.WrkRequest("POST", s.certificates_path(PROJECT), body, s.MULTIPART))
    return requests


def bench(ctx: s.Context) -> list[str]:
    a = ctx.args
    requests = plan([s.rsa_certificate(f"create-{i}.bench.example").pem for i in range(2)])
    with (
        s.keyops_server(ctx.target, ctx.database_url, ctx.workdir) as keyops,
        s.bare_server(ctx.target, ctx.workdir) as bare,
    ):
        token = s.issue_token(keyops.base_url)
        options = {
            "workdir": ctx.workdir,
            "headers": s.bearer(token),
            "connections": a.connections,
            "threads": a.threads,
        }
        servers = {"bare": bare, "keyops": keyops}
        for label, server in servers.items():
            s.warm_up(
                server.base_url, requests, label=label,
                seq_prefix="warm-", **options,
            )  # fmt: skip
        results: dict[str, list[s.WrkResult]] = {label: [] for label in servers}
        for r in range(a.rounds):
            for label, server in servers.items():
                server.check_alive()
                got = s.wrk(
                    server.base_url, requests, label=label, duration=a.duration,
                    seq_prefix=f"r{r}-", **options,
                )  # fmt: skip
                results[label].append(got)
                print(f"  round {r + 1}: {got.line()}", flush=True)
    ratios = [k.rps / b.rps for k, b in zip(results["keyops"], results["bare"], strict=True)]
    k, b = results["keyops"], results["bare"]
    line = (
        f"certificate creates: {s.median(ratios):.3f}x bare req/s"
        f" ({s.median(x.rps for x in k):.1f} vs {s.median(x.rps for x in b):.1f});"
        f" p50 {s.median(x.p50_ms for x in k):.1f} vs {s.median(x.p50_ms for x in b):.1f} ms,"
        f" p99 {s.median(x.p99_ms for x in k):.1f} vs {s.median(x.p99_ms for x in b):.1f} ms"
    )
    print(f"  {line}")
    return [line]


def main() -> int:
    p = s.parser(__doc__)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    args = p.parse_args()
    return s.run(args, "keyops certificate creates vs a bare FastAPI app (wrk)", bench)


if __name__ == "__main__":
    sys.exit(main())
