"""Certificates: one X.509 certificate under an alias per environment; the seed's atomic
replacement is ``PerEnvironmentService.update``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from keyops.crypto.x509 import (
    CertificateParseError,
    ParsedCertificate,
    format_instant,
    parse_certificate,
)
from keyops.deploy.target import Artifact
from keyops.domain.common import required_text
from keyops.domain.jwks import JwkFollower
from keyops.domain.resources import Derive, PerEnvironmentService
from keyops.domain.users import check_resource_name
from keyops.errors import BadRequest
from keyops.storage.integrity import is_unique_violation
from keyops.storage.models import Certificate, CertificateEnvironment, Environment, Project
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
class CertificateFields:
    parsed: ParsedCertificate
    alias: str
    description: str
    environments: Sequence[Environment]


def parse_environment_list(values: Sequence[str]) -> list[str]:
    """Names from comma-separated and/or repeated ``environmentList`` fields, deduplicated."""
    names: list[str] = []
    for value in values:
        names.extend(n.strip() for n in value.split(","))
    return list(dict.fromkeys(n for n in names if n))


class CertificateService(
    PerEnvironmentService[Certificate, CertificateEnvironment, CertificateInput, CertificateFields]
):
    kind = "certificate"
    label = "Certificate"
    repository = CertificateRepository
    # Everything in the form is checked before the name is looked up.
    name_first = False

    def create_name(self, inp: CertificateInput) -> str:
        return check_resource_name("certificateName", required_text("certificateName", inp.name))

    def new_name(self, name: str, inp: CertificateInput) -> str:
        """A certificate is never renamed: the form's name, if sent, must be the path's."""
        if inp.name is not None and inp.name.strip() and inp.name.strip() != name:
            raise BadRequest(
                f"certificateName ({inp.name.strip()}) can not be changed; it must match the"
                f" name in the path ({name})!"
            )
        return name

    def validate(self, project: Project, inp: CertificateInput) -> CertificateFields:
        alias = required_text("alias", inp.alias)
        if len(alias) > MAX_NAME:
            raise BadRequest(f"alias must be at most {MAX_NAME} characters!")
        if inp.pem is None or not inp.pem.strip():
            raise BadRequest("pemEncodedFile value can not be empty!")
        if not inp.environment_names:
            raise BadRequest("environmentList value can not be empty!")
        description = required_text("certificateDescription", inp.description)
        try:
            parsed = parse_certificate(inp.pem)
        except CertificateParseError as exc:
            raise BadRequest(exc.reason) from None
        envs = self.environments.resolve_for_project(inp.environment_names, project)
        return CertificateFields(parsed, alias, description, envs)

    def check_conflicts(
        self, project: Project, name: str, valid: CertificateFields, except_id: int | None
    ) -> None:
        """Decision 7: the alias is unique per (project, environment)."""
        repo = self.repo
        assert isinstance(repo, CertificateRepository)
        env_ids = [e.id for e in valid.environments]
        if repo.aliases_taken(project.id, env_ids, valid.alias, except_id=except_id):
            # A concurrent create of this very name may have committed between the two
            # checks (each statement sees the latest commit): report the name, as the
            # first check would have.
            if except_id is None and repo.get(project.id, name) is not None:
                raise self.already_exists(name)
            raise _alias_taken(valid.alias)

    def rows(self, project: Project, valid: CertificateFields) -> list[CertificateEnvironment]:
        parsed = valid.parsed
        return [
            CertificateEnvironment(
                project_id=project.id,
                environment_id=env.id,
                position=i,
                alias=valid.alias,
                der=parsed.der,
                sha1_thumbprint=parsed.sha1_thumbprint,
                subject_dn=parsed.subject_dn,
                not_before=parsed.not_before,
                not_after=parsed.not_after,
            )
            for i, env in enumerate(valid.environments)
        ]

    def artifact(
        self, project_name: str, resource: Certificate, row: CertificateEnvironment
    ) -> Artifact:
        """A certificate in an environment: its DER, under its alias."""
        return Artifact(self.ref(project_name, resource.name), row.der, alias=row.alias)

    def derive(self, follower: JwkFollower, valid: CertificateFields) -> Derive:
        return lambda jwk: follower.derive_from_certificate(jwk, valid.parsed)

    def fingerprint_of(self, resource: Certificate, row: CertificateEnvironment) -> bytes:
        return row.der

    def version_facts(self, row: CertificateEnvironment) -> dict[str, Any]:
        return {
            "alias": row.alias,
            "subjectDn": row.subject_dn,
            "notAfter": format_instant(row.not_after),
        }

    def restore_input(
        self,
        name: str,
        attributes: dict[str, Any],
        rows: list[CertificateEnvironment],
        environment_names: list[str],
    ) -> CertificateInput:
        # One certificate under one alias in every environment: the first row says both.
        return CertificateInput(
            name=name,
            alias=rows[0].alias,
            description=attributes.get("description", ""),
            environment_names=environment_names,
            pem=rows[0].der,
        )

    def translate(self, exc: IntegrityError, name: str, valid: CertificateFields) -> Exception:
        if is_unique_violation(exc, "alias"):
            return _alias_taken(valid.alias)
        if is_unique_violation(exc, "certificates") and is_unique_violation(exc, "name"):
            return self.already_exists(name)
        return exc


def _alias_taken(alias: str) -> BadRequest:
    return BadRequest(
        f"Alias ({alias}) is already used for another certificate, try changing this value!"
    )
