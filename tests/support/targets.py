"""Deployment targets for tests: real implementations of the Target protocol."""

from __future__ import annotations

from keyops.deploy.target import DeploymentError, EnvironmentChange, TargetContext


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
