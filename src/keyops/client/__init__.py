"""keyops.client: a typed Python client for the keyops (and Apinizer) Management API.

    from keyops.client import Client, BadRequest

    with Client.login("https://keyops.example", "admin", password) as kc:
        for cert in kc.certificates.list("MyProject").result_list:
            print(cert.name, cert.certificate_environment_list[0].end_date)
        change = kc.certificates.update(
            "MyProject", "my-certificate", pem=open("updated.pem", "rb").read(),
            environments=["production", "staging"],
            update_referenced_jwks=True, update_scope="SAME_PROJECT",
        )
        print(change.failed)  # the environments the roll-out did not reach

``AsyncClient`` has the same groups and methods, each awaited. A refused call raises a
``KeyopsError`` subclass carrying the answer's ``error`` and ``error_description``.
"""

from keyops.client.admin_models import (
    AccessToken,
    AuditEntry,
    Delivery,
    Environment,
    EnvironmentDeployments,
    EnvironmentNodes,
    ExpiringList,
    GatewayNode,
    NodeCredential,
    PersonalToken,
    Project,
    User,
    Webhook,
)
from keyops.client.clients import AsyncClient, Client
from keyops.client.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    KeyopsError,
    NotFound,
    PayloadTooLarge,
    ServerError,
    TransportError,
    Unauthorized,
)
from keyops.client.keys import KeyMaterial, KeystoreFile
from keyops.client.models import (
    Certificate,
    CertificateEnvironment,
    Change,
    DeploymentResult,
    EnvironmentResult,
    Jwk,
    Key,
    Keystore,
    ResultList,
    Version,
)

__all__ = [
    "AccessToken",
    "AsyncClient",
    "AuditEntry",
    "BadRequest",
    "Certificate",
    "CertificateEnvironment",
    "Change",
    "Client",
    "Conflict",
    "Delivery",
    "DeploymentResult",
    "Environment",
    "EnvironmentDeployments",
    "EnvironmentNodes",
    "EnvironmentResult",
    "ExpiringList",
    "Forbidden",
    "GatewayNode",
    "Jwk",
    "Key",
    "KeyMaterial",
    "KeyopsError",
    "Keystore",
    "KeystoreFile",
    "NodeCredential",
    "NotFound",
    "PayloadTooLarge",
    "PersonalToken",
    "Project",
    "ResultList",
    "ServerError",
    "TransportError",
    "Unauthorized",
    "User",
    "Version",
    "Webhook",
]
