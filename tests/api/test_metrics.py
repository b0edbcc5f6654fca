"""``/metrics``: request, deployment, not-after and gateway-node series, scrape access,
and ``serve --workers 2`` adding up its workers; on both databases.

Every scrape is parsed with prometheus-client's own parser.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from keyops.api.app import create_app
from keyops.config import Settings
from tests.conftest import ADMIN_PASSWORD, Factory, bearer, unique
from tests.crypto import certs
from tests.support.certificates import CertificateClient
from tests.support.databases import database
from tests.support.keysecrets import b64, jwcrypto_public
from tests.support.server import live_server, password_token

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
KEYSTORE_PASSWORD = "metrics-store-pw"
SCRAPE_TOKEN = "scrape-secret-0123456789"


def parse(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in found, f"duplicate series {key}"
            found[key] = s.value
    return found


def value(samples: Samples, metric: str, /, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


async def scrape(client: httpx.AsyncClient) -> Samples:
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(r.text)


def expiring(days: int, cn: str) -> certs.Issued:
    not_after = (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)
    return certs.make_cert(
        certs.name(("COMMON_NAME", cn)),
        certs.key("p256"),
        not_before=not_after - timedelta(days=400),
        not_after=not_after,
    )


async def _post(client: httpx.AsyncClient, token: str, path: str, body: dict[str, Any]) -> None:
    r = await client.post(path, json=body, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True, r.text


NOT_AFTER = "keyops_certificate_not_after_seconds"


async def test_not_afters_are_the_stored_dates(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    project = await factory.project("admin")
    e1, e2 = [await factory.environment(projects=(project,)) for _ in range(2)]
    cert = expiring(12, "metrics-cert.example")
    await CertificateClient(client, admin_token, project).create_ok("c1", cert.pem, [e1, e2])
    entry = expiring(5, "metrics-ks.example")
    store = pkcs12.serialize_key_and_certificates(
        b"signer",
        entry.key,  # type: ignore[arg-type]
        entry.cert,
        None,
        BestAvailableEncryption(KEYSTORE_PASSWORD.encode()),
    )
    base = f"/apiops/projects/{project}"
    await _post(
        client,
        admin_token,
        f"{base}/keystores/",
        {
            "name": "ks",
            "description": "a keystore",
            "keyStoreEnvironmentList": [
                {"environmentName": e1, "type": "PKCS12", "file": b64(store)}
                | {"password": KEYSTORE_PASSWORD}
            ],
        },
    )
    exp = int((datetime.now(UTC) + timedelta(days=30)).timestamp())
    doc = {**jwcrypto_public(certs.key("p384")), "exp": exp}
    await _post(
        client,
        admin_token,
        f"{base}/jwks/parse-from-clipboard",
        {"name": "jwk-exp", "sourceType": "COPY_PASTE", "jwkStr": json.dumps(doc)},
    )

    samples = await scrape(client)
    cert_end = cert.cert.not_valid_after_utc.timestamp()
    for env in (e1, e2):
        labels = {"project": project, "kind": "certificate", "name": "c1", "alias": ""}
        assert value(samples, NOT_AFTER, **labels, environment=env) == cert_end
    assert (
        value(
            samples,
            NOT_AFTER,
            project=project,
            kind="keystore",
            name="ks",
            environment=e1,
            alias="signer",
        )
        == entry.cert.not_valid_after_utc.timestamp()
    )
    assert value(
        samples, NOT_AFTER, project=project, kind="jwk", name="jwk-exp", environment="", alias=""
    ) == float(exp)
    ours = sorted(
        (dict(labels)["kind"], dict(labels)["environment"])
        for (name, labels) in samples
        if name == NOT_AFTER and dict(labels)["project"] == project
    )
    assert ours == sorted([("certificate", e1), ("certificate", e2), ("keystore", e1), ("jwk", "")])


DEPLOYMENTS = "keyops_deployments_total"


async def test_deployments_by_environment_and_outcome(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    project = await factory.project("admin")
    good = await factory.environment(projects=(project,))
    bad = await factory.environment(projects=(project,), target="failing")
    api = CertificateClient(client, admin_token, project)
    before = await scrape(client)
    assert value(before, DEPLOYMENTS, environment=good, outcome="success") is None
    await api.create_ok("d1", certs.self_signed("p256", "d1.example").pem, [good])
    r = await api.create(
        "d2", certs.self_signed("p256", "d2.example").pem, [good, bad], alias="alias-2"
    )
    assert r.status_code == 200, r.text
    assert r.json()["deploymentResult"]["success"] is False
    after = await scrape(client)
    assert value(after, DEPLOYMENTS, environment=good, outcome="success") == 2.0
    assert value(after, DEPLOYMENTS, environment=bad, outcome="failure") == 1.0
    assert value(after, DEPLOYMENTS, environment=bad, outcome="success") is None


COUNT = "keyops_http_request_duration_seconds_count"
BUCKET = "keyops_http_request_duration_seconds_bucket"


async def test_requests_are_labelled_by_route_template(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    project = await factory.project("admin")
    template = "/apiops/projects/{projectName}/certificates/"
    ok = {"method": "GET", "route": template, "status": "200"}
    missing = {"method": "GET", "route": "<unmatched>", "status": "404"}
    before = await scrape(client)
    # Both slash forms are one route: the documented template.
    for path in (
        f"/apiops/projects/{project}/certificates/",
        f"/apiops/projects/{project}/certificates",
    ):
        r = await client.get(path, headers=bearer(admin_token))
        assert r.status_code == 200, r.text
    r = await client.get(f"/apiops/nothing/{unique('x')}")
    assert r.status_code == 404
    after = await scrape(client)
    assert (value(after, COUNT, **ok) or 0) - (value(before, COUNT, **ok) or 0) == 2
    assert (value(after, COUNT, **missing) or 0) - (value(before, COUNT, **missing) or 0) == 1
    assert value(after, BUCKET, **ok, le="+Inf") == value(after, COUNT, **ok)
    routes = {dict(labels)["route"] for (name, labels) in after if name == COUNT}
    assert not any(project in route for route in routes)
    assert f"/apiops/projects/{project}/certificates" not in routes
    assert "/apiops/projects/{projectName}/certificates" not in routes


async def test_gateway_nodes_and_their_lag(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    project = await factory.project("admin")
    env = await factory.environment(projects=(project,))
    lonely = await factory.environment(projects=(project,))
    await CertificateClient(client, admin_token, project).create_ok(
        "g1", certs.self_signed("p256", "g1.example").pem, [env]
    )
    r = await client.post(
        f"/apiops/admin/environments/{env}/node-tokens/",
        json={"name": "gw"},
        headers=bearer(admin_token),
    )
    assert r.status_code == 200, r.text
    node_token = r.json()["result"]["token"]
    revision = 0
    for node in ("n1", "n2", "leaving"):
        r = await client.get(
            "/apiops/gateway/sync/",
            params={"node": node, "since": -1},
            headers=bearer(node_token),
        )
        assert r.status_code == 200, r.text
        revision = r.json()["revision"]
    assert revision > 0
    for node, applied in (("n1", revision), ("n2", revision - 1)):
        r = await client.post(
            "/apiops/gateway/ack/",
            json={"node": node, "revision": applied, "listen": "127.0.0.1:8443"},
            headers=bearer(node_token),
        )
        assert r.status_code == 200, r.text
    r = await client.request(
        "DELETE", "/apiops/gateway/sync/", params={"node": "leaving"}, headers=bearer(node_token)
    )
    assert r.status_code in (200, 204), r.text

    samples = await scrape(client)
    assert value(samples, "keyops_gateway_nodes_connected", environment=env) == 2.0
    assert value(samples, "keyops_gateway_nodes_connected", environment=lonely) == 0.0
    lag = "keyops_gateway_node_lag_revisions"
    assert value(samples, lag, environment=env, node="n1") == 0.0
    assert value(samples, lag, environment=env, node="n2") == 1.0
    assert value(samples, lag, environment=env, node="leaving") is None


# --- who may scrape --------------------------------------------------------------------


@asynccontextmanager
async def app_with(settings: Settings, **changes: Any) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update=changes), demo=False)
    async with application.router.lifespan_context(application):
        yield application


def client_from(app: FastAPI, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://keyops.test")


async def test_loopback_access_is_the_default(app: FastAPI) -> None:
    assert app.state.settings.metrics_access == "loopback"
    for host in ("127.0.0.1", "127.3.4.5", "::1"):
        async with client_from(app, host) as c:
            assert (await c.get("/metrics")).status_code == 200, host
    for host in ("10.1.2.3", "192.168.0.9", "2001:db8::1"):
        async with client_from(app, host) as c:
            r = await c.get("/metrics")
        assert r.status_code == 403, host
        assert r.json() == {
            "error": "forbidden",
            "error_description": "Metrics are served to loopback clients only"
            " (KEYOPS_METRICS_ACCESS=loopback)",
        }


async def test_token_access(settings: Settings, factory: Factory, admin_token: str) -> None:
    user = await factory.user("ROLE_API_SECURITY")
    async with app_with(
        settings, metrics_access="token", metrics_token=SecretStr(SCRAPE_TOKEN)
    ) as app:
        async with client_from(app, "10.1.2.3") as c:
            for headers in ({}, bearer("wrong-token-value"), {"Authorization": SCRAPE_TOKEN}):
                r = await c.get("/metrics", headers=headers)
                assert r.status_code == 401
                assert r.json() == {
                    "error": "unauthorized_client",
                    "error_description": "Invalid token",
                }
                assert r.headers["www-authenticate"] == 'Bearer realm="keyops"'
            r = await c.get("/metrics", headers=bearer(user.token))
            assert r.status_code == 403
            assert r.json() == {
                "error": "forbidden",
                "error_description": "You do not have permission to perform this action:"
                " it needs the role ROLE_ADMIN",
            }
            for token in (SCRAPE_TOKEN, admin_token):
                r = await c.get("/metrics", headers=bearer(token))
                assert r.status_code == 200, r.text
                parse(r.text)


async def test_open_and_off(settings: Settings) -> None:
    async with app_with(settings, metrics_access="open") as app, client_from(app, "10.9.9.9") as c:
        assert (await c.get("/metrics")).status_code == 200
    async with app_with(settings, metrics_access="off") as app, client_from(app, "127.0.0.1") as c:
        r = await c.get("/metrics")
        assert r.status_code == 404
        assert r.json() == {
            "error": "not_found",
            "error_description": "No endpoint GET /metrics exists",
        }


def test_a_short_scrape_token_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        Settings(metrics_token="short")  # type: ignore[arg-type]


# --- a real server with two workers ----------------------------------------------------


@pytest.fixture
def multiproc_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "prom"
    path.mkdir()
    # A stale file from an earlier run: serve removes it at start.
    (path / "counter_1.db").write_bytes(b"stale")
    yield path


def test_two_workers_add_up(backend: str, tmp_path: Path, multiproc_dir: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    with (
        database(backend, tmp_path) as database_url,
        live_server(
            database_url,
            tmp_path / "data",
            admin_password=ADMIN_PASSWORD,
            workers=2,
            extra_env=env,
            demo=False,
        ) as server,
    ):
        assert not (multiproc_dir / "counter_1.db").exists()
        token = password_token(server.base_url, "admin", ADMIN_PASSWORD)
        project = unique("proj")
        r = httpx.post(
            f"{server.base_url}/apiops/admin/projects/",
            json={"name": project, "description": "d", "members": ["admin"]},
            headers=bearer(token),
        )
        assert r.status_code == 200, r.text
        healthy = {"method": "GET", "route": "/apiops/test/healthcheck", "status": "200"}
        first = parse(httpx.get(f"{server.base_url}/metrics").text)
        # Each request on its own connection: the workers take them as they come.
        for _ in range(40):
            assert httpx.get(f"{server.base_url}/apiops/test/healthcheck").text == "OK"
        counts = []
        for _ in range(6):
            r = httpx.get(f"{server.base_url}/metrics")
            assert r.status_code == 200
            samples = parse(r.text)  # no series twice, database gauges included
            counts.append(
                (value(samples, COUNT, **healthy) or 0) - (value(first, COUNT, **healthy) or 0)
            )
        assert counts == [40.0] * 6
        writers = {p.name.rsplit("_", 1)[1] for p in multiproc_dir.glob("histogram_*.db")}
        assert len(writers) == 2, sorted(os.listdir(multiproc_dir))
