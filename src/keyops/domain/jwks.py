"""JWKs: derived from certificates, kept in step with them, deployed to the project's
environments."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keyops.crypto.jwk import JwkError, jwk_from_certificate
from keyops.crypto.x509 import ParsedCertificate, parse_certificate
from keyops.deploy.plan import ChangePlan
from keyops.domain.artifacts import jwk_artifact, jwk_ref
from keyops.domain.environments import EnvironmentService
from keyops.domain.projects import ADMIN_PROJECT
from keyops.domain.users import check_resource_name
from keyops.errors import BadRequest
from keyops.storage.integrity import is_unique_violation
from keyops.storage.models import Certificate, Jwk, Project
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.certificates import CertificateRepository
from keyops.storage.repositories.jwks import JwkRepository
from keyops.storage.repositories.projects import ProjectRepository

SOURCE_TYPES = ("URL", "COPY_PASTE", "CERTIFICATE", "PUBLIC_KEY", "PRIVATE_KEY", "KEYSTORE")
KEY_TYPE_LABELS = {"RSA": "RSA", "EC": "EC", "oct": "OCT", "OKP": "OKP"}
MAX_NAME = 200


class JwkUpdateAction(StrEnum):
    UPDATE = "UPDATE"
    NULLIFY = "NULLIFY"


class UpdateScope(StrEnum):
    SAME_PROJECT = "SAME_PROJECT"
    ALL_PROJECTS = "ALL_PROJECTS"


@dataclass(frozen=True, slots=True)
class JwkUpdate:
    """What replacing a source does to the JWKs derived from it (decision 4)."""

    action: JwkUpdateAction = JwkUpdateAction.NULLIFY
    scope: UpdateScope | None = None


@dataclass(slots=True)
class JwkInput:
    """The JSON body of create JWK / parse-from-certificate, before validation."""

    name: str | None
    description: str | None
    source_type: str | None
    certificate_name: str | None = None
    environment_name: str | None = None
    use_type: str | None = None
    algorithm: str | None = None
    kid: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class JwkChange:
    jwk: Jwk
    plan: ChangePlan


@dataclass(frozen=True, slots=True)
class _Rederive:
    jwk: Jwk
    project: Project
    public: dict[str, Any] | None  # None: detach instead


def not_found(name: str) -> BadRequest:
    return BadRequest(f"JWK (name: {name}) is not found!")


def _already_exists(name: str) -> BadRequest:
    return BadRequest(
        f"JWK (name: {name}) is already exist! Try update operation if want to change its value."
    )


class JwkService:
    def __init__(self, session: AsyncSession, environments: EnvironmentService) -> None:
        self.session = session
        self.environments = environments
        self.jwks = JwkRepository(session)
        self.certificates = CertificateRepository(session)

    async def _source_certificate(self, project: Project, name: str) -> Certificate:
        """The certificate of this project or, failing that, of the admin project."""
        certificate = await self.certificates.get(project.id, name)
        if certificate is None and project.name != ADMIN_PROJECT:
            admin = await ProjectRepository(self.session).get_by_name(ADMIN_PROJECT)
            if admin is not None:
                certificate = await self.certificates.get(admin.id, name)
        if certificate is None:
            raise BadRequest(f"Certificate (name: {name}) is not found!")
        return certificate

    async def _deploy_everywhere(self, project: Project, jwk: Jwk, plan: ChangePlan) -> None:
        for env in await self.environments.list_for_project(project):
            plan.deploy(env, jwk_artifact(project.name, jwk))

    async def create(self, project: Project, inp: JwkInput) -> JwkChange:
        """Create a JWK; this issue's sources: CERTIFICATE."""
        if inp.name is None or not inp.name.strip():
            raise BadRequest("JWK name can not be empty!")
        name = check_resource_name("JWK name", inp.name.strip())
        if inp.source_type is None or not inp.source_type.strip():
            raise BadRequest("Source type is required!")
        source_type = inp.source_type.strip()
        if source_type == "GENERATE":
            raise BadRequest("Use the Generate JWK endpoint for the GENERATE source type!")
        if source_type not in SOURCE_TYPES:
            raise BadRequest(
                f"Source type ({source_type}) is not valid! Valid values: {', '.join(SOURCE_TYPES)}"
            )
        if source_type == "URL" and not _has(inp.url):
            raise BadRequest("URL is required for URL source type!")
        if source_type != "CERTIFICATE":
            raise BadRequest(f"Source type ({source_type}) is not supported yet!")
        if await self.jwks.get(project.id, name) is not None:
            raise _already_exists(name)
        if inp.certificate_name is None or not inp.certificate_name.strip():
            raise BadRequest("certificateName value can not be empty!")
        certificate = await self._source_certificate(project, inp.certificate_name.strip())
        if inp.environment_name is None or not inp.environment_name.strip():
            raise BadRequest("environmentName value can not be empty!")
        env_name = inp.environment_name.strip()
        names = await self.certificates.environment_names(certificate)
        row = next(
            (r for r in certificate.environments if names.get(r.environment_id) == env_name), None
        )
        if row is None:
            raise BadRequest(
                f"Certificate (name: {certificate.name}) is not deployed to environment"
                f" ({env_name})!"
            )
        parsed = parse_certificate(row.der)
        kid = inp.kid.strip() if inp.kid and inp.kid.strip() else None
        public = _derive(parsed, inp.use_type, inp.algorithm, kid)
        jwk = Jwk(
            project_id=project.id,
            name=name,
            description=(inp.description or "").strip(),
            source_type="CERTIFICATE",
            source_certificate_id=certificate.id,
            source_environment=env_name,
            key_type=public["kty"],
            use_type=inp.use_type,
            algorithm=public["alg"],
            kid=public["kid"],
            kid_given=kid is not None,
            public_json=json.dumps(public),
        )
        try:
            await self.jwks.add(jwk)
        except IntegrityError as exc:
            if is_unique_violation(exc, "jwks"):
                raise _already_exists(name) from None
            raise
        plan = ChangePlan()
        await self._deploy_everywhere(project, jwk, plan)
        return JwkChange(jwk, plan)

    async def plan_certificate_replacement(
        self,
        certificate: Certificate,
        project: Project,
        parsed: ParsedCertificate,
        jwk_update: JwkUpdate,
    ) -> list[_Rederive]:
        """Work out, without writing, what the replacement does to each referencing JWK."""
        result = []
        for jwk in await self.jwks.referencing_certificate(certificate.id):
            owner = project
            if jwk.project_id != project.id:
                found = await self.session.get(Project, jwk.project_id)
                assert found is not None, "a JWK's project is missing"
                owner = found
            in_scope = jwk_update.action is JwkUpdateAction.UPDATE and (
                jwk_update.scope is UpdateScope.ALL_PROJECTS or jwk.project_id == project.id
            )
            public = None
            if in_scope:
                try:
                    public = _derive(
                        parsed, jwk.use_type, jwk.algorithm, jwk.kid if jwk.kid_given else None
                    )
                except BadRequest as exc:
                    raise BadRequest(
                        f"JWK (name: {jwk.name}, project: {owner.name}) can not be re-derived"
                        f" from the new certificate: {exc.description}"
                    ) from None
            result.append(_Rederive(jwk, owner, public))
        return result

    async def apply_certificate_replacement(
        self, rederive: Sequence[_Rederive], plan: ChangePlan
    ) -> None:
        """Write the re-derived or detached JWKs and add their roll-out to the plan."""
        now = utcnow()
        for item in rederive:
            jwk = item.jwk
            if item.public is None:
                jwk.source_certificate_id = None
                jwk.updated_at = now
                continue
            jwk.public_json = json.dumps(item.public)
            jwk.kid = item.public["kid"]
            jwk.key_type = item.public["kty"]
            jwk.updated_at = now
            await self._deploy_everywhere(item.project, jwk, plan)

    async def get(self, project: Project, name: str) -> Jwk:
        jwk = await self.jwks.get(project.id, name)
        if jwk is None:
            raise not_found(name)
        return jwk

    async def list(self, project: Project) -> Sequence[Jwk]:
        return await self.jwks.list_for_project(project.id)

    async def delete(self, project: Project, name: str) -> JwkChange:
        jwk = await self.get(project, name)
        plan = ChangePlan()
        for env in await self.environments.list_for_project(project):
            plan.undeploy(env, jwk_ref(project.name, jwk.name))
        await self.jwks.delete(jwk)
        return JwkChange(jwk, plan)

    async def source_name(self, jwk: Jwk) -> str | None:
        """The name of the certificate the JWK comes from, if it is still attached."""
        if jwk.source_certificate_id is None:
            return None
        certificate = await self.certificates.get_by_id(jwk.source_certificate_id)
        return certificate.name if certificate else None


def _has(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _derive(
    parsed: ParsedCertificate, use_type: str | None, algorithm: str | None, kid: str | None
) -> dict[str, Any]:
    try:
        return jwk_from_certificate(parsed, use_type=use_type, algorithm=algorithm, kid=kid)
    except JwkError as exc:
        raise BadRequest(exc.reason) from None
