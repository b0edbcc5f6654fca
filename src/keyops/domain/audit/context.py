"""The audit log's view of a request: who is asking, from where, and what its route
changes (see the package's docstring)."""

from __future__ import annotations

import contextvars
import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any


class Operation:
    """What an entry records (documented in the README's audit section)."""

    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    ROLLBACK = "ROLLBACK"
    REPUBLISH = "REPUBLISH"
    LOGIN = "LOGIN"
    AUTH_FAILED = "AUTH_FAILED"


class Outcome:
    SUCCESS = "SUCCESS"  # committed with the change
    REFUSED = "REFUSED"  # the change was refused (4xx); nothing was changed
    UNAUTHORIZED = "UNAUTHORIZED"  # 401: no or an invalid token
    FORBIDDEN = "FORBIDDEN"  # 403: the caller lacks a role
    NOT_FOUND = "NOT_FOUND"  # 404: a project the caller may not see


# --- the request's context -------------------------------------------------------------


@dataclass(slots=True)
class RequestContext:
    """Who is asking, from where: one per request, filled in as it is known."""

    request_id: str
    source_address: str | None
    method: str
    scope: MutableMapping[str, Any]
    username: str | None = None
    token_id: int | None = None
    # Set when the path's project was refused as not found (decision 10's 404).
    project_hidden: bool = False
    # Set once the request's change is appended: later write transactions of the
    # request (recording a roll-out's outcome) are bookkeeping, not another change.
    changed: bool = False

    def authenticated(self, username: str, token_id: int) -> None:
        self.username = username
        self.token_id = token_id


current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "keyops_audit_request", default=None
)

_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_VERBS = {"POST": "CREATE", "PUT": "UPDATE", "PATCH": "UPDATE", "DELETE": "DELETE"}
# Routes whose writes are bookkeeping, not changes (a gateway node's sync and acks).
_NOT_AUDITED = ("/apiops/gateway/",)
_KINDS = {
    "certificates": "certificate",
    "keys": "key",
    "keystores": "keystore",
    "jwks": "jwk",
    "users": "user",
    "tokens": "token",
    "node-tokens": "node_token",
    "projects": "project",
    "members": "member",
    "environments": "environment",
    "webhooks": "webhook",
    "tls-identity": "tls_identity",
    "nodes": "node",
}
_PARAM = re.compile(r"^\{(\w+)\}$")


@dataclass(frozen=True, slots=True)
class RouteChange:
    operation: str
    project: str | None
    kind: str | None
    name: str | None


def route_change(ctx: RequestContext) -> RouteChange | None:
    """What the request's route changes, from its template: ``None`` if it is no change.

    Project resources: CREATE / UPDATE / DELETE (ROLLBACK, REPUBLISH by their path);
    admin routes: ``<KIND>_<VERB>`` (USER_CREATE, TOKEN_CREATE, TOKEN_DELETE, ...);
    ``POST /apiops/auth/token``: LOGIN."""
    if ctx.method not in _CHANGING:
        return None
    template = getattr(ctx.scope.get("route"), "path", None)
    if not isinstance(template, str):
        return None  # no route matched: nothing could change
    if template.startswith(_NOT_AUDITED):
        return None
    params: dict[str, Any] = ctx.scope.get("path_params") or {}
    project = params.get("projectName")
    segments = [s for s in template.split("/") if s]
    if template.startswith("/apiops/auth/"):
        return RouteChange(Operation.LOGIN, None, "token", None)
    name: str | None = None
    kind: str | None = None
    last_literal = ""
    for i, segment in enumerate(segments):
        match = _PARAM.match(segment)
        if match:
            if i + 1 == len(segments) or segments[i + 1] not in _KINDS:
                name = str(params.get(match.group(1), "")) or None
        else:
            last_literal = segment
            if segment in _KINDS:
                kind, name = _KINDS[segment], None
    if last_literal == "rollback":
        return RouteChange(Operation.ROLLBACK, project, kind, name)
    if last_literal == "republish":
        return RouteChange(Operation.REPUBLISH, None, "environment", name)
    verb = _VERBS[ctx.method]
    if template.startswith("/apiops/admin/") and kind is not None:
        if kind == "project" and name is not None and project is not None:
            name = None
        return RouteChange(f"{kind.upper()}_{verb}", project, kind, name)
    return RouteChange(verb, project, kind, name)
