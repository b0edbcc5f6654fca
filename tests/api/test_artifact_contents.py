"""Public deployed content is stored once per distinct content; sealed content in its row.

Many environments (and, for an admin certificate's JWKs, many projects) hold the same
public bytes: ``artifact_contents`` keeps them once under their SHA-256, and every read of
deployed artifacts joins them back. What is no longer pointed at is removed by the
reconciler (``Deployer.remove_unused_contents``), never while a change that will point at
it is still open.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from keyops.storage.db import Database
from keyops.storage.models import ArtifactContent, DeployedArtifact, Environment
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.desired import DesiredStateRepository
from tests.conftest import Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import Setting


def _db(app: FastAPI) -> Database:
    db = app.state.db
    assert isinstance(db, Database)
    return db


def _rows(db: Database, project: str, name: str) -> list[tuple[str, bytes, bool, str]]:
    """(environment, stored content, sealed, content hash) of an artifact's rows."""
    with db.reading() as session:
        found = session.execute(
            select(
                Environment.name,
                DeployedArtifact.content,
                DeployedArtifact.sealed,
                DeployedArtifact.content_hash,
            )
            .join(Environment, Environment.id == DeployedArtifact.environment_id)
            .where(
                DeployedArtifact.project == project,
                DeployedArtifact.name == name,
                DeployedArtifact.present,
            )
            .order_by(Environment.name)
        ).all()
    return [tuple(r) for r in found]  # type: ignore[misc]


def _contents(db: Database, hashes: list[str]) -> dict[str, bytes]:
    with db.reading() as session:
        found = session.execute(
            select(ArtifactContent.content_hash, ArtifactContent.content).where(
                ArtifactContent.content_hash.in_(hashes)
            )
        ).all()
    return {h: c for h, c in found}


def _held(db: Database, env: str) -> dict[tuple[str, str, str], bytes]:
    """What the environment holds, as every reader of deployed artifacts gets it."""
    with db.reading() as session:
        env_id = session.scalar(select(Environment.id).where(Environment.name == env))
        assert env_id is not None
        artifacts = DesiredStateRepository(session).artifacts(env_id, present=True)
    return {(a.kind, a.project, a.name): a.content for a in artifacts}


@pytest.fixture
async def s(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> Setting:
    project = await factory.project("admin")
    envs = [await factory.environment(projects=(project,)) for _ in range(2)]
    return Setting(client, admin_token, project, envs)


async def test_public_content_is_stored_once_and_read_back_exactly(
    s: Setting, app: FastAPI
) -> None:
    db = _db(app)
    pem = certs.self_signed("rsa2048", "shared.example")
    first, second = unique("cert"), unique("cert")
    await s.api.create_ok(first, pem.pem, s.envs, alias=unique("a"))
    await s.api.create_ok(second, pem.pem, s.envs, alias=unique("a"))
    digest = hashlib.sha256(pem.der).hexdigest()

    for name in (first, second):
        rows = _rows(db, s.project, name)
        assert [r[0] for r in rows] == sorted(s.envs)
        # Each row points at the shared bytes and holds none itself.
        assert all(content == b"" and not sealed and h == digest for _, content, sealed, h in rows)
    assert _contents(db, [digest]) == {digest: pem.der}
    for env in s.envs:
        held = _held(db, env)
        assert held[("certificate", s.project, first)] == pem.der
        assert held[("certificate", s.project, second)] == pem.der


async def test_sealed_content_stays_in_its_own_row(s: Setting, app: FastAPI) -> None:
    db = _db(app)
    name = unique("jwk")
    r = await s.client.post(
        f"/apiops/projects/{s.project}/jwks/generate",
        json={"name": name, "description": "generated", "type": "EC", "ec": {"curveType": "P-256"}},
        headers=bearer(s.admin_token),
    )
    assert r.status_code == 200, r.text
    rows = _rows(db, s.project, name)
    # A JWK is in every environment its project may use (these two, and any serving all).
    assert {r[0] for r in rows} >= set(s.envs)
    for _, content, sealed, digest in rows:
        assert sealed and content != b""
        assert _contents(db, [digest]) == {}
    for env in s.envs:
        private = _held(db, env)[("jwk", s.project, name)]
        # The reader gets the sealed bytes; opening them is the caller's (with the keyring).
        assert private == next(c for e, c, _, _ in rows if e == env)


async def test_unused_content_goes_and_used_content_stays(s: Setting, app: FastAPI) -> None:
    db = _db(app)
    deployer = app.state.deployer
    old = certs.self_signed("rsa2048", "old.example")
    new = certs.self_signed("rsa2048", "new.example")
    moving, staying = unique("cert"), unique("cert")
    await s.api.create_ok(moving, old.pem, s.envs, alias=unique("a"))
    await s.api.create_ok(staying, old.pem, s.envs[:1], alias=unique("a"))
    old_hash = hashlib.sha256(old.der).hexdigest()
    new_hash = hashlib.sha256(new.der).hexdigest()

    r = await s.api.update(moving, new.pem, s.envs, alias=unique("a"))
    assert r.status_code == 200, r.text
    await deployer.remove_unused_contents()
    # ``staying`` still holds the old bytes in one environment: they are kept.
    assert _contents(db, [old_hash, new_hash]) == {old_hash: old.der, new_hash: new.der}
    assert _held(db, s.envs[0])[("certificate", s.project, staying)] == old.der
    assert _held(db, s.envs[1])[("certificate", s.project, moving)] == new.der

    r = await s.client.delete(
        f"/apiops/projects/{s.project}/certificates/{staying}/", headers=bearer(s.admin_token)
    )
    assert r.status_code == 200, r.text
    assert await deployer.remove_unused_contents() >= 1
    assert _contents(db, [old_hash, new_hash]) == {new_hash: new.der}
    assert await deployer.remove_unused_contents() == 0


async def test_removal_waits_for_an_open_change_that_points_at_the_content(
    s: Setting, app: FastAPI, backend: str
) -> None:
    """The content a change has stored (but not yet committed its rows for) is not taken
    away under it: on PostgreSQL the removal waits for the change's commit, then sees
    its rows; SQLite's single writer never runs the two at once."""
    db = _db(app)
    pem = certs.self_signed("rsa2048", "racing.example")
    name = unique("cert")
    await s.api.create_ok(name, pem.pem, s.envs[:1], alias=unique("a"))
    digest = hashlib.sha256(pem.der).hexdigest()
    r = await s.client.delete(
        f"/apiops/projects/{s.project}/certificates/{name}/", headers=bearer(s.admin_token)
    )
    assert r.status_code == 200, r.text
    # Unused now; a change is about to use it again.
    with db.reading() as session:
        env_id = session.scalar(select(Environment.id).where(Environment.name == s.envs[0]))
        revision = DesiredStateRepository(session).current_revision() + 1000
    row: dict[str, Any] = {
        "environment_id": env_id,
        "kind": "certificate",
        "project": s.project,
        "name": name,
        "content": pem.der,
        "sealed": False,
        "content_hash": digest,
        "alias": None,
        "present": True,
        "revision": revision,
        "deployed_at": utcnow(),
    }
    removed: list[int] = []
    errors: list[BaseException] = []

    def remove() -> None:
        try:
            with db.transaction() as session:
                repo = DesiredStateRepository(session)
                removed.append(repo.remove_unused_contents([digest]))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    with db.transaction() as change:
        DesiredStateRepository(change).write_artifacts([row])
        remover = threading.Thread(target=remove)
        if backend == "postgresql":
            remover.start()
            await asyncio.sleep(0.5)
            assert remover.is_alive(), "the removal did not wait for the open change"
    if backend != "postgresql":
        remover.start()
    remover.join(timeout=20)
    assert not remover.is_alive() and not errors, errors
    assert removed == [0]
    assert _contents(db, [digest]) == {digest: pem.der}
    assert _held(db, s.envs[0])[("certificate", s.project, name)] == pem.der
    # Leave the environment as the API left it: the row is an old revision's ghost.
    with db.transaction() as session:
        session.execute(
            DeployedArtifact.__table__.delete().where(  # type: ignore[attr-defined]
                DeployedArtifact.environment_id == env_id, DeployedArtifact.name == name
            )
        )
