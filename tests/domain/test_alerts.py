"""The expiry watcher (domain/alerts): days left, thresholds crossed as time passes, each
alerted once per resource, environment and threshold, to the right webhooks only; on
both databases, with passes run at chosen instants."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from fastapi import FastAPI
from sqlalchemy.orm import Session

from keyops.api.app import create_app
from keyops.config import Settings, parse_thresholds
from keyops.domain.alerts import ExpiryWatcher, crossed
from keyops.storage.db import Database
from keyops.storage.repositories.webhooks import WebhookRepository
from tests.conftest import ADMIN_PASSWORD, Factory, bearer, issue_token, unique
from tests.crypto import certs
from tests.support.certificates import CertificateClient
from tests.support.databases import database
from tests.support.server import TEST_MASTER_KEY

NOW = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


def test_a_threshold_is_crossed_once_at_most_that_many_days_are_left() -> None:
    assert crossed(NOW + 7 * DAY, NOW, 7)
    assert not crossed(NOW + 7 * DAY + SECOND, NOW, 7)
    # Expiring in 2 days, less the moments since it was made: 7 crossed, 1 and 0 not.
    assert crossed(NOW + 2 * DAY - SECOND, NOW, 7)
    assert not crossed(NOW + 2 * DAY - SECOND, NOW, 1)
    assert not crossed(NOW + SECOND, NOW, 0)
    assert crossed(NOW, NOW, 0)
    assert crossed(NOW - DAY, NOW, 0)


def test_thresholds_are_distinct_whole_days_largest_first() -> None:
    assert Settings().expiry_thresholds == (30, 14, 7, 1, 0)
    assert parse_thresholds(" 7, 30,7 ,0") == (30, 7, 0)
    assert Settings(expiry_thresholds_days="1").expiry_thresholds == (1,)
    with pytest.raises(ValueError, match="whole days, comma-separated: 'soon'"):
        parse_thresholds("soon")
    with pytest.raises(ValueError, match="between 0 and 3650 days: '-1'"):
        parse_thresholds("-1")


@pytest.fixture(scope="module")
def alert_settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with database(backend, tmp_path_factory.mktemp(f"alerts-db-{backend}")) as url:
        yield Settings(
            database_url=url,
            data_dir=tmp_path_factory.mktemp("alerts-data"),
            admin_password=ADMIN_PASSWORD,
            master_key=TEST_MASTER_KEY,
            reconcile_seconds=3600,
            expiry_check_seconds=3600,
        )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def alert_app(alert_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(alert_settings)
    async with application.router.lifespan_context(application):
        # Deliveries stay queued: these tests count what a pass enqueues, no one sends.
        application.state.webhook_worker.deliver_due = _nothing
        yield application


async def _nothing() -> int:
    return 0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def alert_api(alert_app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    transport = httpx.ASGITransport(app=alert_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://keyops.test") as c:
        yield c, await issue_token(c, "admin", ADMIN_PASSWORD)


def certificate(not_after: dt.datetime) -> bytes:
    return certs.make_cert(
        certs.name(("COMMON_NAME", "alerts.example")),
        certs.key("p256"),
        not_before=not_after - 400 * DAY,
        not_after=not_after,
    ).pem


async def hook(api: httpx.AsyncClient, token: str, path: str, events: list[str]) -> int:
    r = await api.post(
        path, json={"url": "http://127.0.0.1:9/never", "events": events}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    webhook_id: int = r.json()["result"]["id"]
    return webhook_id


async def test_each_threshold_fires_once_as_time_passes_to_the_right_webhooks(
    alert_app: FastAPI, alert_api: tuple[httpx.AsyncClient, str], alert_settings: Settings
) -> None:
    api, token = alert_api
    make = Factory(api, token)
    project, other = await make.project("admin"), await make.project("admin")
    env = await make.environment(projects=(project,))
    mine = await hook(api, token, f"/apiops/projects/{project}/webhooks/", ["expiry"])
    await hook(api, token, f"/apiops/projects/{project}/webhooks/", ["created"])
    await hook(api, token, f"/apiops/projects/{other}/webhooks/", ["expiry"])
    # Far in the future of every other certificate of this database.
    not_after = dt.datetime(2100, 1, 1, tzinfo=UTC)
    name = unique("cert")
    await CertificateClient(api, token, project).create_ok(name, certificate(not_after), [env])
    watcher = ExpiryWatcher(alert_app.state.db, alert_settings)
    try:
        glob = await hook(api, token, "/apiops/admin/webhooks/", ["expiry"])
        # (instant, deliveries that pass enqueues): one per crossing for the project's
        # expiry webhook and the global one; none for the other project's nor for the
        # project's webhook that does not subscribe to expiry.
        steps = [
            (not_after - 40 * DAY, 0),
            (not_after - 30 * DAY - SECOND, 0),
            (not_after - 30 * DAY, 2),
            (not_after - 29 * DAY, 0),
            (not_after - 14 * DAY, 2),
            (not_after - 7 * DAY + SECOND, 2),
            (not_after - DAY - SECOND, 0),
            (not_after - DAY, 2),
            (not_after - SECOND, 0),
            (not_after, 2),
            (not_after + 3 * DAY, 0),
        ]
        for at, expected in steps:
            assert await watcher.run_pass(at) == expected, at
        # A fresh watcher (a restart) at the last instant sends nothing again.
        assert await ExpiryWatcher(alert_app.state.db, alert_settings).run_pass(not_after) == 0

        def facts(session: Session) -> tuple[list[int], list[str]]:
            repo = WebhookRepository(session)
            thresholds = sorted(
                key[4] for key in repo.alerted() if key[2] == name and key[3] == env
            )
            sent = [d.event for d in repo.deliveries(mine, 100)]
            return thresholds, sent

        thresholds, sent = await alert_app.state.db.read(facts)
        assert thresholds == [0, 1, 7, 14, 30]
        assert sent == ["expiry"] * 5
    finally:
        r = await api.delete(f"/apiops/admin/webhooks/{glob}/", headers=bearer(token))
        assert r.status_code == 200


async def test_concurrent_passes_on_separate_connections_record_each_alert_once(
    alert_app: FastAPI, alert_api: tuple[httpx.AsyncClient, str], alert_settings: Settings
) -> None:
    api, token = alert_api
    make = Factory(api, token)
    project = await make.project("admin")
    env = await make.environment(projects=(project,))
    mine = await hook(api, token, f"/apiops/projects/{project}/webhooks/", ["expiry"])
    not_after = dt.datetime(2101, 1, 1, tzinfo=UTC)
    await CertificateClient(api, token, project).create_ok(
        unique("cert"), certificate(not_after), [env]
    )
    at = not_after - 10 * DAY
    replicas = [Database.of(alert_settings) for _ in range(3)]
    try:
        watchers = [ExpiryWatcher(db, alert_settings) for db in replicas]

        def pass_of(watcher: ExpiryWatcher) -> Callable[[Session], int]:
            return lambda session: watcher.apply(session, at)

        # Straight to the write (as if every replica's read had seen the news at once).
        sent = await asyncio.gather(
            *(db.write(pass_of(w)) for db, w in zip(replicas, watchers, strict=True))
        )
    finally:
        for db in replicas:
            await asyncio.to_thread(db.dispose)
    assert sum(sent) == 2  # 30 and 14
    queued = await alert_app.state.db.read(
        lambda s: [d.payload for d in WebhookRepository(s).deliveries(mine, 100)]
    )
    assert len(queued) == 2


async def test_keystore_entries_and_jwks_with_exp_are_watched_too(
    alert_app: FastAPI, alert_api: tuple[httpx.AsyncClient, str], alert_settings: Settings
) -> None:
    api, token = alert_api
    make = Factory(api, token)
    project = await make.project("admin")
    env = await make.environment(projects=(project,))
    mine = await hook(api, token, f"/apiops/projects/{project}/webhooks/", ["expiry"])
    not_after = dt.datetime(2102, 1, 1, tzinfo=UTC)
    issued = certs.make_cert(
        certs.name(("COMMON_NAME", "store.example")),
        certs.key("p256"),
        not_before=not_after - 400 * DAY,
        not_after=not_after,
    )
    store = pkcs12.serialize_key_and_certificates(
        b"entry-one",
        issued.key,
        issued.cert,
        None,
        BestAvailableEncryption(b"store-pass"),  # type: ignore[arg-type]
    )
    keystore, jwk = unique("ks"), unique("jwk")
    r = await api.post(
        f"/apiops/projects/{project}/keystores/",
        json={
            "name": keystore,
            "description": "watched",
            "keyStoreEnvironmentList": [
                {
                    "environmentName": env,
                    "type": "PKCS12",
                    "file": base64.b64encode(store).decode("ascii"),
                    "password": "store-pass",
                }
            ],
        },
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    r = await api.post(
        f"/apiops/projects/{project}/jwks/generate",
        json={
            "name": jwk,
            "type": "EC",
            "ec": {"curveType": "P256", "expirationTime": "2102-01-01T00:00:00Z"},
        },
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    watcher = ExpiryWatcher(alert_app.state.db, alert_settings)
    # (The pass also alerts the earlier tests' certificates, long expired by then.)
    assert await watcher.run_pass(not_after - 10 * DAY) >= 4
    assert await watcher.run_pass(not_after - 10 * DAY) == 0
    payloads = await alert_app.state.db.read(
        lambda s: [json.loads(d.payload) for d in WebhookRepository(s).deliveries(mine, 100)]
    )
    seen = sorted(
        (
            (p["kind"], p["name"], p["environment"], p.get("alias"), p["threshold"], p["daysLeft"])
            for p in payloads
        ),
        key=str,
    )
    assert seen == [
        ("jwk", jwk, None, None, 14, 10),
        ("jwk", jwk, None, None, 30, 10),
        ("keystore", keystore, env, "entry-one", 14, 10),
        ("keystore", keystore, env, "entry-one", 30, 10),
    ]
    assert {p["notAfter"] for p in payloads} == {"2102-01-01T00:00:00Z"}
