"""The async client: in process (ASGI transport, both databases), and against the real
server, where it must answer exactly as the sync client does."""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile

import httpx
import pytest
from fastapi import FastAPI

from keyops.client import AsyncClient, BadRequest, Client, NotFound, Unauthorized
from tests.client.conftest import ADMIN_PASSWORD, PROJECT, material, unique
from tests.conftest import ADMIN_PASSWORD as APP_ADMIN_PASSWORD
from tests.support.server import LiveServer

ENVS = ["production", "staging"]


def unzipped(data: bytes) -> dict[str, bytes]:
    # The archive's bytes hold the time it was made: compare what it holds.
    archive = zipfile.ZipFile(io.BytesIO(data))
    return {n: archive.read(n) for n in archive.namelist()}


def in_process(app: FastAPI, token: str | None = None) -> AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return AsyncClient("http://keyops.test", token, transport=transport)


async def test_in_process_certificate_lifecycle(app: FastAPI) -> None:
    async with in_process(app) as anonymous:
        token = (await anonymous.auth.token("admin", APP_ADMIN_PASSWORD)).access_token
    async with in_process(app, token) as kc:
        name, m, new = unique("acert"), material("async-old"), material("async-new")
        created = await kc.certificates.create(PROJECT, name, pem=m.pem, environments=ENVS)
        assert created.deployment_result.success
        jwk = unique("ajwk")
        await kc.jwks.parse_from_certificate(
            PROJECT, jwk, name, "staging", use_type="SIGNATURE", algorithm="ES256"
        )
        updated = await kc.certificates.update(
            PROJECT,
            name,
            pem=new.pem,
            environments=["staging"],
            jwk_update_action="UPDATE",
            update_scope="SAME_PROJECT",
        )
        # The certificate leaves production; the re-derived JWK goes everywhere.
        everywhere = {e.name for e in (await kc.environments.for_project(PROJECT)).result_list}
        assert {"production", "staging"} <= everywhere
        assert {
            r.environment_name: r.success for r in updated.deployment_result.environment_results
        } == dict.fromkeys(everywhere, True)
        got = await kc.certificates.get(PROJECT, name)
        (only,) = got.certificate_environment_list
        assert only.environment_name == "staging"
        assert base64.b64decode(only.base64_encoded_content or "") == new.issued.der
        assert (await kc.jwks.get(PROJECT, jwk)).source_id == name
        archive = zipfile.ZipFile(io.BytesIO(await kc.certificates.export(PROJECT, name)))
        assert archive.namelist() == [f"{name}-staging.cer"]
        versions = await kc.certificates.versions(PROJECT, name)
        assert [v.version for v in versions.result_list] == [1]
        # Calls run concurrently on one client.
        lists = await asyncio.gather(
            kc.certificates.list(PROJECT), kc.keys.list(PROJECT), kc.jwks.list(PROJECT)
        )
        assert name in [c.name for c in lists[0].result_list]
        assert jwk in [j.name for j in lists[2].result_list]
        await kc.jwks.delete(PROJECT, jwk)
        await kc.certificates.delete(PROJECT, name)
        with pytest.raises(BadRequest) as caught:
            await kc.certificates.delete(PROJECT, name)
        assert caught.value.error_description == f"Certificate (name: {name}) is not found!"
        with pytest.raises(NotFound) as hidden:
            await kc.certificates.list("no-such-project")
        assert hidden.value.error == "not_found"
    async with in_process(app, "bad-token") as stranger:
        with pytest.raises(Unauthorized) as bad:
            await stranger.projects.list()
        assert (bad.value.error, bad.value.error_description) == (
            "unauthorized_client",
            "Invalid token",
        )


async def test_in_process_admin_groups(app: FastAPI) -> None:
    async with in_process(app) as anonymous:
        token = (await anonymous.auth.token("admin", APP_ADMIN_PASSWORD)).access_token
    async with in_process(app, token) as kc:
        env = await kc.environments.create(unique("aenv"))
        assert env.type == "TEST"
        held = await kc.deployments.get(env.name)
        assert held.result_list == [] and held.status == "PUBLISHED"
        assert (await kc.nodes.list(env.name)).result_count == 0
        hook = await kc.webhooks.create("http://127.0.0.1:9/hook", events=["deleted"])
        assert hook.id in [h.id for h in (await kc.webhooks.list()).result_list]
        await kc.webhooks.delete(hook.id)
        assert (await kc.expiring.list(within_days=1)).within_days == 1
        page = await kc.audit.search(kind="environment", user="admin", size=1)
        assert page.size == 1 and page.total_count is not None and page.total_count >= 1
        assert page.result_list[0].operation == "ENVIRONMENT_CREATE"
        await kc.environments.delete(env.name)


async def test_sync_and_async_answer_alike(live: LiveServer) -> None:
    name, m = unique("same"), material("same")
    with Client.login(live.base_url, "admin", ADMIN_PASSWORD) as kc:
        kc.certificates.create(PROJECT, name, pem=m.pem, environments=ENVS)
        sync_answers = (
            kc.certificates.get(PROJECT, name),
            kc.certificates.list(PROJECT, name=name),
            unzipped(kc.certificates.export(PROJECT, name)),
            kc.environments.for_project(PROJECT),
            kc.projects.list(),
        )
        with pytest.raises(BadRequest) as sync_error:
            kc.certificates.get(PROJECT, name + "-missing")
        # The async login runs while this client is open: both hold valid tokens.
        akc = await AsyncClient.login(live.base_url, "admin", ADMIN_PASSWORD)
        async with akc:
            async_answers = (
                await akc.certificates.get(PROJECT, name),
                await akc.certificates.list(PROJECT, name=name),
                unzipped(await akc.certificates.export(PROJECT, name)),
                await akc.environments.for_project(PROJECT),
                await akc.projects.list(),
            )
            with pytest.raises(BadRequest) as async_error:
                await akc.certificates.get(PROJECT, name + "-missing")
            deleted = await akc.certificates.delete(PROJECT, name)
    assert sync_answers[0].certificate_environment_list[0].base64_encoded_content
    for sync_answer, async_answer in zip(sync_answers, async_answers, strict=True):
        assert sync_answer == async_answer
    assert repr(sync_error.value) == repr(async_error.value)
    assert sorted(r.environment_name for r in deleted.deployment_result.environment_results) == ENVS
    with pytest.raises(Unauthorized):
        await AsyncClient.login(live.base_url, "admin", "wrong password")
