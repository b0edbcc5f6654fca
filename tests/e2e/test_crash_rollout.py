"""The manager killed (SIGKILL) in the middle of the seed's certificate update, over and over.

Issue 9: a change's desired state is committed in the same transaction as the change, the
roll-out afterwards only confirms it, and an environment whose nodes or target have not
confirmed the latest revision is ``REPUBLISH_REQUIRED`` until they do. So whenever the
manager dies, every environment either holds exactly the stored material or says it is
not up to date, and once it is back it finishes the roll-out by itself.

One real ``keyops serve`` (SQLite file or a fresh PostgreSQL database) and one real gateway
node process, with ``KEYOPS_DEPLOY_TIMEOUT_SECONDS=2``; the admin CA certificate
``crash-ca`` is in three environments:

* ``edge``: the node ``gw-a`` is connected to it;
* ``bare``: the built-in target, no node at all;
* ``down``: a target that refuses every change while a switch file exists (see
  ``SwitchableTarget`` in tests/support/targets.py); it is down during every update and
  reachable again before the manager restarts.

Each round starts the update (``PUT /apiops/projects/admin/certificates/crash-ca/``, a new
CA certificate) in a thread and SIGKILLs the manager a random time after the request is
sent: 0-300 ms, narrowed to 1.25 times the median time an update took here (a warm-up
update before the first kill, then every answered one), so that most kills land while it
is open; every fifth round waits for the answer instead and
kills 0-50 ms after it (the answered update's roll-out to ``down`` failed, so the restart
must finish it). Then it restarts the manager on the same database, data dir and port (the
node finds it by itself) and checks, as the admin API and the node's own status show it:

1. right after the restart: the stored certificate is one whole version in every
   environment (the previous one or the new one; the new one if the update answered 200);
   an environment that says ``PUBLISHED`` holds exactly it (``contentHash`` of its
   deployment = sha256 of the stored DER) and every connected node of it is up to date;
   a node (manager's list or the node itself) that has the latest revision serves exactly
   the stored certificate as its truststore;
2. within 15 s, without any call but reads (no republish): every environment is
   ``PUBLISHED`` and holds the stored certificate, the node has applied the latest
   revision and serves it, and the manager lists it connected and up to date.

20 rounds on SQLite, 10 on PostgreSQL. The delays come from a seeded RNG; the seed is in
every failure message, and ``KEYOPS_CRASH_SEED=<seed>`` replays the same delays. The test
is not vacuous: at least one kill must land while the request is open (the client sees a
transport error) and at least one after the update answered; the summary printed at the
end says how many kills came after the change was committed but before it answered.
A round takes about 3-7 s, almost all of it ``keyops serve`` starting again (imports).
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.databases import BACKENDS, database, in_ci
from tests.support.gateway_nodes import (
    ADMIN_PROJECT,
    Api,
    Cluster,
    gateway_cluster,
    issue,
    until,
)

EDGE, BARE, DOWN = "edge", "bare", "down"
ENVIRONMENTS = (EDGE, BARE, DOWN)
CERTIFICATE = "crash-ca"
KILLS = {"sqlite": 20, "postgresql": 10}
MAX_DELAY = 0.3  # a random kill comes 0-300 ms (at most) after the request is sent ...
AFTER_ANSWER_EVERY = 5  # ... except in rounds 5, 10, 15, ...: 0-50 ms after the answer
AFTER_ANSWER_DELAY = 0.05
CONVERGE_SECONDS = 15.0
ROOT = Path(__file__).resolve().parents[2]

SERVER_ENV = {
    "KEYOPS_DEPLOY_TIMEOUT_SECONDS": "2",
    "KEYOPS_EXTRA_TARGETS": "switchable=tests.support.targets:SwitchableTarget",
    # The manager imports the target from this checkout, wherever pytest was started.
    "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
}


@pytest.fixture(params=BACKENDS)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    if shutil.which("openssl") is None:
        if in_ci():
            pytest.fail("openssl is not installed; with CI=true it must be", pytrace=False)
        pytest.skip("openssl is not installed (tests.crypto.certs needs it)")
    with (
        database(request.param, tmp_path) as url,
        gateway_cluster(
            url, tmp_path, environment=EDGE, node_names=("gw-a",), extra_env=SERVER_ENV
        ) as c,
    ):
        try:
            yield c
        finally:
            print(c.logs())  # shown by pytest only when the test failed


def sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def short(digest: str | None) -> str:
    return digest[:12] if digest else str(digest)


# --- what the manager and the node say --------------------------------------------------------


@dataclass
class Observed:
    """One read of everything the invariant is about."""

    stored: dict[str, str]  # environment -> sha256 of the stored certificate's DER
    status: dict[str, str]  # environment -> PUBLISHED / REPUBLISH_REQUIRED / ...
    deployed: dict[str, str | None]  # environment -> contentHash of the deployed certificate
    latest_revision: int  # these three from one GET /apiops/environments/edge/nodes/
    nodes_status: str
    node_rows: list[dict[str, Any]]
    node_status: dict[str, Any] | None  # the node's own /status, None if it did not answer

    def describe(self) -> str:
        envs = "; ".join(
            f"{env}: status={self.status.get(env)} stored={short(self.stored.get(env))}"
            f" deployed={short(self.deployed.get(env))}"
            for env in ENVIRONMENTS
        )
        rows = [
            {
                "name": r["name"],
                "appliedRevision": r["appliedRevision"],
                "upToDate": r["upToDate"],
                "connected": r["connected"],
                "truststore": [
                    short(h) for h in (r["fingerprints"] or {}).get("truststoreSha256", [])
                ],
            }
            for r in self.node_rows
        ]
        node = self.node_status
        own = (
            None
            if node is None
            else {
                "appliedRevision": node["appliedRevision"],
                "managerReachable": node["managerReachable"],
                "truststore": [short(h) for h in node["fingerprints"]["truststoreSha256"]],
            }
        )
        return (
            f"{envs}; edge nodes: status={self.nodes_status}"
            f" latestRevision={self.latest_revision} rows={rows}; node's own status: {own}"
        )


def observe(c: Cluster) -> Observed:
    api = c.api
    (item,) = api.ok("GET", f"/apiops/projects/{ADMIN_PROJECT}/certificates/{CERTIFICATE}/")[
        "resultList"
    ]
    stored = {
        row["environmentName"]: sha256(base64.b64decode(row["base64EncodedContent"]))
        for row in item["certificateEnvironmentList"]
    }
    status: dict[str, str] = {}
    deployed: dict[str, str | None] = {}
    for env in ENVIRONMENTS:
        body = api.ok("GET", f"/apiops/environments/{env}/deployments/")
        status[env] = body["status"]
        hashes = [
            row["contentHash"]
            for row in body["resultList"]
            if row["kind"] == "certificate"
            and row["projectName"] == ADMIN_PROJECT
            and row["name"] == CERTIFICATE
        ]
        assert len(hashes) <= 1, body
        deployed[env] = hashes[0] if hashes else None
    nodes = api.nodes(EDGE)
    try:
        node_status: dict[str, Any] | None = c.nodes[0].status(timeout=2)
    except httpx.HTTPError:
        node_status = None
    return Observed(
        stored,
        status,
        deployed,
        int(nodes["latestRevision"]),
        nodes["status"],
        nodes["resultList"],
        node_status,
    )


def truststore_of(row_or_status: dict[str, Any]) -> list[str] | None:
    fingerprints = row_or_status.get("fingerprints") or {}
    found: list[str] | None = fingerprints.get("truststoreSha256")
    return found


def violations(seen: Observed) -> list[str]:
    """Where the invariant does not hold right after a restart (empty when it does)."""
    wrong: list[str] = []
    if set(seen.stored) != set(ENVIRONMENTS):
        wrong.append(f"the certificate is stored for {sorted(seen.stored)}, not {ENVIRONMENTS}")
    if len(set(seen.stored.values())) > 1:
        wrong.append("the stored certificate differs between environments (a torn update)")
    for env in ENVIRONMENTS:
        stored, deployed = seen.stored.get(env), seen.deployed.get(env)
        if seen.status[env] == "PUBLISHED" and deployed != stored:
            wrong.append(
                f"{env} says PUBLISHED but holds {short(deployed)} while {short(stored)} is stored"
            )
    stored_edge = seen.stored.get(EDGE)
    for row in seen.node_rows:
        if seen.nodes_status == "PUBLISHED" and row["connected"] and not row["upToDate"]:
            wrong.append(
                f"edge says PUBLISHED but its connected node {row['name']} is at revision"
                f" {row['appliedRevision']} < latest {seen.latest_revision}"
            )
        if row["appliedRevision"] >= seen.latest_revision and truststore_of(row) != [stored_edge]:
            wrong.append(
                f"the manager lists node {row['name']} at the latest revision"
                f" {seen.latest_revision} with truststore {truststore_of(row)},"
                f" not [{stored_edge}]"
            )
    node = seen.node_status
    if node is not None and node["appliedRevision"] == seen.latest_revision:
        if truststore_of(node) != [stored_edge]:
            wrong.append(
                f"node gw-a applied the latest revision {seen.latest_revision} but serves"
                f" truststore {truststore_of(node)}, not [{stored_edge}]"
            )
    return wrong


def converged(seen: Observed) -> bool:
    if set(seen.stored) != set(ENVIRONMENTS):
        return False
    stored = seen.stored[EDGE]
    node = seen.node_status
    return (
        all(seen.status[env] == "PUBLISHED" for env in ENVIRONMENTS)
        and all(seen.deployed[env] == stored for env in ENVIRONMENTS)
        and node is not None
        and node["managerReachable"] is True
        and node["appliedRevision"] == seen.latest_revision
        and truststore_of(node) == [stored]
        and any(
            row["name"] == "gw-a" and row["connected"] and row["upToDate"] for row in seen.node_rows
        )
    )


# --- one round -----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the client of the interrupted update saw."""

    answered: int | None = None  # HTTP status, None if the connection broke
    body: str = ""
    error: str | None = None  # the transport error's class and text
    elapsed: float | None = None  # seconds from sending to the answer


@dataclass
class Round:
    number: int
    delay: float
    outcome: Outcome
    before: str  # sha256 stored before the round
    new: str  # sha256 of the certificate the round sent
    after_answer: bool  # the kill waited for the update's answer
    stored: str = ""  # sha256 stored after the restart
    restart: float = 0.0  # seconds from the kill until the manager answered again
    converge: float = 0.0  # seconds from then until everything was PUBLISHED and applied

    def label(self) -> str:
        answered = (
            f"answered {self.outcome.answered} after {self.outcome.elapsed:.3f} s"
            if self.outcome.answered is not None
            else f"connection broke ({self.outcome.error})"
        )
        which = "new" if self.stored == self.new else "old" if self.stored == self.before else "?"
        when = "after the answer" if self.after_answer else "after sending"
        return (
            f"kill {self.number} {self.delay * 1000:.0f} ms {when}: update {answered};"
            f" stored after restart: {which} ({short(self.stored)}; before {short(self.before)},"
            f" sent {short(self.new)})"
        )


def put_certificate(base_url: str, pem: bytes, sending: threading.Event, out: Outcome) -> None:
    """The seed's update, as a pipeline sends it; ``sending`` is set just before it is sent."""
    api = Api(base_url)
    try:
        api.login()
        form = {
            "data": {
                "alias": f"{CERTIFICATE}-alias",
                "certificateDescription": "crash test",
                "environmentList": ",".join(ENVIRONMENTS),
            },
            "files": {"pemEncodedFile": ("certificate.pem", pem, "application/x-pem-file")},
        }
        sending.set()
        started = time.monotonic()
        try:
            r = api.request(
                "PUT", f"/apiops/projects/{ADMIN_PROJECT}/certificates/{CERTIFICATE}/", **form
            )
        except httpx.TransportError as exc:
            out.error = f"{type(exc).__name__}: {exc}"
            return
        out.elapsed = time.monotonic() - started
        out.answered, out.body = r.status_code, r.text[:2000]
    finally:
        sending.set()
        api.close()


def switch_target(c: Cluster, *, down: bool) -> None:
    switch = c.manager.data_dir / "targets-down" / DOWN
    if down:
        switch.parent.mkdir(parents=True, exist_ok=True)
        switch.touch()
    else:
        switch.unlink(missing_ok=True)


def reconnect_api(c: Cluster) -> None:
    """A fresh admin client: the old one's pooled connection died with the manager."""
    c.api.close()
    c.api = Api(c.manager.base_url)


def wait_converged(c: Cluster, context: str, *, timeout: float = CONVERGE_SECONDS) -> Observed:
    last: list[Observed] = []

    def check() -> Observed | None:
        seen = observe(c)
        last[:] = [seen]
        # The invariant holds all the way, not only right after the restart.
        wrong = violations(seen)
        assert not wrong, f"{context}: while converging: {'; '.join(wrong)}\n{seen.describe()}"
        return seen if converged(seen) else None

    return until(
        check,
        timeout=timeout,
        interval=0.2,
        what=lambda: (
            f"{context}: every environment PUBLISHED with the stored certificate and the"
            f" node on the latest revision serving it; last seen: "
            + (last[0].describe() if last else "nothing")
        ),
    )


# --- the test ------------------------------------------------------------------------------


def test_every_environment_is_exact_or_says_so_across_manager_kills(
    cluster: Cluster, request: pytest.FixtureRequest
) -> None:
    c = cluster
    backend = request.node.callspec.params["cluster"]
    kills = KILLS[backend]
    seed = int(os.environ.get("KEYOPS_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    replay = f"[{backend}, seed {seed}: KEYOPS_CRASH_SEED={seed} replays these delays]"
    print(f"crash rollout {replay}")
    started = time.monotonic()

    for env, target in ((BARE, "local"), (DOWN, "switchable")):
        c.api.ok(
            "POST",
            "/apiops/admin/environments/",
            json={"name": env, "type": "TEST", "projects": [], "target": target},
        )
    first = issue("crash CA 0", ca=True)
    created = c.api.create_certificate(ADMIN_PROJECT, CERTIFICATE, first.pem, list(ENVIRONMENTS))
    assert created["success"] is True, f"{replay} the first deployment failed: {created}"
    before = wait_converged(c, f"{replay} after the first deployment").stored[EDGE]
    assert before == sha256(first.der), replay

    # One update nobody kills: how long an update takes here, so that random kills can be
    # spread over about that time and most land while one is open, whatever the speed.
    warm_up = Outcome()
    sent = issue("crash CA warm-up", ca=True)
    put_certificate(c.manager.base_url, sent.pem, threading.Event(), warm_up)
    assert warm_up.answered == 200, f"{replay} the warm-up update: {warm_up.error or warm_up.body}"
    before = wait_converged(c, f"{replay} after the warm-up update").stored[EDGE]
    assert before == sha256(sent.der), replay
    took = [warm_up.elapsed or MAX_DELAY]

    rounds: list[Round] = []
    for number in range(1, kills + 1):
        span = min(MAX_DELAY, 1.25 * statistics.median(took))
        new = issue(f"crash CA {number}", ca=True)
        after_answer = number % AFTER_ANSWER_EVERY == 0
        delay = rng.uniform(0, AFTER_ANSWER_DELAY if after_answer else span)
        outcome = Outcome()
        current = Round(number, delay, outcome, before, sha256(new.der), after_answer)
        rounds.append(current)
        context = f"{replay} {current.label()}"

        switch_target(c, down=True)
        sending = threading.Event()
        update = threading.Thread(
            target=put_certificate,
            args=(c.manager.base_url, new.pem, sending, outcome),
            name=f"update-{number}",
        )
        update.start()
        assert sending.wait(30), f"{context}: the update never got to send"
        if after_answer:
            update.join(30)
            assert outcome.answered == 200, f"{context}: {outcome.error or outcome.body}"
        time.sleep(delay)
        c.manager.kill()
        update.join(30)
        assert not update.is_alive(), f"{context}: the update hangs after the kill"
        context = f"{replay} {current.label()}"
        assert outcome.answered in (None, 200), f"{context}: {outcome.body}"
        if outcome.elapsed is not None:
            took.append(outcome.elapsed)

        killed = time.monotonic()
        switch_target(c, down=False)
        c.manager.start()
        reconnect_api(c)
        current.restart = time.monotonic() - killed

        seen = observe(c)
        current.stored = seen.stored.get(EDGE, "")
        context = f"{replay} {current.label()}"
        print(context)
        wrong = violations(seen)
        assert not wrong, (
            f"{context}: right after the restart: " + "; ".join(wrong) + f"\n{seen.describe()}"
        )
        assert current.stored in (before, current.new), (
            f"{context}: the stored certificate is neither the previous nor the sent one"
        )
        if outcome.answered == 200:
            assert current.stored == current.new, (
                f"{context}: the update answered 200 but the old certificate is stored"
            )

        back = time.monotonic()
        wait_converged(c, f"{context}: after the restart")
        current.converge = time.monotonic() - back
        before = current.stored

    broke = [r for r in rounds if r.outcome.answered is None]
    committed = [r for r in broke if r.stored == r.new]
    answered = [r for r in rounds if r.outcome.answered == 200]
    summary = "\n".join(
        f"{r.label()}; restart {r.restart:.1f} s, converged in {r.converge:.1f} s" for r in rounds
    )
    elapsed = time.monotonic() - started
    print(
        f"{replay} {len(rounds)} kills in {elapsed:.1f} s: {len(broke)} while the update was"
        f" open ({len(committed)} of them after it had committed), {len(answered)} after it"
        f" answered\n{summary}"
    )
    assert broke, f"{replay} no kill landed while the update was open:\n{summary}"
    assert answered, f"{replay} no kill came after an update had answered:\n{summary}"
