"""Webhooks: admin REST, signed deliveries to a real receiver on loopback, expiry alerts
sent once per resource, environment and threshold (across passes, restarts and
replicas), retries with backoff, and change events (issue 12, "Alerts").

The module runs its own app on a database of its own (both backends), with short
retry delays, so deliveries of other tests' changes never reach its receiver.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from keyops.api.app import create_app
from keyops.config import Settings
from keyops.domain.alerts import ExpiryWatcher
from keyops.domain.webhooks import TOPIC
from keyops.metrics import REGISTRY
from keyops.storage.db import Database
from tests.conftest import ADMIN_PASSWORD, TEST_TARGETS, Factory, bearer, issue_token, unique
from tests.crypto import certs
from tests.support.certificates import CertificateClient
from tests.support.databases import database
from tests.support.rawdb import database_rows
from tests.support.server import TEST_MASTER_KEY
from tests.support.webhook_receiver import Receiver, webhook_receiver

ADMIN_HOOKS = "/apiops/admin/webhooks/"
RETRY_SECONDS = 0.4
MAX_ATTEMPTS = 3


def project_hooks(project: str) -> str:
    return f"/apiops/projects/{project}/webhooks/"


@pytest.fixture(scope="module")
def wh_settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with database(backend, tmp_path_factory.mktemp(f"webhooks-db-{backend}")) as url:
        yield Settings(
            database_url=url,
            data_dir=tmp_path_factory.mktemp("webhooks-data"),
            admin_password=ADMIN_PASSWORD,
            master_key=TEST_MASTER_KEY,
            extra_targets=TEST_TARGETS,
            deploy_timeout_seconds=2.0,
            reconcile_seconds=3600,
            expiry_check_seconds=3600,
            webhook_retry_seconds=RETRY_SECONDS,
            webhook_timeout_seconds=3,
            webhook_max_attempts=MAX_ATTEMPTS,
        )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def wh_app(wh_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(wh_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(wh_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=wh_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://keyops.test") as c:
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def token(api: httpx.AsyncClient) -> str:
    return await issue_token(api, "admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


@pytest.fixture
def make(api: httpx.AsyncClient, token: str) -> Factory:
    return Factory(api, token)


def watcher(app: FastAPI) -> ExpiryWatcher:
    found = app.state.expiry_watcher
    assert isinstance(found, ExpiryWatcher)
    return found


def expiring_in(days: float, common_name: str) -> bytes:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    issued = certs.make_cert(
        certs.name(("COMMON_NAME", common_name)),
        certs.key("p256"),
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=days),
    )
    return issued.pem


def far_future(common_name: str) -> bytes:
    return expiring_in(3650, common_name)


async def add_hook(
    api: httpx.AsyncClient,
    token: str,
    url: str,
    *,
    project: str | None = None,
    events: list[str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if events is not None:
        body["events"] = events
    path = project_hooks(project) if project else ADMIN_HOOKS
    r = await api.post(path, json=body, headers=bearer(token))
    assert r.status_code == 200, r.text
    created: dict[str, Any] = r.json()["result"]
    return created


async def deliveries(
    api: httpx.AsyncClient, token: str, hook_id: int, project: str | None = None
) -> list[dict[str, Any]]:
    base = project_hooks(project) if project else ADMIN_HOOKS
    r = await api.get(f"{base}{hook_id}/deliveries/", headers=bearer(token))
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["resultList"]
    return rows


async def settled(
    api: httpx.AsyncClient, token: str, hook_id: int, count: int, project: str | None = None
) -> list[dict[str, Any]]:
    """The webhook's deliveries once ``count`` of them are no longer pending."""
    for _ in range(300):
        rows = await deliveries(api, token, hook_id, project)
        if len(rows) >= count and all(d["status"] != "pending" for d in rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries did not settle: {rows}")


def counted(outcome: str) -> float:
    value = REGISTRY.get_sample_value("keyops_webhook_deliveries_total", {"outcome": outcome})
    return value or 0.0


async def receive(receiver: Receiver, path: str, count: int) -> list[Any]:
    return await asyncio.to_thread(receiver.wait_for, path, count)


# --- admin REST ----------------------------------------------------------------------


async def test_the_secret_is_shown_once_and_never_listed_nor_stored_in_clear(
    api: httpx.AsyncClient, token: str, make: Factory, receiver: Receiver, wh_settings: Settings
) -> None:
    project = await make.project("admin")
    made = await add_hook(api, token, receiver.at("/secret"), project=project, events=["expiry"])
    secret = made["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert made["projectName"] == project
    assert made["events"] == ["expiry"]
    assert made["createdBy"] == "admin"
    glob = await add_hook(api, token, receiver.at("/secret-global"))
    assert glob["projectName"] is None
    assert glob["events"] == ["expiry", "created", "replaced", "deleted", "deployment_failed"]

    listed = await api.get(project_hooks(project), headers=bearer(token))
    assert listed.status_code == 200
    body = listed.json()
    assert body["resultCount"] == 1
    (row,) = body["resultList"]
    assert set(row) == {"id", "projectName", "url", "events", "createdAt", "createdBy"}
    assert row["id"] == made["id"] and row["url"] == receiver.at("/secret")
    everything = await api.get(ADMIN_HOOKS, headers=bearer(token))
    ids = [w["id"] for w in everything.json()["resultList"]]
    assert made["id"] in ids and glob["id"] in ids
    for text in (listed.text, everything.text):
        assert secret not in text and glob["secret"] not in text
        assert "whsec_" not in text and '"secret"' not in text
    stored = await asyncio.to_thread(database_rows, str(wh_settings.database_url))
    assert secret.encode() not in stored and glob["secret"].encode() not in stored

    r = await api.delete(f"{ADMIN_HOOKS}{glob['id']}/", headers=bearer(token))
    assert r.status_code == 200 and r.json() == {"success": True}
    r = await api.delete(f"{project_hooks(project)}{made['id']}", headers=bearer(token))
    assert r.status_code == 200 and r.json() == {"success": True}
    r = await api.get(project_hooks(project), headers=bearer(token))
    assert r.json()["resultCount"] == 0


async def test_refusals_answer_in_the_contract_format(
    api: httpx.AsyncClient, token: str, make: Factory, receiver: Receiver
) -> None:
    project = await make.project("admin")
    other = await make.project("admin")
    r = await api.post(ADMIN_HOOKS, json={"url": "ftp://x.example/"}, headers=bearer(token))
    assert r.status_code == 400
    assert r.json() == {
        "error": "bad_request",
        "error_description": "url must be an absolute http or https URL!",
    }
    r = await api.post(
        ADMIN_HOOKS,
        json={"url": receiver.at("/x"), "events": ["expiry", "rotated"]},
        headers=bearer(token),
    )
    assert r.status_code == 400
    assert r.json() == {
        "error": "bad_request",
        "error_description": "Unknown webhook event: rotated. Valid events: expiry, created,"
        " replaced, deleted, deployment_failed",
    }
    r = await api.post(
        project_hooks("no-such-project"), json={"url": receiver.at("/x")}, headers=bearer(token)
    )
    assert r.status_code == 404
    assert r.json() == {
        "error": "not_found",
        "error_description": "Project (no-such-project) is not found!",
    }
    made = await add_hook(api, token, receiver.at("/refusals"), project=project)
    # A project's webhook does not exist under another project's path.
    r = await api.delete(f"{project_hooks(other)}{made['id']}/", headers=bearer(token))
    assert r.status_code == 404
    assert r.json() == {
        "error": "not_found",
        "error_description": f"Webhook (id: {made['id']}) is not found!",
    }
    r = await api.get(f"{ADMIN_HOOKS}99999999999/deliveries/", headers=bearer(token))
    assert r.status_code == 404
    assert r.json()["error_description"] == "Webhook (id: 99999999999) is not found!"
    member = await make.user(
        "ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES", projects=(project,)
    )
    for method, path in (
        ("GET", ADMIN_HOOKS),
        ("POST", ADMIN_HOOKS),
        ("GET", project_hooks(project)),
        ("POST", project_hooks(project)),
        ("GET", f"{project_hooks(project)}{made['id']}/deliveries/"),
        ("DELETE", f"{project_hooks(project)}{made['id']}/"),
    ):
        r = await api.request(method, path, json={"url": receiver.at("/x")}, headers=member.headers)
        assert r.status_code == 403, (method, path)
        assert r.json() == {
            "error": "forbidden",
            "error_description": "You do not have permission to perform this action:"
            " it needs the role ROLE_ADMIN",
        }
    r = await api.get(project_hooks(project), headers=bearer(token))
    assert [w["id"] for w in r.json()["resultList"]] == [made["id"]]


# --- expiry alerts -------------------------------------------------------------------


async def test_a_certificate_expiring_in_two_days_alerts_once_per_threshold(
    api: httpx.AsyncClient,
    token: str,
    make: Factory,
    receiver: Receiver,
    wh_app: FastAPI,
    wh_settings: Settings,
) -> None:
    project = await make.project("admin")
    env = await make.environment(projects=(project,))
    path = f"/expiry-{unique('p')}"
    hook = await add_hook(api, token, receiver.at(path), project=project, events=["expiry"])
    name = unique("cert")
    pem = expiring_in(2, "soon.example")
    await CertificateClient(api, token, project).create_ok(name, pem, [env])
    not_after = await CertificateClient(api, token, project).get_one(name)
    assert await watcher(wh_app).run_pass() == 3

    got = await receive(receiver, path, 3)
    assert len(got) == 3
    by_threshold = {r.json["threshold"]: r for r in got}
    assert sorted(by_threshold) == [7, 14, 30]
    for threshold, request in by_threshold.items():
        assert request.verifies(hook["secret"])
        assert not request.verifies(hook["secret"] + "x")
        assert request.headers["x-keyops-event"] == "expiry"
        assert request.headers["content-type"] == "application/json"
        payload = request.json
        assert set(payload) == {
            "event",
            "project",
            "kind",
            "name",
            "environment",
            "notAfter",
            "daysLeft",
            "threshold",
        }
        assert payload["event"] == "expiry"
        assert payload["project"] == project
        assert payload["kind"] == "certificate"
        assert payload["name"] == name
        assert payload["environment"] == env
        # 2 days less the moments since it was made: 1 whole day and more left.
        assert payload["daysLeft"] == 1
        assert payload["threshold"] == threshold
        assert payload["notAfter"].endswith("Z")
    assert str(not_after)  # the certificate is stored
    ids = {r.headers["x-keyops-delivery"] for r in got}
    rows = await settled(api, token, hook["id"], 3, project)
    assert {str(d["id"]) for d in rows} == ids
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in rows)
    assert all(d["lastStatusCode"] == 200 and d["lastError"] is None for d in rows)
    assert all(d["nextAttemptAt"] is None and d["deliveredAt"] for d in rows)
    assert {d["payload"]["threshold"] for d in rows} == {7, 14, 30}
    assert hook["secret"] not in json.dumps(rows)

    # Another pass, a fresh watcher (as after a restart), and a restarted service.
    assert await watcher(wh_app).run_pass() == 0
    assert await ExpiryWatcher(wh_app.state.db, wh_settings).run_pass() == 0
    restarted = create_app(wh_settings)
    async with restarted.router.lifespan_context(restarted):
        assert await watcher(restarted).run_pass() == 0
    await asyncio.sleep(0.5)
    assert len(receiver.on(path)) == 3
    assert len(await deliveries(api, token, hook["id"], project)) == 3


async def test_two_replicas_watching_at_once_alert_once(
    api: httpx.AsyncClient,
    token: str,
    make: Factory,
    receiver: Receiver,
    wh_app: FastAPI,
    wh_settings: Settings,
) -> None:
    project = await make.project("admin")
    env1 = await make.environment(projects=(project,))
    env2 = await make.environment(projects=(project,))
    path = f"/replicas-{unique('p')}"
    hook = await add_hook(api, token, receiver.at(path), project=project, events=["expiry"])
    await CertificateClient(api, token, project).create_ok(
        unique("cert"), expiring_in(10, "two.example"), [env1, env2]
    )
    # Two replicas: each its own engine and connections to the one database.
    replicas = [Database.of(wh_settings) for _ in range(4)]
    try:
        sent = await asyncio.gather(*(ExpiryWatcher(db, wh_settings).run_pass() for db in replicas))
    finally:
        for db in replicas:
            await asyncio.to_thread(db.dispose)
    # 10 days left: 30 and 14 crossed, in each of two environments, sent by one replica
    # or split among them, never twice.
    assert sum(sent) == 4
    if wh_app.state.db.is_sqlite:
        # The replicas here share this process but not its notifier; on PostgreSQL the
        # app hears their commits through LISTEN, other SQLite processes through
        # watching the file.
        wh_app.state.db.notifier.fire(TOPIC)
    await receive(receiver, path, 4)
    await asyncio.sleep(0.3)
    got = receiver.on(path)
    assert sorted((r.json["environment"], r.json["threshold"]) for r in got) == sorted(
        [(env1, 30), (env1, 14), (env2, 30), (env2, 14)]
    )
    assert len(await settled(api, token, hook["id"], 4, project)) == 4


async def test_a_replacement_with_a_new_certificate_starts_afresh(
    api: httpx.AsyncClient, token: str, make: Factory, receiver: Receiver, wh_app: FastAPI
) -> None:
    project = await make.project("admin")
    env = await make.environment(projects=(project,))
    path = f"/replaced-{unique('p')}"
    await add_hook(api, token, receiver.at(path), project=project, events=["expiry"])
    certs_api = CertificateClient(api, token, project)
    name = unique("cert")
    await certs_api.create_ok(name, expiring_in(20, "old.example"), [env])
    assert await watcher(wh_app).run_pass() == 1
    assert [r.json["threshold"] for r in await receive(receiver, path, 1)] == [30]
    # The seed's update replaces it with a certificate that also has 20 days left: new
    # material, so its 30-day threshold is alerted again.
    r = await certs_api.update(name, expiring_in(20, "new.example"), [env])
    assert r.status_code == 200, r.text
    assert await watcher(wh_app).run_pass() == 1
    got = await receive(receiver, path, 2)
    assert [r.json["threshold"] for r in got] == [30, 30]
    assert await watcher(wh_app).run_pass() == 0
    await asyncio.sleep(0.3)
    assert len(receiver.on(path)) == 2


# --- retries -------------------------------------------------------------------------


async def test_a_failing_receiver_is_retried_with_backoff(
    api: httpx.AsyncClient, token: str, make: Factory, receiver: Receiver
) -> None:
    project = await make.project("admin")
    env = await make.environment(projects=(project,))
    path = f"/flaky-{unique('p')}"
    receiver.scripts[path] = [500, 503]
    before = {o: counted(o) for o in ("delivered", "retrying", "failed")}
    hook = await add_hook(api, token, receiver.at(path), project=project, events=["created"])
    await CertificateClient(api, token, project).create_ok(unique("cert"), far_future("f"), [env])
    got = await receive(receiver, path, 3)
    assert len(got) == 3
    assert len({r.body for r in got}) == 1
    assert len({r.headers["x-keyops-delivery"] for r in got}) == 1
    assert all(r.verifies(hook["secret"]) for r in got)
    # Backoff: the first retry after RETRY_SECONDS, the second after twice that.
    assert got[1].at - got[0].at >= RETRY_SECONDS * 0.9
    assert got[2].at - got[1].at >= RETRY_SECONDS * 2 * 0.9
    (row,) = await settled(api, token, hook["id"], 1, project)
    assert row["status"] == "delivered"
    assert row["attempts"] == 3
    assert row["lastStatusCode"] == 200
    assert row["lastError"] is None
    # keyops_webhook_deliveries_total{outcome}: two retries, then delivered.
    assert counted("retrying") - before["retrying"] == 2
    assert counted("delivered") - before["delivered"] >= 1
    assert counted("failed") == before["failed"]


async def test_a_receiver_that_keeps_failing_ends_failed_and_visible(
    api: httpx.AsyncClient, token: str, make: Factory, receiver: Receiver
) -> None:
    project = await make.project("admin")
    env = await make.environment(projects=(project,))
    path = f"/down-{unique('p')}"
    receiver.scripts[path] = [500] * 10
    hook = await add_hook(api, token, receiver.at(path), project=project, events=["created"])
    await CertificateClient(api, token, project).create_ok(unique("cert"), far_future("d"), [env])
    (row,) = await settled(api, token, hook["id"], 1, project)
    assert row["status"] == "failed"
    assert row["attempts"] == MAX_ATTEMPTS
    assert row["lastStatusCode"] == 500
    assert row["lastError"] == "HTTP 500"
    assert row["nextAttemptAt"] is None
    assert len(receiver.on(path)) == MAX_ATTEMPTS


async def test_an_unreachable_receiver_records_the_error(
    api: httpx.AsyncClient, token: str, make: Factory
) -> None:
    project = await make.project("admin")
    env = await make.environment(projects=(project,))
    # Nothing listens on port 9 of loopback.
    hook = await add_hook(
        api, token, "http://127.0.0.1:9/hook", project=project, events=["created"]
    )
    await CertificateClient(api, token, project).create_ok(unique("cert"), far_future("u"), [env])
    (row,) = await settled(api, token, hook["id"], 1, project)
    assert row["status"] == "failed"
    assert row["attempts"] == MAX_ATTEMPTS
    assert row["lastStatusCode"] is None
    assert row["lastError"].startswith("ConnectError: ")


# --- change events -------------------------------------------------------------------


async def test_change_events_arrive_signed_and_scoped_to_their_project(
    api: httpx.AsyncClient, token: str, make: Factory, receiver: Receiver
) -> None:
    project = await make.project("admin")
    other = await make.project("admin")
    env = await make.environment(projects=(project,))
    down = await make.environment(projects=(project,), target="failing")
    path, other_path = f"/changes-{unique('p')}", f"/other-{unique('p')}"
    hook = await add_hook(
        api,
        token,
        receiver.at(path),
        project=project,
        events=["created", "replaced", "deleted", "deployment_failed"],
    )
    await add_hook(api, token, receiver.at(other_path), project=other)
    certs_api = CertificateClient(api, token, project)
    name = unique("cert")
    await certs_api.create_ok(name, far_future("c1"), [env])
    got = await receive(receiver, path, 1)
    r = await certs_api.update(name, far_future("c2"), [env, down])
    assert r.status_code == 200, r.text
    got = await receive(receiver, path, 3)
    r = await certs_api.delete(name)
    assert r.status_code == 200, r.text
    # The delete's undeployment from the failing environment fails too: a second
    # deployment_failed, which may arrive before or after the deleted event.
    got = await receive(receiver, path, 5)
    await asyncio.sleep(0.3)
    got = receiver.on(path)
    assert len(got) == 5
    assert all(r.verifies(hook["secret"]) for r in got)
    kinds = sorted(r.json["event"] for r in got)
    assert kinds == ["created", "deleted", "deployment_failed", "deployment_failed", "replaced"]
    failures = sorted(
        (r.json for r in got if r.json["event"] == "deployment_failed"),
        key=lambda p: p["message"],
    )
    assert failures[0]["message"].startswith("Deployment failed: ")
    assert failures[1]["message"].startswith("Undeployment failed: ")
    events = {r.json["event"]: r.json for r in got if r.json["event"] != "deployment_failed"}
    events["deployment_failed"] = failures[0]
    for event in ("created", "replaced", "deleted"):
        payload = events[event]
        assert {k: payload[k] for k in ("project", "kind", "name")} == {
            "project": project,
            "kind": "certificate",
            "name": name,
        }
    assert events["created"]["environments"] == [env]
    assert events["replaced"]["environments"] == [env, down]
    assert sorted(events["deleted"]["environments"]) == sorted([env, down])
    failed = events["deployment_failed"]
    assert failed["environment"] == down
    assert failed["resources"] == [{"project": project, "kind": "certificate", "name": name}]
    assert failed["message"].startswith("Deployment failed: ")
    headers = {r.json["event"]: r.headers["x-keyops-event"] for r in got}
    assert all(k == v for k, v in headers.items())
    # The other project's webhook heard nothing of it.
    await asyncio.sleep(0.3)
    assert receiver.on(other_path) == []


async def test_jwk_changes_send_change_events(
    api: httpx.AsyncClient, token: str, make: Factory, receiver: Receiver
) -> None:
    """A JWK generated, renamed and deleted: created, replaced, deleted, each naming the
    project's environments (a JWK is published in every one of them)."""
    project = await make.project("admin")
    env = await make.environment(projects=(project,))
    path = f"/jwk-changes-{unique('p')}"
    hook = await add_hook(
        api, token, receiver.at(path), project=project, events=["created", "replaced", "deleted"]
    )
    base = f"/apiops/projects/{project}/jwks/"
    headers = {"Authorization": f"Bearer {token}"}
    name, renamed = unique("jwk"), unique("jwk")
    body = {"name": name, "type": "EC", "ec": {"curveType": "P256", "algorithm": "ES256"}}
    r = await api.post(base + "generate", json=body, headers=headers)
    assert r.status_code == 200, r.text
    r = await api.put(f"{base}{name}/", json={"name": renamed}, headers=headers)
    assert r.status_code == 200, r.text
    r = await api.delete(f"{base}{renamed}/", headers=headers)
    assert r.status_code == 200, r.text
    got = await receive(receiver, path, 3)
    assert all(r.verifies(hook["secret"]) for r in got)
    seen = sorted((r.json["event"], r.json["name"]) for r in got)
    assert seen == sorted([("created", name), ("replaced", renamed), ("deleted", renamed)])
    assert all(r.json["kind"] == "jwk" and r.json["project"] == project for r in got)
    assert all(env in r.json["environments"] for r in got)
