"""Certificate shapes: the contract's certificate and certificate-environment objects."""

from __future__ import annotations

import base64
from typing import Any

from keyops.api.schemas.common import CamelModel
from keyops.crypto.x509 import format_instant
from keyops.domain.deployments import TruststoreEntry
from keyops.storage.models import Certificate, CertificateEnvironment


class CertificateEnvironmentRead(CamelModel):
    environment_name: str
    start_date: str
    end_date: str
    # In a get, not in a list (decision 9).
    base64_encoded_content: str | None = None
    sha1_thumbprint: str
    subject_dn: str
    alias: str


class CertificateRead(CamelModel):
    name: str
    description: str
    certificate_environment_list: list[CertificateEnvironmentRead]


def certificate_environment(
    row: CertificateEnvironment, environment_name: str, *, with_content: bool
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "environmentName": environment_name,
        "startDate": format_instant(row.not_before),
        "endDate": format_instant(row.not_after),
    }
    if with_content:
        item["base64EncodedContent"] = base64.b64encode(row.der).decode("ascii")
    item.update(sha1Thumbprint=row.sha1_thumbprint, subjectDn=row.subject_dn, alias=row.alias)
    return item


def certificate(
    cert: Certificate, env_names: dict[int, str], *, with_content: bool
) -> dict[str, Any]:
    """The certificate object; list leaves the content out (decision 9), get has it."""
    return {
        "name": cert.name,
        "description": cert.description,
        "certificateEnvironmentList": [
            certificate_environment(row, env_names[row.environment_id], with_content=with_content)
            for row in cert.environments
        ],
    }


def truststore_certificate(entry: TruststoreEntry, environment_name: str) -> dict[str, Any]:
    """A truststore certificate, shaped like the certificate object, from deployed content."""
    parsed = entry.certificate
    return {
        "name": entry.name,
        "description": entry.description,
        "certificateEnvironmentList": [
            {
                "environmentName": environment_name,
                "startDate": format_instant(parsed.not_before),
                "endDate": format_instant(parsed.not_after),
                "base64EncodedContent": parsed.base64_der,
                "sha1Thumbprint": parsed.sha1_thumbprint,
                "subjectDn": parsed.subject_dn,
                "alias": entry.alias,
            }
        ],
    }
