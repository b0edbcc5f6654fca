"""JWKs: create (from a certificate in this issue), parse, list, get, delete."""

from __future__ import annotations

from typing import Any

from keyops.api.deps import (
    DeployerDep,
    SecurityDeployer,
    SecurityReader,
    SessionDep,
    SettingsDep,
    environment_service,
    visible_project,
)
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.jwks import JwkCreate, JwkFromCertificate, jwk_detail, jwk_summary
from keyops.deploy.service import commit_and_roll_out
from keyops.domain.jwks import JwkInput, JwkService

router = SlashAgnosticRouter(prefix="/apiops/projects/{projectName}/jwks", tags=["jwks"])


@router.post("/", summary="Create JWK")
async def create_jwk(
    projectName: str,
    body: JwkCreate,
    principal: SecurityDeployer,
    session: SessionDep,
    settings: SettingsDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    project = await visible_project(session, principal, projectName)
    service = JwkService(session, environment_service(session, settings))
    change = await service.create(
        project,
        JwkInput(
            name=body.name,
            description=body.description,
            source_type=body.source_type,
            certificate_name=body.certificate_name,
            environment_name=body.environment_name,
            use_type=body.use_type,
            algorithm=body.algorithm,
            kid=body.kid,
            url=body.url,
        ),
    )
    result = await commit_and_roll_out(session, deployer, change.plan)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.post("/parse-from-certificate", summary="Parse JWK from certificate")
async def parse_from_certificate(
    projectName: str,
    body: JwkFromCertificate,
    principal: SecurityDeployer,
    session: SessionDep,
    settings: SettingsDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    project = await visible_project(session, principal, projectName)
    service = JwkService(session, environment_service(session, settings))
    change = await service.create(
        project,
        JwkInput(
            name=body.name,
            description=body.description,
            source_type="CERTIFICATE",
            certificate_name=body.certificate_name,
            environment_name=body.environment_name,
            use_type=body.use_type,
            algorithm=body.algorithm,
            kid=body.kid,
        ),
    )
    result = await commit_and_roll_out(session, deployer, change.plan)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.get("/", summary="List JWKs")
async def list_jwks(
    projectName: str,
    principal: SecurityReader,
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    project = await visible_project(session, principal, projectName)
    service = JwkService(session, environment_service(session, settings))
    rows = [
        jwk_summary(j, project.name, await service.source_name(j))
        for j in await service.list(project)
    ]
    return {"success": True, "resultList": rows, "resultCount": len(rows)}


@router.get("/{jwkName}/", summary="Get JWK")
async def get_jwk(
    projectName: str,
    jwkName: str,
    principal: SecurityReader,
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    project = await visible_project(session, principal, projectName)
    service = JwkService(session, environment_service(session, settings))
    jwk = await service.get(project, jwkName)
    item = jwk_detail(jwk, project.name, await service.source_name(jwk))
    return {"success": True, "resultList": [item], "resultCount": 1}


@router.delete("/{jwkName}/", summary="Delete JWK")
async def delete_jwk(
    projectName: str,
    jwkName: str,
    principal: SecurityDeployer,
    session: SessionDep,
    settings: SettingsDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    project = await visible_project(session, principal, projectName)
    service = JwkService(session, environment_service(session, settings))
    change = await service.delete(project, jwkName)
    result = await commit_and_roll_out(session, deployer, change.plan, undeploy=True)
    return {"success": True, "deploymentResult": result.as_contract()}
