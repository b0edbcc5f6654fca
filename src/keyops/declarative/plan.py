"""What it takes to bring the server to the desired state: ``plan`` compares, by content
fingerprints (``fingerprints.py``), and never writes.

Every resource of a project in the file is ``create`` (not on the server), ``replace``
(on the server with other content, environments, alias, type or description),
``unchanged``, or, with ``prune``, ``delete`` (on the server, not in the file). Projects
the file does not name are never looked at.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from keyops.client import Client
from keyops.declarative.fingerprints import (
    MaterialError,
    certificate_fingerprint,
    key_fingerprint,
    key_type_of,
    keystore_fingerprint,
    server_key_fingerprint,
    sha256,
    short,
)
from keyops.declarative.schema import (
    DesiredCertificate,
    DesiredJwk,
    DesiredKey,
    DesiredKeystore,
    DesiredProject,
    DesiredState,
    SpecError,
    jwk_source_kind,
)

__all__ = ["KINDS", "Action", "Kind", "Op", "Plan", "plan"]

Kind = Literal["certificate", "key", "keystore", "jwk"]
Op = Literal["create", "replace", "delete", "unchanged"]
Desired = DesiredCertificate | DesiredKey | DesiredKeystore | DesiredJwk
# Sources before the JWKs made from them.
KINDS: tuple[Kind, ...] = ("certificate", "key", "keystore", "jwk")


@dataclass(frozen=True)
class Action:
    """One resource's step: what is done to it and why."""

    op: Op
    kind: Kind
    project: str
    name: str
    reason: str = ""
    desired: Desired | None = field(default=None, repr=False)
    # The fingerprints compared (short form), for the plan's table.
    current: str = ""
    wanted: str = ""


@dataclass(frozen=True)
class Plan:
    """Every resource's action, in the order a table shows them (project, kind, name)."""

    actions: tuple[Action, ...]

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.op != "unchanged"]

    @property
    def pending(self) -> bool:
        """Whether applying would change anything (``--dry-run`` exits 2 if so)."""
        return bool(self.changes)

    def count(self, op: Op) -> int:
        return sum(a.op == op for a in self.actions)

    def steps(self) -> list[Action]:
        """The changes in dependency order: deletes first, JWKs before what they come
        from; then creates and replaces, JWKs after what they come from."""
        rank = {k: i for i, k in enumerate(KINDS)}
        deletes = sorted((a for a in self.changes if a.op == "delete"), key=lambda a: -rank[a.kind])
        writes = sorted((a for a in self.changes if a.op != "delete"), key=lambda a: rank[a.kind])
        return deletes + writes


def _envs_diff(current: Iterable[str], wanted: Sequence[str]) -> list[str]:
    have, want = set(current), set(wanted)
    out = [f"+{e}" for e in wanted if e not in have]
    out += [f"-{e}" for e in sorted(have - want)]
    return [f"environments {' '.join(out)}"] if out else []


def _content_diff(current: dict[str, str], wanted: str) -> list[str]:
    differing = sorted(e for e, fp in current.items() if fp != wanted)
    return [f"content differs in {', '.join(differing)}"] if differing else []


def _one(values: Iterable[str]) -> str:
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else ",".join(distinct)


def _decide(kind: Kind, d: Desired, reasons: list[str], current: str, wanted: str) -> Action:
    op: Op = "replace" if reasons else "unchanged"
    return Action(op, kind, d.project, d.name, "; ".join(reasons), d, current, wanted)


def _material(where: str, compute: Callable[..., str], *args: Any) -> str:
    """A local fingerprint; material the server would refuse is said as a spec error."""
    try:
        return compute(*args)
    except MaterialError as exc:
        raise SpecError(f"{where}: {exc}") from None


class _Planner:
    def __init__(self, client: Client, prune: bool) -> None:
        self.client = client
        self.prune = prune
        self.actions: list[Action] = []

    def _prune(
        self, kind: Kind, project: str, on_server: Iterable[str], wanted: Iterable[str]
    ) -> None:
        if not self.prune:
            return
        for name in sorted(set(on_server) - set(wanted)):
            self.actions.append(Action("delete", kind, project, name, "not in the file"))

    def certificates(self, p: DesiredProject) -> dict[str, Op]:
        listed = {c.name: c for c in self.client.certificates.list(p.name).result_list}
        ops: dict[str, Op] = {}
        for name, d in p.certificates.items():
            wanted = _material(
                f"projects.{p.name}.certificates.{name}",
                certificate_fingerprint,
                d.content,
            )
            if name not in listed:
                action = Action("create", "certificate", p.name, name, "new", d, "", short(wanted))
            else:
                got = self.client.certificates.get(p.name, name)
                envs = {
                    e.environment_name: sha256(base64.b64decode(e.base64_encoded_content or ""))
                    for e in got.certificate_environment_list
                }
                reasons = _envs_diff(envs, d.environments) + _content_diff(envs, wanted)
                aliases = {e.alias for e in got.certificate_environment_list}
                if aliases and aliases != {d.alias}:
                    reasons.append("alias")
                if got.description != d.description:
                    reasons.append("description")
                action = _decide(
                    "certificate", d, reasons, short(_one(envs.values())), short(wanted)
                )
            self.actions.append(action)
            ops[name] = action.op
        self._prune("certificate", p.name, listed, p.certificates)
        return ops

    def keys(self, p: DesiredProject) -> dict[str, Op]:
        listed = {k.name: k for k in self.client.keys.list(p.name).result_list}
        ops: dict[str, Op] = {}
        for name, d in p.keys.items():
            where = f"projects.{p.name}.keys.{name}"
            wanted = _material(where, key_fingerprint, d.key_type, d.public_key, d.private_key)
            key_type = _material(where, key_type_of, d.key_type, d.public_key, d.private_key)
            got = listed.get(name)
            if got is None:
                action = Action("create", "key", p.name, name, "new", d, "", short(wanted))
            else:
                envs = {
                    e.environment_name: server_key_fingerprint(e.public_key, e.private_key)
                    for e in got.crypto_key_info_environment_list
                }
                reasons = _envs_diff(envs, d.environments) + _content_diff(envs, wanted)
                if got.key_type != key_type:
                    reasons.append(f"type {got.key_type} -> {key_type}")
                if got.description != d.description:
                    reasons.append("description")
                action = _decide("key", d, reasons, short(_one(envs.values())), short(wanted))
            self.actions.append(action)
            ops[name] = action.op
        self._prune("key", p.name, listed, p.keys)
        return ops

    def keystores(self, p: DesiredProject) -> dict[str, Op]:
        listed = {k.name: k for k in self.client.keystores.list(p.name).result_list}
        ops: dict[str, Op] = {}
        for name, d in p.keystores.items():
            wanted = keystore_fingerprint(d.content)
            got = listed.get(name)
            if got is None:
                action = Action("create", "keystore", p.name, name, "new", d, "", short(wanted))
            else:
                rows = got.key_store_environment_list
                envs = {e.environment_name: sha256(base64.b64decode(e.file or "")) for e in rows}
                reasons = _envs_diff(envs, d.environments) + _content_diff(envs, wanted)
                types = {e.type.upper() for e in rows}
                if types and types != {d.store_type}:
                    reasons.append(f"type {_one(types)} -> {d.store_type}")
                if got.description != d.description:
                    reasons.append("description")
                action = _decide("keystore", d, reasons, short(_one(envs.values())), short(wanted))
            self.actions.append(action)
            ops[name] = action.op
        self._prune("keystore", p.name, listed, p.keystores)
        return ops

    def jwks(self, p: DesiredProject, sources: dict[str, dict[str, Op]]) -> None:
        listed = {j.name: j for j in self.client.jwks.list(p.name).result_list}
        updates = {
            "certificate": {n: d.update_jwks for n, d in p.certificates.items()},
            "key": {n: d.update_jwks for n, d in p.keys.items()},
            "keystore": {n: d.update_jwks for n, d in p.keystores.items()},
        }
        for name, d in p.jwks.items():
            wanted = _identity(d)
            got = listed.get(name)
            if got is None:
                self.actions.append(Action("create", "jwk", p.name, name, "new", d, "", wanted))
                continue
            if got.source_id is None:
                current = f"{got.source_type or '?'} (detached)"
            else:
                current = _identity_of(
                    got.source_type,
                    got.source_id,
                    got.source_environment,
                    got.source_alias,
                    got.use_type,
                    got.algorithm,
                )
            reasons = []
            if current != wanted:
                reasons.append("source")
            if d.kid is not None and got.kid != d.kid:
                reasons.append("kid")
            if (got.description or "") != d.description:
                reasons.append("description")
            source_op = sources[d.source_kind].get(d.source)
            if source_op == "replace" and updates[d.source_kind][d.source] == "no":
                # The source's update detaches it (the server's default): made anew.
                reasons.append(f"{d.source_kind} {d.source} is replaced without update_jwks")
            action = _decide("jwk", d, reasons, current, wanted)
            if action.op == "unchanged" and source_op == "replace":
                action = Action(
                    "unchanged",
                    "jwk",
                    p.name,
                    name,
                    f"re-derived by the {d.source_kind}'s update",
                    d,
                    current,
                    wanted,
                )
            self.actions.append(action)
        # A JWK a file can not describe (URL, pasted, generated, detached) is never
        # pruned: apply could not make it again. The plan says it was left alone.
        managed = []
        for name, got in listed.items():
            kind, why = jwk_source_kind(got.source_type, got.source_id, got.source_environment)
            if kind is not None:
                managed.append(name)
            elif self.prune and name not in p.jwks:
                reason = f"kept: not described by a keyops.yaml ({why})"
                self.actions.append(Action("unchanged", "jwk", p.name, name, reason))
        self._prune("jwk", p.name, managed, p.jwks)


def _identity_of(
    source_type: str | None,
    source: str | None,
    environment: str | None,
    alias: str | None,
    use: str | None,
    alg: str | None,
) -> str:
    at = f"{source}@{environment}" + (f"/{alias}" if alias else "")
    return f"{source_type} {at} {use or '-'} {(alg or '-').upper()}"


def _identity(d: DesiredJwk) -> str:
    return _identity_of(d.source_type, d.source, d.environment, d.alias, d.use, d.alg)


def plan(
    client: Client, desired: DesiredState, *, prune: bool = False, project: str | None = None
) -> Plan:
    """Compare the desired state with the server's (reads only). ``project`` limits it to
    one project of the file; ``prune`` adds a delete for what the file does not name."""
    if project is not None and project not in desired.projects:
        raise SpecError(f"project {project} is not in the file")
    planner = _Planner(client, prune)
    for name, p in desired.projects.items():
        if project is not None and name != project:
            continue
        sources = {
            "certificate": planner.certificates(p),
            "key": planner.keys(p),
            "keystore": planner.keystores(p),
        }
        planner.jwks(p, sources)
    return Plan(tuple(planner.actions))
