"""keystore key passwords apart from the store password

keytool lets a key's password (-keypass) differ from the store's (-storepass); such a
JKS, JCEKS or PKCS12 store is now accepted with a per-environment keyPassword, sealed at
rest like the store password. NULL: the key password is the store password.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("keystore_environments") as batch:
        batch.add_column(sa.Column("key_password_sealed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("keystore_environments") as batch:
        batch.drop_column("key_password_sealed")
