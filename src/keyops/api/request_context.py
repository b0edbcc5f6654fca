"""Per-request context for the audit log: request id, source address, and the record of
every refused request.

A pure ASGI middleware (no body buffering, no extra task): it takes ``X-Request-ID`` if
the client sent a usable one (else makes one), echoes it in the response, and sets
``domain.audit.current`` for the request; the auth dependency adds who is calling. A
response of 401 or 403, the 404 of a project the caller may not see, and any other 4xx
answer to a change is appended to the audit log (``domain.audit.record``) before the
response starts; a successful request does nothing more than set the context.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyops.domain import audit

HEADER = b"x-request-id"
_USABLE = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def request_id_of(scope: Scope) -> str:
    for key, value in scope.get("headers") or ():
        if key == HEADER:
            text = str(value.decode("latin-1")).strip()
            if _USABLE.match(text):
                return text
            break
    return uuid.uuid4().hex


def outcome_of(status: int, ctx: audit.RequestContext) -> str | None:
    """The outcome a failed request is recorded with; ``None`` if it is not recorded."""
    if status == 401:
        return audit.Outcome.UNAUTHORIZED
    if status == 403:
        return audit.Outcome.FORBIDDEN
    if status == 404 and ctx.project_hidden:
        return audit.Outcome.NOT_FOUND
    if 400 <= status < 500 and audit.route_change(ctx) is not None:
        return audit.Outcome.REFUSED
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        client = scope.get("client")
        ctx = audit.RequestContext(
            request_id=request_id,
            source_address=client[0] if client else None,
            method=scope["method"],
            scope=scope,
        )
        token = audit.current.set(ctx)
        header = (HEADER, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status >= 400:
                    outcome = outcome_of(status, ctx)
                    if outcome is not None:
                        await _record(scope, outcome, status)
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            audit.current.reset(token)


async def _record(scope: Scope, outcome: str, status: int) -> None:
    app: Any = scope.get("app")
    keyops = getattr(getattr(app, "state", None), "keyops", None)
    if keyops is None:
        return
    await audit.record(keyops.db, outcome, f"HTTP {status}")
