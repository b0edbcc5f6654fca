"""What the OpenAPI document tells a reader beyond the routes' signatures, and its page.

``document`` adds, in one pass over the generated document (``api/openapi.py`` calls it):

- **enums** for every query parameter and request body field (JSON or form) of the names
  in ``ENUMS``, and for ``type`` where it names a resource's kind (``TYPE_ENUMS``, keyed by
  the schema that holds it: a keystore file's type, a generated JWK's key type, an
  environment's type). The values are the constants validation checks against, imported
  from where validation reads them, so the document and the 400s can never disagree. The
  request models keep plain strings: the contract answers a bad value with its own 400
  text, which a Pydantic enum would replace. Answers (``...Read`` schemas) get no enums:
  they show what is stored, which an older version may have stored differently;
- a one-line **description** for every operation (``OPERATION_DESCRIPTIONS``, keyed by
  method and path; a test checks that every operation has one and every entry names a
  real operation), replacing the endpoints' docstrings, which are notes for developers;
- **examples** from the contract's pages: on the schemas of the main bodies and answers
  (``SCHEMA_EXAMPLES``), named ones per source or key type on the JWK bodies
  (``MEDIA_EXAMPLES``) and per field on the certificate forms (``FORM_EXAMPLES``).

Validation is more lenient than an enum: ``keyType``, a keystore's ``type`` and a
generated JWK's ``type`` are case-insensitive, ``keyType`` also takes ``OKP``/``OCT``
and ``algorithm`` generate-jwk.md's spellings (``RSA256``, ``RSA_OAEP_256``) and ``dir``.
The enums list the documented spellings; the field descriptions say what else passes.

The interactive page (``swagger_page``) loads Swagger UI from keyops itself
(``SWAGGER_ASSETS``, packaged by swagger-ui-py), so it works without internet access.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import importlib.resources
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from keyops.api.schemas.jwks import (
    JwkFromCertificate,
    JwkFromClipboard,
    JwkFromKey,
    JwkFromKeystore,
    JwkFromUrl,
)
from keyops.crypto.jwk import ALGORITHMS, USE_TYPES
from keyops.crypto.keys import KEY_TYPES
from keyops.crypto.keystores import UPLOAD_TYPES
from keyops.domain.environments import EnvironmentType
from keyops.domain.jwks.model import KEY_TYPES as JWK_KEY_TYPES
from keyops.domain.jwks.model import SOURCE_TYPES, JwkUpdateAction, UpdateScope
from keyops.errors import NotFound

__all__ = [
    "ENUMS",
    "FORM_EXAMPLES",
    "MEDIA_EXAMPLES",
    "OPERATION_DESCRIPTIONS",
    "SCHEMA_EXAMPLES",
    "SOURCE_TYPE_ENUMS",
    "SWAGGER_ASSETS",
    "TYPE_ENUMS",
    "SwaggerAsset",
    "document",
    "request_schemas",
    "swagger_asset",
    "swagger_page",
]

_REF = "#/components/schemas/"


def _algorithms() -> tuple[str, ...]:
    # Grouped by key type and use as create-jwk.md lists them, sorted within a group (the
    # table holds sets): the document must read the same in every process.
    seen: dict[str, None] = {}
    for values in ALGORITHMS.values():
        seen.update(dict.fromkeys(sorted(values)))
    return tuple(seen)


# --- enums ---------------------------------------------------------------------------------

# Every query parameter, form field and JSON body field of these names.
ENUMS: dict[str, tuple[str, ...]] = {
    "updateScope": tuple(m.value for m in UpdateScope),
    "jwkUpdateAction": tuple(m.value for m in JwkUpdateAction),
    "useType": tuple(USE_TYPES),
    "algorithm": _algorithms(),
    "sourceType": SOURCE_TYPES,
    "keyType": KEY_TYPES,
}

# A parse-from-* endpoint takes only its own source types (``_Typed.ACCEPTS``).
SOURCE_TYPE_ENUMS: dict[str, tuple[str, ...]] = {
    model.__name__: model.ACCEPTS
    for model in (JwkFromUrl, JwkFromClipboard, JwkFromCertificate, JwkFromKey, JwkFromKeystore)
}

# ``type`` means something else in each body: keyed by the schema that holds it.
TYPE_ENUMS: dict[str, tuple[str, ...]] = {
    "KeystoreEnvironmentBody": UPLOAD_TYPES,
    "JwkGenerate": tuple(JWK_KEY_TYPES.values()),
    "EnvironmentCreate": tuple(m.value for m in EnvironmentType),
}

_FIELD_NOTES: dict[str, str] = {
    "algorithm": "JOSE algorithm name, valid for the key type and useType as create-jwk.md"
    " tables them; generate-jwk.md's spellings (RSA256, RSA_OAEP_256, ...) and `dir` are"
    " accepted too",
    "keyType": "Case-insensitive; OKP (the material decides which) and OCT/AES/HMAC/SECRET"
    " (for SYMMETRIC) are accepted too",
    "updateScope": "Which JWKs derived from the old material are re-derived: this project's"
    " or every project's; needed with jwkUpdateAction=UPDATE",
    "jwkUpdateAction": "What happens to JWKs derived from the old material: re-derived"
    " (UPDATE) or detached, keeping their key (NULLIFY, the default)",
}
_TYPE_NOTES: dict[str, str] = {
    "KeystoreEnvironmentBody": "Case-insensitive. PEM: `file` is a PEM chain plus its private"
    " key, stored as PKCS12",
    "JwkGenerate": "Case-insensitive; its parameters go in the member of the same name"
    " (rsa, ec, oct, okp)",
}


# --- operation descriptions ------------------------------------------------------------------

_P = "/apiops/projects/{projectName}"
_CERT = f"{_P}/certificates/{{certificateName}}"
_KEY = f"{_P}/keys/{{keyName}}"
_STORE = f"{_P}/keystores/{{keystoreName}}"
_JWKS = f"{_P}/jwks"
_ENV = "/apiops/environments/{environmentName}"
_ADMIN_ENV = "/apiops/admin/environments/{environmentName}"
_DEPLOYS = "and deploys it to every environment in its list; the answer reports each environment"
_ROLLBACK = (
    "keyops addition: puts version `version` back like an update (the state it replaces"
    " becomes the next version); a deleted {0} is re-created"
)
_VERSIONS = (
    "keyops addition: the kept versions of the {0}, newest first, with fingerprints and"
    " never secrets"
)
_PARSE = (
    "Creates a JWK from {0} and deploys it to every environment of the project (the"
    " create-JWK body with sourceType {1})"
)

OPERATION_DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("POST", "/apiops/auth/token"): "Issues a personal access token for a user's credentials"
    " (OAuth2 client credentials grant); send it as `Authorization: Bearer ...`",
    ("POST", "/apiops/auth/revoke"): "Revokes the access token given as `token` (RFC 7009):"
    " holding it is enough; an unknown or already revoked token answers 200 too",
    ("GET", "/apiops/test/healthcheck"): "Answers OK while the service and its database are up;"
    " needs no token",
    ("GET", "/apiops/test/hello/{name}"): "Greets the caller by name: checks that a token is"
    " accepted",
    ("GET", "/apiops/projects/"): "Lists the projects the caller is a member of (an admin: all)",
    ("GET", "/apiops/environments/"): "Lists every environment with its type and publish"
    " status (admin only)",
    ("GET", "/apiops/environments/{projectName}"): "Lists the environments a project can deploy to",
    ("GET", f"{_ENV}/deployments/"): "keyops addition: what the environment's target"
    " confirmed, what is still pending, its revisions and recent roll-out attempts (admin)",
    ("POST", f"{_ENV}/republish/"): "keyops addition: rebuilds the environment's whole desired"
    " state from what is stored and rolls it out; PUBLISHED once confirmed (admin)",
    ("DELETE", f"{_ENV}/nodes/{{nodeName}}/"): "keyops addition: forgets a gateway node that"
    " will not come back, so it no longer holds the environment's status back (admin)",
    ("GET", f"{_ENV}/nodes/"): "keyops addition: the gateway nodes of the environment, their"
    " applied revision and last contact (admin)",
    ("POST", f"{_P}/certificates/"): f"Stores a PEM (or DER) X.509 certificate {_DEPLOYS}",
    ("GET", f"{_P}/certificates/"): "Lists the project's certificates per environment, without"
    " their content; paged and filtered by the optional query parameters",
    ("GET", f"{_P}/certificates/truststore/{{environmentName}}/"): "Lists the certificates in"
    " an environment's truststore (admin project only)",
    ("GET", f"{_CERT}/"): "Gets one certificate with its content, per environment",
    ("PUT", f"{_CERT}/"): "Replaces the certificate atomically and redeploys it; JWKs made"
    " from it are detached (default) or re-derived (jwkUpdateAction/updateReferencedJwks)",
    ("DELETE", f"{_CERT}/"): "Deletes the certificate and undeploys it from every environment",
    ("GET", f"{_CERT}/versions/"): _VERSIONS.format("certificate"),
    ("POST", f"{_CERT}/rollback/"): _ROLLBACK.format("certificate"),
    ("GET", f"{_CERT}/export/"): "Downloads the certificate as a ZIP with one .cer file per"
    " environment",
    ("POST", f"{_JWKS}/"): "Creates a JWK from a URL, pasted JSON, a certificate, a key or a"
    " keystore entry (sourceType) and deploys it to every environment of the project",
    ("GET", f"{_JWKS}/"): "Lists the project's JWKs without key material; paged and filtered"
    " by the optional query parameters",
    ("POST", f"{_JWKS}/parse-from-url"): _PARSE.format("the JWK (Set) at a URL", "URL"),
    ("POST", f"{_JWKS}/parse-from-clipboard"): _PARSE.format(
        "pasted JWK or JWK Set JSON", "COPY_PASTE"
    ),
    ("POST", f"{_JWKS}/parse-from-certificate"): _PARSE.format(
        "a certificate's public key", "CERTIFICATE"
    ),
    ("POST", f"{_JWKS}/parse-from-key"): _PARSE.format("a stored key", "PUBLIC_KEY or PRIVATE_KEY"),
    ("POST", f"{_JWKS}/parse-from-keystore"): _PARSE.format("a keystore entry", "KEYSTORE"),
    ("POST", f"{_JWKS}/generate"): "Generates a new RSA, EC, OCT or OKP key as a JWK and"
    " deploys it to every environment of the project",
    ("GET", f"{_JWKS}/{{jwkName}}/"): "Gets one JWK with its key material and the JWK itself",
    ("PUT", f"{_JWKS}/{{jwkName}}/"): "Renames or re-describes a JWK; its key stays, and it"
    " is detached from its source",
    ("DELETE", f"{_JWKS}/{{jwkName}}/"): "Deletes the JWK and undeploys it from every environment",
    ("POST", f"{_P}/keys/"): f"Stores a key pair or secret key (RSA, EC, Ed25519/X25519,"
    f" symmetric) per environment {_DEPLOYS}",
    ("GET", f"{_P}/keys/"): "Lists the project's keys per environment; paged by the optional"
    " query parameters",
    ("GET", f"{_KEY}/"): "Gets one key with its material, per environment",
    ("PUT", f"{_KEY}/"): "Replaces the key's material and redeploys it; JWKs made from it are"
    " detached (default) or re-derived",
    ("DELETE", f"{_KEY}/"): "Deletes the key and undeploys it from every environment",
    ("GET", f"{_KEY}/versions/"): _VERSIONS.format("key"),
    ("POST", f"{_KEY}/rollback/"): _ROLLBACK.format("key"),
    ("POST", f"{_P}/keystores/"): "Stores a JKS, JCEKS, PKCS12 or PEM keystore per"
    f" environment (parsed on the way in; passwords never returned) {_DEPLOYS}",
    ("GET", f"{_P}/keystores/"): "Lists the project's keystores with their entries per"
    " environment; paged and filtered by the optional query parameters",
    ("GET", f"{_STORE}/"): "Gets one keystore with its file and entries, per environment"
    " (never its passwords)",
    ("PUT", f"{_STORE}/"): "Replaces the keystore and redeploys it; JWKs made from its entries"
    " are detached (default) or re-derived",
    ("DELETE", f"{_STORE}/"): "Deletes the keystore and undeploys it from every environment",
    ("GET", f"{_STORE}/versions/"): _VERSIONS.format("keystore"),
    ("POST", f"{_STORE}/rollback/"): _ROLLBACK.format("keystore"),
    ("GET", "/apiops/gateway/sync/"): "keyops addition for gateway nodes: waits for a newer"
    " snapshot of the node's environment than the one it holds (long poll)",
    ("DELETE", "/apiops/gateway/sync/"): "keyops addition for gateway nodes: a node says it is"
    " shutting down",
    ("POST", "/apiops/gateway/ack/"): "keyops addition for gateway nodes: a node reports the"
    " revision it applied, or why it could not",
    ("GET", "/apiops/admin/users/"): "keyops addition: lists users and their roles (admin)",
    ("POST", "/apiops/admin/users/"): "keyops addition: creates a user with a password and"
    " roles (admin)",
    ("GET", "/apiops/admin/users/{username}/"): "keyops addition: gets one user (admin)",
    ("PATCH", "/apiops/admin/users/{username}/"): "keyops addition: changes a user's password,"
    " roles or enabled state (admin)",
    ("DELETE", "/apiops/admin/users/{username}/"): "keyops addition: deletes a user and their"
    " tokens (admin)",
    ("GET", "/apiops/admin/users/{username}/tokens/"): "keyops addition: lists a user's"
    " personal access tokens, never the tokens themselves (admin)",
    ("POST", "/apiops/admin/users/{username}/tokens/"): "keyops addition: creates a personal"
    " access token for a user; the token is shown in this answer only (admin)",
    ("DELETE", "/apiops/admin/tokens/{tokenId}/"): "keyops addition: revokes a personal access"
    " token (admin)",
    ("GET", "/apiops/admin/projects/"): "keyops addition: lists every project (admin)",
    ("POST", "/apiops/admin/projects/"): "keyops addition: creates a project, optionally with"
    " members (admin)",
    ("DELETE", "/apiops/admin/projects/{projectName}/"): "keyops addition: deletes a project"
    " (admin)",
    ("GET", "/apiops/admin/projects/{projectName}/members/"): "keyops addition: lists a"
    " project's members (admin)",
    ("POST", "/apiops/admin/projects/{projectName}/members/"): "keyops addition: adds a user"
    " to a project (admin)",
    ("DELETE", "/apiops/admin/projects/{projectName}/members/{username}/"): "keyops addition:"
    " removes a user from a project (admin)",
    ("POST", "/apiops/admin/environments/"): "keyops addition: creates an environment with its"
    " type, projects and deployment target (admin)",
    ("GET", f"{_ADMIN_ENV}/"): "keyops addition: gets one environment, its target and TLS"
    " identity (admin)",
    ("DELETE", f"{_ADMIN_ENV}/"): "keyops addition: deletes an environment (admin)",
    ("POST", f"{_ADMIN_ENV}/node-tokens/"): "keyops addition: creates a gateway node"
    " credential for the environment; shown in this answer only (admin)",
    ("GET", f"{_ADMIN_ENV}/node-tokens/"): "keyops addition: lists the environment's gateway"
    " node credentials, never the credentials themselves (admin)",
    ("DELETE", "/apiops/admin/node-tokens/{credentialId}/"): "keyops addition: revokes a"
    " gateway node credential (admin)",
    ("PUT", f"{_ADMIN_ENV}/tls-identity/"): "keyops addition: chooses the keystore entry the"
    " environment's gateway nodes serve TLS with (admin)",
    ("GET", "/apiops/admin/webhooks/"): "keyops addition: lists every webhook, global and per"
    " project (admin)",
    ("POST", "/apiops/admin/webhooks/"): "keyops addition: creates a webhook for events of"
    " every project; its signing secret is shown in this answer only (admin)",
    ("DELETE", "/apiops/admin/webhooks/{webhookId}/"): "keyops addition: deletes a webhook and"
    " its deliveries (admin)",
    ("GET", "/apiops/admin/webhooks/{webhookId}/deliveries/"): "keyops addition: a webhook's"
    " deliveries, newest first (admin)",
    ("POST", f"{_P}/webhooks/"): "keyops addition: creates a webhook for the project's events;"
    " its signing secret is shown in this answer only (admin)",
    ("GET", f"{_P}/webhooks/"): "keyops addition: lists the project's webhooks (admin)",
    ("DELETE", f"{_P}/webhooks/{{webhookId}}/"): "keyops addition: deletes a project's webhook"
    " and its deliveries (admin)",
    ("GET", f"{_P}/webhooks/{{webhookId}}/deliveries/"): "keyops addition: a project webhook's"
    " deliveries, newest first (admin)",
    ("GET", "/apiops/expiring/"): "keyops addition: certificates, keystore entries and JWKs"
    " expiring within `withinDays` days (expired included), soonest first, in every project"
    " the caller may read",
    ("GET", "/apiops/admin/audit/"): "keyops addition: searches the append-only audit log,"
    " newest first (admin)",
}


# --- examples (from the contract's pages) ----------------------------------------------------

_DEPLOYED = {
    "success": True,
    "deploymentResult": {
        "success": True,
        "message": "Deployment completed successfully",
        "environmentResults": [
            {"environmentName": "production", "success": True, "message": "Deployed successfully"},
            {"environmentName": "staging", "success": True, "message": "Deployed successfully"},
        ],
    },
}
_CERTIFICATE_ENVIRONMENT = {
    "startDate": "2024-01-01T00:00:00.000Z",
    "endDate": "2025-12-31T23:59:59.000Z",
    "sha1Thumbprint": "A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B0",
    "subjectDn": "CN=example.com, O=Example Inc, C=US",
    "alias": "my-cert-alias",
}

# On the schema itself: every body and answer of that schema shows it.
SCHEMA_EXAMPLES: dict[str, dict[str, Any]] = {
    "DeploymentRead": _DEPLOYED,
    "PagedResultList_CertificateRead": {
        "success": True,
        "resultList": [
            {
                "name": "my-certificate",
                "description": "SSL certificate for API",
                "certificateEnvironmentList": [
                    {"environmentName": env, **_CERTIFICATE_ENVIRONMENT}
                    for env in ("production", "staging")
                ],
            }
        ],
        "resultCount": 1,
    },
    "ProjectListRead": {
        "status": "SUCCESS",
        "resultList": [
            {"name": "default", "description": "description text"},
            {"name": "MyProject", "description": "My project description"},
        ],
        "resultCount": 2,
    },
    "Error": {
        "error": "bad_request",
        "error_description": "Certificate (name: my-certificate) is not found!",
    },
    "KeyBody": {
        "name": "my-key",
        "description": "Key for API encryption",
        "keyType": "RSA",
        "cryptoKeyInfoEnvironmentList": [
            {
                "environmentName": "production",
                "publicKey": "base64-encoded-public-key",
                "privateKey": "base64-encoded-private-key",
            }
        ],
    },
    "KeystoreBody": {
        "name": "my-keystore",
        "description": "Keystore for API security",
        "keyStoreEnvironmentList": [
            {
                "environmentName": "production",
                "type": "JKS",
                "file": "base64-encoded-keystore-content",
                "password": "keystore-password",
            }
        ],
    },
}

_JWK_BY_SOURCE: dict[str, dict[str, Any]] = {
    "URL": {
        "name": "my-jwk",
        "description": "JWK from URL",
        "sourceType": "URL",
        "url": "https://example.com/.well-known/jwks.json",
        "urlOptionConnectTimeout": 5000,
        "urlOptionReadTimeout": 10000,
        "urlOptionSizeLimit": 1048576,
        "kid": "key-id-1",
    },
    "COPY_PASTE": {
        "name": "my-jwk",
        "description": "JWK from JSON string",
        "sourceType": "COPY_PASTE",
        "jwkStr": '{"kty":"RSA","n":"...","e":"AQAB"}',
        "kid": "key-id-1",
    },
    "CERTIFICATE": {
        "name": "my-jwk",
        "description": "JWK from certificate",
        "sourceType": "CERTIFICATE",
        "certificateName": "my-certificate",
        "environmentName": "production",
        "useType": "SIGNATURE",
        "algorithm": "RS256",
    },
    "PUBLIC_KEY": {
        "name": "my-jwk",
        "description": "JWK from key",
        "sourceType": "PUBLIC_KEY",
        "keyName": "my-key",
        "environmentName": "production",
        "useType": "SIGNATURE",
        "algorithm": "RS256",
    },
    "KEYSTORE": {
        "name": "my-jwk",
        "description": "JWK from keystore",
        "sourceType": "KEYSTORE",
        "keyStoreName": "my-keystore",
        "environmentName": "production",
        "aliasName": "my-alias",
        "useType": "SIGNATURE",
        "algorithm": "RS256",
    },
}

_GENERATE: dict[str, dict[str, Any]] = {
    "RSA": {"keySize": 2048, "keyUseType": "SIGNATURE", "algorithm": "RSA256"},
    "EC": {"curveType": "P256", "keyUseType": "SIGNATURE", "algorithm": "ES256"},
    "OCT": {"keySize": 256, "keyUseType": "SIGNATURE", "algorithm": "HS256"},
    "OKP": {"curveType": "ED25519", "keyUseType": "SIGNATURE", "algorithm": "EdDSA"},
}


def _named(examples: Mapping[str, dict[str, Any]], what: str) -> dict[str, dict[str, Any]]:
    return {name: {"summary": f"{what} {name}", "value": value} for name, value in examples.items()}


def _source_examples(model: str) -> dict[str, dict[str, Any]]:
    return _named(
        {s: _JWK_BY_SOURCE[s] for s in SOURCE_TYPE_ENUMS[model] if s in _JWK_BY_SOURCE},
        "sourceType",
    )


# Named examples on the request media types whose schema is the key's component.
MEDIA_EXAMPLES: dict[str, dict[str, dict[str, Any]]] = {
    "JwkCreate": _named(_JWK_BY_SOURCE, "sourceType"),
    **{model: _source_examples(model) for model in SOURCE_TYPE_ENUMS},
    "JwkGenerate": _named(
        {
            kty: {
                "name": f"generated-{kty.lower()}-jwk",
                "description": f"Auto-generated {kty} JWK",
                "type": kty,
                "kid": f"{kty.lower()}-key-1",
                kty.lower(): {**params, "keyIdType": "TIMESTAMP"},
            }
            for kty, params in _GENERATE.items()
        },
        "type",
    ),
}

# Per field of the certificate create and update forms (multipart/form-data).
FORM_EXAMPLES: dict[str, str] = {
    "certificateName": "my-certificate",
    "alias": "my-cert-alias",
    "certificateDescription": "SSL certificate for API",
    "environmentList": "production,staging",
}


# --- applying them ---------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            yield ref.removeprefix(_REF)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _operations(doc: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield method.upper(), path, operation


def request_schemas(doc: Mapping[str, Any]) -> set[str]:
    """The component schemas a request body uses, directly or inside another one."""
    schemas = doc.get("components", {}).get("schemas", {})
    pending = [
        name
        for _, _, operation in _operations(doc)
        for name in _refs(operation.get("requestBody", {}))
    ]
    found: set[str] = set()
    while pending:
        name = pending.pop()
        if name in found or name not in schemas:
            continue
        found.add(name)
        pending += _refs(schemas[name])
    return found


def _constrain(schema: dict[str, Any], values: tuple[str, ...], note: str | None) -> None:
    """Add ``enum`` to a string schema, or to the string branch of ``str | None``."""
    branches = schema.get("anyOf", [schema])
    for branch in branches:
        if branch.get("type") == "string":
            branch["enum"] = list(values)
    if note and "description" not in schema:
        schema["description"] = note


def _field_enum(schema_name: str | None, field: str) -> tuple[tuple[str, ...], str | None] | None:
    if field == "type":
        if schema_name in TYPE_ENUMS:
            return TYPE_ENUMS[schema_name], _TYPE_NOTES.get(schema_name)
        return None
    if field == "sourceType" and schema_name in SOURCE_TYPE_ENUMS:
        return SOURCE_TYPE_ENUMS[schema_name], None
    if field in ENUMS:
        return ENUMS[field], _FIELD_NOTES.get(field)
    return None


def _constrain_properties(schema: dict[str, Any], schema_name: str | None) -> None:
    for field, prop in schema.get("properties", {}).items():
        found = _field_enum(schema_name, field)
        if found is not None:
            _constrain(prop, *found)


def _document_operation(method: str, path: str, operation: dict[str, Any]) -> None:
    description = OPERATION_DESCRIPTIONS.get((method, path))
    if description is not None:
        operation["description"] = description
    for parameter in operation.get("parameters", []):
        found = _field_enum(None, parameter["name"]) if parameter.get("in") == "query" else None
        if found is not None:
            _constrain(parameter["schema"], *found)
    for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
        schema = content.get("schema", {})
        ref = schema.get("$ref", "")
        if ref.startswith(_REF) and ref.removeprefix(_REF) in MEDIA_EXAMPLES:
            # Copies: a shared object would be a YAML alias in openapi.yaml.
            content["examples"] = copy.deepcopy(MEDIA_EXAMPLES[ref.removeprefix(_REF)])
        elif "properties" in schema:  # an inline form (multipart or urlencoded)
            _constrain_properties(schema, None)
            if media_type == "multipart/form-data":
                for field, prop in schema["properties"].items():
                    if field in FORM_EXAMPLES:
                        prop["example"] = FORM_EXAMPLES[field]


def document(doc: dict[str, Any]) -> None:
    """Add enums, operation descriptions and examples to the generated document."""
    for method, path, operation in _operations(doc):
        _document_operation(method, path, operation)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in request_schemas(doc):
        _constrain_properties(schemas[name], name)
    for name, example in SCHEMA_EXAMPLES.items():
        if name in schemas:
            # A copy: the error schema is a module constant of api/openapi.py.
            schemas[name] = {**schemas[name], "example": copy.deepcopy(example)}


# --- the interactive page --------------------------------------------------------------------

ASSETS_PATH = "/apiops/openapi/assets"
_CACHE_CONTROL = "public, max-age=31536000, immutable"
_STATIC = "static"

# The files the page loads, by the name it asks for: (file in swagger-ui-py, media type).
SWAGGER_ASSETS: dict[str, tuple[str, str]] = {
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "favicon.png": ("favicon-32x32.png", "image/png"),
}


@dataclass(frozen=True, slots=True)
class SwaggerAsset:
    body: bytes
    media_type: str
    headers: Mapping[str, str]


def _version() -> str:
    # Part of each asset's URL, so an upgrade is a new URL and "immutable" stays true.
    return importlib.metadata.version("swagger-ui-py")


def _asset_url(name: str) -> str:
    return f"{ASSETS_PATH}/{_version()}/{name}"


@cache
def _read_asset(name: str) -> SwaggerAsset:
    filename, media_type = SWAGGER_ASSETS[name]
    body = (importlib.resources.files("swagger_ui") / _STATIC / filename).read_bytes()
    etag = hashlib.sha256(body).hexdigest()[:32]
    return SwaggerAsset(body, media_type, {"Cache-Control": _CACHE_CONTROL, "ETag": f'"{etag}"'})


def swagger_asset(version: str, name: str) -> SwaggerAsset:
    """One of the page's files, by the fixed names of ``SWAGGER_ASSETS`` only."""
    if version != _version() or name not in SWAGGER_ASSETS:
        raise NotFound(f"Asset ({name}) is not found!")
    return _read_asset(name)


def swagger_page(openapi_url: str, title: str) -> HTMLResponse:
    """Swagger UI for the document, every file it loads served by keyops itself."""
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=_asset_url("swagger-ui-bundle.js"),
        swagger_css_url=_asset_url("swagger-ui.css"),
        swagger_favicon_url=_asset_url("favicon.png"),
        swagger_ui_parameters={
            # The token stays in the tab's memory: kept in localStorage it would outlive
            # the session and be readable by any script of the origin.
            "persistAuthorization": False,
            # Swagger UI's default asks validator.swagger.io for a badge: no call out.
            "validatorUrl": None,
        },
    )
