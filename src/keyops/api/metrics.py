"""``/metrics`` in the Prometheus text format, and the middleware that counts requests.

The middleware is pure ASGI and sits outermost, so it times every answer, refusals and
errors included. It labels a request with the path template of the route Starlette
matched (``scope["route"]``, set by the router on the same scope dict; for the
slash-less twin of a route, the form registered first, the documented one), never the
raw path; a request no route matched is ``<unmatched>``. Its per-request work is two
clock reads, one dict lookup and one observation of a cached histogram child (whose
``_count`` is the request count): the label set of a (route, method, status) is resolved
once, on first use.

Who may scrape is ``KEYOPS_METRICS_ACCESS``:

- ``loopback`` (default): clients connecting from 127.0.0.0/8 or ::1; others get 403.
  (A reverse proxy on the same host is loopback too: use ``token`` behind one.)
- ``token``: ``Authorization: Bearer`` with ``KEYOPS_METRICS_TOKEN`` (a scrape secret
  of at least 16 characters, for Prometheus's ``authorization.credentials_file``) or a
  personal access token of a ``ROLE_ADMIN`` user. A missing or unknown token is the
  usual 401 ``Invalid token``; another user's token is 403.
- ``open``: anyone.
- ``off``: no ``/metrics`` route (404) and no request counting.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from functools import partial
from time import perf_counter
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyops.api.deps import bearer_token
from keyops.api.routing import SlashAgnosticRouter
from keyops.config import Settings
from keyops.domain.roles import Role
from keyops.domain.tokens import TokenService
from keyops.errors import Forbidden
from keyops.metrics import HTTP_REQUEST_SECONDS, scrape_registry
from keyops.metrics.database import DatabaseCollector, read_facts
from keyops.storage.db import Database

__all__ = ["UNMATCHED", "RequestMetricsMiddleware", "RouteTemplates", "install"]

UNMATCHED = "<unmatched>"
# Any other method (there should be none: the HTTP parser knows these) is one label.
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
_OTHER = "OTHER"


class RouteTemplates:
    """The label of each route object: its full path template, a twin's the first
    registered form's."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._by_route: dict[int, str] | None = None

    def _build(self) -> dict[int, str]:
        first: dict[tuple[Any, frozenset[str], str], str] = {}
        labels: dict[int, str] = {}
        for context in iter_route_contexts(self.app.routes):
            path = context.path_format
            if not path:
                continue
            twins = (context.endpoint, frozenset(context.methods or ()), path.rstrip("/"))
            labels[id(context.original_route)] = first.setdefault(twins, path)
        return labels

    def label(self, route: Any) -> str:
        if route is None:
            return UNMATCHED
        if self._by_route is None:
            # Built on first use: every route is registered by then.
            self._by_route = self._build()
        found = self._by_route.get(id(route))
        if found is not None:
            return found
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        return str(path) if path else UNMATCHED


class RequestMetricsMiddleware:
    """Count and time every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, *, templates: RouteTemplates) -> None:
        self.app = app
        self.templates = templates
        # (id of the route or None, method, status) -> its histogram child's observe
        self._series: dict[tuple[int, str, int], Callable[[float], None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # What ServerErrorMiddleware (outside) answers if nothing was sent.
        status = 500

        def send_status(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        start = perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = perf_counter() - start
            route = scope.get("route")
            method = scope["method"]
            if method not in _METHODS:
                method = _OTHER
            key = (id(route), method, status)
            observe = self._series.get(key)
            if observe is None:
                observe = self._new_series(key, route, method, status)
            observe(elapsed)

    def _new_series(
        self, key: tuple[int, str, int], route: Any, method: str, status: int
    ) -> Callable[[float], None]:
        child = HTTP_REQUEST_SECONDS.labels(method, self.templates.label(route), str(status))
        self._series[key] = child.observe
        return child.observe


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


async def check_access(request: Request, settings: Settings, db: Database) -> None:
    """Let the scrape through or raise the error its access mode answers."""
    mode = settings.metrics_access
    if mode == "open":
        return
    if mode == "loopback":
        if not _is_loopback(request.client.host if request.client else None):
            raise Forbidden(
                "Metrics are served to loopback clients only (KEYOPS_METRICS_ACCESS=loopback)"
            )
        return
    token = bearer_token(request)
    secret = settings.metrics_token
    # Compared as digests: equal length, constant time.
    if secret is not None and hmac.compare_digest(
        _digest(token), _digest(secret.get_secret_value())
    ):
        return
    principal = await db.read(lambda s: TokenService(s).authenticate(token))
    if not principal.has(Role.ADMIN):
        raise Forbidden.lacking([Role.ADMIN.value])


router = SlashAgnosticRouter()


@router.get("/metrics", include_in_schema=False, response_class=Response)
async def metrics(request: Request) -> Response:
    """Every metric, in the Prometheus text format (0.0.4)."""
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.db
    await check_access(request, settings, db)
    facts = await db.read(partial(read_facts, node_ttl_seconds=settings.gateway_node_ttl_seconds))
    registry = scrape_registry(DatabaseCollector(facts))
    # Rendering thousands of series is CPU work: not on the event loop.
    body = await anyio.to_thread.run_sync(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)


def install(app: FastAPI, settings: Settings) -> None:
    """Add ``/metrics`` and the request middleware (outermost: call it last)."""
    if settings.metrics_access == "off":
        return
    app.include_router(router)
    app.add_middleware(RequestMetricsMiddleware, templates=RouteTemplates(app))
