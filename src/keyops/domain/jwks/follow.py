"""Keeping derived JWKs in step with the certificate, key or keystore they came from
(decision 4): re-derived, detached, or refusing the source's update."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from keyops.crypto.jwk import jwk_from_certificate, split_private
from keyops.crypto.keys import KeyMaterial
from keyops.crypto.keystores import KeystoreEntry
from keyops.crypto.x509 import ParsedCertificate
from keyops.deploy.plan import ChangePlan
from keyops.domain.environments import EnvironmentService
from keyops.domain.jwks.kids import KidRegistry
from keyops.domain.jwks.model import (
    JwkResult,
    JwkUpdate,
    JwkUpdateAction,
    Rederivation,
    UpdateScope,
    crypto,
    detach,
)
from keyops.domain.jwks.service import JwkService
from keyops.domain.jwks.sources import SourceResolver
from keyops.errors import BadRequest
from keyops.secrets import Keyring
from keyops.storage.models import Jwk, Project
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.projects import ProjectRepository

UPDATED, DETACHED = "UPDATED", "DETACHED"
# session.info key of the JwkResults of the unit of work (one session per transaction).
_RESULTS = "keyops.jwk_results"


class JwkFollower:
    """What replacing a source does to the JWKs derived from it, in two steps: ``plan``
    (before anything is written: a JWK that can not follow refuses the whole update),
    then ``apply`` (write them and add their roll-out to the change's plan)."""

    def __init__(
        self, session: Session, environments: EnvironmentService, keyring: Keyring
    ) -> None:
        self.session = session
        self.service = JwkService(session, environments, keyring)

    def derive_from_certificate(self, jwk: Jwk, parsed: ParsedCertificate) -> dict[str, Any]:
        return crypto(
            lambda: jwk_from_certificate(
                parsed,
                use_type=jwk.use_type,
                algorithm=jwk.algorithm,
                kid=jwk.kid if jwk.kid_given else None,
            )
        )

    def derive_from_key_material(
        self, jwk: Jwk, material: KeyMaterial | None
    ) -> dict[str, Any] | None:
        if material is None:
            return None  # its environment left the key: nothing to derive from
        kid = jwk.kid if jwk.kid_given else None
        return SourceResolver.from_material(
            material, jwk.source_type, jwk.use_type, jwk.algorithm, kid
        )

    def derive_from_entry(self, jwk: Jwk, entry: KeystoreEntry | None) -> dict[str, Any] | None:
        if entry is None:
            return None  # its alias or environment left the keystore
        kid = jwk.kid if jwk.kid_given else None
        return SourceResolver.from_entry(entry, jwk.use_type, jwk.algorithm, kid)

    def plan(
        self,
        source_kind: str,
        source_id: int,
        project: Project,
        derive: Callable[[Jwk], dict[str, Any] | None],
        jwk_update: JwkUpdate,
    ) -> list[Rederivation]:
        """Work out, before writing anything, what a source's replacement does to each
        JWK derived from it; a JWK that can not follow refuses the whole update."""
        result = []
        referencing = self.service.jwks.referencing(source_kind, source_id)
        owners = ProjectRepository(self.session).get_many(j.project_id for j in referencing)
        # Many JWKs ask the same of one source (an ALL_PROJECTS update may touch
        # thousands): derive each distinct request once.
        derived: dict[tuple[Any, ...], dict[str, Any] | None] = {}
        public: dict[tuple[Any, ...], dict[str, Any] | None] = {}
        for jwk in referencing:
            owner = owners[jwk.project_id]
            in_scope = jwk_update.action is JwkUpdateAction.UPDATE and (
                jwk_update.scope is UpdateScope.ALL_PROJECTS or jwk.project_id == project.id
            )
            new: dict[str, Any] | None = None
            key: tuple[Any, ...] = ()
            if in_scope:
                key = (
                    jwk.source_type,
                    jwk.source_environment,
                    jwk.source_alias,
                    jwk.use_type,
                    jwk.algorithm,
                    jwk.kid if jwk.kid_given else None,
                )
                try:
                    if key not in derived:
                        derived[key] = derive(jwk)
                    new = derived[key]
                except BadRequest as exc:
                    raise BadRequest(
                        f"JWK (name: {jwk.name}, project: {owner.name}) can not be re-derived"
                        f" from the new material: {exc.description}"
                    ) from None
            if new is not None and jwk.project_id != project.id:
                # The admin project's material reaches another project only as its public
                # part (decision 11); a secret key has none, so such a JWK is detached.
                if key not in public:
                    public[key] = None if new.get("kty") == "oct" else split_private(new)[0]
                new = public[key]
            result.append(Rederivation(jwk, owner, new))
        return self._unique_kids(result)

    def _unique_kids(self, items: list[Rederivation]) -> list[Rederivation]:
        """The re-derived JWKs with kids free in their JWK Sets (domain/jwks/kids.py):
        chosen kids first, then the older JWK before the newer, so the plain kid goes to
        the same JWK a create would have given it."""
        following = [i for i in items if i.new is not None]
        if not following:
            return items
        registry = KidRegistry(
            self.session,
            sorted({i.project.id for i in following}),
            leaving={i.jwk.id for i in following},
        )
        registry.preload(str(i.new.get("kid") or "") for i in following if i.new is not None)
        kids: dict[int, dict[str, Any]] = {}
        for item in sorted(following, key=lambda i: (not i.jwk.kid_given, i.jwk.id)):
            assert item.new is not None
            try:
                kids[item.jwk.id] = registry.assign(
                    item.project.id,
                    item.jwk.name,
                    item.new,
                    chosen=item.jwk.kid_given,
                    jwk_id=item.jwk.id,
                )
            except BadRequest as exc:
                raise BadRequest(
                    f"JWK (name: {item.jwk.name}, project: {item.project.name}) can not be"
                    f" re-derived from the new material: {exc.description}"
                ) from None
        return [
            Rederivation(i.jwk, i.project, kids[i.jwk.id]) if i.new is not None else i
            for i in items
        ]

    def apply(self, items: Sequence[Rederivation], plan: ChangePlan) -> list[JwkResult]:
        """Write the re-derived or detached JWKs and add their roll-out to the plan; what
        happened to each is returned and noted for the answer (``jwk_results``)."""
        now = utcnow()
        self.service.prefetch_environments(sorted({i.project.id for i in items}))
        rederived: list[dict[str, Any]] = []
        results: list[JwkResult] = []
        # Re-derived JWKs share their new material's dict (plan derives each distinct
        # request once): its stored columns are worked out once too, unless a private
        # part must be sealed for each row.
        columns: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        for item in items:
            jwk = item.jwk
            old_kid = jwk.kid
            # Either way its project's JWK list changes (source, or material).
            plan.touch_project(item.project.name)
            if item.new is None:
                jwk.updated_at = now
                detach(jwk)
                results.append(JwkResult(item.project.name, jwk.name, DETACHED, old_kid, old_kid))
                continue
            # Written below in one bulk statement (an ALL_PROJECTS update may re-derive
            # thousands); the loaded JWK shows the new values without being flushed.
            known = columns.get(id(item.new))
            if known is None or known[0] is not item.new:
                known = (item.new, self.service.columns_of(item.new))
                if known[1]["private_sealed"] is None:
                    columns[id(item.new)] = known
            values = {**known[1], "updated_at": now}
            # The loaded JWK shows its new values as already committed: written straight
            # into its state, which the ORM then neither flushes nor reloads. (What
            # ``set_committed_value`` does one attribute at a time, for a row whose
            # columns are all loaded and none changed: that cost as much as the update.)
            vars(jwk).update(values)
            rederived.append({"id": jwk.id, **values})
            self.service.deploy_everywhere(item.project, jwk, plan, item.new)
            results.append(JwkResult(item.project.name, jwk.name, UPDATED, old_kid, jwk.kid))
        self.service.jwks.update_many(rederived)
        results.sort(key=lambda r: (r.project_name, r.name))
        self.session.info.setdefault(_RESULTS, []).extend(results)
        return results


def jwk_results(session: Session) -> list[JwkResult]:
    """What the source updates of this unit of work did to the JWKs derived from them."""
    return list(session.info.get(_RESULTS, ()))
