"""gateway nodes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 15:12:29.152809
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "gateway_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_gateway_credentials_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_credentials")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gateway_credentials_token_hash")),
    )
    with op.batch_alter_table("gateway_credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gateway_credentials_environment_id"), ["environment_id"], unique=False
        )

    op.create_table(
        "gateway_nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("applied_revision", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("listen", sa.String(length=300), nullable=False),
        sa.Column("fingerprints_json", sa.Text(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_gateway_nodes_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_nodes")),
        sa.UniqueConstraint(
            "environment_id", "name", name=op.f("uq_gateway_nodes_environment_id_name")
        ),
    )
    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tls_project", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("tls_keystore", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("tls_alias", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("settings_revision", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:

    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.drop_column("settings_revision")
        batch_op.drop_column("tls_alias")
        batch_op.drop_column("tls_keystore")
        batch_op.drop_column("tls_project")

    op.drop_table("gateway_nodes")
    with op.batch_alter_table("gateway_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_credentials_environment_id"))

    op.drop_table("gateway_credentials")
