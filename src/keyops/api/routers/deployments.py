"""What each environment holds, and republishing it (admin)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from keyops.api.deps import (
    AdminDeployer,
    AdminPrincipal,
    KeyopsDep,
)
from keyops.api.routing import SlashAgnosticRouter
from keyops.deploy.plan import ChangePlan
from keyops.domain.deployments import deployed, republish_plan
from keyops.domain.gateway import GatewayService

router = SlashAgnosticRouter(prefix="/apiops/environments", tags=["deployments"])


@router.get("/{environmentName}/deployments/", summary="What an environment holds (admin)")
async def environment_deployments(
    environmentName: str,
    _: AdminPrincipal,
    k: KeyopsDep,
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        env = k.environments(session).get(environmentName)
        state = deployed(session, env)

        def artifact(a: Any) -> dict[str, Any]:
            return {
                "kind": a.kind,
                "projectName": a.project,
                "name": a.name,
                "alias": a.alias,
                "contentHash": a.content_hash if a.present else None,
                "revision": a.revision,
                "deployedAt": a.deployed_at.isoformat(),
            }

        rows = [artifact(a) for a in state.held]
        pending = [
            {**artifact(a), "action": "DEPLOY" if a.present else "UNDEPLOY"} for a in state.pending
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
            "revision": env.revision,
            "appliedRevision": env.applied_revision,
            "resultList": rows,
            "resultCount": len(rows),
            "pendingList": pending,
            "recentAttempts": attempts,
        }

    return await k.db.read(work)


@router.post("/{environmentName}/republish/", summary="Republish an environment (admin)")
async def republish(environmentName: str, _: AdminDeployer, k: KeyopsDep) -> dict[str, Any]:
    """Rebuild the environment's whole desired state from what is stored and have its
    target confirm it; PUBLISHED again once it does."""

    def work(session: Session) -> ChangePlan:
        env = k.environments(session).get(environmentName)
        return republish_plan(session, env, k.keyring)

    result = await k.deployer.change(work)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.get("/{environmentName}/nodes/", summary="Gateway nodes of an environment (admin)")
async def environment_nodes(
    environmentName: str,
    _: AdminPrincipal,
    k: KeyopsDep,
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        env = k.environments(session).get(environmentName)
        service = GatewayService.of(session, k.keyring, k.settings)
        latest = service.revision(env)
        rows = [
            {
                "name": n.name,
                "appliedRevision": n.applied_revision,
                "upToDate": n.applied_revision >= latest,
                "connected": n.connected,
                "state": n.state,
                "lastContact": n.last_seen.isoformat(),
                "listen": n.listen,
                "fingerprints": n.fingerprints,
                "lastError": n.last_error,
            }
            for n in service.nodes(env)
        ]
        return {
            "success": True,
            "environmentName": env.name,
            "status": env.status,
            "latestRevision": latest,
            "resultList": rows,
            "resultCount": len(rows),
        }

    return await k.db.read(work)


@router.delete(
    "/{environmentName}/nodes/{nodeName}/",
    summary="Remove a gateway node that will not come back (admin)",
)
async def remove_environment_node(
    environmentName: str, nodeName: str, _: AdminDeployer, k: KeyopsDep
) -> dict[str, Any]:
    """A node that said hello and never goodbye counts (as silent) until it is back or
    forgotten; removing it stops that at once, and an environment whose remaining nodes
    all applied its revision is PUBLISHED again."""

    def work(session: Session) -> None:
        env = k.environments(session).get(environmentName)
        GatewayService.of(session, k.keyring, k.settings).remove(env, nodeName)

    await k.db.write(work)
    return {"success": True}
