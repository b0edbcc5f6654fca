"""Queries on JWKs; every lookup is scoped by project."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from keyops.storage.models import Certificate, CryptoKey, Jwk, Keystore, Project
from keyops.storage.prepared import Prepared

# Built once per source kind: every update of a source runs one.
_REFERENCING = {
    kind: select(Jwk)
    .where(column == bindparam("source_id"))
    .order_by(Jwk.project_id, Jwk.name)
    .with_for_update()
    for kind, column in (
        ("certificate", Jwk.source_certificate_id),
        ("key", Jwk.source_key_id),
        ("keystore", Jwk.source_keystore_id),
    )
}

# Whether any JWK follows the material: most changes have none to re-derive, and the
# entity load below costs more than the rest of such a change's reads together.
_ANY_REFERENCING = {
    kind: Prepared(select(Jwk.id).where(column == bindparam("source_id")).limit(1))
    for kind, column in (
        ("certificate", Jwk.source_certificate_id),
        ("key", Jwk.source_key_id),
        ("keystore", Jwk.source_keystore_id),
    )
}

# The kinds of material a JWK can be derived from (and follow), by name.
SOURCE_KINDS = frozenset(_REFERENCING)
# update_many's statement per tuple of columns it sets.
_UPDATES: dict[tuple[str, ...], Prepared] = {}


class JwkRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, project_id: int, name: str) -> Jwk | None:
        return self.session.scalar(
            select(Jwk).where(Jwk.project_id == project_id, Jwk.name == name)
        )

    def list_for_project(self, project_id: int) -> Sequence[Jwk]:
        stmt = select(Jwk).where(Jwk.project_id == project_id).order_by(Jwk.name)
        return (self.session.scalars(stmt)).all()

    def kid_holders(self, project_ids: Sequence[int] | None, kids: Sequence[str]) -> list[Any]:
        """(id, project_id, name, kid, public_json) of the JWKs of the given projects (of
        every project when None) that publish one of ``kids`` (not secret: ``oct``), in
        id order. Columns only: one kid may be held by thousands."""
        found: list[Any] = []
        for start in range(0, len(kids), 500):  # bounded IN lists
            stmt = select(Jwk.id, Jwk.project_id, Jwk.name, Jwk.kid, Jwk.public_json).where(
                Jwk.kid.in_(kids[start : start + 500]), Jwk.key_type != "oct"
            )
            if project_ids is not None:
                stmt = stmt.where(Jwk.project_id.in_(project_ids))
            found += self.session.execute(stmt.order_by(Jwk.id)).all()
        return found

    def with_project_names(self, project_ids: Sequence[int] | None) -> Sequence[tuple[Jwk, str]]:
        """JWKs of the given projects (of every project when None) and their project's
        name, in one statement."""
        stmt = select(Jwk, Project.name).join(Project, Project.id == Jwk.project_id)
        if project_ids is not None:
            stmt = stmt.where(Jwk.project_id.in_(project_ids))
        return [(jwk, name) for jwk, name in self.session.execute(stmt).all()]

    def referencing(self, source: str, source_id: int) -> Sequence[Jwk]:
        """JWKs derived from a certificate, key or keystore, locked for the change."""
        if not _ANY_REFERENCING[source].execute(self.session, {"source_id": source_id}):
            # The material's own row is locked by the change: no JWK can start
            # following it before the change commits.
            return []
        return self.session.scalars(_REFERENCING[source], {"source_id": source_id}).all()

    def source_names(self, jwks: Sequence[Jwk]) -> dict[int, str]:
        """JWK id -> name of the certificate, key or keystore it is attached to."""
        names: dict[int, str] = {}
        for model, column in (
            (Certificate, "source_certificate_id"),
            (CryptoKey, "source_key_id"),
            (Keystore, "source_keystore_id"),
        ):
            by_source: dict[int, list[int]] = {}
            for j in jwks:
                source_id = getattr(j, column)
                if source_id is not None:
                    by_source.setdefault(source_id, []).append(j.id)
            if not by_source:
                continue
            stmt = select(model.id, model.name).where(model.id.in_(by_source))
            for source_id, name in self.session.execute(stmt):
                for jwk_id in by_source[source_id]:
                    names[jwk_id] = name
        return names

    def update_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Set columns of many JWKs, each row naming its ``id``: one bulk statement."""
        if not rows:
            return
        columns = tuple(k for k in rows[0] if k != "id")
        stmt = _UPDATES.get(columns)
        if stmt is None:
            table: Table = Jwk.__table__  # type: ignore[assignment]
            stmt = _UPDATES[columns] = Prepared(
                update(table)
                .where(table.c.id == bindparam("jwk_id"))
                .values({c: bindparam(f"new_{c}") for c in columns})
            )
        stmt.executemany(
            self.session, [{"jwk_id": r["id"], **{f"new_{c}": r[c] for c in columns}} for r in rows]
        )

    def add(self, jwk: Jwk) -> Jwk:
        self.session.add(jwk)
        self.session.flush()
        return jwk

    def delete(self, jwk: Jwk) -> None:
        self.session.delete(jwk)
        self.session.flush()
