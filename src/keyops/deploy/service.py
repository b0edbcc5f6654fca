"""Fan a committed change out to its environments and record the truth of each result."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from keyops.config import Settings
from keyops.deploy.plan import ChangePlan
from keyops.deploy.registry import load_target_class, target_paths
from keyops.deploy.target import (
    DeploymentResult,
    EnvironmentChange,
    EnvironmentResult,
    Target,
    TargetContext,
)
from keyops.domain.environments import PublishStatus
from keyops.secrets import Keyring
from keyops.storage.db import Database
from keyops.storage.models import DeploymentAttempt, Environment
from keyops.storage.repositories.revisions import next_revision

log = logging.getLogger("keyops.deploy")


class Deployer:
    """The one way material reaches environments, whatever kind of target they are."""

    def __init__(self, db: Database, settings: Settings, keyring: Keyring) -> None:
        self.db = db
        self.settings = settings
        self._context = TargetContext(db=db, settings=settings, keyring=keyring)
        self._targets: dict[str, Target] = {}

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

    async def roll_out(
        self, changes: Sequence[EnvironmentChange], *, undeploy: bool = False
    ) -> DeploymentResult:
        """Apply each change to its environment concurrently; one failure stops no other."""
        verb = "Undeployment" if undeploy else "Deployment"
        if not changes:
            return DeploymentResult(True, f"{verb} completed successfully", ())
        results = await asyncio.gather(*(self._apply_one(c, undeploy=undeploy) for c in changes))
        await self._record(changes, results)
        failed = sum(1 for r in results if not r.success)
        if failed:
            message = f"{verb} failed for {failed} of {len(results)} environment(s)"
        else:
            message = f"{verb} completed successfully"
        return DeploymentResult(failed == 0, message, tuple(results))

    async def _apply_one(self, change: EnvironmentChange, *, undeploy: bool) -> EnvironmentResult:
        env = change.environment
        # Targets wait up to the deploy timeout for their environment themselves; the
        # margin here only catches a target that never returns.
        timeout = self.settings.deploy_timeout_seconds + 2.0
        detail: str | None = None
        # An environment a change only takes something out of (one dropped from an
        # update's environmentList) is undeployed, whatever the operation is called.
        removing = undeploy or (bool(change.undeploy) and not change.deploy)
        try:
            detail = await asyncio.wait_for(self.target(env.target).apply(change), timeout)
        except TimeoutError:
            reason = f"no answer within {timeout:g} s"
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            log.warning("deployment to %s failed: %s", env.name, type(exc).__name__)
        else:
            done = "Undeployed successfully" if removing else "Deployed successfully"
            return EnvironmentResult(env.name, True, f"{done}; {detail}" if detail else done)
        what = "Undeployment" if removing else "Deployment"
        return EnvironmentResult(
            env.name,
            False,
            f"{what} failed: {reason}. The change is saved; the environment needs a republish.",
        )

    async def _record(
        self, changes: Sequence[EnvironmentChange], results: Sequence[EnvironmentResult]
    ) -> None:
        async with self.db.transaction() as session:
            failed_ids = []
            for change, result in zip(changes, results, strict=True):
                env_id = change.environment.id
                if not result.success:
                    failed_ids.append(env_id)
                for ref in change.undeploy:
                    session.add(
                        DeploymentAttempt(
                            environment_id=env_id,
                            action="UNDEPLOY",
                            kind=ref.kind,
                            project=ref.project,
                            name=ref.name,
                            content_hash=None,
                            revision=change.revision,
                            success=result.success,
                            message=result.message,
                        )
                    )
                for artifact in change.deploy:
                    session.add(
                        DeploymentAttempt(
                            environment_id=env_id,
                            action="DEPLOY",
                            kind=artifact.ref.kind,
                            project=artifact.ref.project,
                            name=artifact.ref.name,
                            content_hash=artifact.content_hash,
                            revision=change.revision,
                            success=result.success,
                            message=result.message,
                        )
                    )
            if failed_ids:
                await session.execute(
                    update(Environment)
                    .where(Environment.id.in_(failed_ids))
                    .values(status=PublishStatus.REPUBLISH_REQUIRED)
                )


async def commit_and_roll_out(
    session: AsyncSession, deployer: Deployer, plan: ChangePlan, *, undeploy: bool = False
) -> DeploymentResult:
    """Stamp the change with the next revision, commit it, then push it out.

    The stored change stands whatever the environments answer; their results tell
    the truth about each of them.
    """
    revision = await next_revision(session)
    await session.commit()
    return await deployer.roll_out(plan.changes(revision), undeploy=undeploy)
