"""The deployment interface every resource kind and every kind of environment shares."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from keyops.config import Settings
from keyops.secrets import Keyring
from keyops.storage.db import Database


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """Names an artifact in an environment: what kind, from which project, which one."""

    kind: str
    project: str
    name: str


@dataclass(frozen=True, slots=True)
class Artifact:
    """Material as an environment receives it."""

    ref: ArtifactRef
    content: bytes
    alias: str | None = None
    # True when the content holds private material: targets must keep it sealed at rest.
    sensitive: bool = False
    # SHA-256 of the content, hex; worked out once (a change reads it per row it writes).
    content_hash: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "content_hash", hashlib.sha256(self.content).hexdigest())


@dataclass(frozen=True, slots=True)
class EnvironmentRef:
    id: int
    name: str
    target: str


@dataclass(frozen=True, slots=True)
class EnvironmentChange:
    """Everything one operation changes in one environment, applied as one step."""

    environment: EnvironmentRef
    # The change's place in the global order of changes; a target keeps, per artifact,
    # the newest revision it has seen and ignores older ones that arrive late.
    revision: int
    deploy: tuple[Artifact, ...] = ()
    undeploy: tuple[ArtifactRef, ...] = ()


@dataclass(frozen=True, slots=True)
class EnvironmentResult:
    environment_name: str
    success: bool
    message: str


@dataclass(frozen=True, slots=True)
class DeploymentResult:
    success: bool
    message: str
    environment_results: tuple[EnvironmentResult, ...] = field(default_factory=tuple)

    def as_contract(self) -> dict[str, object]:
        """The ``deploymentResult`` object of the contract."""
        return {
            "success": self.success,
            "message": self.message,
            "environmentResults": [
                {"environmentName": r.environment_name, "success": r.success, "message": r.message}
                for r in self.environment_results
            ],
        }


class DeploymentError(Exception):
    """A target could not apply a change; the text is shown to the caller."""


@runtime_checkable
class Target(Protocol):
    """A kind of environment that can receive changes.

    ``apply`` either applies the whole change and returns what to tell the caller
    (None for the plain "Deployed successfully"), or raises; a target never reports
    success for a change it did not apply.
    """

    async def apply(self, change: EnvironmentChange) -> str | None: ...


@dataclass(frozen=True, slots=True)
class TargetContext:
    """What a target may use: the database, the settings and the master keyring."""

    db: Database
    settings: Settings
    keyring: Keyring
