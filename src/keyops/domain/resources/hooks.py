"""What a kind of per-environment resource says of itself: the hooks of the lifecycle.

``PerEnvironmentService`` (``lifecycle``) runs create, update, delete and the reads over
these; a kind overrides what is its own:

- ``create_name`` / ``new_name``: the name of a create, the name after an update;
- ``validate``: the request's kind-specific checks, in the kind's documented order,
  returning the validated fields (``Validated``: at least environments and description);
- ``check_conflicts``: checks against other resources once the name is known (aliases);
- ``rows`` / ``assign``: the per-environment rows and the resource's own columns;
- ``artifact``: the one builder of what an environment receives, from a stored row, used
  by changes and by republish alike;
- ``derive``: which ``JwkFollower`` derivation re-derives the JWKs made from it;
- ``label``, ``exists_hint``, ``translate``: the kind's messages;
- ``fingerprint_of``, ``version_facts``, ``restore_input``: history (``domain/history``):
  what a version's fingerprint is over, its public facts, and the request restoring it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keyops.deploy.target import Artifact, ArtifactRef
from keyops.domain.common import resource_name
from keyops.domain.environments import EnvironmentService
from keyops.domain.jwks import JwkFollower
from keyops.errors import BadRequest
from keyops.secrets import Keyring
from keyops.storage.integrity import is_unique_violation
from keyops.storage.models import Environment, Jwk, Project
from keyops.storage.repositories.per_environment import PerEnvironmentRepository

__all__ = ["Derive", "Named", "ResourceHooks", "Validated"]

Derive = Callable[[Jwk], dict[str, Any] | None]


class Named(Protocol):
    """A create or update request: it may carry a name."""

    name: str | None


class Validated(Protocol):
    """What ``validate`` returns: at least the environments, in the request's order."""

    @property
    def environments(self) -> Sequence[Environment]: ...

    @property
    def description(self) -> str: ...


M = TypeVar("M", bound=Any)
R = TypeVar("R", bound=Any)
In = TypeVar("In", bound=Named)
V = TypeVar("V", bound=Validated)


class ResourceHooks(Generic[M, R, In, V]):
    """One kind of per-environment resource: its names, checks, rows, artifact, history
    and messages, with the defaults a kind may keep."""

    kind: ClassVar[str]
    label: ClassVar[str]
    repository: ClassVar[type[PerEnvironmentRepository[Any, Any]]]
    # Said after "is already exist!" when a create names a resource that exists.
    exists_hint: ClassVar[str] = ""
    # Whether create checks that the name is free before validating the rest.
    name_first: ClassVar[bool] = True

    def __init__(
        self, session: Session, environments: EnvironmentService, keyring: Keyring
    ) -> None:
        self.session = session
        self.repo: PerEnvironmentRepository[M, R] = self.repository(session)
        self.environments = environments
        self.keyring = keyring

    # --- hooks -------------------------------------------------------------------------

    def create_name(self, inp: In) -> str:
        """The checked name of a create."""
        return resource_name(self.label, inp.name)

    def new_name(self, name: str, inp: In) -> str:
        """The name after an update of ``name``: a name in the request renames it."""
        return resource_name(self.label, inp.name) if inp.name and inp.name.strip() else name

    def validate(self, project: Project, inp: In) -> V:
        """The kind's checks of the request, in its documented order."""
        raise NotImplementedError

    def check_conflicts(self, project: Project, name: str, valid: V, except_id: int | None) -> None:
        """Checks against the project's other resources; ``except_id`` is the one updated."""

    def check_delete(self, project: Project, resource: M) -> None:
        """Checks before a delete: something else may still need the resource."""

    def rows(self, project: Project, valid: V) -> list[R]:
        """The per-environment rows, in the order of ``valid.environments``."""
        raise NotImplementedError

    def assign(self, resource: M, valid: V) -> None:
        """Set the resource's own columns from the request."""
        resource.description = valid.description

    def artifact(self, project_name: str, resource: M, row: R) -> Artifact:
        """What an environment holds of the resource: built from its stored row."""
        raise NotImplementedError

    def derive(self, follower: JwkFollower, valid: V) -> Derive:
        """How a JWK derived from the resource is derived from the new material."""
        raise NotImplementedError

    def fingerprint_of(self, resource: M, row: R) -> bytes:
        """The material a version's SHA-256 fingerprint is taken over (in memory only)."""
        raise NotImplementedError

    def version_facts(self, row: R) -> dict[str, Any]:
        """Public facts a version listing shows per environment (subject, not-after)."""
        return {}

    def restore_input(
        self, name: str, attributes: dict[str, Any], rows: list[R], environment_names: list[str]
    ) -> In:
        """The update (or create) request that puts a kept version back."""
        raise NotImplementedError

    def translate(self, exc: IntegrityError, name: str, valid: V) -> Exception:
        """A concurrent writer won the race: the refusal the check that lost would give."""
        if is_unique_violation(exc, self.repo.parent.__tablename__):
            return self.already_exists(name, self.exists_hint)
        return exc

    # --- messages ----------------------------------------------------------------------

    def not_found(self, name: str) -> BadRequest:
        return BadRequest(f"{self.label} (name: {name}) is not found!")

    def already_exists(self, name: str, hint: str = "") -> BadRequest:
        return BadRequest(f"{self.label} (name: {name}) is already exist!{hint}")

    def ref(self, project_name: str, name: str) -> ArtifactRef:
        return ArtifactRef(self.kind, project_name, name)
