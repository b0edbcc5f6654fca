"""desired state committed with each change; revisions per environment

Each environment records the revision of its newest committed desired state
(``revision``) and the newest revision its target confirmed (``applied_revision``); the
publish status is derived from the two instead of being stored. Each project counts the
changes to its resources (``content_revision``), which cached lists are checked against.
PostgreSQL hands out revisions from a sequence instead of a single counter row every
writer locked.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("revision", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("applied_revision", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.execute(
        """
        UPDATE environments SET revision = (
            SELECT MAX(r) FROM (
                SELECT environments.settings_revision AS r
                UNION ALL
                SELECT MAX(d.revision) FROM deployed_artifacts d
                WHERE d.environment_id = environments.id
            ) AS revisions
        )
        """
    )
    op.execute("UPDATE environments SET revision = 0 WHERE revision IS NULL")
    op.execute("UPDATE environments SET applied_revision = revision WHERE status = 'PUBLISHED'")
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("status")
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("content_revision", sa.BigInteger(), nullable=False, server_default="0")
        )
    if op.get_bind().dialect.name == "postgresql":
        start = (
            op.get_bind()
            .execute(sa.text("SELECT COALESCE(MAX(value), 0) + 1 FROM revision_counter"))
            .scalar_one()
        )
        op.execute(f"CREATE SEQUENCE keyops_revision_seq START WITH {int(start)}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE revision_counter SET value = (SELECT last_value FROM keyops_revision_seq)"
        )
        op.execute("DROP SEQUENCE keyops_revision_seq")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("content_revision")
    with op.batch_alter_table("environments") as batch:
        batch.add_column(
            sa.Column("status", sa.String(32), nullable=False, server_default="PUBLISHED")
        )
    op.execute(
        "UPDATE environments SET status = 'REPUBLISH_REQUIRED' WHERE applied_revision < revision"
    )
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("applied_revision")
        batch.drop_column("revision")
