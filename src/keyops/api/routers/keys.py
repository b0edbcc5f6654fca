"""Crypto keys: create, list, get, update, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from keyops.api.deps import (
    DeployerDep,
    DeployerProject,
    EnvironmentsDep,
    KeyringDep,
    ReaderProject,
    SessionDep,
)
from keyops.api.routing import SlashAgnosticRouter
from keyops.api.schemas.keys import KeyBody, key_environment
from keyops.deploy.service import commit_and_roll_out
from keyops.domain.certificates import jwk_update_from_query
from keyops.domain.keys import KeyEnvironmentInput, KeyInput, KeyService
from keyops.domain.material import material_of
from keyops.secrets import Keyring
from keyops.storage.models import CryptoKey

router = SlashAgnosticRouter(prefix="/apiops/projects/{projectName}/keys", tags=["keys"])


def _input(body: KeyBody) -> KeyInput:
    return KeyInput(
        name=body.name,
        description=body.description,
        key_type=body.key_type,
        environments=[
            KeyEnvironmentInput(e.environment_name, e.public_key, e.private_key)
            for e in body.crypto_key_info_environment_list
        ],
    )


async def _read(
    service: KeyService, key: CryptoKey, project: str, keyring: Keyring
) -> dict[str, Any]:
    names = await service.environment_names(key)
    return {
        "name": key.name,
        "description": key.description,
        "projectId": project,
        "keyType": key.key_type,
        "cryptoKeyInfoEnvironmentList": [
            key_environment(names[row.environment_id], material_of(row, key.key_type, keyring))
            for row in key.environments
        ],
    }


@router.post("/", summary="Create key")
async def create_key(
    body: KeyBody,
    project: DeployerProject,
    session: SessionDep,
    environments: EnvironmentsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    service = KeyService(session, environments, keyring)
    change = await service.create(project, _input(body))
    result = await commit_and_roll_out(session, deployer, change.plan)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.get("/", summary="List keys")
async def list_keys(
    project: ReaderProject,
    session: SessionDep,
    environments: EnvironmentsDep,
    keyring: KeyringDep,
) -> dict[str, Any]:
    service = KeyService(session, environments, keyring)
    rows = [
        await _read(service, k, project.name, keyring)
        for k in await service.list_in_project(project)
    ]
    return {"success": True, "resultList": rows, "resultCount": len(rows)}


@router.get("/{keyName}/", summary="Get key")
async def get_key(
    keyName: str,
    project: ReaderProject,
    session: SessionDep,
    environments: EnvironmentsDep,
    keyring: KeyringDep,
) -> dict[str, Any]:
    service = KeyService(session, environments, keyring)
    key = await service.get(project, keyName)
    return {
        "success": True,
        "resultList": [await _read(service, key, project.name, keyring)],
        "resultCount": 1,
    }


@router.put("/{keyName}/", summary="Update key")
async def update_key(
    keyName: str,
    body: KeyBody,
    project: DeployerProject,
    session: SessionDep,
    environments: EnvironmentsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
    updateReferencedJwks: Annotated[str | None, Query()] = None,
    jwkUpdateAction: Annotated[str | None, Query()] = None,
    updateScope: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    service = KeyService(session, environments, keyring)
    jwk_update = jwk_update_from_query(updateReferencedJwks, jwkUpdateAction, updateScope)
    change = await service.update(project, keyName, _input(body), jwk_update)
    result = await commit_and_roll_out(session, deployer, change.plan)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.delete("/{keyName}/", summary="Delete key")
async def delete_key(
    keyName: str,
    project: DeployerProject,
    session: SessionDep,
    environments: EnvironmentsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    service = KeyService(session, environments, keyring)
    change = await service.delete(project, keyName)
    result = await commit_and_roll_out(session, deployer, change.plan, undeploy=True)
    return {"success": True, "deploymentResult": result.as_contract()}
