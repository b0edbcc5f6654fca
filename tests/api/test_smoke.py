"""The harness itself: app up on both databases, the demo data there."""

from __future__ import annotations

import httpx

from tests.conftest import bearer


async def test_list_projects_shows_demo_project(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    r = await client.get("/apiops/projects/", headers=bearer(admin_token))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    names = [p["name"] for p in r.json()["resultList"]]
    assert "MyProject" in names and "admin" in names
