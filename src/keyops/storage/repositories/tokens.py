"""Queries on access tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from keyops.storage.models import AccessToken, User


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, token: AccessToken) -> AccessToken:
        self.session.add(token)
        self.session.flush()
        return token

    def get_by_hash(self, token_hash: str) -> AccessToken | None:
        stmt = (
            select(AccessToken)
            .where(AccessToken.token_hash == token_hash)
            .options(selectinload(AccessToken.user).selectinload(User.roles))
        )
        return self.session.scalar(stmt)

    def get(self, token_id: int) -> AccessToken | None:
        return self.session.get(AccessToken, token_id)

    def list_all(
        self, *, user_id: int | None = None, kind: str | None = None
    ) -> Sequence[AccessToken]:
        stmt = select(AccessToken).options(selectinload(AccessToken.user))
        if user_id is not None:
            stmt = stmt.where(AccessToken.user_id == user_id)
        if kind is not None:
            stmt = stmt.where(AccessToken.kind == kind)
        return (self.session.scalars(stmt.order_by(AccessToken.id))).all()

    def purge_expired(self, before: datetime) -> None:
        """Forget tokens that expired before the given instant."""
        self.session.execute(
            delete(AccessToken).where(
                AccessToken.expires_at.is_not(None), AccessToken.expires_at < before
            )
        )
