"""What an environment should hold, what it does hold, and bringing the two together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keyops.crypto.x509 import ParsedCertificate, parse_certificate
from keyops.deploy.plan import ChangePlan
from keyops.deploy.target import Artifact, ArtifactRef
from keyops.domain.artifacts import CERTIFICATE, certificate_artifact, jwk_artifact
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
from keyops.storage.repositories.environments import EnvironmentRepository


@dataclass(frozen=True, slots=True)
class EnvironmentDeployments:
    environment: Environment
    artifacts: Sequence[DeployedArtifact]
    attempts: Sequence[DeploymentAttempt]


async def deployed(
    session: AsyncSession, environment: Environment, *, attempts: int = 50
) -> EnvironmentDeployments:
    """What the environment holds now and its most recent deployment attempts."""
    rows = (
        await session.scalars(
            select(DeployedArtifact)
            .where(DeployedArtifact.environment_id == environment.id, DeployedArtifact.present)
            .order_by(DeployedArtifact.kind, DeployedArtifact.project, DeployedArtifact.name)
        )
    ).all()
    recent = (
        await session.scalars(
            select(DeploymentAttempt)
            .where(DeploymentAttempt.environment_id == environment.id)
            .order_by(DeploymentAttempt.id.desc())
            .limit(attempts)
        )
    ).all()
    return EnvironmentDeployments(environment, rows, recent)


async def desired(
    session: AsyncSession, environment: Environment, keyring: Keyring
) -> list[Artifact]:
    """Everything that should be deployed to the environment according to stored state."""
    artifacts: list[Artifact] = []
    cert_rows = await session.execute(
        select(CertificateEnvironment, Certificate.name, Project.name)
        .join(Certificate, Certificate.id == CertificateEnvironment.certificate_id)
        .join(Project, Project.id == Certificate.project_id)
        .where(CertificateEnvironment.environment_id == environment.id)
    )
    for row, cert_name, project_name in cert_rows.all():
        artifacts.append(certificate_artifact(project_name, cert_name, row))
    envs = EnvironmentRepository(session)
    limited = await envs.limited_to(environment.id)
    jwk_stmt = select(Jwk, Project.name).join(Project, Project.id == Jwk.project_id)
    if limited:
        jwk_stmt = jwk_stmt.where(Jwk.project_id.in_(limited))
    for jwk, project_name in (await session.execute(jwk_stmt)).all():
        artifacts.append(jwk_artifact(project_name, jwk, full_jwk(jwk, keyring)))
    key_rows = await session.execute(
        select(CryptoKeyEnvironment, CryptoKey, Project.name)
        .join(CryptoKey, CryptoKey.id == CryptoKeyEnvironment.key_id)
        .join(Project, Project.id == CryptoKey.project_id)
        .where(CryptoKeyEnvironment.environment_id == environment.id)
    )
    for key_row, key, project_name in key_rows.all():
        material = material_of(key_row, key.key_type, keyring)
        artifacts.append(key_artifact(project_name, key.name, material))
    store_rows = await session.execute(
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


async def republish_plan(
    session: AsyncSession, environment: Environment, keyring: Keyring
) -> ChangePlan:
    """A full snapshot: deploy all that should be there, remove all that should not."""
    plan = ChangePlan()
    plan.touch(environment)
    wanted = await desired(session, environment, keyring)
    for artifact in wanted:
        plan.deploy(environment, artifact)
    wanted_refs = {a.ref for a in wanted}
    for row in (await deployed(session, environment, attempts=0)).artifacts:
        ref = ArtifactRef(row.kind, row.project, row.name)
        if ref not in wanted_refs:
            plan.undeploy(environment, ref)
    return plan


@dataclass(frozen=True, slots=True)
class TruststoreEntry:
    name: str
    description: str
    alias: str
    certificate: ParsedCertificate


async def truststore(session: AsyncSession, environment: Environment) -> list[TruststoreEntry]:
    """The admin project's certificates as actually deployed to the environment.

    Read from what the environment holds, not from what should be there: a failed
    deployment shows here as a missing or older certificate, which is the truth.
    """
    rows = (
        await session.execute(
            select(DeployedArtifact, Certificate.description)
            .outerjoin(Project, Project.name == DeployedArtifact.project)
            .outerjoin(
                Certificate,
                (Certificate.project_id == Project.id)
                & (Certificate.name == DeployedArtifact.name),
            )
            .where(
                DeployedArtifact.environment_id == environment.id,
                DeployedArtifact.kind == CERTIFICATE,
                DeployedArtifact.project == ADMIN_PROJECT,
                DeployedArtifact.present,
            )
            .order_by(DeployedArtifact.name)
        )
    ).all()
    return [
        TruststoreEntry(
            row.name, description or "", row.alias or "", parse_certificate(row.content)
        )
        for row, description in rows
    ]
