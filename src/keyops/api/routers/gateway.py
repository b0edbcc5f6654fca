"""The gateway node protocol: long-poll sync, acknowledgements, goodbye.

Nodes authenticate with a per-environment node credential, not a user token. Each
check runs in its own short transaction, so a waiting node holds no database lock.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import Field, ValidationError

from keyops.api.deps import DatabaseDep, KeyringDep, SettingsDep, bearer_token
from keyops.api.responses import ContractJSONResponse
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.common import CamelModel
from keyops.config import Settings
from keyops.domain.gateway import GatewayService
from keyops.secrets import Keyring
from keyops.storage.models import Environment

router = SlashAgnosticRouter(prefix="/apiops/gateway", tags=["gateway"])
POLL_INTERVAL = 0.25


class AckBody(CamelModel):
    node: str = Field(max_length=200)
    # Revisions are BIGINT columns: a larger value is no revision the manager ever made.
    revision: int = Field(ge=0, le=2**63 - 1)
    listen: str = Field(default="", max_length=300)
    fingerprints: dict[str, Any] = Field(default_factory=dict)
    error: str | None = Field(default=None, max_length=2000)


def _service(session: Any, keyring: Keyring, settings: Settings) -> GatewayService:
    return GatewayService(session, keyring, node_ttl_seconds=settings.gateway_node_ttl_seconds)


async def _environment(
    db: DatabaseDep, request: Request, keyring: KeyringDep, settings: SettingsDep
) -> Environment:
    token = bearer_token(request)
    async with db.transaction() as session:
        return await _service(session, keyring, settings).authenticate(token)


# A dependency, so the credential is checked before the query parameters are validated:
# a caller without a valid credential learns nothing about the request (401 first).
NodeEnvironment = Annotated[Environment, Depends(_environment)]


async def _ack_body(request: Request) -> AckBody:
    """The acknowledgement, read only once the node is authenticated."""
    try:
        return AckBody.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


@router.get("/sync/", summary="Long-poll for the environment's snapshot (gateway nodes)")
async def sync(
    request: Request,
    db: DatabaseDep,
    keyring: KeyringDep,
    settings: SettingsDep,
    env: NodeEnvironment,
    node: Annotated[str, Query(max_length=200)],
    since: Annotated[int, Query(ge=-1)] = -1,
    wait: Annotated[float, Query(ge=0, le=120)] = 20.0,
) -> Response:
    deadline = time.monotonic() + min(wait, settings.gateway_poll_seconds)
    hello = True
    while True:
        async with db.transaction() as session:
            service = _service(session, keyring, settings)
            # Only the poll's first check marks the node connected, so a goodbye that
            # lands while this poll winds down is not undone by its next check.
            await service.touch(env, node, hello=hello)
            hello = False
            fresh = await session.get(Environment, env.id)
            assert fresh is not None
            # since=-1 (or absent) is a node that holds nothing yet: it gets the snapshot
            # at once, even of an environment still at revision 0.
            # A node ahead of the manager (a database restored from backup) gets the
            # manager's state too, rather than waiting for revisions that may never come.
            current = await service.revision(fresh)
            if since < 0 or current != since:
                return ContractJSONResponse(await service.snapshot(fresh))
        if time.monotonic() >= deadline or await request.is_disconnected():
            return Response(status_code=204)
        await asyncio.sleep(POLL_INTERVAL)


@router.delete("/sync/", summary="A node going away (gateway nodes)")
async def goodbye(
    db: DatabaseDep,
    keyring: KeyringDep,
    settings: SettingsDep,
    env: NodeEnvironment,
    node: Annotated[str, Query(max_length=200)],
) -> dict[str, Any]:
    async with db.transaction() as session:
        await _service(session, keyring, settings).disconnect(env, node)
    return {"success": True}


@router.post(
    "/ack/",
    summary="A node reports the revision it applied (gateway nodes)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": AckBody.model_json_schema(by_alias=True)}},
        }
    },
)
async def ack(
    request: Request,
    env: NodeEnvironment,
    db: DatabaseDep,
    keyring: KeyringDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    body = await _ack_body(request)
    async with db.transaction() as session:
        fresh = await session.get(Environment, env.id)
        assert fresh is not None
        await _service(session, keyring, settings).ack(
            fresh, body.node, body.revision, body.listen, body.fingerprints, body.error
        )
    return {"success": True}
