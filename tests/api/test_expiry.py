"""Expiry: ``domain/expiry.not_afters``, ``GET /apiops/expiring/`` and the
``expiringWithinDays`` filter of the four lists, on both databases.

Every certificate is made with a chosen notAfter (whole seconds, an hour past a whole
number of days from now, so that the days left are known for the test's duration).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from fastapi import FastAPI
from sqlalchemy import select

from keyops.crypto.x509 import format_instant
from keyops.domain.expiry import Expiring, ExpiryKind, days_left, not_afters
from keyops.storage.models import Project
from tests.conftest import Actor, Factory, bearer
from tests.crypto import certs
from tests.support.certificates import CertificateClient, member
from tests.support.keysecrets import b64, bad_request, jwcrypto_public, key_body, key_entry
from tests.support.statements import statements_of

KEYSTORE_PASSWORD = "expiry-store-pw"
HOUR = timedelta(hours=1)


def moment(days: int) -> datetime:
    """``days`` whole days and an hour from now, in whole seconds (as X.509 keeps it)."""
    return (datetime.now(UTC) + timedelta(days=days) + HOUR).replace(microsecond=0)


def cert_expiring(days: int, cn: str) -> certs.Issued:
    not_after = moment(days)
    return certs.make_cert(
        certs.name(("COMMON_NAME", cn)),
        certs.key("p256"),
        not_before=not_after - timedelta(days=400),
        not_after=not_after,
    )


def pkcs12_of(issued: certs.Issued, alias: str) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        alias.encode(),
        issued.key,  # type: ignore[arg-type]
        issued.cert,
        None,
        BestAvailableEncryption(KEYSTORE_PASSWORD.encode()),
    )


@dataclass
class World:
    """One project (``project``, environments ``e1`` < ``e2`` by name) whose member
    ``reader`` holds ROLE_API_SECURITY only, and a second project ``other`` they are
    not a member of."""

    project: str
    other: str
    e1: str
    e2: str
    reader: Actor
    # name -> notAfter
    dates: dict[str, datetime]


async def _post(client: httpx.AsyncClient, token: str, path: str, body: dict[str, Any]) -> None:
    r = await client.post(path, json=body, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True, r.text


@pytest.fixture
async def world(client: httpx.AsyncClient, admin_token: str, factory: Factory) -> World:
    project, other = await factory.project("admin"), await factory.project("admin")
    e1, e2 = sorted([await factory.environment(projects=(project,)) for _ in range(2)])
    other_env = await factory.environment(projects=(other,))
    reader = await factory.user("ROLE_API_SECURITY", projects=(project,))
    api = CertificateClient(client, admin_token, project)
    dates: dict[str, datetime] = {}

    async def certificate(name: str, days: int, envs: list[str]) -> None:
        issued = cert_expiring(days, f"{name}.example")
        dates[name] = issued.cert.not_valid_after_utc
        await api.create_ok(name, issued.pem, envs, alias=f"{name}-alias")

    await certificate("c-soon", 2, [e1, e2])
    await certificate("c-later", 20, [e1])
    await certificate("c-far", 100, [e1])
    await certificate("c-expired", -3, [e1])
    await CertificateClient(client, admin_token, other).create_ok(
        "o-soon", cert_expiring(1, "other.example").pem, [other_env], alias="o-alias"
    )

    # A keystore whose entry expires in 5 days in e1 and in 40 days in e2.
    soon, late = cert_expiring(5, "ks-e1.example"), cert_expiring(40, "ks-e2.example")
    dates["ks@e1"], dates["ks@e2"] = soon.cert.not_valid_after_utc, late.cert.not_valid_after_utc
    entries = [
        {"environmentName": env, "type": "PKCS12", "file": b64(pkcs12_of(issued, "signer"))}
        | {"password": KEYSTORE_PASSWORD}
        for env, issued in ((e1, soon), (e2, late))
    ]
    base = f"/apiops/projects/{project}"
    await _post(
        client,
        admin_token,
        f"{base}/keystores/",
        {"name": "ks", "description": "a keystore", "keyStoreEnvironmentList": entries},
    )
    # A key: keys have no not-after.
    key = certs.key("p256")
    await _post(client, admin_token, f"{base}/keys/", key_body("k", "EC", [key_entry(e1, key)]))
    # JWKs: one with exp in 10 days, one without.
    exp = moment(10)
    dates["jwk-exp"] = exp
    public = jwcrypto_public(certs.key("p384"))
    for name, doc in (("jwk-exp", {**public, "exp": int(exp.timestamp())}), ("jwk-no", public)):
        await _post(
            client,
            admin_token,
            f"{base}/jwks/parse-from-clipboard",
            {"name": name, "sourceType": "COPY_PASTE", "jwkStr": json.dumps(doc)},
        )
    return World(project, other, e1, e2, reader, dates)


def item(
    w: World, kind: str, name: str, env: str | None, days: int, *, at: str | None = None
) -> dict[str, Any]:
    found: dict[str, Any] = {"project": w.project, "kind": kind, "name": name, "environment": env}
    if kind == "keystore":
        found["alias"] = "signer"
    found.update(notAfter=format_instant(w.dates[at or name]), daysLeft=days)
    return found


async def test_expiring_across_the_callers_projects(
    client: httpx.AsyncClient, admin_token: str, world: World
) -> None:
    """A member sees their projects' not-afters within the days asked, expired ones
    included, soonest first; certificates and keystore entries per environment, JWKs
    with no environment; keys and things without a date never."""
    w = world
    r = await client.get("/apiops/expiring/", headers=w.reader.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "resultList": [
            item(w, "certificate", "c-expired", w.e1, -3),
            item(w, "certificate", "c-soon", w.e1, 2),
            item(w, "certificate", "c-soon", w.e2, 2),
            item(w, "keystore", "ks", w.e1, 5, at="ks@e1"),
            item(w, "jwk", "jwk-exp", None, 10),
            item(w, "certificate", "c-later", w.e1, 20),
        ],
        "resultCount": 6,
        "withinDays": 30,
    }

    r = await client.get("/apiops/expiring?withinDays=3", headers=w.reader.headers)
    assert r.status_code == 200, r.text
    assert [(i["name"], i["environment"]) for i in r.json()["resultList"]] == [
        ("c-expired", w.e1),
        ("c-soon", w.e1),
        ("c-soon", w.e2),
    ]

    r = await client.get("/apiops/expiring/?withinDays=120", headers=w.reader.headers)
    assert r.json()["resultList"][-2:] == [
        item(w, "keystore", "ks", w.e2, 40, at="ks@e2"),
        item(w, "certificate", "c-far", w.e1, 100),
    ]
    assert r.json()["resultCount"] == 8

    # 0 days: only what has expired already.
    r = await client.get("/apiops/expiring/?withinDays=0", headers=w.reader.headers)
    assert r.json()["resultList"] == [item(w, "certificate", "c-expired", w.e1, -3)]

    # The admin sees every project, the other one too.
    r = await client.get("/apiops/expiring/?withinDays=3", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    mine = [
        (i["project"], i["name"], i["daysLeft"])
        for i in r.json()["resultList"]
        if i["project"] in (w.project, w.other)
    ]
    assert mine == [
        (w.project, "c-expired", -3),
        (w.other, "o-soon", 1),
        (w.project, "c-soon", 2),
        (w.project, "c-soon", 2),
    ]
    days = [i["daysLeft"] for i in r.json()["resultList"]]
    assert days == sorted(days)


async def test_expiring_needs_api_security(
    client: httpx.AsyncClient, factory: Factory, world: World
) -> None:
    nobody = await member(factory, "ROLE_MANAGE_PROXIES", projects=(world.project,))
    r = await client.get("/apiops/expiring/", headers=nobody.headers)
    assert r.status_code == 403
    assert r.json() == {
        "error": "forbidden",
        "error_description": "You do not have permission to perform this action:"
        " it needs the role ROLE_API_SECURITY",
    }
    r = await client.get("/apiops/expiring/")
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized_client", "error_description": "Invalid token"}
    # A member of no project sees nothing.
    lonely = await factory.user("ROLE_API_SECURITY")
    r = await client.get("/apiops/expiring/", headers=lonely.headers)
    assert r.json() == {"success": True, "resultList": [], "resultCount": 0, "withinDays": 30}


@pytest.mark.parametrize(
    ("query", "description"),
    [
        ("withinDays=", "withinDays value can not be empty!"),
        ("withinDays=-1", "withinDays (-1) must be an integer between 0 and 100000!"),
        ("withinDays=abc", "withinDays (abc) must be an integer between 0 and 100000!"),
        ("withinDays=1.5", "withinDays (1.5) must be an integer between 0 and 100000!"),
        ("withinDays=%C2%B2", "withinDays (\u00b2) must be an integer between 0 and 100000!"),
        ("withinDays=100001", "withinDays (100001) must be an integer between 0 and 100000!"),
        ("withinDays=1&withinDays=2", "withinDays may be given only once!"),
    ],
)
async def test_expiring_bad_days(
    client: httpx.AsyncClient, admin_token: str, query: str, description: str
) -> None:
    r = await client.get(f"/apiops/expiring/?{query}", headers=bearer(admin_token))
    assert r.status_code == 400
    assert r.json() == bad_request(description)


KINDS = ("certificates", "keys", "keystores", "jwks")


async def full_list(client: httpx.AsyncClient, w: World, kind: str) -> dict[str, Any]:
    r = await client.get(f"/apiops/projects/{w.project}/{kind}/", headers=w.reader.headers)
    assert r.status_code == 200, r.text
    return {i["name"]: i for i in r.json()["resultList"]}


@pytest.mark.parametrize(
    ("kind", "query", "expected"),
    [
        ("certificates", "expiringWithinDays=7", ["c-expired", "c-soon"]),
        ("certificates", "expiringWithinDays=0", ["c-expired"]),
        ("certificates", "expiringWithinDays=25", ["c-expired", "c-later", "c-soon"]),
        ("certificates", "expiringWithinDays=25&environment={e2}", ["c-soon"]),
        ("certificates", "expiringWithinDays=1000", ["c-expired", "c-far", "c-later", "c-soon"]),
        ("keys", "expiringWithinDays=100000", []),
        ("keystores", "expiringWithinDays=7", ["ks"]),
        ("keystores", "expiringWithinDays=3", []),
        ("keystores", "expiringWithinDays=7&environment={e2}", []),
        ("keystores", "expiringWithinDays=45&environment={e2}", ["ks"]),
        ("jwks", "expiringWithinDays=15", ["jwk-exp"]),
        ("jwks", "expiringWithinDays=5", []),
        ("jwks", "expiringWithinDays=15&environment={e2}", ["jwk-exp"]),
        ("jwks", "expiringWithinDays=15&environment=no-such-env", []),
    ],
)
async def test_lists_filtered_by_expiry(
    client: httpx.AsyncClient, world: World, kind: str, query: str, expected: list[str]
) -> None:
    """Only resources with a not-after within the days, each shown whole, exactly as the
    unfiltered list shows it."""
    w = world
    everything = await full_list(client, w, kind)
    path = f"/apiops/projects/{w.project}/{kind}/?{query.format(e2=w.e2)}"
    r = await client.get(path, headers=w.reader.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "resultList": [everything[n] for n in expected],
        "resultCount": len(expected),
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("query", "description"),
    [
        ("expiringWithinDays=", "expiringWithinDays value can not be empty!"),
        (
            "expiringWithinDays=-2",
            "expiringWithinDays (-2) must be an integer between 0 and 100000!",
        ),
        (
            "expiringWithinDays=soon",
            "expiringWithinDays (soon) must be an integer between 0 and 100000!",
        ),
        ("expiringWithinDays=1&expiringWithinDays=1", "expiringWithinDays may be given only once!"),
    ],
)
async def test_lists_bad_expiry(
    client: httpx.AsyncClient, world: World, kind: str, query: str, description: str
) -> None:
    r = await client.get(
        f"/apiops/projects/{world.project}/{kind}/?{query}", headers=world.reader.headers
    )
    assert r.status_code == 400
    assert r.json() == bad_request(description)


async def test_bad_parameter_after_authentication(client: httpx.AsyncClient) -> None:
    """A caller without a token hears 401, not what is wrong with the query."""
    r = await client.get("/apiops/projects/any/certificates/?expiringWithinDays=x")
    assert r.status_code == 401
    r = await client.get("/apiops/expiring/?withinDays=x")
    assert r.status_code == 401


async def test_not_afters_in_three_statements(app: FastAPI, world: World) -> None:
    """The domain function other services call: typed records, soonest first, in three
    statements whatever the count."""
    w = world
    now = datetime.now(UTC)
    db = app.state.db
    pid = await db.read(
        lambda s: s.scalars(select(Project.id).where(Project.name == w.project)).one()
    )
    with statements_of(db) as statements:
        found = await db.read(lambda s: not_afters(s, [pid], now=now, within_days=30))
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 3, statements

    def rec(kind: ExpiryKind, name: str, env: str | None, at: str | None = None) -> Expiring:
        not_after = w.dates[at or name]
        alias = "signer" if kind == "keystore" else None
        return Expiring(
            pid, w.project, kind, name, env, not_after, days_left(not_after, now), alias
        )

    assert found == [
        rec("certificate", "c-expired", w.e1),
        rec("certificate", "c-soon", w.e1),
        rec("certificate", "c-soon", w.e2),
        rec("keystore", "ks", w.e1, "ks@e1"),
        rec("jwk", "jwk-exp", None),
        rec("certificate", "c-later", w.e1),
    ]
    assert [e.days_left for e in found] == [-3, 2, 2, 5, 10, 20]
    assert all(e.not_after.tzinfo is UTC for e in found)
    everything = await db.read(lambda s: not_afters(s, [pid], now=now))
    assert len(everything) == 8


def test_days_left_rounds_down() -> None:
    now = datetime(2026, 1, 10, 12, tzinfo=UTC)
    assert days_left(now + timedelta(days=2, hours=23), now) == 2
    assert days_left(now + timedelta(hours=1), now) == 0
    assert days_left(now, now) == 0
    assert days_left(now - timedelta(seconds=1), now) == -1
    assert days_left(now - timedelta(days=3, hours=-1), now) == -3
