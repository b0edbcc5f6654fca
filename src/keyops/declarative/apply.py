"""Carry out a plan through the API, in dependency order (``Plan.steps``).

Each step is one call (a JWK's replace is a delete and a create: a derived JWK can not be
re-pointed). A refused call stops the run: what was done so far stays done, and the
``Result`` says which step failed and why; applying the same file again picks up from
there, since the plan is recomputed from the server. An environment a change could not
be rolled out to does not stop it: the change is committed (the desired state lives on
the server; the roll-out is retried by its reconciler) and the result lists it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from keyops.client import Change, Client, KeyopsError
from keyops.declarative.plan import Action, Plan
from keyops.declarative.schema import (
    UPDATE_SCOPES,
    DesiredCertificate,
    DesiredJwk,
    DesiredKey,
    DesiredKeystore,
    UpdateJwks,
    UpdateScope,
)

__all__ = ["Outcome", "Result", "apply"]


@dataclass(frozen=True)
class Outcome:
    """One step done (or refused)."""

    action: Action
    failed_environments: tuple[str, ...] = ()
    # What the update did to JWKs that follow the resource: "UPDATED project/name".
    jwk_results: tuple[str, ...] = ()
    error: KeyopsError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed_environments


@dataclass
class Result:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def error(self) -> KeyopsError | None:
        """The refusal that stopped the run, if one did."""
        return next((o.error for o in self.outcomes if o.error is not None), None)

    @property
    def failed_environments(self) -> list[tuple[Action, str]]:
        return [(o.action, e) for o in self.outcomes for e in o.failed_environments]

    @property
    def done(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is None]


def _follow(update_jwks: UpdateJwks) -> tuple[bool | None, UpdateScope | None]:
    """The update's JWK query: re-derive in a scope, or the server's default (detach)."""
    scope = UPDATE_SCOPES.get(update_jwks)
    return (True, scope) if scope is not None else (None, None)


def _certificate(client: Client, a: Action, d: DesiredCertificate) -> Change:
    envs = list(d.environments)
    if a.op == "create":
        return client.certificates.create(
            d.project,
            d.name,
            pem=d.content,
            environments=envs,
            alias=d.alias,
            description=d.description,
        )
    follow, scope = _follow(d.update_jwks)
    return client.certificates.update(
        d.project,
        d.name,
        pem=d.content,
        environments=envs,
        alias=d.alias,
        description=d.description,
        update_referenced_jwks=follow,
        update_scope=scope,
    )


def _key(client: Client, a: Action, d: DesiredKey) -> Change:
    envs = list(d.environments)
    if a.op == "create":
        return client.keys.create(
            d.project,
            d.name,
            key_type=d.key_type,
            environments=envs,
            public_key=d.public_key,
            private_key=d.private_key,
            description=d.description,
        )
    follow, scope = _follow(d.update_jwks)
    return client.keys.update(
        d.project,
        d.name,
        key_type=d.key_type,
        environments=envs,
        public_key=d.public_key,
        private_key=d.private_key,
        description=d.description,
        update_referenced_jwks=follow,
        update_scope=scope,
    )


def _keystore(client: Client, a: Action, d: DesiredKeystore) -> Change:
    envs = list(d.environments)
    if a.op == "create":
        return client.keystores.create(
            d.project,
            d.name,
            environments=envs,
            file=d.content,
            store_type=d.store_type,
            password=d.password,
            key_password=d.key_password,
            description=d.description,
        )
    follow, scope = _follow(d.update_jwks)
    return client.keystores.update(
        d.project,
        d.name,
        environments=envs,
        file=d.content,
        store_type=d.store_type,
        password=d.password,
        key_password=d.key_password,
        description=d.description,
        update_referenced_jwks=follow,
        update_scope=scope,
    )


def _jwk(client: Client, d: DesiredJwk) -> Change:
    description = d.description or None
    if d.source_kind == "certificate":
        return client.jwks.parse_from_certificate(
            d.project,
            d.name,
            d.source,
            d.environment,
            use_type=d.use,
            algorithm=d.alg,
            kid=d.kid,
            description=description,
        )
    if d.source_kind == "key":
        return client.jwks.parse_from_key(
            d.project,
            d.name,
            d.source,
            d.environment,
            source_type="PRIVATE_KEY" if d.private else "PUBLIC_KEY",
            use_type=d.use,
            algorithm=d.alg,
            kid=d.kid,
            description=description,
        )
    assert d.alias is not None
    return client.jwks.parse_from_keystore(
        d.project,
        d.name,
        d.source,
        d.alias,
        d.environment,
        use_type=d.use,
        algorithm=d.alg,
        kid=d.kid,
        description=description,
    )


_DELETE: dict[str, Callable[[Client, str, str], Change]] = {
    "certificate": lambda c, p, n: c.certificates.delete(p, n),
    "key": lambda c, p, n: c.keys.delete(p, n),
    "keystore": lambda c, p, n: c.keystores.delete(p, n),
    "jwk": lambda c, p, n: c.jwks.delete(p, n),
}


def _step(client: Client, a: Action) -> list[Change]:
    if a.op == "delete":
        return [_DELETE[a.kind](client, a.project, a.name)]
    d = a.desired
    if isinstance(d, DesiredCertificate):
        return [_certificate(client, a, d)]
    if isinstance(d, DesiredKey):
        return [_key(client, a, d)]
    if isinstance(d, DesiredKeystore):
        return [_keystore(client, a, d)]
    assert isinstance(d, DesiredJwk)
    changes = [client.jwks.delete(a.project, a.name)] if a.op == "replace" else []
    return [*changes, _jwk(client, d)]


def apply(
    client: Client, plan: Plan, *, on_step: Callable[[Outcome], None] | None = None
) -> Result:
    """Do the plan's changes in dependency order; stop at the first refused call.
    ``on_step`` hears of each step as it is done."""
    result = Result()
    for action in plan.steps():
        try:
            changes = _step(client, action)
        except KeyopsError as exc:
            outcome = Outcome(action, error=exc)
        else:
            failed = tuple(dict.fromkeys(r.environment_name for c in changes for r in c.failed))
            followed = tuple(
                f"{j.action} {j.project_name}/{j.name}" for c in changes for j in c.jwk_results
            )
            outcome = Outcome(action, failed, followed)
        result.outcomes.append(outcome)
        if on_step is not None:
            on_step(outcome)
        if outcome.error is not None:
            break
    return result
