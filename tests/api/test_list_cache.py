"""Cached list answers (api/list_cache.py) are never stale.

The certificate and JWK lists of a project are kept, rendered, until the project's
resources change; every kind of change that alters what a list shows must be seen by the
next list, and an unchanged project is answered from the cache without building it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import Factory
from tests.crypto import certs
from tests.support.certificates import delete_environment, new_setting
from tests.support.statements import statements_of


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    """Every statement the app's engines send meanwhile on the test's behalf."""
    with statements_of(app.state.db) as seen:
        yield seen


def listed(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return {item["name"]: item for item in body["resultList"]}


async def test_an_unchanged_list_is_answered_from_the_cache(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    s = await new_setting(client, admin_token, factory, envs=2)
    await s.api.create_ok("c1", certs.self_signed("p256", "c1.example").pem, s.envs)
    first = await s.api.list()
    with statements(app) as sent:
        again = await s.api.list()
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    # Only the caller and the project are read; nothing of the list itself.
    assert not [q for q in sent if "certificate" in q.lower()], sent


async def test_every_change_a_list_shows_is_seen(
    client: httpx.AsyncClient, admin_token: str, factory: Factory
) -> None:
    s = await new_setting(client, admin_token, factory, envs=3)
    one, two, three = s.envs
    pem = certs.self_signed("rsa2048", "cache.example").pem
    await s.api.create_ok("c1", pem, [one, two])
    assert set(listed(await s.api.list())) == {"c1"}

    # Create.
    await s.api.create_ok("c2", certs.self_signed("p256", "c2.example").pem, [one], alias="a2")
    assert set(listed(await s.api.list())) == {"c1", "c2"}

    # The seed's update: new alias, description, environments.
    r = await s.api.update("c1", pem, [two, three], alias="renamed", description="new words")
    assert r.status_code == 200, r.text
    item = listed(await s.api.list())["c1"]
    assert item["description"] == "new words"
    assert [e["environmentName"] for e in item["certificateEnvironmentList"]] == [two, three]
    assert {e["alias"] for e in item["certificateEnvironmentList"]} == {"renamed"}

    # A refused update changes nothing, and the list says so.
    r = await s.api.update("c1", b"not a certificate", [one])
    assert r.status_code == 400
    assert listed(await s.api.list())["c1"]["description"] == "new words"

    # A JWK derived from it, then detached by an update that does not re-derive it.
    await s.api.jwk_from_certificate("j1", "c1", two)
    assert listed(await s.api.list_jwks())["j1"]["sourceId"] == "c1"
    r = await s.api.update("c1", pem, [two, three], alias="renamed", query="")
    assert r.status_code == 200, r.text
    assert listed(await s.api.list_jwks())["j1"]["sourceId"] is None

    # An environment deleted: its rows go from every project's lists.
    await delete_environment(client, admin_token, three)
    item = listed(await s.api.list())["c1"]
    assert [e["environmentName"] for e in item["certificateEnvironmentList"]] == [two]

    # Deletes.
    assert (await s.api.delete("c2")).status_code == 200
    assert (await s.api.delete_jwk("j1")).status_code == 200
    assert set(listed(await s.api.list())) == {"c1"}
    assert listed(await s.api.list_jwks()) == {}
