"""A gateway fleet: N simulated nodes against one manager, idle cost and update fan-out.

    python bench/fleet.py [--db postgresql|sqlite|both] [--nodes 10,100,1000]
                          [--idle 20] [--updates 3] [--poll 20] [--deadline 1200]

One real ``keyops serve --demo`` (default: a fresh PostgreSQL database; node TTL 30 s,
poll ``--poll`` s, deploy timeout 60 s so an update answers when the last node acked).
For each N, an environment of its own with N node credentials (one per node, through
the admin API) and N simulated nodes in this process: each speaks the node protocol
itself with httpx (long-poll ``GET /apiops/gateway/sync/`` with ``since``, then
``POST /apiops/gateway/ack/`` of the revision it received), as a real node does, minus
applying the snapshot. Once all N are connected (``GET .../nodes/`` says so):

* idle, for ``--idle`` s: the manager's CPU (its process and reaped children, from
  ``/proc``), on PostgreSQL the CPU of the database's backends and the database's
  transactions per second (``pg_stat_database``: commits and rollbacks);
* ``--updates`` times, the seed's certificate update of a certificate deployed to the
  environment: the time from sending it to its answer, which comes once every node
  acknowledged the new revision (the answer must say ``N of N gateway node(s) applied
  it``).

The machine is shared and noisy (the simulated nodes share its two cores with the
manager and PostgreSQL): nothing here is asserted except that every node applied every
update.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import _support as s
import httpx
import psycopg

SYNC = "/apiops/gateway/sync/"
ACK = "/apiops/gateway/ack/"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, children: bool = True) -> float:
    """User + system CPU of a process (and of its reaped children), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    used = int(fields[11]) + int(fields[12])
    if children:
        used += int(fields[13]) + int(fields[14])
    return used / TICKS


class Fleet:
    """N simulated nodes on an asyncio loop in a thread of their own."""

    def __init__(self, base_url: str, tokens: list[str], poll: float) -> None:
        self.base_url, self.tokens, self.poll = base_url, tokens, poll
        self.errors: list[str] = []
        self.acks = 0
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        limits = httpx.Limits(
            max_connections=2 * len(self.tokens) + 10, max_keepalive_connections=None
        )
        timeout = httpx.Timeout(self.poll + 30)
        async with httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=timeout) as c:
            nodes = [self._node(c, f"sim-{i}", t) for i, t in enumerate(self.tokens)]
            await asyncio.gather(*nodes)

    async def _node(self, client: httpx.AsyncClient, name: str, token: str) -> None:
        assert self._stop is not None
        auth = {"Authorization": f"Bearer {token}"}
        since = -1
        while not self._stop.is_set():
            try:
                params = {"node": name, "since": since, "wait": self.poll}
                r = await client.get(SYNC, params=params, headers=auth)
                if r.status_code == 200:
                    revision = int(r.json()["revision"])
                    body = {"node": name, "revision": revision, "listen": ""}
                    a = await client.post(ACK, json=body, headers=auth)
                    if a.status_code != 200:
                        raise s.BenchError(f"ack {a.status_code} {a.text[:200]}")
                    since = revision
                    self.acks += 1
                elif r.status_code != 204:
                    raise s.BenchError(f"sync {r.status_code} {r.text[:200]}")
            except (httpx.HTTPError, s.BenchError) as exc:
                self.errors.append(f"{name}: {exc}")
                await asyncio.sleep(1)
        await client.request("DELETE", SYNC, params={"node": name}, headers=auth)

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        # Polls end by their own timeout at the latest.
        self._thread.join(timeout=self.poll + 40)


def pg_sample(url: str) -> tuple[float, float]:
    """(transactions so far, CPU seconds of the database's backends so far)."""
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as c:
        row = c.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone()
        pids = [
            p
            for (p,) in c.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            ).fetchall()
        ]
    return float(row[0] if row else 0), sum(cpu_seconds(p, children=False) for p in pids)


def measure(ctx: s.Context, keyops: s.Server, api: s.Api, n: int) -> list[str]:
    a = ctx.args
    env = f"fleet-{n}"
    api.call("POST", "/apiops/admin/environments/", json={"name": env, "type": "TEST"})
    made, tokens = s.timed(
        lambda: s.concurrently(
            lambda i: api.call(
                "POST", f"/apiops/admin/environments/{env}/node-tokens/", json={"name": f"sim-{i}"}
            )["result"]["token"],
            range(n),
        )
    )
    pem = [s.rsa_certificate(f"fleet-{n}-{i}.bench.example").pem for i in range(2)]
    api.create_certificate(s.DEMO_PROJECT, env, pem[0], [env])
    print(f"  {n} nodes: {n} credentials in {made:.1f} s", flush=True)
    fleet = Fleet(keyops.base_url, tokens, a.poll)
    try:
        started = time.monotonic()
        while True:
            rows = api.call("GET", f"/apiops/environments/{env}/nodes/")["resultList"]
            connected = sum(1 for r in rows if r["connected"])
            if connected == n:
                break
            if time.monotonic() - started > 120:
                raise s.BenchError(
                    f"{connected} of {n} nodes connected after 120 s: {fleet.errors[:3]}"
                )
            time.sleep(0.5)
        print(f"  {n} nodes connected in {time.monotonic() - started:.1f} s", flush=True)
        time.sleep(min(5.0, a.poll))  # the connecting burst is over
        pid = keyops.process.pid
        postgres = ctx.db == "postgresql"
        c0, w0 = cpu_seconds(pid), time.monotonic()
        x0, p0 = pg_sample(ctx.database_url) if postgres else (0.0, 0.0)
        time.sleep(a.idle)
        c1, w1 = cpu_seconds(pid), time.monotonic()
        x1, p1 = pg_sample(ctx.database_url) if postgres else (0.0, 0.0)
        span = w1 - w0
        idle = f"idle: manager CPU {100 * (c1 - c0) / span:.1f}% of a core"
        if postgres:
            backends = 100 * (p1 - p0) / span
            idle += f", PostgreSQL backends {backends:.1f}%, {(x1 - x0) / span:.1f} transactions/s"
        print(f"  {n} nodes {idle}", flush=True)
        took = []
        for i in range(a.updates):
            elapsed, answer = s.timed(
                lambda i=i: api.update_certificate(s.DEMO_PROJECT, env, pem[(i + 1) % 2], [env])
            )
            (result,) = answer["deploymentResult"]["environmentResults"]
            want = f"Deployed successfully; {n} of {n} gateway node(s) applied it"
            if result["message"] != want:
                raise s.BenchError(f"update {i}: {result['message']}")
            took.append(elapsed)
        if fleet.errors:
            raise s.BenchError(f"{len(fleet.errors)} node errors, e.g. {fleet.errors[:3]}")
        median = statistics.median(took)
        update = f"update until the last ack: median {median:.2f} s, max {max(took):.2f} s"
        print(f"  {n} nodes {update}", flush=True)
        return [f"{n:5d} nodes  {idle}", f"{n:5d} nodes  {update}"]
    finally:
        fleet.stop()


def bench(ctx: s.Context) -> list[str]:
    a = ctx.args
    env = {
        "KEYOPS_GATEWAY_POLL_SECONDS": str(a.poll),
        "KEYOPS_DEPLOY_TIMEOUT_SECONDS": "60",
    }
    lines: list[str] = []
    with s.keyops_server(ctx.target, ctx.database_url, ctx.workdir, extra_env=env) as keyops:
        api = s.Api(keyops.base_url, s.issue_token(keyops.base_url))
        for n in a.nodes:
            lines += measure(ctx, keyops, api, n)
            keyops.check_alive()
    return lines


def main() -> int:
    p = s.parser(__doc__)
    p.set_defaults(db="postgresql", deadline=1200)
    p.add_argument(
        "--nodes", type=lambda v: [int(x) for x in v.split(",")], default=[10, 100, 1000]
    )
    p.add_argument("--idle", type=float, default=20.0, help="seconds of idle measured")
    p.add_argument("--updates", type=int, default=3)
    p.add_argument("--poll", type=float, default=20.0, help="KEYOPS_GATEWAY_POLL_SECONDS")
    return s.run(
        p.parse_args(), "gateway fleet: idle cost and update fan-out", bench, needs_wrk=False
    )


if __name__ == "__main__":
    sys.exit(main())
