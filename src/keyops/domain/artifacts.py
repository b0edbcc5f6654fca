"""How a JWK looks to an environment (certificates, keys and keystores build theirs in
their own service's ``artifact``)."""

from __future__ import annotations

import json
from typing import Any

from keyops.deploy.target import Artifact, ArtifactRef
from keyops.storage.models import Jwk

JWK = "jwk"


def jwk_ref(project: str, name: str) -> ArtifactRef:
    return ArtifactRef(JWK, project, name)


def jwk_content(full: dict[str, Any]) -> bytes:
    """The whole JWK as canonical JSON: what an environment holds of it."""
    return json.dumps(full, sort_keys=True, separators=(",", ":")).encode("utf-8")


def jwk_artifact(
    project: str, jwk: Jwk, full: dict[str, Any], *, content: bytes | None = None
) -> Artifact:
    """A JWK in an environment: the whole JWK as canonical JSON (``content``, when the
    caller already has it), under its kid; sealed by the target when it has private
    members (a gateway signs with them)."""
    return Artifact(
        jwk_ref(project, jwk.name),
        content if content is not None else jwk_content(full),
        alias=jwk.kid,
        sensitive=jwk.private_sealed is not None,
    )
