"""Deployment fan-out with a node that never answers: about the timeout, not N times it.

    python bench/fanout.py [--nodes 10] [--timeout 3] [--rounds 1] [--database-url URL]

Starts a real ``keyops serve`` (SQLite in a temporary directory unless --database-url
names a PostgreSQL database) and real gateway node processes on loopback, then times
the seed's certificate update (``PUT /apiops/projects/admin/certificates/{name}/``)
end to end, as a client sees it:

A. one environment with N nodes: all healthy (the baseline), then with one node frozen
   (SIGSTOP: its connection stays open, the manager still counts it as connected, it
   never acknowledges);
B. N environments with one node each, deployed by one request: all healthy, then with
   one environment's node frozen.

A frozen node costs one ``KEYOPS_DEPLOY_TIMEOUT_SECONDS``: nodes and environments are
waited for concurrently, so ``elapsed / timeout`` should be about 1.0-1.3, not N. The
script prints both times and that ratio and exits 1 only if a ratio is absurd (> 3).
Every process it starts is stopped on the way out, also on Ctrl-C and on its own
deadline (--deadline, default 300 s).
"""

from __future__ import annotations

import argparse
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.gateway_nodes import (  # noqa: E402 - after the sys.path line above
    ADMIN_PROJECT,
    FAST_ENV,
    Cluster,
    NodeProcess,
    environment_result,
    gateway_cluster,
    issue,
)

ABSURD = 3.0


@dataclass
class Timed:
    seconds: float
    success: bool
    messages: dict[str, str]


@dataclass
class Scenario:
    title: str
    healthy: list[Timed]
    frozen: list[Timed]
    frozen_node: str

    def ratio(self, timeout: float) -> float:
        return max(t.seconds for t in self.frozen) / timeout


def update_ca(c: Cluster, name: str, environments: Sequence[str]) -> Timed:
    """The seed's update with a new CA, timed as the client sees it."""
    pem = issue(f"bench CA {secrets.token_hex(4)}", ca=True).pem
    started = time.monotonic()
    result = c.api.update_certificate(ADMIN_PROJECT, name, pem, environments)
    seconds = time.monotonic() - started
    messages = {e: environment_result(result, e)["message"] for e in environments}
    return Timed(seconds, bool(result["success"]), messages)


def caught_up(c: Cluster, nodes: Sequence[NodeProcess]) -> None:
    for node in nodes:
        node.wait_revision(c.api.latest_revision(node.environment), timeout=30)


def measure(
    c: Cluster, ca: str, environments: Sequence[str], victim: NodeProcess, rounds: int
) -> tuple[list[Timed], list[Timed]]:
    c.api.create_certificate(ADMIN_PROJECT, ca, issue("bench CA", ca=True).pem, environments)
    caught_up(c, c.nodes)
    healthy: list[Timed] = []
    frozen: list[Timed] = []
    for _ in range(rounds):
        healthy.append(update_ca(c, ca, environments))
        victim.freeze()
        try:
            frozen.append(update_ca(c, ca, environments))
        finally:
            victim.thaw()
        # Let the frozen node catch up (and be heard from again) before the next round.
        caught_up(c, c.nodes)
    return healthy, frozen


def one_environment(
    database_url: str, root: Path, nodes: int, rounds: int, env_vars: dict[str, str]
) -> Scenario:
    tag = secrets.token_hex(3)
    env = f"fanout-{tag}"
    names = [f"{env}-node-{i:02d}" for i in range(1, nodes + 1)]
    with gateway_cluster(
        database_url, root, environment=env, node_names=names, extra_env=env_vars
    ) as c:
        victim = c.nodes[len(c.nodes) // 2]
        healthy, frozen = measure(c, f"bench-ca-one-{tag}", [env], victim, rounds)
    return Scenario(f"A. one environment, {nodes} nodes", healthy, frozen, victim.name)


def many_environments(
    database_url: str, root: Path, count: int, rounds: int, env_vars: dict[str, str]
) -> Scenario:
    tag = secrets.token_hex(3)
    envs = [f"fanout-{tag}-{i:02d}" for i in range(1, count + 1)]
    with gateway_cluster(
        database_url,
        root,
        environment=envs[0],
        node_names=[f"{envs[0]}-node"],
        extra_env=env_vars,
    ) as c:
        for env in envs[1:]:
            c.api.create_environment(env)
            c.add_nodes([f"{env}-node"], environment=env)
        c.wait_connected(c.nodes)
        victim = c.nodes[len(c.nodes) // 2]
        healthy, frozen = measure(c, f"bench-ca-many-{tag}", envs, victim, rounds)
    return Scenario(f"B. {count} environments x 1 node, one request", healthy, frozen, victim.name)


def describe(timed: Timed) -> str:
    failed = {e: m for e, m in timed.messages.items() if "failed" in m.lower()}
    if timed.success and not failed:
        sample = next(iter(timed.messages.values()))
        extra = f" (x{len(timed.messages)} environments)" if len(timed.messages) > 1 else ""
        return f"success: {sample!r}{extra}"
    return "success=false: " + "; ".join(f"{e}: {m!r}" for e, m in failed.items())


def report(scenario: Scenario, timeout: float) -> float:
    print(scenario.title)
    base = statistics.median(t.seconds for t in scenario.healthy)
    slow = max(t.seconds for t in scenario.frozen)
    print(f"  all nodes healthy : {base:6.2f} s   {describe(scenario.healthy[-1])}")
    print(f"  one node frozen   : {slow:6.2f} s   ({scenario.frozen_node} SIGSTOPped)")
    print(f"                               {describe(scenario.frozen[-1])}")
    ratio = scenario.ratio(timeout)
    print(f"  elapsed / timeout : {ratio:6.2f}     (baseline / timeout {base / timeout:.2f})")
    return ratio


def _deadline(seconds: int) -> None:
    def expired(signum: int, frame: FrameType | None) -> Any:
        raise TimeoutError(f"the benchmark did not finish within {seconds} s")

    def terminated(signum: int, frame: FrameType | None) -> Any:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, expired)
    signal.signal(signal.SIGTERM, terminated)
    signal.alarm(seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10, help="nodes (A) and environments (B)")
    parser.add_argument("--timeout", type=float, default=3.0, help="deploy timeout, seconds")
    parser.add_argument("--rounds", type=int, default=1, help="measurements per scenario")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--deadline", type=int, default=300, help="stop after this many s")
    args = parser.parse_args(argv)
    if args.nodes < 2 or args.rounds < 1:
        parser.error("--nodes must be at least 2 and --rounds at least 1")

    env_vars = {**FAST_ENV, "KEYOPS_DEPLOY_TIMEOUT_SECONDS": f"{args.timeout:g}"}
    _deadline(args.deadline)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="keyops-fanout-") as tmp:
        root = Path(tmp)
        backend = "PostgreSQL" if args.database_url else "SQLite"
        print(
            f"keyops deployment fan-out ({backend}; KEYOPS_DEPLOY_TIMEOUT_SECONDS="
            f"{args.timeout:g}, KEYOPS_GATEWAY_NODE_TTL_SECONDS="
            f"{env_vars['KEYOPS_GATEWAY_NODE_TTL_SECONDS']}, KEYOPS_GATEWAY_POLL_SECONDS="
            f"{env_vars['KEYOPS_GATEWAY_POLL_SECONDS']}; {args.rounds} round(s))",
            flush=True,
        )
        ratios = []
        for run, scenario in (("one", one_environment), ("many", many_environments)):
            url = args.database_url or f"sqlite:///{root / run / 'keyops.db'}"
            (root / run).mkdir()
            result = scenario(url, root / run, args.nodes, args.rounds, env_vars)
            ratios.append(report(result, args.timeout))
            sys.stdout.flush()
    signal.alarm(0)
    worst = max(ratios)
    verdict = "OK" if worst <= ABSURD else f"ABSURD (> {ABSURD:g})"
    took = time.monotonic() - started
    print(f"worst elapsed / timeout: {worst:.2f} -> {verdict}  [whole run {took:.0f} s]")
    return 0 if worst <= ABSURD else 1


if __name__ == "__main__":
    sys.exit(main())
