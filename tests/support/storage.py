"""Direct access to the test database through keyops' own storage layer.

For the few facts an HTTP client cannot see or arrange: what is stored in a column,
or a token whose expiry has passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from keyops.config import Settings
from keyops.domain.tokens import hash_token
from keyops.storage.db import Database
from keyops.storage.models import AccessToken, User


@contextmanager
def open_database(settings: Settings) -> Iterator[Database]:
    """The app's database, opened a second time; disposed on exit."""
    db = Database(settings.async_database_url)
    try:
        yield db
    finally:
        db.dispose()


async def set_token_expiry(settings: Settings, token: str, expires_at: datetime | None) -> None:
    """Move the expiry of an issued token, found by its hash."""
    with open_database(settings) as db, db.transaction() as session:
        result = session.execute(
            update(AccessToken)
            .where(AccessToken.token_hash == hash_token(token))
            .values(expires_at=expires_at)
        )
        assert getattr(result, "rowcount", 0) == 1


async def token_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every column of every row of access_tokens."""
    with open_database(settings) as db, db.transaction() as session:
        rows = session.execute(select(AccessToken.__table__)).mappings().all()
        return [dict(r) for r in rows]


async def user_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every column of every row of users."""
    with open_database(settings) as db, db.transaction() as session:
        rows = session.execute(select(User.__table__)).mappings().all()
        return [dict(r) for r in rows]
