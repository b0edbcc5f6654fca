"""What certificates, keys and keystores share: the list's paging and filters, the
referencing-JWK options of an update or rollback, and the versions/rollback calls."""

from __future__ import annotations

from typing import ClassVar, Literal

from keyops.client._ops import Call, Group, Mode, Params, json_call, operation, seg
from keyops.client.models import Change, ResultList, Version

__all__ = ["JwkUpdateAction", "UpdateScope", "Versioned", "jwk_update", "list_params"]

JwkUpdateAction = Literal["UPDATE", "NULLIFY"]
UpdateScope = Literal["SAME_PROJECT", "ALL_PROJECTS"]


def jwk_update(
    update_referenced_jwks: bool | None,
    jwk_update_action: JwkUpdateAction | None,
    update_scope: UpdateScope | None,
) -> Params:
    """The query of an update or rollback: the seed's ``updateReferencedJwks`` or the later
    ``jwkUpdateAction``, with ``updateScope`` (decision 4). Left out: the server's default,
    NULLIFY (JWKs made from the old material are detached from it)."""
    return {
        "updateReferencedJwks": update_referenced_jwks,
        "jwkUpdateAction": jwk_update_action,
        "updateScope": update_scope,
    }


def list_params(
    page: int | None,
    size: int | None,
    sort: str | None,
    name: str | None,
    environment: str | None,
    expiring_within_days: int | None,
) -> Params:
    """A list's query: 0-based ``page`` and ``size`` (a paged answer has ``total_count``),
    ``sort`` (``name``, ``-name``; certificates also ``notAfter``), a ``name`` prefix,
    an ``environment``, ``expiring_within_days``."""
    return {
        "page": page,
        "size": size,
        "sort": sort,
        "name": name,
        "environment": environment,
        "expiringWithinDays": expiring_within_days,
    }


class Versioned(Group[Mode]):
    """A kind with kept versions: ``versions`` and ``rollback``."""

    _kind: ClassVar[str]

    def _base(self, project: str) -> str:
        return f"/apiops/projects/{seg(project)}/{self._kind}/"

    def _one(self, project: str, name: str) -> str:
        return f"{self._base(project)}{seg(name)}/"

    @operation
    def versions(self, project: str, name: str) -> Call[ResultList[Version]]:
        """The kept versions, newest first (public facts only, never material)."""
        return json_call("GET", self._one(project, name) + "versions/", ResultList[Version])

    @operation
    def rollback(
        self,
        project: str,
        name: str,
        version: int,
        *,
        update_referenced_jwks: bool | None = None,
        jwk_update_action: JwkUpdateAction | None = None,
        update_scope: UpdateScope | None = None,
    ) -> Call[Change]:
        """Make a kept version current again (re-created if it was deleted)."""
        params = {
            "version": version,
            **jwk_update(update_referenced_jwks, jwk_update_action, update_scope),
        }
        return json_call("POST", self._one(project, name) + "rollback/", Change, params=params)
