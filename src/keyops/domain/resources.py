"""One lifecycle for the resources kept per environment: certificates, keys, keystores.

``PerEnvironmentService`` owns create, update (the seed's whole replacement, rename
included where the kind allows it), delete, get, listing and the desired state of an
environment; a kind says only what is its own through hooks:

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

Every check runs before anything is written, so a refusal changes nothing (decision 5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keyops.deploy.plan import ChangePlan
from keyops.deploy.target import Artifact, ArtifactRef
from keyops.domain import audit
from keyops.domain.common import resource_name, undeploy_from
from keyops.domain.environments import EnvironmentService
from keyops.domain.history import ChangeAuthor, keep_version, rename_history
from keyops.domain.jwks import JwkFollower, JwkUpdate
from keyops.domain.webhooks import resource_changed
from keyops.errors import BadRequest
from keyops.secrets import Keyring
from keyops.storage.integrity import is_unique_violation
from keyops.storage.models import Environment, Jwk, Project
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.per_environment import PerEnvironmentRepository

__all__ = ["Derive", "Named", "PerEnvironmentService", "Validated"]

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


class PerEnvironmentService(Generic[M, R, In, V]):
    """Create, replace, delete and read one kind of per-environment resource."""

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

    # --- the lifecycle -----------------------------------------------------------------

    def check_new(self, project: Project, inp: In) -> str:
        """The name of a create, refused if a resource of the project has it."""
        name = self.create_name(inp)
        if self.repo.get(project.id, name) is not None:
            raise self.already_exists(name, self.exists_hint)
        return name

    def check_existing(self, project: Project, name: str, inp: In, *, lock: bool) -> tuple[M, str]:
        """The resource an update replaces (locked if ``lock``) and its new name."""
        new_name = self.new_name(name, inp)
        resource = self.repo.get(project.id, name, for_update=lock)
        if resource is None:
            raise self.not_found(name)
        if new_name != name and self.repo.get(project.id, new_name) is not None:
            raise self.already_exists(new_name)
        return resource, new_name

    def create(self, project: Project, inp: In) -> ChangePlan:
        """Store a new resource and plan its deployment to each of its environments."""
        if self.name_first:
            name = self.check_new(project, inp)
            valid = self.validate(project, inp)
        else:
            name = self.create_name(inp)
            valid = self.validate(project, inp)
            if self.repo.get(project.id, name) is not None:
                raise self.already_exists(name, self.exists_hint)
        self.check_conflicts(project, name, valid, None)
        resource = self.repo.parent(project_id=project.id, name=name)
        self.assign(resource, valid)
        try:
            self.repo.add(resource)
            self.repo.replace_environments(resource, self.rows(project, valid))
        except IntegrityError as exc:
            raise self.translate(exc, name, valid) from None
        plan = ChangePlan()
        self._deploy(plan, project, resource, valid.environments, renamed_from=None)
        # Webhooks: the change event, enqueued in this transaction (domain/webhooks).
        resource_changed(self.session, "created", project, self.kind, name, valid.environments)
        self._audit(audit.Operation.CREATE, project, name, valid.environments, None, resource)
        return plan

    def update(
        self, project: Project, name: str, inp: In, jwk_update: JwkUpdate, author: ChangeAuthor
    ) -> ChangePlan:
        """Replace the resource whole, in this transaction; a refusal changes nothing.
        The version it replaces is kept in its history."""
        resource, new_name = self.check_existing(project, name, inp, lock=True)
        valid = self.validate(project, inp)
        self.check_conflicts(project, new_name, valid, resource.id)
        follower = JwkFollower(self.session, self.environments, self.keyring)
        # Re-derivation is checked before anything is written: a JWK that can not follow
        # the new material refuses the whole update.
        jwk_plan = follower.plan(
            self.kind, resource.id, project, self.derive(follower, valid), jwk_update
        )
        old_env_ids = {row.environment_id for row in resource.environments}
        before = self._fingerprints(resource)  # audit
        if new_name != name:
            rename_history(self, project, name, new_name)
        keep_version(self, project, resource, new_name, author, "REPLACED")
        try:
            self.repo.replace_environments(resource, self.rows(project, valid))
        except IntegrityError as exc:
            raise self.translate(exc, new_name, valid) from None
        resource.name = new_name
        self.assign(resource, valid)
        resource.version += 1
        resource.updated_at = utcnow()
        self.repo.save(resource)
        plan = ChangePlan()
        renamed_from = name if new_name != name else None
        self._deploy(plan, project, resource, valid.environments, renamed_from=renamed_from)
        self._undeploy(plan, project, name, old_env_ids - {e.id for e in valid.environments})
        follower.apply(jwk_plan, plan)
        # Webhooks: the change event, enqueued in this transaction (domain/webhooks).
        resource_changed(self.session, "replaced", project, self.kind, new_name, valid.environments)
        self._audit(audit.Operation.UPDATE, project, new_name, valid.environments, before, resource)
        return plan

    def delete(self, project: Project, name: str, author: ChangeAuthor) -> ChangePlan:
        """Remove the resource and plan its removal from every environment it was in;
        its last version is kept in its history."""
        resource = self.repo.get(project.id, name, for_update=True)
        if resource is None:
            raise self.not_found(name)
        self.check_delete(project, resource)
        keep_version(self, project, resource, name, author, "DELETED")
        audit.note(  # audit: the entry appended with this transaction's commit
            self.session,
            audit.Operation.DELETE,
            project.name,
            self.kind,
            name,
            (),  # the plan's environments (domain/audit)
            before=self._fingerprints(resource),
        )
        plan = ChangePlan()
        self._undeploy(plan, project, name, (row.environment_id for row in resource.environments))
        # Webhooks: the change event, enqueued in this transaction (domain/webhooks).
        resource_changed(
            self.session,
            "deleted",
            project,
            self.kind,
            name,
            lambda: [*self.environment_names(resource).values()],
        )
        # JWKs derived from it keep their material; the database clears their source.
        self.repo.delete(resource)
        return plan

    def get(self, project: Project, name: str) -> M:
        resource = self.repo.get(project.id, name)
        if resource is None:
            raise self.not_found(name)
        return resource

    def listing(self, project: Project) -> tuple[Sequence[M], dict[int, str]]:
        """The project's resources (without ``list_deferred`` columns) and their
        environments' names, in two statements whatever the count."""
        return self.repo.listing(project.id)

    def environment_names(self, resource: M) -> dict[int, str]:
        return self.repo.environment_names(resource)

    def desired_in(self, environment: Environment) -> list[Artifact]:
        """What the environment should hold of this kind, from stored state."""
        return [
            self.artifact(project_name, resource, row)
            for row, resource, project_name in self.repo.in_environment(environment.id)
        ]

    # --- audit (domain/audit): what the change's entry says ------------------------------

    def _fingerprints(self, resource: M) -> str | None:
        return audit.fingerprints(self.fingerprint_of(resource, r) for r in resource.environments)

    def _audit(
        self,
        operation: str,
        project: Project,
        name: str,
        environments: Sequence[Environment],
        before: str | None,
        resource: M,
    ) -> None:
        audit.note(
            self.session,
            operation,
            project.name,
            self.kind,
            name,
            [e.name for e in environments],
            before=before,
            after=self._fingerprints(resource),
        )

    def _deploy(
        self,
        plan: ChangePlan,
        project: Project,
        resource: M,
        environments: Sequence[Environment],
        *,
        renamed_from: str | None,
    ) -> None:
        for env, row in zip(environments, resource.environments, strict=True):
            plan.deploy(env, self.artifact(project.name, resource, row))
            if renamed_from is not None:
                plan.undeploy(env, self.ref(project.name, renamed_from))

    def _undeploy(
        self, plan: ChangePlan, project: Project, name: str, environment_ids: Iterable[int]
    ) -> None:
        undeploy_from(self.session, plan, environment_ids, self.ref(project.name, name))
