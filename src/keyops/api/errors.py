"""Every error, ours or the framework's, answered in the contract's JSON format."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyops.api.responses import ContractJSONResponse
from keyops.errors import KeyopsError

log = logging.getLogger("keyops.api")
service_log = logging.getLogger("keyops")


def error_response(
    status: int,
    error: str,
    description: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """The one error body: {"error": ..., "error_description": ...}."""
    body = {"error": error, "error_description": description, **extra}
    return ContractJSONResponse(body, status_code=status, headers=headers)


def _keyops_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeyopsError)
    headers = None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="keyops"'}
    return error_response(exc.status, exc.error, exc.description, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        field = _field_name(tuple(err.get("loc", ())))
        message = str(err.get("msg", "is invalid"))
        if err.get("type") == "missing":
            message = f"{field} is required"
        elif err.get("type") == "json_invalid":
            field, message = "body", "body is not valid JSON"
        problems.append({"field": field, "message": message})
    summary = "; ".join(
        p["message"] if p["message"].startswith(p["field"]) else f"{p['field']}: {p['message']}"
        for p in problems
    )
    return error_response(
        400, "bad_request", f"Validation failed: {summary}", validation_errors=problems
    )


def _client_disconnect(request: Request, _exc: Exception) -> Response:
    # The client closed the connection before its body was complete (Starlette raises
    # ClientDisconnect while reading it): an everyday event, not a server error, and
    # there is no one left to answer. The server drops whatever is sent now.
    service_log.info("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=400)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, ClientDisconnect):
        # FastAPI's own body parsing turns the disconnect into "error parsing the body".
        return _client_disconnect(request, exc.__cause__)
    if exc.status_code == 404:
        return error_response(
            404, "not_found", f"No endpoint {request.method} {request.url.path} exists"
        )
    if exc.status_code == 405:
        headers = dict(exc.headers or {})
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
        return error_response(
            405,
            "method_not_allowed",
            f"Method {request.method} is not allowed on {request.url.path}",
            headers=headers,
        )
    code = {
        400: "bad_request",
        401: "unauthorized_client",
        403: "forbidden",
        413: "payload_too_large",
    }
    return error_response(
        exc.status_code,
        code.get(exc.status_code, "error"),
        str(exc.detail),
        headers=dict(exc.headers or {}),
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path.

    Starlette's 405 names only the methods of the first route matching the path; a
    path served by several routes (GET and POST of a collection) would be under-told.
    Routes are asked through ``matches`` only, which included routers answer too.
    """
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]


def _integrity_error(request: Request, exc: Exception) -> Response:
    # A uniqueness check lost a race with a concurrent request (two replicas, or two
    # requests at once on PostgreSQL): the transaction is rolled back, nothing changed.
    log.info("integrity error on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        409,
        "conflict",
        "The request conflicts with a concurrent change; nothing was changed. Please retry.",
    )


UNAVAILABLE_TEXT = "The database is unavailable; try again later"
UNSTORABLE_TEXT = (
    "The request holds a value the database can not store "
    "(out of range, too long or not valid text); nothing was changed"
)


def _database_error(request: Request, exc: Exception) -> Response:
    # OperationalError/InterfaceError: the database could not be reached, the connection
    # broke, or a statement ran past its timeout. The transaction is rolled back and the
    # pool reconnects on the next request, so this is temporary: 503, not 500.
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        log.warning(
            "database unavailable on %s %s: %s", request.method, request.url.path, exc.__class__
        )
        return error_response(503, "service_unavailable", UNAVAILABLE_TEXT)
    # DataError: a value the driver or server refuses (an integer out of range, a string
    # too long for its column); the input's fault, like any other invalid value.
    if isinstance(exc, DataError):
        log.info("data error on %s %s: %s", request.method, request.url.path, exc.orig)
        return error_response(400, "bad_request", UNSTORABLE_TEXT)
    return _unexpected(request, exc)


def _unexpected(request: Request, exc: Exception) -> Response:
    # The traceback goes to the server log only; the caller gets no internals.
    log.error(
        "unexpected error on %s %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc_info=exc,
    )
    return error_response(
        500, "internal_error", "An unexpected error occurred. Please try again later."
    )


def _on_loop(handler: Callable[[Request, Exception], Response]) -> Any:
    """Starlette runs a plain-function handler in its thread pool: a thread hop per error
    answer (every 401 and 404) for a handler that only builds a response."""

    async def run(request: Request, exc: Exception) -> Response:
        return handler(request, exc)

    return run


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure to the contract's error body."""
    handlers: list[tuple[type[Exception], Callable[[Request, Exception], Response]]] = [
        (KeyopsError, _keyops_error),
        (ClientDisconnect, _client_disconnect),
        (RequestValidationError, _validation_error),
        (StarletteHTTPException, _http_error),
        (IntegrityError, _integrity_error),
        (DBAPIError, _database_error),
        (PoolTimeoutError, _database_error),
        (Exception, _unexpected),
    ]
    for kind, handler in handlers:
        app.add_exception_handler(kind, _on_loop(handler))


class BodyLimitMiddleware:
    """Refuse request bodies over a limit with 413, before they are read whole.

    A declared Content-Length over the limit is refused at once; a chunked body is
    counted as it streams and cut off when it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await self._refuse(scope, receive, send, limit)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # An HTTPException passes FastAPI's body parsing unchanged.
                    raise StarletteHTTPException(413, _too_large_text(limit))
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(413, "payload_too_large", _too_large_text(limit))
        await response(scope, receive, send)


def _too_large_text(limit: int) -> str:
    return f"Request body is larger than the limit of {limit} bytes!"


# Path and query text never legitimately holds a control character (no name may hold
# one); a body's text may hold newlines and tabs, but never NUL, which PostgreSQL text
# can not store.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A JSON body can only carry NUL as the escape \u0000: a cheap test before parsing.
_JSON_NUL = b"\\u0000"
NUL_TEXT = "{field} may not contain a NUL character!"
PATH_TEXT = "The request path may not contain control characters!"
QUERY_TEXT = "Query parameter {name} may not contain control characters!"
QUERY_NAME_TEXT = "Query parameter names may not contain control characters!"


def nul_problem(field: str, value: str) -> str | None:
    """The error text for a text value holding NUL, or None."""
    return NUL_TEXT.format(field=field) if "\x00" in value else None


def _url_problem(scope: Scope) -> str | None:
    if _CONTROL.search(scope.get("path", "")):
        return PATH_TEXT
    query = scope.get("query_string", b"")
    if b"%" not in query and not _CONTROL.search(query.decode("latin-1")):
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if _CONTROL.search(name):
            return QUERY_NAME_TEXT
        if _CONTROL.search(value):
            return QUERY_TEXT.format(name=name)
    return None


def _json_problem(value: Any, field: str) -> str | None:
    if isinstance(value, str):
        return nul_problem(field, value)
    if isinstance(value, list):
        items: Any = ((f"{field}.{i}", v) for i, v in enumerate(value))
    elif isinstance(value, dict):
        for key in value:
            if "\x00" in key:
                return NUL_TEXT.format(field=field)
        items = ((key if field == "body" else f"{field}.{key}", v) for key, v in value.items())
    else:
        return None
    for name, item in items:
        problem = _json_problem(item, name)
        if problem:
            return problem
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return bool(media == b"application/json" or media.endswith(b"+json"))
    # FastAPI reads a body without a Content-Type as JSON.
    return True


class InputGuardMiddleware:
    """Refuse text no name or value can hold with 400, before routing or any query.

    Control characters in the path or the query and NUL in a JSON body's strings are
    refused here; urlencoded and multipart bodies are read by their endpoints, which
    apply the same NUL rule (``nul_problem``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _url_problem(scope)
        if problem is not None:
            await error_response(400, "bad_request", problem)(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        try:
            body, last = await _read_body(receive)
        except StarletteHTTPException as exc:
            # The body limit (the outer middleware) cut the body off while it streamed.
            code = "payload_too_large" if exc.status_code == 413 else "bad_request"
            response = error_response(exc.status_code, code, str(exc.detail))
            await response(scope, receive, send)
            return
        if _JSON_NUL in body:
            try:
                problem = _json_problem(json.loads(body), "body")
            except ValueError:
                problem = None  # not JSON: the endpoint reports that in its own words
            if problem is not None:
                await error_response(400, "bad_request", problem)(scope, receive, send)
                return
        # A client that left mid-body is replayed as such (more_body, then the
        # disconnect), so the endpoint's read raises ClientDisconnect rather than
        # taking the part that arrived for the whole body.
        replay: list[Message] = [
            {"type": "http.request", "body": body, "more_body": last is not None}
        ]
        if last is not None:
            replay.append(last)

        async def replay_receive() -> Message:
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replay_receive, send)


async def _read_body(receive: Receive) -> tuple[bytes, Message | None]:
    """The whole body, and a disconnect message if the client left while it streamed."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None
