"""Routes that answer with and without a trailing slash, and literal segments that win.

Two decisions about paths live here:

- Every path answers with and without its trailing slash (contract decision 3), so
  neither form is answered by a redirect.
- A literal segment names an operation, and it wins over a parameter in the same
  place: ``/jwks/generate`` is the generate operation only, never the JWK named
  ``generate``. Without this, ``GET /jwks/generate`` would be answered by get-JWK and a
  405 on that path would advertise ``Allow: GET, POST, PUT, DELETE`` for a path whose
  only operation is ``POST``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

__all__ = ["KeyopsRoute", "SlashAgnosticRouter"]


def _twin(path: str) -> str:
    return path[:-1] if path.endswith("/") else path + "/"


def _prefix_pattern(prefix: str) -> re.Pattern[str]:
    """What every path under ``prefix`` starts with (a parameter is one segment)."""
    parts = ["[^/]+" if is_param else re.escape(text) for is_param, text in _segments(prefix)]
    return re.compile("/".join(parts) + "(?:/|$)")


def _segments(path: str) -> list[tuple[bool, str]]:
    """A path as (is_parameter, literal text or parameter name) per segment."""
    out = []
    for segment in path.split("/"):
        if segment.startswith("{") and segment.endswith("}") and segment.count("{") == 1:
            out.append((True, segment[1:-1].split(":", 1)[0]))
        else:
            out.append((False, segment))
    return out


def _shadow(winner: str, loser: str) -> dict[str, str] | None:
    """The parameter values of ``loser`` that ``winner`` claims, or None if it claims none.

    ``winner`` takes precedence when, at the first segment where the two differ in kind,
    ``winner`` has a literal and ``loser`` a parameter (the rule most routers use: the
    more specific pattern wins). A request then belongs to ``winner`` exactly when the
    loser's parameters hold the winner's literals.
    """
    a, b = _segments(winner), _segments(loser)
    if len(a) != len(b):
        return None
    claims: dict[str, str] = {}
    decided = False
    for (a_param, a_text), (b_param, b_text) in zip(a, b, strict=True):
        if not a_param and not b_param and a_text != b_text:
            return None
        if a_param and not b_param and not b_text:
            return None  # a parameter never matches the empty segment of a trailing slash
        if not decided and a_param != b_param:
            if a_param:
                return None
            decided = True
        if not a_param and b_param:
            claims[b_text] = a_text
    return claims if decided else None


class KeyopsRoute(APIRoute):
    """An APIRoute that leaves a path to a sibling route whose literal segment claims it."""

    shadowed_by: tuple[Mapping[str, str], ...] = ()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # The path test first: FastAPI's full match costs several times more, and most
        # routes a request is tried against are not its own.
        if scope["type"] == "http" and not self.path_regex.match(get_route_path(scope)):
            return Match.NONE, {}
        match, child_scope = super().matches(scope)
        if match is not Match.NONE and self.shadowed_by:
            params = child_scope.get("path_params", {})
            for claim in self.shadowed_by:
                if all(str(params.get(name)) == text for name, text in claim.items()):
                    return Match.NONE, {}
        return match, child_scope


class SlashAgnosticRouter(APIRouter):
    """Registers each route twice, so neither form of a path is answered by a redirect.

    Redirecting a missing slash (FastAPI's default) drops a multipart body in many
    clients; the documented form is the one shown in the OpenAPI document. Its routes
    are ``KeyopsRoute``s, so literal segments win over parameters among them.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("redirect_slashes", False)
        kwargs.setdefault("route_class", KeyopsRoute)
        super().__init__(**kwargs)
        self._holds = _prefix_pattern(self.prefix)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # Every route of the router starts with its prefix: a path that does not is no
        # route's here, and the application's other routers are not scanned route by route.
        if scope["type"] == "http" and not self._holds.match(get_route_path(scope)):
            return Match.NONE, {}
        return super().matches(scope)

    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().add_api_route(path, endpoint, **kwargs)
        full = self.prefix + path
        if full not in ("", "/"):
            twin_kwargs = {**kwargs, "include_in_schema": False}
            if twin_kwargs.get("operation_id"):
                twin_kwargs["operation_id"] = twin_kwargs["operation_id"] + "_twin"
            super().add_api_route(_twin(path), endpoint, **twin_kwargs)
        self._resolve_shadows()

    def _resolve_shadows(self) -> None:
        routes = [r for r in self.routes if isinstance(r, KeyopsRoute)]
        for loser in routes:
            claims = []
            for winner in routes:
                if winner.path_format != loser.path_format:
                    claim = _shadow(winner.path_format, loser.path_format)
                    if claim is not None and claim not in claims:
                        claims.append(claim)
            loser.shadowed_by = tuple(claims)
