"""ids never reused: projects and environments AUTOINCREMENT on SQLite

SQLite gives a new row the largest id plus one, so deleting the newest project or
environment and creating another hands the new one the old id. Caches keyed by id and
revision (a replica's gateway snapshots, a project's cached lists) then served the
deleted one's content to the new one. With AUTOINCREMENT, SQLite never hands out an id
again, as PostgreSQL's sequences never do. (Migrations run with foreign keys off, so the
table's rebuild touches no referencing row.)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("projects", "environments")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
