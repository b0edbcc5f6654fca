"""Certificates: validate, store and plan their roll-out; the seed's atomic replacement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keyops.crypto.x509 import CertificateParseError, ParsedCertificate, parse_certificate
from keyops.deploy.plan import ChangePlan
from keyops.domain.artifacts import certificate_artifact, certificate_ref
from keyops.domain.common import undeploy_from
from keyops.domain.environments import EnvironmentService
from keyops.domain.jwks import JwkFollower, JwkUpdate
from keyops.domain.users import check_resource_name
from keyops.errors import BadRequest
from keyops.secrets import Keyring
from keyops.storage.integrity import is_unique_violation
from keyops.storage.models import Certificate, CertificateEnvironment, Environment, Project
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.certificates import CertificateRepository

MAX_NAME = 200


@dataclass(slots=True)
class CertificateInput:
    """The multipart form of create and update, before validation."""

    name: str | None
    alias: str | None
    description: str | None
    environment_names: list[str] = field(default_factory=list)
    pem: bytes | None = None


@dataclass(frozen=True, slots=True)
class CertificateChange:
    certificate: Certificate
    plan: ChangePlan


def _required(field_name: str, value: str | None) -> str:
    if value is None or not value.strip():
        raise BadRequest(f"{field_name} value can not be empty!")
    return value.strip()


def parse_environment_list(values: Sequence[str]) -> list[str]:
    """Names from comma-separated and/or repeated ``environmentList`` fields, deduplicated."""
    names: list[str] = []
    for value in values:
        names.extend(n.strip() for n in value.split(","))
    return list(dict.fromkeys(n for n in names if n))


class CertificateService:
    def __init__(
        self, session: Session, environments: EnvironmentService, keyring: Keyring
    ) -> None:
        self.session = session
        self.certificates = CertificateRepository(session)
        self.environments = environments
        self.keyring = keyring

    def _validate(
        self, project: Project, inp: CertificateInput
    ) -> tuple[ParsedCertificate, str, str, list[Environment]]:
        alias = _required("alias", inp.alias)
        if len(alias) > MAX_NAME:
            raise BadRequest(f"alias must be at most {MAX_NAME} characters!")
        if inp.pem is None or not inp.pem.strip():
            raise BadRequest("pemEncodedFile value can not be empty!")
        if not inp.environment_names:
            raise BadRequest("environmentList value can not be empty!")
        description = _required("certificateDescription", inp.description)
        try:
            parsed = parse_certificate(inp.pem)
        except CertificateParseError as exc:
            raise BadRequest(exc.reason) from None
        envs = self.environments.resolve_for_project(inp.environment_names, project)
        return parsed, alias, description, envs

    def _check_alias(
        self, project: Project, envs: Sequence[Environment], alias: str, except_id: int | None
    ) -> None:
        taken = self.certificates.aliases_taken(
            project.id, [e.id for e in envs], alias, except_id=except_id
        )
        if taken:
            raise _alias_taken(alias)

    def create(self, project: Project, inp: CertificateInput) -> CertificateChange:
        name = check_resource_name("certificateName", _required("certificateName", inp.name))
        parsed, alias, description, envs = self._validate(project, inp)
        if self.certificates.get(project.id, name) is not None:
            raise _already_exists(name)
        try:
            self._check_alias(project, envs, alias, None)
        except BadRequest:
            # A concurrent create of this very name may have committed between the two
            # checks (each statement sees the latest commit): report the name, as the
            # first check would have.
            if self.certificates.get(project.id, name) is not None:
                raise _already_exists(name) from None
            raise
        certificate = Certificate(project_id=project.id, name=name, description=description)
        try:
            self.certificates.add(certificate)
            self.certificates.replace_environments(certificate, _rows(project, envs, alias, parsed))
        except IntegrityError as exc:
            raise _translate(exc, name, alias) from None
        plan = ChangePlan()
        for env, row in zip(envs, certificate.environments, strict=True):
            plan.deploy(env, certificate_artifact(project.name, name, row))
        return CertificateChange(certificate, plan)

    def update(
        self, project: Project, name: str, inp: CertificateInput, jwk_update: JwkUpdate
    ) -> CertificateChange:
        """Replace the certificate whole, in this transaction; a refusal changes nothing."""
        if inp.name is not None and inp.name.strip() and inp.name.strip() != name:
            raise BadRequest(
                f"certificateName ({inp.name.strip()}) can not be changed; it must match the"
                f" name in the path ({name})!"
            )
        certificate = self.certificates.get(project.id, name, for_update=True)
        if certificate is None:
            raise not_found(name)
        parsed, alias, description, envs = self._validate(project, inp)
        self._check_alias(project, envs, alias, certificate.id)
        old_env_ids = {row.environment_id for row in certificate.environments}
        jwks = JwkFollower(self.session, self.environments, self.keyring)
        # Re-derivation is checked before anything is written: a JWK whose algorithm does
        # not fit the new key refuses the whole update.
        jwk_plan = jwks.plan(
            "certificate",
            certificate.id,
            project,
            lambda jwk: jwks.derive_from_certificate(jwk, parsed),
            jwk_update,
        )
        try:
            self.certificates.replace_environments(certificate, _rows(project, envs, alias, parsed))
        except IntegrityError as exc:
            raise _translate(exc, name, alias) from None
        certificate.description = description
        certificate.version += 1
        certificate.updated_at = utcnow()
        plan = ChangePlan()
        for env, row in zip(envs, certificate.environments, strict=True):
            plan.deploy(env, certificate_artifact(project.name, name, row))
        undeploy_from(
            self.session,
            plan,
            old_env_ids - {e.id for e in envs},
            certificate_ref(project.name, name),
        )
        jwks.apply(jwk_plan, plan)
        return CertificateChange(certificate, plan)

    def delete(self, project: Project, name: str) -> CertificateChange:
        certificate = self.certificates.get(project.id, name, for_update=True)
        if certificate is None:
            raise not_found(name)
        plan = ChangePlan()
        undeploy_from(
            self.session,
            plan,
            (row.environment_id for row in certificate.environments),
            certificate_ref(project.name, name),
        )
        # JWKs derived from it keep their material; the database clears their source.
        self.certificates.delete(certificate)
        return CertificateChange(certificate, plan)

    def get(self, project: Project, name: str) -> Certificate:
        certificate = self.certificates.get(project.id, name)
        if certificate is None:
            raise not_found(name)
        return certificate

    def listing(self, project: Project) -> tuple[Sequence[Certificate], dict[int, str]]:
        """The project's certificates (without their DER) and their environments' names."""
        return self.certificates.listing(project.id)

    def environment_names(self, certificate: Certificate) -> dict[int, str]:
        return self.certificates.environment_names(certificate)


def _rows(
    project: Project, envs: Sequence[Environment], alias: str, parsed: ParsedCertificate
) -> list[CertificateEnvironment]:
    return [
        CertificateEnvironment(
            project_id=project.id,
            environment_id=env.id,
            position=i,
            alias=alias,
            der=parsed.der,
            sha1_thumbprint=parsed.sha1_thumbprint,
            subject_dn=parsed.subject_dn,
            not_before=parsed.not_before,
            not_after=parsed.not_after,
        )
        for i, env in enumerate(envs)
    ]


def not_found(name: str) -> BadRequest:
    return BadRequest(f"Certificate (name: {name}) is not found!")


def _already_exists(name: str) -> BadRequest:
    return BadRequest(f"Certificate (name: {name}) is already exist!")


def _alias_taken(alias: str) -> BadRequest:
    return BadRequest(
        f"Alias ({alias}) is already used for another certificate, try changing this value!"
    )


def _translate(exc: IntegrityError, name: str, alias: str) -> BadRequest:
    """A concurrent writer won the race: report it as the check that lost would have."""
    if is_unique_violation(exc, "alias"):
        return _alias_taken(alias)
    if is_unique_violation(exc, "certificates") and is_unique_violation(exc, "name"):
        return _already_exists(name)
    raise exc
