"""The OpenAPI document: what each operation really answers when it fails.

FastAPI documents a 422 ``{"detail": ...}`` on every operation with parameters; keyops
never sends one (validation failures are 400 in the contract's body, see
``api/errors.py``), and it documents none of the errors keyops does send. This module
rewrites the generated document in one place:

- the 422 and FastAPI's ``HTTPValidationError``/``ValidationError`` schemas go;
- every operation gets the contract's error body (``Error``) for each status it can
  answer, derived from facts about its route rather than written per endpoint:

  ====  ==============================================================================
  400   it takes input (a path or query parameter, or a body): invalid values, control
        characters, values the database can not store, and the contract's per-page
        "is not found!" answers
  401   it authenticates (depends on a caller check of ``api/deps.py``), with ``WWW-Authenticate``
  403   it checks roles (one that names roles)
  404   its path names a thing (has a path parameter)
  409   it writes (any method but GET/HEAD): duplicates, lost races, refused states
  413   it takes a body
  500   always (the generic handler)
  503   it uses the database (the database may be down)
  ====  ==============================================================================

- operations that authenticate or answer without the shared dependencies say so in
  ``OVERRIDES``, each with its reason; a test checks every entry still names a real
  operation;
- authenticated operations carry ``security: [{"bearerAuth": []}]``;
- enums, operation descriptions and examples come from ``api/openapi_docs.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from keyops.api import openapi_docs
from keyops.api.deps import get_keyops
from keyops.api.responses import ContractJSONResponse

__all__ = [
    "ERROR_SCHEMA",
    "OVERRIDES",
    "OperationFacts",
    "Override",
    "contract_openapi",
    "error_statuses",
    "operation_facts",
]

ERROR_SCHEMA_NAME = "Error"
ERROR_REF = f"#/components/schemas/{ERROR_SCHEMA_NAME}"
MEDIA_TYPE = ContractJSONResponse.media_type
SECURITY_SCHEME = "bearerAuth"

ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "description": "The one error body of every failure (contract decision 1).",
    "required": ["error", "error_description"],
    "properties": {
        "error": {"type": "string", "description": "Error code, e.g. bad_request"},
        "error_description": {"type": "string", "description": "Human-readable text"},
        "validation_errors": {
            "type": "array",
            "description": "On a 400 for invalid fields: each field and what is wrong",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

DESCRIPTIONS = {
    400: "Invalid input (`bad_request`, `invalid_request`): a missing, malformed or unknown"
    " field or parameter, or, where the contract's page says so, a named thing that does"
    " not exist",
    401: "Missing, unknown, revoked or expired credentials (`unauthorized_client`)",
    403: "The caller lacks a role the operation needs (`forbidden`); nothing changed",
    404: "A thing the request names does not exist or is not visible (`not_found`)",
    409: "A duplicate name, a refused state change or a lost race (`conflict`); nothing changed",
    413: "The body or an uploaded file is over its limit (`payload_too_large`)",
    500: "Unexpected error (`internal_error`); the details are in the server log only",
    503: "The database is unavailable (`service_unavailable`); try again later",
}

_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": 'Bearer realm="keyops"',
        "schema": {"type": "string"},
    }
}
_READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class OperationFacts:
    """What a route's signature and the generated operation say about it."""

    method: str
    path: str
    authenticated: bool
    role_checked: bool
    path_params: bool
    takes_input: bool
    has_body: bool
    uses_database: bool


@dataclass(frozen=True)
class Override:
    """Statuses an operation answers beyond (or instead of) what its facts imply."""

    reason: str
    add: frozenset[int] = frozenset()
    remove: frozenset[int] = frozenset()
    authenticated: bool = False
    success: Mapping[int, str] = field(default_factory=dict)


_NODE_CREDENTIAL = "gateway nodes authenticate with a node credential, checked in the router"
OVERRIDES: dict[tuple[str, str], Override] = {
    ("POST", "/apiops/auth/token"): Override(
        "bad client credentials are 401; the grant itself needs no token", add=frozenset({401})
    ),
    ("GET", "/apiops/environments/"): Override(
        "its own dependency answers a bad token and a non-admin with its page's 401",
        add=frozenset({401}),
        authenticated=True,
    ),
    ("GET", "/apiops/environments/{projectName}"): Override(
        "its page answers an unknown project with 400, not 404", remove=frozenset({404})
    ),
    ("GET", "/apiops/test/hello/{name}"): Override(
        "the name is echoed, not looked up", remove=frozenset({404})
    ),
    ("POST", "/apiops/admin/environments/"): Override(
        "a project named in the body that does not exist is 404", add=frozenset({404})
    ),
    ("POST", "/apiops/admin/projects/"): Override(
        "a member named in the body that does not exist is 404", add=frozenset({404})
    ),
    ("GET", "/apiops/gateway/sync/"): Override(
        _NODE_CREDENTIAL,
        add=frozenset({401}),
        authenticated=True,
        success={204: "Nothing changed within the wait: the node already holds the revision"},
    ),
    ("DELETE", "/apiops/gateway/sync/"): Override(
        _NODE_CREDENTIAL, add=frozenset({401}), authenticated=True
    ),
    ("POST", "/apiops/gateway/ack/"): Override(
        _NODE_CREDENTIAL, add=frozenset({401}), authenticated=True
    ),
}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def operation_facts(
    method: str, path: str, dependant: Dependant, operation: Mapping[str, Any]
) -> OperationFacts:
    """The facts of one operation, from its dependencies and its generated document."""
    calls = list(_calls(dependant))
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    return OperationFacts(
        method=method,
        path=path,
        # The caller dependencies of api/deps.py say what they check.
        authenticated=any(getattr(c, "keyops_authenticates", False) for c in calls),
        role_checked=any(getattr(c, "keyops_roles", ()) for c in calls),
        path_params=any(p.get("in") == "path" for p in parameters),
        takes_input=bool(parameters) or has_body,
        has_body=has_body,
        uses_database=get_keyops in calls,
    )


def error_statuses(facts: OperationFacts, override: Override | None = None) -> set[int]:
    """The error statuses an operation can answer."""
    statuses = {500}
    rules = {
        400: facts.takes_input,
        401: facts.authenticated,
        403: facts.role_checked,
        404: facts.path_params,
        409: facts.method not in _READ_METHODS,
        413: facts.has_body,
        503: facts.uses_database,
    }
    statuses |= {status for status, applies in rules.items() if applies}
    if override is not None:
        statuses = (statuses | override.add) - override.remove
    return statuses


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {MEDIA_TYPE: {"schema": {"$ref": ERROR_REF}}},
    }
    if status == 401:
        # A copy each: a shared object would be a YAML alias in openapi.yaml.
        response["headers"] = copy.deepcopy(_WWW_AUTHENTICATE)
    return response


def _document_operation(operation: dict[str, Any], facts: OperationFacts) -> None:
    override = OVERRIDES.get((facts.method, facts.path))
    responses = {
        code: response
        for code, response in operation.get("responses", {}).items()
        if code.startswith("2")
    }
    for status, description in (override.success if override else {}).items():
        responses[str(status)] = {"description": description}
    for status in sorted(error_statuses(facts, override)):
        responses[str(status)] = _error_response(status)
    operation["responses"] = responses
    if facts.authenticated or (override is not None and override.authenticated):
        operation["security"] = [{SECURITY_SCHEME: []}]


def contract_openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document with FastAPI's 422 replaced by the errors keyops sends."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute) or not context.include_in_schema:
            continue
        path = context.path_format or ""
        path_item = document["paths"].get(path, {})
        for method in context.methods or ():
            operation = path_item.get(method.lower())
            if operation is not None:
                facts = operation_facts(method, path, context.dependant, operation)
                _document_operation(operation, facts)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A personal access token (POST /apiops/auth/token or keyops token)",
    }
    openapi_docs.document(document)
    return document
