"""What JWK requests carry, what replacing a source does to derived JWKs, and the
rules every JWK obeys (names, kids, errors)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from keyops.crypto.jwk import JwkError, generate_jwk, jwk_thumbprint
from keyops.deploy.plan import ChangePlan
from keyops.domain.common import resource_name
from keyops.errors import BadRequest
from keyops.storage.models import Jwk, Project

SOURCE_TYPES = ("URL", "COPY_PASTE", "CERTIFICATE", "PUBLIC_KEY", "PRIVATE_KEY", "KEYSTORE")
KEY_TYPES = {"RSA": "RSA", "EC": "EC", "oct": "OCT", "OKP": "OKP"}
# Paths of operations under /jwks/: a JWK of such a name could not be read by name.
RESERVED_NAMES = frozenset(
    {
        "generate",
        "parse-from-url",
        "parse-from-clipboard",
        "parse-from-certificate",
        "parse-from-key",
        "parse-from-keystore",
    }
)


class JwkUpdateAction(StrEnum):
    UPDATE = "UPDATE"
    NULLIFY = "NULLIFY"


class UpdateScope(StrEnum):
    SAME_PROJECT = "SAME_PROJECT"
    ALL_PROJECTS = "ALL_PROJECTS"


@dataclass(frozen=True, slots=True)
class JwkUpdate:
    """What replacing a source does to the JWKs derived from it (decision 4)."""

    action: JwkUpdateAction = JwkUpdateAction.NULLIFY
    scope: UpdateScope | None = None


@dataclass(slots=True)
class JwkInput:
    """The JSON body of create JWK and of the parse-from-* endpoints, before validation."""

    name: str | None
    description: str | None
    source_type: str | None
    certificate_name: str | None = None
    key_name: str | None = None
    key_store_name: str | None = None
    alias_name: str | None = None
    environment_name: str | None = None
    use_type: str | None = None
    algorithm: str | None = None
    kid: str | None = None
    url: str | None = None
    jwk_str: str | None = None


@dataclass(slots=True)
class GenerateInput:
    """The body of generate JWK, flattened from its per-type object."""

    name: str | None
    description: str | None
    type: str | None
    kid: str | None
    params: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class JwkChange:
    jwk: Jwk
    plan: ChangePlan


@dataclass(frozen=True, slots=True)
class Rederivation:
    jwk: Jwk
    project: Project
    new: dict[str, Any] | None  # None: detach instead


@dataclass(frozen=True, slots=True)
class ResolvedSource:
    """Where a JWK comes from, resolved to rows, and the JWK it yields."""

    jwk: dict[str, Any]
    source_type: str
    certificate_id: int | None = None
    key_id: int | None = None
    keystore_id: int | None = None
    alias: str | None = None
    environment: str | None = None
    url: str | None = None
    use_type: str | None = None
    # The kid is someone's choice (the request's, or the pasted or fetched JWK's own):
    # never changed to keep kids unique (domain/jwks/kids.py).
    kid_chosen: bool = False


@dataclass(frozen=True, slots=True)
class JwkResult:
    """What a source's update did to one JWK derived from it (``jwkResults``)."""

    project_name: str
    name: str
    action: str  # UPDATED: re-derived from the new material; DETACHED: source cleared
    old_kid: str
    new_kid: str

    def as_contract(self) -> dict[str, str]:
        return {
            "projectName": self.project_name,
            "name": self.name,
            "action": self.action,
            "oldKid": self.old_kid,
            "newKid": self.new_kid,
        }


def not_found(name: str) -> BadRequest:
    return BadRequest(f"JWK (name: {name}) is not found!")


def already_exists(name: str) -> BadRequest:
    return BadRequest(
        f"JWK (name: {name}) is already exist! Try update operation if want to change its value."
    )


def crypto(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return call()
    except JwkError as exc:
        raise BadRequest(exc.reason) from None


def jwk_name(value: str | None) -> str:
    """A valid JWK name that is not the path of a JWK operation."""
    clean = resource_name("JWK", value)
    if clean in RESERVED_NAMES:
        raise BadRequest(f"JWK name ({clean}) is reserved: /jwks/{clean} is an operation!")
    return clean


def with_kid(jwk: dict[str, Any]) -> dict[str, Any]:
    """The JWK with a kid: its own, or its RFC 7638 thumbprint."""
    if jwk.get("kid"):
        return jwk
    return {"kty": jwk["kty"], "kid": crypto(lambda: {"t": jwk_thumbprint(jwk)})["t"], **jwk}


def jwk_update_from_query(
    update_referenced_jwks: str | None, jwk_update_action: str | None, update_scope: str | None
) -> JwkUpdate:
    """Read both generations of the update's JWK parameters; refuse contradictions."""
    legacy: JwkUpdateAction | None = None
    if update_referenced_jwks is not None:
        flag = update_referenced_jwks.strip().lower()
        if flag not in ("true", "false"):
            raise BadRequest(
                f"updateReferencedJwks ({update_referenced_jwks}) must be true or false!"
            )
        legacy = JwkUpdateAction.UPDATE if flag == "true" else JwkUpdateAction.NULLIFY
    action: JwkUpdateAction | None = None
    if jwk_update_action is not None and jwk_update_action.strip():
        try:
            action = JwkUpdateAction(jwk_update_action.strip())
        except ValueError:
            raise BadRequest(
                f"jwkUpdateAction ({jwk_update_action}) is not valid! Valid values: UPDATE, NULLIFY"
            ) from None
    if legacy is not None and action is not None and legacy != action:
        raise BadRequest(
            f"updateReferencedJwks={update_referenced_jwks} contradicts"
            f" jwkUpdateAction={jwk_update_action}!"
        )
    chosen = action or legacy or JwkUpdateAction.NULLIFY
    scope: UpdateScope | None = None
    if update_scope is not None and update_scope.strip():
        try:
            scope = UpdateScope(update_scope.strip())
        except ValueError:
            raise BadRequest(
                f"updateScope ({update_scope}) is not valid! Valid values: SAME_PROJECT,"
                " ALL_PROJECTS"
            ) from None
    if chosen is JwkUpdateAction.UPDATE and scope is None:
        raise BadRequest("updateScope value can not be empty!")
    return JwkUpdate(chosen, scope)


def detach(jwk: Jwk) -> None:
    jwk.source_certificate_id = None
    jwk.source_key_id = None
    jwk.source_keystore_id = None
    jwk.source_alias = None


def generate_from_input(inp: GenerateInput, now: datetime) -> dict[str, Any]:
    """Validate the generate body and make the key (slow for big RSA: run off the loop)."""
    if inp.type is None or not inp.type.strip():
        raise BadRequest("JWK type can not be empty!")
    kty = inp.type.strip().upper()
    if kty not in ("RSA", "EC", "OCT", "OKP"):
        raise BadRequest(f"JWK type ({inp.type}) is not valid! Valid values: RSA, EC, OCT, OKP")
    params = inp.params
    if params is None:
        raise BadRequest(f"{kty.lower()} value can not be empty!")

    def opt_dt(field: str) -> datetime | None:
        value = params.get(field)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise BadRequest(f"{field} must be an ISO 8601 date/time!")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"{field} ({value}) is not a valid ISO 8601 date/time!") from None
        if parsed.tzinfo is None:
            raise BadRequest(f"{field} ({value}) needs a time zone, e.g. Z!")
        return parsed

    size = params.get("keySize")
    if size is not None and not isinstance(size, int):
        raise BadRequest("keySize must be an integer!")
    curve = params.get("curveType")
    if curve is not None and not isinstance(curve, str):
        raise BadRequest("curveType must be a string!")
    return crypto(
        lambda: generate_jwk(
            kty,
            key_size=size,
            curve=curve,
            use_type=params.get("keyUseType"),
            algorithm=params.get("algorithm"),
            kid=inp.kid.strip() if inp.kid and inp.kid.strip() else None,
            key_id_type=params.get("keyIdType"),
            not_before=opt_dt("notBeforeTime"),
            expiration=opt_dt("expirationTime"),
            now=now,
        )
    )
