"""Commit a change's desired state with it, then bring environments to it.

``stage`` runs inside the change's transaction: it takes the change's revision and
writes, in bulk, every affected environment's new desired state (the deployed-artifact
rows) and revision. Only after the commit does ``roll_out`` ask targets and gateway
nodes to confirm it; it never decides what an environment should hold. An environment
whose target has not confirmed its newest revision reads ``REPUBLISH_REQUIRED`` until it
does, so a crash between commit and roll-out leaves it marked stale, never falsely
``PUBLISHED``; ``reconcile`` (at start-up and then periodically) resumes every roll-out
that was cut short.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from keyops import metrics
from keyops.config import Settings
from keyops.deploy.plan import ChangePlan
from keyops.deploy.registry import load_target_class, target_paths
from keyops.deploy.target import (
    Artifact,
    ArtifactRef,
    DeploymentResult,
    EnvironmentChange,
    EnvironmentRef,
    EnvironmentResult,
    Target,
    TargetContext,
)
from keyops.domain import audit
from keyops.secrets import Keyring, Purpose
from keyops.storage import notify
from keyops.storage.db import UNAVAILABLE, Database
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.desired import DesiredStateRepository, EnvironmentState

log = logging.getLogger("keyops.deploy")

FailureHook = Callable[[Session, list[tuple[EnvironmentChange, EnvironmentResult]]], Any]

LOCAL = "local"
NO_NODE = "no gateway node is connected to this environment"


@dataclass(frozen=True, slots=True)
class PendingEnvironment:
    """One environment of a committed change, as the roll-out receives it."""

    change: EnvironmentChange
    # The environment's revision before this change, and what its target had confirmed:
    # a target that is behind gets the whole desired state, not just this change.
    base_revision: int
    applied_before: int
    # Set when the commit itself was the delivery (the in-process target with no node).
    confirmed: str | None = None


@dataclass(frozen=True, slots=True)
class Rollout:
    revision: int
    environments: tuple[PendingEnvironment, ...]
    undeploy: bool = False


def _done(removing: bool, detail: str | None) -> str:
    done = "Undeployed successfully" if removing else "Deployed successfully"
    return f"{done}; {detail}" if detail else done


def _removing(change: EnvironmentChange, undeploy: bool) -> bool:
    # An environment a change only takes something out of (one dropped from an update's
    # environmentList) is undeployed, whatever the operation is called.
    return undeploy or (bool(change.undeploy) and not change.deploy)


def _attempt_rows(change: EnvironmentChange, success: bool, message: str) -> list[dict[str, Any]]:
    common = {
        "environment_id": change.environment.id,
        "revision": change.revision,
        "success": success,
        "message": message,
    }
    rows = [
        {
            **common,
            "action": "UNDEPLOY",
            "kind": r.kind,
            "project": r.project,
            "name": r.name,
            "content_hash": None,
        }
        for r in change.undeploy
    ]
    rows += [
        {
            **common,
            "action": "DEPLOY",
            "kind": a.ref.kind,
            "project": a.ref.project,
            "name": a.ref.name,
            "content_hash": a.content_hash,
        }
        for a in change.deploy
    ]
    return rows


class Deployer:
    """The one way material reaches environments, whatever kind of target they are."""

    def __init__(self, db: Database, settings: Settings, keyring: Keyring) -> None:
        self.db = db
        self.settings = settings
        self.keyring = keyring
        self._context = TargetContext(db=db, settings=settings, keyring=keyring)
        self._targets: dict[str, Target] = {}
        self._in_flight: dict[int, int] = {}
        self._retry_at: dict[int, tuple[float, float]] = {}
        # Told, in the recording transaction, of every environment whose roll-out failed
        # (the webhooks' deployment_failed event; set by the app).
        self.on_failed: FailureHook | None = None

    def target(self, kind: str) -> Target:
        """The target instance of a kind, created on first use."""
        if kind not in self._targets:
            path = target_paths(self.settings).get(kind)
            if path is None:
                raise LookupError(f"no deployment target of kind {kind!r} is configured")
            instance = load_target_class(path)(self._context)
            assert isinstance(instance, Target)
            self._targets[kind] = instance
        return self._targets[kind]

    # --- inside the change's transaction -----------------------------------------------

    def stage(self, session: Session, plan: ChangePlan, *, undeploy: bool = False) -> Rollout:
        """Write the plan's desired state with the change; called by its unit of work."""
        changes_by_env = plan.pending()
        repo = DesiredStateRepository(session)
        now = utcnow()
        # An environment with nodes (connected or silent, see targets/local.py) waits for
        # its roll-out; one without is delivered by this commit.
        locked = repo.lock(changes_by_env, nodes_since=now - self._node_forget())
        states = {i: env.state for i, env in locked.items()}
        revision = repo.next_revision()
        rows: list[dict[str, Any]] = []
        for env_id, (deploy, remove) in changes_by_env.items():
            if env_id not in states:
                continue
            rows += [self._artifact_row(env_id, None, ref, revision, now) for ref in remove]
            rows += [self._artifact_row(env_id, a, a.ref, revision, now) for a in deploy]
        repo.write_artifacts(rows)
        delivered = [i for i, env in locked.items() if env.state.target == LOCAL and not env.nodes]
        waiting = [i for i in states if i not in delivered]
        repo.set_revision(delivered, revision, applied=True)
        repo.set_revision(waiting, revision, applied=False)
        pending: list[PendingEnvironment] = []
        delivered_messages: dict[int, str] = {}
        for env_id, (deploy, remove) in changes_by_env.items():
            state = states.get(env_id)
            if state is None:
                continue
            change = EnvironmentChange(
                EnvironmentRef(state.id, state.name, state.target),
                revision,
                tuple(deploy),
                tuple(remove),
            )
            confirmed = None
            if env_id in delivered:
                confirmed = _done(_removing(change, undeploy), NO_NODE)
                delivered_messages[env_id] = confirmed
            pending.append(
                PendingEnvironment(change, state.revision, state.applied_revision, confirmed)
            )
        # Made from the artifact rows just written: an ALL_PROJECTS re-derivation writes
        # thousands, and building each attempt in Python cost as much as the rows did.
        repo.add_delivered_attempts(revision, delivered_messages)
        repo.bump_projects(plan.projects)
        notify.publish(session, *(notify.environment_topic(i) for i in states))
        return Rollout(revision, tuple(pending), undeploy)

    def _artifact_row(
        self, env_id: int, artifact: Artifact | None, ref: ArtifactRef, revision: int, now: Any
    ) -> dict[str, Any]:
        content = b""
        if artifact is not None:
            content = (
                self.keyring.seal(artifact.content, Purpose.DEPLOYED_CONTENT)
                if artifact.sensitive
                else artifact.content
            )
        return {
            "environment_id": env_id,
            "kind": ref.kind,
            "project": ref.project,
            "name": ref.name,
            "content": content,
            "sealed": bool(artifact and artifact.sensitive),
            "content_hash": artifact.content_hash if artifact is not None else "",
            "alias": artifact.alias if artifact is not None else None,
            "present": artifact is not None,
            "revision": revision,
            "deployed_at": now,
        }

    def _node_forget(self) -> timedelta:
        return timedelta(seconds=self.settings.gateway_node_forget_seconds)

    # --- after the commit --------------------------------------------------------------

    async def change(
        self, work: Callable[[Session], ChangePlan], *, undeploy: bool = False
    ) -> DeploymentResult:
        """One unit of work that returns a plan, committed with its desired state, then
        rolled out."""

        def unit(session: Session) -> Rollout:
            plan = work(session)
            audit.planned(session, plan)  # audit: the change's environments
            return self.stage(session, plan, undeploy=undeploy)

        result = await self.roll_out(await self.db.write(unit))
        metrics.record_deployments(result.environment_results)
        return result

    async def roll_out(self, rollout: Rollout) -> DeploymentResult:
        """Have each environment confirm the committed state; one failure stops no other."""
        verb = "Undeployment" if rollout.undeploy else "Deployment"
        if not rollout.environments:
            return DeploymentResult(True, f"{verb} completed successfully", ())
        if all(p.confirmed is not None for p in rollout.environments):
            # The commit was the delivery everywhere (no target to wait for).
            results = [
                EnvironmentResult(p.change.environment.name, True, p.confirmed or "")
                for p in rollout.environments
            ]
            return DeploymentResult(True, f"{verb} completed successfully", tuple(results))
        for p in rollout.environments:
            self._in_flight[p.change.environment.id] = (
                self._in_flight.get(p.change.environment.id, 0) + 1
            )
        try:
            results = await asyncio.gather(
                *(self._confirm(p, undeploy=rollout.undeploy) for p in rollout.environments)
            )
        finally:
            for p in rollout.environments:
                env_id = p.change.environment.id
                self._in_flight[env_id] -= 1
                if not self._in_flight[env_id]:
                    del self._in_flight[env_id]
        await self._record(
            [
                (p.change, r)
                for p, r in zip(rollout.environments, results, strict=True)
                if p.confirmed is None
            ]
        )
        failed = sum(1 for r in results if not r.success)
        if failed:
            message = f"{verb} failed for {failed} of {len(results)} environment(s)"
        else:
            message = f"{verb} completed successfully"
        return DeploymentResult(failed == 0, message, tuple(results))

    async def _confirm(self, pending: PendingEnvironment, *, undeploy: bool) -> EnvironmentResult:
        change = pending.change
        env = change.environment
        if pending.confirmed is not None:
            return EnvironmentResult(env.name, True, pending.confirmed)
        if env.target != LOCAL and pending.applied_before < pending.base_revision:
            # The target missed an earlier change: send it everything it should hold.
            full = await self._full_change(env.id)
            if full is not None:
                change = replace(full, revision=max(full.revision, change.revision))
        return await self._apply(change, removing=_removing(pending.change, undeploy))

    async def _apply(self, change: EnvironmentChange, *, removing: bool) -> EnvironmentResult:
        env = change.environment
        # Targets wait up to the deploy timeout for their environment themselves; the
        # margin here only catches a target that never returns.
        timeout = self.settings.deploy_timeout_seconds + 2.0
        try:
            detail = await asyncio.wait_for(self.target(env.target).apply(change), timeout)
        except TimeoutError:
            reason = f"no answer within {timeout:g} s"
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            log.warning("deployment to %s failed: %s", env.name, type(exc).__name__)
        else:
            return EnvironmentResult(env.name, True, _done(removing, detail))
        what = "Undeployment" if removing else "Deployment"
        return EnvironmentResult(
            env.name,
            False,
            f"{what} failed: {reason}. The change is saved; the environment needs a republish.",
        )

    async def _record(
        self, outcomes: Sequence[tuple[EnvironmentChange, EnvironmentResult]]
    ) -> None:
        if not outcomes:
            return

        def record(session: Session) -> None:
            repo = DesiredStateRepository(session)
            attempts: list[dict[str, Any]] = []
            for change, result in outcomes:
                attempts += _attempt_rows(change, result.success, result.message)
            repo.add_attempts(attempts)
            if self.on_failed is not None:
                self.on_failed(session, [(c, r) for c, r in outcomes if not r.success])
            repo.confirm(
                (change.environment.id, change.revision)
                for change, result in outcomes
                if result.success
            )

        await self.db.write(record)
        for change, result in outcomes:
            if result.success:
                self._retry_at.pop(change.environment.id, None)

    async def _full_change(self, env_id: int) -> EnvironmentChange | None:
        """Everything the environment should hold, as one change at its revision."""

        def read(session: Session) -> tuple[EnvironmentState | None, list[Any]]:
            repo = DesiredStateRepository(session)
            return repo.state(env_id), repo.artifacts(env_id)

        state, rows = await self.db.read(read)
        if state is None:
            return None
        deploy = []
        remove = []
        for row in rows:
            ref = ArtifactRef(row.kind, row.project, row.name)
            if not row.present:
                remove.append(ref)
                continue
            content = (
                self.keyring.open(row.content, Purpose.DEPLOYED_CONTENT)
                if row.sealed
                else row.content
            )
            deploy.append(Artifact(ref, content, alias=row.alias, sensitive=row.sealed))
        return EnvironmentChange(
            EnvironmentRef(state.id, state.name, state.target),
            state.revision,
            tuple(deploy),
            tuple(remove),
        )

    async def resync(self, env_id: int) -> EnvironmentResult | None:
        """Bring one environment to its whole stored desired state, and record it."""
        change = await self._full_change(env_id)
        if change is None:
            return None
        self._in_flight[env_id] = self._in_flight.get(env_id, 0) + 1
        try:
            result = await self._apply(change, removing=False)
        finally:
            self._in_flight[env_id] -= 1
            if not self._in_flight[env_id]:
                del self._in_flight[env_id]
        metrics.record_deployments((result,))
        await self._record([(change, result)])
        return result

    async def reconcile(self) -> int:
        """Resume the roll-out of every environment whose target is behind (after a
        crash, a restart or a failure), retrying failures with a growing delay. Returns
        how many environments were tried."""
        behind = await self.db.read(lambda s: DesiredStateRepository(s).behind())
        now = time.monotonic()
        tried = [
            s
            for s in behind
            if s.id not in self._in_flight and self._retry_at.get(s.id, (0.0, 0.0))[0] <= now
        ]
        results = await asyncio.gather(*(self.resync(s.id) for s in tried))
        await self.trim_attempts()
        await self.remove_unused_contents()
        base = self.settings.reconcile_seconds
        for state, result in zip(tried, results, strict=True):
            if result is not None and not result.success:
                delay = min(self._retry_at.get(state.id, (0.0, base / 2))[1] * 2, 300.0)
                self._retry_at[state.id] = (time.monotonic() + delay, delay)
        return len(tried)

    async def trim_attempts(self) -> int:
        """Keep the newest ``attempts_keep`` deployment attempts per environment."""
        keep = self.settings.attempts_keep
        # A read finds who is over budget: the common case takes no write lock at all.
        over = await self.db.read(lambda s: DesiredStateRepository(s).over_attempt_budget(keep))
        if not over:
            return 0
        return await self.db.write(lambda s: DesiredStateRepository(s).trim_attempts(over, keep))

    async def remove_unused_contents(self) -> int:
        """Delete stored public content no deployed artifact points at any more."""
        unused = await self.db.read(lambda s: DesiredStateRepository(s).unused_contents())
        if not unused:
            return 0
        return await self.db.write(
            lambda s: DesiredStateRepository(s).remove_unused_contents(unused)
        )

    async def run_reconciler(self) -> None:
        """Reconcile at once, then every ``reconcile_seconds``, until cancelled."""
        while True:
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except UNAVAILABLE as exc:
                log.warning("resuming unconfirmed roll-outs paused: %s", type(exc).__name__)
            except Exception:
                log.warning("resuming unconfirmed roll-outs failed; retrying", exc_info=True)
            await asyncio.sleep(self.settings.reconcile_seconds)
