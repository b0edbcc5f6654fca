"""What each environment holds, and republishing it (admin)."""

from __future__ import annotations

from typing import Any

from keyops.api.deps import (
    AdminDeployer,
    AdminPrincipal,
    DeployerDep,
    KeyringDep,
    SessionDep,
    SettingsDep,
    environment_service,
)
from keyops.api.routing import SlashAgnosticRouter
from keyops.deploy.service import commit_and_roll_out
from keyops.domain.deployments import deployed, republish_plan
from keyops.domain.environments import PublishStatus
from keyops.domain.gateway import GatewayService
from keyops.storage.repositories.environments import EnvironmentRepository

router = SlashAgnosticRouter(prefix="/apiops/environments", tags=["deployments"])


@router.get("/{environmentName}/deployments/", summary="What an environment holds (admin)")
async def environment_deployments(
    environmentName: str,
    _: AdminPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    env = await environment_service(session, settings).get(environmentName)
    state = await deployed(session, env)
    rows = [
        {
            "kind": a.kind,
            "projectName": a.project,
            "name": a.name,
            "alias": a.alias,
            "contentHash": a.content_hash,
            "revision": a.revision,
            "deployedAt": a.deployed_at.isoformat(),
        }
        for a in state.artifacts
    ]
    attempts = [
        {
            "action": t.action,
            "kind": t.kind,
            "projectName": t.project,
            "name": t.name,
            "contentHash": t.content_hash,
            "revision": t.revision,
            "success": t.success,
            "message": t.message,
            "at": t.at.isoformat(),
        }
        for t in state.attempts
    ]
    return {
        "success": True,
        "environmentName": env.name,
        "status": env.status,
        "resultList": rows,
        "resultCount": len(rows),
        "recentAttempts": attempts,
    }


@router.post("/{environmentName}/republish/", summary="Republish an environment (admin)")
async def republish(
    environmentName: str,
    _: AdminDeployer,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    """Push the environment's whole desired state; PUBLISHED again if it all lands."""
    env = await environment_service(session, settings).get(environmentName)
    plan = await republish_plan(session, env, keyring)
    result = await commit_and_roll_out(session, deployer, plan)
    if result.success:
        async with deployer.db.transaction() as fresh:
            await EnvironmentRepository(fresh).set_status([env.id], PublishStatus.PUBLISHED)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.get("/{environmentName}/nodes/", summary="Gateway nodes of an environment (admin)")
async def environment_nodes(
    environmentName: str,
    _: AdminPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyringDep,
) -> dict[str, Any]:
    env = await environment_service(session, settings).get(environmentName)
    service = GatewayService(session, keyring, node_ttl_seconds=settings.gateway_node_ttl_seconds)
    latest = await service.revision(env)
    rows = [
        {
            "name": n.name,
            "appliedRevision": n.applied_revision,
            "upToDate": n.applied_revision >= latest,
            "connected": n.connected,
            "lastContact": n.last_seen.isoformat(),
            "listen": n.listen,
            "fingerprints": n.fingerprints,
            "lastError": n.last_error,
        }
        for n in await service.nodes(env)
    ]
    return {
        "success": True,
        "environmentName": env.name,
        "status": env.status,
        "latestRevision": latest,
        "resultList": rows,
        "resultCount": len(rows),
    }
