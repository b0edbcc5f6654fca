"""Deployment targets for tests: real implementations of the Target protocol."""

from __future__ import annotations

from keyops.deploy.target import DeploymentError, EnvironmentChange, TargetContext
from keyops.deploy.targets.local import LocalTarget


class FailingTarget:
    """An environment whose gateway is down: every change is refused."""

    def __init__(self, context: TargetContext) -> None:
        self.context = context

    async def apply(self, change: EnvironmentChange) -> str | None:
        raise DeploymentError(f"gateway of {change.environment.name} refused the connection")


class HangingTarget:
    """An environment whose gateway never answers."""

    def __init__(self, context: TargetContext) -> None:
        self.context = context

    async def apply(self, change: EnvironmentChange) -> str | None:
        import asyncio

        await asyncio.Event().wait()


class SwitchableTarget(LocalTarget):
    """The built-in target behind a switch: while the file ``targets-down/<environment>``
    exists in the manager's data dir, the environment's gateway refuses every change, as
    an unreachable one does; without it, changes land as on the built-in target.

    A file, not process state, so a test flips it while the manager is down or restarting.
    """

    def __init__(self, context: TargetContext) -> None:
        super().__init__(context)
        self.switches = context.settings.data_dir / "targets-down"

    async def apply(self, change: EnvironmentChange) -> str | None:
        if (self.switches / change.environment.name).exists():
            raise DeploymentError(f"gateway of {change.environment.name} is unreachable")
        return await super().apply(change)
