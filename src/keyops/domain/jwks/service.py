"""JWKs: create from a source, generate, rename, delete, read; private members sealed at
rest, deployed to every environment of their project."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keyops.crypto.jwk import split_private
from keyops.deploy.plan import ChangePlan
from keyops.domain.artifacts import jwk_artifact, jwk_content, jwk_ref
from keyops.domain.environments import EnvironmentService
from keyops.domain.jwks.kids import KidRegistry
from keyops.domain.jwks.model import (
    GenerateInput,
    JwkChange,
    JwkInput,
    already_exists,
    detach,
    jwk_name,
    not_found,
)
from keyops.domain.jwks.sources import SourceResolver
from keyops.domain.material import full_jwk
from keyops.domain.webhooks import resource_changed
from keyops.errors import BadRequest
from keyops.secrets import Keyring, Purpose
from keyops.storage.integrity import is_unique_violation
from keyops.storage.models import Jwk, Project
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.environments import EnvironmentRepository
from keyops.storage.repositories.jwks import JwkRepository


class JwkService:
    def __init__(
        self, session: Session, environments: EnvironmentService, keyring: Keyring
    ) -> None:
        self.session = session
        self.environments = environments
        self.keyring = keyring
        self.jwks = JwkRepository(session)
        self._environments: dict[int, list[Any]] = {}
        self._contents: dict[int, tuple[dict[str, Any], bytes]] = {}

    # --- reading ---------------------------------------------------------------------

    def get(self, project: Project, name: str) -> Jwk:
        jwk = self.jwks.get(project.id, name)
        if jwk is None:
            raise not_found(name)
        return jwk

    def list_in_project(self, project: Project) -> Sequence[Jwk]:
        return self.jwks.list_for_project(project.id)

    def full(self, jwk: Jwk) -> dict[str, Any]:
        """The whole JWK, private members opened (only get JWK shows this)."""
        return full_jwk(jwk, self.keyring)

    def source_names(self, jwks: Sequence[Jwk]) -> dict[int, str]:
        """JWK id -> the name of the certificate, key or keystore it is still attached
        to; one statement per source kind, whatever the count."""
        return self.jwks.source_names(jwks)

    # --- writing ---------------------------------------------------------------------

    def columns_of(self, jwk: dict[str, Any]) -> dict[str, Any]:
        """The stored columns of a JWK: public members as JSON, private ones sealed."""
        public, private = split_private(jwk)
        return {
            "public_json": json.dumps(public),
            "private_sealed": (
                self.keyring.seal(json.dumps(private).encode("utf-8"), Purpose.JWK_PRIVATE)
                if private
                else None
            ),
            "kid": str(jwk.get("kid") or ""),
            "key_type": str(jwk["kty"]),
            "algorithm": jwk.get("alg"),
        }

    def store(self, row: Jwk, jwk: dict[str, Any]) -> None:
        for column, value in self.columns_of(jwk).items():
            setattr(row, column, value)

    def artifact_of(self, project: Project, jwk: Jwk, full: dict[str, Any] | None = None) -> Any:
        """The JWK as environments receive it; ``full`` spares opening what was just sealed."""
        if full is None:
            return jwk_artifact(project.name, jwk, self.full(jwk))
        # A re-derivation gives many JWKs one dict of new material: its JSON is made once.
        known = self._contents.get(id(full))
        if known is None or known[0] is not full:
            known = self._contents[id(full)] = (full, jwk_content(full))
        return jwk_artifact(project.name, jwk, full, content=known[1])

    def environments_of(self, project: Project) -> list[Any]:
        """The environments a project's JWKs go to (every one it may use), remembered for
        the unit of work: a re-derivation touches many JWKs of few projects."""
        if project.id not in self._environments:
            self.prefetch_environments([project.id])
        return self._environments[project.id]

    def prefetch_environments(self, project_ids: Sequence[int]) -> None:
        missing = [p for p in project_ids if p not in self._environments]
        if missing:
            repo = EnvironmentRepository(self.session)
            self._environments.update(repo.usable_by_projects(missing))

    def deploy_everywhere(
        self, project: Project, jwk: Jwk, plan: ChangePlan, full: dict[str, Any] | None = None
    ) -> None:
        artifact = self.artifact_of(project, jwk, full)
        for env in self.environments_of(project):
            plan.deploy(env, artifact)

    def check_new_name(self, project: Project, name: str | None) -> str:
        """A valid JWK name that is free in the project."""
        clean = jwk_name(name)
        if self.jwks.get(project.id, clean) is not None:
            raise already_exists(clean)
        return clean

    def create(self, project: Project, inp: JwkInput, *, fetched: Any = None) -> JwkChange:
        """Create a JWK from a URL, pasted JSON, certificate, key or keystore."""
        name = self.check_new_name(project, inp.name)
        if inp.source_type is None or not inp.source_type.strip():
            raise BadRequest("Source type is required!")
        source_type = inp.source_type.strip()
        if source_type == "GENERATE":
            raise BadRequest("Use the Generate JWK endpoint for the GENERATE source type!")
        if source_type == "URL" and not (inp.url and inp.url.strip()):
            raise BadRequest("URL is required for URL source type!")
        source = SourceResolver(self.session, self.keyring).resolve(project, inp, fetched)
        row = Jwk(
            project_id=project.id,
            name=name,
            description=(inp.description or "").strip(),
            source_type=source.source_type,
            source_certificate_id=source.certificate_id,
            source_key_id=source.key_id,
            source_keystore_id=source.keystore_id,
            source_alias=source.alias,
            source_environment=source.environment,
            source_url=source.url,
            use_type=source.use_type,
            kid_given=bool(inp.kid and inp.kid.strip()),
        )
        self.store(row, self.unique_kid(project, name, source.jwk, chosen=source.kid_chosen))
        return self._insert(project, row)

    def generate(self, project: Project, inp: GenerateInput, jwk: dict[str, Any]) -> JwkChange:
        """Store a JWK generated beforehand (generation runs off the event loop)."""
        name = self.check_new_name(project, inp.name)
        row = Jwk(
            project_id=project.id,
            name=name,
            description=(inp.description or "").strip(),
            source_type="GENERATE",
            use_type={"sig": "SIGNATURE", "enc": "ENCRYPTION"}.get(str(jwk.get("use")), None),
            kid_given=bool(inp.kid and inp.kid.strip()),
        )
        self.store(row, self.unique_kid(project, name, jwk, chosen=row.kid_given))
        return self._insert(project, row)

    def unique_kid(
        self, project: Project, name: str, jwk: dict[str, Any], *, chosen: bool
    ) -> dict[str, Any]:
        """The new JWK with a kid free in the JWK Sets it goes to (domain/jwks/kids.py)."""
        return KidRegistry(self.session, [project.id]).assign(project.id, name, jwk, chosen=chosen)

    def _insert(self, project: Project, row: Jwk) -> JwkChange:
        try:
            self.jwks.add(row)
        except IntegrityError as exc:
            if is_unique_violation(exc, "jwks"):
                raise already_exists(row.name) from None
            raise
        plan = ChangePlan()
        plan.touch_project(project.name)
        self.deploy_everywhere(project, row, plan)
        self._changed("created", project, row.name)
        return JwkChange(row, plan)

    def _changed(self, event: str, project: Project, name: str) -> None:
        """The change event for webhooks subscribed to it, in this transaction."""
        resource_changed(
            self.session,
            event,
            project,
            "jwk",
            name,
            lambda: [e.name for e in self.environments_of(project)],
        )

    def update(
        self, project: Project, name: str, new_name: str | None, description: str | None
    ) -> JwkChange:
        """Rename or re-describe; the JWK is detached from its source (update-jwk.md)."""
        jwk = self.jwks.get(project.id, name)
        if jwk is None:
            raise BadRequest(f"JWK (name: {name}) is not found! Try create operation.")
        target = name
        if new_name is not None and new_name.strip() and new_name.strip() != name:
            target = jwk_name(new_name)
            if self.jwks.get(project.id, target) is not None:
                raise BadRequest(f"JWK (name: {target}) is already exist!")
        plan = ChangePlan()
        plan.touch_project(project.name)
        if target != name:
            for env in self.environments_of(project):
                plan.undeploy(env, jwk_ref(project.name, name))
        jwk.name = target
        if description is not None:
            jwk.description = description.strip()
        detach(jwk)
        jwk.updated_at = utcnow()
        try:
            self.session.flush()
        except IntegrityError as exc:
            if is_unique_violation(exc, "jwks"):
                raise BadRequest(f"JWK (name: {target}) is already exist!") from None
            raise
        self.deploy_everywhere(project, jwk, plan)
        self._changed("replaced", project, target)
        return JwkChange(jwk, plan)

    def delete(self, project: Project, name: str) -> JwkChange:
        jwk = self.get(project, name)
        plan = ChangePlan()
        plan.touch_project(project.name)
        for env in self.environments_of(project):
            plan.undeploy(env, jwk_ref(project.name, jwk.name))
        self.jwks.delete(jwk)
        self._changed("deleted", project, jwk.name)
        return JwkChange(jwk, plan)
