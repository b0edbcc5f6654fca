"""Migrations and models agree, and the schema can go down and up again, on both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool, text

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


@pytest.mark.parametrize("backend", BACKENDS)
def test_0005_strips_secrets_other_projects_took_from_admin_material(
    backend: str, tmp_path: Path
) -> None:
    """JWKs stored before issue 8's fix lose the private part they took from another
    project's key or keystore; a JWK from its own project's material keeps it."""
    with database(backend, tmp_path) as url:
        sync_url = to_sync_url(to_async_url(url))
        command.upgrade(alembic_config(sync_url), "0004")
        engine = create_engine(sync_url, poolclass=pool.NullPool)
        now = "2026-01-01 00:00:00"
        try:
            with engine.begin() as conn:
                for pid, name in ((1, "admin"), (2, "team")):
                    conn.execute(
                        text(
                            "INSERT INTO projects (id, name, description, created_at)"
                            " VALUES (:i, :n, '', :t)"
                        ),
                        {"i": pid, "n": name, "t": now},
                    )
                conn.execute(
                    text(
                        "INSERT INTO crypto_keys (id, project_id, name, description, key_type,"
                        " version, created_at, updated_at)"
                        " VALUES (1, 1, 'k', '', 'RSA', 1, :t, :t), (2, 1, 's', '', 'SYMMETRIC',"
                        " 1, :t, :t), (3, 2, 'own', '', 'RSA', 1, :t, :t)"
                    ),
                    {"t": now},
                )
                conn.execute(
                    text(
                        "INSERT INTO keystores (id, project_id, name, description, version,"
                        " created_at, updated_at) VALUES (1, 1, 'gw', '', 1, :t, :t)"
                    ),
                    {"t": now},
                )
                rows = [
                    # id, project, source type, key, keystore, kty
                    (1, 2, "PRIVATE_KEY", 1, None, "RSA"),
                    (2, 2, "KEYSTORE", None, 1, "RSA"),
                    (3, 2, "PRIVATE_KEY", 2, None, "oct"),
                    (4, 1, "PRIVATE_KEY", 1, None, "RSA"),  # the admin project's own
                    (5, 2, "PRIVATE_KEY", 3, None, "RSA"),  # team's own key
                ]
                for jid, project, source, key, store, kty in rows:
                    conn.execute(
                        text(
                            "INSERT INTO jwks (id, project_id, name, description, source_type,"
                            " source_key_id, source_keystore_id, source_alias, key_type, kid,"
                            " kid_given, public_json, private_sealed, created_at, updated_at)"
                            " VALUES (:i, :p, :n, '', :st, :k, :s, :a, :kty, 'kid', false,"
                            " '{}', :sealed, :t, :t)"
                        ),
                        {
                            "i": jid,
                            "p": project,
                            "n": f"j{jid}",
                            "st": source,
                            "k": key,
                            "s": store,
                            "a": "signer" if store else None,
                            "kty": kty,
                            "sealed": b"sealed",
                            "t": now,
                        },
                    )
            upgrade_to_head(to_async_url(url))
            with engine.connect() as conn:
                got = {
                    r[0]: tuple(r[1:])
                    for r in conn.execute(
                        text(
                            "SELECT id, source_type, source_key_id, source_keystore_id,"
                            " private_sealed IS NOT NULL FROM jwks ORDER BY id"
                        )
                    )
                }
        finally:
            engine.dispose()
    assert got == {
        1: ("PUBLIC_KEY", 1, None, False),
        2: ("KEYSTORE", None, 1, False),
        3: ("PRIVATE_KEY", None, None, False),
        4: ("PRIVATE_KEY", 1, None, True),
        5: ("PRIVATE_KEY", 3, None, True),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_0011_keeps_every_row_and_never_reuses_an_id(backend: str, tmp_path: Path) -> None:
    """Rebuilding projects and environments (SQLite) keeps them and what refers to them;
    after it, the newest row's id is not handed out again once deleted."""
    with database(backend, tmp_path) as url:
        sync_url = to_sync_url(to_async_url(url))
        command.upgrade(alembic_config(sync_url), "0010")
        engine = create_engine(sync_url, poolclass=pool.NullPool)
        now = "2026-01-01 00:00:00"
        try:
            with engine.begin() as conn:
                for pid in (101, 102):
                    conn.execute(
                        text(
                            "INSERT INTO projects (id, name, description, created_at)"
                            " VALUES (:i, :n, '', :t)"
                        ),
                        {"i": pid, "n": f"p{pid}", "t": now},
                    )
                conn.execute(
                    text(
                        "INSERT INTO environments (id, name, description, type, access_url,"
                        " target, settings_revision, revision, applied_revision, created_at)"
                        " VALUES (201, 'e201', '', 'TEST', '', 'local', 0, 0, 0, :t)"
                    ),
                    {"t": now},
                )
                conn.execute(
                    text(
                        "INSERT INTO environment_projects (environment_id, project_id)"
                        " VALUES (201, 101), (201, 102)"
                    )
                )
            upgrade_to_head(to_async_url(url))
            with engine.begin() as conn:
                links = conn.execute(text("SELECT COUNT(*) FROM environment_projects")).scalar()
                assert links == 2
                conn.execute(text("DELETE FROM projects WHERE id = 102"))
                conn.execute(text("DELETE FROM environments WHERE id = 201"))
                conn.execute(
                    text(
                        "INSERT INTO projects (name, description, content_revision, created_at)"
                        " VALUES ('fresh', '', 0, :t)"
                    ),
                    {"t": now},
                )
                conn.execute(
                    text(
                        "INSERT INTO environments (name, description, type, access_url,"
                        " target, settings_revision, revision, applied_revision, created_at)"
                        " VALUES ('fresh', '', 'TEST', '', 'local', 0, 0, 0, :t)"
                    ),
                    {"t": now},
                )
                project_id = conn.execute(text("SELECT id FROM projects WHERE name = 'fresh'"))
                env_id = conn.execute(text("SELECT id FROM environments WHERE name = 'fresh'"))
                if backend == "sqlite":
                    assert project_id.scalar_one() > 102 and env_id.scalar_one() > 201
        finally:
            engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_0012_stores_public_content_once_and_gives_it_back_on_downgrade(
    backend: str, tmp_path: Path
) -> None:
    """Public deployed content moves to ``artifact_contents`` (once per hash) and the rows
    keep none; sealed rows and tombstones are untouched; a downgrade puts it back."""
    public, sealed = b"public certificate bytes", b"sealed private bytes"
    # (id, name, hash, content, sealed, present)
    rows = [
        (1, "a", "h-public", public, False, True),
        (2, "b", "h-public", public, False, True),
        (3, "k", "h-sealed", sealed, True, True),
        (4, "gone", "", b"", False, False),
    ]
    with database(backend, tmp_path) as url:
        sync_url = to_sync_url(to_async_url(url))
        command.upgrade(alembic_config(sync_url), "0011")
        engine = create_engine(sync_url, poolclass=pool.NullPool)
        now = "2026-01-01 00:00:00"

        def stored(conn: Any) -> dict[int, bytes]:
            found = conn.execute(text("SELECT id, content FROM deployed_artifacts ORDER BY id"))
            return {i: bytes(c) for i, c in found}

        try:
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO environments (id, name, description, type, access_url,"
                        " target, settings_revision, revision, applied_revision, created_at)"
                        " VALUES (1, 'e', '', 'TEST', '', 'local', 0, 0, 0, :t)"
                    ),
                    {"t": now},
                )
                for rid, name, digest, content, is_sealed, present in rows:
                    conn.execute(
                        text(
                            "INSERT INTO deployed_artifacts (id, environment_id, kind, project,"
                            " name, content_hash, content, sealed, alias, revision, present,"
                            " deployed_at) VALUES (:i, 1, 'certificate', 'p', :n, :h, :c, :s,"
                            " NULL, 1, :pr, :t)"
                        ),
                        {
                            "i": rid,
                            "n": name,
                            "h": digest,
                            "c": content,
                            "s": is_sealed,
                            "pr": present,
                            "t": now,
                        },
                    )
            upgrade_to_head(to_async_url(url))
            with engine.connect() as conn:
                contents = conn.execute(
                    text("SELECT content_hash, content FROM artifact_contents")
                ).all()
                assert [(h, bytes(c)) for h, c in contents] == [("h-public", public)]
                assert stored(conn) == {1: b"", 2: b"", 3: sealed, 4: b""}
            command.downgrade(alembic_config(sync_url), "0011")
            with engine.connect() as conn:
                assert stored(conn) == {1: public, 2: public, 3: sealed, 4: b""}
        finally:
            engine.dispose()
