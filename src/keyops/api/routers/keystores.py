"""Keystores: create, list, get, update, delete."""

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
from keyops.api.schemas.keys import KeystoreBody, keystore_environment
from keyops.deploy.service import commit_and_roll_out
from keyops.domain.certificates import jwk_update_from_query
from keyops.domain.keystores import KeystoreEnvironmentInput, KeystoreInput, KeystoreService
from keyops.domain.material import store_of
from keyops.secrets import Keyring
from keyops.storage.models import Keystore

router = SlashAgnosticRouter(prefix="/apiops/projects/{projectName}/keystores", tags=["keystores"])


def _input(body: KeystoreBody) -> KeystoreInput:
    return KeystoreInput(
        name=body.name,
        description=body.description,
        environments=[
            KeystoreEnvironmentInput(e.environment_name, e.type, e.file, e.password, e.key_password)
            for e in body.key_store_environment_list
        ],
    )


async def _read(
    service: KeystoreService, keystore: Keystore, project: str, keyring: Keyring
) -> dict[str, Any]:
    names = await service.environment_names(keystore)
    rows = []
    for row in keystore.environments:
        data, _password = store_of(row, keyring)
        rows.append(
            keystore_environment(names[row.environment_id], row.store_type, data, row.entries_json)
        )
    return {
        "name": keystore.name,
        "description": keystore.description,
        "projectId": project,
        "keyStoreEnvironmentList": rows,
    }


@router.post("/", summary="Create keystore")
async def create_keystore(
    body: KeystoreBody,
    project: DeployerProject,
    session: SessionDep,
    environments: EnvironmentsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    service = KeystoreService(session, environments, keyring)
    change = await service.create(project, _input(body))
    result = await commit_and_roll_out(session, deployer, change.plan)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.get("/", summary="List keystores")
async def list_keystores(
    project: ReaderProject,
    session: SessionDep,
    environments: EnvironmentsDep,
    keyring: KeyringDep,
) -> dict[str, Any]:
    service = KeystoreService(session, environments, keyring)
    rows = [
        await _read(service, k, project.name, keyring)
        for k in await service.list_in_project(project)
    ]
    return {"success": True, "resultList": rows, "resultCount": len(rows)}


@router.get("/{keystoreName}/", summary="Get keystore")
async def get_keystore(
    keystoreName: str,
    project: ReaderProject,
    session: SessionDep,
    environments: EnvironmentsDep,
    keyring: KeyringDep,
) -> dict[str, Any]:
    service = KeystoreService(session, environments, keyring)
    keystore = await service.get(project, keystoreName)
    return {
        "success": True,
        "resultList": [await _read(service, keystore, project.name, keyring)],
        "resultCount": 1,
    }


@router.put("/{keystoreName}/", summary="Update keystore")
async def update_keystore(
    keystoreName: str,
    body: KeystoreBody,
    project: DeployerProject,
    session: SessionDep,
    environments: EnvironmentsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
    updateReferencedJwks: Annotated[str | None, Query()] = None,
    jwkUpdateAction: Annotated[str | None, Query()] = None,
    updateScope: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    service = KeystoreService(session, environments, keyring)
    jwk_update = jwk_update_from_query(updateReferencedJwks, jwkUpdateAction, updateScope)
    change = await service.update(project, keystoreName, _input(body), jwk_update)
    result = await commit_and_roll_out(session, deployer, change.plan)
    return {"success": True, "deploymentResult": result.as_contract()}


@router.delete("/{keystoreName}/", summary="Delete keystore")
async def delete_keystore(
    keystoreName: str,
    project: DeployerProject,
    session: SessionDep,
    environments: EnvironmentsDep,
    keyring: KeyringDep,
    deployer: DeployerDep,
) -> dict[str, Any]:
    service = KeystoreService(session, environments, keyring)
    change = await service.delete(project, keystoreName)
    result = await commit_and_roll_out(session, deployer, change.plan, undeploy=True)
    return {"success": True, "deploymentResult": result.as_contract()}
