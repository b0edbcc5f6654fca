"""artifact contents: public deployed content stored once per distinct content

An admin certificate's JWK derived in a thousand projects is deployed to every
environment of each: thousands of deployed-artifact rows with the same bytes, all
rewritten by each re-derivation. Public (unsealed) content now lives once in
``artifact_contents`` under its SHA-256, and the artifact rows keep an empty
``content``; sealed content stays in its own row, sealed for it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ARTIFACTS = sa.table(
    "deployed_artifacts",
    sa.column("id", sa.Integer()),
    sa.column("content_hash", sa.String(64)),
    sa.column("content", sa.LargeBinary()),
    sa.column("sealed", sa.Boolean()),
    sa.column("present", sa.Boolean()),
)
_CONTENTS = sa.table(
    "artifact_contents",
    sa.column("content_hash", sa.String(64)),
    sa.column("content", sa.LargeBinary()),
)
_PUBLIC = sa.and_(_ARTIFACTS.c.present, sa.not_(_ARTIFACTS.c.sealed))


def upgrade() -> None:
    op.create_table(
        "artifact_contents",
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("content_hash", name="pk_artifact_contents"),
    )
    conn = op.get_bind()
    seen: set[str] = set()
    rows = conn.execute(
        sa.select(_ARTIFACTS.c.content_hash, _ARTIFACTS.c.content)
        .where(_PUBLIC)
        .order_by(_ARTIFACTS.c.id)
    )
    batch: list[dict[str, object]] = []
    for content_hash, content in rows:
        if content_hash in seen:
            continue
        seen.add(content_hash)
        batch.append({"content_hash": content_hash, "content": content})
    if batch:
        conn.execute(sa.insert(_CONTENTS), batch)
    conn.execute(sa.update(_ARTIFACTS).where(_PUBLIC).values(content=b""))


def downgrade() -> None:
    conn = op.get_bind()
    stored = (
        sa.select(_CONTENTS.c.content)
        .where(_CONTENTS.c.content_hash == _ARTIFACTS.c.content_hash)
        .scalar_subquery()
    )
    conn.execute(sa.update(_ARTIFACTS).where(_PUBLIC).values(content=stored))
    op.drop_table("artifact_contents")
