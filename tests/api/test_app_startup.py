"""The app's own startup (``create_app`` under any ASGI server, not only ``keyops
serve``) never makes a new master key beside secrets sealed with another."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from keyops.api.app import create_app
from keyops.config import Settings
from keyops.domain.masterkey import MasterKeyMissing
from keyops.secrets import MASTER_KEY_FILE
from tests.support.databases import BACKENDS, database


async def start_and_stop(app: FastAPI) -> None:
    async with app.router.lifespan_context(app):
        pass


@pytest.mark.parametrize("backend", BACKENDS)
async def test_missing_key_file_beside_sealed_secrets_is_refused(
    backend: str, tmp_path: Path
) -> None:
    (tmp_path / "db").mkdir()
    with database(backend, tmp_path / "db") as url:
        data = tmp_path / "data"
        settings = Settings(
            database_url=url,
            data_dir=data,
            admin_password="startup-test-password",  # type: ignore[arg-type]
        )
        await start_and_stop(create_app(settings))
        key_file = data / MASTER_KEY_FILE
        assert key_file.exists()
        key_file.unlink()
        with pytest.raises(MasterKeyMissing) as refused:
            await start_and_stop(create_app(settings))
        assert str(key_file.resolve()) in str(refused.value)
        assert not key_file.exists()
