"""Collect what one operation changes, grouped into one change per environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from keyops.deploy.target import Artifact, ArtifactRef, EnvironmentChange, EnvironmentRef
from keyops.storage.models import Environment


@dataclass
class _Pending:
    environment: EnvironmentRef
    deploy: dict[ArtifactRef, Artifact] = field(default_factory=dict)
    undeploy: dict[ArtifactRef, None] = field(default_factory=dict)


class ChangePlan:
    """Deploys and undeploys per environment, in the order environments were first named."""

    def __init__(self) -> None:
        self._by_env: dict[int, _Pending] = {}
        self._projects: set[str] = set()

    def _pending(self, env: Environment) -> _Pending:
        if env.id not in self._by_env:
            self._by_env[env.id] = _Pending(EnvironmentRef(env.id, env.name, env.target))
        return self._by_env[env.id]

    def deploy(self, env: Environment, artifact: Artifact) -> None:
        pending = self._pending(env)
        pending.undeploy.pop(artifact.ref, None)
        pending.deploy[artifact.ref] = artifact

    def undeploy(self, env: Environment, ref: ArtifactRef) -> None:
        pending = self._pending(env)
        pending.deploy.pop(ref, None)
        pending.undeploy[ref] = None

    def touch_project(self, project: str) -> None:
        """Name a project whose resources changed although nothing of it is (un)deployed
        (a JWK of a project with no environment, a JWK detached from its source)."""
        self._projects.add(project)

    @property
    def projects(self) -> set[str]:
        """Every project whose resources the change touches."""
        named = {a.project for p in self._by_env.values() for a in p.deploy}
        named |= {r.project for p in self._by_env.values() for r in p.undeploy}
        return named | self._projects

    def touch(self, env: Environment) -> None:
        """Name an environment in the result even if nothing in it changes."""
        self._pending(env)

    def __bool__(self) -> bool:
        return bool(self._by_env or self._projects)

    def pending(self) -> dict[int, tuple[list[Artifact], list[ArtifactRef]]]:
        """Environment id -> (artifacts to deploy, refs to undeploy), in naming order."""
        return {
            env_id: (list(p.deploy.values()), list(p.undeploy))
            for env_id, p in self._by_env.items()
        }

    def changes(self, revision: int) -> list[EnvironmentChange]:
        return [
            EnvironmentChange(
                environment=p.environment,
                revision=revision,
                deploy=tuple(p.deploy.values()),
                undeploy=tuple(p.undeploy),
            )
            for p in self._by_env.values()
        ]
