"""The gateway node protocol: long-poll sync, acknowledgements, goodbye.

Nodes authenticate with a per-environment node credential, not a user token. What a
poll needs (the credential, the environment's revision, its snapshot, the node's
presence) comes from the replica's ``NodeHub`` (domain/gateway_hub.py): an idle poll
runs no statement and holds no transaction; a change is read and rendered once per
replica, whatever the number of nodes, and the acks it brings are written in groups.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import Field, ValidationError
from sqlalchemy.orm import Session

from keyops.api.deps import Keyops, KeyopsDep, bearer_token
from keyops.api.responses import ContractJSONResponse
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.common import CamelModel
from keyops.domain.gateway import GatewayService
from keyops.domain.gateway_hub import Ack, NodeHub
from keyops.storage import notify

router = SlashAgnosticRouter(prefix="/apiops/gateway", tags=["gateway"])


class AckDriver(CamelModel):
    """What the node's gateway driver did with the last snapshot it tried to apply."""

    name: str = Field(max_length=40)
    revision: int = Field(ge=0, le=2**63 - 1)
    outcome: str = Field(max_length=20)  # applied | unchanged | failed
    message: str = Field(default="", max_length=2000)
    at: str | None = Field(default=None, max_length=40)


class AckBody(CamelModel):
    node: str = Field(max_length=200)
    # Revisions are BIGINT columns: a larger value is no revision the manager ever made.
    revision: int = Field(ge=0, le=2**63 - 1)
    listen: str = Field(default="", max_length=300)
    fingerprints: dict[str, Any] = Field(default_factory=dict)
    error: str | None = Field(default=None, max_length=2000)
    # Nodes with a driver say what it did; a failure's reason is also in ``error``.
    driver: AckDriver | None = None


def _service(session: Session, k: Keyops) -> GatewayService:
    return GatewayService.of(session, k.keyring, k.settings)


async def _environment(request: Request, k: KeyopsDep) -> int:
    return await k.nodes.authenticate(bearer_token(request))


# A dependency, so the credential is checked before the query parameters are validated:
# a caller without a valid credential learns nothing about the request (401 first).
# The environment's id.
NodeEnvironment = Annotated[int, Depends(_environment)]


async def _ack_body(request: Request) -> AckBody:
    """The acknowledgement, read only once the node is authenticated."""
    try:
        return AckBody.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


@router.get("/sync/", summary="Long-poll for the environment's snapshot (gateway nodes)")
async def sync(
    request: Request,
    k: KeyopsDep,
    env: NodeEnvironment,
    node: Annotated[str, Query(max_length=200)],
    since: Annotated[int, Query(ge=-1)] = -1,
    wait: Annotated[float, Query(ge=0, le=120)] = 20.0,
) -> Response:
    hub = k.nodes
    deadline = time.monotonic() + min(wait, k.settings.gateway_poll_seconds)
    # Heard from before the first check: a commit between the check and the wait wakes it.
    with k.db.notifier.subscribe([notify.environment_topic(env)]) as changes:
        # Only the poll's first check says hello, so a goodbye that lands while this
        # poll winds down is not undone.
        await hub.hello(env, node)
        revision = await hub.revision(env)
        touched = time.monotonic()
        # since=-1 (or absent) is a node that holds nothing yet: it gets the snapshot at
        # once, even of an environment still at revision 0. A node ahead of the manager
        # (a database restored from backup) gets the manager's state too, rather than
        # waiting for revisions that may never come.
        if since >= 0 and revision == since:
            revision = await _wait(request, changes, hub, env, node, since, deadline, touched)
            if revision == since:
                return Response(status_code=204)
    snapshot = await hub.snapshot(env, revision)
    return Response(snapshot.body, media_type=ContractJSONResponse.media_type)


async def _wait(
    request: Request,
    changes: notify.Subscription,
    hub: NodeHub,
    env: int,
    node: str,
    since: int,
    deadline: float,
    touched: float,
) -> int:
    """The environment's revision once it moved past ``since``, or ``since`` when the
    poll is over (its deadline passed, or the node went away).

    A waiting poll wakes only when its environment changed (a commit in any replica:
    LISTEN/NOTIFY on PostgreSQL), when the node's presence is due (a poll longer than the
    node TTL keeps the node counted as connected) or when the node closes its connection
    (the ASGI server's ``http.disconnect``): no timer ticks per poll while nothing happens.
    """
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        while True:
            now = time.monotonic()
            if now - touched >= hub.refresh_seconds:
                hub.seen(env, node)
                touched = now
            remaining = deadline - now
            if remaining <= 0 or gone.done():
                return since
            heard = asyncio.ensure_future(
                changes.wait(min(remaining, touched + hub.refresh_seconds - now))
            )
            await asyncio.wait({heard, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not heard.done():  # the node went away
                heard.cancel()
                return since
            if heard.result():
                revision = await hub.revision(env)
                if revision != since:
                    return revision
    finally:
        gone.cancel()


async def _disconnected(request: Request) -> None:
    """Returns when the client closed the connection (the request has no body to read:
    the next ASGI message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.delete("/sync/", summary="A node going away (gateway nodes)")
async def goodbye(
    k: KeyopsDep, env: NodeEnvironment, node: Annotated[str, Query(max_length=200)]
) -> dict[str, Any]:
    k.nodes.goodbye(env, node)
    await k.db.write(lambda s: _service(s, k).disconnect(env, node))
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
async def ack(request: Request, env: NodeEnvironment, k: KeyopsDep) -> dict[str, Any]:
    body = await _ack_body(request)
    # Written with the other acks that arrive meanwhile, in one transaction (the hub).
    await k.nodes.ack(
        env, Ack(body.node, body.revision, body.listen, body.fingerprints, body.error)
    )
    return {"success": True}
