"""audit: the hash-chained audit log of changes and failed authorisations

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 14:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(100), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("source_address", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("project", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(32), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("environments", sa.Text(), nullable=False),
        sa.Column("before_sha256", sa.Text(), nullable=True),
        sa.Column("after_sha256", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"])
    op.create_index("ix_audit_entries_username", "audit_entries", ["username"])
    op.create_index("ix_audit_entries_project", "audit_entries", ["project"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_project", table_name="audit_entries")
    op.drop_index("ix_audit_entries_username", table_name="audit_entries")
    op.drop_index("ix_audit_entries_at", table_name="audit_entries")
    op.drop_table("audit_entries")
