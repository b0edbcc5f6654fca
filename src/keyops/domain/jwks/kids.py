"""Kids unique in every JWK Set a JWK is published in (issue 15, item 5).

A JWK is deployed to every environment its project may use, and a gateway node publishes
the environment's public JWKs as one JWK Set; a verifier picks the key by ``kid``. Two
different keys (or one key with another ``use``/``alg``, such as a SIGNATURE and an
ENCRYPTION JWK made from one certificate) under one kid make it pick the wrong one.

The rule, applied on create and on re-derivation (``JwkFollower``):

- The JWK Sets a JWK is in are those of its project's environments; the JWKs that may be
  in them are those of every project using one of those environments (an environment
  limited to no project serves them all) and of its own project.
- A kid collides only with a JWK that publishes *other* material under it: another key,
  or the same key declaring another ``use`` or ``alg``. The same public key with the same
  use and alg (a PUBLIC_KEY and a PRIVATE_KEY JWK of one key, one admin certificate in
  two projects) is the same entry to a verifier and keeps its kid; so is the same key
  without a ``use`` (or ``alg``), which a verifier may use for anything the other does.
- A kid keyops made (the RFC 7638 thumbprint, a generated TIMESTAMP/ISO_DATE/SHA kid)
  that would collide gets ``-<alg>`` appended (``-sig``/``-enc`` without an alg), then
  ``-2``, ``-3``... until it is free: the older JWK keeps the plain kid (reads show the
  newer one's). A kid that does not collide is exactly what it always was.
- A kid someone chose (the request's ``kid``, or the ``kid`` inside a pasted or fetched
  JWK: tokens already carry it) is never changed: a collision is refused with 400.
- Secret (``oct``) JWKs are never in a published JWK Set and are not checked.

Why suffix a made kid rather than refuse: a SIGNATURE and an ENCRYPTION JWK of one key
are legitimate and common, and a made kid means nothing to anyone yet. Why refuse a
chosen one: renaming it would silently break every token that carries it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from keyops.crypto.jwk import JwkError, key_thumbprint
from keyops.errors import BadRequest
from keyops.storage.repositories.environments import EnvironmentRepository
from keyops.storage.repositories.jwks import JwkRepository

__all__ = ["KidRegistry"]

Identity = tuple[str, str | None, str | None]


def compatible(a: Identity | None, b: Identity | None) -> bool:
    """Whether a verifier that picks either of two entries under one kid gets what it
    asked for: one key, and no ``use``/``alg`` that both declare differently."""
    if a is None or b is None or a[0] != b[0]:
        return False
    return all(x is None or y is None or x == y for x, y in zip(a[1:], b[1:], strict=True))


def identity_of(jwk: dict[str, Any]) -> Identity | None:
    """What a verifier sees of a JWK under its kid: key, use and alg (None: unreadable)."""
    try:
        thumbprint = key_thumbprint(jwk)
    except JwkError:
        return None
    return thumbprint, jwk.get("use"), jwk.get("alg")


@dataclass(slots=True)
class _Holder:
    """A JWK holding a kid; ``order`` is when it was registered (the first conflict
    found is the oldest holder's)."""

    jwk_id: int | None
    project_id: int
    name: str
    order: int


@dataclass(slots=True)
class _Kid:
    """The holders of one kid, grouped by what a verifier sees of them.

    A kid is typically held by many JWKs of one key (an admin certificate's JWK in every
    project): a check then looks at one group, not at every holder. Stored JWKs are
    grouped only when their kid is first checked, each distinct public JSON read once.
    """

    pending: list[tuple[_Holder, str | None]] = field(default_factory=list)
    groups: dict[Identity | None, list[_Holder]] = field(default_factory=dict)

    def resolved(
        self, identities: dict[str, Identity | None]
    ) -> dict[Identity | None, list[_Holder]]:
        for holder, public_json in self.pending:
            identity = None
            if public_json is not None:
                if public_json not in identities:
                    identities[public_json] = identity_of(json.loads(public_json))
                identity = identities[public_json]
            self.groups.setdefault(identity, []).append(holder)
        self.pending.clear()
        return self.groups


class KidRegistry:
    """The kids held in the JWK Sets of some projects' environments: the limits read once
    for a change, each kid's holders when it is first asked about (or ``preload``-ed
    together), then kept up to date as the change assigns kids."""

    def __init__(
        self, session: Session, project_ids: Iterable[int], *, leaving: Iterable[int] = ()
    ) -> None:
        """``leaving``: JWKs whose kid the change replaces (they are re-derived)."""
        envs = EnvironmentRepository(session)
        limits: dict[int, list[int]] = {}
        self._scope: dict[int, frozenset[int] | None] = {}
        for project_id, usable in envs.usable_by_projects(project_ids).items():
            ids = {project_id}
            for env in usable:
                if env.id not in limits:
                    limits[env.id] = envs.limited_to(env.id)
                if not limits[env.id]:
                    self._scope[project_id] = None  # an environment serving every project
                    break
                ids.update(limits[env.id])
            else:
                self._scope[project_id] = frozenset(ids)
        wanted: list[int] | None = []
        for scope in self._scope.values():
            if scope is None or wanted is None:
                wanted = None
            else:
                wanted.extend(scope)
        self._repo = JwkRepository(session)
        self._loaded_scope = None if wanted is None else sorted(set(wanted))
        self._gone = set(leaving)
        # Holders per kid, loaded when a kid is first asked about (``preload`` fetches
        # many in one statement): a create asks about one kid, not about every JWK.
        self._by_kid: dict[str, _Kid] = {}
        self._identities: dict[str, Identity | None] = {}
        # The identity of each JWK being assigned, by object (re-derived JWKs share one).
        self._mine: dict[int, tuple[dict[str, Any], Identity | None]] = {}
        self._order = 0

    def preload(self, kids: Iterable[str]) -> None:
        """Load the holders of these kids in one statement."""
        wanted = sorted({k for k in kids if k and k not in self._by_kid})
        if not wanted:
            return
        for kid in wanted:
            self._by_kid[kid] = _Kid()
        for jwk in self._repo.kid_holders(self._loaded_scope, wanted):
            if jwk.id in self._gone:
                continue
            holder = _Holder(jwk.id, jwk.project_id, jwk.name, self._next())
            self._by_kid[jwk.kid].pending.append((holder, jwk.public_json))

    def _entry(self, kid: str) -> _Kid:
        if kid not in self._by_kid:
            self.preload([kid])
        return self._by_kid[kid]

    def _next(self) -> int:
        self._order += 1
        return self._order

    def _visible(self, project_id: int, holder: _Holder) -> bool:
        scope = self._scope.get(project_id, frozenset({project_id}))
        return scope is None or holder.project_id in scope

    def _conflict(
        self, project_id: int, kid: str, mine: Identity | None, jwk_id: int | None
    ) -> _Holder | None:
        entry = self._entry(kid)
        found: _Holder | None = None
        for identity, holders in entry.resolved(self._identities).items():
            if compatible(identity, mine):
                continue
            for holder in holders:
                if found is not None and holder.order > found.order:
                    break  # holders are in registration order: none older in this group
                if jwk_id is not None and holder.jwk_id == jwk_id:
                    continue
                if self._visible(project_id, holder):
                    found = holder
                    break
        return found

    def _identity(self, jwk: dict[str, Any]) -> Identity | None:
        known = self._mine.get(id(jwk))
        if known is None or known[0] is not jwk:
            known = self._mine[id(jwk)] = (jwk, identity_of(jwk))
        return known[1]

    def assign(
        self,
        project_id: int,
        name: str,
        jwk: dict[str, Any],
        *,
        chosen: bool,
        jwk_id: int | None = None,
    ) -> dict[str, Any]:
        """``jwk`` with a kid free in its JWK Sets (a copy if it had to change), now held
        by it; a ``chosen`` kid that collides is refused."""
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid or jwk.get("kty") == "oct":
            return jwk
        mine = self._identity(jwk)
        holder = self._conflict(project_id, kid, mine, jwk_id)
        if holder is not None and chosen:
            if holder.project_id == project_id:
                raise BadRequest(
                    f"kid ({kid}) is already used by JWK (name: {holder.name})! A kid is"
                    " unique in the JWK Set of each environment: choose another kid."
                )
            raise BadRequest(
                f"kid ({kid}) is already used by another JWK published to the same"
                " environments! A kid is unique in the JWK Set of each environment: choose"
                " another kid."
            )
        if holder is not None:
            use = {"sig": "sig", "enc": "enc"}.get(str(jwk.get("use")))
            base = f"{kid}-{jwk.get('alg') or use or str(jwk['kty']).lower()}"
            kid, number = base, 2
            while self._conflict(project_id, kid, mine, jwk_id) is not None:
                kid, number = f"{base}-{number}", number + 1
            jwk = {**jwk, "kid": kid}
        entry = self._entry(kid)
        entry.resolved(self._identities).setdefault(mine, []).append(
            _Holder(jwk_id, project_id, name, self._next())
        )
        return jwk
