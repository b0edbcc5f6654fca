"""Access tokens: issued once in clear, stored as SHA-256, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from keyops.domain.roles import Principal
from keyops.domain.users import UserService
from keyops.errors import BadRequest, NotFound, Unauthorized
from keyops.storage.models import AccessToken, User
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.tokens import TokenRepository
from keyops.storage.repositories.users import UserRepository

TOKEN_PREFIX = "kops_"  # noqa: S105 - a marker, not a secret
PERSONAL = "personal"
MAX_ID = 2**31 - 1
OAUTH = "oauth"


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh token with 256 bits of randomness."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    record: AccessToken


class TokenService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.tokens = TokenRepository(session)

    def _issue(
        self, user: User, *, name: str, kind: str, expires_at: datetime | None
    ) -> IssuedToken:
        token = new_token()
        record = AccessToken(
            user_id=user.id,
            name=name,
            kind=kind,
            token_hash=hash_token(token),
            prefix=token[: len(TOKEN_PREFIX) + 6],
            expires_at=expires_at,
        )
        self.tokens.add(record)
        return IssuedToken(token, record)

    def issue_oauth(self, user_id: int, ttl: int, new_password_hash: str) -> IssuedToken:
        """The client-credentials grant's token, once the password was checked
        (``users.verify_password``, outside this transaction)."""
        user = UserRepository(self.session).get(user_id)
        if user is None or not user.enabled:
            # Deleted or disabled while the password was being checked.
            raise Unauthorized("Bad credentials")
        if new_password_hash:
            user.password_hash = new_password_hash
        now = utcnow()
        # Keep the table small: tokens that expired a day ago can never be used again.
        self.tokens.purge_expired(now - timedelta(days=1))
        return self._issue(
            user, name="client_credentials", kind=OAUTH, expires_at=now + timedelta(seconds=ttl)
        )

    def create_personal(self, username: str, name: str, expires_at: datetime | None) -> IssuedToken:
        """A personal access token for a user; the clear token is only in the result."""
        if not name.strip():
            raise BadRequest("Token name can not be empty!")
        if expires_at is not None and expires_at <= utcnow():
            raise BadRequest("Token expiration must be in the future!")
        user = UserService(self.session).get(username)
        return self._issue(user, name=name.strip(), kind=PERSONAL, expires_at=expires_at)

    def list(self, username: str | None = None) -> Sequence[AccessToken]:
        user_id = None
        if username is not None:
            user_id = (UserService(self.session).get(username)).id
        return self.tokens.list_all(user_id=user_id, kind=PERSONAL)

    def find(self, token_id: int) -> AccessToken | None:
        """Any token by id: a personal one or one issued at login (``/auth/token``)."""
        # Ids are 32-bit on PostgreSQL; a larger number would fail in the driver, not here.
        return self.tokens.get(token_id) if 0 < token_id <= MAX_ID else None

    def revoke(self, token_id: int) -> AccessToken:
        record = self.find(token_id)
        if record is None:
            raise NotFound(f"Token (id: {token_id}) is not found!")
        if record.revoked_at is None:
            record.revoked_at = utcnow()
        return record

    def revoke_presented(self, token: str) -> bool:
        """Revoke the token itself (RFC 7009: holding it is enough); False if unknown."""
        found = self.tokens.credentials(hash_token(token))
        if found is None:
            return False
        self.revoke(found.token_id)
        return True

    def authenticate(self, token: str) -> Principal:
        """The principal a bearer token stands for; Unauthorized if it does not hold."""
        digest = hash_token(token)
        found = self.tokens.credentials(digest)
        # The lookup is by hash, so a timing difference reveals nothing about the token;
        # the explicit compare guards against a collation that folds case.
        if found is None or not hmac.compare_digest(found.token_hash, digest):
            raise Unauthorized("Invalid token")
        now = utcnow()
        if found.revoked_at is not None or (
            found.expires_at is not None and found.expires_at <= now
        ):
            raise Unauthorized("Invalid token")
        if not found.enabled:
            raise Unauthorized("Invalid token")
        return Principal(
            user_id=found.user_id,
            username=found.username,
            roles=found.roles,
            token_id=found.token_id,
        )


def check_grant(grant_type: str | None, client_id: str | None, client_secret: str | None) -> None:
    """The shape checks of the client-credentials grant, before any lookup."""
    if grant_type != "client_credentials":
        raise BadRequest(
            "GrantType value must be client_credentials!", error="unsupported_grant_type"
        )
    if not client_id or not client_secret:
        raise Unauthorized("Bad credentials")


def parse_expiry(value: str | None) -> datetime | None:
    """``YYYY-MM-DD`` (valid through that day, UTC) or ``never``/empty for no expiry."""
    if value is None or value.strip().lower() in ("", "never"):
        return None
    try:
        day = datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BadRequest(
            f"Token expiration ({value}) is not valid: use YYYY-MM-DD or never!"
        ) from None
    return day + timedelta(days=1)
