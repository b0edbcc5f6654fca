"""strip private members from JWKs derived from another project's keys and keystores

A JWK of one project derived from the admin project's key or keystore used to keep the
private members (issue 8): such a JWK now holds its public members only. JWKs stored
before that are mended here: the sealed private part is dropped (the public part is
kept apart from it, so nothing needs opening), a PRIVATE_KEY JWK becomes PUBLIC_KEY,
and a secret (oct) JWK, which has no public part, is also detached from its source.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_jwks = sa.table(
    "jwks",
    sa.column("project_id", sa.Integer),
    sa.column("source_type", sa.String),
    sa.column("source_key_id", sa.Integer),
    sa.column("source_keystore_id", sa.Integer),
    sa.column("source_alias", sa.String),
    sa.column("key_type", sa.String),
    sa.column("private_sealed", sa.LargeBinary),
)
_keys = sa.table("crypto_keys", sa.column("id", sa.Integer), sa.column("project_id", sa.Integer))
_stores = sa.table("keystores", sa.column("id", sa.Integer), sa.column("project_id", sa.Integer))


def _foreign() -> sa.ColumnElement[bool]:
    """A JWK whose sealed private part came from another project's key or keystore."""
    from_key = sa.exists().where(
        _keys.c.id == _jwks.c.source_key_id, _keys.c.project_id != _jwks.c.project_id
    )
    from_store = sa.exists().where(
        _stores.c.id == _jwks.c.source_keystore_id, _stores.c.project_id != _jwks.c.project_id
    )
    return sa.and_(_jwks.c.private_sealed.is_not(None), sa.or_(from_key, from_store))


def upgrade() -> None:
    # A secret (oct) JWK has no public part: its secret goes and it is detached.
    op.execute(
        _jwks.update()
        .where(_jwks.c.key_type == "oct", _foreign())
        .values(private_sealed=None, source_key_id=None, source_keystore_id=None, source_alias=None)
    )
    op.execute(
        _jwks.update()
        .where(_foreign())
        .values(
            private_sealed=None,
            source_type=sa.case(
                (_jwks.c.source_type == "PRIVATE_KEY", "PUBLIC_KEY"), else_=_jwks.c.source_type
            ),
        )
    )


def downgrade() -> None:
    # Dropped secrets can not come back; the schema is unchanged.
    pass
