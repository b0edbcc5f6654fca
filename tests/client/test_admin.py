"""Projects, environments, deployments, nodes, users, tokens, webhooks, audit and expiry
through the sync client against a real server."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from keyops.client import Client, Conflict, NotFound, Unauthorized
from tests.client.conftest import ADMIN_PASSWORD, PROJECT, material, unique
from tests.support.server import LiveServer
from tests.support.webhook_receiver import webhook_receiver


def test_login_and_system(live: LiveServer) -> None:
    with Client(live.base_url) as anonymous:
        assert anonymous.system.healthcheck() == "OK"
        token = anonymous.auth.token("admin", ADMIN_PASSWORD)
        assert token.token_type == "Bearer" and token.expires_in and token.expires_in > 0
        assert token.access_token not in repr(token)
        with pytest.raises(Unauthorized) as caught:
            anonymous.auth.token("admin", "wrong")
        assert (caught.value.error, caught.value.error_description) == (
            "unauthorized_client",
            "Bad credentials",
        )
    with Client(live.base_url, token.access_token) as kc:
        assert "keyops" in kc.system.hello("keyops")
        assert kc.base_url == live.base_url


def test_projects_environments_members(kc: Client) -> None:
    mine = kc.projects.list()
    assert mine.status == "SUCCESS" and PROJECT in [p.name for p in mine.result_list]
    assert mine.result_count == len(mine.result_list)

    user = unique("member")
    kc.users.create(user, "member-password-1", roles=["ROLE_API_SECURITY"])
    project = kc.projects.create(unique("proj"), description="made by the client", members=[user])
    assert project.members is not None and set(project.members) == {"admin", user}
    assert project.name in [p.name for p in kc.projects.list_all().result_list]
    assert {u.username for u in kc.projects.members(project.name).result_list} == {"admin", user}

    env = kc.environments.create(
        unique("env"), type="SANDBOX", description="sandbox", projects=[project.name]
    )
    assert (env.type, env.status, env.projects, env.target) == (
        "SANDBOX",
        "PUBLISHED",
        [project.name],
        "local",
    )
    assert kc.environments.get(env.name).projects == [project.name]
    assert env.name in [e.name for e in kc.environments.list().result_list]
    assert env.name in [e.name for e in kc.environments.for_project(project.name).result_list]
    # Limited to its project: another project does not see it.
    assert env.name not in [e.name for e in kc.environments.for_project(PROJECT).result_list]
    with pytest.raises(Conflict) as caught:
        kc.environments.create(env.name)
    assert caught.value.error_description == f"Environment (name: {env.name}) is already exist!"

    kc.projects.remove_member(project.name, user)
    assert {u.username for u in kc.projects.members(project.name).result_list} == {"admin"}
    assert kc.projects.add_member(project.name, user).username == user
    kc.projects.remove_member(project.name, user)
    kc.environments.delete(env.name)
    with pytest.raises(NotFound) as nf:
        kc.environments.get(env.name)
    assert nf.value.error_description == f"Environment ({env.name}) is not found!"
    kc.projects.delete(project.name)
    assert project.name not in [p.name for p in kc.projects.list_all().result_list]


def test_deployments_republish_and_nodes(kc: Client) -> None:
    name, m = unique("dep"), material("dep")
    kc.certificates.create(PROJECT, name, pem=m.pem, environments=["staging"])
    held = kc.deployments.get("staging")
    assert held.environment_name == "staging" and held.status == "PUBLISHED"
    assert (
        "certificate",
        PROJECT,
        name,
    ) in [(a.kind, a.project_name, a.name) for a in held.result_list]
    assert held.result_count == len(held.result_list)
    again = kc.deployments.republish("staging")
    assert again.deployment_result.success
    assert [r.environment_name for r in again.deployment_result.environment_results] == ["staging"]

    nodes = kc.nodes.list("staging")
    assert nodes.environment_name == "staging" and nodes.result_list == []
    credential = kc.nodes.create_credential("staging", unique("node"))
    assert credential.token and credential.revoked_at is None
    listed = kc.nodes.credentials("staging").result_list
    assert credential.id in [c.id for c in listed]
    assert all(c.token is None for c in listed)  # shown in the create's answer only
    assert kc.nodes.revoke_credential(credential.id).revoked_at is not None
    with pytest.raises(NotFound) as caught:
        kc.nodes.revoke_credential(10**9)
    assert caught.value.error_description == f"Node credential (id: {10**9}) is not found!"


def test_users_and_tokens(kc: Client, live: LiveServer) -> None:
    name = unique("user")
    user = kc.users.create(name, "first-password-1", roles=["ROLE_API_SECURITY"])
    assert (user.username, user.roles, user.enabled) == (name, ["ROLE_API_SECURITY"], True)
    assert name in [u.username for u in kc.users.list().result_list]
    changed = kc.users.update(name, roles=["ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES"])
    assert changed.roles == ["ROLE_API_SECURITY", "ROLE_DEPLOY_UNDEPLOY_PROXIES"]
    kc.users.update(name, password="second-password-2")
    with Client.login(live.base_url, name, "second-password-2") as as_user:
        assert as_user.projects.list().result_count == 0

    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    pat = kc.tokens.create(name, "ci", expires=tomorrow)
    assert pat.token and pat.active and pat.expires_at is not None
    assert pat.token not in repr(pat)
    with Client(live.base_url, pat.token) as as_pat:
        assert as_pat.projects.list().status == "SUCCESS"
    listed = kc.tokens.list(name).result_list
    assert [t.id for t in listed] == [pat.id] and listed[0].token is None
    assert not kc.tokens.revoke(pat.id).active
    with Client(live.base_url, pat.token) as as_pat, pytest.raises(Unauthorized):
        as_pat.projects.list()

    kc.users.update(name, enabled=False)
    assert not kc.users.get(name).enabled
    kc.users.delete(name)
    with pytest.raises(NotFound) as caught:
        kc.users.get(name)
    assert caught.value.error_description == f"User (username: {name}) is not found!"


def test_webhooks_audit_and_expiring(kc: Client) -> None:
    with webhook_receiver() as receiver:
        hook = kc.webhooks.create(receiver.at("/client"), events=["created"], project=PROJECT)
        assert hook.secret and hook.project_name == PROJECT and hook.events == ["created"]
        glob = kc.webhooks.create(receiver.at("/global"))
        assert glob.project_name is None and len(glob.events) == 5
        assert [h.id for h in kc.webhooks.list(project=PROJECT).result_list] == [hook.id]
        every = kc.webhooks.list().result_list
        assert {hook.id, glob.id} <= {h.id for h in every}
        assert all(h.secret is None for h in every)

        name, m = unique("hooked"), material("hooked")
        kc.certificates.create(PROJECT, name, pem=m.pem, environments=["production"])
        deadline = time.monotonic() + 20
        while True:
            deliveries = kc.webhooks.deliveries(hook.id, project=PROJECT, limit=10).result_list
            if deliveries and deliveries[0].status == "delivered":
                break
            assert time.monotonic() < deadline, deliveries
            time.sleep(0.2)
        assert deliveries[0].event == "created" and deliveries[0].webhook_id == hook.id
        assert kc.webhooks.deliveries(glob.id).result_count >= 1
        kc.webhooks.delete(hook.id, project=PROJECT)
        kc.webhooks.delete(glob.id)
        with pytest.raises(NotFound) as caught:
            kc.webhooks.delete(glob.id)
        assert caught.value.error_description == f"Webhook (id: {glob.id}) is not found!"

    page = kc.audit.search(project=PROJECT, kind="certificate", name=name, size=5)
    assert page.page == 0 and page.size == 5 and page.total_count == 1
    (entry,) = page.result_list
    assert (entry.username, entry.project, entry.name, entry.environments) == (
        "admin",
        PROJECT,
        name,
        ["production"],
    )
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert kc.audit.search(name=name, since=later).total_count == 0

    # The test certificates ended in 2025: expired, so listed (expired ones included).
    expiring = kc.expiring.list(within_days=0)
    assert expiring.within_days == 0
    mine = [e for e in expiring.result_list if e.name == name]
    assert [(e.kind, e.project, e.environment) for e in mine] == [
        ("certificate", PROJECT, "production")
    ]
    assert mine[0].days_left < 0
    assert kc.expiring.list().within_days == 30


def test_tls_identity(kc: Client) -> None:
    env = kc.environments.create(unique("tls"), projects=[PROJECT]).name
    store, m = unique("tls-store"), material("tls.example")
    kc.keystores.create(PROJECT, store, environments=[env], file=m.p12, password=m.password)
    change = kc.environments.set_tls_identity(
        env, project=PROJECT, keystore_name=store, alias_name="signer"
    )
    assert change.success and [r.environment_name for r in change.failed] == []
    identity = kc.environments.get(env).tls_identity
    assert identity is not None
    assert (identity.project_name, identity.key_store_name, identity.alias_name) == (
        PROJECT,
        store,
        "signer",
    )
    kc.environments.set_tls_identity(env, project=None, keystore_name=None, alias_name=None)
    assert kc.environments.get(env).tls_identity is None
    kc.keystores.delete(PROJECT, store)
    kc.environments.delete(env)
