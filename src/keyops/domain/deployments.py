"""What an environment should hold, what it does hold, and bringing the two together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from keyops.crypto.x509 import ParsedCertificate, parse_certificate
from keyops.deploy.plan import ChangePlan
from keyops.deploy.target import Artifact, ArtifactRef
from keyops.domain.artifacts import certificate_artifact, jwk_artifact
from keyops.domain.keys import key_artifact
from keyops.domain.keystores import keystore_artifact
from keyops.domain.material import full_jwk, key_password_of, material_of, store_of
from keyops.domain.projects import ADMIN_PROJECT
from keyops.secrets import Keyring
from keyops.storage.models import (
    Certificate,
    CertificateEnvironment,
    CryptoKey,
    CryptoKeyEnvironment,
    DeployedArtifact,
    DeploymentAttempt,
    Environment,
    Jwk,
    Keystore,
    KeystoreEnvironment,
    Project,
)
from keyops.storage.repositories.desired import DesiredStateRepository
from keyops.storage.repositories.environments import EnvironmentRepository


@dataclass(frozen=True, slots=True)
class EnvironmentDeployments:
    environment: Environment
    # What its target confirmed holding (revision <= the environment's applied
    # revision), and the committed changes it has not confirmed yet (tombstones too).
    held: Sequence[DeployedArtifact]
    pending: Sequence[DeployedArtifact]
    attempts: Sequence[DeploymentAttempt]


def deployed(
    session: Session, environment: Environment, *, attempts: int = 50
) -> EnvironmentDeployments:
    """What the environment holds, what it should still receive, and its most recent
    deployment attempts."""
    repo = DesiredStateRepository(session)
    rows = repo.rows(environment.id)
    applied = environment.applied_revision
    return EnvironmentDeployments(
        environment,
        [r for r in rows if r.present and r.revision <= applied],
        [r for r in rows if r.revision > applied],
        repo.recent_attempts(environment.id, attempts) if attempts else [],
    )


def desired(session: Session, environment: Environment, keyring: Keyring) -> list[Artifact]:
    """Everything that should be deployed to the environment according to stored state."""
    artifacts: list[Artifact] = []
    cert_rows = session.execute(
        select(CertificateEnvironment, Certificate.name, Project.name)
        .join(Certificate, Certificate.id == CertificateEnvironment.certificate_id)
        .join(Project, Project.id == Certificate.project_id)
        .where(CertificateEnvironment.environment_id == environment.id)
    )
    for row, cert_name, project_name in cert_rows.all():
        artifacts.append(certificate_artifact(project_name, cert_name, row))
    envs = EnvironmentRepository(session)
    limited = envs.limited_to(environment.id)
    jwk_stmt = select(Jwk, Project.name).join(Project, Project.id == Jwk.project_id)
    if limited:
        jwk_stmt = jwk_stmt.where(Jwk.project_id.in_(limited))
    for jwk, project_name in (session.execute(jwk_stmt)).all():
        artifacts.append(jwk_artifact(project_name, jwk, full_jwk(jwk, keyring)))
    key_rows = session.execute(
        select(CryptoKeyEnvironment, CryptoKey, Project.name)
        .join(CryptoKey, CryptoKey.id == CryptoKeyEnvironment.key_id)
        .join(Project, Project.id == CryptoKey.project_id)
        .where(CryptoKeyEnvironment.environment_id == environment.id)
    )
    for key_row, key, project_name in key_rows.all():
        material = material_of(key_row, key.key_type, keyring)
        artifacts.append(key_artifact(project_name, key.name, material))
    store_rows = session.execute(
        select(KeystoreEnvironment, Keystore.name, Project.name)
        .join(Keystore, Keystore.id == KeystoreEnvironment.keystore_id)
        .join(Project, Project.id == Keystore.project_id)
        .where(KeystoreEnvironment.environment_id == environment.id)
    )
    for store_row, store_name, project_name in store_rows.all():
        data, password = store_of(store_row, keyring)
        artifacts.append(
            keystore_artifact(
                project_name,
                store_name,
                store_row.store_type,
                data,
                password,
                key_password_of(store_row, keyring),
            )
        )
    return artifacts


def republish_plan(session: Session, environment: Environment, keyring: Keyring) -> ChangePlan:
    """A full snapshot: deploy all that should be there, remove all that should not."""
    plan = ChangePlan()
    plan.touch(environment)
    wanted = desired(session, environment, keyring)
    for artifact in wanted:
        plan.deploy(environment, artifact)
    wanted_refs = {a.ref for a in wanted}
    for row in DesiredStateRepository(session).rows(environment.id):
        ref = ArtifactRef(row.kind, row.project, row.name)
        if row.present and ref not in wanted_refs:
            plan.undeploy(environment, ref)
    return plan


@dataclass(frozen=True, slots=True)
class TruststoreEntry:
    name: str
    description: str
    alias: str
    certificate: ParsedCertificate


def truststore(session: Session, environment: Environment) -> list[TruststoreEntry]:
    """The admin project's certificates as the environment's target confirmed them.

    Read from what the environment holds, not from what should be there: a failed or
    unconfirmed deployment shows here as a missing certificate, which is the truth.
    """
    rows = DesiredStateRepository(session).confirmed_certificates(environment.id, ADMIN_PROJECT)
    return [
        TruststoreEntry(
            row.name, description or "", row.alias or "", parse_certificate(row.content)
        )
        for row, description in rows
    ]
