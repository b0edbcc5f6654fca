"""The seed's certificate update at 16 connections: requests/s as a ratio of a bare app's.

    python bench/seed_update.py [--db sqlite|postgresql|both] [--workers N] [--python PY]
                                [--duration 5] [--rounds 2] [--connections 16]

``PUT /apiops/projects/MyProject/certificates/{name}/`` with the seed's multipart form
(alias, certificateDescription, environmentList ``production,staging``, pemEncodedFile),
driven by wrk, against ``keyops serve`` and against the bare app (which reads the same
form and answers the same JSON), interleaved round by round: bare, plain update, update
with ``?updateReferencedJwks=true&updateScope=SAME_PROJECT``.

Each variant updates its own 16 certificates (one per connection: each wrk thread cycles
over its own share, so concurrent requests rarely meet on one row), alternating between
two RSA certificates so that no update is a no-op. The re-deriving variant's 16
certificates each have ``--jwks`` JWKs (RS256, CERTIFICATE source) to re-derive; the
plain variant's have none (a plain update detaches derived JWKs: after one round there
would be nothing left to detach). The ratio of a round is keyops' requests/s over the
bare app's measured just before; the headline is the median over rounds. Any non-2xx
answer makes the run an error.
"""

from __future__ import annotations

import sys

import _support as s

PROJECT = s.DEMO_PROJECT
ENVIRONMENTS = ("production", "staging")
REDERIVE = "?updateReferencedJwks=true&updateScope=SAME_PROJECT"


def plan(names: list[str], pems: list[bytes], query: str, threads: int) -> list[s.WrkRequest]:
    """Each wrk thread cycles over its own names, each name alternating between the PEMs."""
    share = len(names) // threads
    requests = []
    for t in range(threads):
        mine = names[t * share : (t + 1) * share]
        for pem in pems:
            for name in mine:
                body = s.certificate_form(
                    name=None, alias=f"alias-{name}", description=f"bench certificate {name}",
                    environments=ENVIRONMENTS, pem=pem,
                )  # fmt: skip
                path = s.certificates_path(PROJECT, name) + query
                requests.append(s.WrkRequest("PUT", path, body, s.MULTIPART, thread=t))
    return requests


def bench(ctx: s.Context) -> list[str]:
    a = ctx.args
    if a.connections % a.threads:
        raise s.BenchError("--connections must be a multiple of --threads")
    pems = [s.rsa_certificate(f"seed-{i}.bench.example").pem for i in range(2)]
    plain = [f"seed-plain-{i}" for i in range(a.connections)]
    linked = [f"seed-jwk-{i}" for i in range(a.connections)]
    with (
        s.keyops_server(ctx.target, ctx.database_url, ctx.workdir) as keyops,
        s.bare_server(ctx.target, ctx.workdir) as bare,
    ):
        token = s.issue_token(keyops.base_url)
        api = s.Api(keyops.base_url, token)
        took, _ = s.timed(
            lambda: s.concurrently(
                lambda n: api.create_certificate(PROJECT, n, pems[0], ENVIRONMENTS),
                plain + linked,
            )
        )
        jwks = [(c, f"{c}-{k}") for c in linked for k in range(a.jwks)]
        took_jwks, _ = s.timed(
            lambda: s.concurrently(
                lambda cj: api.create_jwk(PROJECT, cj[1], cj[0], ENVIRONMENTS[0]), jwks
            )
        )
        print(
            f"  seeded {len(plain + linked)} certificates in {took:.1f} s and {len(jwks)}"
            f" JWKs in {took_jwks:.1f} s",
            flush=True,
        )
        plans = {
            "bare": (bare, plan(plain, pems, "", a.threads)),
            "keyops plain": (keyops, plan(plain, pems, "", a.threads)),
            "keyops re-deriving JWKs": (keyops, plan(linked, pems, REDERIVE, a.threads)),
        }
        options = {
            "workdir": ctx.workdir,
            "headers": s.bearer(token),
            "connections": a.connections,
            "threads": a.threads,
        }
        for label, (server, requests) in plans.items():
            s.warm_up(server.base_url, requests, label=label, **options)
        results: dict[str, list[s.WrkResult]] = {label: [] for label in plans}
        for r in range(a.rounds):
            for label, (server, requests) in plans.items():
                server.check_alive()
                got = s.wrk(server.base_url, requests, label=label, duration=a.duration, **options)
                results[label].append(got)
                print(f"  round {r + 1}: {got.line()}", flush=True)
        # A re-derived JWK still comes from its certificate (else the variant measured less).
        source = api.get_jwk(PROJECT, jwks[0][1]).get("sourceId")
        if source != jwks[0][0]:
            print(f"  WARNING: {jwks[0][1]} no longer comes from {jwks[0][0]} ({source!r})")
    lines = []
    for label in ("keyops plain", "keyops re-deriving JWKs"):
        ratios = [k.rps / b.rps for k, b in zip(results[label], results["bare"], strict=True)]
        keyops_p50 = s.median(x.p50_ms for x in results[label])
        keyops_p99 = s.median(x.p99_ms for x in results[label])
        bare_p50 = s.median(x.p50_ms for x in results["bare"])
        bare_p99 = s.median(x.p99_ms for x in results["bare"])
        lines.append(
            f"seed update, {label[7:]:18s}: {s.median(ratios):.3f}x bare req/s"
            f" ({s.median(x.rps for x in results[label]):.1f} vs"
            f" {s.median(x.rps for x in results['bare']):.1f});"
            f" p50 {keyops_p50:.1f} vs {bare_p50:.1f} ms, p99 {keyops_p99:.1f} vs"
            f" {bare_p99:.1f} ms"
        )
    for line in lines:
        print(f"  {line}")
    return lines


def main() -> int:
    p = s.parser(__doc__)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--jwks", type=int, default=2, help="JWKs per re-derived certificate")
    args = p.parse_args()
    return s.run(args, "keyops seed update vs a bare FastAPI app (wrk)", bench)


if __name__ == "__main__":
    sys.exit(main())
