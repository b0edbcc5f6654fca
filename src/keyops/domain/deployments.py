"""What an environment should hold, what it does hold, and bringing the two together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from keyops.crypto.x509 import ParsedCertificate, parse_certificate
from keyops.deploy.plan import ChangePlan
from keyops.deploy.target import Artifact, ArtifactRef
from keyops.domain.artifacts import jwk_artifact
from keyops.domain.certificates import CertificateService
from keyops.domain.environments import EnvironmentService
from keyops.domain.keys import KeyService
from keyops.domain.keystores import KeystoreService
from keyops.domain.material import full_jwk
from keyops.domain.projects import ADMIN_PROJECT
from keyops.secrets import Keyring
from keyops.storage.models import DeployedArtifact, DeploymentAttempt, Environment
from keyops.storage.repositories.desired import DesiredStateRepository
from keyops.storage.repositories.environments import EnvironmentRepository
from keyops.storage.repositories.jwks import JwkRepository


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
    # Reading desired state creates no environment: no target kind is needed.
    envs = EnvironmentService(session, known_targets=frozenset())
    certificates, keys, keystores = (
        kind(session, envs, keyring) for kind in (CertificateService, KeyService, KeystoreService)
    )
    artifacts = certificates.desired_in(environment)
    limited = EnvironmentRepository(session).limited_to(environment.id)
    for jwk, project_name in JwkRepository(session).with_project_names(limited or None):
        artifacts.append(jwk_artifact(project_name, jwk, full_jwk(jwk, keyring)))
    artifacts += keys.desired_in(environment)
    artifacts += keystores.desired_in(environment)
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
