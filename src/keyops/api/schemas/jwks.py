"""JWK shapes: the create/parse bodies and the JWK management object."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ConfigDict, Field

from keyops.api.schemas.common import CamelModel
from keyops.storage.models import Jwk

KEY_TYPE_LABELS = {"RSA": "RSA", "EC": "EC", "oct": "OCT", "OKP": "OKP"}


class JwkCreate(CamelModel):
    """Every field of every source type, so that a misspelt field is an error."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=1000)
    description: str | None = Field(default=None, max_length=10_000)
    source_type: str | None = Field(default=None, max_length=64)
    url: str | None = Field(default=None, max_length=8192)
    url_option_connect_timeout: int | None = None
    url_option_read_timeout: int | None = None
    url_option_size_limit: int | None = None
    jwk_str: str | None = Field(default=None, max_length=1024 * 1024)
    certificate_name: str | None = Field(default=None, max_length=1000)
    key_name: str | None = Field(default=None, max_length=1000)
    key_store_name: str | None = Field(default=None, max_length=1000)
    kid: str | None = Field(default=None, max_length=1000)
    environment_name: str | None = Field(default=None, max_length=1000)
    alias_name: str | None = Field(default=None, max_length=1000)
    use_type: str | None = Field(default=None, max_length=64)
    algorithm: str | None = Field(default=None, max_length=64)


class JwkFromCertificate(CamelModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=1000)
    description: str | None = Field(default=None, max_length=10_000)
    certificate_name: str | None = Field(default=None, max_length=1000)
    environment_name: str | None = Field(default=None, max_length=1000)
    use_type: str | None = Field(default=None, max_length=64)
    algorithm: str | None = Field(default=None, max_length=64)
    kid: str | None = Field(default=None, max_length=1000)


def jwk_summary(jwk: Jwk, project_name: str, source_name: str | None) -> dict[str, Any]:
    """The JWK management object without key material (list, decision 9)."""
    return {
        "name": jwk.name,
        "description": jwk.description,
        "projectId": project_name,
        "sourceType": jwk.source_type,
        "sourceId": source_name,
        "sourceUrl": jwk.source_url,
        "type": KEY_TYPE_LABELS.get(jwk.key_type, jwk.key_type),
        "kid": jwk.kid,
        "useType": jwk.use_type,
        "algorithm": jwk.algorithm,
    }


def jwk_detail(jwk: Jwk, project_name: str, source_name: str | None) -> dict[str, Any]:
    """The JWK object with its key material under rsa/ec/oct/okp, and the JWK itself."""
    item = jwk_summary(jwk, project_name, source_name)
    public = json.loads(jwk.public_json)
    material = {k: v for k, v in public.items() if k not in ("kty", "kid")}
    item[KEY_TYPE_LABELS.get(jwk.key_type, jwk.key_type).lower()] = material
    item["jwk"] = public
    return item
