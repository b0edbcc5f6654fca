"""All models, imported here so that metadata is complete for Alembic."""

from keyops.storage.models.audit import AuditEntry
from keyops.storage.models.base import Base
from keyops.storage.models.certificates import Certificate, CertificateEnvironment
from keyops.storage.models.deployments import (
    ArtifactContent,
    DeployedArtifact,
    DeploymentAttempt,
    MasterKeyState,
    RevisionCounter,
)
from keyops.storage.models.environments import Environment, EnvironmentProject
from keyops.storage.models.gateway import GatewayCredential, GatewayNode
from keyops.storage.models.jwks import Jwk
from keyops.storage.models.keys import CryptoKey, CryptoKeyEnvironment
from keyops.storage.models.keystores import Keystore, KeystoreEnvironment
from keyops.storage.models.projects import Project, ProjectMember
from keyops.storage.models.tokens import AccessToken
from keyops.storage.models.users import User, UserRole
from keyops.storage.models.versions import ResourceVersion
from keyops.storage.models.webhooks import ExpiryNotification, Webhook, WebhookDelivery

__all__ = [
    "AccessToken",
    "ArtifactContent",
    "AuditEntry",
    "Base",
    "Certificate",
    "CertificateEnvironment",
    "CryptoKey",
    "CryptoKeyEnvironment",
    "DeployedArtifact",
    "DeploymentAttempt",
    "Environment",
    "EnvironmentProject",
    "ExpiryNotification",
    "GatewayCredential",
    "GatewayNode",
    "Jwk",
    "Keystore",
    "KeystoreEnvironment",
    "MasterKeyState",
    "Project",
    "ProjectMember",
    "ResourceVersion",
    "RevisionCounter",
    "User",
    "UserRole",
    "Webhook",
    "WebhookDelivery",
]
