"""certificates, jwks, deployments

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:22:02.150665
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "revision_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revision_counter")),
    )
    # The single counter row every change increments.
    op.execute("INSERT INTO revision_counter (id, value) VALUES (1, 0)")
    op.create_table(
        "certificates",
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
            name=op.f("fk_certificates_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_certificates_project_id_name")),
    )
    op.create_table(
        "deployed_artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("alias", sa.String(length=200), nullable=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_deployed_artifacts_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployed_artifacts")),
        sa.UniqueConstraint(
            "environment_id",
            "kind",
            "project",
            "name",
            name=op.f("uq_deployed_artifacts_environment_id_kind_project_name"),
        ),
    )
    op.create_table(
        "deployment_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_deployment_attempts_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_attempts")),
    )
    with op.batch_alter_table("deployment_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deployment_attempts_environment_id_at", ["environment_id", "at"], unique=False
        )

    op.create_table(
        "certificate_environments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("certificate_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=200), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("sha1_thumbprint", sa.String(length=40), nullable=False),
        sa.Column("subject_dn", sa.Text(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_certificate_environments_certificate_id_certificates"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_certificate_environments_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_certificate_environments_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_environments")),
        sa.UniqueConstraint(
            "certificate_id",
            "environment_id",
            name=op.f("uq_certificate_environments_certificate_id_environment_id"),
        ),
        sa.UniqueConstraint(
            "project_id",
            "environment_id",
            "alias",
            name=op.f("uq_certificate_environments_project_id_environment_id_alias"),
        ),
    )
    with op.batch_alter_table("certificate_environments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_certificate_environments_environment_id", ["environment_id"], unique=False
        )

    op.create_table(
        "jwks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("source_certificate_id", sa.Integer(), nullable=True),
        sa.Column("source_environment", sa.String(length=100), nullable=True),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column("key_type", sa.String(length=8), nullable=False),
        sa.Column("use_type", sa.String(length=16), nullable=True),
        sa.Column("algorithm", sa.String(length=32), nullable=True),
        sa.Column("kid", sa.String(length=200), nullable=False),
        sa.Column("kid_given", sa.Boolean(), nullable=False),
        sa.Column("public_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_jwks_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_certificate_id"],
            ["certificates.id"],
            name=op.f("fk_jwks_source_certificate_id_certificates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jwks")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_jwks_project_id_name")),
    )
    with op.batch_alter_table("jwks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_jwks_source_certificate_id", ["source_certificate_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("jwks", schema=None) as batch_op:
        batch_op.drop_index("ix_jwks_source_certificate_id")

    op.drop_table("jwks")
    with op.batch_alter_table("certificate_environments", schema=None) as batch_op:
        batch_op.drop_index("ix_certificate_environments_environment_id")

    op.drop_table("certificate_environments")
    with op.batch_alter_table("deployment_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_deployment_attempts_environment_id_at")

    op.drop_table("deployment_attempts")
    op.drop_table("deployed_artifacts")
    op.drop_table("certificates")
    op.drop_table("revision_counter")
