"""Typed answers of the token, project, environment, admin, webhook, audit and expiry
endpoints (keyops' additions to the Apinizer API, and the pages around keys & secrets)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from keyops.client.models import Model, ResultList, secret

__all__ = [
    "AccessToken",
    "AuditEntry",
    "Delivery",
    "DeployAttempt",
    "DeployedArtifact",
    "Environment",
    "EnvironmentDeployments",
    "EnvironmentNodes",
    "Expiring",
    "ExpiringList",
    "GatewayNode",
    "NodeCredential",
    "PersonalToken",
    "Project",
    "TlsIdentity",
    "User",
    "Webhook",
]


class AccessToken(Model):
    """The token endpoint's answer (RFC 6749 names, snake_case on the wire too)."""

    access_token: str = secret()
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int | None = None


class Project(Model):
    name: str
    description: str = ""
    # In the admin create's answer.
    members: list[str] | None = None


class TlsIdentity(Model):
    """The keystore entry an environment's gateway nodes serve TLS with."""

    project_name: str
    key_store_name: str
    alias_name: str


class Environment(Model):
    """An environment; the admin endpoints add its ``projects``, ``target`` and
    ``tls_identity``."""

    name: str
    description: str = ""
    type: str
    status: str
    access_url: str = ""
    deployed: bool | None = None
    redeploy_required: bool | None = None
    projects: list[str] | None = None
    target: str | None = None
    tls_identity: TlsIdentity | None = None


class User(Model):
    username: str
    roles: list[str]
    enabled: bool
    created_at: datetime


class PersonalToken(Model):
    """A personal access token; ``token`` is set only in the create's answer."""

    id: int
    name: str
    username: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    active: bool
    token: str | None = secret()


class NodeCredential(Model):
    """A gateway node credential; ``token`` is set only in the create's answer."""

    id: int
    name: str
    prefix: str
    created_at: str
    revoked_at: str | None = None
    token: str | None = secret()


class Webhook(Model):
    """A webhook; ``secret`` (the HMAC key) is set only in the create's answer."""

    id: int
    project_name: str | None = None
    url: str
    events: list[str]
    created_at: datetime
    created_by: str
    secret: str | None = secret()


class Delivery(Model):
    id: int
    webhook_id: int
    event: str
    status: str
    attempts: int
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class AuditEntry(Model):
    id: int
    time: datetime
    username: str | None = None
    token_id: int | None = None
    token_name: str | None = None
    source_address: str | None = None
    request_id: str | None = None
    operation: str
    project: str | None = None
    kind: str | None = None
    name: str | None = None
    environments: list[str] = Field(default_factory=list)
    before_sha256: str | None = None
    after_sha256: str | None = None
    outcome: str
    description: str | None = None
    prev_hash: str
    hash: str


class Expiring(Model):
    """One not-after: a certificate or keystore entry in one environment, or a JWK."""

    project: str
    kind: str
    name: str
    environment: str | None = None
    alias: str | None = None
    not_after: str
    days_left: int


class ExpiringList(ResultList[Expiring]):
    within_days: int


class DeployedArtifact(Model):
    kind: str
    project_name: str | None = None
    name: str
    alias: str | None = None
    content_hash: str | None = None
    revision: int
    deployed_at: str
    # On a pending artifact: DEPLOY or UNDEPLOY.
    action: str | None = None


class DeployAttempt(Model):
    action: str
    kind: str
    project_name: str | None = None
    name: str
    content_hash: str | None = None
    revision: int
    success: bool
    message: str
    at: str


class EnvironmentDeployments(ResultList[DeployedArtifact]):
    """What an environment holds (``result_list``), what it still has to take, and the
    latest roll-out attempts."""

    environment_name: str
    status: str
    revision: int
    applied_revision: int | None = None
    pending_list: list[DeployedArtifact] = Field(default_factory=list)
    recent_attempts: list[DeployAttempt] = Field(default_factory=list)


class GatewayNode(Model):
    name: str
    applied_revision: int
    up_to_date: bool
    connected: bool
    last_contact: str
    listen: Any = None
    fingerprints: Any = None
    last_error: str | None = None


class EnvironmentNodes(ResultList[GatewayNode]):
    environment_name: str
    status: str
    latest_revision: int
