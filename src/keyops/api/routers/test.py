"""Test endpoints: healthcheck (no auth) and secure hello."""

from __future__ import annotations

from fastapi.responses import PlainTextResponse

from keyops.api.deps import (
    CurrentPrincipal,
    KeyopsDep,
)
from keyops.api.routing import SlashAgnosticRouter

router = SlashAgnosticRouter(prefix="/apiops/test", tags=["test"])


@router.head("/healthcheck", response_class=PlainTextResponse, include_in_schema=False)
@router.get("/healthcheck", response_class=PlainTextResponse, summary="Healthcheck")
async def healthcheck(k: KeyopsDep) -> PlainTextResponse:
    # OK means the service can reach its database, not merely that the process is up.
    await k.db.ping()
    return PlainTextResponse("OK")


@router.get("/hello/{name}", response_class=PlainTextResponse, summary="Secure hello")
async def hello(name: str, _principal: CurrentPrincipal) -> PlainTextResponse:
    return PlainTextResponse(f"Hello {name}")
