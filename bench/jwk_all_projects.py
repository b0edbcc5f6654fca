"""Re-deriving 1,000 JWKs over 100 projects: an admin certificate's ALL_PROJECTS update
against a plain update of the same certificate, as a ratio (target <= 20x).

    python bench/jwk_all_projects.py [--db sqlite|postgresql|both] [--workers N] [--python PY]
                                     [--projects 100] [--jwks-per-project 10] [--rounds 3]

Creates ``--projects`` projects and, in each, ``--jwks-per-project`` JWKs (sourceType
CERTIFICATE, RS256, environment production) derived from one certificate of the
``admin`` project (decision 11: any project may derive public JWKs from it). Then times
``PUT /apiops/projects/admin/certificates/{name}/`` with
``?updateReferencedJwks=true&updateScope=ALL_PROJECTS`` and a new RSA certificate each
time (so every JWK really changes; one is checked), interleaved with plain updates of a
twin certificate that no JWK references. Last, plain updates of the certificate itself:
the first one detaches the 1,000 JWKs (NULLIFY, the default) and is shown apart; the
ones after it are the "plain update of the same certificate" the headline ratio divides
by. The twin's ratio is printed too: it was measured interleaved, so it is the one to
trust on a noisy machine.
"""

from __future__ import annotations

import sys

import _support as s

ENVIRONMENTS = ("production", "staging")
CERT = "bench-admin-cert"
TWIN = "bench-admin-twin"
ALL_PROJECTS = "?updateReferencedJwks=true&updateScope=ALL_PROJECTS"
TARGET = 20.0


def bench(ctx: s.Context) -> list[str]:
    a = ctx.args
    pems = [s.rsa_certificate(f"admin-{i}.bench.example") for i in range(3)]
    projects = [f"bench-p-{i:03d}" for i in range(a.projects)]
    jwks = [(p, f"jwk-{j:02d}") for p in projects for j in range(a.jwks_per_project)]
    with s.keyops_server(ctx.target, ctx.database_url, ctx.workdir) as keyops:
        api = s.Api(keyops.base_url, s.issue_token(keyops.base_url))
        took_p, _ = s.timed(lambda: s.concurrently(api.create_project, projects, workers=8))
        api.create_certificate(s.ADMIN_PROJECT, CERT, pems[0].pem, ENVIRONMENTS)
        api.create_certificate(s.ADMIN_PROJECT, TWIN, pems[0].pem, ENVIRONMENTS)
        took_j, _ = s.timed(
            lambda: s.concurrently(
                lambda pj: api.create_jwk(pj[0], pj[1], CERT, ENVIRONMENTS[0]), jwks
            )
        )
        print(
            f"  seeded {len(projects)} projects in {took_p:.1f} s, {len(jwks)} JWKs from"
            f" {s.ADMIN_PROJECT}/{CERT} in {took_j:.1f} s ({len(jwks) / took_j:.0f}/s)",
            flush=True,
        )

        def update(name: str, issued: s.Issued, query: str = "") -> float:
            keyops.check_alive()
            took, _ = s.timed(
                lambda: api.update_certificate(
                    s.ADMIN_PROJECT, name, issued.pem, ENVIRONMENTS, query
                )
            )
            return took

        rederive: list[float] = []
        twin: list[float] = []
        for r in range(a.rounds):
            issued = pems[1 + r % 2]
            rederive.append(update(CERT, issued, ALL_PROJECTS))
            if r == 0:
                probe = jwks[len(jwks) // 2]
                got = api.get_jwk(*probe)
                if got.get("sourceId") != CERT or got["jwk"].get("n") != issued.jwk_n():
                    raise s.BenchError(f"{probe[0]}/{probe[1]} was not re-derived: {got}")
            twin.append(update(TWIN, pems[1 + r % 2]))
            print(
                f"  round {r + 1}: ALL_PROJECTS {rederive[-1] * 1000:8.0f} ms,"
                f" plain (twin) {twin[-1] * 1000:6.0f} ms",
                flush=True,
            )
        detaching = update(CERT, pems[0])
        plain = [update(CERT, pems[1 + r % 2]) for r in range(a.rounds)]
        print(
            f"  plain update of {CERT}: first (detaching {len(jwks)} JWKs)"
            f" {detaching * 1000:.0f} ms, then "
            + ", ".join(f"{x * 1000:.0f}" for x in plain)
            + " ms",
            flush=True,
        )
    ratio = s.median(rederive) / s.median(plain)
    twin_ratio = s.median(r / t for r, t in zip(rederive, twin, strict=True))
    line = (
        f"ALL_PROJECTS re-derivation of {len(jwks)} JWKs: {ratio:.1f}x a plain update"
        f" ({s.median(rederive) * 1000:.0f} vs {s.median(plain) * 1000:.0f} ms;"
        f" {twin_ratio:.1f}x the interleaved twin) -> {s.verdict(ratio, TARGET)}"
    )
    print(f"  {line}")
    return [line]


def main() -> int:
    p = s.parser(__doc__)
    p.add_argument("--projects", type=int, default=100)
    p.add_argument("--jwks-per-project", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if args.deadline is None:
        # Seeding 1,000 JWKs through the API took ~100 s per database before issue 9.
        args.deadline = 420 * (2 if args.db == "both" else 1)
    return s.run(
        args, "keyops ALL_PROJECTS JWK re-derivation vs a plain update", bench, needs_wrk=False
    )


if __name__ == "__main__":
    sys.exit(main())
