"""Unknown query parameters are refused, once for every endpoint.

A parameter an endpoint does not declare used to be ignored, so ``?expiresWithinDays=30``
(for ``expiringWithinDays``) answered the whole, unfiltered list. ``install`` adds one
application dependency that compares the request's parameter names with the query
parameters its route declares (its FastAPI dependant and sub-dependencies, such as the
list parameters) and answers 400 with ``forms.unknown_names``, the text
unknown form fields get.

``page``, ``size`` and ``sort`` are the contract's common query parameters (base-url.md
shows ``/apiops/projects/?page=1&size=10``): a GET endpoint that declares none of them
(it does not page, e.g. list projects) still takes them and answers everything, as it
always did; an endpoint that pages takes exactly what it declares.

Exempt, because what they take is not theirs to declare: the OAuth token endpoint (RFC
6749 section 3.2: the server MUST ignore unrecognized request parameters), ``/metrics``
(scrapers add their own ``params``), and the OpenAPI document and page (Swagger UI adds
its own). Requests with no query string cost one dictionary lookup.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from keyops.api.forms import unknown_names

__all__ = ["COMMON", "EXEMPT_PATHS", "install", "known_query_params"]

EXEMPT_PATHS = frozenset(
    {
        "/apiops/auth/token",
        "/metrics",
        "/apiops/openapi",
        "/apiops/openapi.json",
        "/apiops/openapi.yaml",
    }
)

COMMON = ("page", "size", "sort")

# id(route) -> (the names it declares, in order; the names it takes), None: exempt.
# Routes live as long as the application, so their ids are stable keys.
_KNOWN: dict[int, tuple[tuple[str, ...], frozenset[str]] | None] = {}


def known_query_params(route: APIRoute) -> tuple[str, ...] | None:
    """The query parameter names ``route`` declares, or None if it takes any."""
    known = _known(route)
    return None if known is None else known[0]


def _known(route: APIRoute) -> tuple[tuple[str, ...], frozenset[str]] | None:
    key = id(route)
    if key not in _KNOWN:
        path = route.path_format.rstrip("/") or "/"
        if path in EXEMPT_PATHS:
            _KNOWN[key] = None
        else:
            declared = tuple(dict.fromkeys(_declared(route.dependant)))
            taken = set(declared)
            if "GET" in (route.methods or ()) and not taken & set(COMMON):
                taken.update(COMMON)
            _KNOWN[key] = (declared, frozenset(taken))
    return _KNOWN[key]


def _declared(dependant: Dependant) -> list[str]:
    """The query parameters of a dependant and of its sub-dependencies, in order."""
    names = [field.alias for field in dependant.query_params]
    for sub in dependant.dependencies:
        names += _declared(sub)
    return names


async def refuse_unknown_query_params(request: Request) -> None:
    """400 naming the parameters the route does not declare, and the ones it does."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _known(route)
    if known is None:
        return
    declared, taken = known
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in taken]
    if unknown:
        raise unknown_names("query parameter", unknown, declared)


def install(app: FastAPI) -> None:
    """Check every route's query parameters; call it before the routers are included."""
    app.router.dependencies.append(Depends(refuse_unknown_query_params))
