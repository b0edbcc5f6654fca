"""Queries on access tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session, selectinload

from keyops.storage.models import AccessToken, User, UserRole
from keyops.storage.prepared import Prepared


@dataclass(frozen=True, slots=True)
class TokenCredentials:
    """A token's record and its user's, as authenticating a request needs them."""

    token_id: int
    token_hash: str
    revoked_at: datetime | None
    expires_at: datetime | None
    user_id: int
    username: str
    enabled: bool
    roles: frozenset[str]


# Built once: every authenticated request runs it.
_CREDENTIALS = Prepared(
    select(
        AccessToken.id,
        AccessToken.token_hash,
        AccessToken.revoked_at,
        AccessToken.expires_at,
        User.id.label("user_id"),
        User.username,
        User.enabled,
        UserRole.role,
    )
    .join(User, User.id == AccessToken.user_id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .where(AccessToken.token_hash == bindparam("token_hash"))
)


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, token: AccessToken) -> AccessToken:
        self.session.add(token)
        self.session.flush()
        return token

    def credentials(self, token_hash: str) -> TokenCredentials | None:
        """The token and its user in one statement, or None."""
        rows = _CREDENTIALS.execute(self.session, {"token_hash": token_hash})
        if not rows:
            return None
        first = rows[0]
        return TokenCredentials(
            first.id,
            first.token_hash,
            first.revoked_at,
            first.expires_at,
            first.user_id,
            first.username,
            first.enabled,
            frozenset(r.role for r in rows if r.role is not None),
        )

    def get(self, token_id: int) -> AccessToken | None:
        return self.session.get(AccessToken, token_id, options=[selectinload(AccessToken.user)])

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
