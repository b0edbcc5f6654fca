"""The lifecycle of a per-environment resource: create, update, delete and the reads.

``PerEnvironmentService`` runs every change the same way for every kind, over the kind's
hooks (``ResourceHooks``, ``hooks``): the checks (names, ``validate``,
``check_conflicts``), then the rows, the version kept in history (``domain/history``),
the deployment plan, the JWKs that follow the new material (``JwkFollower``), the
webhook event and the audit entry, all in the caller's transaction.

Every check runs before anything is written, so a refusal changes nothing (decision 5).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.exc import IntegrityError

from keyops.deploy.plan import ChangePlan
from keyops.deploy.target import Artifact
from keyops.domain import audit
from keyops.domain.common import undeploy_from
from keyops.domain.history import ChangeAuthor, keep_version, rename_history
from keyops.domain.jwks import JwkFollower, JwkUpdate
from keyops.domain.resources.hooks import In, M, R, ResourceHooks, V
from keyops.domain.webhooks import resource_changed
from keyops.storage.models import Environment, Project
from keyops.storage.models.base import utcnow

__all__ = ["PerEnvironmentService"]


class PerEnvironmentService(ResourceHooks[M, R, In, V]):
    """Create, replace, delete and read one kind of per-environment resource."""

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
