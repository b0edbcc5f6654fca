"""All models, imported here so that metadata is complete for Alembic."""

from keyops.storage.models.base import Base
from keyops.storage.models.certificates import Certificate, CertificateEnvironment
from keyops.storage.models.deployments import (
    DeployedArtifact,
    DeploymentAttempt,
    RevisionCounter,
)
from keyops.storage.models.environments import Environment, EnvironmentProject
from keyops.storage.models.jwks import Jwk
from keyops.storage.models.projects import Project, ProjectMember
from keyops.storage.models.tokens import AccessToken
from keyops.storage.models.users import User, UserRole

__all__ = [
    "AccessToken",
    "Base",
    "Certificate",
    "CertificateEnvironment",
    "DeployedArtifact",
    "DeploymentAttempt",
    "Environment",
    "EnvironmentProject",
    "Jwk",
    "Project",
    "ProjectMember",
    "RevisionCounter",
    "User",
    "UserRole",
]
