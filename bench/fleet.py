"""A gateway fleet: N simulated nodes against one manager, idle cost and update fan-out.

    python bench/fleet.py [--db postgresql|sqlite|both] [--nodes 10,100,1000]
                          [--idle 40] [--updates 5] [--poll 20] [--deploy-timeout 60]
                          [--fleet-processes 1] [--deadline 1200]

One real ``keyops serve --demo`` (default: a fresh PostgreSQL database, created for the
run and dropped afterwards; node TTL 30 s as by default, ``KEYOPS_GATEWAY_POLL_SECONDS``
``--poll``, ``KEYOPS_DEPLOY_TIMEOUT_SECONDS`` ``--deploy-timeout``, so that an update
answers when the last node acked, however long that takes).
For each N (0 is allowed: the baseline, no node), an environment of its own with N node
credentials (one per node, through the admin API), a certificate deployed to it, and N
simulated nodes in ``--fleet-processes`` child processes of the bench (``fleet.py
--fleet-worker``; never the manager's process, so their CPU is not counted as its). Each
node speaks the node protocol with the node's own client
(``keyops.gateway.client.ManagerClient``: one kept connection per node, its own
credential): long-poll ``GET /apiops/gateway/sync/`` with ``since``, then
``POST /apiops/gateway/ack/`` of the revision the snapshot carries, as a real node does,
minus applying the snapshot; a goodbye (``DELETE .../sync/``) when the fleet stops. The
children report every snapshot received and every ack answered, with its
``time.monotonic()`` (one clock for every process of the machine), on stdout. Once all N
are connected and acknowledged the environment's revision (``GET .../nodes/`` says so),
and 15 s more (the connecting burst is over and PostgreSQL's statistics have caught up
with it):

* idle, for ``--idle`` s (make it a multiple of ``--poll``: every node re-polls the
  same number of times in it), with the machine's load average printed beside it: the
  manager's CPU (its process and reaped children, from ``/proc``), its RSS and open
  files, the node processes' CPU and RSS; on PostgreSQL, from ``pg_stat_database`` read
  on one connection of the bench's own (its own one commit per sample subtracted),
  commits/s, rollbacks/s (keyops ends a read-only transaction with a rollback), new
  connections/s (``sessions``), and the CPU of the database's backends (per backend,
  from ``/proc``; PostgreSQL's own background processes are not counted);
* ``--updates`` times, 1 s apart, the seed's certificate update of that certificate:
  the PUT's own latency (its answer comes once every node acknowledged the new
  revision: it must say ``N of N gateway node(s) applied it``, and every simulated node
  must have acknowledged a newer revision), and, as the nodes saw it, the time from
  sending the PUT to the last node's snapshot and to the last node's ack answered. Each
  update is printed, then the medians.

At the end, a table of the figures (medians of the updates). The manager's log lines at
WARNING or above are printed, with each traceback's exception line. The machine is
shared and noisy (the nodes share its cores with the manager and PostgreSQL): nothing
here is asserted except that every node applied every update and no node saw an error;
a run whose load average says it was disturbed is worth repeating. The bench raises its
own open-files limit (inherited by the manager) to 2 per node + 256 when the hard limit
allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import _support as s
import psycopg

from keyops.gateway.client import ClientError, ManagerClient

SYNC = "/apiops/gateway/sync/"
ACK = "/apiops/gateway/ack/"
TICKS = os.sysconf("SC_CLK_TCK")
SETTLE_SECONDS = 15.0


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


# --- the simulated nodes: child processes of this one ----------------------------------------


async def _node(name: str, token: str, base_url: str, poll: float, stop: asyncio.Event) -> bool:
    """One simulated node until ``stop``; whether its goodbye was answered.

    The node's own client: one kept connection per node, as a real node has, and its one
    retry of a request the manager's keep-alive closed as it was sent. Every answered
    sync and ack is one JSON line on stdout (``at``: ``time.monotonic()``, the same clock
    in every process of the machine); every failure one ``error`` line.
    """
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "keyops-bench-fleet"}
    sync, ack = base_url + SYNC, base_url + ACK
    since: int | None = None

    async def until_stopped(work: Any) -> Any:
        """``work``'s answer, or None once told to stop (``work`` cancelled)."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ClientError):
                await task
            return None
        return task.result()

    async with ManagerClient(headers, connect_timeout=30) as client:
        while not stop.is_set():
            try:
                params = {"node": name, "wait": f"{poll:g}"}
                if since is not None:
                    params["since"] = str(since)
                r = await until_stopped(
                    client.request("GET", sync, params=params, within=poll + 30, limit=2**26)
                )
                if r is None:
                    break
                if r.status == 200:
                    revision = int(json.loads(r.body)["revision"])
                    _say({"got": name, "revision": revision, "at": time.monotonic()})
                    body = {"node": name, "revision": revision, "listen": ""}
                    a = await client.request("POST", ack, json_body=body, within=30)
                    if a.status != 200:
                        raise s.BenchError(f"ack {a.status} {a.body[:200]!r}")
                    since = revision
                    _say({"acked": name, "revision": revision, "at": time.monotonic()})
                elif r.status != 204:
                    raise s.BenchError(f"sync {r.status} {r.body[:200]!r}")
            except (ClientError, s.BenchError) as exc:
                _say({"error": f"{name}: {type(exc).__name__}: {exc}"})
                await asyncio.sleep(1)
        try:
            g = await client.request("DELETE", sync, params={"node": name}, within=30)
            if g.status != 200:
                raise s.BenchError(f"goodbye {g.status} {g.body[:200]!r}")
            return True
        except (ClientError, s.BenchError) as exc:
            _say({"error": f"{name}: goodbye {type(exc).__name__}: {exc}"})
            return False


def _say(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")


async def _fleet_worker() -> None:
    """A child: its nodes from the first stdin line; they stop when stdin says ``stop``
    (or closes); the last stdout line counts the goodbyes answered."""
    loop = asyncio.get_running_loop()
    job = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    stop = asyncio.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_stop, daemon=True).start()
    nodes = [_node(n, t, job["base_url"], job["poll"], stop) for n, t in job["nodes"]]
    said = await asyncio.gather(*nodes)
    _say({"goodbyes": sum(said)})
    sys.stdout.flush()


class Fleet:
    """N simulated nodes in ``processes`` child processes (``fleet.py --fleet-worker``),
    none of them the manager's; this process only reads what they report."""

    def __init__(
        self, base_url: str, tokens: list[str], poll: float, processes: int, log: Path
    ) -> None:
        names = [f"sim-{i}" for i in range(len(tokens))]
        self.errors: list[str] = []
        # name -> (the revision it last received / acknowledged, when)
        self.got: dict[str, tuple[int, float]] = {}
        self.acked: dict[str, tuple[int, float]] = {}
        self.goodbyes = 0
        self.children: list[subprocess.Popen[str]] = []
        self._readers: list[threading.Thread] = []
        pairs = list(zip(names, tokens, strict=True))
        count = max(1, min(processes, len(pairs)))
        with log.open("a") as err:
            for k in range(count if pairs else 0):
                child = subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve()), "--fleet-worker"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    start_new_session=True,
                )
                self.children.append(child)
                job = {"base_url": base_url, "poll": poll, "nodes": pairs[k::count]}
                assert child.stdin is not None
                child.stdin.write(json.dumps(job) + "\n")
                child.stdin.flush()
                reader = threading.Thread(target=self._read, args=(child,), daemon=True)
                reader.start()
                self._readers.append(reader)

    def _read(self, child: subprocess.Popen[str]) -> None:
        assert child.stdout is not None
        for line in child.stdout:
            event = json.loads(line)
            if "acked" in event:
                self.acked[event["acked"]] = (event["revision"], event["at"])
            elif "got" in event:
                self.got[event["got"]] = (event["revision"], event["at"])
            elif "error" in event:
                self.errors.append(event["error"])
            elif "goodbyes" in event:
                self.goodbyes += event["goodbyes"]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(c.pid, children=False) for c in self.children)

    def rss_mb(self) -> float:
        return sum(rss_mb(c.pid) for c in self.children)

    @staticmethod
    def _last(seen: dict[str, tuple[int, float]], revision: int | None) -> tuple[int, float]:
        got = [at for r, at in dict(seen).values() if revision is None or r >= revision]
        return len(got), max(got, default=0.0)

    def all_acked(self, revision: int | None = None) -> tuple[int, float]:
        """(how many nodes acknowledged ``revision`` or later, when the last of them did)."""
        return self._last(self.acked, revision)

    def all_got(self, revision: int) -> tuple[int, float]:
        """(how many nodes received ``revision`` or later, when the last of them did)."""
        return self._last(self.got, revision)

    def revisions(self) -> set[int]:
        return {r for r, _ in dict(self.acked).values()}

    def stop(self) -> None:
        """In-flight polls are cancelled; every node then says goodbye."""
        for child in self.children:
            with contextlib.suppress(OSError):
                assert child.stdin is not None
                child.stdin.write("stop\n")
                child.stdin.close()
        try:
            for child in self.children:
                child.wait(timeout=120)
        except subprocess.TimeoutExpired:
            raise s.BenchError("the simulated nodes did not stop within 120 s") from None
        finally:
            for child in self.children:
                if child.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
            for reader in self._readers:
                reader.join(timeout=10)


class PgSampler:
    """The database's counters and its backends' CPU, from one connection of its own.

    Each ``sample`` is one statement in autocommit: one transaction (a commit) and no new
    connection of the sampler's own between two samples, subtracted by ``between``.
    """

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        )

    def sample(self) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT d.xact_commit, d.xact_rollback, d.sessions,"
            " (SELECT coalesce(array_agg(a.pid), '{}') FROM pg_stat_activity a"
            "   WHERE a.datname = current_database() AND a.pid <> pg_backend_pid())"
            " FROM pg_stat_database d WHERE d.datname = current_database()"
        ).fetchone()
        assert row is not None
        commits, rollbacks, sessions, pids = row
        return {
            "at": time.monotonic(),
            "commits": int(commits),
            "rollbacks": int(rollbacks),
            "sessions": int(sessions),
            "cpu": {p: cpu_seconds(p, children=False) for p in pids},
        }

    @staticmethod
    def between(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        span = b["at"] - a["at"]
        # A backend alive at both samples: its CPU between them; a new one: all of it.
        cpu = sum(used - a["cpu"].get(p, 0.0) for p, used in b["cpu"].items())
        return {
            "commits": (b["commits"] - a["commits"] - 1) / span,
            "rollbacks": (b["rollbacks"] - a["rollbacks"]) / span,
            "connections": (b["sessions"] - a["sessions"]) / span,
            "cpu": 100 * max(0.0, cpu) / span,
            "backends": float(len(b["cpu"])),
        }

    def close(self) -> None:
        self.conn.close()


def rss_mb(pid: int | str = "self") -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


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
    pid = keyops.process.pid
    postgres = ctx.db == "postgresql"
    fleet = Fleet(keyops.base_url, tokens, a.poll, a.fleet_processes, ctx.workdir / "fleet.log")
    try:
        started = time.monotonic()
        while True:
            answer = api.call("GET", f"/apiops/environments/{env}/nodes/")
            rows = answer["resultList"]
            connected = sum(1 for r in rows if r["connected"])
            current = sum(1 for r in rows if r["connected"] and r["upToDate"])
            if connected == n and current == n and fleet.all_acked()[0] == n:
                break
            if time.monotonic() - started > 180:
                raise s.BenchError(
                    f"{connected} of {n} nodes connected, {current} up to date, after 180 s:"
                    f" {fleet.errors[:3]}"
                )
            time.sleep(0.5)
        print(
            f"  {n} nodes connected and up to date in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        # The connecting burst (hellos, snapshots, acks) is over, and its statistics are
        # in pg_stat_database: a PostgreSQL 15 backend reports its counters when its next
        # transaction ends at least 1 s after the last report, or after 10 s idle.
        time.sleep(SETTLE_SECONDS)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        sampler = PgSampler(ctx.database_url) if postgres else None
        try:
            c0, f0, w0 = cpu_seconds(pid), fleet.cpu_seconds(), time.monotonic()
            g0 = sampler.sample() if sampler else None
            time.sleep(a.idle)
            c1, f1, w1 = cpu_seconds(pid), fleet.cpu_seconds(), time.monotonic()
            g1 = sampler.sample() if sampler else None
        finally:
            if sampler:
                sampler.close()
        span = w1 - w0
        manager_cpu = 100 * (c1 - c0) / span
        idle = f"idle {span:.0f} s (load {load}): manager CPU {manager_cpu:.1f}% of a core"
        figures: dict[str, float] = {"n": n, "manager_cpu": manager_cpu}
        if g0 and g1:
            pg = PgSampler.between(g0, g1)
            figures.update({f"pg_{k}": v for k, v in pg.items()})
            idle += (
                f", PostgreSQL backends {pg['cpu']:.1f}% ({pg['backends']:.0f}),"
                f" {pg['commits']:.1f} commits/s + {pg['rollbacks']:.1f} rollbacks/s,"
                f" {pg['connections']:.2f} new connections/s"
            )
        fleet_cpu = 100 * (f1 - f0) / span
        resources = (
            f"manager RSS {rss_mb(pid):.0f} MB, {open_fds(pid)} fds;"
            f" the {n} nodes ({len(fleet.children)} process(es)) RSS {fleet.rss_mb():.0f} MB,"
            f" CPU {fleet_cpu:.1f}% at idle"
        )
        figures.update({"fleet_cpu": fleet_cpu, "manager_rss": rss_mb(pid)})
        print(f"  {n} nodes {idle}", flush=True)
        print(f"  {n} nodes {resources}", flush=True)
        if fleet.errors:
            raise s.BenchError(f"{len(fleet.errors)} node errors, e.g. {fleet.errors[:3]}")
        took: list[float] = []
        last_gets: list[float] = []
        last_acks: list[float] = []
        for i in range(a.updates):
            time.sleep(1.0)  # the nodes are back in their polls
            before = max(fleet.revisions(), default=0)
            sent = time.monotonic()
            elapsed, answer = s.timed(
                lambda i=i: api.update_certificate(s.DEMO_PROJECT, env, pem[(i + 1) % 2], [env])
            )
            (result,) = answer["deploymentResult"]["environmentResults"]
            want = (
                f"Deployed successfully; {n} of {n} gateway node(s) applied it"
                if n
                else "Deployed successfully; no gateway node is connected to this environment"
            )
            if result["message"] != want:
                raise s.BenchError(f"update {i}: {result['message']!r}, not {want!r}")
            step = f"    update {i + 1}: PUT answered in {elapsed:.2f} s"
            if n:
                # The manager may answer before the last ack's own answer reached its node.
                waited = time.monotonic() + 5
                while (count := fleet.all_acked(before + 1)[0]) != n and time.monotonic() < waited:
                    time.sleep(0.05)
                count, last = fleet.all_acked(before + 1)
                if count != n:
                    raise s.BenchError(
                        f"update {i}: answered {result['message']!r} but {count} of {n}"
                        f" simulated nodes acknowledged a revision after {before}"
                    )
                _, got = fleet.all_got(before + 1)
                last_gets.append(got - sent)
                last_acks.append(last - sent)
                step += f", last snapshot received {got - sent:.2f} s, last ack {last - sent:.2f} s"
            print(step, flush=True)
            took.append(elapsed)
        if fleet.errors:
            raise s.BenchError(f"{len(fleet.errors)} node errors, e.g. {fleet.errors[:3]}")
        median = statistics.median(took)
        update = f"{len(took)} updates: PUT answered median {median:.2f} s, max {max(took):.2f} s"
        figures["update_median"] = median
        if last_acks:
            figures["last_ack_median"] = statistics.median(last_acks)
            update += (
                f"; last snapshot received median {statistics.median(last_gets):.2f} s,"
                f" last ack median {figures['last_ack_median']:.2f} s,"
                f" max {max(last_acks):.2f} s"
            )
        print(f"  {n} nodes {update}", flush=True)
        ctx.args.figures.append({"db": ctx.db, **figures})
        return [f"{n:5d} nodes  {idle}", f"{n:5d} nodes  {resources}", f"{n:5d} nodes  {update}"]
    finally:
        fleet.stop()
        if n and fleet.goodbyes != n:
            print(f"  warning: {fleet.goodbyes} of {n} nodes said goodbye", flush=True)


def warnings(log: str) -> list[str]:
    """The log's WARNING and ERROR lines, each traceback's exception line after its own."""
    found: list[str] = []
    in_traceback = False
    for line in log.splitlines():
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            found.append(f"  {line}")
            in_traceback = False
        elif "ERROR" in line or "WARNING" in line:
            found.append(line)
    return found


def bench(ctx: s.Context) -> list[str]:
    a = ctx.args
    env = {
        "KEYOPS_GATEWAY_POLL_SECONDS": str(a.poll),
        "KEYOPS_DEPLOY_TIMEOUT_SECONDS": f"{a.deploy_timeout:g}",
    }
    lines: list[str] = []
    with s.keyops_server(ctx.target, ctx.database_url, ctx.workdir, extra_env=env) as keyops:
        api = s.Api(keyops.base_url, s.issue_token(keyops.base_url))
        try:
            for n in a.nodes:
                lines += measure(ctx, keyops, api, n)
                keyops.check_alive()
        finally:
            errors = warnings(keyops.log_path.read_text(errors="replace"))
            if errors:
                print(f"  the manager logged {len(errors)} warning/error line(s):", flush=True)
                for line in errors[:20]:
                    print(f"    {line}", flush=True)
                lines.append(f"the manager logged {len(errors)} warning/error line(s)")
    return lines


def table(figures: list[dict[str, Any]]) -> str:
    rows = [
        "| db | nodes | manager CPU at idle | PG backends CPU at idle | PG commits/s at idle"
        " (+ rollbacks/s) | new PG connections/s | update to last node's ack (median)"
        " | update PUT (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        if "pg_commits" in f:
            pg = (
                f"{f['pg_cpu']:.1f}%",
                f"{f['pg_commits']:.1f} (+ {f['pg_rollbacks']:.1f})",
                f"{f['pg_connections']:.2f}",
            )
        else:
            pg = ("-", "-", "-")
        last = f"{f['last_ack_median']:.2f} s" if "last_ack_median" in f else "-"
        update = f"{f['update_median']:.2f} s" if "update_median" in f else "-"
        rows.append(
            f"| {f['db']} | {f['n']:,} | {f['manager_cpu']:.1f}% | {pg[0]} | {pg[1]} | {pg[2]}"
            f" | {last} | {update} |"
        )
    return "\n".join(rows)


def main() -> int:
    if sys.argv[1:] == ["--fleet-worker"]:
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        asyncio.run(_fleet_worker())
        return 0
    p = s.parser(__doc__)
    p.set_defaults(db="postgresql", deadline=1200)
    p.add_argument(
        "--nodes", type=lambda v: [int(x) for x in v.split(",")], default=[10, 100, 1000]
    )
    p.add_argument(
        "--idle", type=float, default=40.0,
        help="seconds of idle measured (a multiple of --poll: every node re-polls in it)",
    )  # fmt: skip
    p.add_argument("--updates", type=int, default=5)
    p.add_argument(
        "--fleet-processes", type=int, default=1, help="child processes the nodes run in"
    )
    p.add_argument("--poll", type=float, default=20.0, help="KEYOPS_GATEWAY_POLL_SECONDS")
    p.add_argument(
        "--deploy-timeout", type=float, default=60.0, help="KEYOPS_DEPLOY_TIMEOUT_SECONDS"
    )
    args = p.parse_args()
    args.figures = []
    # Every node holds a socket here and one in the manager (which inherits the limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * max(args.nodes, default=0) + 256
    if soft != resource.RLIM_INFINITY and soft < need:
        wanted = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        if wanted < need:
            print(f"warning: open files limited to {wanted} (hard limit), {need} wanted")
    code = s.run(args, "gateway fleet: idle cost and update fan-out", bench, needs_wrk=False)
    if args.figures:
        print("\n" + table(args.figures))
    return code


if __name__ == "__main__":
    sys.exit(main())
