"""keys, keystores, sealed secrets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:29:41.234554
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "master_key_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_master_key_state")),
    )
    op.create_table(
        "crypto_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("key_type", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_crypto_keys_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crypto_keys")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_crypto_keys_project_id_name")),
    )
    op.create_table(
        "keystores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_keystores_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keystores")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_keystores_project_id_name")),
    )
    op.create_table(
        "crypto_key_environments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("public_der", sa.LargeBinary(), nullable=True),
        sa.Column("private_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("curve", sa.String(length=32), nullable=True),
        sa.Column("size_bits", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_crypto_key_environments_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["crypto_keys.id"],
            name=op.f("fk_crypto_key_environments_key_id_crypto_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crypto_key_environments")),
        sa.UniqueConstraint(
            "key_id",
            "environment_id",
            name=op.f("uq_crypto_key_environments_key_id_environment_id"),
        ),
    )
    with op.batch_alter_table("crypto_key_environments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_crypto_key_environments_environment_id", ["environment_id"], unique=False
        )

    op.create_table(
        "keystore_environments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("keystore_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("store_type", sa.String(length=16), nullable=False),
        sa.Column("file_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("password_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("entries_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_keystore_environments_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["keystore_id"],
            ["keystores.id"],
            name=op.f("fk_keystore_environments_keystore_id_keystores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keystore_environments")),
        sa.UniqueConstraint(
            "keystore_id",
            "environment_id",
            name=op.f("uq_keystore_environments_keystore_id_environment_id"),
        ),
    )
    with op.batch_alter_table("keystore_environments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_keystore_environments_environment_id", ["environment_id"], unique=False
        )

    with op.batch_alter_table("deployed_artifacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sealed", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    with op.batch_alter_table("jwks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_key_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("source_keystore_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("source_alias", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("private_sealed", sa.LargeBinary(), nullable=True))
        batch_op.create_index("ix_jwks_source_key_id", ["source_key_id"], unique=False)
        batch_op.create_index("ix_jwks_source_keystore_id", ["source_keystore_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_jwks_source_keystore_id_keystores"),
            "keystores",
            ["source_keystore_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_jwks_source_key_id_crypto_keys"),
            "crypto_keys",
            ["source_key_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:

    with op.batch_alter_table("jwks", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_jwks_source_key_id_crypto_keys"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_jwks_source_keystore_id_keystores"), type_="foreignkey"
        )
        batch_op.drop_index("ix_jwks_source_keystore_id")
        batch_op.drop_index("ix_jwks_source_key_id")
        batch_op.drop_column("private_sealed")
        batch_op.drop_column("source_alias")
        batch_op.drop_column("source_keystore_id")
        batch_op.drop_column("source_key_id")

    with op.batch_alter_table("deployed_artifacts", schema=None) as batch_op:
        batch_op.drop_column("sealed")

    with op.batch_alter_table("keystore_environments", schema=None) as batch_op:
        batch_op.drop_index("ix_keystore_environments_environment_id")

    op.drop_table("keystore_environments")
    with op.batch_alter_table("crypto_key_environments", schema=None) as batch_op:
        batch_op.drop_index("ix_crypto_key_environments_environment_id")

    op.drop_table("crypto_key_environments")
    op.drop_table("keystores")
    op.drop_table("crypto_keys")
    op.drop_table("master_key_state")
