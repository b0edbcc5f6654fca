"""Queries behind expiry: every stored "not after", per environment, in a fixed number of
statements (one per kind) whatever the count.

Scope is a set of project ids, or ``None`` for every project. Certificates carry their
not-after in a column; keystore entries in the clear ``entries_json`` summary written at
upload (``endDate`` of each entry holding a certificate), so no secret is unsealed; JWKs
in the ``exp`` member of their public JSON. The last two are read as text and parsed by
the caller (``domain/expiry.py``): JSON functions differ between SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from keyops.storage.models import (
    Certificate,
    CertificateEnvironment,
    Environment,
    Jwk,
    Keystore,
    KeystoreEnvironment,
    Project,
)

__all__ = ["CertificateNotAfter", "ExpiryRepository", "JwkDocument", "KeystoreEntries"]


class CertificateNotAfter(NamedTuple):
    project_id: int
    project: str
    name: str
    environment: str
    not_after: datetime


class KeystoreEntries(NamedTuple):
    project_id: int
    project: str
    name: str
    environment: str
    entries_json: str


class JwkDocument(NamedTuple):
    project_id: int
    project: str
    name: str
    public_json: str


def _scoped(stmt: Any, column: Any, project_ids: Collection[int] | None) -> Any:
    if project_ids is None:
        return stmt
    return stmt.where(column.in_(list(project_ids)))


class ExpiryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def certificates(
        self, project_ids: Collection[int] | None, until: datetime | None = None
    ) -> Sequence[CertificateNotAfter]:
        """Each certificate's not-after per environment (at most ``until`` if given)."""
        stmt = (
            select(
                Project.id,
                Project.name,
                Certificate.name,
                Environment.name,
                CertificateEnvironment.not_after,
            )
            .join(Certificate, Certificate.id == CertificateEnvironment.certificate_id)
            .join(Project, Project.id == Certificate.project_id)
            .join(Environment, Environment.id == CertificateEnvironment.environment_id)
        )
        if until is not None:
            stmt = stmt.where(CertificateEnvironment.not_after <= until)
        stmt = _scoped(stmt, Certificate.project_id, project_ids)
        return [CertificateNotAfter(*row) for row in self.session.execute(stmt).all()]

    def keystores(self, project_ids: Collection[int] | None) -> Sequence[KeystoreEntries]:
        """Each keystore's entry summary per environment."""
        stmt = (
            select(
                Project.id,
                Project.name,
                Keystore.name,
                Environment.name,
                KeystoreEnvironment.entries_json,
            )
            .join(Keystore, Keystore.id == KeystoreEnvironment.keystore_id)
            .join(Project, Project.id == Keystore.project_id)
            .join(Environment, Environment.id == KeystoreEnvironment.environment_id)
        )
        stmt = _scoped(stmt, Keystore.project_id, project_ids)
        return [KeystoreEntries(*row) for row in self.session.execute(stmt).all()]

    def jwks(self, project_ids: Collection[int] | None) -> Sequence[JwkDocument]:
        """The public JSON of each JWK that may hold ``exp`` (a text pre-filter)."""
        stmt = (
            select(Project.id, Project.name, Jwk.name, Jwk.public_json)
            .join(Project, Project.id == Jwk.project_id)
            .where(Jwk.public_json.contains('"exp"'))
        )
        stmt = _scoped(stmt, Jwk.project_id, project_ids)
        return [JwkDocument(*row) for row in self.session.execute(stmt).all()]

    def keystore_entries_of(
        self, project_id: int, environment: str | None = None
    ) -> Sequence[tuple[int, str]]:
        """(keystore id, entries JSON) of each of the project's keystore rows (in that
        environment only, if given): what a list filtered by expiry reads first."""
        stmt = select(KeystoreEnvironment.keystore_id, KeystoreEnvironment.entries_json).join(
            Keystore, Keystore.id == KeystoreEnvironment.keystore_id
        )
        stmt = stmt.where(Keystore.project_id == project_id)
        if environment is not None:
            stmt = stmt.join(Environment, Environment.id == KeystoreEnvironment.environment_id)
            stmt = stmt.where(Environment.name == environment)
        return [(i, text) for i, text in self.session.execute(stmt).all()]

    def jwk_documents_of(self, project_id: int) -> Sequence[tuple[int, str]]:
        """(JWK id, public JSON) of the project's JWKs that may hold ``exp``."""
        stmt = select(Jwk.id, Jwk.public_json).where(
            Jwk.project_id == project_id, Jwk.public_json.contains('"exp"')
        )
        return [(i, text) for i, text in self.session.execute(stmt).all()]
