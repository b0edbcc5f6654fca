"""JWKs: the service (create, generate, rename, delete, read), their sources (one
resolver per source type) and following the material they were derived from."""

from keyops.domain.jwks.follow import JwkFollower, jwk_results
from keyops.domain.jwks.model import (
    GenerateInput,
    JwkInput,
    JwkResult,
    JwkUpdate,
    JwkUpdateAction,
    UpdateScope,
    generate_from_input,
    jwk_update_from_query,
)
from keyops.domain.jwks.service import JwkService

__all__ = [
    "GenerateInput",
    "JwkFollower",
    "JwkInput",
    "JwkResult",
    "JwkService",
    "JwkUpdate",
    "JwkUpdateAction",
    "UpdateScope",
    "generate_from_input",
    "jwk_results",
    "jwk_update_from_query",
]
