"""Migrations and models agree, and the schema can go down and up again, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool

from keyops.config import to_async_url, to_sync_url
from keyops.storage.migrate import alembic_config, upgrade_to_head
from keyops.storage.models import Base
from tests.support.databases import BACKENDS, database


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_match_models_and_round_trip(backend: str, tmp_path: Path) -> None:
    with database(backend, tmp_path) as url:
        async_url = to_async_url(url)
        upgrade_to_head(async_url)
        sync_url = to_sync_url(async_url)
        engine = create_engine(sync_url, poolclass=pool.NullPool)
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                assert compare_metadata(context, Base.metadata) == []
            command.downgrade(alembic_config(sync_url), "base")
            upgrade_to_head(async_url)
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                assert compare_metadata(context, Base.metadata) == []
        finally:
            engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_is_idempotent(backend: str, tmp_path: Path) -> None:
    with database(backend, tmp_path) as url:
        upgrade_to_head(to_async_url(url))
        upgrade_to_head(to_async_url(url))
