"""POST /apiops/auth/token: the OAuth2 client-credentials grant."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from keyops.api.deps import KeyopsDep
from keyops.api.errors import nul_problem
from keyops.api.responses import ContractJSONResponse
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.auth import TokenRead
from keyops.cpu import run_cpu
from keyops.domain import audit
from keyops.domain.tokens import IssuedToken, TokenService, check_grant
from keyops.domain.users import UserService, verify_password
from keyops.errors import BadRequest, Unauthorized

router = SlashAgnosticRouter(prefix="/apiops/auth", tags=["auth"])

FORM = "application/x-www-form-urlencoded"


def _form_body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of a form-encoded endpoint."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {"requestBody": {"required": True, "content": {FORM: {"schema": schema}}}}


async def _form_fields(request: Request) -> dict[str, list[str]]:
    """The urlencoded body's fields, each given once and free of NUL; 400 otherwise."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM:
        raise BadRequest(
            f"Request body must be {FORM}, not {content_type or 'empty'}!",
            error="invalid_request",
        )
    raw = (await request.body()).decode("utf-8", errors="replace")
    # parse_qs keeps repeated fields; a repeated credential is ambiguous, so refuse it.
    fields = parse_qs(raw, keep_blank_values=True)
    if any(len(v) > 1 for v in fields.values()):
        raise BadRequest("Each parameter may be given only once!", error="invalid_request")
    # PostgreSQL text can not hold NUL: refuse it before the credential is looked up.
    for name, values in fields.items():
        problem = nul_problem("A parameter name", name) or nul_problem(name, values[0])
        if problem is not None:
            raise BadRequest(problem, error="invalid_request")
    return fields


@router.post(
    "/token",
    response_model=TokenRead,
    summary="Create an access token (client credentials)",
    openapi_extra=_form_body(
        ["grant_type", "client_id", "client_secret"],
        {
            "grant_type": {"type": "string", "enum": ["client_credentials"]},
            "client_id": {"type": "string"},
            "client_secret": {"type": "string", "format": "password"},
        },
    ),
)
async def create_token(request: Request, k: KeyopsDep) -> Response:
    fields = await _form_fields(request)

    def field(name: str) -> str | None:
        values = fields.get(name)
        return values[0] if values else None

    client_id, secret = field("client_id"), field("client_secret")
    check_grant(field("grant_type"), client_id, secret)
    assert client_id is not None and secret is not None
    candidate = await k.db.read(lambda s: UserService(s).login(client_id))
    # argon2 costs tens of milliseconds of CPU: never on the event loop, never in a
    # transaction.
    new_hash = await run_cpu(verify_password, candidate, secret)
    if candidate is None or new_hash is None:
        raise Unauthorized("Bad credentials")
    ttl = k.settings.token_ttl_seconds

    def issue(session: Session) -> IssuedToken:
        issued = TokenService(session).issue_oauth(candidate.user_id, ttl, new_hash)
        # The audit entry of the login (appended as this commits) names who logged in.
        ctx = audit.current.get()
        if ctx is not None:
            ctx.authenticated(client_id, issued.record.id)
        return issued

    issued = await k.db.write(issue)
    body = TokenRead(access_token=issued.token, expires_in=ttl)
    return ContractJSONResponse(
        body.model_dump(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


@router.post(
    "/revoke",
    summary="Revoke an access token (RFC 7009)",
    openapi_extra=_form_body(["token"], {"token": {"type": "string", "format": "password"}}),
)
async def revoke_token(request: Request, k: KeyopsDep) -> Response:
    """Holding a token is enough to end it (the console's logout, ``keyops logout``). As
    RFC 7009 says, an unknown or already revoked token answers 200 too."""
    values = (await _form_fields(request)).get("token")
    token = values[0] if values else ""
    if not token:
        raise BadRequest("token is required!", error="invalid_request")
    await k.db.write(lambda s: TokenService(s).revoke_presented(token))
    return ContractJSONResponse(
        {"success": True}, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )
